"""Download a checkpoint into the Hugging Face cache with huggingface_hub, only when the user asks for it.

``snapshot_download`` does the transfer: the hub's cache layout (so every Hugging Face tool finds the
files), locks, retries, and resuming a dropped connection inside a pull with a Range request. diffedit
adds what a checkpoint needs (safetensors, JSON, tokenizer files; never pickle weights or code), one
progress callback with bytes, total and rate, a cancel token, and a message for each failure that names the
problem and the way out. A cancelled or failed pull keeps every file it finished; the next pull fetches only
the rest (huggingface_hub deletes the partial file that was in flight: it restarts from zero).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from diffedit.engine.catalog import hf_cache_dir
from diffedit.engine.types import Cancelled, CancelToken, EngineError

# Top-level files only: "original/" folders hold a second copy of the weights in another format.
ALLOW_PATTERNS = ["*.safetensors", "*.json", "tokenizer.model", "*.jinja", "vocab.txt", "merges.txt"]
IGNORE_PATTERNS = ["*/*", "*.bin", "*.pt", "*.pth", "*.pkl", "*.ckpt", "*.py"]
LOGIN_HINT = (
    "log in with `hf auth login` or set HF_TOKEN to a read token from https://huggingface.co/settings/tokens"
)
RATE_WINDOW_S = 5.0

# bytes done, bytes total (of what this pull fetches), bytes per second over the last few seconds
ProgressCallback = Callable[[int, int, float], None]


class DownloadError(EngineError):
    """A pull failed; the message names the problem and what to do."""


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) read now, not when huggingface_hub was imported."""
    return any(
        os.environ.get(k, "").strip().upper() in ("1", "ON", "YES", "TRUE")
        for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


class _ByteMeter:
    """Bytes written by all download threads, the rate over the last seconds, and the cancel check."""

    def __init__(self, total: int, progress: ProgressCallback | None, cancel: CancelToken | None) -> None:
        self.total, self.done = total, 0
        self.progress, self.cancel = progress, cancel
        self._lock = threading.Lock()
        self._samples: deque[tuple[float, int]] = deque([(time.monotonic(), 0)])
        self._reported = 0
        self._report_lock = threading.Lock()

    def add(self, n: int) -> None:
        if self.cancel is not None and self.cancel.cancelled:
            raise Cancelled()  # raised inside huggingface_hub's read loop: the transfer stops here
        with self._lock:
            self.done += n
            now = time.monotonic()
            self._samples.append((now, self.done))
            while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW_S:
                self._samples.popleft()
            t0, d0 = self._samples[0]
            rate = (self.done - d0) / (now - t0) if now > t0 else 0.0
            done, total = self.done, max(self.total, self.done)
        if self.progress is None:
            return
        with self._report_lock:  # threads finish out of order: never report a count older than one reported
            if done >= self._reported:
                self._reported = done
                self.progress(done, total, rate)


def _progress_bar_class(meter: _ByteMeter) -> type:
    """A tqdm class for snapshot_download that draws nothing and feeds the bytes it is told of to ``meter``.

    snapshot_download makes three bars from it; the one named ``huggingface_hub.snapshot_download`` counts
    the bytes written for every file (plain HTTP or Xet), the others count files and network bytes.
    """
    from huggingface_hub.utils import tqdm as hf_tqdm

    class MeterBar(hf_tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._counts_bytes = kwargs.get("name") == "huggingface_hub.snapshot_download"
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            if self._counts_bytes and n:
                meter.add(int(n))
            return super().update(n)

    return MeterBar


def pull_model(
    repo: str,
    revision: str = "main",
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    token: str | None = None,
    cache_dir: Path | None = None,
) -> Path:
    """Fetch what ``repo`` at ``revision`` needs into the hub cache and return its snapshot folder.

    Files already in the cache are not fetched again. Raises :class:`Cancelled` when ``cancel`` fires (the
    files finished so far stay), :class:`DownloadError` for anything else.
    """
    from huggingface_hub import snapshot_download

    cache = cache_dir or hf_cache_dir()
    if hub_offline():
        return _cached_snapshot_or_offline_error(repo, revision, cache)
    hub = endpoint()
    try:
        total = _bytes_to_fetch(repo, revision, cache, hub, token)
        meter = _ByteMeter(total, progress, cancel)
        folder = snapshot_download(
            repo,
            revision=revision,
            cache_dir=cache,
            endpoint=hub,
            token=token,
            allow_patterns=ALLOW_PATTERNS,
            ignore_patterns=IGNORE_PATTERNS,
            tqdm_class=_progress_bar_class(meter),
        )
    except Cancelled:
        raise
    except Exception as exc:
        raise _explain(exc, repo, revision, hub, cache) from exc
    return Path(folder)


def _bytes_to_fetch(repo: str, revision: str, cache: Path, hub: str, token: str | None) -> int:
    """The size of the wanted files not yet in the cache; refuses a repo without safetensors weights."""
    from huggingface_hub import HfApi
    from huggingface_hub.file_download import repo_folder_name
    from huggingface_hub.hf_api import RepoFile
    from huggingface_hub.utils import filter_repo_objects

    api = HfApi(endpoint=hub, token=token)
    commit = api.repo_info(repo, revision=revision).sha
    tree = {
        f.path: f
        for f in api.list_repo_tree(repo, revision=commit, recursive=True)
        if isinstance(f, RepoFile)
    }
    files = [
        tree[p]
        for p in filter_repo_objects(tree, allow_patterns=ALLOW_PATTERNS, ignore_patterns=IGNORE_PATTERNS)
    ]
    if not any(f.path.endswith(".safetensors") for f in files):
        pickles = [p for p in tree if p.endswith((".bin", ".pt", ".pth"))]
        raise DownloadError(
            f"{repo} has no safetensors weights"
            + (" (only pickle files, which can run code)" if pickles else "")
            + "; diffedit loads safetensors only: pick a repo that has *.safetensors files"
        )
    snapshot = cache / repo_folder_name(repo_id=repo, repo_type="model") / "snapshots" / str(commit)
    return sum(f.size for f in files if not (snapshot / f.path).is_file())


def _cached_snapshot_or_offline_error(repo: str, revision: str, cache: Path) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(
                repo,
                revision=revision,
                cache_dir=cache,
                local_files_only=True,
                allow_patterns=ALLOW_PATTERNS,
                ignore_patterns=IGNORE_PATTERNS,
            )
        )
    except Exception as exc:
        raise DownloadError(
            f"HF_HUB_OFFLINE is set, so {repo} cannot be downloaded (and it is not complete in {cache}); "
            "unset HF_HUB_OFFLINE to pull it, or use a model already on this machine (`diffedit models`)"
        ) from exc


def _explain(exc: Exception, repo: str, revision: str, hub: str, cache: Path) -> DownloadError:
    """One line for each way a pull fails, naming the problem and the way out."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    again = "files already fetched are kept: run the pull again to continue"
    if isinstance(exc, DownloadError):
        return exc
    if isinstance(exc, GatedRepoError):
        return DownloadError(
            f"{repo} is gated: accept its terms on {hub}/{repo}, then {LOGIN_HINT}, and pull again"
        )
    if isinstance(exc, RevisionNotFoundError):
        return DownloadError(f"{repo} has no revision '{revision}'; pull without --revision to get 'main'")
    if isinstance(exc, RepositoryNotFoundError):
        return DownloadError(
            f"{repo} was not found on {hub}; check the name (org/model), or if it is private, {LOGIN_HINT}"
        )
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            return DownloadError(f"{hub} refused access to {repo} (HTTP {status}); {LOGIN_HINT}")
        return DownloadError(f"{hub} answered HTTP {status} for {repo}; {again}")
    if isinstance(exc, HFValidationError):
        return DownloadError(
            f"'{repo}' is not a model id; use the form org/model, e.g. google/diffusiongemma-26B-A4B-it"
        )
    if isinstance(exc, OfflineModeIsEnabled):
        return DownloadError("huggingface_hub is in offline mode (HF_HUB_OFFLINE); unset it to pull models")
    # httpx or httpx2, whichever this huggingface_hub uses: both name their network failures TransportError
    if isinstance(exc, LocalEntryNotFoundError) or any(
        c.__name__ == "TransportError" for c in type(exc).__mro__
    ):
        return DownloadError(
            f"cannot reach {hub} ({_first_line(exc)}); check the connection or HF_ENDPOINT; {again}"
        )
    if isinstance(exc, OSError):
        return DownloadError(
            f"writing to {cache} failed ({_first_line(exc)}); free some space or set HF_HOME; {again}"
        )
    return DownloadError(f"pulling {repo} failed: {type(exc).__name__}: {_first_line(exc)}; {again}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
