"""What a run's servers wait on, whatever it is: nothing to start (the simulated database), a PostgreSQL
(:mod:`runner.postgres`) or the upstream HTTP service (:mod:`runner.upstream`). Both have the same faces for the
sweep: ``ensure_up`` before each step, ``watch`` through it (its CPU beside the server's, and its fault), a
``describe`` line and ``metadata`` for run.json."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from runner import postgres, upstream
from runner.config import RunConfig

Backend = postgres.Database | upstream.Upstream
# What keeps a run from starting, with a message naming what failed.
BackendError = (postgres.DatabaseError, upstream.UpstreamError)


@contextlib.contextmanager
def run_backend(config: RunConfig, cpus: frozenset[int]) -> Iterator[Backend | None]:
    """The run's database or upstream, ready, for the ``with`` block (None with the simulated database), pinned
    to ``cpus`` (the client's cores: the server under test keeps its own)."""
    if config.database.backend == "http":
        with upstream.run_upstream(config, cpus) as service:
            yield service
        return
    with postgres.run_database(config, cpus) as database:
        yield database


def served(config: RunConfig, backend: Backend | None) -> RunConfig:
    """The configuration the servers get: the database's effective URL, or the upstream's address."""
    if isinstance(backend, upstream.Upstream):
        return upstream.served(config, backend)
    return postgres.served(config, backend)
