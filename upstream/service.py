"""The upstream HTTP service: answers after the delay each call asks for, with JSON rows of a given size, serving at
most ``capacity`` calls at once (the rest queue inside it), and fails on request.

One aiohttp.web application under one uvloop event loop, in one process: every call passes the same
``asyncio.Semaphore``, so the capacity is exact and shared by all the clients of all the server's workers, and a
wait is an ``asyncio.sleep`` that costs the service nothing while it lasts. Its own cost per call is aiohttp's
HTTP parsing (llhttp, in C), one small JSON encoding and the write: a fraction of a millisecond of CPU, which the
harness measures per step on the core it is pinned to (the client's, never the measured server's). uvicorn with
Starlette would do as well; aiohttp is already the async side's second client, so the service adds no package.

Endpoints (GET; every one takes ``ms`` (the delay), ``bytes`` (pad the JSON to at least that size) and ``fault``
(``500``, ``reset`` or ``hang`` for this call; the service's ``--fault`` does it for every call)):

* ``/user/{id}``: the seeded user, ``{"id": .., "name": ..}``;
* ``/items/{user_id}?rows=N``: the user's first N listing rows, ``{"items": [{"id", "title", "price_cents",
  "user_name"}, ..]}``;
* ``/short/{id}``: ``{"ok": true}``;
* ``/health``: ``{"status": "ok", "service": "upstream", "pid", "capacity", "in_service", "queued", "served"}``,
  never delayed nor queued (the harness asks it while a step runs).

The rows are :mod:`simdb.rows`' seeded ones, so a page built from the upstream's answers is the page every other
backend returns. A call waits for a free slot first and holds it for its delay, as a query holds a pooled
connection; a ``hang`` holds its slot until the caller gives up and closes the connection.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import struct
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import uvloop
from aiohttp import web

from httpwait.config import FAULTS, MAX_BODY_BYTES
from simdb.rows import seeded_items, seeded_user
from simdb.workload import MAX_QUERY_MS, MAX_ROWS

HOST = "127.0.0.1"
# A hung call is given up by its caller long before this; the bound only keeps a forgotten one from living forever.
HANG_S = 600.0
JSON_TYPE = "application/json"


class BadCall(ValueError):
    """A query parameter the service cannot serve; answered 400 with the parameter named."""


@dataclass
class Counters:
    """What the service is doing right now, for /health (and the tests that check the capacity is kept)."""

    in_service: int = 0
    queued: int = 0
    served: int = 0


def _number(query: Mapping[str, str], name: str, upper: float, *, integer: bool = False) -> float:
    raw = query.get(name, "0")
    try:
        value = float(int(raw)) if integer else float(raw)
    except ValueError:
        raise BadCall(f"{name} must be a number, got {raw[:40]!r}") from None
    if not (math.isfinite(value) and 0 <= value <= upper):
        raise BadCall(f"{name} must be between 0 and {upper:g}, got {raw[:40]!r}")
    return value


def padded(body: dict[str, Any], size: int) -> bytes:
    """The body's compact JSON, with a ``pad`` string added when it is shorter than ``size`` bytes."""
    data = json.dumps(body, separators=(",", ":")).encode()
    missing = size - len(data) - len(',"pad":""')
    if missing <= 0:
        return data
    return json.dumps({**body, "pad": "x" * missing}, separators=(",", ":")).encode()


def reset(request: web.Request) -> None:
    """Close the call's connection with a TCP reset (SO_LINGER 0, then close), as a crashed peer would."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def make_app(capacity: int, fault: str = "none") -> web.Application:
    """The service's application: ``capacity`` calls in service at once (0: no limit), ``fault`` for every call."""
    if fault not in FAULTS:
        raise ValueError(f"fault must be one of {', '.join(FAULTS)}, got {fault!r}")
    counters = Counters()
    slots = asyncio.Semaphore(capacity) if capacity > 0 else None
    Body = Callable[[web.Request], dict[str, Any]]

    def endpoint(build: Body) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                delay = _number(request.query, "ms", MAX_QUERY_MS) / 1000
                size = int(_number(request.query, "bytes", MAX_BODY_BYTES, integer=True))
                mode = request.query.get("fault", fault)
                if mode not in FAULTS:
                    raise BadCall(f"fault must be one of {', '.join(FAULTS)}, got {mode[:40]!r}")
                body = build(request)
            except BadCall as error:
                return _json({"error": "bad_call", "detail": str(error)}, 400)
            counters.queued += 1
            entered = False
            try:
                async with slots if slots is not None else contextlib.nullcontext():
                    counters.queued -= 1
                    entered = True
                    counters.in_service += 1
                    try:
                        return await _serve(request, delay, size, mode, body)
                    finally:
                        counters.in_service -= 1
                        counters.served += 1
            finally:
                if not entered:  # given up (the caller left) while it waited for a slot
                    counters.queued -= 1

        return handle

    def user(request: web.Request) -> dict[str, Any]:
        row = seeded_user(_path_id(request, "id"))
        return {"id": row.id, "name": row.name}

    def items(request: web.Request) -> dict[str, Any]:
        rows = int(_number(request.query, "rows", MAX_ROWS, integer=True))
        found = seeded_items(_path_id(request, "user_id"), rows)
        return {"items": [item._asdict() for item in found]}

    def short(request: web.Request) -> dict[str, Any]:
        _path_id(request, "id")
        return {"ok": True}

    async def health(request: web.Request) -> web.StreamResponse:
        return _json(
            {
                "status": "ok",
                "service": "upstream",
                "pid": os.getpid(),
                "capacity": capacity,
                "fault": fault,
                "in_service": counters.in_service,
                "queued": counters.queued,
                "served": counters.served,
            }
        )

    app = web.Application()
    app.router.add_get("/user/{id}", endpoint(user))
    app.router.add_get("/items/{user_id}", endpoint(items))
    app.router.add_get("/short/{id}", endpoint(short))
    app.router.add_get("/health", health)
    return app


async def _serve(request: web.Request, delay: float, size: int, mode: str, body: dict[str, Any]) -> web.StreamResponse:
    """The call's delay, then its answer or its fault."""
    if mode == "hang":
        await asyncio.sleep(HANG_S)
    await asyncio.sleep(delay)
    if mode == "500":
        return _json({"error": "upstream_fault", "detail": "answered 500 as asked"}, 500)
    if mode == "reset":
        reset(request)
        # Nothing can be written any more; aiohttp drops the response of a connection that is gone.
        raise asyncio.CancelledError
    return web.Response(body=padded(body, size), content_type=JSON_TYPE)


def _path_id(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 12:
        raise BadCall(f"{name} must be a whole number, got {raw[:40]!r}")
    return int(raw)


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=status, content_type=JSON_TYPE)


async def serve(host: str, port: int, capacity: int, fault: str) -> None:
    """Serve until SIGTERM or SIGINT; no access log (it would cost the service CPU per call, as it would a server)."""
    # handler_cancellation: a caller that gives up (its timeout) closes the connection, and the call's handler is
    # cancelled with it, so a hung call frees its slot instead of holding it for HANG_S.
    runner = web.AppRunner(make_app(capacity, fault), access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=2048)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"upstream serving on http://{host}:{port} (capacity {capacity or 'unlimited'}, fault {fault})", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m upstream", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=HOST, help="address to listen on (loopback only by default)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--capacity", type=int, default=0, help="calls served at once; the rest queue (0: no limit)")
    parser.add_argument("--fault", choices=FAULTS, default="none", help="how every call fails (default: none)")
    args = parser.parse_args(argv)
    if args.capacity < 0:
        parser.error("--capacity must be >= 0")
    uvloop.run(serve(args.host, args.port, args.capacity, args.fault))
    return 0


if __name__ == "__main__":
    sys.exit(main())
