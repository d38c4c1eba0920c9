"""What the endpoints do, shared by both apps so the two can only differ in how they wait.

Each endpoint is a *plan* (how long each query and the Python work take) parsed from the query string by one
shared parser, and executed by one of two runners of the same steps: :func:`run_page` (blocking) and
:func:`run_page_async` (awaitable). They wait on a database *face* (:class:`BlockingDatabase`,
:class:`AsyncDatabase`): the simulated database, or a real driver's pool from the ``pgdb`` package, and build the
JSON from the rows it returns. The apps only route, parse and serialise.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from simdb.database import ENV_PREFIX, ConfigError, QueryTiming
from simdb.rows import ItemRow, UserRow

# Documented upper bounds for per-request overrides. They guarantee that no request can hold a worker for longer
# than 2 x MAX_QUERY_MS + MAX_WORK_MS (plus any wait for a pool connection), whatever a client sends.
MAX_QUERY_MS = 5_000.0
MAX_WORK_MS = 500.0
MAX_ROWS = 1_000


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


ENDPOINTS = ("/page", "/short", "/health")


def http_error_body(status: int, method: str) -> dict[str, str]:
    """The JSON both apps return for errors that are not about a parameter (unknown path, wrong method).

    The request's path is not echoed: frameworks decode odd paths differently, and an error should not reflect
    what a client sent; listing what does exist is more useful anyway.
    """
    if status == 404:
        return {"error": "not_found", "detail": f"no such endpoint; the endpoints are {', '.join(ENDPOINTS)}"}
    if status == 405:
        return {"error": "method_not_allowed", "detail": f"{method[:20]} is not allowed here; use GET"}
    return {"error": "http_error", "detail": f"HTTP {status}"}


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
    repeated = sorted({key for key in names if names.count(key) > 1})
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

    def header(self) -> str:
        """``db`` is the time spent in queries, ``pool`` waiting for a connection, ``app`` the Python work and
        ``handler`` the whole handler; what a client sees beyond ``handler`` is framework, server and queueing.
        ``start`` carries, as its description, the wall-clock second the handler began: on one machine it lines
        up with the client's clock, which is how a timeline shows the time a request waited before it began."""
        parts = [
            f"db;dur={self.db.wait * 1000:.3f}",
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


def _page_body(user: UserRow, items: Sequence[ItemRow]) -> dict[str, Any]:
    return {
        "user": {"id": user.id, "name": user.name},
        "items": [{"id": item.id, "title": item.title, "price_cents": item.price_cents} for item in items],
    }


def run_page(db: BlockingDatabase, plan: PagePlan, user_id: int = 42) -> tuple[dict[str, Any], Timing]:
    """The page, blocking: user lookup, Python work, listing query."""
    timing = Timing(db=QueryTiming(), started=time.time())
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
    timing = Timing(db=QueryTiming(), started=time.time())
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
    timing = Timing(db=QueryTiming(), started=time.time())
    start = time.perf_counter()
    timing.db.add(db.short(user_id, plan.query_ms))
    timing.total = time.perf_counter() - start
    return {"ok": True}, timing


async def run_short_async(db: AsyncDatabase, plan: ShortPlan, user_id: int = 42) -> tuple[dict[str, Any], Timing]:
    timing = Timing(db=QueryTiming(), started=time.time())
    start = time.perf_counter()
    timing.db.add(await db.short_async(user_id, plan.query_ms))
    timing.total = time.perf_counter() - start
    return {"ok": True}, timing
