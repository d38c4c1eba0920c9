"""The model's inputs as taken from a run: what is configured, what is calibrated, and what is predicted."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from runner import expected, store
from runner.config import RunConfig, ServerConfig, config_from_dict
from runner.view import RunView
from tests import runs
from tests.runs import METADATA, complete_run, config, view_of

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference" / "default"

SYNC = {"name": "sync", "server": "gunicorn", "workers": 3}
ASYNC = {"name": "async", "server": "uvicorn", "workers": 1}


def reference() -> dict[str, Any]:
    run: dict[str, Any] = json.loads((REFERENCE / store.RUN_FILE).read_text(encoding="utf-8"))
    return run


def step(server: str, users: int, cpu_pct: float, completed: int, window: float = 10.0) -> dict[str, Any]:
    return {
        "server": server,
        "users": users,
        "status": "ok",
        "server_cpu_pct": cpu_pct,
        "saturated": "",
        "figures": {
            "rps": completed / window,
            "completed_in_window": completed,
            "window_s": window,
            "latency": {"mean_ms": 100.0},
        },
    }


def tiny_run(servers: list[dict[str, Any]], steps: list[dict[str, Any]], capacity: int = 0) -> dict[str, Any]:
    """A run of ``servers`` at 10 and 100 users thinking 5 s on average; pages wait 100 ms and work 10 ms."""
    saved = config()
    saved["load"].update(users=[10, 100], think_time_s=[2, 8], page_weight=4, short_weight=1)
    saved["workload"].update(user_lookup_ms=20, listing_ms=80, app_work_ms=10, short_query_ms=10)
    saved["database"]["capacity"] = capacity
    saved["servers"] = servers
    saved["run"].update(pin_cpus=True, server_cores=1)
    return {"config": saved, "metadata": copy.deepcopy(METADATA), "steps": steps, "status": "complete"}


def typed(run: dict[str, Any]) -> RunConfig:
    return config_from_dict(run["config"])


def test_calibration_uses_only_steps_where_the_cpu_was_not_the_limit() -> None:
    # 10 s at 20% CPU for 100 requests: 20 ms each. The 95% step would say 95 ms and must be left out.
    run = tiny_run([ASYNC], [step("async", 10, 20.0, 100), step("async", 100, 95.0, 100)])
    calibration = expected.calibrate(typed(run), run["steps"], "async")
    assert calibration.steps == 1
    assert calibration.cpu_per_request_ms == pytest.approx(20.0)
    assert calibration.overhead_ms == pytest.approx(20.0 - 8.0)  # the mix's app work is 4/5 x 10 ms


def test_calibration_pools_every_repeat_and_ignores_failed_steps_and_other_servers() -> None:
    steps = [step("async", 10, 20.0, 100), step("async", 10, 40.0, 100), step("sync", 10, 10.0, 100)]
    steps.append({**step("async", 100, 10.0, 1000), "status": "failed"})
    run = tiny_run([ASYNC, SYNC], steps)
    calibration = expected.calibrate(typed(run), run["steps"], "async")
    assert calibration.steps == 2
    assert calibration.cpu_per_request_ms == pytest.approx(30.0)  # 6 CPU seconds over 200 requests


def test_too_few_requests_fall_back_to_a_stated_assumption() -> None:
    run = tiny_run([ASYNC], [step("async", 10, 20.0, 5)])
    calibration = expected.calibrate(typed(run), run["steps"], "async")
    assert calibration.steps == 0 and calibration.overhead_ms == expected.FALLBACK_OVERHEAD_MS
    assert calibration.cpu_per_request_ms == pytest.approx(8.0 + expected.FALLBACK_OVERHEAD_MS)


@pytest.mark.parametrize(
    ("server", "capacity", "slots", "cpus", "bottleneck"),
    [
        (SYNC, 0, 3, 1, "slots"),
        ({"name": "t", "server": "gunicorn", "worker_class": "gthread", "workers": 2, "threads": 8}, 0, 16, 1, "cpu"),
        (ASYNC, 0, None, 1, "cpu"),
        ({"name": "b", "server": "uvicorn", "endpoints": "blocking"}, 0, 1, 1, "slots"),
        ({"name": "d", "server": "uvicorn", "endpoints": "def", "thread_limit": 4}, 0, 4, 1, "slots"),
        (ASYNC, 2, None, 1, "database"),
    ],
)
def test_each_configuration_maps_to_its_slots_cores_and_pool(
    server: dict[str, Any], capacity: int, slots: int | None, cpus: int, bottleneck: str
) -> None:
    run = tiny_run([server], [], capacity=capacity)
    cores = expected.server_cores(typed(run), run["metadata"])
    assert cores == 1  # pinned to one core
    system = expected.system(typed(run), ServerConfig.from_dict(server), expected.Calibration(1.0, 1, 9.0), cores)
    assert system.server.slots == slots
    assert system.server.cpus == cpus  # pinned to one core: more processes do not add cores
    assert system.bottleneck.resource == bottleneck
    if capacity:
        assert system.server.db_connections == capacity  # per process, one process here
    assert system.demand.think_s == 5.0  # the mean of 2-8 s


def test_the_model_takes_the_scenarios_waits_and_the_calibrated_cpu() -> None:
    run = tiny_run([SYNC], [])
    system = expected.system(typed(run), ServerConfig.from_dict(SYNC), expected.Calibration(2.0, 1, 10.0), 1)
    page, short = system.demand.mix
    assert (page.name, page.weight, page.wait_s) == ("page", 4, 0.1)
    assert page.cpu_s == pytest.approx(0.012)  # 10 ms of app work and 2 ms of framework
    assert (short.name, short.weight, short.wait_s) == ("short", 1, 0.01)
    assert short.cpu_s == pytest.approx(0.002)


def test_an_unpinned_run_lets_processes_use_every_core() -> None:
    run = tiny_run([SYNC], [])
    run["config"]["run"]["pin_cpus"] = False
    run["metadata"]["cpu_pinning"] = "not pinned"
    cores = expected.server_cores(typed(run), run["metadata"])
    assert cores == METADATA["cpu_count"] == 2
    system = expected.system(typed(run), ServerConfig.from_dict(SYNC), expected.Calibration(1.0, 1, 9.0), cores)
    assert system.server.cpus == 2


def test_pinning_asked_for_but_not_done_counts_the_machines_cores() -> None:
    run = tiny_run([SYNC], [])
    assert run["config"]["run"]["pin_cpus"] is True
    run["metadata"]["cpu_pinning"] = "not pinned: 1 core(s) available, 2 needed; client and server share every core"
    assert expected.server_cores(typed(run), run["metadata"]) == 2


def test_an_expectation_sets_the_measurement_beside_the_prediction() -> None:
    run = tiny_run([ASYNC], [step("async", 10, 20.0, 100)])
    calibration = expected.calibrate(typed(run), run["steps"], "async")
    system = expected.system(typed(run), ServerConfig.from_dict(ASYNC), calibration, 1)
    e = expected.expectation(system, calibration, run["steps"][0], 10)
    assert e.measured_rps == 10.0 and e.measured_mean_ms == 100.0
    assert e.rps_interval is not None and e.rps_interval[0] < 10.0 < e.rps_interval[1]
    assert e.efficiency == pytest.approx(10.0 / e.prediction.model_rps)
    failed = expected.expectation(system, calibration, {**run["steps"][0], "status": "failed"}, 10)
    assert failed.measured_rps is None and failed.efficiency is None and not failed.outside
    assert expected.explain(failed, run["steps"][0], ServerConfig.from_dict(ASYNC)) == "not measured"


def test_the_reference_run_sits_within_tolerance_or_is_explained() -> None:
    view = RunView.load(REFERENCE)
    assert len(view.expectations) == len(view.records)
    for (name, users), e in view.expectations.items():
        assert e.efficiency is not None
        if e.outside:
            spec = view.server(name)
            record = view.step(name, users)
            assert spec is not None and record is not None
            reason = expected.explain(e, record, spec)
            assert reason and "not measured" not in reason
    # The classic story, in the model's own terms: sync is bound by its slots, async by the users who ask.
    assert view.expectations[("flask-gunicorn", 500)].prediction.bound_by == "slots"
    assert view.expectations[("fastapi-uvicorn", 500)].prediction.bound_by == "users"


def test_a_client_limited_step_is_explained_as_the_clients() -> None:
    run = reference()
    target = next(s for s in run["steps"] if s["server"] == "flask-gunicorn" and s["users"] == 500)
    target["saturated"] = "client"
    target["figures"]["rps"] = 10.0
    view = view_of(run)
    e = view.expectations[("flask-gunicorn", 500)]
    assert e.outside
    assert "client" in expected.explain(e, target, view.servers[0])


def test_the_summary_carries_the_model_beside_each_step() -> None:
    view = RunView.load(REFERENCE)
    row = next(r for r in view.summary_rows() if (r["server"], r["users"]) == ("fastapi-uvicorn", 500))
    e = view.expectations[("fastapi-uvicorn", 500)]
    assert (row["model_rps"], row["model_mean_ms"], row["model_bound"]) == (
        e.prediction.model_rps,
        e.prediction.model_mean_ms,
        "users",
    )
    assert row["efficiency"] == e.efficiency
    assert 0.85 <= row["efficiency"] <= 1.15


def test_a_pool_bound_step_below_the_model_is_explained_by_the_pools_idle_time() -> None:
    # One event loop, a pool of 2: capacity 2 / 82 ms ~ 24/s. Measured 16/s: each connection is taken ~125 ms.
    run = tiny_run([ASYNC], [step("async", 10, 20.0, 100), step("async", 200, 40.0, 160)], capacity=2)
    run["config"]["load"]["users"] = [10, 200]
    view = view_of(run)
    e = view.expectations[("async", 200)]
    assert e.prediction.bound_by == "database" and e.db_connections == 2
    assert e.outside
    reason = expected.explain(e, run["steps"][1], view.servers[0])
    assert "each of the 2 connections was taken for about 125 ms" in reason


def test_the_real_pool_bounds_the_model_and_the_simulated_baseline_has_none() -> None:
    doc = complete_run()
    doc["config"]["database"] = {"backend": "postgres", "pool_size": 4, "jitter": 0.0, "seed": 1}
    doc["config"]["servers"][0]["driver"] = "psycopg"
    doc["config"]["servers"][1]["driver"] = "simulated"
    view = view_of(doc)
    assert view.systems[runs.SYNC].server.db_connections == 3 * 4
    assert view.systems[runs.ASYNC].server.db_connections is None


def _pool_step(busy: int) -> tuple[expected.Expectation, dict[str, Any]]:
    doc = complete_run()
    doc["config"]["database"] = {"backend": "postgres", "pool_size": 10, "jitter": 0.0, "seed": 1}
    for server in doc["config"]["servers"]:
        server["driver"] = "psycopg"
    view = view_of(doc)
    record = dict(view.by_level[(runs.ASYNC, 50)])
    record.update(db_connections_max=busy, db_connections_mean=7.8, server_cpu_pct=59.0)
    e = view.expectations[(runs.ASYNC, 50)]
    low = replace(e, measured_rps=e.prediction.model_rps * 0.8)  # 20% below the model
    return low, record


def test_a_step_whose_pool_was_measured_full_is_explained_by_the_pool() -> None:
    e, record = _pool_step(busy=10)
    spec = ServerConfig(name=runs.ASYNC, server="uvicorn", driver="psycopg")
    text = expected.explain(e, record, spec)
    assert "pool was full at times (measured: up to 10 of its 10 connections busy, 7.8 on average)" in text


def test_a_pool_never_measured_full_is_not_blamed() -> None:
    e, record = _pool_step(busy=9)
    spec = ServerConfig(name=runs.ASYNC, server="uvicorn", driver="psycopg")
    assert "pool" not in expected.explain(e, record, spec)


def test_the_servers_measured_pool_wait_joins_the_pools_explanation() -> None:
    e, record = _pool_step(busy=10)
    record["figures"] = {**record["figures"], "server": {"timed": 500, "pool_mean_ms": 41.6, "pool_waited_pct": 63.0}}
    spec = ServerConfig(name=runs.ASYNC, server="uvicorn", driver="psycopg")
    text = expected.explain(e, record, spec)
    assert text.endswith("requests waited 42 ms on average for a connection and 63% of them waited at all")


def test_without_server_times_the_pool_wait_is_not_invented() -> None:
    e, record = _pool_step(busy=10)
    spec = ServerConfig(name=runs.ASYNC, server="uvicorn", driver="psycopg")
    assert "on average for a connection" not in expected.explain(e, record, spec)


def _cpu_bound_above_the_model(cpu_pct: float) -> tuple[expected.Expectation, dict[str, Any], ServerConfig]:
    # One event loop on 1 core; its quiet step calibrates 80 ms of CPU per request, so the model's core serves
    # 12.5/s, and 100 users thinking 5 s ask for about 19/s: bound by the CPU. It measured 19/s.
    run = tiny_run([ASYNC], [step("async", 10, 16.0, 20), step("async", 100, cpu_pct, 190)])
    view = view_of(run)
    return view.expectations[("async", 100)], run["steps"][1], view.servers[0]


def test_a_step_above_its_cpu_bound_is_explained_by_its_own_cpu_per_request() -> None:
    e, record, spec = _cpu_bound_above_the_model(cpu_pct=76.0)  # 0.76 core over 19 requests/s: 40 ms each
    assert e.prediction.bound_by == "cpu" and e.outside and e.efficiency is not None and e.efficiency > 1
    text = expected.explain(e, record, spec)
    assert text.startswith("its CPU per request in this step was 40.0 ms, against the 80.0 ms calibrated")


def test_a_step_above_the_model_at_its_calibrated_cpu_is_not_given_that_reason() -> None:
    e, record, spec = _cpu_bound_above_the_model(cpu_pct=152.0)  # 80 ms each: what the calibration says
    assert e.outside
    assert "CPU per request in this step" not in expected.explain(e, record, spec)
