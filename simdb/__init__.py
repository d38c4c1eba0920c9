"""The workload both apps share and the simulated database, so their waits are the same by construction.

The workload waits on a database *face* (:class:`BlockingDatabase`, :class:`AsyncDatabase`); the simulated
database is one, the ``pgdb`` package's real drivers are the others.
"""

from simdb.database import ConfigError, DatabaseConfig, QueryTiming, SimulatedDatabase
from simdb.rows import Item, ItemRow, User, UserRow, seeded_items, seeded_user
from simdb.workload import (
    MAX_QUERY_MS,
    MAX_ROWS,
    MAX_WORK_MS,
    AsyncDatabase,
    BlockingDatabase,
    DatabaseUnavailable,
    PagePlan,
    ParamError,
    ShortPlan,
    Timing,
    UpstreamFailed,
    WorkloadConfig,
)

__all__ = [
    "MAX_QUERY_MS",
    "MAX_ROWS",
    "MAX_WORK_MS",
    "AsyncDatabase",
    "BlockingDatabase",
    "ConfigError",
    "DatabaseConfig",
    "DatabaseUnavailable",
    "Item",
    "ItemRow",
    "PagePlan",
    "ParamError",
    "QueryTiming",
    "ShortPlan",
    "SimulatedDatabase",
    "Timing",
    "UpstreamFailed",
    "User",
    "UserRow",
    "WorkloadConfig",
    "seeded_items",
    "seeded_user",
]
