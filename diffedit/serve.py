"""``diffedit serve``: the project's own engine behind HTTP, for a small team's GPU box and for the tests.

Standard library only (``http.server``). One engine, one lock: jobs run one at a time, in arrival order;
at most ``--max-queue`` completions wait (one more is answered 503 with ``Retry-After``, before anything
started), and a waiting or running completion whose client left is dropped (``diffedit.serve_limits``).

- ``GET /health``: ``{"status": "ok", "model": NAME}``.
- ``GET /v1/models``: the model, its canvas length, context format and ``"protocol": "diffedit-1"``.
- ``POST /v1/completions``: a job in ``diffedit.engine.wire``'s shape (the document context as
  ``prompt``: prefix, target, suffix, instruction; ``settings``; the shape-true ``templates``). Without
  ``stream``: one JSON result. With ``"stream": true``: newline-delimited JSON, one ``{"type": "frame"}``
  per denoising step (the real intermediate canvas), then ``{"type": "result"}`` or ``{"type": "error"}``.
  While the job waits its turn, ``{"type": "queued", "position": N}`` every few seconds. Closing the
  connection cancels its job at the next step (streamed or not); the server goes on serving.

- ``POST /v1/alternatives``: a job as for completions plus ``"count": K`` (1-8): K candidates denoised as one
  batch. With ``"stream": true``: one ``{"type": "alternatives_frame"}`` per batched step (every candidate's
  latest canvas, ``null`` before its first), then ``{"type": "alternatives_result"}`` (``seed``,
  ``candidates``: K results, ``forwards``, ``encodes``, ``total_s``) or ``{"type": "error"}``.
- ``POST /v1/inspect``: ``{"prompt": {prefix, target, suffix}, "top_k", "context_tokens"}``: the
  read-only pass (the confidence view, ``diffedit inspect``): ``{"object": "inspection", "model",
  "readings": [{"token_id", "start", "end", "p", "entropy", "top": [[text, p], ...]}]}``, spans in the
  target's characters.

``/v1/models`` also reports ``demo_model`` (the bundled demo, whose text is nonsense), ``device``,
``endpoints`` (the POST endpoints above) and ``tokenizer_sha256`` (SHA-256 of the checkpoint's
``tokenizer.json``; null without one). A POST may carry ``"tokenizer": SHA`` (the fingerprint the client
saw when it connected): when it is not the served one, the server answers 409 and runs nothing, so a
client never mixes the readings or the model facts of one model with another's after a restart.
``/health`` also says ``demo_model``, and ``jobs``: ``{"running": 0|1, "waiting": N, "max_waiting": M}``.

With ``--api-key-env VAR`` every request needs ``Authorization: Bearer $VAR`` (401 otherwise). The key
is read from the environment once and never written anywhere.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffedit.engine.transport import HEARTBEAT_S
from diffedit.engine.types import MAX_ALTERNATIVES, Cancelled, EngineError, Frame
from diffedit.engine.vllm_wire import (
    CompletionRequest,
    completion_answer,
    is_completion_body,
    parse_completion_request,
)
from diffedit.engine.wire import (
    PROTOCOL,
    WireError,
    alternatives_frame_to_json,
    alternatives_result_to_json,
    frame_to_json,
    inspect_from_json,
    job_from_json,
    readings_to_json,
    result_to_json,
)
from diffedit.serve_limits import ClientWatch, JobLimits, JobQueue, Ticket, check_line_starts

if TYPE_CHECKING:
    from diffedit.engine.engine import Engine

MAX_BODY = 16 * 1024 * 1024  # a document and its templates; more is refused with 413
MAX_QUEUE = 16  # jobs waiting behind the running one; --max-queue
POST_ENDPOINTS = ("/v1/completions", "/v1/alternatives", "/v1/inspect")


def tokenizer_fingerprint(folder: Path | None) -> str | None:
    """SHA-256 of ``folder/tokenizer.json`` (None without one): two checkpoints with the same fingerprint
    turn text into the same token ids."""
    if folder is None:
        return None
    try:
        return hashlib.sha256((Path(folder) / "tokenizer.json").read_bytes()).hexdigest()
    except OSError:
        return None


class DiffeditServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        engine: Engine,
        api_key: str | None,
        demo: bool,
        max_queue: int | None = MAX_QUEUE,
        limits: JobLimits | None = None,
    ) -> None:
        super().__init__(address, Handler)
        self.engine = engine
        self.api_key = api_key
        self.demo = demo
        self.lock = threading.Lock()  # one job at a time on the one engine
        self.limits = limits or JobLimits()
        self.queue = JobQueue(max_queue, self.lock)  # completions take the lock through it, in arrival order
        info = getattr(getattr(engine, "loaded", None), "info", None)
        self.tokenizer_sha256 = tokenizer_fingerprint(getattr(info, "path", None))


class CompletionsMixin:
    """``POST /v1/completions`` with a vLLM-protocol body (:mod:`diffedit.engine.vllm_wire`): the diffusion
    fields run on the engine with vLLM's semantics (:mod:`diffedit.engine.completions`). With
    ``"stream": true``, server-sent events: with ``"diffedit_frames": true`` first one
    ``{"object": "diffedit.frame"}`` event per denoising step (the extension vLLM lacks), then the completion,
    then ``[DONE]``. Closing the stream cancels the request at its next step."""

    server: DiffeditServer

    def _completion(self, body: dict[str, Any]) -> None:
        from diffedit.engine.completions import run_completion, unsupported

        handler: Any = self
        engine = self.server.engine
        vocab = int(engine.model.config.text_config.vocab_size)
        try:
            request = parse_completion_request(
                body,
                engine.canvas_length,
                vocab,
                lambda text: engine.tokenizer.encode(text, add_special_tokens=False),
            )
            self.server.limits.check(request.max_steps, request.max_tokens, len(request.prompt_ids))
            why = unsupported(request)
            if why is not None:
                raise WireError(why)
        except ValueError as exc:
            handler._error(400, str(exc))
            return
        if request.stream:
            self._completion_stream(request)
            return
        ticket = take_place(handler)
        if ticket is None:
            return
        watch = ClientWatch(handler.connection)
        with engine_turn(handler, ticket, watch) as running:
            if not running:
                return
            try:
                out = run_completion(engine, request, None, watch)
            except Cancelled:
                handler.log_message("completion cancelled: the client left")
                handler.close_connection = True
                return
            except EngineError as exc:
                handler._error(422, str(exc))
                return
        handler._send_json(200, self._answer(request, out))

    def _answer(self, request: CompletionRequest, out: Any) -> dict[str, Any]:
        return completion_answer(
            self.server.engine.name,
            f"cmpl-{uuid.uuid4().hex}",
            int(time.time()),
            len(request.prompt_ids),
            out.token_ids,
            out.text,
            out.finish_reason,
            out.token_logprobs,
            out.top_logprobs,
        )

    def _completion_stream(self, request: CompletionRequest) -> None:
        from diffedit.engine.completions import run_completion

        handler: Any = self
        ticket = take_place(handler)
        if ticket is None:
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        cancel = ClientWatch(handler.connection)

        def send(data: str) -> None:
            if cancel.cancelled:
                return
            try:
                handler.wfile.write(f"data: {data}\n\n".encode())
                handler.wfile.flush()
            except OSError:  # the client closed the stream: cancel at the next step
                cancel.cancel()

        def on_frame(frame: Frame) -> None:
            send(json.dumps({"object": "diffedit.frame"} | frame_to_json(frame), ensure_ascii=False))

        def queued(position: int) -> None:  # an SSE comment: clients skip it, their stall timer restarts
            if time.monotonic() - beat[0] >= HEARTBEAT_S:
                beat[0] = time.monotonic()
                if not cancel.cancelled:
                    try:
                        handler.wfile.write(f": queued {position}\n\n".encode())
                        handler.wfile.flush()
                    except OSError:
                        cancel.cancel()

        beat = [0.0]
        with engine_turn(handler, ticket, cancel, queued) as running:
            if not running:
                return
            try:
                out = run_completion(
                    self.server.engine, request, on_frame if request.frames else None, cancel
                )
            except Cancelled:
                handler.log_message("completion cancelled: the client closed the stream")
                return
            except EngineError as exc:
                send(json.dumps({"error": {"message": str(exc), "code": 422}}))
                send("[DONE]")
                return
        send(json.dumps(self._answer(request, out), ensure_ascii=False))
        send("[DONE]")


class Handler(CompletionsMixin, BaseHTTPRequestHandler):
    server: DiffeditServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"diffedit serve: {self.address_string()} {format % args}\n")

    def _send_json(self, status: int, obj: dict[str, Any]) -> None:
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send_json(status, {"error": {"message": message, "code": status}})

    def _busy(self) -> None:
        """503: the queue is full; nothing was started, so the client may send the job again."""
        queue = self.server.queue
        retry = queue.retry_after_s()
        data = json.dumps(
            {
                "error": {
                    "message": f"the server is busy: {queue.waiting()} jobs wait (at most "
                    f"{queue.max_waiting}); nothing was started, try again in {retry} s",
                    "code": 503,
                }
            }
        ).encode("utf-8")
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Retry-After", str(retry))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        key = self.server.api_key
        if key is None:
            return True
        given = self.headers.get("Authorization", "")
        if given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), key.encode()):
            return True
        self._error(401, "a valid API key is needed: send it as 'Authorization: Bearer KEY'")
        return False

    def do_GET(self) -> None:
        if not self._authorised():
            return
        engine = self.server.engine
        from diffedit.engine.completions import describe

        if self.path == "/health":
            queue = self.server.queue
            jobs = {
                "running": int(queue.running()),
                "waiting": queue.waiting(),
                "max_waiting": queue.max_waiting,
            }
            self._send_json(
                200, {"status": "ok", "model": engine.name, "demo_model": self.server.demo, "jobs": jobs}
            )
        elif self.path == "/v1/models":
            fmt = engine.loaded.context_format
            self._send_json(
                200,
                {
                    "object": "list",
                    "protocol": PROTOCOL,
                    "data": [
                        {
                            "id": engine.name,
                            "object": "model",
                            "owned_by": "diffedit",
                            "protocol": PROTOCOL,
                            "canvas_length": engine.canvas_length,
                            "context_format": fmt.name,
                            "demo_model": self.server.demo,
                            "quantization": engine.loaded.quantization,
                            "weight_bytes": engine.loaded.weight_bytes,
                            "placement": (
                                engine.loaded.placement.summary() if engine.loaded.placement else None
                            ),
                        }
                        | model_facts(self.server)
                        | describe(engine)
                    ],
                },
            )
        else:
            self._error(404, f"no such endpoint: GET {self.path}")

    def do_POST(self) -> None:
        if not self._authorised():
            return
        if self.path not in POST_ENDPOINTS:
            self._error(404, f"no such endpoint: POST {self.path}")
            return
        if self.path != "/v1/completions":
            post_extra(self)
            return
        body = read_body(self)
        if body is None:
            return
        try:
            completion = is_completion_body(body)  # vLLM's protocol (see diffedit.engine.vllm_wire)
            job = None if completion else job_from_json(body)
            if job is not None:
                check_line_starts(job)  # no regular expression from a client is compiled here
                self.server.limits.check_job(job)
        except (ValueError, EngineError) as exc:  # WireError, SettingsError, bad JSON
            self._error(400, str(exc))
            return
        if job is None:
            self._completion(body)
            return
        if not same_tokenizer(self, body):
            return
        if body.get("stream"):
            self._stream(job)
            return
        queue = self.server.queue
        ticket = queue.enter()
        if ticket is None:
            self._busy()
            return
        cancel = ClientWatch(self.connection)  # a client that hangs up no longer holds the engine
        if not queue.wait_turn(ticket, cancel.gone_now):
            self.log_message("job %s dropped while queued: the client left", job.job_id)
            self.close_connection = True
            return
        try:
            result = self.server.engine.rewrite(job, cancel=cancel)
        except Cancelled:
            self.log_message("job %s cancelled: the client left before the answer", job.job_id)
            self.close_connection = True
            return
        except EngineError as exc:
            self._error(422, str(exc))
            return
        finally:
            queue.done()
        self._send_json(200, result_to_json(result))

    def _stream(self, job: Any) -> None:
        queue = self.server.queue
        ticket = queue.enter()
        if ticket is None:
            self._busy()
            return
        cancel, write = open_lines(self)

        def on_frame(frame: Frame) -> None:
            write(frame_to_json(frame))

        if not queue.wait_turn(ticket, cancel.gone_now, queued_lines(write)):
            self.log_message("job %s dropped while queued: the client closed the stream", job.job_id)
            return
        try:
            result = self.server.engine.rewrite(job, on_frame=on_frame, cancel=cancel)
        except Cancelled:
            self.log_message("job %s cancelled: the client closed the stream", job.job_id)
            return
        except EngineError as exc:
            write({"type": "error", "message": str(exc)})
            return
        finally:
            queue.done()
        write(result_to_json(result))


def model_facts(server: DiffeditServer) -> dict[str, Any]:
    """What ``/v1/models`` says beyond the model's id: the client's badge, status line and checks read it."""
    return {
        "device": str(getattr(server.engine, "device", "")),
        "endpoints": list(POST_ENDPOINTS),
        "tokenizer_sha256": server.tokenizer_sha256,
    }


def same_tokenizer(handler: Handler, body: dict[str, Any]) -> bool:
    """A job that names the tokenizer it expects runs only on that one (409 otherwise, nothing run)."""
    expected = body.get("tokenizer")
    served = handler.server.tokenizer_sha256
    if expected is None or expected == served:
        return True
    handler._error(
        409,
        f"this server's model has another tokenizer ({str(served)[:12]}) than the one the client "
        f"connected to ({str(expected)[:12]}): the server was restarted with another model; reconnect",
    )
    return False


def open_lines(handler: Handler) -> tuple[ClientWatch, Callable[[dict[str, Any]], None]]:
    """Start a 200 answer of newline-delimited JSON: the token that is cancelled once the client has gone
    (closed the stream, or a write failed), and the function that writes one object as one line."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/x-ndjson")
    handler.send_header("Cache-Control", "no-cache")
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.close_connection = True
    cancel = ClientWatch(handler.connection)

    def write(obj: dict[str, Any]) -> None:
        if cancel.cancelled:
            return
        try:
            handler.wfile.write(json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n")
            handler.wfile.flush()
        except OSError:  # the client closed the stream: cancel the job at its next step
            cancel.cancel()

    return cancel, write


def queued_lines(write: Callable[[dict[str, Any]], None]) -> Callable[[int], None]:
    """While a stream waits its turn: a ``{"type": "queued"}`` line every ``HEARTBEAT_S`` (the client's
    stall timeout sees the server alive)."""
    beat = [0.0]

    def tick(position: int) -> None:
        if time.monotonic() - beat[0] >= HEARTBEAT_S:
            beat[0] = time.monotonic()
            write({"type": "queued", "position": position})

    return tick


def take_place(handler: Handler) -> Ticket | None:
    """A place in the server's queue (``None``: it is full, and a 503 was sent: nothing started)."""
    ticket = handler.server.queue.enter()
    if ticket is None:
        handler._busy()
    return ticket


@contextmanager
def engine_turn(
    handler: Handler, ticket: Ticket, cancel: ClientWatch, tick: Callable[[int], None] | None = None
) -> Iterator[bool]:
    """Wait for ``ticket``'s turn on the engine; yields True while this request holds it, False when its
    client left while it waited (then nothing runs)."""
    queue = handler.server.queue
    if not queue.wait_turn(ticket, cancel.gone_now, tick):
        handler.log_message("%s dropped while queued: the client left", handler.path)
        handler.close_connection = True
        yield False
        return
    try:
        yield True
    finally:
        queue.done()


def read_body(handler: Handler) -> dict[str, Any] | None:
    """A POST's JSON object, or None when it was refused (413 too large, 400 not a JSON object; sent)."""
    length = int(handler.headers.get("Content-Length") or 0)
    if length > MAX_BODY:
        handler._error(413, f"the request is {length} bytes; at most {MAX_BODY} are accepted")
        return None
    try:
        body = json.loads(handler.rfile.read(length) or b"{}")
    except ValueError as exc:
        handler._error(400, f"the body is not JSON: {exc}")
        return None
    if not isinstance(body, dict):
        handler._error(400, "the body must be a JSON object")
        return None
    return body


def post_extra(handler: Handler) -> None:
    """``POST /v1/alternatives`` and ``POST /v1/inspect`` (authorised already; see the module's docstring)."""
    body = read_body(handler)
    if body is None:
        return
    try:
        if handler.path == "/v1/inspect":
            request, top_k, context_tokens = inspect_from_json(body)
            handler.server.limits.check(None, None, context_tokens)
        else:
            job = job_from_json(body)
            check_line_starts(job)  # no regular expression from a client is compiled here
            handler.server.limits.check_job(job)
            raw_count = body.get("count")
            if not isinstance(raw_count, int) or not 1 <= raw_count <= MAX_ALTERNATIVES:
                raise WireError(
                    f"count must be a whole number from 1 to {MAX_ALTERNATIVES}, got {raw_count!r}"
                )
            count = raw_count
    except (ValueError, EngineError) as exc:  # WireError, SettingsError, bad JSON
        handler._error(400, str(exc))
        return
    if not same_tokenizer(handler, body):
        return
    server = handler.server
    ticket = take_place(handler)
    if ticket is None:
        return
    if handler.path == "/v1/inspect":
        # A read-only pass is not cancelled mid-way (the engine's inspect takes no token); a client that
        # left while it waited gives its place up.
        with engine_turn(handler, ticket, ClientWatch(handler.connection)) as running:
            if not running:
                return
            try:
                readings = server.engine.inspect(request, top_k=top_k, context_tokens=context_tokens)
            except EngineError as exc:
                handler._error(422, str(exc))
                return
        handler._send_json(200, readings_to_json(server.engine.name, readings))
        return
    if not body.get("stream"):
        watch = ClientWatch(handler.connection)
        with engine_turn(handler, ticket, watch) as running:
            if not running:
                return
            try:
                out = server.engine.alternatives(job, count, None, watch)
            except Cancelled:
                handler.log_message("alternatives %s cancelled: the client left", job.job_id)
                handler.close_connection = True
                return
            except EngineError as exc:
                handler._error(422, str(exc))
                return
        handler._send_json(200, alternatives_result_to_json(out))
        return
    cancel, write = open_lines(handler)
    with engine_turn(handler, ticket, cancel, queued_lines(write)) as running:
        if not running:
            return
        try:
            out = server.engine.alternatives(
                job, count, lambda f: write(alternatives_frame_to_json(f)), cancel
            )
        except Cancelled:
            handler.log_message("alternatives %s cancelled: the client closed the stream", job.job_id)
            return
        except EngineError as exc:
            write({"type": "error", "message": str(exc)})
            return
    write(alternatives_result_to_json(out))


def cmd_serve(args: argparse.Namespace) -> int:
    from diffedit.cli import UsageError, load_local_engine

    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env) or None
        if api_key is None:
            raise UsageError(f"--api-key-env {args.api_key_env}: that environment variable is not set")
    engine, demo = load_local_engine(args)
    try:
        limits = JobLimits(args.max_steps, args.max_new_tokens, args.max_context_tokens)
        server = DiffeditServer((args.host, args.port), engine, api_key, demo, args.max_queue or None, limits)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    host, port = server.server_address[:2]
    # One line a script (or the tests) can wait for: the port chosen, even for --port 0.
    print(f"diffedit serve: {engine.name} on http://{host!s}:{port}", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1") and api_key is None:
        print(
            "diffedit serve: warning: listening beyond this machine without a key; "
            "anyone who can reach the port can use the model (see --api-key-env)",
            file=sys.stderr,
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def add_parser(sub: Any) -> None:
    """``serve`` with the model options it shares with ``rewrite`` (--model, --device, --quantize...)."""
    p = sub.add_parser(
        "serve",
        help="serve the engine over HTTP (POST /v1/completions) for `--server URL`",
        description='Serve diffedit\'s engine over HTTP: POST /v1/completions (with "stream": true, '
        "every denoising step as a JSON line), GET /v1/models, GET /health. Jobs run one at a time.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8040, help="port (default 8040; 0 picks a free one)")
    p.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="require 'Authorization: Bearer KEY' with KEY read from this environment variable",
    )
    p.add_argument(
        "--max-queue",
        type=int,
        default=MAX_QUEUE,
        metavar="N",
        help=f"jobs that may wait behind the running one (default {MAX_QUEUE}; 0: no limit); "
        "one more is answered 503 with Retry-After",
    )
    defaults = JobLimits()
    for flag, default, what in (
        ("--max-steps", defaults.steps, "denoising steps per canvas"),
        ("--max-new-tokens", defaults.new_tokens, "tokens one request may write"),
        ("--max-context-tokens", defaults.context_tokens, "tokens of context one request may send"),
    ):
        p.add_argument(
            flag, type=int, default=default, metavar="N", help=f"most {what} (default {default}; more: 400)"
        )
    p.add_argument("--model", help="DiffusionGemma checkpoint folder (default: the bundled demo model)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: the best available)")
    p.add_argument("--trust-remote-code", action="store_true", help="let code shipped with this model run")
    p.add_argument("--fp8", action="store_true", help="MoE expert weights in FP8 (see rewrite --help)")
    p.add_argument("--quantize", choices=["none", "int8", "int4"], default="none", help="see rewrite --help")
    p.add_argument("--offload", choices=["auto", "none"], default="auto", help="see rewrite --help")
    p.add_argument("--compile", action="store_true", help="compiled decoder step (see rewrite --help)")
    p.set_defaults(func=cmd_serve, server=None)
