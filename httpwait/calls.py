"""What every upstream face shares, whichever client it uses and whether it blocks or awaits: the call each query
becomes, the rows read back from the answer, and the one mapping of failures to the apps' 502 and 504.

A query of ``ms`` milliseconds becomes a GET that the upstream answers after that delay (the scenario's jitter
applied here, exactly as the simulated database applies it): the user lookup ``/user/{id}``, the listing
``/items/{id}?rows=N``, the short query ``/short/{id}``. A call's time is split as a query's is: ``pool`` until the
client had a connection to send on (a pooled one, or a new one it opened: the per-request client's cost shows
here), ``wait`` the rest (the request, the upstream's queue and delay, the answer).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from httpwait.config import UpstreamConfig
from simdb import ConfigError, Item, QueryTiming, UpstreamFailed, User

Latency = Callable[[float], float]  # a query's ms -> the seconds it waits (jitter included)


# Every upstream face's waits are named so in the apps' Server-Timing header (simdb.workload.wait_name).
SERVER_TIMING_NAME = "upstream"


def seconds(ms: float) -> float:
    return ms / 1000.0


class Calls:
    """The URLs of one process's calls: the upstream's address, the answers' size, the latency's jitter."""

    def __init__(self, config: UpstreamConfig, latency: Latency = seconds) -> None:
        if not config.url:
            raise ConfigError(
                "UPSTREAM_URL is empty: a server on the http backend needs the upstream's address, which the runner "
                "passes on (http://127.0.0.1:port)"
            )
        self.config = config
        self._base = config.url.rstrip("/")
        self._tail = f"&bytes={config.body_bytes}" if config.body_bytes else ""
        self._latency = latency

    def _ms(self, ms: float) -> str:
        return f"{self._latency(ms) * 1000:.3f}"

    def user(self, user_id: int, ms: float) -> str:
        return f"{self._base}/user/{user_id}?ms={self._ms(ms)}{self._tail}"

    def listing(self, user_id: int, rows: int, ms: float) -> str:
        return f"{self._base}/items/{user_id}?rows={rows}&ms={self._ms(ms)}{self._tail}"

    def short(self, user_id: int, ms: float) -> str:
        return f"{self._base}/short/{user_id}?ms={self._ms(ms)}{self._tail}"


def decoded(status: int, body: bytes) -> Any:
    """The answer's JSON, or UpstreamFailed (502) for an error status or a body that is not JSON."""
    if status >= 400:
        raise UpstreamFailed(502, f"the upstream answered {status}")
    try:
        return json.loads(body)
    except ValueError as error:
        raise UpstreamFailed(502, "the upstream's answer is not JSON") from error


def user_row(data: Any) -> User:
    try:
        return User(int(data["id"]), str(data["name"]))
    except (KeyError, TypeError, ValueError) as error:
        raise UpstreamFailed(502, "the upstream's user has no id or name") from error


def item_rows(data: Any) -> list[Item]:
    try:
        return [
            Item(int(row["id"]), str(row["title"]), int(row["price_cents"]), str(row["user_name"]))
            for row in data["items"]
        ]
    except (KeyError, TypeError, ValueError) as error:
        raise UpstreamFailed(502, "the upstream's listing rows are malformed") from error


def timed_out(timeout_s: float) -> UpstreamFailed:
    return UpstreamFailed(504, f"no answer from the upstream within {timeout_s:g} s")


def unreachable(error: BaseException) -> UpstreamFailed:
    """A connection refused, reset or closed before the answer. The client sees the same words whichever library
    made the call (their errors differ: httpx's ReadError is aiohttp's ClientOSError); the server's log line names
    the library's error (the cause)."""
    return UpstreamFailed(502, "the upstream could not be reached or closed the connection")


def timing(started: float, connected: float | None, done: float) -> QueryTiming:
    """A call's time, split where the client had its connection (``connected`` None: not seen, all of it waits)."""
    at = started if connected is None else connected
    return QueryTiming(pool=at - started, wait=done - at)
