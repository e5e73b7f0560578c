"""Recovery files: unsaved text kept on disk so that a crash, a kill or a power cut loses nothing.

Pure Python; no Qt. Each open document with unsaved changes (never-saved "Untitled" ones included) has one
JSON file in ``<state dir>/recovery`` named ``<doc id>.<instance id>.json``, written atomically. Each running
editor holds an exclusive lock on ``instances/<instance id>.lock`` for its whole life; the kernel releases
it when the process dies, however it dies. ``pending()`` therefore returns exactly the entries whose owner
is gone, and never the live entries of a second editor that is still running.

A recovery file never replaces the user's own file: restoring one opens its text as an unsaved document,
and the user decides whether to save it. ``adopt`` claims a stale entry for this instance with an atomic
rename, so two editors starting at once cannot both restore it.

The recovery folder is used only if it belongs to this user and nobody else may enter it (mode 0700):
entries in a folder another user could write are never offered, and ``open_recovery_store`` falls back
to ``$XDG_RUNTIME_DIR`` or a private temporary folder when the state folder cannot be used.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from diffedit.document.storage import atomic_write_bytes
from diffedit.fileinfo import file_kind

FORMAT = 1
ENV_STATE_DIR = "DIFFEDIT_STATE_DIR"
DISCARD_KEEP_SECONDS = 14 * 24 * 3600
"""Discarded entries stay in ``recovery/discarded`` this long, in case a Discard was a mistake."""


class UnsafeRecoveryFolder(OSError):
    """The recovery folder is not private to this user: another user could plant or remove entries."""


class RecoveryWriteError(OSError):
    """A recovery file could not be written; ``str()`` is one line naming the folder and the way out."""

    def __str__(self) -> str:
        return str(self.strerror)


def folder_problem(folder: str | os.PathLike[str]) -> str | None:
    """Why ``folder`` must not hold recovery files, or None if it is this user's own with mode 0700."""
    if os.name != "posix":
        return None  # Windows: per-user profile folders carry their own ACLs
    try:
        st = os.stat(folder)
    except OSError as exc:
        return exc.strerror or str(exc)
    if not stat.S_ISDIR(st.st_mode):
        return f"it is {file_kind(st.st_mode)}, not a folder"
    if st.st_uid != os.geteuid():
        return f"it belongs to user {st.st_uid}, not to you (user {os.geteuid()})"
    if stat.S_IMODE(st.st_mode) & 0o077:
        return f"other users may enter it (mode {stat.S_IMODE(st.st_mode):o}, not 700)"
    return None


def open_recovery_store(state_dir: str | os.PathLike[str] | None = None) -> tuple[RecoveryStore, str]:
    """The recovery store in ``state_dir`` (default: ``default_state_dir()``), opened; and a warning.

    When that folder cannot be used the store goes to ``$XDG_RUNTIME_DIR/diffedit`` if that is private,
    else to a private folder in the temporary directory (``diffedit-state-<uid>-*``, mode 0700: found
    again at the next start, and never one another user could have made). The warning ("" when none)
    says where the copies go, for the window to show.
    """
    wanted = Path(state_dir) if state_dir is not None else default_state_dir()
    try:
        return RecoveryStore(wanted).open(), ""
    except OSError as exc:
        reason = str(exc) if isinstance(exc, UnsafeRecoveryFolder) else exc.strerror or str(exc)
    store = None
    for fallback in _fallback_state_dirs():
        with contextlib.suppress(OSError):
            store = RecoveryStore(fallback).open()
            break
    if store is None:
        store = RecoveryStore(tempfile.mkdtemp(prefix=f"diffedit-state-{_user_tag()}-")).open()
    warning = (
        f"Recovery copies cannot be kept in {wanted / 'recovery'} ({reason}); "
        f"they go to {store.folder} until the next start."
    )
    return store, warning


def _fallback_state_dirs() -> Iterator[Path]:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and folder_problem(runtime) is None:
        yield Path(runtime) / "diffedit"
    # A private folder an earlier start made: newest first, and only if still private (checked on open).
    pattern = f"diffedit-state-{_user_tag()}-*"
    found = sorted(Path(tempfile.gettempdir()).glob(pattern), key=_mtime, reverse=True)
    yield from (path for path in found if folder_problem(path) is None)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _user_tag() -> str:
    return str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")


def default_state_dir() -> Path:
    """``$DIFFEDIT_STATE_DIR`` if set, else the platform's per-user state folder for diffedit."""
    override = os.environ.get(ENV_STATE_DIR)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_state_dir("diffedit", appauthor=False))


def new_doc_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class RecoveryEntry:
    """One document's unsaved text and what is needed to save it the way its file was stored.

    ``path`` is the file the text belongs to (None for a never-saved document). ``base_sha256`` and
    ``base_size`` describe that file as it was when the editing began, so a restored document can tell
    whether the file changed since.
    """

    doc_id: str
    path: str | None
    display_name: str
    text: str
    saved_at: float = field(default_factory=time.time)
    encoding: str = "utf-8"
    bom: bool = False
    newline: str = "\n"
    base_sha256: str | None = None
    base_size: int | None = None
    before_rewrite: str | None = None
    """The text as it was before the last committed rewrite, kept until the user saves or keeps it."""
    owner: str = ""
    """The instance id that wrote the entry; set by the store."""

    def versions(self) -> list[tuple[str, str]]:
        """The texts this entry can restore, each with a label: the current one first."""
        found = [("current text", self.text)]
        if self.before_rewrite is not None and self.before_rewrite != self.text:
            found.append(("before the last rewrite", self.before_rewrite))
        return found

    @property
    def is_untitled(self) -> bool:
        return self.path is None

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecoveryEntry:
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown recovery format {data.get('format')!r}")
        known = {f for f in cls.__dataclass_fields__}
        entry = cls(**{k: v for k, v in data.items() if k in known})
        if not isinstance(entry.text, str) or not isinstance(entry.doc_id, str) or not entry.doc_id.isalnum():
            raise ValueError("malformed recovery entry")
        if entry.before_rewrite is not None and not isinstance(entry.before_rewrite, str):
            raise ValueError("malformed recovery entry")
        return entry


@dataclass(frozen=True)
class RecoveryPreview:
    head: str
    lines: int
    words: int
    characters: int


class RecoveryStore:
    """The recovery folder, seen from one running editor instance.

    Call ``open()`` (or use the store as a context manager) before ``save``: it takes this instance's lock.
    """

    def __init__(self, state_dir: str | os.PathLike[str] | None = None, instance_id: str | None = None):
        self.folder = Path(state_dir if state_dir is not None else default_state_dir()) / "recovery"
        self.instance_id = instance_id or new_doc_id()
        self._lock_file: IO[bytes] | None = None

    # -- lifetime -------------------------------------------------------------------------------------

    @property
    def instances_folder(self) -> Path:
        return self.folder / "instances"

    @property
    def discarded_folder(self) -> Path:
        return self.folder / "discarded"

    def open(self) -> RecoveryStore:
        """Create the folders and take this instance's lock (held until ``close`` or process death)."""
        if self._lock_file is not None:
            return self
        for folder in (self.folder, self.instances_folder):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            problem = folder_problem(folder)
            if problem is not None:
                raise UnsafeRecoveryFolder(errno.EPERM, f"{folder} is not private: {problem}")
        self._lock_file = self._take_lock()
        self._sweep()
        return self

    def _take_lock(self) -> IO[bytes]:
        lock_path = self.instances_folder / f"{self.instance_id}.lock"
        # Lock a temporary file, then rename it into place: a lock file that exists is always locked, so
        # another editor probing it can never mistake a starting instance for a dead one.
        # (Windows cannot rename an open file: there the lock is taken on the final name directly.)
        tmp = (
            lock_path
            if sys.platform == "win32"
            else lock_path.with_name(f".{lock_path.name}.{os.getpid()}.tmp")
        )
        f = os.fdopen(os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600), "r+b")
        try:
            if _try_lock(f) is False:
                raise RuntimeError(f"recovery lock {tmp} is held by another process")
            f.write(f"{os.getpid()}\n".encode())
            f.flush()
            if tmp != lock_path:
                os.replace(tmp, lock_path)
        except BaseException:
            f.close()
            _unlink(tmp)
            raise
        return f

    def _sweep(self) -> None:
        """Remove what dead instances left besides their entries: lock files, half-written temp files."""
        for lock in self.instances_folder.glob("*.lock"):
            self._instance_alive(lock.stem)  # unlinks the lock file of a dead instance
        cutoff = time.time() - 24 * 3600
        for tmp in [*self.folder.glob(".*.tmp"), *self.instances_folder.glob(".*.tmp")]:
            with contextlib.suppress(OSError):
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
        folder = self.discarded_folder
        if folder.is_dir():
            cutoff = time.time() - DISCARD_KEEP_SECONDS
            for path in folder.glob("*.json"):
                with contextlib.suppress(OSError):
                    if path.stat().st_mtime < cutoff:
                        path.unlink()

    def close(self, *, keep_entries: bool = True) -> None:
        """Release the lock; this instance's entries stay (they become recoverable) unless told otherwise."""
        if self._lock_file is None:
            return
        if not keep_entries:
            for path in self._entry_files():
                if self._owner_of(path) == self.instance_id:
                    _unlink(path)
        # Unlink while still holding the lock, so the file never exists unlocked.
        _unlink(self.instances_folder / f"{self.instance_id}.lock")
        self._lock_file.close()
        self._lock_file = None

    def __enter__(self) -> RecoveryStore:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- this instance's entries ------------------------------------------------------------------------

    def save(self, entry: RecoveryEntry) -> RecoveryEntry:
        """Write ``entry`` atomically as this instance's, replacing its earlier version if any."""
        if not entry.doc_id.isalnum():
            raise ValueError(f"document id must be alphanumeric, not {entry.doc_id!r}")
        if self._lock_file is None:
            self.open()
        entry = replace(entry, owner=self.instance_id)
        # surrogatepass: text from a widget may hold a lone surrogate; it must round-trip, not crash a save.
        data = json.dumps(entry.to_json(), ensure_ascii=False).encode("utf-8", "surrogatepass")
        try:
            atomic_write_bytes(self._path_for(entry.doc_id, self.instance_id), data, mode=0o600)
        except OSError as exc:
            raise self._write_error(exc) from None
        return entry

    def _write_error(self, exc: OSError) -> RecoveryWriteError:
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            problem = "the disk is full"
            remedy = (
                f"free some space there, or start diffedit with {ENV_STATE_DIR} set to another disk's folder"
            )
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            problem = "it cannot be written (permission denied or a read-only disk)"
            remedy = f"make it writable, or start diffedit with {ENV_STATE_DIR} set to another folder"
        else:
            problem = exc.strerror or str(exc)
            remedy = f"check that folder, or start diffedit with {ENV_STATE_DIR} set to another folder"
        return RecoveryWriteError(
            exc.errno,
            f"no recovery copy could be written in {self.folder}: {problem}; {remedy}. "
            "Your text is still in the editor; saving the document keeps it safe",
        )

    def remove(self, doc_id: str) -> None:
        """Forget this instance's entry for ``doc_id`` (the document was saved, or closed on purpose)."""
        _unlink(self._path_for(doc_id, self.instance_id))

    def has_live(self, doc_id: str) -> bool:
        """Whether this instance has an entry for ``doc_id`` on disk."""
        return self._path_for(doc_id, self.instance_id).exists()

    def live_entries(self) -> list[RecoveryEntry]:
        """This instance's own entries."""
        return [e for path, e in self._read_all() if self._owner_of(path) == self.instance_id]

    # -- entries left by editors that are gone ------------------------------------------------------------

    def pending(self) -> list[RecoveryEntry]:
        """Entries whose owner is no longer running, newest first; another live editor's entries are left."""
        dead: dict[str, bool] = {}
        found = []
        for path, entry in self._read_all():
            owner = self._owner_of(path)
            if owner == self.instance_id:
                continue
            if owner not in dead:
                dead[owner] = not self._instance_alive(owner)
            if dead[owner]:
                found.append(entry)
        # Several dead instances could hold the same document: keep the newest version only.
        newest: dict[str, RecoveryEntry] = {}
        for entry in found:
            if entry.doc_id not in newest or entry.saved_at > newest[entry.doc_id].saved_at:
                newest[entry.doc_id] = entry
        return sorted(newest.values(), key=lambda e: e.saved_at, reverse=True)

    def adopt(self, entry: RecoveryEntry) -> RecoveryEntry | None:
        """Claim a stale entry for this instance (it becomes a live entry again); None if taken or live.

        The claim is an atomic rename, so of two editors restoring the same entry exactly one succeeds.
        """
        if self._lock_file is None:
            self.open()
        source = self._path_for(entry.doc_id, entry.owner)
        claimed = self._path_for(entry.doc_id, self.instance_id)
        if source == claimed:
            return entry
        if self._instance_alive(entry.owner):
            return None  # another running editor's live entry: never take it
        try:
            os.rename(source, claimed)
        except FileNotFoundError:
            return None
        self._forget_other_versions(entry.doc_id)
        return self.save(entry)

    def discard(self, entry: RecoveryEntry) -> None:
        """The user chose not to restore ``entry``: move it aside (kept a while in ``discarded``)."""
        self.discarded_folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        source = self._path_for(entry.doc_id, entry.owner)
        with contextlib.suppress(FileNotFoundError):
            os.replace(source, self.discarded_folder / source.name)
            os.utime(self.discarded_folder / source.name)
        self._forget_other_versions(entry.doc_id)

    @staticmethod
    def preview(entry: RecoveryEntry, max_lines: int = 12, max_chars: int = 600) -> RecoveryPreview:
        """The first lines of the entry's text (for a dialog) and its size in lines, words and characters."""
        head_lines = entry.text.split("\n", max_lines)[:max_lines]
        head = "\n".join(head_lines)
        if len(head) > max_chars:
            head = head[:max_chars].rstrip() + "…"
        elif len(head) < len(entry.text.rstrip("\n")):
            head += "\n…"
        return RecoveryPreview(
            head=head,
            lines=entry.text.count("\n") + (1 if entry.text and not entry.text.endswith("\n") else 0),
            words=len(entry.text.split()),
            characters=len(entry.text),
        )

    # -- internals --------------------------------------------------------------------------------------

    def _path_for(self, doc_id: str, owner: str) -> Path:
        return self.folder / f"{doc_id}.{owner}.json"

    def _entry_files(self) -> Iterator[Path]:
        # Never read entries from a folder another user could have written: they may be planted.
        if self.folder.is_dir() and folder_problem(self.folder) is None:
            yield from sorted(self.folder.glob("*.*.json"))

    @staticmethod
    def _owner_of(path: Path) -> str:
        return path.name.split(".")[1]

    def _read_all(self) -> Iterator[tuple[Path, RecoveryEntry]]:
        for path in self._entry_files():
            try:
                entry = RecoveryEntry.from_json(
                    json.loads(path.read_bytes().decode("utf-8", "surrogatepass"))
                )
            except (OSError, ValueError, TypeError):
                # Unreadable or from a newer version: leave it on disk, never delete what we cannot read.
                continue
            if entry.doc_id != path.name.split(".")[0]:
                continue
            yield path, replace(entry, owner=self._owner_of(path))

    def _forget_other_versions(self, doc_id: str) -> None:
        """Move copies of ``doc_id`` left by other dead instances aside, so they are not offered twice."""
        for path in self.folder.glob(f"{doc_id}.*.json"):
            owner = self._owner_of(path)
            if owner != self.instance_id and not self._instance_alive(owner):
                self.discarded_folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                with contextlib.suppress(FileNotFoundError):
                    os.replace(path, self.discarded_folder / path.name)

    def _instance_alive(self, owner: str) -> bool:
        if owner == self.instance_id:
            return True
        lock_path = self.instances_folder / f"{owner}.lock"
        try:
            f = open(lock_path, "r+b")  # noqa: SIM115 - closed below, after the lock probe
        except FileNotFoundError:
            return False  # the owner closed or was cleaned up
        except OSError:
            return True  # cannot tell: do not steal
        with f:
            locked = _try_lock(f)
            if locked is None:  # no file locking here: fall back to the pid written in the file
                return _pid_alive(f.read().decode("ascii", "replace").strip())
            if locked:
                _unlink(lock_path)  # a stale lock file of a dead instance; unlinked before unlocking
                _unlock(f)
                return False
            return True


# ------------------------------------------------------------------------------------------ locking


def _try_lock(f: IO[bytes]) -> bool | None:
    """Take an exclusive, non-blocking lock: True if taken, False if held elsewhere, None if unsupported."""
    if sys.platform == "win32":
        import msvcrt

        try:
            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return None  # e.g. a network file system without locks: fall back to the pid
    return True


def _unlock(f: IO[bytes]) -> None:
    if sys.platform == "win32":
        import msvcrt

        f.seek(0)
        msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _pid_alive(text: str) -> bool:
    try:
        pid = int(text)
    except ValueError:
        return False
    if os.name != "posix":
        return True  # os.kill would terminate the process on Windows; assume alive rather than steal
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
