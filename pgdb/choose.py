"""Which database face a server process waits on: the simulated one, or a real driver's, from its settings.

The apps call :func:`blocking_database` or :func:`async_database` once, with the scenario's
:class:`simdb.DatabaseConfig` (``SIMDB_BACKEND``, ``SIMDB_POOL_SIZE``, ``SIMDB_URL``) and the server's driver
(``SIMDB_DRIVER``, :func:`driver_from_env`), and open what they get (:class:`BlockingFace`, :class:`AsyncFace`).
The runner checks a scenario's drivers against its servers before anything starts; the refusals here are for a
server started by hand with settings that cannot work, and name the setting.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import partial
from typing import Protocol, TypeVar, cast

from httpwait.aio import AiohttpUpstream, AsyncHttpxUpstream
from httpwait.blocking import HttpxUpstream
from httpwait.config import DEFAULT_CLIENT, UpstreamConfig
from pgdb.aio import AsyncpgDatabase, AsyncPsycopgDatabase, AsyncSqlAlchemyDatabase
from pgdb.blocking import PsycopgDatabase, SqlAlchemyDatabase
from pgdb.queries import Latency, seconds
from simdb import AsyncDatabase, BlockingDatabase, ConfigError, DatabaseConfig, SimulatedDatabase
from simdb.database import DEFAULT_DRIVER, DRIVER_ENV, SIMULATED_DRIVER

ENV_DRIVER = DRIVER_ENV

Face = TypeVar("Face")


class BlockingFace(BlockingDatabase, Protocol):
    """A blocking face the app opens once it runs in its own process, and closes when it stops."""

    def open(self) -> None: ...

    def close(self) -> None: ...


class AsyncFace(AsyncDatabase, Protocol):
    """An awaitable face, opened and closed inside the event loop that uses it."""

    async def open_async(self) -> None: ...

    async def close_async(self) -> None: ...


BLOCKING_DRIVERS: dict[str, Callable[..., BlockingFace]] = {
    "psycopg": PsycopgDatabase,
    "sqlalchemy": SqlAlchemyDatabase,
}
ASYNC_DRIVERS: dict[str, Callable[..., AsyncFace]] = {
    "psycopg": AsyncPsycopgDatabase,
    "asyncpg": AsyncpgDatabase,
    "sqlalchemy": AsyncSqlAlchemyDatabase,
}


# The upstream's clients (backend = "http"), by the same names httpwait.config lists for each face.
BLOCKING_CLIENTS: dict[str, Callable[..., BlockingFace]] = {
    "httpx": HttpxUpstream,
    "httpx-per-request": partial(HttpxUpstream, per_request=True),
}
ASYNC_CLIENTS: dict[str, Callable[..., AsyncFace]] = {
    "httpx": AsyncHttpxUpstream,
    "aiohttp": AiohttpUpstream,
    "httpx-per-request": partial(AsyncHttpxUpstream, per_request=True),
    "aiohttp-per-request": partial(AiohttpUpstream, per_request=True),
}


def driver_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The server's driver as the runner hands it over (``SIMDB_DRIVER``); unset or empty means none given."""
    env = os.environ if environ is None else environ
    return env.get(ENV_DRIVER) or None


def blocking_database(
    config: DatabaseConfig, driver: str | None, upstream: UpstreamConfig | None = None
) -> BlockingFace:
    """The face a thread waits on: the simulated database, psycopg's pool, the SQLAlchemy ORM, or an httpx client
    calling the upstream (``upstream``: its settings; None reads them from the environment, as a server does)."""
    if config.backend == "http" and driver != SIMULATED_DRIVER:
        return _client(config, driver, upstream, BLOCKING_CLIENTS, "blocking")
    return _face(config, driver, BLOCKING_DRIVERS, "blocking")


def async_database(config: DatabaseConfig, driver: str | None, upstream: UpstreamConfig | None = None) -> AsyncFace:
    """The face an event loop awaits: the simulated database, psycopg's async pool, asyncpg, SQLAlchemy's
    AsyncSession, or an httpx or aiohttp client calling the upstream."""
    if config.backend == "http" and driver != SIMULATED_DRIVER:
        return _client(config, driver, upstream, ASYNC_CLIENTS, "awaitable")
    return _face(config, driver, ASYNC_DRIVERS, "awaitable")


def _client(
    config: DatabaseConfig,
    driver: str | None,
    upstream: UpstreamConfig | None,
    clients: Mapping[str, Callable[..., Face]],
    kind: str,
) -> Face:
    """The named client's face of ``kind`` (httpx when none is named), with the upstream's settings and the
    scenario's jitter spread as the simulated database spreads it."""
    make = _driver(clients, driver or DEFAULT_CLIENT, kind)
    return make(upstream or UpstreamConfig.from_env(), latency=_latency(config))


def _face(config: DatabaseConfig, driver: str | None, drivers: Mapping[str, Callable[..., Face]], kind: str) -> Face:
    """The simulated database (on the simulated backend, or as a PostgreSQL scenario's baseline), else the named
    driver's face of ``kind``, sized and timed by the configuration."""
    # The simulated database has both faces, so it is whichever one is asked for (mypy cannot see that for Face).
    simulated = cast("Callable[[DatabaseConfig], Face]", SimulatedDatabase)
    if config.backend == "simulated":
        return simulated(_no_driver(config, driver))
    if driver == SIMULATED_DRIVER:
        return simulated(_simulated(config))
    make = _driver(drivers, driver, kind)
    return make(_url(config), config.pool_size, latency=_latency(config))


def _no_driver(config: DatabaseConfig, driver: str | None) -> DatabaseConfig:
    if driver:
        raise ConfigError(
            f"{ENV_DRIVER}={driver!r} applies only to the postgres and http backends; this server is on "
            f'"{config.backend}"'
        )
    return config


def _driver(drivers: Mapping[str, Callable[..., Face]], driver: str | None, kind: str) -> Callable[..., Face]:
    name = driver or DEFAULT_DRIVER
    if name not in drivers:
        raise ConfigError(
            f"{ENV_DRIVER}={name!r} has no {kind} face; the drivers for it are {', '.join(sorted(drivers))}"
        )
    return drivers[name]


def _simulated(config: DatabaseConfig) -> DatabaseConfig:
    """The simulated database with the real one's latencies (jitter and seed), and no pool: the baseline server of
    a PostgreSQL scenario waits exactly as long but holds no connection."""
    return DatabaseConfig(jitter=config.jitter, seed=config.seed)


def _url(config: DatabaseConfig) -> str:
    if not config.url:
        raise ConfigError(
            "SIMDB_URL is empty: a server on the postgres backend needs the database's URL, which the runner "
            "passes on (postgresql://user:password@host:port/database)"
        )
    return config.url


def _latency(config: DatabaseConfig) -> Latency:
    """The scenario's jitter, spread exactly as the simulated database spreads it (same formula, same seed)."""
    return SimulatedDatabase(config).latency if config.jitter else seconds
