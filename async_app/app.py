"""FastAPI app: routing and request parsing only; every wait happens in :mod:`simdb`.

Served by uvicorn with ``async_app.app:create_app --factory``. The endpoints are ``async def`` and await the
database's awaitable face, so one event loop serves other requests while a query waits.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from simdb import DatabaseConfig, ParamError, SimulatedDatabase, Timing, WorkloadConfig
from simdb import workload as wl


def create_app(
    database: DatabaseConfig | None = None,
    workload: WorkloadConfig | None = None,
) -> FastAPI:
    """Build the app. Settings not passed in are read from the environment once, here, and never again."""
    app = FastAPI(title="bench async app", docs_url=None, redoc_url=None, openapi_url=None)
    # Routes answer HEAD as well as GET, as Flask's do on its own: both apps must answer every request alike.
    db = SimulatedDatabase(database or DatabaseConfig.from_env())
    defaults = workload or WorkloadConfig.from_env()
    app.state.database = db
    app.state.workload = defaults

    def respond(body: dict[str, Any], timing: Timing) -> JSONResponse:
        return JSONResponse(body, headers={"Server-Timing": timing.header()})

    @app.api_route("/page", methods=["GET", "HEAD"])
    async def page(request: Request) -> JSONResponse:
        plan = wl.parse_page(request.query_params.multi_items(), defaults)
        return respond(*await wl.run_page_async(db, plan))

    @app.api_route("/short", methods=["GET", "HEAD"])
    async def short(request: Request) -> JSONResponse:
        plan = wl.parse_short(request.query_params.multi_items(), defaults)
        return respond(*await wl.run_short_async(db, plan))

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
