"""What keeps ``diffedit serve`` answering under load and misuse: a bounded queue in arrival order, a
watch on each client's connection, and only diffedit's own line-start rules compiled from a request.

- ``JobQueue``: one job runs at a time on the one engine; at most ``max_waiting`` more wait, in arrival
  order; one more is refused at once (``diffedit serve`` answers 503 with ``Retry-After``: nothing was
  started, so the client may send it again). A waiting job whose client left gives up its place.
- ``ClientWatch``: a ``CancelToken`` that also fires when the client's connection reached its end (it
  closed the stream, or gave up on a non-streamed answer), read between denoising steps, so a job nobody
  waits for stops at its next step and frees the engine.
- ``check_line_starts``: a shape-true job carries, for each slot, regular expressions its first token may
  not begin (``FreeText.line_start_patterns``); the engine compiles them and matches them against every
  token of the vocabulary. From a client that is a regular-expression denial of service waiting to happen
  (and each new set costs a vocabulary scan and a cached mask), so the server takes exactly the sets
  diffedit's own templates produce and refuses any other with a 400.
"""

from __future__ import annotations

import contextlib
import math
import select
import socket
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from diffedit.engine.types import CancelToken, FreeText, GenerationSettings, RewriteJob
from diffedit.engine.wire import WireError

POLL_S = 0.2  # how often a waiting job looks at its client


class Ticket:
    """A job's place in the queue."""


class JobQueue:
    """One job at a time, at most ``max_waiting`` waiting (``None``: no limit), first come first served.

    Running means holding ``lock`` (the server's engine lock), so code that takes that lock directly still
    never runs beside a queued job."""

    def __init__(self, max_waiting: int | None, lock: threading.Lock | None = None) -> None:
        self.max_waiting = max_waiting
        self.lock = lock or threading.Lock()
        self._cond = threading.Condition()
        self._waiting: deque[Ticket] = deque()
        self._durations: deque[float] = deque(maxlen=16)  # the last jobs' run times, for Retry-After
        self._started = 0.0

    def enter(self) -> Ticket | None:
        """A place at the end of the queue, or ``None`` when it is full (refuse the job: nothing started)."""
        with self._cond:
            if self.max_waiting is not None and len(self._waiting) >= self.max_waiting:
                return None
            ticket = Ticket()
            self._waiting.append(ticket)
            return ticket

    def wait_turn(
        self, ticket: Ticket, gone: Callable[[], bool], tick: Callable[[int], None] | None = None
    ) -> bool:
        """Block until ``ticket`` runs (True: the lock is held; call ``done()`` after) or its client is
        ``gone()`` (False: its place is given up). ``tick(position)`` about every ``POLL_S`` while it waits
        (position 1: next)."""
        while True:
            with self._cond:
                position = self._waiting.index(ticket) + 1
            if position == 1 and self.lock.acquire(timeout=POLL_S):
                left = gone()  # a job whose client left while it waited never starts
                with self._cond:
                    self._waiting.popleft()
                    self._started = time.monotonic()
                    self._cond.notify_all()
                if left:
                    self.lock.release()
                return not left
            if gone():
                with self._cond:
                    self._waiting.remove(ticket)
                    self._cond.notify_all()  # the next one may be at the head now
                return False
            if tick is not None:
                tick(position)
            if position > 1:
                with self._cond:
                    self._cond.wait(POLL_S)

    def done(self) -> None:
        """The running job finished (or failed, or was cancelled): the next one starts."""
        with self._cond:
            self._durations.append(time.monotonic() - self._started)
        self.lock.release()

    def running(self) -> bool:
        return self.lock.locked()

    def waiting(self) -> int:
        with self._cond:
            return len(self._waiting)

    def retry_after_s(self) -> int:
        """Seconds a refused client should wait: the median recent job times the jobs ahead of it."""
        with self._cond:
            typical = statistics.median(self._durations) if self._durations else 1.0
            return max(1, math.ceil(typical * (len(self._waiting) + 1)))


def client_gone(sock: socket.socket) -> bool:
    """Whether the client's end of the connection is closed: readable, and reading would give nothing
    (a client that sent more, a pipelined request, still counts as there)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):  # reset, or already closed
        return True


class ClientWatch(CancelToken):
    """Cancelled when ``cancel()`` is called or the client's connection closed (looked at most every
    ``every_s``: the engine reads ``cancelled`` once per denoising step)."""

    def __init__(self, sock: socket.socket, every_s: float = 0.05) -> None:
        super().__init__()
        self._sock = sock
        self._every_s = every_s
        self._last = 0.0
        self._lock = threading.Lock()

    def gone_now(self) -> bool:
        """``cancelled``, looking at the connection now (not at most every ``every_s``): for the moment a
        queued job is about to start, so that a client that left just before never has its job run."""
        with self._lock:
            self._last = 0.0
        return self.cancelled

    @property
    def cancelled(self) -> bool:
        if super().cancelled:
            return True
        now = time.monotonic()
        with self._lock:
            if now - self._last >= self._every_s:
                self._last = now
                if client_gone(self._sock):
                    self.cancel()
        return super().cancelled


@cache
def known_line_starts() -> frozenset[tuple[str, ...]]:
    """Every ``line_start_patterns`` diffedit's templates produce: those of one block of each kind (a kind
    with new rules would show in tests/test_serve_limits.py, which builds jobs from real documents)."""
    from diffedit.rewrites import build_job

    samples = [
        "A paragraph.",
        "# A heading",
        "A heading\n=========",
        "```\ncode\n```",
        "    indented code",
        "| a | b |\n|---|---|\n| c | d |",
        "a | b\n--|--\nc | d",
        "- an item",
        "1. an item",
        "> a quote",
    ]
    found: set[tuple[str, ...]] = set()
    for text in samples:
        with contextlib.suppress(ValueError):
            job = build_job(text, 0, len(text), GenerationSettings())
            for template in job.templates or ():
                found.update(s.line_start_patterns for s in template.segments if isinstance(s, FreeText))
    return frozenset(found)


def check_line_starts(job: RewriteJob) -> None:
    """Refuse (``WireError``, a 400) a job whose line-start rules are not diffedit's own."""
    known = known_line_starts()
    for template in job.templates or ():
        for seg in template.segments:
            if isinstance(seg, FreeText) and seg.line_start_patterns not in known:
                raise WireError(
                    f"a {seg.role} slot's line_start_patterns are not among the rules diffedit's templates "
                    "use; this server compiles no other regular expressions (do client and server versions "
                    "differ?)"
                )


@dataclass(frozen=True)
class JobLimits:
    """The most one request may ask of the engine (``diffedit serve --max-steps`` etc.): without them one
    client could hold the engine, and every editor queued behind it, for as long as it likes."""

    steps: int = 1000  # denoising steps per canvas
    new_tokens: int = 8192  # tokens written (canvases x canvas length, rounded up)
    context_tokens: int = 32768  # document context read around the target

    def check(self, steps: int | None, new_tokens: int | None, context_tokens: int | None) -> None:
        """``WireError`` (a 400, nothing run) naming what is over which limit and the option that sets it."""
        for what, value, limit, option in (
            ("steps", steps, self.steps, "--max-steps"),
            ("new tokens", new_tokens, self.new_tokens, "--max-new-tokens"),
            ("context tokens", context_tokens, self.context_tokens, "--max-context-tokens"),
        ):
            if value is not None and value > limit:
                raise WireError(
                    f"the request asks for {value} {what}; this server allows at most {limit} "
                    f"(its {option}): ask for fewer"
                )

    def check_job(self, job: RewriteJob) -> None:
        s = job.settings
        self.check(s.steps, s.max_new_tokens, s.context_tokens)
