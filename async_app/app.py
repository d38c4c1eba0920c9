"""FastAPI app: routing and request parsing only; every wait happens in the database face :mod:`pgdb.choose`
picks (the simulated database, or a real driver's pool).

Served by uvicorn with ``async_app.app:create_app --factory``. Which endpoints it registers is the one setting
that differs between the configurations it is measured in (``APP_ENDPOINTS``, see :mod:`async_app.settings`):

* ``async`` (the default): ``async def`` endpoints await the database's awaitable face, so one event loop serves
  other requests while a query waits;
* ``def``: plain ``def`` endpoints call the blocking face, as the Flask app does; FastAPI runs them in AnyIO's
  thread pool, so a request holds a pool thread while it waits and the pool's size caps what is in service;
* ``blocking``: ``async def`` endpoints that call the blocking face, the common mistake: each wait stalls the
  event loop, so the process serves one request at a time however many are waiting.

The last two call the very ``run_page`` the Flask app calls, on the same blocking faces: only where the wait
happens differs. The face's pool is opened in the app's lifespan, inside the worker process and (for an awaitable
face) the event loop that uses it, and closed there when the server stops.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from async_app.settings import AppSettings, die_with_parent
from httpwait.config import UpstreamConfig
from pgdb import choose
from simdb import DatabaseConfig, DatabaseUnavailable, ParamError, Timing, UpstreamFailed, WorkloadConfig
from simdb import workload as wl

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Response] | Callable[[Request], Awaitable[Response]]
Step = Callable[[], Awaitable[None]]


def answer(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Every response this app sends: the JSON bytes both apps share (Starlette's JSONResponse happens to encode
    the same way today; sharing the encoder keeps it so), with uvicorn writing the same status line as Flask's."""
    return Response(wl.json_bytes(body), status_code=status, headers=headers, media_type=wl.JSON_TYPE)


async def drain_body(request: Request) -> None:
    """Read and drop what is left of the request's body, up to :data:`~simdb.workload.MAX_DRAIN_BYTES`, before an
    answer that ignores it: uvicorn closes a connection whose body was not read, and a close with unread bytes sends
    a reset that can reach the client before the answer does (the Flask app does the same)."""
    read = 0
    try:
        async for chunk in request.stream():
            read += len(chunk)
            if read >= wl.MAX_DRAIN_BYTES:
                return
    except ClientDisconnect:
        return  # the client has gone: nothing is left to protect


def respond(body: dict[str, Any], timing: Timing) -> Response:
    return answer(body, headers={"Server-Timing": timing.header()})


def query(request: Request) -> list[tuple[str, str]]:
    """The query string's bytes as sent, read by the parser both apps share (not Starlette's ``query_params``)."""
    raw: bytes = request.scope["query_string"]
    return wl.query_items(raw)


def async_endpoints(db: choose.AsyncFace, defaults: WorkloadConfig) -> tuple[Endpoint, Endpoint]:
    async def page(request: Request) -> Response:
        plan = wl.parse_page(query(request), defaults)
        return respond(*await wl.run_page_async(db, plan))

    async def short(request: Request) -> Response:
        plan = wl.parse_short(query(request), defaults)
        return respond(*await wl.run_short_async(db, plan))

    return page, short


def def_endpoints(db: choose.BlockingFace, defaults: WorkloadConfig) -> tuple[Endpoint, Endpoint]:
    def page(request: Request) -> Response:
        # A plain def: FastAPI calls it in AnyIO's thread pool, so the wait holds a pool thread, not the loop.
        plan = wl.parse_page(query(request), defaults)
        return respond(*wl.run_page(db, plan))

    def short(request: Request) -> Response:
        plan = wl.parse_short(query(request), defaults)
        return respond(*wl.run_short(db, plan))

    return page, short


def blocking_endpoints(db: choose.BlockingFace, defaults: WorkloadConfig) -> tuple[Endpoint, Endpoint]:
    async def page(request: Request) -> Response:
        # The mistake, on purpose: a blocking wait inside async def holds the event loop for all of it.
        plan = wl.parse_page(query(request), defaults)
        return respond(*wl.run_page(db, plan))

    async def short(request: Request) -> Response:
        plan = wl.parse_short(query(request), defaults)
        return respond(*wl.run_short(db, plan))

    return page, short


def create_app(
    database: DatabaseConfig | None = None,
    workload: WorkloadConfig | None = None,
    settings: AppSettings | None = None,
    driver: str | None = None,
    upstream: UpstreamConfig | None = None,
) -> FastAPI:
    """Build the app. Settings not passed in are read from the environment once, here, and never again."""
    settings = settings or AppSettings.from_env()
    if settings.die_with_parent:
        die_with_parent()  # here because uvicorn calls the factory in every worker process it spawns
    if database is None:  # the database and its driver come from the environment together
        database, driver = DatabaseConfig.from_env(), driver or choose.driver_from_env()
    defaults = workload or WorkloadConfig.from_env()

    # Only the face the endpoints wait on is built (a real one holds connections): the awaitable face for async
    # endpoints, opened in the loop; the blocking face for the others, opened in a thread as it will be used.
    db: choose.AsyncFace | choose.BlockingFace
    if settings.endpoints == "async":
        aio = db = choose.async_database(database, driver, upstream)
        page, short = async_endpoints(aio, defaults)
        open_db: Step = aio.open_async
        close_db: Step = aio.close_async
    else:
        blocking = db = choose.blocking_database(database, driver, upstream)
        page, short = (def_endpoints if settings.endpoints == "def" else blocking_endpoints)(blocking, defaults)

        async def open_db() -> None:
            await anyio.to_thread.run_sync(blocking.open)

        async def close_db() -> None:
            await anyio.to_thread.run_sync(blocking.close)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # AnyIO keeps one limiter per event loop, so it can only be sized once the loop runs: here, at startup.
        if settings.endpoints == "def":
            anyio.to_thread.current_default_thread_limiter().total_tokens = settings.thread_limit
        await open_db()
        try:
            yield
        finally:
            await close_db()

    # No slash redirects (Starlette's default sends /page/ to /page with a 307): a path is served exactly as it is
    # sent or not at all, as in the Flask app (README, "The endpoints").
    app = FastAPI(
        title="bench async app",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.database = db
    app.state.workload = defaults
    app.state.settings = settings

    # Routes answer HEAD as well as GET, as Flask's do on its own: both apps must answer every request alike.
    app.add_api_route("/page", page, methods=["GET", "HEAD"])
    app.add_api_route("/short", short, methods=["GET", "HEAD"])

    # Health waits on nothing, so it is the same in every style: not measured, only asked when the server starts.
    @app.api_route("/health", methods=["GET", "HEAD"])
    async def health(request: Request) -> Response:
        wl.parse_none(query(request))
        return answer({"status": "ok", "app": "fastapi", "pid": os.getpid()})

    @app.exception_handler(ParamError)
    async def bad_parameter(request: Request, error: ParamError) -> Response:
        return answer(error.body(), 400)

    @app.exception_handler(wl.QueryTooLong)
    async def query_too_long(request: Request, error: wl.QueryTooLong) -> Response:
        return answer(error.body(), 414)

    @app.exception_handler(DatabaseUnavailable)
    async def database_unavailable(request: Request, error: DatabaseUnavailable) -> Response:
        log.warning("503: %s (%r)", error.detail, error.__cause__)
        return answer(error.body(), 503)

    @app.exception_handler(UpstreamFailed)
    async def upstream_failed(request: Request, error: UpstreamFailed) -> Response:
        log.warning("%d: %s (%r)", error.status, error.detail, error.__cause__)
        return answer(error.body(), error.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        # Starlette's own 405 carries an Allow header this answer replaces with the shared one.
        code = error.status_code
        await drain_body(request)
        return answer(wl.http_error_body(code, request.method), code, wl.http_error_headers(code))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        return answer({"error": "bad_request", "detail": "malformed request"}, 400)

    return app
