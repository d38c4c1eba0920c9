"""Property-based tests: whatever a client sends, neither app answers 5xx, hangs, or differs from the other.

The apps are reached through their test clients in the fast suite, and through real gunicorn and uvicorn as well
in the integration suite (the ``ways`` fixture, tests/conftest.py).

Valid waits are kept small here so the examples run quickly; the bound that every accepted request respects,
whatever its values, is checked on the shared parser over the whole range.
"""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simdb import MAX_QUERY_MS, MAX_ROWS, MAX_WORK_MS, ParamError, WorkloadConfig
from simdb import workload as wl
from tests.ways import Get

KNOWN_KEYS = ["user_ms", "work_ms", "listing_ms", "rows", "query_ms"]
PATHS = ["/page", "/short", "/health"]

small_valid = st.integers(min_value=0, max_value=3).map(str)
invalid_number = st.one_of(
    st.integers(max_value=-1).map(str),
    st.integers(min_value=10**4, max_value=10**500).map(str),
    st.sampled_from(["nan", "inf", "-inf", "", " ", "1e999", "0x10", "1_000", "٣", "1.5.2", "None", "true"]),
    st.floats(min_value=-1e6, max_value=-0.001).map(repr),
)
any_text = st.text(max_size=30)
values = st.one_of(small_valid, invalid_number, any_text)
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(min_size=1, max_size=20))
queries = st.lists(st.tuples(keys, values), max_size=4)
paths = st.one_of(st.sampled_from(PATHS), st.text(max_size=40).map(lambda t: "/" + quote(t, safe="")))
methods = st.sampled_from(["GET", "GET", "GET", "POST", "DELETE", "HEAD", "PUT"])

EXAMPLES = settings(
    max_examples=120,
    deadline=5_000,  # "never a hang": each example, one request per way in, well inside five seconds
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _comparable(path: str, status: int, body: object) -> object:
    # The health answer names its app and pid by design; everything else must match to the byte.
    if path == "/health" and status == 200 and isinstance(body, dict):
        return {"status": body.get("status")}
    return body


@EXAMPLES
@given(path=paths, query=queries, method=methods)
def test_no_request_gets_a_5xx_and_both_apps_agree(
    ways: dict[str, Get], path: str, query: list[tuple[str, str]], method: str
) -> None:
    url = path + ("?" + urlencode(query) if query else "")
    answers = {name: get(url, method) for name, get in ways.items()}
    for way, (status, body, _) in answers.items():
        assert status < 500, f"{way} answered {status} to {method} {url}"
        if status >= 400 and method != "HEAD":
            assert isinstance(body, dict), f"{way}: {method} {url} gave a non-JSON {status}"
            assert set(body) in ({"error", "detail"}, {"error", "parameter", "detail"}), body
    statuses = {way: a[0] for way, a in answers.items()}
    assert len(set(statuses.values())) == 1, (method, url, statuses)
    bodies = {json.dumps(_comparable(path, a[0], a[1]), sort_keys=True) for a in answers.values()}
    assert len(bodies) == 1, (method, url, answers)


bound_values = st.one_of(
    st.floats(min_value=0, max_value=MAX_QUERY_MS * 2).map(repr),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-10, max_value=MAX_ROWS * 2).map(str),
    any_text,
)


@settings(max_examples=500)
@given(query=st.lists(st.tuples(st.sampled_from(KNOWN_KEYS), bound_values), max_size=5))
def test_an_accepted_request_never_holds_a_worker_past_the_documented_maximum(query: list[tuple[str, str]]) -> None:
    defaults = WorkloadConfig()
    page_items = [(k, v) for k, v in query if k in wl.PAGE_PARAMS]
    short_items = [(k, v) for k, v in query if k in wl.SHORT_PARAMS]
    try:
        page = wl.parse_page(page_items, defaults)
    except ParamError:
        pass
    else:
        assert page.user_lookup_ms + page.listing_ms + page.app_work_ms <= 2 * MAX_QUERY_MS + MAX_WORK_MS
        assert 0 <= page.rows <= MAX_ROWS
    try:
        short = wl.parse_short(short_items, defaults)
    except ParamError:
        pass
    else:
        assert 0 <= short.query_ms <= MAX_QUERY_MS
