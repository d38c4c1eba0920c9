"""The blocking faces: psycopg 3 with its ``ConnectionPool``, and the SQLAlchemy ORM ``Session`` on psycopg.

A server process builds one face (one pool) after it has forked: gunicorn calls ``create_app`` in each worker,
FastAPI's ``def`` and ``blocking`` endpoints open theirs at startup. Each query checks a connection out of the pool,
runs and hands it back, as the simulated database does: the connection is held for the query's wait, not for the
Python work between the page's two queries. The time to check one out is the query's ``pool`` time, the rest its
``wait``. Every pool holds ``pool_size`` connections from the moment it opens, no more and no fewer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool
from sqlalchemy import Engine, Result, create_engine
from sqlalchemy.orm import Session

from pgdb import orm, queries
from pgdb.failures import opening, reaching
from pgdb.pooled import Pooled, psycopg_pool_options
from simdb import Item, QueryTiming, User

T = TypeVar("T")


class PsycopgDatabase(Pooled):
    """psycopg 3 through ``psycopg_pool.ConnectionPool``.

    The connections are in autocommit: each request is one read-only statement, and without it psycopg would
    wrap each in BEGIN and COMMIT, two round trips asyncpg (which has no implicit transaction) does not make.
    """

    def _build(self) -> None:
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            self._conninfo, **psycopg_pool_options(self.pool_size, self._timeout)
        )

    def open(self) -> None:
        with opening(self.pool_size, self._timeout):
            self._pool.open(wait=True, timeout=self._timeout)

    def close(self) -> None:
        self._pool.close()

    def _fetch(self, query: str, args: tuple[object, ...]) -> tuple[list[tuple[Any, ...]], QueryTiming]:
        started = time.perf_counter()
        with reaching(self._timeout), self._pool.connection() as conn:
            got = time.perf_counter()
            rows = conn.execute(query, args).fetchall()
            done = time.perf_counter()
        return rows, QueryTiming(pool=got - started, wait=done - got)

    def user(self, user_id: int, ms: float) -> tuple[User, QueryTiming]:
        rows, timing = self._fetch(queries.USER, (user_id, self.latency(ms)))
        return queries.the_user([User(*row) for row in rows]), timing

    def listing(self, user_id: int, rows: int, ms: float) -> tuple[list[Item], QueryTiming]:
        found, timing = self._fetch(queries.LISTING, (user_id, rows, self.latency(ms)))
        return [Item(*row) for row in found], timing

    def short(self, user_id: int, ms: float) -> QueryTiming:
        return self._fetch(queries.SHORT, (user_id, self.latency(ms)))[1]


class SqlAlchemyDatabase(Pooled):
    """The SQLAlchemy 2 ORM: a ``Session`` per query over an engine on psycopg, rows mapped into objects.

    The engine's own pool (``QueuePool``) holds ``pool_size`` connections and never more (``max_overflow=0``);
    opening checks them all out once, so the pool is full before the first request, as psycopg's is. The session
    is bound to a connection checked out first, which is how its pool time is seen apart from the query's.
    """

    def _build(self) -> None:
        conninfo = self._conninfo
        # The creator connects with the very conninfo psycopg's pool gets, whatever form the URL has.
        self._engine: Engine = create_engine(
            "postgresql+psycopg://",
            creator=lambda: psycopg.connect(conninfo),
            pool_size=self.pool_size,
            max_overflow=0,
            pool_timeout=self._timeout,
        )

    def open(self) -> None:
        with opening(self.pool_size, self._timeout), ExitStack() as held:
            for _ in range(self.pool_size):
                held.enter_context(self._engine.connect())

    def close(self) -> None:
        self._engine.dispose()

    def _run(
        self, statement: Any, params: dict[str, object], take: Callable[[Result[Any]], T]
    ) -> tuple[T, QueryTiming]:
        """One statement in a Session bound to a connection checked out first, so the checkout is timed apart."""
        started = time.perf_counter()
        with reaching(self._timeout), self._engine.connect() as conn:
            got = time.perf_counter()
            with Session(bind=conn) as session:
                value = take(session.execute(statement, params))
            done = time.perf_counter()
        return value, QueryTiming(pool=got - started, wait=done - got)

    def user(self, user_id: int, ms: float) -> tuple[orm.UserRecord, QueryTiming]:
        params: dict[str, object] = {"user_id": user_id, "seconds": self.latency(ms)}
        return self._run(orm.USER, params, lambda result: result.scalar_one())

    def listing(self, user_id: int, rows: int, ms: float) -> tuple[list[orm.ItemRecord], QueryTiming]:
        params: dict[str, object] = {"user_id": user_id, "rows": rows, "seconds": self.latency(ms)}
        return self._run(orm.LISTING, params, lambda result: list(result.scalars()))

    def short(self, user_id: int, ms: float) -> QueryTiming:
        params: dict[str, object] = {"user_id": user_id, "seconds": self.latency(ms)}
        return self._run(orm.SHORT, params, lambda result: result.scalar_one())[1]
