"""A small, valid scenario for tests, with every value that tests vary exposed as a keyword."""

from __future__ import annotations

SMALL_SCENARIO = """
name = "{name}"
description = "test scenario"

[load]
users = {users}
warmup_s = {warmup}
measure_s = {measure}
drain_s = 5
think_time_s = [{think_min}, {think_max}]
request_timeout_s = 10
page_weight = 4
short_weight = 1
{load}

[workload]
user_lookup_ms = {user_ms}
app_work_ms = {work_ms}
listing_ms = {listing_ms}
listing_rows = 5
short_query_ms = {short_ms}

[database]
jitter = 0.0
seed = 1
{database}

[[servers]]
name = "flask-gunicorn"
server = "gunicorn"
workers = {sync_workers}
{sync_server}

[[servers]]
name = "fastapi-uvicorn"
server = "uvicorn"
workers = 1
{async_server}

[run]
startup_timeout_s = 30
{burst}
"""

DEFAULTS: dict[str, object] = {
    "name": "test",
    "users": "[2, 20]",
    "warmup": 1,
    "measure": 3,
    "think_min": 0.5,
    "think_max": 1.5,
    "user_ms": 10,
    "work_ms": 1,
    "listing_ms": 30,
    "short_ms": 5,
    "sync_workers": 2,
    "burst": "",
    "load": "",  # more lines of [load]
    "database": "",  # more lines of [database]
    "sync_server": "",  # more lines of each server's table
    "async_server": "",
}

# The same scenario on the harness's own PostgreSQL, small pools: small_scenario(**POSTGRES).
POSTGRES: dict[str, object] = {
    "database": 'backend = "postgres"\npool_size = 3\nmax_connections = 20',
    "sync_server": 'driver = "psycopg"',
    "async_server": 'driver = "asyncpg"',
}

# The same scenario with every wait a call to the harness's own upstream service: small_scenario(**UPSTREAM).
UPSTREAM: dict[str, object] = {
    "database": 'backend = "http"\n\n[upstream]\ntimeout_s = 2',
    "sync_server": 'driver = "httpx"',
    "async_server": 'driver = "aiohttp"',
}

# A burst short enough for a test: 2 users, 20 at once, 2 again.
SMALL_BURST = """
[burst]
stages = [[2, 1], [20, 2], [2, 2]]
drain_s = 5
"""


def small_scenario(**values: object) -> str:
    settings = {**DEFAULTS, **values}
    return SMALL_SCENARIO.format(**settings)
