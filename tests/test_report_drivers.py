"""What a database layer costs: twins found by machinery, differences judged level by level, each verdict able to
go either way."""

from __future__ import annotations

from typing import Any

import pytest

from runner import report_drivers
from runner.report_drivers import Difference, differences, driver_section, twin
from tests.runs import complete_run, step, view_of

USERS = [10, 100, 400]
# (name, kind, driver): the same gthread server and the same event loop on three databases each.
SERVERS = [
    ("sync-sim", "sync", "simulated"),
    ("sync-pg", "sync", "psycopg"),
    ("sync-orm", "sync", "sqlalchemy"),
    ("async-sim", "async", "simulated"),
    ("async-pg", "async", "asyncpg"),
    ("async-orm", "async", "sqlalchemy"),
]


def pg_run(cpu_ms: dict[str, list[float]], rps: tuple[float, ...] = (10.0, 100.0, 300.0)) -> dict[str, Any]:
    """A PostgreSQL run whose servers spent ``cpu_ms[name][i]`` ms of CPU per request at ``USERS[i]``."""
    run = complete_run()
    run["config"]["database"] = {"backend": "postgres", "pool_size": 10, "jitter": 0.0, "seed": 1}
    run["config"]["load"]["users"] = USERS
    run["config"]["workload"]["app_work_ms"] = 1  # below every CPU per request here, so none is raised to it
    servers = []
    for name, kind, driver in SERVERS:
        if kind == "sync":
            servers.append({"name": name, "server": "gunicorn", "worker_class": "gthread", "workers": 3,
                            "threads": 8, "driver": driver})  # fmt: skip
        else:
            servers.append({"name": name, "server": "uvicorn", "workers": 1, "driver": driver})
    run["config"]["servers"] = servers
    run["steps"] = []
    for index, users in enumerate(USERS):
        for name, kind, _ in SERVERS:
            record = step(name, users, rps=rps[index], p50=20.0, p95=40.0)
            # CPU % of one core over the 10 s window = ms per request x requests per second / 10.
            record.update(kind=kind, server_cpu_pct=cpu_ms[name][index] * rps[index] / 10)
            run["steps"].append(record)
    return run


# Quiet at 10 and 100 users (CPU below 70%), busy at 400 (300/s x >= 2.4 ms is over 70% of a core).
COSTS = {
    "sync-sim": [3.0, 2.6, 2.4],
    "sync-pg": [3.5, 3.0, 2.5],
    "sync-orm": [5.0, 4.6, 3.0],
    "async-sim": [2.0, 1.8, 2.4],
    "async-pg": [2.4, 2.1, 2.5],
    "async-orm": [5.0, 4.7, 3.0],
}


def found(cpu_ms: dict[str, list[float]] = COSTS) -> dict[str, Difference]:
    return {d.claim: d for d in differences(view_of(pg_run(cpu_ms)))}


def test_a_twin_is_the_same_machinery_on_another_database() -> None:
    view = view_of(pg_run(COSTS))
    orm = view.server("sync-orm")
    assert orm is not None
    found_twin = twin(view, orm, "simulated")
    assert found_twin is not None and found_twin.name == "sync-sim"
    async_orm = view.server("async-orm")
    assert async_orm is not None
    assert twin(view, async_orm, "psycopg") is None  # the event loop runs asyncpg here, not psycopg


def test_every_expected_difference_is_looked_for_in_a_fixed_order() -> None:
    claims = list(found())
    assert [c.split(" ")[0] for c in claims[:4]] == ["sync-pg", "sync-orm", "async-pg", "async-orm"]
    assert claims[4].startswith("the ORM (sync-orm) costs more CPU than the raw driver under the same server (sync-pg)")
    assert claims[5].startswith("the ORM (async-orm) costs more CPU than the raw driver under the same server")
    assert claims[6].startswith("the async ORM (async-orm) adds more CPU over its simulated twin")
    assert len(claims) == 7


def test_a_difference_with_the_expected_sign_at_every_quiet_level_appeared() -> None:
    driver = next(d for c, d in found().items() if c.startswith("sync-pg"))
    # Compared at 10 and 100 users only: at 400 both were above 70% CPU.
    assert [users for users, _ in driver.per_level] == [10, 100]
    assert [round(v, 6) for _, v in driver.per_level] == [0.5, 0.4]
    assert driver.verdict == "appeared"
    # Pooled over 10 and 100 users: (3.5x10 + 3.0x100) / 110 - (3.0x10 + 2.6x100) / 110.
    assert driver.overall_ms == pytest.approx((335 - 290) / 110)
    assert driver.sentence().startswith("**sync-pg (psycopg 3 pool) costs more CPU than sync-sim: appeared**")


def test_the_opposite_sign_at_every_level_is_reported_as_the_opposite() -> None:
    costs = {**COSTS, "async-pg": [1.8, 1.5, 2.5]}
    driver = next(d for c, d in found(costs).items() if c.startswith("async-pg"))
    assert driver.verdict == "opposite"
    assert "the opposite appeared" in driver.sentence() and "not explained away" in driver.sentence()


def test_a_sign_that_changes_between_levels_is_not_established() -> None:
    costs = {**COSTS, "async-pg": [2.4, 1.7, 2.5]}
    driver = next(d for c, d in found(costs).items() if c.startswith("async-pg"))
    assert driver.verdict == "not established"
    assert "changed sign from level to level (10 users +0.40 ms, 100 users -0.10 ms)" in driver.sentence()


def test_one_comparable_level_is_not_enough() -> None:
    costs = {**COSTS, "sync-pg": [3.5, 9.0, 2.5]}  # 100/s x 9 ms: 90% CPU at 100 users, so only 10 users remain
    driver = next(d for c, d in found(costs).items() if c.startswith("sync-pg"))
    assert [(users, round(value, 6)) for users, value in driver.per_level] == [(10, 0.5)]
    assert driver.verdict == "not established"
    assert "Only one level could be compared" in driver.sentence()


def test_no_comparable_level_says_so() -> None:
    difference = Difference("x costs more", (), None)
    assert difference.verdict == "not established"
    assert "No user level had both configurations below 70% CPU" in difference.sentence()


def test_the_async_orms_addition_is_compared_with_the_sync_orms_level_by_level() -> None:
    orms = next(d for c, d in found().items() if c.startswith("the async ORM"))
    # (5.0 - 2.0) - (5.0 - 3.0) = 1.0 at 10 users; (4.7 - 1.8) - (4.6 - 2.6) = 0.9 at 100 users.
    assert [round(v, 6) for _, v in orms.per_level] == [1.0, 0.9]
    assert orms.verdict == "appeared"
    smaller = next(d for c, d in found({**COSTS, "async-orm": [3.5, 3.3, 3.0]}).items() if "async ORM" in c)
    assert smaller.verdict == "opposite"


def test_the_section_tabulates_each_configuration_and_states_every_verdict() -> None:
    lines = driver_section(view_of(pg_run(COSTS)))
    assert lines[0] == "## What the database layer costs"
    table = [line for line in lines if line.startswith("| ")]
    assert table[0] == "| configuration | side | database | CPU ms / request | simulated twin | added |"
    assert table[1] == "| sync-sim | sync | simulated database, no connection | 2.64 | – | baseline |"
    assert table[2] == f"| sync-pg | sync | psycopg 3 pool | 3.05 | sync-sim | +{(335 - 290) / 110:.2f} |"
    assert sum(1 for line in lines if line.startswith("- **")) == 7


def test_no_section_for_a_simulated_run_or_one_with_nothing_to_compare() -> None:
    assert driver_section(view_of(complete_run())) == []
    run = pg_run(COSTS)
    run["config"]["servers"] = [s for s in run["config"]["servers"] if s["name"] in ("sync-pg", "async-pg")]
    run["steps"] = [s for s in run["steps"] if s["server"] in ("sync-pg", "async-pg")]
    assert driver_section(view_of(run)) == []


def test_two_levels_are_the_fewest_that_settle_a_sign() -> None:
    assert report_drivers.MIN_LEVELS == 2
