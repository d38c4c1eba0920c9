"""What the endpoints do, shared by both apps so the two can only differ in how they wait.

Each endpoint is a *plan* (how long each query and the Python work take) parsed from the query string by one
shared parser, and executed by one of two runners of the same steps: :func:`run_page` (blocking) and
:func:`run_page_async` (awaitable). They wait on a database *face* (:class:`BlockingDatabase`,
:class:`AsyncDatabase`): the simulated database, or a real driver's pool from the ``pgdb`` package, and build the
JSON from the rows it returns. The apps only route and adapt: the query string is read by :func:`query_items`,
and every answer's status line, JSON bytes and error body come from here too, so the two apps answer every
request alike (README, "The endpoints").
"""

from __future__ import annotations

import json
import math
import os
import string
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import quote, unquote_to_bytes

from simdb.database import ENV_PREFIX, ConfigError, QueryTiming
from simdb.rows import ItemRow, UserRow

# Documented upper bounds for per-request overrides. They guarantee that no request can hold a worker for longer
# than 2 x MAX_QUERY_MS + MAX_WORK_MS (plus any wait for a pool connection), whatever a client sends.
MAX_QUERY_MS = 5_000.0
MAX_WORK_MS = 500.0
MAX_ROWS = 1_000
# The longest query string either app reads. A real one is a few dozen bytes; the bound keeps a client from making
# a request parse for long, and it is the apps' own, so gunicorn and uvicorn answer past it alike (README, "The
# endpoints"; gunicorn's own request-line limit, which would answer first with its own page, is lifted in
# sync_app/gunicorn.conf.py).
MAX_QUERY_BYTES = 4_096
# How much of a request body either app reads, and throws away, before it answers 404 or 405 without looking at it.
# A server that closes the connection with a body still arriving resets it, and a client (nginx too, as a 502) can
# lose the answer to that reset (benoitc/gunicorn#872; RFC 9112, 9.6); past this bound the rest is left unread.
MAX_DRAIN_BYTES = 1_048_576
DRAIN_CHUNK_BYTES = 65_536


@dataclass(frozen=True)
class WorkloadConfig:
    """The default shape of each request, in milliseconds; a request may override any of them.

    The page is modelled on a typical request: look up the user, do a little Python work, run a longer listing
    query, return JSON. With the defaults 100 of its 110 configured ms are database waits; with framework and HTTP
    on top (~1 ms), a client sees it spend about 90% of its time waiting.
    """

    user_lookup_ms: float = 20.0
    listing_ms: float = 80.0
    app_work_ms: float = 10.0
    listing_rows: int = 20
    short_query_ms: float = 10.0

    def __post_init__(self) -> None:
        for name, value, upper in (
            ("user_lookup_ms", self.user_lookup_ms, MAX_QUERY_MS),
            ("listing_ms", self.listing_ms, MAX_QUERY_MS),
            ("short_query_ms", self.short_query_ms, MAX_QUERY_MS),
            ("app_work_ms", self.app_work_ms, MAX_WORK_MS),
            ("listing_rows", self.listing_rows, MAX_ROWS),
        ):
            if not (math.isfinite(value) and 0 <= value <= upper):
                raise ConfigError(f"{name} must be between 0 and {upper:g}, got {value}")

    @property
    def page_wait_ms(self) -> float:
        """How long a page waits on the database in all: its two queries."""
        return self.user_lookup_ms + self.listing_ms

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkloadConfig:
        """Read ``SIMDB_USER_LOOKUP_MS`` and friends: the runner hands the scenario to servers this way."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, kind in (
            ("user_lookup_ms", float),
            ("listing_ms", float),
            ("app_work_ms", float),
            ("listing_rows", int),
            ("short_query_ms", float),
        ):
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is None or raw == "":
                continue
            try:
                values[name] = kind(raw)
            except ValueError:
                raise ConfigError(
                    f"environment variable {ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}"
                ) from None
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        return {ENV_PREFIX + name.upper(): repr(value) for name, value in asdict(self).items()}


class ParamError(ValueError):
    """A query parameter is unknown, repeated, not a number, or out of its documented range.

    Both apps turn it into the same 400 response via :meth:`body`, so a client sees one error shape whichever
    server it talks to.
    """

    def __init__(self, parameter: str, detail: str) -> None:
        super().__init__(f"{parameter}: {detail}")
        self.parameter = parameter
        self.detail = detail

    def body(self) -> dict[str, str]:
        return {"error": "invalid_parameter", "parameter": self.parameter, "detail": self.detail}


class DatabaseUnavailable(Exception):
    """The database could not be reached, the connection was lost, or no pooled connection came free in time.

    A face raises it (with the driver's error as its cause, for the server's log) instead of its driver's own
    errors, and both apps answer it with the same 503 and :meth:`body`, never a traceback page: the request may
    succeed if retried, and the client learns what failed without the driver's text, which differs by driver.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def body(self) -> dict[str, str]:
        return {"error": "database_unavailable", "detail": self.detail}


class UpstreamFailed(Exception):
    """A call to the upstream HTTP service failed (``[database] backend = "http"``): it answered an error status,
    reset or closed the connection, could not be reached (502), or gave no answer within the call's timeout (504).

    A face raises it (with the client library's error as its cause, for the server's log) instead of the library's
    own errors, and both apps answer it with the same status and :meth:`body`, never a traceback: the client learns
    which of the two happened without the library's text, which differs between httpx and aiohttp.
    """

    def __init__(self, status: int, detail: str) -> None:
        if status not in (502, 504):
            raise ValueError(f"an upstream failure is answered 502 or 504, not {status}")
        super().__init__(detail)
        self.status = status
        self.detail = detail

    def body(self) -> dict[str, str]:
        return {"error": "upstream_timeout" if self.status == 504 else "upstream_error", "detail": self.detail}


class QueryTooLong(ValueError):
    """The query string is longer than :data:`MAX_QUERY_BYTES`; both apps answer 414 with :meth:`body`."""

    def __init__(self, size: int) -> None:
        super().__init__(f"query string of {size} bytes")
        self.size = size

    def body(self) -> dict[str, str]:
        return {
            "error": "query_too_long",
            "detail": f"the query string is {self.size} bytes; at most {MAX_QUERY_BYTES} are read",
        }


# --- the answer to every request, whichever app gives it (README, "The endpoints") ---------------------------------

ENDPOINTS = ("/page", "/short", "/health")
# Every endpoint answers GET, and HEAD as HTTP asks of any GET resource (the same headers, no body). Anything else,
# OPTIONS included, gets 405 with the JSON error and an Allow header. Flask would answer OPTIONS itself (200, empty)
# and Starlette would not; CORS preflight, the only common use of OPTIONS, means nothing to a benchmark's loopback
# server, and one rule for every other method is simpler to state and to test than two.
ALLOWED_METHODS = ("GET", "HEAD")
JSON_TYPE = "application/json"


def http_error_body(status: int, method: str) -> dict[str, str]:
    """The JSON both apps return for errors that are not about a parameter (unknown path, wrong method).

    The request's path is not echoed: frameworks decode odd paths differently, and an error should not reflect
    what a client sent; listing what does exist is more useful anyway.
    """
    if status == 404:
        return {"error": "not_found", "detail": f"no such endpoint; the endpoints are {', '.join(ENDPOINTS)}"}
    if status == 405:
        allowed = " or ".join(ALLOWED_METHODS)
        return {"error": "method_not_allowed", "detail": f"{method[:20]} is not allowed here; use {allowed}"}
    return {"error": "http_error", "detail": f"HTTP {status}"}


def http_error_headers(status: int) -> dict[str, str]:
    """A 405 must say which methods the endpoint does allow (RFC 9110, 15.5.6): the same two everywhere."""
    return {"Allow": ", ".join(ALLOWED_METHODS)} if status == 405 else {}


def json_bytes(body: Mapping[str, Any]) -> bytes:
    """Every JSON body either app sends, encoded one way: compact, keys in the order they were built, UTF-8.

    Flask's ``jsonify`` sorts the keys and ends with a newline, Starlette's ``JSONResponse`` does neither; with one
    encoder a client gets the same bytes, and so the same Content-Length, from both servers.
    """
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def status_line(status: int) -> str:
    """The code and reason phrase of a response's status line, as uvicorn writes them (Python's ``HTTPStatus``).

    Werkzeug would write its own, in capitals (``405 METHOD NOT ALLOWED``), so the Flask app gives this one.
    """
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"{status} {phrase}"


# Printable ASCII is shown as it was sent when a query field cannot be decoded; anything else (a space, a control
# character, a byte above 127, none of which a client should send unencoded) is shown percent-encoded.
_SHOWN_AS_SENT = string.punctuation


def _decoded(raw: bytes) -> str:
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return quote(raw, safe=_SHOWN_AS_SENT)


def query_items(raw: bytes) -> list[tuple[str, str]]:
    """The raw query string as the server received it, as (name, value) pairs in the order sent, repeats included.

    Both apps read their query strings with this, not with their frameworks' parsers, which disagree where the
    percent-decoded bytes are not UTF-8: Werkzeug re-quotes them (``'%FF%FE'``), Starlette turns them into
    replacement characters. Here such a name or value is kept exactly as it was sent, so an error shows the client
    what it sent (``got '%ff%fe'``); it contains ``%``, so it can never pass for a number or a known name. Otherwise
    it reads a query as ``urllib.parse.parse_qsl(keep_blank_values=True)`` does: ``&`` separates fields, ``+`` is a
    space, a field without ``=`` has an empty value, empty fields are skipped. Raises :class:`QueryTooLong` past
    :data:`MAX_QUERY_BYTES`.
    """
    if len(raw) > MAX_QUERY_BYTES:
        raise QueryTooLong(len(raw))
    items: list[tuple[str, str]] = []
    for field in raw.split(b"&"):
        if field:
            name, _, value = field.partition(b"=")
            items.append((_decoded(name), _decoded(value)))
    return items


@dataclass(frozen=True)
class PagePlan:
    user_lookup_ms: float
    app_work_ms: float
    listing_ms: float
    rows: int


@dataclass(frozen=True)
class ShortPlan:
    query_ms: float


# Query parameter -> (upper bound, integer only)
PAGE_PARAMS: dict[str, tuple[float, bool]] = {
    "user_ms": (MAX_QUERY_MS, False),
    "work_ms": (MAX_WORK_MS, False),
    "listing_ms": (MAX_QUERY_MS, False),
    "rows": (MAX_ROWS, True),
}
SHORT_PARAMS: dict[str, tuple[float, bool]] = {"query_ms": (MAX_QUERY_MS, False)}


def _parse(items: Iterable[tuple[str, str]], allowed: Mapping[str, tuple[float, bool]]) -> dict[str, float]:
    """Check unknown names, then repeats, then values, each in name order.

    The order is fixed so that a query with several problems gets the same answer from both apps: Werkzeug
    lists repeated parameters grouped by name, Starlette in the order they were sent.
    """
    pairs = list(items)
    names = [key for key, _ in pairs]
    unknown = sorted({key for key in names if key not in allowed})
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise ParamError(unknown[0], f"unknown parameter (known: {known})")
    repeated = sorted(key for key, count in Counter(names).items() if count > 1)
    if repeated:
        raise ParamError(repeated[0], "given more than once")
    values: dict[str, float] = {}
    for key, raw in sorted(pairs):
        upper, integer = allowed[key]
        kind = "a whole number" if integer else "a number"
        problem = ParamError(key, f"must be {kind} between 0 and {upper:g}, got {raw[:40]!r}")
        # Integers are compared as integers: a 400-digit value must be refused, not overflow a float.
        try:
            value: float = int(raw, 10) if integer else float(raw)
        except (ValueError, TypeError):
            raise problem from None
        if not (integer or math.isfinite(value)) or not 0 <= value <= upper:
            raise problem
        values[key] = value
    return values


def parse_page(items: Iterable[tuple[str, str]], defaults: WorkloadConfig) -> PagePlan:
    """Turn the page's query string (as key/value pairs, repeats included) into a plan, or raise ParamError."""
    v = _parse(items, PAGE_PARAMS)
    return PagePlan(
        user_lookup_ms=v.get("user_ms", defaults.user_lookup_ms),
        app_work_ms=v.get("work_ms", defaults.app_work_ms),
        listing_ms=v.get("listing_ms", defaults.listing_ms),
        rows=int(v.get("rows", defaults.listing_rows)),
    )


def parse_short(items: Iterable[tuple[str, str]], defaults: WorkloadConfig) -> ShortPlan:
    v = _parse(items, SHORT_PARAMS)
    return ShortPlan(query_ms=v.get("query_ms", defaults.short_query_ms))


def parse_none(items: Iterable[tuple[str, str]]) -> None:
    """Endpoints without parameters still refuse unknown ones, so a typo never passes silently."""
    _parse(items, {})


@dataclass
class Timing:
    """Server-side time of one request, reported in the standard ``Server-Timing`` header."""

    db: QueryTiming
    app: float = 0.0
    started: float = 0.0
    total: float = 0.0
    # The wait's name in the header: ``db``, or ``upstream`` when the queries are calls to the upstream service.
    wait_name: str = "db"

    def header(self) -> str:
        """``db`` is the time spent in queries (``upstream``: in calls to the upstream service), ``pool`` waiting
        for a connection, ``app`` the Python work and ``handler`` the whole handler; what a client sees beyond
        ``handler`` is framework, server and queueing.
        ``start`` carries, as its description, the wall-clock second the handler began: on one machine it lines
        up with the client's clock, which is how a timeline shows the time a request waited before it began."""
        parts = [
            f"{self.wait_name};dur={self.db.wait * 1000:.3f}",
            f"pool;dur={self.db.pool * 1000:.3f}",
            f"app;dur={self.app * 1000:.3f}",
            f"handler;dur={self.total * 1000:.3f}",
            f'start;desc="{self.started:.6f}"',
        ]
        return ", ".join(parts)


def parse_server_timing(header: str) -> dict[str, float]:
    """Durations in ms by metric name, and ``start`` as epoch seconds; malformed entries are skipped."""
    metrics: dict[str, float] = {}
    for entry in header.split(","):
        name, _, params = entry.strip().partition(";")
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key in ("dur", "desc") and name:
                try:
                    metrics[name] = float(value.strip('"'))
                except ValueError:
                    continue
    return metrics


def burn_cpu(ms: float) -> float:
    """Do ``ms`` milliseconds of real Python work on this thread and return the wall seconds it took.

    The loop counts this thread's own CPU time (``time.thread_time``), not the wall clock, so the amount of work
    is the same whether the thread runs alone or shares a core with others: contention shows up as extra wall
    time, as it would for real code. The work holds the GIL the whole time, as pure-Python code does.
    """
    started_wall = time.perf_counter()
    if ms <= 0:
        return 0.0
    deadline = time.thread_time() + ms / 1000.0
    acc = 0
    while time.thread_time() < deadline:
        acc += sum(i * i for i in range(200))
    return time.perf_counter() - started_wall


class BlockingDatabase(Protocol):
    """A database as a thread waits on it: each call holds the calling thread until its query returns.

    Each query waits ``ms`` milliseconds inside the database (holding its connection, as a slow query does) and
    reports where its time went: waiting for a pooled connection, and the query itself.
    """

    def user(self, user_id: int, ms: float) -> tuple[UserRow, QueryTiming]:
        """The user, looked up by primary key."""
        ...

    def listing(self, user_id: int, rows: int, ms: float) -> tuple[Sequence[ItemRow], QueryTiming]:
        """The user's first ``rows`` listing rows, in position order, joined to the user."""
        ...

    def short(self, user_id: int, ms: float) -> QueryTiming:
        """One small indexed query whose answer the endpoint does not need."""
        ...


class AsyncDatabase(Protocol):
    """The same database as an event loop waits on it: the loop serves other requests while a query waits."""

    async def user_async(self, user_id: int, ms: float) -> tuple[UserRow, QueryTiming]: ...

    async def listing_async(self, user_id: int, rows: int, ms: float) -> tuple[Sequence[ItemRow], QueryTiming]: ...

    async def short_async(self, user_id: int, ms: float) -> QueryTiming: ...


def wait_name(db: object) -> str:
    """What a face's waits are called in ``Server-Timing``: a face may say (the upstream's clients say
    ``upstream``), every other is a database (``db``)."""
    name = getattr(db, "SERVER_TIMING_NAME", "db")
    return name if isinstance(name, str) else "db"


def _page_body(user: UserRow, items: Sequence[ItemRow]) -> dict[str, Any]:
    return {
        "user": {"id": user.id, "name": user.name},
        "items": [{"id": item.id, "title": item.title, "price_cents": item.price_cents} for item in items],
    }


def run_page(db: BlockingDatabase, plan: PagePlan, user_id: int = 42) -> tuple[dict[str, Any], Timing]:
    """The page, blocking: user lookup, Python work, listing query."""
    timing = Timing(db=QueryTiming(), started=time.time(), wait_name=wait_name(db))
    start = time.perf_counter()
    user, took = db.user(user_id, plan.user_lookup_ms)
    timing.db.add(took)
    timing.app = burn_cpu(plan.app_work_ms)
    items, took = db.listing(user_id, plan.rows, plan.listing_ms)
    timing.db.add(took)
    body = _page_body(user, items)
    timing.total = time.perf_counter() - start
    return body, timing


async def run_page_async(db: AsyncDatabase, plan: PagePlan, user_id: int = 42) -> tuple[dict[str, Any], Timing]:
    """The page, awaitable: the same steps as :func:`run_page`; the event loop is free during both queries."""
    timing = Timing(db=QueryTiming(), started=time.time(), wait_name=wait_name(db))
    start = time.perf_counter()
    user, took = await db.user_async(user_id, plan.user_lookup_ms)
    timing.db.add(took)
    timing.app = burn_cpu(plan.app_work_ms)
    items, took = await db.listing_async(user_id, plan.rows, plan.listing_ms)
    timing.db.add(took)
    body = _page_body(user, items)
    timing.total = time.perf_counter() - start
    return body, timing


def run_short(db: BlockingDatabase, plan: ShortPlan, user_id: int = 42) -> tuple[dict[str, Any], Timing]:
    timing = Timing(db=QueryTiming(), started=time.time(), wait_name=wait_name(db))
    start = time.perf_counter()
    timing.db.add(db.short(user_id, plan.query_ms))
    timing.total = time.perf_counter() - start
    return {"ok": True}, timing


async def run_short_async(db: AsyncDatabase, plan: ShortPlan, user_id: int = 42) -> tuple[dict[str, Any], Timing]:
    timing = Timing(db=QueryTiming(), started=time.time(), wait_name=wait_name(db))
    start = time.perf_counter()
    timing.db.add(await db.short_async(user_id, plan.query_ms))
    timing.total = time.perf_counter() - start
    return {"ok": True}, timing
