"""Flask app: routing and request parsing only; every wait happens in :mod:`simdb`.

Served by gunicorn with ``sync_app.app:create_app()``; settings in ``sync_app/gunicorn.conf.py``.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from simdb import DatabaseConfig, ParamError, SimulatedDatabase, Timing, WorkloadConfig
from simdb import workload as wl


def create_app(
    database: DatabaseConfig | None = None,
    workload: WorkloadConfig | None = None,
) -> Flask:
    """Build the app. Settings not passed in are read from the environment once, here, and never again."""
    app = Flask(__name__)
    db = SimulatedDatabase(database or DatabaseConfig.from_env())
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

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        code = error.code or 500
        return jsonify(wl.http_error_body(code, request.method)), code

    return app
