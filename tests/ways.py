"""Ways into the same contract: Flask and FastAPI through their test clients (FastAPI in each endpoint style),
gunicorn and uvicorn for real.

The test clients run inside the test process and belong to the fast suite; the real servers are processes, so
every parameter that reaches them carries the ``integration`` mark (:data:`WAY_PARAMS`, :data:`WAY_SETS`) and
``make test-fast`` never starts them. The fixtures that build them are in tests/conftest.py."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from async_app.app import create_app as create_async_app
from async_app.settings import AppSettings
from runner.config import ServerConfig, load_config
from runner.servers import serve
from simdb import DatabaseConfig, WorkloadConfig
from sync_app.app import create_app as create_sync_app
from tests.scenarios import small_scenario

WORKLOAD = WorkloadConfig(user_lookup_ms=10, app_work_ms=1, listing_ms=30, listing_rows=5, short_query_ms=5)
DATABASE = DatabaseConfig(jitter=0.0)

# (status, parsed JSON body, headers)
Answer = tuple[int, Any, dict[str, str]]
Get = Callable[[str, str], Answer]
CLIENT_WAYS = ("flask-client", "fastapi-client", "fastapi-def-client", "fastapi-blocking-client")
SERVER_WAYS = ("gunicorn", "uvicorn")
WAYS = (*CLIENT_WAYS, *SERVER_WAYS)

# One way at a time (a test parametrised by way), and every way at once (a test that compares their answers):
# whatever reaches a real server is an integration test.
WAY_PARAMS = [*CLIENT_WAYS, *(pytest.param(way, marks=pytest.mark.integration) for way in SERVER_WAYS)]
CLIENTS, EVERY_WAY = "test clients", "test clients and real servers"
WAY_SETS = [CLIENTS, pytest.param(EVERY_WAY, marks=pytest.mark.integration)]


def _flask_get() -> Get:
    client = create_sync_app(DATABASE, WORKLOAD).test_client()

    def get(path: str, method: str = "GET") -> Answer:
        response = client.open(path, method=method)
        return response.status_code, response.get_json(silent=True), {k.lower(): v for k, v in response.headers}

    return get


def _fastapi_get(stack: ExitStack, settings: AppSettings | None = None) -> Get:
    client = stack.enter_context(TestClient(create_async_app(DATABASE, WORKLOAD, settings or AppSettings())))

    def get(path: str, method: str = "GET") -> Answer:
        response = client.request(method, path)
        try:
            body = response.json()
        except ValueError:
            body = None
        return response.status_code, body, {k.lower(): v for k, v in response.headers.items()}

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
        "flask-client": _flask_get(),
        "fastapi-client": _fastapi_get(stack),
        "fastapi-def-client": _fastapi_get(stack, AppSettings(endpoints="def", thread_limit=4)),
        "fastapi-blocking-client": _fastapi_get(stack, AppSettings(endpoints="blocking")),
    }


def server_ways(stack: ExitStack, folder: Path) -> dict[str, Get]:
    """Real gunicorn and uvicorn with the same settings as the clients, running until ``stack`` closes."""
    scenario = folder / "contract.toml"
    scenario.write_text(small_scenario(name="contract", users="[1]"), encoding="utf-8")
    config = load_config(str(scenario))
    specs: dict[str, ServerConfig] = {s.server: s for s in config.servers}
    result = {}
    for name in SERVER_WAYS:
        server = stack.enter_context(serve(specs[name], config, folder / f"{name}.log", frozenset()))
        result[name] = _http_get(server.url)
    return result
