"""The awaitable faces: psycopg 3's ``AsyncConnectionPool``, asyncpg's own pool, and SQLAlchemy's ``AsyncSession``.

Built like the blocking faces (:mod:`pgdb.blocking`): one pool per process of ``pool_size`` connections, full from
the moment it opens, a connection checked out per query and handed back after it, the checkout timed as ``pool``
and the rest as ``wait``. A pool belongs to the event loop it was opened in, so the FastAPI app opens its pool in
its lifespan, inside the server's loop, and closes it there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any, TypeVar

import asyncpg
import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Result
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from pgdb import orm, queries
from pgdb.failures import opening, reaching
from pgdb.pooled import Pooled, psycopg_pool_options
from simdb import Item, QueryTiming, User

T = TypeVar("T")


class AsyncPsycopgDatabase(Pooled):
    """psycopg 3 through ``psycopg_pool.AsyncConnectionPool``, in autocommit as its blocking twin is."""

    def _build(self) -> None:
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[tuple[Any, ...]]] = AsyncConnectionPool(
            self._conninfo, **psycopg_pool_options(self.pool_size, self._timeout)
        )

    async def open_async(self) -> None:
        with opening(self.pool_size, self._timeout):
            await self._pool.open(wait=True, timeout=self._timeout)

    async def close_async(self) -> None:
        await self._pool.close()

    async def _fetch(self, query: str, args: tuple[object, ...]) -> tuple[list[tuple[Any, ...]], QueryTiming]:
        started = time.perf_counter()
        with reaching(self._timeout):
            async with self._pool.connection() as conn:
                got = time.perf_counter()
                cursor = await conn.execute(query, args)
                rows = await cursor.fetchall()
                done = time.perf_counter()
        return rows, QueryTiming(pool=got - started, wait=done - got)

    async def user_async(self, user_id: int, ms: float) -> tuple[User, QueryTiming]:
        rows, timing = await self._fetch(queries.USER, (user_id, self.latency(ms)))
        return queries.the_user([User(*row) for row in rows]), timing

    async def listing_async(self, user_id: int, rows: int, ms: float) -> tuple[list[Item], QueryTiming]:
        found, timing = await self._fetch(queries.LISTING, (user_id, rows, self.latency(ms)))
        return [Item(*row) for row in found], timing

    async def short_async(self, user_id: int, ms: float) -> QueryTiming:
        return (await self._fetch(queries.SHORT, (user_id, self.latency(ms))))[1]


class AsyncpgDatabase(Pooled):
    """asyncpg through its own pool (``asyncpg.create_pool``), with its defaults: prepared statements cached per
    connection, and a connection reset when it goes back to the pool."""

    def _build(self) -> None:
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None  # created inside the event loop, by open_async

    async def open_async(self) -> None:
        with opening(self.pool_size, self._timeout):
            async with asyncio.timeout(self._timeout):
                self._pool = await asyncpg.create_pool(
                    dsn=self._conninfo, min_size=self.pool_size, max_size=self.pool_size
                )

    async def close_async(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _fetch(self, query: str, *args: object) -> tuple[list[asyncpg.Record], QueryTiming]:
        if self._pool is None:
            raise RuntimeError("the asyncpg pool is not open: open_async() runs in the app's lifespan")
        started = time.perf_counter()
        with reaching(self._timeout):
            async with self._pool.acquire(timeout=self._timeout) as conn:
                got = time.perf_counter()
                rows = await conn.fetch(query, *args)
                done = time.perf_counter()
        return rows, QueryTiming(pool=got - started, wait=done - got)

    async def user_async(self, user_id: int, ms: float) -> tuple[User, QueryTiming]:
        rows, timing = await self._fetch(queries.ASYNCPG_USER, user_id, self.latency(ms))
        return queries.the_user([User(*row) for row in rows]), timing

    async def listing_async(self, user_id: int, rows: int, ms: float) -> tuple[list[Item], QueryTiming]:
        found, timing = await self._fetch(queries.ASYNCPG_LISTING, user_id, rows, self.latency(ms))
        return [Item(*row) for row in found], timing

    async def short_async(self, user_id: int, ms: float) -> QueryTiming:
        return (await self._fetch(queries.ASYNCPG_SHORT, user_id, self.latency(ms)))[1]


class AsyncSqlAlchemyDatabase(Pooled):
    """The SQLAlchemy 2 ORM the async way: an ``AsyncSession`` per query over an async engine on asyncpg (the
    pairing SQLAlchemy documents for asyncio), rows mapped into the same objects as the blocking ORM face's."""

    def _build(self) -> None:
        conninfo = self._conninfo
        # The creator connects with the very DSN asyncpg's own pool gets.
        self._engine: AsyncEngine = create_async_engine(
            "postgresql+asyncpg://",
            async_creator=lambda: asyncpg.connect(dsn=conninfo),
            pool_size=self.pool_size,
            max_overflow=0,
            pool_timeout=self._timeout,
        )

    async def open_async(self) -> None:
        with opening(self.pool_size, self._timeout):
            async with asyncio.timeout(self._timeout), AsyncExitStack() as held:
                for _ in range(self.pool_size):
                    await held.enter_async_context(self._engine.connect())

    async def close_async(self) -> None:
        await self._engine.dispose()

    async def _run(
        self, statement: Any, params: dict[str, object], take: Callable[[Result[Any]], T]
    ) -> tuple[T, QueryTiming]:
        """One statement in an AsyncSession bound to a connection checked out first, so the checkout is timed
        apart."""
        started = time.perf_counter()
        with reaching(self._timeout):
            async with self._engine.connect() as conn:
                got = time.perf_counter()
                async with AsyncSession(bind=conn) as session:
                    value = take(await session.execute(statement, params))
                done = time.perf_counter()
        return value, QueryTiming(pool=got - started, wait=done - got)

    async def user_async(self, user_id: int, ms: float) -> tuple[orm.UserRecord, QueryTiming]:
        params: dict[str, object] = {"user_id": user_id, "seconds": self.latency(ms)}
        return await self._run(orm.USER, params, lambda result: result.scalar_one())

    async def listing_async(self, user_id: int, rows: int, ms: float) -> tuple[list[orm.ItemRecord], QueryTiming]:
        params: dict[str, object] = {"user_id": user_id, "rows": rows, "seconds": self.latency(ms)}
        return await self._run(orm.LISTING, params, lambda result: list(result.scalars()))

    async def short_async(self, user_id: int, ms: float) -> QueryTiming:
        params: dict[str, object] = {"user_id": user_id, "seconds": self.latency(ms)}
        return (await self._run(orm.SHORT, params, lambda result: result.scalar_one()))[1]
