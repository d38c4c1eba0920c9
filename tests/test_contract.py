"""One contract, many ways in: both apps through their test clients and through their real servers, on the
simulated database and on a real PostgreSQL.

Every case runs against Flask and FastAPI (test clients, FastAPI in each endpoint style), and against gunicorn
and uvicorn (real processes, real HTTP over loopback), on both backends and through every PostgreSQL driver, and
the answers must agree, so the two apps, and the two backends, can never drift apart. The cases that reach a real
server or a real database are marked integration (see tests/ways.py); the fast suite checks the same contract
through the test clients on the simulated database only.
"""

from __future__ import annotations

import json
import re
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from pgdb import schema
from runner.postgres import embedded_cluster
from simdb import MAX_QUERY_MS, MAX_ROWS, MAX_WORK_MS
from simdb import workload as wl
from tests import ways as way_builders
from tests.ways import WORKLOAD, Get

# Waiting for a pooled connection when nothing else is running: zero on the simulated database (no capacity
# set), a checkout on a real pool; a busy machine may stretch it, never to this.
IDLE_POOL_MS = 50.0


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
    assert 0.0 <= timing["pool"] < IDLE_POOL_MS


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
    ("/health?x", "x"),
    ("/page?user_ms=%ff%fe", "user_ms"),
    ("/page?rows=1%FF", "rows"),
    ("/page?%ff=1", "%ff"),
    ("/page?rows=1&rows=%32", "rows"),
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


def test_bytes_that_are_not_utf8_are_shown_as_they_were_sent(ways: dict[str, Get]) -> None:
    """One text for a value that does not decode: the parameter named, the escapes as the client wrote them."""
    for name, get in ways.items():
        status, body, _ = get("/page?user_ms=%ff%fe", "GET")
        assert (status, body) == (400, {
            "error": "invalid_parameter", "parameter": "user_ms",
            "detail": f"must be a number between 0 and {MAX_QUERY_MS:g}, got '%ff%fe'",
        }), name  # fmt: skip
        status, body, _ = get("/page?%FF%fe=1", "GET")
        assert (status, body["parameter"]) == (400, "%FF%fe"), name
        assert body["detail"].startswith("unknown parameter"), name


# Every other method gets 405 on an endpoint; every other path 404, whatever the method: no slash is added,
# dropped or merged, and nothing redirects (README, "The endpoints").
HTTP_ERRORS = [
    ("GET", "/nowhere", 404),
    ("POST", "/page", 405),
    ("OPTIONS", "/page", 405),
    ("PUT", "/short", 405),
    ("DELETE", "/health", 405),
    ("PATCH", "/page", 405),
    ("TRACE", "/short", 405),
    ("OPTIONS", "/nowhere", 404),
    ("GET", "/page/", 404),
    ("GET", "/short//", 404),
    ("GET", "//page", 404),
    ("POST", "//page", 404),
    ("GET", "///health", 404),
    ("GET", "/page%2F", 404),
    ("GET", "/%2Fpage", 404),
    ("GET", "/page/x", 404),
    ("GET", "/Page", 404),
    ("GET", "/%ff", 404),
]


@pytest.mark.parametrize(("method", "path", "status"), HTTP_ERRORS)
def test_http_errors_have_the_same_shape(ways: dict[str, Get], method: str, path: str, status: int) -> None:
    answers = {name: get(path, method) for name, get in ways.items()}
    for way, (code, body, headers) in answers.items():
        assert code == status, f"{way} answered {code}"
        assert body == wl.http_error_body(status, method), way
        assert headers["content-type"] == wl.JSON_TYPE, way
        assert headers.get("allow") == ("GET, HEAD" if status == 405 else None), way
        assert "location" not in headers, way
    assert len({json.dumps(a[1], sort_keys=True) for a in answers.values()}) == 1, answers


def test_a_query_string_past_the_limit_gets_414(ways: dict[str, Get]) -> None:
    at_limit = "rows=" + "0" * (wl.MAX_QUERY_BYTES - len("rows="))
    for name, get in ways.items():
        assert get("/short?query_ms=0&" + "x" * (wl.MAX_QUERY_BYTES - 11), "GET")[0] == 400, name  # read: unknown x
        assert get("/page?" + at_limit, "GET")[0] == 200, name
        status, body, _ = get("/page?" + at_limit + "0", "GET")
        assert (status, body) == (414, wl.QueryTooLong(wl.MAX_QUERY_BYTES + 1).body()), name
        assert body["detail"] == f"the query string is {wl.MAX_QUERY_BYTES + 1} bytes; at most 4096 are read"


def test_head_is_get_without_the_body(ways: dict[str, Get]) -> None:
    for name, get in ways.items():
        _, body, get_headers = get("/short?query_ms=0", "GET")
        status, head_body, headers = get("/short?query_ms=0", "HEAD")
        assert (status, head_body, headers["content-type"]) == (200, None, wl.JSON_TYPE), name
        assert headers["content-length"] == get_headers["content-length"] == str(len(wl.json_bytes(body))), name
        assert "server-timing" in headers, name


PAGES = ["/page?user_ms=0&listing_ms=0&work_ms=0&rows=7", "/page?user_ms=0&listing_ms=0&work_ms=0&rows=0", "/short"]


@pytest.mark.parametrize("path", PAGES)
def test_every_way_gives_the_same_json(ways: dict[str, Get], path: str) -> None:
    """On PostgreSQL the rows are real and go through each driver (and the ORM's objects), yet the JSON is the
    simulated database's to the byte."""
    answers = {name: get(path, "GET") for name, get in ways.items()}
    assert {name: status for name, (status, _, _) in answers.items()} == dict.fromkeys(answers, 200)
    bodies = {json.dumps(body, sort_keys=True) for _, body, _ in answers.values()}
    assert len(bodies) == 1, answers


@pytest.mark.integration
def test_a_database_out_of_reach_gets_the_same_503_everywhere(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every driver on both sides, through test clients and real servers: once the database is gone, a request
    that needs it gets 503 with the one error body, never a traceback page; /health still answers, as it never
    waits on the database."""
    with ExitStack() as stack:
        cluster = stack.enter_context(embedded_cluster(max_connections=50))
        schema.ensure(cluster.url)
        folder: Path = tmp_path_factory.mktemp("contract-unreachable")
        ways = {
            **way_builders.postgres_client_ways(stack, cluster.url),
            **way_builders.postgres_server_ways(stack, folder, cluster.url),
        }
        assert {name: get("/short", "GET")[0] for name, get in ways.items()} == dict.fromkeys(ways, 200)
        cluster.stop()
        answers = {name: get("/page", "GET") for name, get in ways.items()}
        for name, (status, body, headers) in answers.items():
            assert status == 503, f"{name} answered {status}: {body}"
            assert headers["content-type"].startswith("application/json"), name
            assert body == {"error": "database_unavailable", "detail": body["detail"]}, name
        assert len({json.dumps(body, sort_keys=True) for _, body, _ in answers.values()}) == 1, answers
        assert {name: get("/health", "GET")[0] for name, get in ways.items()} == dict.fromkeys(ways, 200)
