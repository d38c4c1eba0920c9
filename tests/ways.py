"""Ways into the same contract: Flask and FastAPI through their test clients (FastAPI in each endpoint style),
gunicorn and uvicorn for real; on the simulated database, and on a real PostgreSQL through every driver.

The test clients on the simulated database run inside the test process and belong to the fast suite; the real
servers are processes, and so is PostgreSQL, so every parameter that reaches one carries the ``integration`` mark
(:data:`WAY_PARAMS`, :data:`WAY_SETS`) and ``make test-fast`` never starts them. The fixtures that build them are
in tests/conftest.py."""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
from collections.abc import Callable, MutableMapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from async_app.app import create_app as create_async_app
from async_app.settings import AppSettings, EndpointStyle
from runner.config import ServerConfig, load_config
from runner.servers import serve
from simdb import DatabaseConfig, WorkloadConfig
from sync_app.app import create_app as create_sync_app
from tests.scenarios import POSTGRES, small_scenario

WORKLOAD = WorkloadConfig(user_lookup_ms=10, app_work_ms=1, listing_ms=30, listing_rows=5, short_query_ms=5)
DATABASE = DatabaseConfig(jitter=0.0)

# (status, parsed JSON body, headers)
Answer = tuple[int, Any, dict[str, str]]
Get = Callable[[str, str], Answer]
CLIENT_WAYS = ("flask-client", "fastapi-client", "fastapi-def-client", "fastapi-blocking-client")
SERVER_WAYS = ("gunicorn", "uvicorn")
# On PostgreSQL: (name, app, endpoint style, driver), each driver on each side at least once.
POSTGRES_CLIENTS: tuple[tuple[str, str, EndpointStyle | None, str], ...] = (
    ("flask-psycopg-client", "flask", None, "psycopg"),
    ("flask-sqlalchemy-client", "flask", None, "sqlalchemy"),
    ("fastapi-psycopg-client", "fastapi", "async", "psycopg"),
    ("fastapi-asyncpg-client", "fastapi", "async", "asyncpg"),
    ("fastapi-sqlalchemy-client", "fastapi", "async", "sqlalchemy"),
    ("fastapi-def-psycopg-client", "fastapi", "def", "psycopg"),
    ("fastapi-blocking-sqlalchemy-client", "fastapi", "blocking", "sqlalchemy"),
)
POSTGRES_CLIENT_WAYS = tuple(name for name, *_ in POSTGRES_CLIENTS)
POSTGRES_SERVER_WAYS = ("gunicorn-postgres", "uvicorn-postgres")
POSTGRES_WAYS = (*POSTGRES_CLIENT_WAYS, *POSTGRES_SERVER_WAYS)
WAYS = (*CLIENT_WAYS, *SERVER_WAYS, *POSTGRES_WAYS)
# Connections per process on PostgreSQL: enough for the contract, which sends one request at a time.
POSTGRES_POOL_SIZE = 2

# One way at a time (a test parametrised by way), and every way at once (a test that compares their answers):
# whatever reaches a real server or a real database is an integration test.
WAY_PARAMS = [
    *CLIENT_WAYS,
    *(pytest.param(way, marks=pytest.mark.integration) for way in (*SERVER_WAYS, *POSTGRES_WAYS)),
]
CLIENTS, EVERY_WAY = "test clients", "test clients and real servers"
ON_POSTGRES = "test clients, and every way on PostgreSQL"
WAY_SETS = [
    CLIENTS,
    pytest.param(EVERY_WAY, marks=pytest.mark.integration),
    pytest.param(ON_POSTGRES, marks=pytest.mark.integration),
]


def _flask_get(stack: ExitStack, database: DatabaseConfig = DATABASE, driver: str | None = None) -> Get:
    app = create_sync_app(database, WORKLOAD, driver)
    # Flask closes its pool at exit; the tests close it when done, before the database it points at goes away.
    stack.callback(app.config["DATABASE"].close)
    client = app.test_client()

    def get(path: str, method: str = "GET") -> Answer:
        response = client.open("/", method=method, environ_overrides=_as_gunicorn_sends(path))
        return response.status_code, response.get_json(silent=True), {k.lower(): v for k, v in response.headers}

    return get


# The test clients are given each request target exactly as a real server would hand it to the app, so the
# contract's odd shapes (repeated slashes, escaped slashes, bytes that are not UTF-8) reach the apps as gunicorn and
# uvicorn deliver them: Werkzeug's test client would read '//page' as a host name, and Starlette's (through httpx)
# drops dot segments and percent-decodes the path twice.


def _as_gunicorn_sends(target: str) -> dict[str, str]:
    """The target's part of a WSGI environ as gunicorn builds it: the path percent-decoded to bytes (carried as
    latin-1, as WSGI asks), the query string verbatim."""
    path, _, query = target.partition("?")
    return {"PATH_INFO": unquote_to_bytes(path).decode("latin-1"), "QUERY_STRING": query, "RAW_URI": target}


async def _as_uvicorn_sends(app: FastAPI, method: str, target: str) -> tuple[int, dict[str, str], bytes]:
    """One request through the ASGI app with the scope uvicorn (httptools) builds for ``target``: the path
    percent-decoded once, the raw path and query string verbatim; a HEAD response's body is dropped, as uvicorn
    drops it."""
    raw_path, _, query = target.encode("ascii").partition(b"?")
    path = raw_path.decode("ascii")
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": method, "scheme": "http", "root_path": "",
        "path": unquote(path) if "%" in path else path, "raw_path": raw_path, "query_string": query,
        "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
        "state": {},
    }  # fmt: skip
    sent: list[MutableMapping[str, Any]] = []
    asked: list[bool] = []

    async def receive() -> dict[str, Any]:
        first = not asked
        asked.append(True)
        return {"type": "http.request", "body": b"", "more_body": False} if first else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start["headers"]}
    body = b"" if method == "HEAD" else b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], headers, body


def _fastapi_get(
    stack: ExitStack,
    settings: AppSettings | None = None,
    database: DatabaseConfig = DATABASE,
    driver: str | None = None,
) -> Get:
    app = create_async_app(database, WORKLOAD, settings or AppSettings(), driver)
    # The test client runs the app's lifespan (which opens its database) in its event loop; requests are sent into
    # that same loop, as uvicorn would build them (see _as_uvicorn_sends).
    client = stack.enter_context(TestClient(app))
    portal = client.portal
    assert portal is not None

    def get(path: str, method: str = "GET") -> Answer:
        status, headers, raw = portal.call(_as_uvicorn_sends, app, method, path)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        return status, body, headers

    return get


def _http_get(base: str) -> Get:
    def get(path: str, method: str = "GET") -> Answer:
        request = urllib.request.Request(base + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, raw, headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, raw, headers = error.code, error.read(), error.headers
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        return status, body, {k.lower(): v for k, v in headers.items()}

    return get


def client_ways(stack: ExitStack) -> dict[str, Get]:
    """The apps through their test clients, inside this process; they stay open until ``stack`` closes.

    The def and blocking styles go through the test client only: what differs between them and ``async`` is where
    a request waits, which tests/test_servers_matrix.py measures on real servers; here they must answer alike."""
    return {
        "flask-client": _flask_get(stack),
        "fastapi-client": _fastapi_get(stack),
        "fastapi-def-client": _fastapi_get(stack, AppSettings(endpoints="def", thread_limit=4)),
        "fastapi-blocking-client": _fastapi_get(stack, AppSettings(endpoints="blocking")),
    }


def server_ways(stack: ExitStack, folder: Path) -> dict[str, Get]:
    """Real gunicorn and uvicorn with the same settings as the clients, running until ``stack`` closes."""
    return _servers(stack, folder, small_scenario(name="contract", users="[1]"), None, SERVER_WAYS)


def postgres_client_ways(stack: ExitStack, url: str) -> dict[str, Get]:
    """The apps through their test clients on the PostgreSQL at ``url``, one per driver and side (FastAPI in each
    endpoint style); their pools are open until ``stack`` closes."""
    database = DatabaseConfig(backend="postgres", url=url, pool_size=POSTGRES_POOL_SIZE)
    result: dict[str, Get] = {}
    for name, app, style, driver in POSTGRES_CLIENTS:
        if app == "flask":
            result[name] = _flask_get(stack, database, driver)
        else:
            settings = AppSettings(endpoints=style or "async", thread_limit=4)
            result[name] = _fastapi_get(stack, settings, database, driver)
    return result


def postgres_server_ways(stack: ExitStack, folder: Path, url: str) -> dict[str, Get]:
    """Real gunicorn (psycopg) and uvicorn (asyncpg) on the PostgreSQL at ``url``, running until ``stack`` closes."""
    scenario = small_scenario(name="contract-postgres", users="[1]", **POSTGRES)
    return _servers(stack, folder, scenario, url, POSTGRES_SERVER_WAYS)


def _servers(stack: ExitStack, folder: Path, scenario: str, url: str | None, names: tuple[str, str]) -> dict[str, Get]:
    path = folder / "contract.toml"
    path.write_text(scenario, encoding="utf-8")
    config = load_config(str(path))
    if url is not None:  # as the runner hands its database's URL to the servers (runner.postgres.served)
        config = dataclasses.replace(config, database=dataclasses.replace(config.database, url=url))
    specs: dict[str, ServerConfig] = {s.server: s for s in config.servers}
    result = {}
    for name, kind in zip(names, ("gunicorn", "uvicorn"), strict=True):
        server = stack.enter_context(serve(specs[kind], config, folder / f"{name}.log", frozenset()))
        result[name] = _http_get(server.url)
    return result
