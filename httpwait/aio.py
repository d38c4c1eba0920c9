"""The awaitable faces of the upstream: httpx's ``AsyncClient`` and aiohttp's ``ClientSession``, one per event loop
(one per server process: uvicorn runs one loop in each), or (the antipattern) one per call.

A client belongs to the event loop it was opened in, so the FastAPI app opens it in its lifespan, inside the
server's loop, and closes it there. httpx's timeout is ``[upstream] timeout_s`` for each phase, as on the blocking
side; aiohttp's is the call's total (``ClientTimeout(total=...)``), aiohttp's usual way: either way a call to an
upstream that never answers ends after ``timeout_s`` with the app's 504.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import aiohttp
import httpx2

from httpwait import calls
from httpwait.blocking import SENDING
from httpwait.calls import SERVER_TIMING_NAME
from httpwait.config import UpstreamConfig
from simdb import Item, QueryTiming, User


class _Face:
    """The three queries as calls, over a client's ``_get`` (each subclass's)."""

    calls: calls.Calls
    SERVER_TIMING_NAME = SERVER_TIMING_NAME

    async def _get(self, url: str) -> tuple[Any, QueryTiming]:
        raise NotImplementedError

    async def user_async(self, user_id: int, ms: float) -> tuple[User, QueryTiming]:
        data, took = await self._get(self.calls.user(user_id, ms))
        return calls.user_row(data), took

    async def listing_async(self, user_id: int, rows: int, ms: float) -> tuple[list[Item], QueryTiming]:
        data, took = await self._get(self.calls.listing(user_id, rows, ms))
        return calls.item_rows(data), took

    async def short_async(self, user_id: int, ms: float) -> QueryTiming:
        return (await self._get(self.calls.short(user_id, ms)))[1]


class AsyncHttpxUpstream(_Face):
    """httpx's ``AsyncClient``; ``per_request`` builds one around each call and closes it after."""

    def __init__(self, config: UpstreamConfig, *, latency: calls.Latency = calls.seconds, per_request: bool = False):
        self.calls = calls.Calls(config, latency)
        self.config = config
        self.per_request = per_request
        self._client: httpx2.AsyncClient | None = None

    def _new_client(self) -> httpx2.AsyncClient:
        total, idle = self.config.httpx_limits
        return httpx2.AsyncClient(
            limits=httpx2.Limits(max_connections=total, max_keepalive_connections=idle),
            timeout=httpx2.Timeout(self.config.timeout_s),
        )

    async def open_async(self) -> None:
        if not self.per_request and self._client is None:
            self._client = self._new_client()

    async def close_async(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _get(self, url: str) -> tuple[Any, QueryTiming]:
        connected: list[float] = []

        async def trace(name: str, info: dict[str, Any]) -> None:
            if name == SENDING:
                connected.append(time.perf_counter())

        started = time.perf_counter()
        try:
            if self.per_request:
                async with self._new_client() as client:
                    response = await client.get(url, extensions={"trace": trace})
            else:
                if self._client is None:
                    raise RuntimeError("the upstream client is not open: open_async() runs in the app's lifespan")
                response = await self._client.get(url, extensions={"trace": trace})
        except httpx2.TimeoutException as error:
            raise calls.timed_out(self.config.timeout_s) from error
        except httpx2.HTTPError as error:
            raise calls.unreachable(error) from error
        done = time.perf_counter()
        data = calls.decoded(response.status_code, response.content)
        return data, calls.timing(started, connected[0] if connected else None, done)


async def _connected(session: aiohttp.ClientSession, context: SimpleNamespace, params: object) -> None:
    """aiohttp's trace: the call has its connection (a reused one, or one it just opened)."""
    holder = context.trace_request_ctx
    if isinstance(holder, list) and not holder:
        holder.append(time.perf_counter())


def _trace_config() -> aiohttp.TraceConfig:
    config = aiohttp.TraceConfig()
    config.on_connection_reuseconn.append(_connected)
    config.on_connection_create_end.append(_connected)
    return config


class AiohttpUpstream(_Face):
    """aiohttp's ``ClientSession`` over a ``TCPConnector`` of ``[upstream] max_connections`` (aiohttp's own 100
    when unset); ``per_request`` builds a session around each call and closes it after."""

    def __init__(self, config: UpstreamConfig, *, latency: calls.Latency = calls.seconds, per_request: bool = False):
        self.calls = calls.Calls(config, latency)
        self.config = config
        self.per_request = per_request
        self._session: aiohttp.ClientSession | None = None

    def _new_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.config.aiohttp_limit),
            timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
            trace_configs=[_trace_config()],
        )

    async def open_async(self) -> None:
        if not self.per_request and self._session is None:
            self._session = self._new_session()

    async def close_async(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _fetch(self, session: aiohttp.ClientSession, url: str, connected: list[float]) -> tuple[int, bytes]:
        async with session.get(url, trace_request_ctx=connected) as response:
            return response.status, await response.read()

    async def _get(self, url: str) -> tuple[Any, QueryTiming]:
        connected: list[float] = []
        started = time.perf_counter()
        try:
            if self.per_request:
                async with self._new_session() as session:
                    status, body = await self._fetch(session, url, connected)
            else:
                if self._session is None:
                    raise RuntimeError("the upstream session is not open: open_async() runs in the app's lifespan")
                status, body = await self._fetch(self._session, url, connected)
        except TimeoutError as error:  # aiohttp's timeouts are asyncio's TimeoutError (the builtin, since 3.11)
            raise calls.timed_out(self.config.timeout_s) from error
        except aiohttp.ClientError as error:
            raise calls.unreachable(error) from error
        done = time.perf_counter()
        data = calls.decoded(status, body)
        return data, calls.timing(started, connected[0] if connected else None, done)
