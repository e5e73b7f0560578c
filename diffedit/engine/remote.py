"""``RemoteEngine``: a ``diffedit serve`` on another machine, behind the in-process engine's interface.

``rewrite(job, on_frame, cancel)`` sends the job (the document context and the shape-true templates, see
``diffedit.engine.wire``) as one streamed ``POST /v1/completions`` and hands each real intermediate canvas
to ``on_frame`` as it arrives; ``cancel`` closes the request (the server cancels the job at its next step).
Standard library only (urllib). Idempotent GETs are retried with backoff; a rewrite is never retried
(it is not idempotent without a seed, and a half-received stream says nothing about the server's state).
Nothing is sent anywhere unless the user named the server; the key (a Bearer header) is read from the
environment (or, in the app, the system keyring) and never written.

``alternatives`` and ``inspect`` run the batch of candidates and the read-only pass there
(``POST /v1/alternatives``, ``POST /v1/inspect``). The client never tokenizes: the server turns the text
into tokens and sends back decoded pieces, spans and readings. What a model change on the server would put
at risk is the client's picture of it (name, demo badge, instruction following, readings already shown):
every POST carries the tokenizer fingerprint seen at ``connect`` and a server whose model changed since
answers 409 (``ServerModelChanged``), which the app answers by connecting again. A backend that does
tokenize locally (a seed canvas of token ids) checks its copy with ``check_local_tokenizer``.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException, HTTPResponse
from pathlib import Path
from typing import Any

from diffedit.engine.types import (
    AlternativesFrame,
    AlternativesResult,
    Cancelled,
    CancelToken,
    EditRequest,
    EngineError,
    Frame,
    RewriteJob,
    RewriteResult,
    TokenReading,
)
from diffedit.engine.wire import (
    PROTOCOL,
    WireError,
    alternatives_frame_from_json,
    alternatives_result_from_json,
    frame_from_json,
    inspect_to_json,
    job_to_json,
    readings_from_json,
    result_from_json,
)

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


class ServerModelChanged(EngineError):
    """The server answered 409: it serves a model with another tokenizer than when the client connected."""


@dataclass(frozen=True)
class ServerFacts:
    """What ``/v1/models`` says beyond ``RemoteModel``: where the model runs, the POST endpoints the server
    offers (an older server lacks some) and its tokenizer's fingerprint (SHA-256 of tokenizer.json)."""

    device: str = ""
    endpoints: tuple[str, ...] = ("/v1/completions",)
    tokenizer_sha256: str | None = None

    @classmethod
    def from_json(cls, m: dict[str, Any]) -> ServerFacts:
        endpoints = m.get("endpoints")
        return cls(
            str(m.get("device") or ""),
            tuple(str(e) for e in endpoints) if isinstance(endpoints, list) else ("/v1/completions",),
            None if m.get("tokenizer_sha256") is None else str(m["tokenizer_sha256"]),
        )


class RemoteEngine:
    """A served model. ``connect`` checks the server and its protocol; ``rewrite`` runs one job there."""

    def __init__(self, url: str, api_key: str | None = None, key_env: str = "DIFFEDIT_API_KEY") -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.key_env = key_env
        self.name = "(not connected)"
        self.compile_error: str | None = None
        self.loaded = RemoteModel(RemoteContextFormat(""), None, None, False, 0)
        self.facts = ServerFacts()
        self.option = "--server"  # what the messages tell the user to point elsewhere (the app: Preferences)
        self.key_hint: str | None = None  # where the key comes from, when not $key_env (the app's keyring)

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
                "it is not a `diffedit serve` (a plain OpenAI-compatible server cannot denoise in place); "
                f"point {engine.option} at a `diffedit serve`"
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
        engine.facts = ServerFacts.from_json(m)
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
                self.key_hint or f"check ${self.key_env}"
                if self.api_key
                else self.key_hint or f"set ${self.key_env} (or name another with --api-key-env)"
            )
            return EngineError(f"the server at {self.url} refused the API key (401): {how}")
        if exc.code in (404, 405):
            return EngineError(
                f"{self.url} has no diffedit diffusion endpoint for {what} ({exc.code}): "
                f"point {self.option} at a `diffedit serve`"
            )
        if exc.code == 409:
            return ServerModelChanged(f"the server at {self.url} refused {what}: {message}")
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
        body = json.dumps(job_to_json(job) | {"stream": True} | self._expected()).encode("utf-8")
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

    # -- alternatives, the read-only pass, and what the client checks ------------------------------------

    @property
    def host(self) -> str:
        """``host:port`` of the server, for the status bar."""
        return urllib.parse.urlsplit(self.url).netloc or self.url

    @property
    def device(self) -> str:
        """Where the model runs, as the status bar says it: ``server HOST (DEVICE)``."""
        return f"server {self.host}" + (f" ({self.facts.device})" if self.facts.device else "")

    def _expected(self) -> dict[str, Any]:
        """The tokenizer this client connected to, sent with every POST (409 if the server's changed)."""
        fp = self.facts.tokenizer_sha256
        return {} if fp is None else {"tokenizer": fp}

    def _offers(self, path: str, what: str) -> None:
        if path not in self.facts.endpoints:
            raise EngineError(
                f"the server at {self.url} does not offer {what} ({path}): it runs an older "
                "`diffedit serve`; update it there"
            )

    def _post_lines(self, path: str, body: dict[str, Any], what: str) -> HTTPResponse:
        data = json.dumps(body | self._expected()).encode("utf-8")
        headers = self._headers() | {"Content-Type": "application/json", "Accept": "application/x-ndjson"}
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method="POST")
        try:
            response: HTTPResponse = urllib.request.urlopen(request, timeout=STEP_TIMEOUT_S)
        except urllib.error.HTTPError as exc:
            raise self._explain(exc, what) from exc
        except (urllib.error.URLError, OSError, HTTPException) as exc:
            raise self._unreachable(exc) from exc
        return response

    def _next_object(self, response: HTTPResponse, what: str) -> dict[str, Any]:
        gone = EngineError(
            f"the server at {self.url} went away before {what} finished; nothing of it was kept"
        )
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
        if not isinstance(obj, dict):
            raise EngineError(f"the server at {self.url} sent a line that is not a JSON object")
        return obj

    def alternatives(
        self,
        job: RewriteJob,
        count: int,
        on_frame: Callable[[AlternativesFrame], None] | None = None,
        cancel: CancelToken | None = None,
        frame_interval_s: float = 0.0,
    ) -> AlternativesResult:
        """``count`` candidates of ``job`` as one batch on the server, each batched step to ``on_frame``;
        ``cancel`` closes the stream (the server cancels the batch at its next step)."""
        self._offers("/v1/alternatives", "alternatives")
        body = job_to_json(job) | {"count": count, "stream": True}
        with self._post_lines("/v1/alternatives", body, "the alternatives") as response:
            while True:
                if cancel is not None and cancel.cancelled:
                    raise Cancelled()  # leaving the with-block closes the stream
                obj = self._next_object(response, "the alternatives")
                kind = obj.get("type")
                try:
                    if kind == "alternatives_frame":
                        if on_frame is not None:
                            on_frame(alternatives_frame_from_json(obj))
                    elif kind == "alternatives_result":
                        return alternatives_result_from_json(obj)
                    elif kind == "error":
                        raise EngineError(
                            f"the server could not write alternatives: {obj.get('message', '')}"
                        )
                except (WireError, KeyError, TypeError, ValueError) as exc:
                    raise EngineError(
                        f"the server at {self.url} sent alternatives out of protocol: {exc}"
                    ) from exc

    def inspect(
        self,
        request: EditRequest,
        top_k: int = 5,
        context_tokens: int = 1024,
        cancel: CancelToken | None = None,
    ) -> tuple[TokenReading, ...]:
        """The server's reading of ``request.target`` in its context (``Engine.inspect`` there)."""
        if cancel is not None and cancel.cancelled:
            raise Cancelled()
        self._offers("/v1/inspect", "the confidence reading")
        body = inspect_to_json(request, top_k, context_tokens)
        with self._post_lines("/v1/inspect", body, "the confidence reading") as response:
            try:
                obj = json.loads(response.read())
                return readings_from_json(obj)
            except (TimeoutError, OSError, HTTPException) as exc:
                raise EngineError(
                    f"the server at {self.url} went away before the reading finished; nothing was changed"
                ) from exc
            except (ValueError, AttributeError) as exc:  # WireError is a ValueError
                raise EngineError(f"the server at {self.url} sent a reading out of protocol: {exc}") from exc

    def check_local_tokenizer(self, folder: str | Path) -> None:
        """Raise ``EngineError`` unless ``folder``'s tokenizer.json is the one the server uses.

        For a client that turns text into token ids itself (a seed canvas sent as ids): there a differing
        tokenizer would pin the wrong tokens. The diffedit-1 client sends text only and needs no local copy.
        """
        local_path = Path(folder) / "tokenizer.json"
        try:
            local = hashlib.sha256(local_path.read_bytes()).hexdigest()
        except OSError as exc:
            raise EngineError(
                f"no local tokenizer to compare: cannot read {local_path} ({exc.strerror})"
            ) from exc
        served = self.facts.tokenizer_sha256
        if served is None:
            raise EngineError(
                f"the server at {self.url} does not say which tokenizer it uses (no tokenizer_sha256): "
                "update `diffedit serve` there, or do not use a local tokenizer with it"
            )
        if served != local:
            raise EngineError(
                f"the server at {self.url} serves {self.name} with another tokenizer than {local_path} "
                f"({served[:12]} there, {local[:12]} here): token ids made here would mean other text there; "
                "use the same checkpoint on both sides"
            )
