"""Property-based tests: whatever a client sends, neither app answers 5xx, hangs, or differs from the other, and
each answers as README's "The endpoints" says.

The apps are reached through their test clients in the fast suite, each request target handed over as a real
server would (tests/ways.py), and through real gunicorn and uvicorn as well in the integration suite (the ``ways``
fixture, tests/conftest.py). Requests are generated in three dimensions: the method (GET and HEAD are served, every
other one gets 405), the path's shape (an endpoint exactly, or with a trailing, repeated or escaped slash, or an
unknown name: 404 whatever the method), and the query string, as text or as raw bytes, percent-encoded, that need
not be UTF-8 (the shared parser's answer, with undecodable bytes shown as sent).

Valid waits are kept small here so the examples run quickly; the bound that every accepted request respects,
whatever its values, is checked on the shared parser over the whole range.
"""

from __future__ import annotations

import json
from urllib.parse import quote, unquote_to_bytes, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simdb import MAX_QUERY_MS, MAX_ROWS, MAX_WORK_MS, ParamError, WorkloadConfig
from simdb import workload as wl
from tests.ways import WORKLOAD, Answer, Get

KNOWN_KEYS = ["user_ms", "work_ms", "listing_ms", "rows", "query_ms"]
PATHS = list(wl.ENDPOINTS)
# Methods both HTTP parsers know (httptools refuses one it does not know before uvicorn's app sees it: README).
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]

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
text_queries = st.lists(st.tuples(keys, values), max_size=4).map(urlencode)


def _escaped(raw: bytes) -> str:
    return quote(raw, safe="")


# A raw query string built from pieces: names and numbers, bytes percent-encoded (any bytes, so mostly not UTF-8;
# in either case of hex digit, as clients differ), and the characters that give a query its structure or break an
# escape. Every piece is printable ASCII without '#' or a space, so it is a valid request target as it stands.
query_pieces = st.one_of(
    st.sampled_from(KNOWN_KEYS),
    small_valid,
    st.binary(max_size=6).map(_escaped),
    st.binary(max_size=6).map(lambda raw: _escaped(raw).lower()),
    st.sampled_from(["=", "=", "&", "&", "+", "%", "%2", "%zz", "%26", "%3D", ";", "%C3%A9", "%ED%A0%80", "%00"]),
)
raw_queries = st.lists(query_pieces, max_size=10).map("".join)
# Either side of the longest query string the apps read: 'rows=000...0', valid up to the limit, 414 past it.
edge_queries = st.integers(min_value=-2, max_value=2).map(lambda d: "rows=" + "0" * (wl.MAX_QUERY_BYTES - 5 + d))
queries = st.one_of(st.just(""), text_queries, raw_queries, edge_queries)

# Path shapes: one or more names (an endpoint's, one with an escaped letter, which is still that endpoint, a near
# miss, or anything at all, escaped), each after a slash that may be doubled or escaped (never the first: a target
# starts with '/'), and maybe a trailing slash.
names = st.one_of(
    st.sampled_from(["page", "short", "health", "page", "short", "health", "Page", "pages", "pa%67e", "%70age"]),
    st.text(max_size=20).map(lambda t: quote(t, safe="")),
)
first_slashes = st.sampled_from(["/", "/", "/", "/", "//", "///", "/%2F"])
later_slashes = st.sampled_from(["/", "//", "%2F", "%2f"])
trailing = st.sampled_from(["", "", "", "/", "//", "%2F"])


@st.composite
def paths(draw: st.DrawFn) -> str:
    parts = draw(st.lists(names, min_size=1, max_size=3))
    slashes = [draw(first_slashes)] + [draw(later_slashes) for _ in parts[1:]]
    return "".join(slash + name for slash, name in zip(slashes, parts, strict=True)) + draw(trailing)


methods = st.one_of(st.sampled_from(["GET", "GET", "GET", "HEAD"]), st.sampled_from(METHODS))

EXAMPLES = settings(
    max_examples=120,
    deadline=5_000,  # "never a hang": each example, one request per way in, well inside five seconds
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _comparable(endpoint: str, status: int, body: object) -> object:
    # The health answer names its app and pid by design; everything else must match to the byte.
    if endpoint == "/health" and status == 200 and isinstance(body, dict):
        return {"status": body.get("status")}
    return body


def expected_status(method: str, target: str) -> int:
    """The status README's "The endpoints" promises, worked out from the target alone (not from either app)."""
    path, _, query = target.partition("?")
    endpoint = unquote_to_bytes(path).decode("utf-8", "replace")  # what both servers route on
    if endpoint not in wl.ENDPOINTS:
        return 404  # whatever the method: no slash is added, dropped or merged, and nothing redirects
    if method not in wl.ALLOWED_METHODS:
        return 405
    raw = query.encode("ascii")
    if len(raw) > wl.MAX_QUERY_BYTES:
        return 414
    try:
        items = wl.query_items(raw)
        if endpoint == "/page":
            wl.parse_page(items, WORKLOAD)
        elif endpoint == "/short":
            wl.parse_short(items, WORKLOAD)
        else:
            wl.parse_none(items)
    except ParamError:
        return 400
    return 200


def check_the_contract(answers: dict[str, Answer], method: str, target: str) -> None:
    """Every way gives the documented status, the same JSON, the JSON content type, and Allow on a 405."""
    want = expected_status(method, target)
    endpoint = unquote_to_bytes(target.partition("?")[0]).decode("utf-8", "replace")
    for way, (status, body, headers) in answers.items():
        assert status == want, f"{way} answered {status} to {method} {target}, not {want}"
        assert headers.get("content-type") == wl.JSON_TYPE, (way, method, target, headers)
        assert headers.get("allow") == ("GET, HEAD" if status == 405 else None), (way, method, target, headers)
        if method == "HEAD":
            assert body is None, f"{way}: HEAD {target} came with a body"
        elif status >= 400:
            assert isinstance(body, dict), f"{way}: {method} {target} gave a non-JSON {status}"
            assert set(body) in ({"error", "detail"}, {"error", "parameter", "detail"}), body
    bodies = {json.dumps(_comparable(endpoint, a[0], a[1]), sort_keys=True) for a in answers.values()}
    assert len(bodies) == 1, (method, target, answers)


@EXAMPLES
@given(path=paths(), query=queries, method=methods)
def test_every_method_path_shape_and_query_gets_the_documented_answer_from_every_way(
    ways: dict[str, Get], path: str, query: str, method: str
) -> None:
    target = path + ("?" + query if query else "")
    check_the_contract({name: get(target, method) for name, get in ways.items()}, method, target)


@EXAMPLES
@given(path=st.sampled_from(PATHS), query=queries, method=methods)
def test_no_query_to_an_endpoint_gets_a_5xx_and_every_way_agrees(
    ways: dict[str, Get], path: str, query: str, method: str
) -> None:
    """The endpoints themselves, so most examples reach the parser: the paths above are mostly 404s."""
    target = path + ("?" + query if query else "")
    check_the_contract({name: get(target, method) for name, get in ways.items()}, method, target)


@settings(max_examples=300)
@given(fields=st.lists(st.tuples(st.binary(max_size=8), st.binary(max_size=8)), max_size=5))
def test_the_shared_parser_decodes_utf8_and_shows_anything_else_as_sent(fields: list[tuple[bytes, bytes]]) -> None:
    """Each name and value, percent-encoded by the client, comes back decoded when it is UTF-8, and otherwise
    exactly as it was sent, escapes and all: an error can quote it, and it never passes for a number."""
    raw = "&".join(_escaped(name) + "=" + _escaped(value) for name, value in fields)
    items = wl.query_items(raw.encode("ascii"))
    assert len(items) == len(fields)  # no field is empty: each has its '='
    for (name, value), got in zip(fields, items, strict=True):
        for sent, read in zip((name, value), got, strict=True):
            try:
                assert read == sent.decode("utf-8")
            except UnicodeDecodeError:
                assert read == _escaped(sent)
                try:
                    wl.parse_short([("query_ms", read)], WORKLOAD)
                except ParamError as error:
                    assert error.detail.endswith(f"got {read[:40]!r}")
                else:
                    raise AssertionError(f"{read!r} passed for a number")


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
