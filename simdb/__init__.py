"""The simulated database both apps share, so their waits are the same by construction."""

from simdb.database import ConfigError, DatabaseConfig, QueryTiming, SimulatedDatabase
from simdb.workload import (
    MAX_QUERY_MS,
    MAX_ROWS,
    MAX_WORK_MS,
    PagePlan,
    ParamError,
    ShortPlan,
    Timing,
    WorkloadConfig,
)

__all__ = [
    "MAX_QUERY_MS",
    "MAX_ROWS",
    "MAX_WORK_MS",
    "ConfigError",
    "DatabaseConfig",
    "PagePlan",
    "ParamError",
    "QueryTiming",
    "ShortPlan",
    "SimulatedDatabase",
    "Timing",
    "WorkloadConfig",
]
