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

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from pgdb import choose
from simdb import DatabaseConfig, DatabaseUnavailable, ParamError, Timing, WorkloadConfig
from simdb import workload as wl

log = logging.getLogger(__name__)


def create_app(
    database: DatabaseConfig | None = None,
    workload: WorkloadConfig | None = None,
    driver: str | None = None,
) -> Flask:
    """Build the app. Settings not passed in are read from the environment once, here, and never again."""
    app = Flask(__name__)
    if database is None:  # the database and its driver come from the environment together
        database, driver = DatabaseConfig.from_env(), driver or choose.driver_from_env()
    db = choose.blocking_database(database, driver)
    db.open()
    # Closing at exit ends each connection properly, so PostgreSQL's log (shown when a step fails) is not filled
    # with a worker's connections dropped without a word.
    atexit.register(db.close)
    defaults = workload or WorkloadConfig.from_env()
    app.config["DATABASE"] = db
    app.config["WORKLOAD"] = defaults

    def respond(body: dict[str, Any], timing: Timing) -> Response:
        response = jsonify(body)
        response.headers["Server-Timing"] = timing.header()
        return response

    @app.get("/page")
    def page() -> Response:
        plan = wl.parse_page(request.args.items(multi=True), defaults)
        return respond(*wl.run_page(db, plan))

    @app.get("/short")
    def short() -> Response:
        plan = wl.parse_short(request.args.items(multi=True), defaults)
        return respond(*wl.run_short(db, plan))

    @app.get("/health")
    def health() -> Response:
        wl.parse_none(request.args.items(multi=True))
        return jsonify({"status": "ok", "app": "flask", "pid": os.getpid()})

    @app.errorhandler(ParamError)
    def bad_parameter(error: ParamError) -> tuple[Response, int]:
        return jsonify(error.body()), 400

    @app.errorhandler(DatabaseUnavailable)
    def database_unavailable(error: DatabaseUnavailable) -> tuple[Response, int]:
        log.warning("503: %s (%r)", error.detail, error.__cause__)
        return jsonify(error.body()), 503

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        code = error.code or 500
        return jsonify(wl.http_error_body(code, request.method)), code

    return app
