"""One way for every driver to say the database is out of reach: :class:`simdb.DatabaseUnavailable`.

The apps answer it with a 503 and the same body whichever driver raised it, so its detail never quotes a driver;
the driver's own error stays attached as the cause, for the server's log. A query that is wrong (a missing table,
a bad parameter) is not unavailability and passes through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import psycopg
import psycopg_pool
import sqlalchemy.exc

from simdb import DatabaseUnavailable

# No connection came free in time (asyncpg's pool says so with the built-in TimeoutError). Checked first: psycopg's
# PoolTimeout is an OperationalError and TimeoutError an OSError.
POOL_TIMEOUTS: tuple[type[BaseException], ...] = (psycopg_pool.PoolTimeout, sqlalchemy.exc.TimeoutError, TimeoutError)
# The server refused, went away or closed the connection (SQLAlchemy wraps its driver's errors in the first two).
UNREACHABLE: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # the server is shutting down or starting up
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections
    OSError,
)


def pool_timeout_detail(timeout: float) -> str:
    return f"no database connection came free within {timeout:g} s"


UNREACHABLE_DETAIL = "the database could not be reached, or the connection to it was lost"


@contextmanager
def reaching(timeout: float) -> Iterator[None]:
    """Inside the block, a driver's error that means the database is out of reach becomes DatabaseUnavailable."""
    try:
        yield
    except POOL_TIMEOUTS as error:
        raise DatabaseUnavailable(pool_timeout_detail(timeout)) from error
    except UNREACHABLE as error:
        raise DatabaseUnavailable(UNREACHABLE_DETAIL) from error


@contextmanager
def opening(pool_size: int, timeout: float) -> Iterator[None]:
    """Opening a pool: the same errors, with the driver's message, since this one goes to the server's log."""
    try:
        yield
    except (*POOL_TIMEOUTS, *UNREACHABLE) as error:
        raise DatabaseUnavailable(
            f"could not open a pool of {pool_size} connections within {timeout:g} s: "
            f"{type(error).__name__}: {error}".strip()
        ) from error
