"""HTTP for the remote engines: timeouts, backoff with jitter, and streams that neither hang nor outlive Stop.

Standard library only (``http.client``), so the connection's stages can be told apart:

- the connection could not be made (refused, unknown host, connect timeout): ``NotSent``, a
  ``urllib.error.URLError``; nothing reached the server, so any request, a rewrite included, may be retried;
- the server answered with an error status: ``urllib.error.HTTPError`` (``headers`` carry ``Retry-After``); a
  503 from ``diffedit serve`` means the job was refused before it started, so it too may be retried;
- anything after the request was sent (a read timeout, a reset): ``OSError`` / ``HTTPException``; the job may
  have started, so only idempotent GETs are retried.

``Timeouts.stall_s`` bounds the silence between two lines of a stream: ``diffedit serve`` sends a frame per
step and, while a job waits its turn, a ``{"type": "queued"}`` line every ``HEARTBEAT_S`` seconds, so a
silence that long means the server or the network is stuck.
"""

from __future__ import annotations

import contextlib
import io
import random
import socket
import threading
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http.client import HTTPConnection, HTTPResponse, HTTPSConnection
from types import TracebackType
from urllib.parse import urlsplit

from diffedit.engine.types import Cancelled, CancelToken

HEARTBEAT_S = 2.0  # how often diffedit serve says "still queued" on a stream (far below the stall timeout)
MAX_ERROR_BODY = 64 * 1024  # an error answer's body is read up to this much (its message), never more
RETRY_STATUSES = frozenset({500, 502, 503, 504})  # for GETs; a POST is retried on 503 only


@dataclass(frozen=True)
class Timeouts:
    connect_s: float = 10.0  # to open the connection (TCP, and TLS for https)
    read_s: float = 30.0  # for an answer's status line and headers, and a GET's whole body
    stall_s: float = 120.0  # the longest silence between two lines of a stream (a step, or the prefill)


@dataclass(frozen=True)
class Backoff:
    """``tries`` attempts; before attempt k+1 a wait drawn from [c/2, c] with c = min(cap_s, base_s * 2**k)
    ("equal jitter": never zero, and editors that failed together do not retry together)."""

    tries: int = 3
    base_s: float = 0.5
    cap_s: float = 8.0

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        ceiling = min(self.cap_s, self.base_s * 2**attempt)
        wait = (rng or random).uniform(ceiling / 2, ceiling)
        if retry_after is not None:  # the server's own estimate, within the cap
            wait = max(wait, min(retry_after, self.cap_s))
        return wait


class NotSent(urllib.error.URLError):
    """The connection could not be made: the request never reached the server."""


def retry_after(headers: Message | None) -> float | None:
    """``Retry-After`` in seconds (the delta form; an HTTP date is ignored)."""
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def pause(seconds: float, cancel: CancelToken | None = None) -> None:
    """Sleep, waking every 50 ms to raise ``Cancelled`` as soon as ``cancel`` fires."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if cancel is not None and cancel.cancelled:
            raise Cancelled()
        time.sleep(min(0.05, left))
    if cancel is not None and cancel.cancelled:
        raise Cancelled()


class Exchange:
    """One request and its answer on a connection of its own; closing it closes the socket (which, for a
    stream, is how the server learns the client left)."""

    def __init__(
        self,
        base_url: str,
        method: str,
        path: str,
        headers: dict[str, str],
        timeouts: Timeouts,
        body: bytes | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        connection = HTTPSConnection if parts.scheme == "https" else HTTPConnection
        self.url = base_url + path
        self.conn = connection(parts.hostname or "", parts.port, timeout=timeouts.connect_s)
        try:
            self.conn.connect()
        except OSError as exc:  # refused, unknown host, connect timeout
            self.conn.close()
            raise NotSent(exc) from exc
        sock = self.conn.sock
        assert isinstance(sock, socket.socket)
        self.sock: socket.socket = sock
        sock.settimeout(timeouts.read_s)
        try:
            self.conn.request(method, parts.path.rstrip("/") + path, body=body, headers=headers)
            self.response: HTTPResponse = self.conn.getresponse()
            if self.response.status >= 400:
                data = self.response.read(MAX_ERROR_BODY)
                raise urllib.error.HTTPError(
                    self.url,
                    self.response.status,
                    self.response.reason,
                    self.response.headers,
                    io.BytesIO(data),
                )
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        response = getattr(self, "response", None)
        if response is not None:
            response.close()
        with contextlib.suppress(OSError):  # not connected any more
            self.sock.shutdown(socket.SHUT_RDWR)  # the server sees the end now, whoever holds the socket
        self.sock.close()
        self.conn.close()

    def __enter__(self) -> Exchange:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class CloseOnCancel:
    """While a stream is read, a watcher that shuts the socket down as soon as ``cancel`` fires, so a reader
    blocked in ``readline`` (a queued job sends a line only every few seconds) wakes at once."""

    def __init__(self, sock: socket.socket, cancelled: Callable[[], bool]) -> None:
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, args=(sock, cancelled), name="diffedit-stream-cancel", daemon=True
        )
        self._thread.start()

    def _watch(self, sock: socket.socket, cancelled: Callable[[], bool]) -> None:
        while not self._done.wait(0.05):
            if cancelled():
                with contextlib.suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)
                return

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
