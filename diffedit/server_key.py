"""The API key of a ``diffedit serve``, as the app keeps it: in the system keyring, never in the settings.

The settings file names only where the key is (an environment variable, or the keyring); this module reads
and writes the keyring entry (service ``diffedit``, user name the server's URL). No Qt and no engine here.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from diffedit.engine.types import EngineError

SERVICE = "diffedit"


class KeyringUnavailable(EngineError):
    """No usable system keyring (a headless Linux session without Secret Service, say)."""


def _account(url: str) -> str:
    return url.strip().rstrip("/")


def _keyring() -> tuple[Any, type[Exception]]:
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError as exc:  # pragma: no cover - a dependency; an install without it says so
        raise KeyringUnavailable("the keyring package is not installed: use an environment variable") from exc
    return keyring, KeyringError


def store_key(url: str, key: str) -> None:
    """Keep ``key`` for ``url`` in the system keyring; ``KeyringUnavailable`` says why it could not."""
    keyring, error = _keyring()
    try:
        keyring.set_password(SERVICE, _account(url), key)
    except (error, RuntimeError) as exc:
        raise KeyringUnavailable(
            f"the system keyring could not store the key ({exc}); use an environment variable instead"
        ) from exc


def read_key(url: str) -> str | None:
    """The key kept for ``url``, or None when there is none."""
    keyring, error = _keyring()
    try:
        return keyring.get_password(SERVICE, _account(url)) or None
    except (error, RuntimeError) as exc:
        raise KeyringUnavailable(
            f"the system keyring could not be read ({exc}); use an environment variable instead"
        ) from exc


def forget_key(url: str) -> None:
    """Remove the key kept for ``url`` (nothing happens when there is none)."""
    keyring, error = _keyring()
    with contextlib.suppress(error, RuntimeError):
        keyring.delete_password(SERVICE, _account(url))


def resolve_key(url: str, key_env: str, in_keyring: bool) -> str | None:
    """The key to send to ``url``: from the keyring when chosen, else from ``$key_env`` (None: no key)."""
    if in_keyring:
        return read_key(url)
    return os.environ.get(key_env) or None


def key_hint(url: str, key_env: str, in_keyring: bool, found: bool) -> str:
    """What the user should do about a refused key (401), in the app's words."""
    if in_keyring:
        if found:
            return "the key stored in the system keyring is not the server's: store it again in Preferences"
        return "store the server's key in Edit ▸ Preferences (system keyring)"
    if found:
        return f"check ${key_env} in the environment diffedit was started from"
    return f"set ${key_env} before starting diffedit, or store the key in the system keyring (Preferences)"
