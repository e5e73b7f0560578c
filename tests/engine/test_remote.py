"""``RemoteEngine`` against a local stdlib HTTP server that misbehaves on cue: timeouts, retries with backoff
(GETs always, a rewrite only where it cannot have started), and the message for each failure.

The double answers each request with the next behaviour of its script and records what it was asked, so the
tests count attempts instead of timing them. The real server is tested in tests/test_serve.py and
tests/test_serve_limits.py.
"""

from __future__ import annotations

import json
import random
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from diffedit.engine import remote, transport
from diffedit.engine.remote import RemoteEngine
from diffedit.engine.transport import Backoff, Timeouts
from diffedit.engine.types import (
    Cancelled,
    CancelToken,
    EditRequest,
    EngineError,
    Frame,
    GenerationSettings,
    RewriteJob,
    RewriteResult,
)
from diffedit.engine.wire import PROTOCOL, frame_to_json, result_to_json

MODELS = {
    "object": "list",
    "protocol": PROTOCOL,
    "data": [{"id": "double", "protocol": PROTOCOL, "canvas_length": 8, "context_format": "infill"}],
}
JOB = RewriteJob(EditRequest("Before. ", "Target text.", " After."), GenerationSettings(steps=2, seed=3))
FRAME = Frame(3, 0, 1, 2, (5, 6), ("a", "b"), ((0, 1), (1, 2)), (True, False), (True, True), (0.1, 0.2), "ab")
RESULT = RewriteResult(3, "New text.", (5, 6), 2, 1, 1.0, 1.0, 1.0, 0.1, 3, "double")

Behaviour = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Double:
    url: str
    script: list[Behaviour]  # one behaviour per request, in order; the last repeats
    asked: list[str] = field(default_factory=list)  # "GET /v1/models", "POST /v1/completions", ...
    release: threading.Event = field(default_factory=threading.Event)  # ends every stall
    closed: threading.Event = field(default_factory=threading.Event)  # a stalled client hung up

    def count(self, what: str) -> int:
        return self.asked.count(what)


def answer(status: int, obj: object, headers: dict[str, str] | None = None) -> Behaviour:
    def run(h: BaseHTTPRequestHandler) -> None:
        data = json.dumps(obj).encode()
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    return run


def error(status: int, message: str = "", headers: dict[str, str] | None = None) -> Behaviour:
    return answer(status, {"error": {"message": message, "code": status}}, headers)


def drop(h: BaseHTTPRequestHandler) -> None:
    """Read the request, then hang up without a word."""
    h.close_connection = True
    h.connection.shutdown(socket.SHUT_RDWR)


def stream(lines: list[dict[str, object]], then: str = "end", every_s: float = 0.0) -> Behaviour:
    """A 200 stream of ``lines``, then the end ("end") or silence until the client leaves ("stall")."""

    def run(h: BaseHTTPRequestHandler) -> None:
        double: Double = h.server.double  # type: ignore[attr-defined]
        h.send_response(200)
        h.send_header("Content-Type", "application/x-ndjson")
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        for line in lines:
            h.wfile.write(json.dumps(line).encode() + b"\n")
            h.wfile.flush()
            double.release.wait(every_s)
        if then == "stall":
            wait_for_hangup(h, double)

    return run


def wait_for_hangup(h: BaseHTTPRequestHandler, double: Double) -> None:
    h.connection.settimeout(0.05)
    while not double.release.is_set():
        try:
            if h.connection.recv(1) == b"":
                double.closed.set()
                return
        except TimeoutError:
            continue
        except OSError:
            double.closed.set()
            return


def stall(h: BaseHTTPRequestHandler) -> None:
    """Take the request and never answer (until the client leaves or the test ends)."""
    wait_for_hangup(h, h.server.double)  # type: ignore[attr-defined]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _next(self) -> None:
        double: Double = self.server.double  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        double.asked.append(f"{self.command} {self.path}")
        behaviour = double.script.pop(0) if len(double.script) > 1 else double.script[0]
        behaviour(self)

    do_GET = _next
    do_POST = _next


@pytest.fixture
def serve() -> Iterator[Callable[..., Double]]:
    servers: list[tuple[ThreadingHTTPServer, Double]] = []

    def start(*script: Behaviour) -> Double:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        double = Double(f"http://127.0.0.1:{httpd.server_address[1]}", list(script))
        httpd.double = double  # type: ignore[attr-defined]
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append((httpd, double))
        return double

    yield start
    for httpd, double in servers:
        double.release.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff waits the client took, recorded instead of slept (the cancel check still runs)."""
    taken: list[float] = []

    def pause(seconds: float, cancel: CancelToken | None = None) -> None:
        taken.append(seconds)
        if cancel is not None and cancel.cancelled:
            raise Cancelled()

    monkeypatch.setattr(remote, "pause", pause)
    return taken


def outcome_within(seconds: float, call: Callable[[], object]) -> BaseException | None:
    """What ``call`` raised (None: it returned), failing the test if it still runs after ``seconds`` (a
    missing timeout shows as a failure, not as a hung test run)."""
    caught: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # the outcome is the test's
            caught.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds} s: no timeout fired"
    return caught[0] if caught else None


FAST = Timeouts(connect_s=2.0, read_s=0.5, stall_s=0.5)


def connect(double: Double, timeouts: Timeouts = FAST, tries: int = 3) -> RemoteEngine:
    return RemoteEngine.connect(double.url, "key", timeouts=timeouts, backoff=Backoff(tries=tries))


# -- GETs: retried with backoff on what another try may change ----------------------------------------------


def test_a_get_is_retried_after_500s_and_succeeds(serve: Callable[..., Double], waits: list[float]) -> None:
    double = serve(error(500, "warming up"), error(502), answer(200, MODELS))
    engine = connect(double)
    assert engine.name == "double"
    assert double.count("GET /v1/models") == 3
    assert len(waits) == 2


def test_a_get_whose_connection_dropped_is_retried(serve: Callable[..., Double], waits: list[float]) -> None:
    double = serve(drop, answer(200, MODELS))
    assert connect(double).name == "double"
    assert double.count("GET /v1/models") == 2


def test_a_stalled_get_times_out_and_says_so(serve: Callable[..., Double], waits: list[float]) -> None:
    double = serve(stall)
    raised = outcome_within(30, lambda: connect(double, tries=2))
    assert isinstance(raised, EngineError)
    assert "did not answer GET /v1/models within 0.5 s (2 tries)" in str(raised)
    assert double.count("GET /v1/models") == 2


def test_500s_that_persist_are_reported_after_the_last_try(
    serve: Callable[..., Double], waits: list[float]
) -> None:
    double = serve(error(500, "the model failed to load"))
    with pytest.raises(EngineError, match=r"refused GET /v1/models \(500\): the model failed to load"):
        connect(double)
    assert double.count("GET /v1/models") == 3


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, r"refused the API key \(401\): check \$DIFFEDIT_API_KEY"),
        (404, r"has no diffedit diffusion endpoint for GET /v1/models \(404\)"),
    ],
)
def test_answers_another_try_would_not_change_are_not_retried(
    serve: Callable[..., Double], waits: list[float], status: int, message: str
) -> None:
    double = serve(error(status))
    with pytest.raises(EngineError, match=message):
        connect(double)
    assert double.count("GET /v1/models") == 1
    assert waits == []


def test_a_server_without_the_protocol_field_is_said_so(serve: Callable[..., Double]) -> None:
    vllm_like = {"object": "list", "data": [{"id": "google/diffusiongemma", "object": "model"}]}
    double = serve(answer(200, vllm_like))
    with pytest.raises(EngineError, match="not with diffedit's diffusion protocol"):
        connect(double)


def test_an_unreachable_server_is_tried_with_growing_jittered_waits(waits: list[float]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: the connection is refused
        with pytest.raises(
            EngineError, match=r"cannot reach the server at .* \(4 tries, .*is `diffedit serve`"
        ):
            RemoteEngine.connect(f"http://127.0.0.1:{port}", backoff=Backoff(tries=4, base_s=0.5, cap_s=1.5))
    assert len(waits) == 3
    for attempt, wait in enumerate(waits):  # [c/2, c] with c = min(cap, base * 2**attempt): 0.5, 1, 1.5
        ceiling = min(1.5, 0.5 * 2**attempt)
        assert ceiling / 2 <= wait <= ceiling


def test_backoff_jitter_spreads_clients_and_honours_retry_after() -> None:
    rng = random.Random(1)
    draws = {round(Backoff().delay(2, rng=rng), 6) for _ in range(20)}
    assert len(draws) == 20 and all(1.0 <= d <= 2.0 for d in draws)  # not one fixed delay for everyone
    assert Backoff(cap_s=8.0).delay(0, retry_after=5.0, rng=rng) == 5.0
    assert Backoff(cap_s=8.0).delay(0, retry_after=600.0, rng=rng) == 8.0  # within the cap


# -- the rewrite: retried only where it cannot have started -------------------------------------------------


def ok_stream() -> Behaviour:
    return stream([frame_to_json(FRAME), result_to_json(RESULT)])


def test_a_rewrite_refused_with_503_is_sent_again_after_retry_after(
    serve: Callable[..., Double], waits: list[float]
) -> None:
    double = serve(answer(200, MODELS), error(503, "queue full", {"Retry-After": "3"}), ok_stream())
    frames: list[Frame] = []
    result = connect(double).rewrite(JOB, on_frame=frames.append)
    assert result == RESULT and frames == [FRAME]
    assert double.count("POST /v1/completions") == 2
    assert waits == [3.0]  # the server's Retry-After (above the jittered 0.25..0.5 s)


def test_a_rewrite_still_refused_with_503_says_busy(serve: Callable[..., Double], waits: list[float]) -> None:
    double = serve(answer(200, MODELS), error(503, "3 jobs wait"))
    with pytest.raises(EngineError, match=r"is busy \(503: 3 jobs wait\); nothing was started"):
        connect(double).rewrite(JOB)
    assert double.count("POST /v1/completions") == 3


def test_a_rewrite_that_failed_with_500_is_not_sent_again(
    serve: Callable[..., Double], waits: list[float]
) -> None:
    double = serve(answer(200, MODELS), error(500, "out of memory"), ok_stream())
    with pytest.raises(EngineError, match=r"refused the rewrite \(500\): out of memory"):
        connect(double).rewrite(JOB)
    assert double.count("POST /v1/completions") == 1


def test_a_rewrite_whose_connection_dropped_is_not_sent_again(
    serve: Callable[..., Double], waits: list[float]
) -> None:
    double = serve(answer(200, MODELS), drop, ok_stream())
    with pytest.raises(EngineError, match=r"did not answer the rewrite .*it was not sent again"):
        connect(double).rewrite(JOB)
    assert double.count("POST /v1/completions") == 1


def test_a_rewrite_is_sent_again_when_the_connection_could_not_be_made(
    serve: Callable[..., Double], waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    double = serve(answer(200, MODELS), ok_stream())
    engine = connect(double)
    real = transport.HTTPConnection.connect
    refused = [2]

    def flaky(self: transport.HTTPConnection) -> None:
        if refused[0]:
            refused[0] -= 1
            raise ConnectionRefusedError(111, "Connection refused")
        real(self)

    monkeypatch.setattr(transport.HTTPConnection, "connect", flaky)
    assert engine.rewrite(JOB) == RESULT
    assert double.count("POST /v1/completions") == 1 and len(waits) == 2


def test_a_stream_that_goes_silent_is_stopped_with_a_clear_message(serve: Callable[..., Double]) -> None:
    double = serve(answer(200, MODELS), stream([frame_to_json(FRAME)], then="stall"))
    frames: list[Frame] = []
    engine = connect(double)
    raised = outcome_within(30, lambda: engine.rewrite(JOB, on_frame=frames.append))
    assert isinstance(raised, EngineError)
    assert "sent nothing for 0.5 s in the middle of the rewrite (stalled)" in str(raised)
    assert frames == [FRAME]
    assert double.closed.wait(10)  # and the client hung up, so the server can drop the job


def test_queued_lines_keep_a_waiting_stream_alive(serve: Callable[..., Double]) -> None:
    """Five heartbeats 0.2 s apart: 1 s of waiting, twice the stall timeout, without a frame."""
    queued: list[dict[str, object]] = [{"type": "queued", "position": 1}] * 5
    double = serve(answer(200, MODELS), stream([*queued, result_to_json(RESULT)], every_s=0.2))
    assert connect(double).rewrite(JOB) == RESULT


def test_stop_while_the_server_is_silent_hangs_up_at_once(serve: Callable[..., Double]) -> None:
    """A queued job gets a line only every few seconds: Stop must not wait for the next one."""
    double = serve(answer(200, MODELS), stream([], then="stall"))
    engine = connect(double, Timeouts(connect_s=2.0, read_s=2.0, stall_s=120.0))
    cancel = CancelToken()
    threading.Timer(0.3, cancel.cancel).start()  # Stop, while the reader waits for a line
    raised = outcome_within(10, lambda: engine.rewrite(JOB, cancel=cancel))  # far below the stall timeout
    assert isinstance(raised, Cancelled)
    assert double.closed.wait(10)
