"""Flask app: routing and request parsing only; every wait happens in the database face :mod:`pgdb.choose` picks
(the simulated database, or a real driver's pool).

Served by gunicorn with ``sync_app.app:create_app()``; settings in ``sync_app/gunicorn.conf.py``. gunicorn does not
preload the app, so each worker calls ``create_app`` after it has forked and opens a pool of its own.
"""

from __future__ import annotations

import atexit
import logging
import os
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import ClientDisconnected, HTTPException, NotFound

from httpwait.config import UpstreamConfig
from pgdb import choose
from simdb import DatabaseConfig, DatabaseUnavailable, ParamError, Timing, UpstreamFailed, WorkloadConfig
from simdb import workload as wl

log = logging.getLogger(__name__)


def create_app(
    database: DatabaseConfig | None = None,
    workload: WorkloadConfig | None = None,
    driver: str | None = None,
    upstream: UpstreamConfig | None = None,
) -> Flask:
    """Build the app. Settings not passed in are read from the environment once, here, and never again."""
    app = Flask(__name__)
    # The contract both apps keep (README, "The endpoints"): GET and HEAD on the exact paths, nothing else. Flask
    # would answer OPTIONS itself (200, empty body) and Werkzeug would merge repeated slashes into a redirect.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.url_map.merge_slashes = False
    if database is None:  # the database and its driver come from the environment together
        database, driver = DatabaseConfig.from_env(), driver or choose.driver_from_env()
    db = choose.blocking_database(database, driver, upstream)
    db.open()
    # Closing at exit ends each connection properly, so PostgreSQL's log (shown when a step fails) is not filled
    # with a worker's connections dropped without a word.
    atexit.register(db.close)
    defaults = workload or WorkloadConfig.from_env()
    app.config["DATABASE"] = db
    app.config["WORKLOAD"] = defaults

    def respond(body: dict[str, Any], timing: Timing) -> Response:
        return answer(body, headers={"Server-Timing": timing.header()})

    def query() -> list[tuple[str, str]]:
        return wl.query_items(request.query_string)  # the bytes as sent, read by the parser both apps share

    @app.before_request
    def exact_paths_only() -> None:
        # Werkzeug matches '/' + PATH_INFO.lstrip('/'), so '//page' would be served as '/page'; Starlette matches
        # the path as sent, and so must this app (405 for a wrong method is checked after this: the path first).
        path = request.environ.get("PATH_INFO", "")
        if path != "/" + path.lstrip("/"):
            raise NotFound()

    @app.get("/page")
    def page() -> Response:
        plan = wl.parse_page(query(), defaults)
        return respond(*wl.run_page(db, plan))

    @app.get("/short")
    def short() -> Response:
        plan = wl.parse_short(query(), defaults)
        return respond(*wl.run_short(db, plan))

    @app.get("/health")
    def health() -> Response:
        wl.parse_none(query())
        return answer({"status": "ok", "app": "flask", "pid": os.getpid()})

    @app.errorhandler(ParamError)
    def bad_parameter(error: ParamError) -> Response:
        return answer(error.body(), 400)

    @app.errorhandler(wl.QueryTooLong)
    def query_too_long(error: wl.QueryTooLong) -> Response:
        return answer(error.body(), 414)

    @app.errorhandler(DatabaseUnavailable)
    def database_unavailable(error: DatabaseUnavailable) -> Response:
        log.warning("503: %s (%r)", error.detail, error.__cause__)
        return answer(error.body(), 503)

    @app.errorhandler(UpstreamFailed)
    def upstream_failed(error: UpstreamFailed) -> Response:
        log.warning("%d: %s (%r)", error.status, error.detail, error.__cause__)
        return answer(error.body(), error.status)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        code = error.code or 500
        drain_body()
        return answer(wl.http_error_body(code, request.method), code, wl.http_error_headers(code))

    return app


def drain_body() -> None:
    """Read and drop what is left of the request's body, up to :data:`~simdb.workload.MAX_DRAIN_BYTES`, before an
    answer that ignores it: gunicorn's sync worker closes the connection after it, and a close with unread bytes
    sends a reset that can reach the client (or nginx, which then answers 502) before the answer does."""
    left = wl.MAX_DRAIN_BYTES
    try:
        while left > 0:
            chunk = request.stream.read(min(wl.DRAIN_CHUNK_BYTES, left))
            if not chunk:
                return
            left -= len(chunk)
    except (ClientDisconnected, OSError):
        return  # the client has gone: nothing is left to protect


def answer(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Every response this app sends: the JSON bytes and status line both apps share (Werkzeug's own reason phrase
    is in capitals), so a client gets the same bytes from gunicorn as from uvicorn."""
    return Response(wl.json_bytes(body), status=wl.status_line(status), headers=headers, content_type=wl.JSON_TYPE)
