"""The blocking face of the upstream: httpx's ``Client``, one per server process, or (the antipattern) one per call.

A server process builds its face after it has forked (gunicorn calls ``create_app`` in each worker; FastAPI's
``def`` and ``blocking`` endpoints open theirs at startup), and the shared client's pool holds the connections
every thread of the process uses (httpx's ``Client`` is safe to share between threads). Each call has the timeout
of ``[upstream] timeout_s`` for each of its phases (a free pooled connection, connecting, sending, each read), so a
call to an upstream that never answers ends after it with the app's 504.
"""

from __future__ import annotations

import time
from typing import Any

import httpx2

from httpwait import calls
from httpwait.calls import SERVER_TIMING_NAME
from httpwait.config import UpstreamConfig
from simdb import Item, QueryTiming, User

# httpcore's trace event for the moment a request goes out on a connection it holds (pooled or just opened).
SENDING = "http11.send_request_headers.started"


class HttpxUpstream:
    """httpx's blocking client; ``per_request`` builds one around each call and closes it after."""

    SERVER_TIMING_NAME = SERVER_TIMING_NAME

    def __init__(self, config: UpstreamConfig, *, latency: calls.Latency = calls.seconds, per_request: bool = False):
        self.calls = calls.Calls(config, latency)
        self.config = config
        self.per_request = per_request
        self._client: httpx2.Client | None = None

    def _new_client(self) -> httpx2.Client:
        total, idle = self.config.httpx_limits
        return httpx2.Client(
            limits=httpx2.Limits(max_connections=total, max_keepalive_connections=idle),
            timeout=httpx2.Timeout(self.config.timeout_s),
        )

    def open(self) -> None:
        if not self.per_request and self._client is None:
            self._client = self._new_client()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _get(self, url: str) -> tuple[Any, QueryTiming]:
        connected: list[float] = []

        def trace(name: str, info: dict[str, Any]) -> None:
            if name == SENDING:
                connected.append(time.perf_counter())

        started = time.perf_counter()
        try:
            if self.per_request:
                with self._new_client() as client:
                    response = client.get(url, extensions={"trace": trace})
            else:
                if self._client is None:
                    raise RuntimeError("the upstream client is not open: open() runs when the app starts")
                response = self._client.get(url, extensions={"trace": trace})
        except httpx2.TimeoutException as error:
            raise calls.timed_out(self.config.timeout_s) from error
        except httpx2.HTTPError as error:
            raise calls.unreachable(error) from error
        done = time.perf_counter()
        data = calls.decoded(response.status_code, response.content)
        return data, calls.timing(started, connected[0] if connected else None, done)

    def user(self, user_id: int, ms: float) -> tuple[User, QueryTiming]:
        data, took = self._get(self.calls.user(user_id, ms))
        return calls.user_row(data), took

    def listing(self, user_id: int, rows: int, ms: float) -> tuple[list[Item], QueryTiming]:
        data, took = self._get(self.calls.listing(user_id, rows, ms))
        return calls.item_rows(data), took

    def short(self, user_id: int, ms: float) -> QueryTiming:
        return self._get(self.calls.short(user_id, ms))[1]
