"""What every real database face holds, whichever driver and whether it blocks or awaits: its connection string,
its pool's size, how long a request may wait for a connection, and how a query's milliseconds become seconds of
``pg_sleep`` (the scenario's jitter included). Each face builds its own (unopened) pool in :meth:`Pooled._build`."""

from __future__ import annotations

from typing import Any

from pgdb.queries import POOL_TIMEOUT_S, Latency, seconds


class Pooled:
    """The settings of one process's pool of ``pool_size`` connections; the pool itself is the driver's."""

    def __init__(
        self, conninfo: str, pool_size: int, *, timeout: float = POOL_TIMEOUT_S, latency: Latency = seconds
    ) -> None:
        self._conninfo = conninfo
        self.pool_size = pool_size
        self._timeout = timeout
        self.latency = latency
        self._build()

    def _build(self) -> None:
        """Create the pool, not yet open: a server opens it once it runs in its own process (or event loop)."""


def psycopg_pool_options(pool_size: int, timeout: float) -> dict[str, Any]:
    """psycopg_pool's settings, the same for its blocking and its async pool: ``pool_size`` connections from the
    moment it opens, no more and no fewer, in autocommit (each request is one read-only statement; without it
    psycopg wraps each in BEGIN and COMMIT, two round trips asyncpg, which has no implicit transaction, does not
    make)."""
    return {
        "min_size": pool_size,
        "max_size": pool_size,
        "timeout": timeout,
        "kwargs": {"autocommit": True},
        "open": False,
        "name": "bench",
    }
