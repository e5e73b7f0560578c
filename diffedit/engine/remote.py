"""``RemoteEngine``: a ``diffedit serve`` on another machine, behind the in-process engine's interface.

``rewrite(job, on_frame, cancel)`` sends the job (the document context and the shape-true templates, see
``diffedit.engine.wire``) as one streamed ``POST /v1/completions`` and hands each real intermediate canvas
to ``on_frame`` as it arrives; ``cancel`` closes the request (the server cancels the job at its next step).
Standard library only (urllib). Idempotent GETs are retried with backoff; a rewrite is never retried
(it is not idempotent without a seed, and a half-received stream says nothing about the server's state).
Nothing is sent anywhere unless the user named the server; the key (a Bearer header) is read from the
environment and never written.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException, HTTPResponse
from typing import Any

from diffedit.engine.types import Cancelled, CancelToken, EngineError, Frame, RewriteJob, RewriteResult
from diffedit.engine.wire import PROTOCOL, WireError, frame_from_json, job_to_json, result_from_json

CONNECT_TIMEOUT_S = 10.0  # a GET, or the wait for a stream's next line (a step is far shorter)
STEP_TIMEOUT_S = 300.0  # the longest wait for the next frame: a queued job waits for the one before it
GET_RETRIES = 3
BACKOFF_S = 0.5  # then doubled


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

    def __init__(self, url: str, api_key: str | None = None, key_env: str = "DIFFEDIT_API_KEY") -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.key_env = key_env
        self.name = "(not connected)"
        self.compile_error: str | None = None
        self.loaded = RemoteModel(RemoteContextFormat(""), None, None, False, 0)

    @classmethod
    def connect(cls, url: str, api_key: str | None = None, key_env: str = "DIFFEDIT_API_KEY") -> RemoteEngine:
        if not url.startswith(("http://", "https://")):
            raise EngineError(f"--server {url}: give a URL such as http://127.0.0.1:8040")
        engine = cls(url, api_key, key_env)
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
        if exc.code in (404, 405):
            return EngineError(
                f"{self.url} has no diffedit diffusion endpoint for {what} ({exc.code}): "
                "point --server at a `diffedit serve`"
            )
        return EngineError(f"the server at {self.url} refused {what} ({exc.code}): {message or exc.reason}")

    def _unreachable(self, exc: BaseException) -> EngineError:
        reason = getattr(exc, "reason", exc)
        return EngineError(
            f"cannot reach the server at {self.url} ({reason}): is `diffedit serve` running there?"
        )

    def _get(self, path: str) -> dict[str, Any]:
        """A GET, retried with backoff on connection failures (never on an answer such as 401 or 404)."""
        delay = BACKOFF_S
        for attempt in range(GET_RETRIES):
            request = urllib.request.Request(self.url + path, headers=self._headers())
            try:
                with urllib.request.urlopen(request, timeout=CONNECT_TIMEOUT_S) as response:
                    obj = json.loads(response.read())
                    if not isinstance(obj, dict):
                        raise EngineError(f"{self.url}{path} did not answer with a JSON object")
                    return obj
            except urllib.error.HTTPError as exc:
                raise self._explain(exc, f"GET {path}") from exc
            except (urllib.error.URLError, OSError, HTTPException) as exc:
                if attempt == GET_RETRIES - 1:
                    raise self._unreachable(exc) from exc
                time.sleep(delay)
                delay *= 2
            except ValueError as exc:
                raise EngineError(
                    f"{self.url}{path} did not answer with JSON: is it a `diffedit serve`?"
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
        headers = self._headers() | {"Content-Type": "application/json", "Accept": "application/x-ndjson"}
        request = urllib.request.Request(
            self.url + "/v1/completions", data=body, headers=headers, method="POST"
        )
        try:
            response: HTTPResponse = urllib.request.urlopen(request, timeout=STEP_TIMEOUT_S)
        except urllib.error.HTTPError as exc:
            raise self._explain(exc, "the rewrite") from exc
        except (urllib.error.URLError, OSError, HTTPException) as exc:
            raise self._unreachable(exc) from exc
        gone = EngineError(
            f"the server at {self.url} went away before the rewrite finished; nothing of it was kept"
        )
        with response:
            while True:
                if cancel is not None and cancel.cancelled:
                    raise Cancelled()  # leaving the with-block closes the stream: the server cancels the job
                try:
                    line = response.readline()
                except (TimeoutError, OSError, HTTPException) as exc:
                    raise gone from exc
                if not line:
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
