"""``diffedit serve`` under misuse and load: the bounded queue, a client that hangs up, and the only regular
expressions it compiles (``diffedit.serve_limits``); unit tests, then a real served demo model."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.client import HTTPConnection, HTTPResponse
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from diffedit.document.blocks import parse_blocks
from diffedit.engine.remote import RemoteEngine
from diffedit.engine.transport import Backoff
from diffedit.engine.types import BlockTemplate, FreeText, GenerationSettings, RewriteJob
from diffedit.engine.wire import WireError, job_from_json, job_to_json
from diffedit.rewrites import build_job
from diffedit.serve_limits import JobQueue, Ticket, check_line_starts
from tests.test_serve import DOC, Served, paragraph_job, start_server, stop

ROOT = Path(__file__).resolve().parents[1]
# Runs until cancelled: every one of its steps is taken (one position accepted per step, never confident).
ENDLESS = GenerationSettings(steps=100_000, seed=1, entropy_bound=0.0, t_min=50.0, t_max=50.0)


def until(what: Callable[[], bool], limit_s: float = 120.0) -> None:
    """Wait for a state of the server (not a timing: the limit only turns a hang into a failure)."""
    end = time.monotonic() + limit_s
    while not what():
        assert time.monotonic() < end, "the server never got there"
        time.sleep(0.05)


# -- the queue --------------------------------------------------------------------------------------------


def run_in_threads(queue: JobQueue, tickets: list[Ticket], gone: Callable[[Ticket], bool]) -> list[int]:
    """Each ticket's job in its own thread, started last ticket first; the order they ran in."""
    ran: list[int] = []
    threads = []
    for i in reversed(range(len(tickets))):

        def job(i: int = i) -> None:
            if queue.wait_turn(tickets[i], lambda: gone(tickets[i])):
                ran.append(i)
                queue.done()

        threads.append(threading.Thread(target=job))
        threads[-1].start()
        time.sleep(0.05)  # the later tickets are first at the lock
    queue.lock.release()  # the job that held the engine ends
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    return ran


def test_jobs_run_in_arrival_order_and_a_full_queue_refuses_at_once() -> None:
    queue = JobQueue(max_waiting=4)
    queue.lock.acquire()  # a job runs
    tickets = [queue.enter() for _ in range(4)]
    assert queue.enter() is None  # the fifth waiter: refused, not kept waiting
    assert queue.waiting() == 4 and queue.running()
    assert run_in_threads(queue, [t for t in tickets if t], lambda t: False) == [0, 1, 2, 3]
    assert queue.waiting() == 0 and not queue.running()
    assert queue.enter() is not None  # room again


def test_a_waiting_job_whose_client_left_gives_up_its_place() -> None:
    queue = JobQueue(max_waiting=None)
    queue.lock.acquire()
    tickets = [t for t in (queue.enter() for _ in range(3)) if t]
    left = tickets[1]
    assert run_in_threads(queue, tickets, lambda t: t is left) == [0, 2]
    assert queue.waiting() == 0


def test_retry_after_grows_with_the_queue() -> None:
    queue = JobQueue(max_waiting=8)
    assert queue.retry_after_s() == 1
    for _ in range(3):
        ticket = queue.enter()
        assert ticket is not None and queue.wait_turn(ticket, lambda: False)
        time.sleep(0.6)
        queue.done()
    queue.lock.acquire()
    for _ in range(4):
        queue.enter()
    assert queue.retry_after_s() >= 3  # five jobs of 0.6 s or more ahead


# -- the regular expressions a client may send --------------------------------------------------------------


def corpus() -> list[tuple[str, str]]:
    """Real documents: the project's own README and docs (every block kind they hold)."""
    paths = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [(p.name, p.read_text(encoding="utf-8")) for p in paths]


def test_every_job_diffedit_builds_passes_the_check() -> None:
    kinds: set[str] = set()
    for _name, text in corpus():
        job = build_job(text, 0, len(text), GenerationSettings())  # every block of the document
        kinds.update(block.kind for block in parse_blocks(text))
        check_line_starts(job_from_json(json.loads(json.dumps(job_to_json(job)))))  # as the server gets it
    assert {"paragraph", "heading", "list item", "code", "table"} <= kinds, kinds


def evil(job: RewriteJob, pattern: str) -> RewriteJob:
    """``job`` with ``pattern`` among its first slot's line-start rules."""
    assert job.templates is not None
    template = job.templates[0]
    segs = list(template.segments)
    k = next(i for i, s in enumerate(segs) if isinstance(s, FreeText))
    slot = segs[k]
    assert isinstance(slot, FreeText)
    segs[k] = FreeText(slot.role, slot.original, slot.forbid_chars, (*slot.line_start_patterns, pattern))
    return RewriteJob(job.request, job.settings, job.job_id, (BlockTemplate(template.kind, tuple(segs)),))


def test_a_foreign_regular_expression_is_refused() -> None:
    job = paragraph_job(steps=1)
    check_line_starts(job)  # type: ignore[arg-type]
    with pytest.raises(WireError, match="line_start_patterns are not among the rules"):
        check_line_starts(evil(job, r"(a+)+$"))  # type: ignore[arg-type]


# -- a real server ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = start_server(
        tmp_path_factory.mktemp("serve-limits"), "--max-queue", "1", "--max-steps", str(ENDLESS.steps)
    )
    yield served
    stop(served)


def health(served: Served) -> dict[str, int]:
    connection = connect(served)
    connection.request("GET", "/health")
    jobs: dict[str, int] = json.loads(connection.getresponse().read())["jobs"]
    connection.close()
    return jobs


def connect(served: Served) -> HTTPConnection:
    parts = urlsplit(served.url)
    return HTTPConnection(parts.hostname or "", parts.port, timeout=120)


def post(served: Served, job: object, stream: bool) -> HTTPConnection:
    connection = connect(served)
    body = json.dumps(job_to_json(job) | {"stream": stream})  # type: ignore[arg-type]
    connection.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    return connection


def hang_up(connection: HTTPConnection, response: HTTPResponse | None = None) -> None:
    """Close the client's end (a streamed answer owns the socket once it was read from)."""
    if response is not None:
        response.close()
    if connection.sock is not None:
        connection.sock.close()
    connection.close()


def endless(job_id: int) -> RewriteJob:
    block = parse_blocks(DOC)[1]
    job = build_job(DOC, block.start, block.end, ENDLESS)
    return RewriteJob(job.request, job.settings, job_id, job.templates)


def test_a_foreign_regular_expression_gets_a_400(server: Served) -> None:
    connection = post(server, evil(paragraph_job(steps=1), r"(a+)+$"), stream=False)  # type: ignore[arg-type]
    response = connection.getresponse()
    assert response.status == 400
    assert "compiles no other regular expressions" in json.loads(response.read())["error"]["message"]
    connection.close()


def test_a_client_that_hangs_up_on_a_plain_request_frees_the_engine(server: Served) -> None:
    first = post(server, endless(101), stream=False)  # runs until cancelled; nobody reads its answer
    until(lambda: health(server)["running"] == 1)
    second = post(server, paragraph_job(steps=2), stream=True)
    response = second.getresponse()
    assert json.loads(response.readline()) == {"type": "queued", "position": 1}  # behind the endless one
    hang_up(first)
    lines = [json.loads(line) for line in response]
    assert lines[-1]["type"] == "result" and lines[-1]["steps"] == 2
    assert "job 101 cancelled: the client left before the answer" in server.log_text()
    second.close()


def test_a_full_queue_answers_503_and_the_client_sends_the_job_again(server: Served) -> None:
    running = post(server, endless(201), stream=True)
    running_answer = running.getresponse()  # held: dropping it would close the connection
    assert json.loads(running_answer.readline())["type"] == "frame"  # it runs
    waiting = post(server, endless(202), stream=True)
    waiting_answer = waiting.getresponse()
    assert json.loads(waiting_answer.readline()) == {"type": "queued", "position": 1}

    refused = post(server, paragraph_job(steps=2), stream=True).getresponse()
    assert refused.status == 503
    assert int(refused.headers["Retry-After"]) >= 1
    assert "the server is busy: 1 jobs wait (at most 1)" in json.loads(refused.read())["error"]["message"]

    # The client sends it again after each 503; once the queue has room, it runs.
    refusals = server.log_text().count('"POST /v1/completions HTTP/1.1" 503')
    engine = RemoteEngine.connect(server.url, backoff=Backoff(tries=20, base_s=0.2, cap_s=1.0))
    got: list[object] = []
    client = threading.Thread(target=lambda: got.append(engine.rewrite(paragraph_job(steps=2))))  # type: ignore[arg-type]
    client.start()
    until(lambda: server.log_text().count('"POST /v1/completions HTTP/1.1" 503') >= refusals + 2)
    hang_up(waiting, waiting_answer)  # leaves the queue: "dropped while queued"
    hang_up(running, running_answer)  # cancelled at its next step
    client.join(120)
    assert not client.is_alive() and len(got) == 1 and got[0].steps == 2  # type: ignore[attr-defined]
    log = server.log_text()
    assert "job 202 dropped while queued: the client closed the stream" in log
    assert "job 201 cancelled: the client closed the stream" in log
    until(lambda: health(server) == {"running": 0, "waiting": 0, "max_waiting": 1})


def post_raw(served: Served, path: str, body: dict[str, object]) -> HTTPResponse:
    connection = connect(served)
    connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    return connection.getresponse()


def test_alternatives_readings_and_vllm_completions_wait_in_the_same_queue(server: Served) -> None:
    """Every endpoint that runs the engine takes a place in the one bounded queue: with the engine busy and
    the queue full, each is refused with 503 at once instead of waiting unbounded on the engine's lock."""
    running = post(server, endless(301), stream=True)
    running_answer = running.getresponse()
    assert json.loads(running_answer.readline())["type"] == "frame"
    waiting = post(server, endless(302), stream=True)
    waiting_answer = waiting.getresponse()
    assert json.loads(waiting_answer.readline()) == {"type": "queued", "position": 1}

    prompt = {"prefix": "Intro.\n\n", "target": "A paragraph.", "suffix": "\n\nAfter.\n"}
    for path, body in (
        ("/v1/inspect", {"prompt": prompt}),
        ("/v1/alternatives", job_to_json(paragraph_job(steps=2)) | {"count": 2}),
        ("/v1/alternatives", job_to_json(paragraph_job(steps=2)) | {"count": 2, "stream": True}),
        ("/v1/completions", {"prompt": [2, 5, 6], "max_tokens": 8, "vllm_xargs": {"diffusion_max_steps": 2}}),
        ("/v1/completions", {"prompt": [2, 5, 6], "stream": True, "vllm_xargs": {"diffusion_max_steps": 2}}),
    ):
        refused = post_raw(server, path, body)
        assert refused.status == 503, (path, body)
        assert "the server is busy" in json.loads(refused.read())["error"]["message"]

    hang_up(waiting, waiting_answer)
    hang_up(running, running_answer)
    until(lambda: health(server) == {"running": 0, "waiting": 0, "max_waiting": 1})


def test_a_client_that_hangs_up_on_a_plain_vllm_completion_frees_the_engine(server: Served) -> None:
    # Canvas after canvas until cancelled (no end token stops it): the job is running when the client leaves.
    body = {"prompt": [2, 5, 6], "max_tokens": 8192, "ignore_eos": True}  # 64 canvases, at most allowed
    connection = connect(server)
    connection.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    until(lambda: health(server)["running"] == 1)
    hang_up(connection)
    until(lambda: health(server) == {"running": 0, "waiting": 0, "max_waiting": 1})
    assert "completion cancelled: the client left" in server.log_text()


def test_a_request_over_the_servers_limits_is_refused_naming_the_option(server: Served) -> None:
    """One client must not hold the engine (and every editor queued behind it) as long as it likes."""
    over = (ENDLESS.steps or 0) + 1  # the fixture's --max-steps, plus one
    big = paragraph_job(steps=2)
    big = RewriteJob(big.request, dataclasses.replace(big.settings, steps=over), big.job_id, big.templates)
    steps_message = f"asks for {over} steps; this server allows at most {over - 1} (its --max-steps)"
    tokens_message = "at most 8192 (its --max-new-tokens)"
    for path, body, message in (
        ("/v1/completions", job_to_json(big), steps_message),
        ("/v1/alternatives", job_to_json(big) | {"count": 2}, steps_message),
        ("/v1/completions", {"prompt": [2, 5, 6], "max_tokens": 10**6}, tokens_message),
    ):
        refused = post_raw(server, path, body)
        assert refused.status == 400, (path, refused.status)
        assert message in json.loads(refused.read())["error"]["message"]
    assert health(server) == {"running": 0, "waiting": 0, "max_waiting": 1}  # nothing ran
