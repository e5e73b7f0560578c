"""``RemoteEngine``: a ``diffedit serve`` on another machine, behind the in-process engine's interface.

``rewrite(job, on_frame, cancel)`` sends the job (the document context and the shape-true templates, see
``diffedit.engine.wire``) as one streamed ``POST /v1/completions`` and hands each real intermediate canvas
to ``on_frame`` as it arrives; ``cancel`` closes the request (the server cancels the job at its next step).
Standard library only (``diffedit.engine.transport``: timeouts for the connection, an answer and a
stream's silence). Idempotent GETs are retried with backoff and jitter (a failed connection, a timeout, a
5xx); a rewrite is retried only when it certainly did not start (the connection failed, or the server said
503: its queue is full), never once it was sent (it is not idempotent without a seed, and a half-received
stream says nothing about the server's state).
Nothing is sent anywhere unless the user named the server; the key (a Bearer header) is read from the
environment and never written.
"""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any

from diffedit.engine.transport import (
    RETRY_STATUSES,
    Backoff,
    CloseOnCancel,
    Exchange,
    NotSent,
    Timeouts,
    pause,
    retry_after,
)
from diffedit.engine.types import Cancelled, CancelToken, EngineError, Frame, RewriteJob, RewriteResult
from diffedit.engine.wire import PROTOCOL, WireError, frame_from_json, job_to_json, result_from_json


@dataclass(frozen=True)
class RemoteContextFormat:
    name: str


@dataclass(frozen=True)
class RemoteModel:
    """What the CLI reads of ``Engine.loaded``, as the server reports it."""

    context_format: RemoteContextFormat
    quantization: str | None
    weight_bytes: int | None
    demo_model: bool
    canvas_length: int


class RemoteEngine:
    """A served model. ``connect`` checks the server and its protocol; ``rewrite`` runs one job there."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        key_env: str = "DIFFEDIT_API_KEY",
        timeouts: Timeouts | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.key_env = key_env
        self.timeouts = timeouts or Timeouts()
        self.backoff = backoff or Backoff()
        self.name = "(not connected)"
        self.compile_error: str | None = None
        self.loaded = RemoteModel(RemoteContextFormat(""), None, None, False, 0)

    @classmethod
    def connect(
        cls,
        url: str,
        api_key: str | None = None,
        key_env: str = "DIFFEDIT_API_KEY",
        timeouts: Timeouts | None = None,
        backoff: Backoff | None = None,
    ) -> RemoteEngine:
        if not url.startswith(("http://", "https://")):
            raise EngineError(f"--server {url}: give a URL such as http://127.0.0.1:8040")
        engine = cls(url, api_key, key_env, timeouts, backoff)
        models = engine._get("/v1/models")
        data = models.get("data") or []
        if models.get("protocol") != PROTOCOL or not data:
            raise EngineError(
                f"{engine.url} answers /v1/models but not with diffedit's diffusion protocol ({PROTOCOL}): "
                "point --server at a `diffedit serve`"
            )
        m = data[0]
        engine.name = str(m["id"])
        engine.loaded = RemoteModel(
            RemoteContextFormat(str(m.get("context_format", ""))),
            m.get("quantization"),
            m.get("weight_bytes"),
            bool(m.get("demo_model", False)),
            int(m.get("canvas_length", 0)),
        )
        return engine

    # -- HTTP ------------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "diffedit"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _explain(self, exc: urllib.error.HTTPError, what: str) -> EngineError:
        try:
            message = str(json.loads(exc.read() or b"{}").get("error", {}).get("message", ""))
        except (ValueError, AttributeError, OSError):
            message = ""
        if exc.code == 401:
            how = (
                f"check ${self.key_env}"
                if self.api_key
                else f"set ${self.key_env} (or name another with --api-key-env)"
            )
            return EngineError(f"the server at {self.url} refused the API key (401): {how}")
        if exc.code == 503:
            return EngineError(
                f"the server at {self.url} is busy (503: {message or exc.reason}); nothing was started "
                "there: try again in a moment (its queue limit is `diffedit serve --max-queue`)"
            )
        if exc.code in (404, 405):
            return EngineError(
                f"{self.url} has no diffedit diffusion endpoint for {what} ({exc.code}): "
                "point --server at a `diffedit serve`"
            )
        return EngineError(f"the server at {self.url} refused {what} ({exc.code}): {message or exc.reason}")

    def _unreachable(self, exc: BaseException) -> EngineError:
        reason = getattr(exc, "reason", exc)
        tries = f"{self.backoff.tries} tries, " if self.backoff.tries > 1 else ""
        return EngineError(
            f"cannot reach the server at {self.url} ({tries}{reason}): is `diffedit serve` running there?"
        )

    def _no_answer(self, exc: BaseException, what: str) -> EngineError:
        if isinstance(exc, TimeoutError):
            return EngineError(
                f"the server at {self.url} took the connection but did not answer {what} within "
                f"{self.timeouts.read_s:g} s ({self.backoff.tries} tries): it may be overloaded or stuck"
            )
        return EngineError(
            f"the server at {self.url} dropped the connection before answering {what} "
            f"({self.backoff.tries} tries; {exc or type(exc).__name__})"
        )

    def _get(self, path: str) -> dict[str, Any]:
        """A GET, retried with backoff and jitter on a failed connection, a timeout, a dropped connection or
        a 5xx (never on an answer such as 401 or 404, which another try would not change)."""
        last = self.backoff.tries - 1
        for attempt in range(self.backoff.tries):
            try:
                with Exchange(self.url, "GET", path, self._headers(), self.timeouts) as exchange:
                    raw = exchange.response.read()
            except urllib.error.HTTPError as exc:
                if exc.code in RETRY_STATUSES and attempt < last:
                    pause(self.backoff.delay(attempt, retry_after(exc.headers)))
                    continue
                raise self._explain(exc, f"GET {path}") from exc
            except NotSent as exc:
                if attempt == last:
                    raise self._unreachable(exc) from exc
                pause(self.backoff.delay(attempt))
                continue
            except (OSError, HTTPException) as exc:  # sent, but no (whole) answer: a GET may be sent again
                if attempt == last:
                    raise self._no_answer(exc, f"GET {path}") from exc
                pause(self.backoff.delay(attempt))
                continue
            try:
                obj = json.loads(raw)
            except ValueError as exc:
                raise EngineError(
                    f"{self.url}{path} did not answer with JSON: is it a `diffedit serve`?"
                ) from exc
            if not isinstance(obj, dict):
                raise EngineError(f"{self.url}{path} did not answer with a JSON object")
            return obj
        raise AssertionError("unreachable")

    def _post_stream(self, body: bytes, cancel: CancelToken | None) -> Exchange:
        """``POST /v1/completions``, retried only where it certainly did not start: the connection failed,
        or the server answered 503 (queue full; it honours ``Retry-After``)."""
        headers = self._headers() | {"Content-Type": "application/json", "Accept": "application/x-ndjson"}
        last = self.backoff.tries - 1
        for attempt in range(self.backoff.tries):
            if cancel is not None and cancel.cancelled:
                raise Cancelled()
            try:
                return Exchange(self.url, "POST", "/v1/completions", headers, self.timeouts, body)
            except urllib.error.HTTPError as exc:
                if exc.code == 503 and attempt < last:
                    pause(self.backoff.delay(attempt, retry_after(exc.headers)), cancel)
                    continue
                raise self._explain(exc, "the rewrite") from exc
            except NotSent as exc:
                if attempt == last:
                    raise self._unreachable(exc) from exc
                pause(self.backoff.delay(attempt), cancel)
            except (OSError, HTTPException) as exc:  # it was sent: it may have started, so no second try
                raise EngineError(
                    f"the server at {self.url} did not answer the rewrite ({exc or type(exc).__name__}); "
                    "it was not sent again, and nothing of it was kept"
                ) from exc
        raise AssertionError("unreachable")

    # -- the engine's interface --------------------------------------------------------------------------

    def rewrite(
        self,
        job: RewriteJob,
        on_frame: Callable[[Frame], None] | None = None,
        cancel: CancelToken | None = None,
        frame_interval_s: float = 0.0,
    ) -> RewriteResult:
        """Run ``job`` on the server. Raises ``Cancelled`` when ``cancel`` fires (the request is closed),
        ``EngineError`` when the server is unreachable, refuses the job, or goes away before the result."""
        body = json.dumps(job_to_json(job) | {"stream": True}).encode("utf-8")
        exchange = self._post_stream(body, cancel)
        gone = EngineError(
            f"the server at {self.url} went away before the rewrite finished; nothing of it was kept"
        )
        response = exchange.response
        exchange.sock.settimeout(self.timeouts.stall_s)
        watcher = None if cancel is None else CloseOnCancel(exchange.sock, lambda: cancel.cancelled)
        with exchange:  # leaving it closes the stream: the server cancels the job at its next step
            try:
                while True:
                    if cancel is not None and cancel.cancelled:
                        raise Cancelled()
                    try:
                        line = response.readline()
                    except TimeoutError as exc:
                        raise EngineError(
                            f"the server at {self.url} sent nothing for {self.timeouts.stall_s:g} s in the "
                            "middle of the rewrite (stalled); it was stopped, and nothing of it was kept"
                        ) from exc
                    except (OSError, HTTPException) as exc:
                        if cancel is not None and cancel.cancelled:
                            raise Cancelled() from exc
                        raise gone from exc
                    if not line:
                        if cancel is not None and cancel.cancelled:
                            raise Cancelled()  # the watcher shut the socket
                        raise gone
                    try:
                        obj = json.loads(line)
                    except ValueError as exc:
                        raise EngineError(f"the server at {self.url} sent a line that is not JSON") from exc
                    kind = obj.get("type")
                    if kind == "frame":
                        if on_frame is not None:
                            on_frame(frame_from_json(obj))
                    elif kind == "result":
                        try:
                            return result_from_json(obj)
                        except WireError as exc:
                            raise EngineError(str(exc)) from exc
                    elif kind == "error":
                        raise EngineError(f"the server could not rewrite: {obj.get('message', '')}")
                    # "queued" (the job waits its turn) and any newer line: alive, nothing to show
            finally:
                if watcher is not None:
                    watcher.stop()
