"""A simulated database with one blocking face and one awaitable face.

Both apps import this module so that their waits are identical by construction: the sync app calls
:meth:`SimulatedDatabase.query`, which holds its thread like a real blocking driver, and the async app awaits
:meth:`SimulatedDatabase.query_async`, which hands the event loop to other requests while it waits. The only
difference between the two faces is *how* the caller waits, never how long.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from simdb.rows import Item, User, seeded_items, seeded_user

T = TypeVar("T", int, float)

ENV_PREFIX = "SIMDB_"


class ConfigError(ValueError):
    """A database or workload setting is malformed; the message names the setting."""


BACKENDS = ("simulated", "postgres", "http")
# The PostgreSQL drivers, by the face a server needs (pgdb.choose maps each name to its class; runner.config says
# which server mode takes which face), the one used when a server names none, and how a server is told its own.
# The ORM (SQLAlchemy's Session, or AsyncSession over asyncpg) is a driver name like the raw ones.
ORM_DRIVER = "sqlalchemy"
BLOCKING_DRIVERS = ("psycopg", ORM_DRIVER)
ASYNC_DRIVERS = ("psycopg", "asyncpg", ORM_DRIVER)
DEFAULT_DRIVER = "psycopg"
# In a PostgreSQL scenario, a server may wait on the simulated database instead, with the same latencies: the
# baseline that shows what a real driver, its pool and its rows add, measured in the same run.
SIMULATED_DRIVER = "simulated"
DRIVER_ENV = f"{ENV_PREFIX}DRIVER"


@dataclass(frozen=True)
class DatabaseConfig:
    """What a server process waits on, and how.

    ``backend`` is ``simulated`` (this module: sleeps with the scenario's latencies), ``postgres`` (a real
    PostgreSQL, see the ``pgdb`` package, where each query waits the same latencies with ``pg_sleep`` inside the
    query, so the connection, the protocol, the rows and the pool are real) or ``http`` (each query a call to an
    upstream HTTP service that answers after the same latencies, see the ``httpwait`` and ``upstream`` packages;
    its settings are :class:`httpwait.config.UpstreamConfig`).

    Simulated: ``capacity`` models a connection pool: at most that many queries run at once per process and the
    rest wait for a free connection (0 means unlimited). ``jitter`` spreads each query's latency uniformly by
    ±that fraction; ``seed`` makes the spread repeatable from run to run.

    PostgreSQL: ``pool_size`` connections per server process (the model's database resource is pool_size x
    processes); ``url`` an existing server (empty: the harness's own throwaway cluster, with ``max_connections``);
    ``allow_remote`` must be set for a server that is not on this machine.
    """

    capacity: int = 0
    jitter: float = 0.0
    seed: int = 1
    backend: str = "simulated"
    pool_size: int = 10
    url: str = ""
    max_connections: int = 100
    allow_remote: bool = False

    def __post_init__(self) -> None:
        if self.capacity < 0:
            raise ConfigError(
                f"capacity must be 0 (unlimited) or a positive number of connections, got {self.capacity}"
            )
        if not 0.0 <= self.jitter < 1.0:
            raise ConfigError(f"jitter must be a fraction in [0, 1), got {self.jitter}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.pool_size < 1:
            raise ConfigError(f"pool_size must be at least 1 connection per process, got {self.pool_size}")
        if self.max_connections < 1:
            raise ConfigError(f"max_connections must be at least 1, got {self.max_connections}")
        if self.backend == "simulated" and (self.url or self.allow_remote):
            raise ConfigError('url and allow_remote apply only to backend = "postgres"')
        if self.backend == "postgres" and self.capacity:
            raise ConfigError('capacity is the simulated pool; with backend = "postgres" the pool is pool_size')
        if self.backend == "http" and (self.capacity or self.url or self.allow_remote):
            raise ConfigError(
                'capacity, url and allow_remote do not apply to backend = "http": the upstream\'s capacity and its '
                "clients' pools are set in [upstream]"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DatabaseConfig:
        """Read ``SIMDB_CAPACITY``, ``SIMDB_JITTER``, ``SIMDB_SEED``, ``SIMDB_BACKEND``, ``SIMDB_POOL_SIZE`` and
        ``SIMDB_URL``.

        Server processes are started by the runner (or by hand) and only the environment crosses that boundary,
        so this is the one place a server reads its database settings, once, at app creation. The URL is the
        effective one the runner hands over (its own cluster's, or the scenario's), never a recorded one.
        """
        env = os.environ if environ is None else environ
        return cls(
            capacity=_env_number(env, "CAPACITY", int, cls.capacity),
            jitter=_env_number(env, "JITTER", float, cls.jitter),
            seed=_env_number(env, "SEED", int, cls.seed),
            backend=env.get(f"{ENV_PREFIX}BACKEND") or cls.backend,
            pool_size=_env_number(env, "POOL_SIZE", int, cls.pool_size),
            url=env.get(f"{ENV_PREFIX}URL") or cls.url,
        )

    def to_env(self) -> dict[str, str]:
        """The environment that makes :meth:`from_env` rebuild this config in another process (the URL is added
        by the runner: it is only known once the database is up)."""
        return {
            f"{ENV_PREFIX}CAPACITY": str(self.capacity),
            f"{ENV_PREFIX}JITTER": repr(self.jitter),
            f"{ENV_PREFIX}SEED": str(self.seed),
            f"{ENV_PREFIX}BACKEND": self.backend,
            f"{ENV_PREFIX}POOL_SIZE": str(self.pool_size),
        }


def _env_number(env: Mapping[str, str], key: str, kind: type[T], default: T) -> T:
    raw = env.get(ENV_PREFIX + key)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"environment variable {ENV_PREFIX}{key}={raw!r} is not a valid {kind.__name__}") from None


@dataclass
class QueryTiming:
    """Where the time of one or more queries went, in seconds.

    ``pool`` is time spent waiting for a free connection, ``wait`` the query itself; they are kept apart so a
    pool-limited run shows which of the two grew.
    """

    pool: float = 0.0
    wait: float = 0.0

    def add(self, other: QueryTiming) -> None:
        self.pool += other.pool
        self.wait += other.wait


class SimulatedDatabase:
    """One process's database handle: latency from the caller, capacity and jitter from the config."""

    def __init__(self, config: DatabaseConfig | None = None) -> None:
        self.config = config or DatabaseConfig()
        # Each process seeds its own generator; with several workers each worker repeats the same sequence,
        # which keeps runs repeatable without sharing state across processes.
        self._rng = random.Random(self.config.seed)
        self._rng_lock = threading.Lock()
        capacity = self.config.capacity
        self._blocking_pool = threading.BoundedSemaphore(capacity) if capacity else None
        # An asyncio.Semaphore binds to the loop that first waits on it; it is created lazily so the database
        # can be built before the server's event loop exists.
        self._async_pool: asyncio.Semaphore | None = None

    def latency(self, ms: float) -> float:
        """The seconds a query asked to take ``ms`` milliseconds actually takes, after jitter."""
        seconds = ms / 1000.0
        jitter = self.config.jitter
        if not jitter or seconds == 0.0:
            return seconds
        with self._rng_lock:
            factor = self._rng.uniform(1.0 - jitter, 1.0 + jitter)
        return seconds * factor

    def query(self, ms: float) -> QueryTiming:
        """Run a query the way a blocking driver does: the calling thread can do nothing else until it returns."""
        duration = self.latency(ms)
        started = time.perf_counter()
        if self._blocking_pool is None:
            time.sleep(duration)
            return QueryTiming(wait=time.perf_counter() - started)
        with self._blocking_pool:
            got_connection = time.perf_counter()
            time.sleep(duration)
            done = time.perf_counter()
        return QueryTiming(pool=got_connection - started, wait=done - got_connection)

    async def query_async(self, ms: float) -> QueryTiming:
        """Run a query the way an async driver does: the event loop serves other requests during the wait."""
        duration = self.latency(ms)
        started = time.perf_counter()
        if not self.config.capacity:
            await asyncio.sleep(duration)
            return QueryTiming(wait=time.perf_counter() - started)
        if self._async_pool is None:
            self._async_pool = asyncio.Semaphore(self.config.capacity)
        async with self._async_pool:
            got_connection = time.perf_counter()
            await asyncio.sleep(duration)
            done = time.perf_counter()
        return QueryTiming(pool=got_connection - started, wait=done - got_connection)

    # The faces the workload waits on (simdb.workload.BlockingDatabase and AsyncDatabase): each query waits as
    # above and returns the rows the seeded schema holds, so a real database can be held to the same answers.

    def user(self, user_id: int, ms: float) -> tuple[User, QueryTiming]:
        return seeded_user(user_id), self.query(ms)

    def listing(self, user_id: int, rows: int, ms: float) -> tuple[list[Item], QueryTiming]:
        return seeded_items(user_id, rows), self.query(ms)

    def short(self, user_id: int, ms: float) -> QueryTiming:
        return self.query(ms)

    async def user_async(self, user_id: int, ms: float) -> tuple[User, QueryTiming]:
        return seeded_user(user_id), await self.query_async(ms)

    async def listing_async(self, user_id: int, rows: int, ms: float) -> tuple[list[Item], QueryTiming]:
        return seeded_items(user_id, rows), await self.query_async(ms)

    async def short_async(self, user_id: int, ms: float) -> QueryTiming:
        return await self.query_async(ms)

    # Nothing to open or close: the simulated database holds no connections. The methods are here so the apps
    # handle every backend alike (pgdb.choose).

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    async def open_async(self) -> None:
        return None

    async def close_async(self) -> None:
        return None
