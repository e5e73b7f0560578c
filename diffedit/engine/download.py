"""Download a DiffusionGemma checkpoint from a model hub, only when the user asks for it.

Speaks the hub's plain HTTP interface (``/api/models/<repo>`` for the file list,
``/<repo>/resolve/<rev>/<file>`` for the files), takes only what diffedit loads (safetensors, JSON
configs, tokenizer files: never pickle weights or code), resumes partial files, checks sizes and
SHA-256 where the hub gives them, and moves each file into place only once it is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from diffedit.engine.types import Cancelled, CancelToken, EngineError

DEFAULT_ENDPOINT = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
WANTED_SUFFIXES = (".safetensors", ".json", ".model", ".txt", ".jinja")
_CHUNK = 1 << 20


class DownloadError(EngineError):
    """A download failed; the message says which file and why."""


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int | None
    sha256: str | None


Progress = Callable[[str, int, int | None], None]  # file name, bytes done, bytes total


def _open(url: str, token: str | None, start: int = 0, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    req = urllib.request.Request(url, headers={"User-Agent": "diffedit"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if start:
        req.add_header("Range", f"bytes={start}-")
    return urllib.request.urlopen(req, timeout=timeout)


def list_files(
    repo: str, revision: str = "main", endpoint: str = DEFAULT_ENDPOINT, token: str | None = None
) -> list[RemoteFile]:
    """The files of ``repo`` that diffedit would load."""
    url = f"{endpoint.rstrip('/')}/api/models/{repo}/revision/{urllib.parse.quote(revision)}?blobs=true"
    try:
        with _open(url, token) as resp:
            info = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        hint = " (a gated model needs an access token: set HF_TOKEN)" if exc.code in (401, 403) else ""
        raise DownloadError(f"cannot list {repo}: HTTP {exc.code}{hint}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DownloadError(f"cannot reach {endpoint} to list {repo}: {exc}") from exc
    files = []
    for s in info.get("siblings", []):
        name = str(s["rfilename"])
        if not name.endswith(WANTED_SUFFIXES) or "/" in name:
            continue
        lfs = s.get("lfs") or {}
        files.append(RemoteFile(name, s.get("size", lfs.get("size")), lfs.get("sha256")))
    if not any(f.name.endswith(".safetensors") for f in files):
        raise DownloadError(f"{repo} has no safetensors weights; diffedit loads safetensors only")
    return files


def download_model(
    repo: str,
    dest: Path,
    revision: str = "main",
    endpoint: str = DEFAULT_ENDPOINT,
    token: str | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Download ``repo`` into ``dest``; files already complete are kept, partial ones resumed."""
    token = token or os.environ.get("HF_TOKEN")
    dest.mkdir(parents=True, exist_ok=True)
    for remote in list_files(repo, revision, endpoint, token):
        url = f"{endpoint.rstrip('/')}/{repo}/resolve/{urllib.parse.quote(revision)}/{remote.name}"
        _fetch(url, dest / remote.name, remote, token, progress, cancel)
    return dest


def _fetch(
    url: str,
    target: Path,
    remote: RemoteFile,
    token: str | None,
    progress: Progress | None,
    cancel: CancelToken | None,
) -> None:
    if target.exists() and remote.size is not None and target.stat().st_size == remote.size:
        return
    part = target.with_name(target.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    try:
        with _open(url, token, start) as resp:
            if start and resp.status != 206:  # the server ignored the range: start over
                start = 0
            with part.open("ab" if start else "wb") as out:
                done = start
                while chunk := resp.read(_CHUNK):
                    if cancel is not None and cancel.cancelled:
                        raise Cancelled()
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(remote.name, done, remote.size)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"downloading {remote.name} failed: HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"downloading {remote.name} failed: {exc}; run it again to resume") from exc
    size = part.stat().st_size
    if remote.size is not None and size != remote.size:
        raise DownloadError(
            f"{remote.name} arrived with {size} bytes, expected {remote.size}; "
            "run the download again to resume"
        )
    if remote.sha256 and _sha256(part) != remote.sha256:
        part.unlink()
        raise DownloadError(f"{remote.name} failed its SHA-256 check and was deleted; download it again")
    os.replace(part, target)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            h.update(block)
    return h.hexdigest()
