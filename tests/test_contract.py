"""One contract, four ways in: both apps through their test clients and through their real servers.

Every case runs against Flask (test client), FastAPI (test client), gunicorn and uvicorn (real processes, real
HTTP over loopback), and the answers must agree, so the two apps can never drift apart.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi.testclient import TestClient

from async_app.app import create_app as create_async_app
from runner.config import load_config
from runner.servers import serve
from simdb import MAX_QUERY_MS, MAX_ROWS, MAX_WORK_MS, DatabaseConfig, WorkloadConfig
from sync_app.app import create_app as create_sync_app
from tests.scenarios import small_scenario

WORKLOAD = WorkloadConfig(user_lookup_ms=10, app_work_ms=1, listing_ms=30, listing_rows=5, short_query_ms=5)
DATABASE = DatabaseConfig(jitter=0.0)

# (status, parsed JSON body, headers)
Answer = tuple[int, Any, dict[str, str]]
Get = Callable[[str, str], Answer]
WAYS = ("flask-client", "fastapi-client", "gunicorn", "uvicorn")


def _flask_get() -> Get:
    client = create_sync_app(DATABASE, WORKLOAD).test_client()

    def get(path: str, method: str = "GET") -> Answer:
        response = client.open(path, method=method)
        return response.status_code, response.get_json(silent=True), {k.lower(): v for k, v in response.headers}

    return get


def _fastapi_get(stack: ExitStack) -> Get:
    client = stack.enter_context(TestClient(create_async_app(DATABASE, WORKLOAD)))

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


@pytest.fixture(scope="module")
def ways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Get]]:
    """All four ways in, the real servers started once for the module with the same settings as the clients."""
    folder = tmp_path_factory.mktemp("contract")
    scenario = folder / "contract.toml"
    scenario.write_text(small_scenario(name="contract", users="[1]"), encoding="utf-8")
    config = load_config(str(scenario))
    specs = {s.server: s for s in config.servers}
    with ExitStack() as stack:
        result = {"flask-client": _flask_get(), "fastapi-client": _fastapi_get(stack)}
        for name in ("gunicorn", "uvicorn"):
            server = stack.enter_context(serve(specs[name], config, folder / f"{name}.log", frozenset()))
            result[name] = _http_get(server.url)
        yield result


def _timing(headers: dict[str, str]) -> dict[str, float]:
    value = headers.get("server-timing", "")
    metrics = {}
    for part in value.split(","):
        match = re.fullmatch(r"\s*([A-Za-z0-9_-]+);dur=([0-9.]+)\s*", part)
        assert match, f"malformed Server-Timing entry {part!r} in {value!r}"
        metrics[match.group(1)] = float(match.group(2))
    return metrics


@pytest.mark.parametrize("way", WAYS)
def test_health(ways: dict[str, Get], way: str) -> None:
    status, body, _ = ways[way]("/health", "GET")
    assert status == 200
    assert body["status"] == "ok"


@pytest.mark.parametrize("way", WAYS)
def test_page_shape_and_server_timing(ways: dict[str, Get], way: str) -> None:
    status, body, headers = ways[way]("/page", "GET")
    assert status == 200
    assert body["user"]["id"] == 42
    assert len(body["items"]) == WORKLOAD.listing_rows
    timing = _timing(headers)
    assert set(timing) == {"db", "pool", "app", "handler"}
    # Both queries really waited (no jitter here), and the handler covers waits and work.
    assert timing["db"] >= (WORKLOAD.user_lookup_ms + WORKLOAD.listing_ms) * 0.95
    assert timing["handler"] >= timing["db"] + timing["app"] * 0.9
    assert timing["pool"] == 0.0


@pytest.mark.parametrize("way", WAYS)
def test_overrides_change_the_waits(ways: dict[str, Get], way: str) -> None:
    status, body, headers = ways[way]("/page?user_ms=0&listing_ms=60&work_ms=0&rows=2", "GET")
    assert status == 200
    assert len(body["items"]) == 2
    timing = _timing(headers)
    assert 57 <= timing["db"] < 60 + 500
    status, _, headers = ways[way]("/short?query_ms=40", "GET")
    assert status == 200
    assert _timing(headers)["db"] >= 38


BAD_REQUESTS = [
    ("/page?user_ms=abc", "user_ms"),
    ("/page?user_ms=-1", "user_ms"),
    (f"/page?listing_ms={MAX_QUERY_MS + 1:g}", "listing_ms"),
    (f"/page?work_ms={MAX_WORK_MS + 1:g}", "work_ms"),
    (f"/page?rows={MAX_ROWS + 1}", "rows"),
    ("/page?rows=1.5", "rows"),
    ("/page?user_ms=nan", "user_ms"),
    ("/page?user_ms=inf", "user_ms"),
    ("/page?user_ms=", "user_ms"),
    ("/page?user_ms=1&user_ms=2", "user_ms"),
    ("/page?colour=blue", "colour"),
    ("/short?query_ms=1e9", "query_ms"),
    ("/short?user_ms=5", "user_ms"),
    ("/health?x=1", "x"),
]


@pytest.mark.parametrize(("path", "parameter"), BAD_REQUESTS)
def test_bad_parameters_get_the_same_400_everywhere(ways: dict[str, Get], path: str, parameter: str) -> None:
    answers = {way: ways[way](path, "GET") for way in WAYS}
    for way, (status, body, _) in answers.items():
        assert status == 400, f"{way} answered {status} to {path}"
        assert body["error"] == "invalid_parameter"
        assert body["parameter"] == parameter
        assert body["detail"]
    bodies = {way: answer[1] for way, answer in answers.items()}
    assert len({json.dumps(b, sort_keys=True) for b in bodies.values()}) == 1, bodies


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/nowhere", 404), ("POST", "/page", 405)])
def test_http_errors_have_the_same_shape(ways: dict[str, Get], method: str, path: str, status: int) -> None:
    answers = {way: ways[way](path, method) for way in WAYS}
    for way, (code, body, _) in answers.items():
        assert code == status, f"{way} answered {code}"
        assert set(body) == {"error", "detail"}
    assert len({json.dumps(a[1], sort_keys=True) for a in answers.values()}) == 1, answers
