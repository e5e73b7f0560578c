"""The one bridge between the engine and Qt: a QThread that owns the model and runs one job at a time.

Data flows one way: the UI submits a job and gets a job id; the worker thread loads the model once, runs
jobs in order, and reports through queued signals. Frames are not queued per step: the engine's callback
drops each frame into a one-slot mailbox and the UI pulls the newest one on its own timer (coalescing
for free, at whatever rate it paints). Results of jobs the UI has moved on from are dropped here.
"""

from __future__ import annotations

import itertools
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal, Slot

import diffedit.qt_compat  # noqa: F401  (PySide6 6.12 on Python 3.11: see the module)
from diffedit.engine.context import follows_instructions
from diffedit.engine.types import (
    AlternativesFrame,
    BlockTemplate,
    Cancelled,
    CancelToken,
    EditRequest,
    EngineError,
    Frame,
    GenerationSettings,
    RewriteJob,
    RewriteResult,
    TokenReading,
)

if TYPE_CHECKING:
    from diffedit.engine.catalog import CatalogEntry as CatalogEntry  # the Models dialog's rows

FRAME_INTERVAL_S = 1 / 30
INSPECT_CONTEXT_CHARS = 8000  # text kept each side of a chunk read for confidence (the engine cuts further)


class EngineLike(Protocol):
    name: str

    @property
    def device(self) -> str: ...  # where it runs (a served model: "server HOST (DEVICE)")

    def rewrite(
        self,
        job: RewriteJob,
        on_frame: Callable[[Frame], None] | None = ...,
        cancel: CancelToken | None = ...,
        frame_interval_s: float = ...,
    ) -> RewriteResult: ...


Loader = Callable[..., EngineLike]


def default_loader(path: str | Path | None = None, **options: Any) -> EngineLike:
    """``Engine.load(path, **options)``: device, dtype, progress, trust_remote_code, fp8, compile_step,
    quantize, offload; with ``server=URL`` (and ``key_env``, ``key_in_keyring``) a ``RemoteEngine``
    instead."""
    if options.get("server"):
        return connect_server(
            options["server"],
            options.get("key_env", "DIFFEDIT_API_KEY"),
            bool(options.get("key_in_keyring")),
            options.get("progress"),
            options.get("protocol", "diffedit"),
            path,
        )
    # Imported here, on the worker thread: importing torch and transformers takes seconds.
    from diffedit.engine.engine import Engine

    # diffedit's own DiffusionGemma where it applies (bitwise transformers' results, without importing
    # transformers: ~2 s sooner ready on a CPU); the compiled step is built on transformers' classes.
    options.setdefault("impl", "transformers" if options.get("compile_step") else "auto")
    return Engine.load(path, **options)


def connect_server(
    url: str,
    key_env: str,
    key_in_keyring: bool,
    progress: Callable[[str], None] | None = None,
    protocol: str = "diffedit",
    tokenizer: str | Path | None = None,
) -> EngineLike:
    """A ``RemoteEngine`` on ``url`` (checked: reachable, the key taken, diffedit's protocol), or with
    ``protocol="vllm"`` a ``VllmEngine`` (the model folder ``tokenizer``, the bundled demo's when None, turns
    text into the ids vLLM takes), its messages in the app's words. The key comes from the keyring or
    ``$key_env``, on this (the worker) thread."""
    from diffedit.engine.remote import RemoteEngine
    from diffedit.server_key import key_hint, resolve_key

    if progress is not None:
        progress(f"Connecting to {url}…")
    if not url.startswith(("http://", "https://")):
        raise EngineError(f"the server {url!r} is not a URL: give one like http://gpu-box:8040 (Preferences)")
    key = resolve_key(url, key_env, key_in_keyring)
    hint = key_hint(url, key_env, key_in_keyring, key is not None)

    class AppRemoteEngine(RemoteEngine):
        """Its messages in the app's words (Preferences, not --server), from the first request on."""

        def __init__(self, url: str, api_key: str | None = None, key_env: str = "DIFFEDIT_API_KEY") -> None:
            super().__init__(url, api_key, key_env)
            self.option, self.key_hint = "the server in Edit ▸ Preferences", hint

    if protocol != "vllm":
        return AppRemoteEngine.connect(url, key, key_env)
    from diffedit.engine.vllm_client import DEFAULT_CHUNK_STEPS, LocalModelFiles, VllmEngine

    class AppVllmEngine(VllmEngine):
        """The same, in vLLM's protocol."""

        def __init__(
            self,
            url: str,
            files: LocalModelFiles,
            api_key: str | None = None,
            key_env: str = "DIFFEDIT_API_KEY",
            chunk_steps: int = DEFAULT_CHUNK_STEPS,
        ) -> None:
            super().__init__(url, files, api_key, key_env, chunk_steps)
            self.option, self.key_hint = "the server in Edit ▸ Preferences", hint

    files = LocalModelFiles.load(tokenizer or None)
    return AppVllmEngine.connect_vllm(url, key, key_env, files)


def check_model_folder(folder: str | Path) -> None:
    """Raise ``ModelLoadError`` (naming the problem) unless ``folder`` is a usable checkpoint."""
    from diffedit.engine.loader import inspect_checkpoint

    inspect_checkpoint(folder)


def is_demo_model(path: str | Path | None) -> bool:
    """Whether ``path`` (empty or None: the default) is the bundled demo model."""
    from diffedit.engine.catalog import is_demo_model as catalog_is_demo

    return catalog_is_demo(path)


def runs_demo_model(engine: EngineLike) -> bool:
    """Whether the loaded engine reads the bundled demo checkpoint (an engine that names no path: no); a
    served model says so itself (``demo_model`` in the server's /v1/models)."""
    served = getattr(getattr(engine, "loaded", None), "demo_model", None)
    if isinstance(served, bool):
        return served
    path = getattr(getattr(getattr(engine, "loaded", None), "info", None), "path", None)
    return path is not None and is_demo_model(path)


@dataclass(frozen=True)
class ModelSpec:
    path: str | None = None
    device: str | None = None
    dtype: str | None = None
    trust_remote_code: bool = False  # only for a model the user opted in for, after a warning
    fp8: bool = False
    compile_step: bool = False
    quantize: str = "none"  # "int8"/"int4": weights quantised while loading
    offload: str = "auto"  # "none": refuse a model that does not fit the GPU instead of splitting it
    server: str = ""  # a `diffedit serve` URL: rewrite there (the options above are the server's then)
    key_env: str = "DIFFEDIT_API_KEY"  # the variable holding its key, unless the keyring holds it
    key_in_keyring: bool = False
    protocol: str = "diffedit"  # the server's: "diffedit" (diffedit serve) or "vllm" (tokenizer: ``path``)


@dataclass
class _Ticket:
    job: RewriteJob
    cancel: CancelToken
    alternatives: int = 0  # above 0: that many candidates as one batch (an AlternativesResult)


@dataclass
class InspectJob:
    """Read ``text``'s ``spans`` (Python offsets), one after the other, each with the text around it."""

    job_id: int
    text: str
    spans: list[tuple[int, int]]
    cancel: CancelToken


@dataclass(frozen=True)
class ReadChunk:
    """One span read: where it starts (Python offset in the text read) and its tokens' readings."""

    job_id: int
    index: int
    start: int
    readings: tuple[TokenReading, ...]


def describe_failure(exc: BaseException) -> str:
    """One message a user can act on, whatever went wrong inside the engine."""
    if isinstance(exc, EngineError):
        return str(exc) or type(exc).__name__
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return "Out of memory: select less text, or use a smaller model."
    first = str(exc).splitlines()[0][:300] if str(exc) else ""
    return f"The model failed ({type(exc).__name__}{': ' + first if first else ''})."


class _Worker(QObject):
    """Lives on the worker thread; every slot runs there."""

    loadProgress = Signal(str)
    loaded = Signal(str, str, bool, bool)  # name, device, follows an instruction, is the bundled demo
    loadFailed = Signal(str)
    finished = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int)
    chunkRead = Signal(object)  # ReadChunk
    inspectEnded = Signal(int, str)  # job id, "" when every span was read, else why it stopped

    def __init__(self, loader: Loader, mailbox: _Mailbox) -> None:
        super().__init__()
        self._loader = loader
        self._mailbox = mailbox
        self.engine: EngineLike | None = None
        self.load_error = ""
        self._spec: ModelSpec | None = None

    @Slot(object)
    def load(self, spec: ModelSpec) -> None:
        if self.engine is not None:
            return
        extra: dict[str, Any] = {"trust_remote_code": True} if spec.trust_remote_code else {}
        # Only where asked for: loaders given by tests and older callers need not know these.
        extra.update({k: True for k in ("fp8", "compile_step") if getattr(spec, k)})
        if spec.quantize != "none":
            extra["quantize"] = spec.quantize
        if spec.offload != "auto":
            extra["offload"] = spec.offload
        if spec.server:  # only then: loaders given by tests need not know these
            extra.update(server=spec.server, key_env=spec.key_env, key_in_keyring=spec.key_in_keyring)
            if spec.protocol != "diffedit":
                extra["protocol"] = spec.protocol
        self._spec = spec
        try:
            self.engine = self._loader(
                spec.path, device=spec.device, dtype=spec.dtype, progress=self.loadProgress.emit, **extra
            )
        except Exception as exc:
            self.load_error = describe_failure(exc)
            self.loadFailed.emit(self.load_error)
            return
        self.load_error = ""
        where = str(getattr(self.engine, "device", "?"))
        why_uncompiled = getattr(self.engine, "compile_error", None)
        if why_uncompiled:  # asked for, and the compiler failed: say so where the model is named
            where += f" (compiled step off: {why_uncompiled})"
        name = str(getattr(self.engine, "name", "model"))
        self.loaded.emit(name, where, follows_instructions(self.engine), runs_demo_model(self.engine))

    @Slot()
    def unload(self) -> None:
        """Drop the model so the next ``load`` reads another one; memory goes back once nothing holds it."""
        self.engine = None
        import gc

        gc.collect()

    @Slot(object)
    def run(self, ticket: _Ticket) -> None:
        job_id = ticket.job.job_id
        if ticket.cancel.cancelled:
            self.cancelled.emit(job_id)
            return
        if self.engine is None:
            self.failed.emit(job_id, f"The model is not loaded: {self.load_error or 'unknown reason'}")
            return

        def on_frame(frame: Frame | AlternativesFrame) -> None:
            self._mailbox.put(frame)

        try:
            if ticket.alternatives:
                result: object = self.engine.alternatives(  # type: ignore[attr-defined]
                    ticket.job, ticket.alternatives, on_frame, ticket.cancel, FRAME_INTERVAL_S
                )
            else:
                result = self.engine.rewrite(
                    ticket.job, on_frame=on_frame, cancel=ticket.cancel, frame_interval_s=FRAME_INTERVAL_S
                )
        except Cancelled:
            self.cancelled.emit(job_id)
            return
        except Exception as exc:
            traceback.print_exc()
            self.failed.emit(job_id, describe_failure(exc) + self._reconnect_after(exc))
            return
        if ticket.cancel.cancelled:
            self.cancelled.emit(job_id)
        else:
            self.finished.emit(job_id, result)

    @Slot(object)
    def inspect(self, job: InspectJob) -> None:
        """Read the spans one by one, each reported at once (progressive); a cancel stops between canvases."""
        engine = self.engine
        if engine is None or not hasattr(engine, "inspect"):
            self.inspectEnded.emit(job.job_id, "the model is not loaded")
            return
        text, around = job.text, INSPECT_CONTEXT_CHARS
        try:
            for i, (a, b) in enumerate(job.spans):
                if job.cancel.cancelled:
                    raise Cancelled()
                request = EditRequest(text[max(0, a - around) : a], text[a:b], text[b : b + around])
                readings = engine.inspect(request, cancel=job.cancel)
                self.chunkRead.emit(ReadChunk(job.job_id, i, a, tuple(readings)))
        except Cancelled:
            self.inspectEnded.emit(job.job_id, "cancelled")
            return
        except Exception as exc:
            traceback.print_exc()
            self.inspectEnded.emit(job.job_id, describe_failure(exc) + self._reconnect_after(exc))
            return
        self.inspectEnded.emit(job.job_id, "")

    def _reconnect_after(self, exc: BaseException) -> str:
        """A server whose model changed since we connected (409): connect again, so the name, the demo badge
        and instruction following shown are the new model's (``loaded`` says them); a note for the message."""
        from diffedit.engine.remote import ServerModelChanged

        if not isinstance(exc, ServerModelChanged) or self._spec is None:
            return ""
        self.engine = None
        self.load(self._spec)
        return " diffedit connected to it again; run it again." if self.engine is not None else ""


class _Mailbox:
    """Newest frame wins; a lock because the engine writes from the worker thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: Frame | AlternativesFrame | None = None

    def put(self, frame: Frame | AlternativesFrame) -> None:
        with self._lock:
            # A final frame is never replaced by a late non-final one of the same job.
            if not (self._frame is not None and self._frame.final and self._frame.job_id == frame.job_id):
                self._frame = frame

    def take(self, job_id: int) -> Frame | AlternativesFrame | None:
        with self._lock:
            frame, self._frame = self._frame, None
        return frame if frame is not None and frame.job_id == job_id else None


class EngineBridge(QObject):
    """The UI thread's handle on the engine. Never blocks: everything heavy happens on the worker thread."""

    modelLoading = Signal(str)
    modelLoaded = Signal(str, str)  # name, device
    modelFailed = Signal(str)
    jobFinished = Signal(int, object)  # job id, RewriteResult
    jobFailed = Signal(int, str)
    jobCancelled = Signal(int)
    chunkRead = Signal(object)  # ReadChunk of the current inspection
    inspectEnded = Signal(int, str)  # inspection id, "" when complete, else why it stopped

    _requestLoad = Signal(object)
    _requestUnload = Signal()
    _requestRun = Signal(object)
    _requestInspect = Signal(object)

    def __init__(self, loader: Loader | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._mailbox = _Mailbox()
        self._thread = QThread()
        self._thread.setObjectName("diffedit-engine")
        self._worker = _Worker(loader or default_loader, self._mailbox)
        self._worker.moveToThread(self._thread)
        self._requestLoad.connect(self._worker.load)
        self._requestUnload.connect(self._worker.unload)
        self._requestRun.connect(self._worker.run)
        self._requestInspect.connect(self._worker.inspect)
        self._worker.chunkRead.connect(self._on_chunk_read)
        self._worker.inspectEnded.connect(self._on_inspect_ended)
        self._inspection: InspectJob | None = None
        self._worker.loadProgress.connect(self.modelLoading)
        self._worker.loaded.connect(self._on_loaded)
        self._worker.loadFailed.connect(self._on_load_failed)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._worker.cancelled.connect(self._on_cancelled)
        self._thread.start()
        self._spec: ModelSpec | None = None
        self.state = "unloaded"  # unloaded | loading | ready | failed
        self.model_name = ""
        self.device = ""
        self.error = ""
        self.follows_instructions = True  # known once a model is loaded
        self.demo_model = False  # the loaded model is the bundled demo (writes nonsense)
        self._current: _Ticket | None = None

    # -- model -------------------------------------------------------------------------------------
    def load(self, spec: ModelSpec | None = None) -> None:
        """Start loading (once); a failed load is tried again on the next call."""
        if self.state in ("loading", "ready"):
            return
        self._spec = spec or self._spec or ModelSpec()
        self.state = "loading"
        self._requestLoad.emit(self._spec)

    def switch_model(self, spec: ModelSpec) -> None:
        """Stop any job, unload the model and load ``spec`` (queued in order on the worker thread)."""
        self.cancel()
        self._spec = spec
        self.state = "loading"
        self._requestUnload.emit()
        self._requestLoad.emit(spec)

    @Slot(str, str, bool, bool)
    def _on_loaded(self, name: str, device: str, instructions: bool, demo: bool) -> None:
        self.state, self.model_name, self.device, self.error = "ready", name, device, ""
        self.follows_instructions, self.demo_model = instructions, demo
        self.modelLoaded.emit(name, device)

    @Slot(str)
    def _on_load_failed(self, message: str) -> None:
        self.state, self.error, self.demo_model = "failed", message, False
        self.modelFailed.emit(message)

    # -- jobs --------------------------------------------------------------------------------------
    def submit(
        self,
        request: EditRequest,
        settings: GenerationSettings,
        templates: tuple[BlockTemplate, ...] | None = None,
        polish: float | None = None,
    ) -> int:
        """Queue a job (cancelling the one in flight, and any inspection: a rewrite goes first) and return
        its id; ``templates``: shape-true blocks; ``polish``: re-fill only tokens less likely than this."""
        self.cancel()
        self.cancel_inspection()
        if self.state in ("unloaded", "failed"):
            self.load()
        job_id = next(self._ids)
        self._current = _Ticket(
            RewriteJob(request, settings, job_id, templates, polish=polish), CancelToken()
        )
        self._requestRun.emit(self._current)
        return job_id

    def submit_alternatives(self, job: RewriteJob, count: int) -> int:
        """Queue ``count`` candidates of ``job`` as one batch (cancelling the job in flight); ``jobFinished``
        then carries an ``AlternativesResult`` and :meth:`take_alternatives` its frames."""
        self.cancel()
        if self.state in ("unloaded", "failed"):
            self.load()
        job_id = next(self._ids)
        job = RewriteJob(job.request, job.settings, job_id, job.templates)
        self._current = _Ticket(job, CancelToken(), alternatives=count)
        self._requestRun.emit(self._current)
        return job_id

    def take_alternatives(self, job_id: int) -> AlternativesFrame | None:
        """The newest frame of the candidates of ``job_id`` since the last call, or None."""
        frame = self._mailbox.take(job_id)
        return frame if isinstance(frame, AlternativesFrame) else None

    def cancel(self, job_id: int | None = None) -> None:
        """Ask the current job (or job ``job_id`` if it is current) to stop after its current step."""
        if self._current is not None and (job_id is None or self._current.job.job_id == job_id):
            self._current.cancel.cancel()

    @property
    def current_job(self) -> int | None:
        return self._current.job.job_id if self._current is not None else None

    def take_frame(self, job_id: int) -> Frame | None:
        """The newest frame of ``job_id`` since the last call, or None."""
        frame = self._mailbox.take(job_id)
        return frame if isinstance(frame, Frame) else None

    def _is_current(self, job_id: int) -> bool:
        return self._current is not None and self._current.job.job_id == job_id

    def _done(self, job_id: int) -> None:
        if self._is_current(job_id):
            self._current = None

    @Slot(int, object)
    def _on_finished(self, job_id: int, result: Any) -> None:
        if self._is_current(job_id) and not self._current.cancel.cancelled:  # type: ignore[union-attr]
            self._done(job_id)
            self.jobFinished.emit(job_id, result)
        elif self._is_current(job_id):
            self._done(job_id)
            self.jobCancelled.emit(job_id)

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        if self._is_current(job_id):
            self._done(job_id)
            self.jobFailed.emit(job_id, message)

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        if self._is_current(job_id):
            self._done(job_id)
        self.jobCancelled.emit(job_id)

    # -- inspections (the confidence view) ----------------------------------------------------------
    def inspect(self, text: str, spans: list[tuple[int, int]]) -> int:
        """Read ``text``'s spans (Python offsets) in the background, reported one by one as ``chunkRead``;
        replaces any inspection in flight. Returns its id."""
        self.cancel_inspection()
        if self.state in ("unloaded", "failed"):
            self.load()
        self._inspection = InspectJob(next(self._ids), text, spans, CancelToken())
        self._requestInspect.emit(self._inspection)
        return self._inspection.job_id

    def cancel_inspection(self) -> None:
        if self._inspection is not None:
            self._inspection.cancel.cancel()
            self._inspection = None

    @property
    def current_inspection(self) -> int | None:
        return self._inspection.job_id if self._inspection is not None else None

    @Slot(object)
    def _on_chunk_read(self, chunk: ReadChunk) -> None:
        if self._inspection is not None and chunk.job_id == self._inspection.job_id:
            self.chunkRead.emit(chunk)

    @Slot(int, str)
    def _on_inspect_ended(self, job_id: int, why: str) -> None:
        if self._inspection is not None and job_id == self._inspection.job_id:
            self._inspection = None
            self.inspectEnded.emit(job_id, why)

    def shutdown(self, wait_ms: int = 10_000) -> None:
        """Cancel the job in flight and stop the thread (called on quit)."""
        self.cancel()
        self.cancel_inspection()
        self._thread.quit()
        self._thread.wait(wait_ms)


# -- finding and fetching checkpoints, off the UI thread ---------------------------------------------------


class _PoolCall(QRunnable):
    """Runs ``work`` on Qt's thread pool; ``owner``'s signals carry the outcome back (queued to the UI)."""

    def __init__(self, work: Callable[[], object], owner: BackgroundCall) -> None:
        super().__init__()
        self._work, self._owner = work, owner  # the reference keeps the owner alive until the work ends

    def run(self) -> None:
        try:
            result = self._work()
        except Cancelled:
            self._owner.cancelled.emit()
        except Exception as exc:
            self._owner.failed.emit(describe_failure(exc))
        else:
            self._owner.done.emit(result)


class BackgroundCall(QObject):
    """One call on a pool thread: ``done`` with its result, ``failed`` with a message, or ``cancelled``."""

    done = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def _start(self, work: Callable[[], object]) -> None:
        QThreadPool.globalInstance().start(_PoolCall(work, self))


class CheckpointScan(BackgroundCall):
    """Every checkpoint on this machine (hub cache, the user's folders, the demo) as ``done(list)``."""

    def start(self, folders: list[str]) -> None:
        def scan() -> list[CatalogEntry]:
            from diffedit.engine.catalog import find_checkpoints

            return find_checkpoints(folders)

        self._start(scan)


class ModelDownload(BackgroundCall):
    """Pull ``repo`` into the hub cache: ``progress(done, total, bytes_per_s)``, then ``done(snapshot)``."""

    progress = Signal(object, object, float)  # Python ints: a checkpoint's bytes overflow a C int

    def __init__(self, repo: str, revision: str = "main", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.repo, self.revision = repo, revision
        self._cancel = CancelToken()

    def start(self) -> None:
        def pull() -> str:
            from diffedit.engine.download import pull_model

            folder = pull_model(self.repo, self.revision, progress=self.progress.emit, cancel=self._cancel)
            return str(folder)

        self._start(pull)

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.cancelled

    def cancel(self) -> None:
        """Stop at the next bytes received; the files finished so far stay in the cache for the next pull."""
        self._cancel.cancel()
