"""One contract, many ways in: both apps through their test clients and through their real servers.

Every case runs against Flask and FastAPI (test clients, FastAPI in each endpoint style), and against gunicorn
and uvicorn (real processes, real HTTP over loopback), and the answers must agree, so the two apps can never drift
apart. The cases that reach a real server are marked integration (see tests/ways.py); the fast suite checks the
same contract through the test clients only.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from simdb import MAX_QUERY_MS, MAX_ROWS, MAX_WORK_MS
from simdb import workload as wl
from tests.ways import WORKLOAD, Get


def _timing(headers: dict[str, str]) -> dict[str, float]:
    value = headers.get("server-timing", "")
    for part in value.split(","):
        assert re.fullmatch(r'\s*[A-Za-z0-9_-]+;(dur=[0-9.]+|desc="[0-9.]+")\s*', part), f"malformed {part!r}"
    return wl.parse_server_timing(value)


def test_health(way: Get) -> None:
    status, body, _ = way("/health", "GET")
    assert status == 200
    assert body["status"] == "ok"


def test_page_shape_and_server_timing(way: Get) -> None:
    status, body, headers = way("/page", "GET")
    assert status == 200
    assert body["user"]["id"] == 42
    assert len(body["items"]) == WORKLOAD.listing_rows
    timing = _timing(headers)
    assert set(timing) == {"db", "pool", "app", "handler", "start"}
    assert abs(timing["start"] - time.time()) < 60  # a wall-clock second, on the client's own clock
    # Both queries really waited (no jitter here), and the handler covers waits and work.
    assert timing["db"] >= (WORKLOAD.user_lookup_ms + WORKLOAD.listing_ms) * 0.95
    assert timing["handler"] >= timing["db"] + timing["app"] * 0.9
    assert timing["pool"] == 0.0


def test_overrides_change_the_waits(way: Get) -> None:
    status, body, headers = way("/page?user_ms=0&listing_ms=60&work_ms=0&rows=2", "GET")
    assert status == 200
    assert len(body["items"]) == 2
    timing = _timing(headers)
    assert 57 <= timing["db"] < 60 + 500
    status, _, headers = way("/short?query_ms=40", "GET")
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
    answers = {name: get(path, "GET") for name, get in ways.items()}
    for way, (status, body, _) in answers.items():
        assert status == 400, f"{way} answered {status} to {path}"
        assert body["error"] == "invalid_parameter"
        assert body["parameter"] == parameter
        assert body["detail"]
    bodies = {way: answer[1] for way, answer in answers.items()}
    assert len({json.dumps(b, sort_keys=True) for b in bodies.values()}) == 1, bodies


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/nowhere", 404), ("POST", "/page", 405)])
def test_http_errors_have_the_same_shape(ways: dict[str, Get], method: str, path: str, status: int) -> None:
    answers = {name: get(path, method) for name, get in ways.items()}
    for way, (code, body, _) in answers.items():
        assert code == status, f"{way} answered {code}"
        assert set(body) == {"error", "detail"}
    assert len({json.dumps(a[1], sort_keys=True) for a in answers.values()}) == 1, answers
