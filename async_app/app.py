"""FastAPI app: routing and request parsing only; every wait happens in :mod:`simdb`.

Served by uvicorn with ``async_app.app:create_app --factory``. Which endpoints it registers is the one setting
that differs between the configurations it is measured in (``APP_ENDPOINTS``, see :mod:`async_app.settings`):

* ``async`` (the default): ``async def`` endpoints await the database's awaitable face, so one event loop serves
  other requests while a query waits;
* ``def``: plain ``def`` endpoints call the blocking face, as the Flask app does; FastAPI runs them in AnyIO's
  thread pool, so a request holds a pool thread while it waits and the pool's size caps what is in service;
* ``blocking``: ``async def`` endpoints that call the blocking face, the common mistake: each wait stalls the
  event loop, so the process serves one request at a time however many are waiting.

The last two call the very ``run_page`` the Flask app calls: only where the wait happens differs.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from async_app.settings import AppSettings, die_with_parent
from simdb import DatabaseConfig, ParamError, SimulatedDatabase, Timing, WorkloadConfig
from simdb import workload as wl

Endpoint = Callable[[Request], JSONResponse] | Callable[[Request], Awaitable[JSONResponse]]


def create_app(
    database: DatabaseConfig | None = None,
    workload: WorkloadConfig | None = None,
    settings: AppSettings | None = None,
) -> FastAPI:
    """Build the app. Settings not passed in are read from the environment once, here, and never again."""
    settings = settings or AppSettings.from_env()
    if settings.die_with_parent:
        die_with_parent()  # here because uvicorn calls the factory in every worker process it spawns

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # AnyIO keeps one limiter per event loop, so it can only be sized once the loop runs: here, at startup.
        if settings.endpoints == "def":
            anyio.to_thread.current_default_thread_limiter().total_tokens = settings.thread_limit
        yield

    app = FastAPI(title="bench async app", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    db = SimulatedDatabase(database or DatabaseConfig.from_env())
    defaults = workload or WorkloadConfig.from_env()
    app.state.database = db
    app.state.workload = defaults
    app.state.settings = settings

    def respond(body: dict[str, Any], timing: Timing) -> JSONResponse:
        return JSONResponse(body, headers={"Server-Timing": timing.header()})

    async def page_async(request: Request) -> JSONResponse:
        plan = wl.parse_page(request.query_params.multi_items(), defaults)
        return respond(*await wl.run_page_async(db, plan))

    async def short_async(request: Request) -> JSONResponse:
        plan = wl.parse_short(request.query_params.multi_items(), defaults)
        return respond(*await wl.run_short_async(db, plan))

    def page_def(request: Request) -> JSONResponse:
        # A plain def: FastAPI calls it in AnyIO's thread pool, so the wait holds a pool thread, not the loop.
        plan = wl.parse_page(request.query_params.multi_items(), defaults)
        return respond(*wl.run_page(db, plan))

    def short_def(request: Request) -> JSONResponse:
        plan = wl.parse_short(request.query_params.multi_items(), defaults)
        return respond(*wl.run_short(db, plan))

    async def page_blocking(request: Request) -> JSONResponse:
        # The mistake, on purpose: a blocking wait inside async def holds the event loop for all of it.
        plan = wl.parse_page(request.query_params.multi_items(), defaults)
        return respond(*wl.run_page(db, plan))

    async def short_blocking(request: Request) -> JSONResponse:
        plan = wl.parse_short(request.query_params.multi_items(), defaults)
        return respond(*wl.run_short(db, plan))

    routes: dict[str, tuple[Endpoint, Endpoint]] = {
        "async": (page_async, short_async),
        "def": (page_def, short_def),
        "blocking": (page_blocking, short_blocking),
    }
    page, short = routes[settings.endpoints]
    # Routes answer HEAD as well as GET, as Flask's do on its own: both apps must answer every request alike.
    app.add_api_route("/page", page, methods=["GET", "HEAD"])
    app.add_api_route("/short", short, methods=["GET", "HEAD"])

    # Health waits on nothing, so it is the same in every style: not measured, only asked when the server starts.
    @app.api_route("/health", methods=["GET", "HEAD"])
    async def health(request: Request) -> JSONResponse:
        wl.parse_none(request.query_params.multi_items())
        return JSONResponse({"status": "ok", "app": "fastapi", "pid": os.getpid()})

    @app.exception_handler(ParamError)
    async def bad_parameter(request: Request, error: ParamError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        body = wl.http_error_body(error.status_code, request.method)
        return JSONResponse(body, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "bad_request", "detail": "malformed request"}, status_code=400)

    return app
