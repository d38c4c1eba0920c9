"""Slow clients: connections that send a request a byte at a time and never finish it (see runner.slow_clients).

A server that gives each connection a thread or a process while it reads the request (gunicorn's sync and gthread
workers) is held by a client that sends slowly, however little work its request is; an event loop only notes the
bytes and moves on. This is the client side of that: a thread in the harness process (on the client's cores)
opens K raw sockets to the server and sends each one byte every ``byte_interval_s``:

* ``headers``: the request line and headers, one byte at a time, never the blank line that ends them (after the
  first headers it keeps adding ``X-Slow-<i>`` headers of ~1 kB, so it never runs out of bytes to send);
* ``body``: a GET's complete headers with ``Content-Length`` (BODY_LENGTH), then its body one byte at a time,
  never all of it.

It measures, rather than assumes, when it started and when the slow clients were gone: each connection's open
and close epochs, whether the server closed it (read as end-of-file or a reset, the moment it happened, since
every open socket is watched between bytes) and the first line of anything the server answered. The experiment's
phases come from these epochs. Every socket is closed on the way out, whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any, cast

from runner.config import SlowStyle

# The request the slow clients send: the cheapest one the apps serve, so that in the body style (whose headers are
# complete) what the server does with it costs next to nothing.
PATH = "/short?query_ms=0"
# The body the "body" style announces: never completed (a second per byte would take days).
BODY_LENGTH = 1_000_000
# Each added header of the "headers" style: short enough for every server's header-size limit (gunicorn's
# limit_request_field_size is 8190 bytes), and the count of them stays small (gunicorn allows 100 fields).
PAD_BYTES = 1000
CONNECT_TIMEOUT_S = 5.0
# How often the thread looks for Locust's start while waiting for it.
POLL_S = 0.02


def request_bytes(style: SlowStyle, host: str, port: int) -> tuple[bytes, Iterator[bytes]]:
    """What a slow client sends at once when it connects, and then the bytes it sends one per interval."""
    head = f"GET {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: bench-slow-client\r\n"
    if style == "body":
        complete = f"{head}Content-Length: {BODY_LENGTH}\r\n\r\n".encode()
        return complete, (b"a" for _ in range(BODY_LENGTH - 1))

    def headers() -> Iterator[bytes]:
        for char in head.encode():
            yield bytes([char])
        index = 0
        while True:
            index += 1
            for char in f"X-Slow-{index}: {'a' * PAD_BYTES}\r\n".encode():
                yield bytes([char])

    return b"", headers()


@dataclass
class SlowConnection:
    """One slow client, as measured: epochs in seconds, None where it never happened."""

    opened: float | None = None
    closed: float | None = None
    closed_by: str | None = None  # "server" (end-of-file or reset), "harness" (the hold ended), or None
    sent_bytes: int = 0
    answer: str = ""  # the first line of what the server sent back, if anything
    error: str = ""  # why it could not connect


@dataclass
class TrickleResult:
    """The slow clients' own record: when they began connecting, when all were open, when the last was gone."""

    count: int
    style: SlowStyle
    byte_interval_s: float
    hold_s: float
    started: float | None = None
    all_open: float | None = None
    left: float | None = None
    connections: list[SlowConnection] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Trickler:
    """K slow clients against ``host:port`` for ``hold_s``, begun ``delay_s`` after ``ready()`` first says yes.

    Use as a context manager around the normal load: entering starts the thread, leaving stops it (early, if the
    load ended first) and closes every socket. ``result`` is what it measured.
    """

    def __init__(
        self,
        host: str,
        port: int,
        count: int,
        style: SlowStyle,
        byte_interval_s: float,
        hold_s: float,
        *,
        ready: Callable[[], bool],
        delay_s: float,
        cpus: frozenset[int] = frozenset(),
    ) -> None:
        self.host, self.port = host, port
        self.ready, self.delay_s, self.cpus = ready, delay_s, cpus
        self.result = TrickleResult(count, style, byte_interval_s, hold_s)
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)
        self._sockets: list[tuple[socket.socket, SlowConnection, Iterator[bytes]]] = []
        self._unsent: dict[int, bytes] = {}  # a byte the kernel did not take, by id of its connection

    def __enter__(self) -> Trickler:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """End the hold now (if it has not ended) and wait until every socket is closed."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        try:
            if self.cpus and hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(0, self.cpus)  # on Linux: this thread only, on the client's cores
            while not self.ready():
                if self._stop.wait(POLL_S):
                    return
            if self._stop.wait(self.delay_s):
                return
            self._hold()
        except Exception as error:  # kept for the caller, which raises it in its own thread
            self.error = error
        finally:
            self._close_all()

    def _hold(self) -> None:
        result = self.result
        result.started = time.time()
        first, _ = request_bytes(result.style, self.host, self.port)
        for _ in range(result.count):
            self._connect(first)
        result.all_open = time.time()
        end = result.all_open + result.hold_s
        if not result.count:
            self._stop.wait(result.hold_s)  # no slow client: the same schedule, so K = 0 is measured alike
            return
        next_byte = result.all_open + result.byte_interval_s
        with selectors.DefaultSelector() as selector:
            for sock, conn, _ in self._open():
                selector.register(sock, selectors.EVENT_READ, conn)
            while not self._stop.is_set() and self._open():
                now = time.time()
                if now >= end:
                    break
                for key, _ in selector.select(timeout=max(0.0, min(next_byte, end) - now)):
                    conn = key.data
                    if self._read(cast(socket.socket, key.fileobj), conn):
                        selector.unregister(key.fileobj)
                if time.time() >= next_byte:
                    for sock, conn, rest in self._open():
                        if not self._send(sock, conn, rest):
                            selector.unregister(sock)
                    next_byte += result.byte_interval_s

    def _open(self) -> list[tuple[socket.socket, SlowConnection, Iterator[bytes]]]:
        return [entry for entry in self._sockets if entry[1].closed is None]

    def _connect(self, first: bytes) -> None:
        conn = SlowConnection()
        self.result.connections.append(conn)
        try:
            sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_S)
        except OSError as error:
            conn.error = f"{type(error).__name__}: {error}"
            return
        conn.opened = time.time()
        _, rest = request_bytes(self.result.style, self.host, self.port)
        self._sockets.append((sock, conn, rest))
        try:
            if first:
                sock.sendall(first)
                conn.sent_bytes += len(first)
            sock.setblocking(False)
            self._send(sock, conn, rest)
        except OSError:
            self._server_closed(conn)

    def _send(self, sock: socket.socket, conn: SlowConnection, rest: Iterator[bytes]) -> bool:
        """One more byte; False if the server had closed the connection (noted; the socket is closed on the way out)."""
        byte = self._unsent.pop(id(conn), b"") or next(rest, b"")
        if not byte:
            return True  # nothing left to send (a body one byte short of complete): hold it as it is
        try:
            conn.sent_bytes += sock.send(byte)
        except BlockingIOError:
            self._unsent[id(conn)] = byte  # the kernel's buffer is full (the server is not reading): next interval
        except OSError:
            self._server_closed(conn)
            return False
        return True

    def _read(self, sock: socket.socket, conn: SlowConnection) -> bool:
        """Read what the server sent; True if it closed the connection."""
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return False
        except OSError:
            self._server_closed(conn)
            return True
        if not data:
            self._server_closed(conn)
            return True
        if not conn.answer:
            conn.answer = data.split(b"\r\n", 1)[0][:200].decode("latin-1")
        return False

    @staticmethod
    def _server_closed(conn: SlowConnection) -> None:
        """The server closed (or reset) the connection: noted now; the socket itself is closed on the way out."""
        if conn.closed is None:
            conn.closed, conn.closed_by = time.time(), "server"

    def _close_all(self) -> None:
        """Close every socket still open (the hold is over, or something went wrong) and note when."""
        for sock, conn, _ in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
            if conn.closed is None:
                conn.closed, conn.closed_by = time.time(), "harness"
        result = self.result
        if result.started is not None:
            # Gone when the last one closed, by either side; with none opened, when the hold ended.
            closes = [c.closed for c in result.connections if c.opened is not None and c.closed is not None]
            result.left = max(closes) if closes else time.time()
