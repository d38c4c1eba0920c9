"""The model's inputs as taken from a run: what is configured, what is calibrated, and what is predicted."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from runner import expected, explain, store
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
    assert explain.throughput(failed, run["steps"][0], ServerConfig.from_dict(ASYNC)) == "not measured"


def test_the_reference_run_sits_within_tolerance_or_is_explained() -> None:
    view = RunView.load(REFERENCE)
    assert len(view.expectations) == len(view.records)
    for (name, users), e in view.expectations.items():
        assert e.efficiency is not None
        if e.outside:
            spec = view.server(name)
            record = view.step(name, users)
            assert spec is not None and record is not None
            reason = explain.throughput(e, record, spec)
            assert reason and "not measured" not in reason
    # The classic story, in the model's own terms: sync is bound by its slots, async by the users who ask.
    assert view.expectations[("flask-gunicorn", 500)].prediction.bound_by == "slots"
    assert view.expectations[("fastapi-uvicorn", 500)].prediction.bound_by == "users"


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


def test_the_real_pool_bounds_the_model_and_the_simulated_baseline_has_none() -> None:
    doc = complete_run()
    doc["config"]["database"] = {"backend": "postgres", "pool_size": 4, "jitter": 0.0, "seed": 1}
    doc["config"]["servers"][0]["driver"] = "psycopg"
    doc["config"]["servers"][1]["driver"] = "simulated"
    view = view_of(doc)
    assert view.systems[runs.SYNC].server.db_connections == 3 * 4
    assert view.systems[runs.ASYNC].server.db_connections is None


def test_the_upstreams_capacity_is_one_for_every_process_and_each_client_pool_caps_its_own() -> None:
    doc = complete_run()
    doc["config"]["database"] = {"backend": "http", "jitter": 0.0, "seed": 1}
    doc["config"]["upstream"] = {"capacity": 4, "max_connections": 2}
    doc["config"]["servers"][0]["driver"] = "httpx"  # 3 processes, a pool of 2 each: the upstream's 4 decide
    doc["config"]["servers"][1]["driver"] = "aiohttp"  # 1 process, a pool of 2: its own pool decides
    view = view_of(doc)
    assert view.systems[runs.SYNC].server.db_connections == 4
    assert view.systems[runs.ASYNC].server.db_connections == 2
    doc["config"]["upstream"] = {"capacity": 0}
    doc["config"]["servers"][0]["driver"] = "httpx-per-request"  # no pool, no upstream limit: nothing caps it
    view = view_of(doc)
    assert view.systems[runs.SYNC].server.db_connections is None
    assert view.systems[runs.ASYNC].server.db_connections == 100  # aiohttp's own limit


def test_a_step_is_predicted_from_the_servers_other_levels_only() -> None:
    # Quiet at 10 users (10 ms each) and at 100 users (20 ms each): each level's prediction uses the other's.
    run = tiny_run([ASYNC], [step("async", 10, 10.0, 100), step("async", 100, 40.0, 200)])
    config = typed(run)
    assert expected.calibrate(config, run["steps"], "async").cpu_per_request_ms == pytest.approx(5000 / 300)
    assert expected.calibrate(config, run["steps"], "async", leave_out=10).cpu_per_request_ms == pytest.approx(20.0)
    assert expected.calibrate(config, run["steps"], "async", leave_out=100).cpu_per_request_ms == pytest.approx(10.0)
    view = view_of(run)
    assert view.expectations[("async", 10)].calibration.cpu_per_request_ms == pytest.approx(20.0)
    assert view.expectations[("async", 100)].calibration.cpu_per_request_ms == pytest.approx(10.0)


def test_the_users_law_is_checked_over_the_steps_own_figures() -> None:
    # 100 users thinking 5 s, a 100 ms mean: N = X (R + Z) needs 100 / 5.1 = 19.6 completions per second.
    record = step("async", 100, 40.0, 196)
    assert expected.little_error_pct(record, 100, 5.0) == pytest.approx((19.6 * 5.1 - 100) / 100 * 100)
    short = step("async", 100, 40.0, 150)  # 15/s: 23% short, far beyond what 150 completions leave to chance
    run = tiny_run([ASYNC], [step("async", 10, 10.0, 100), short])
    e = view_of(run).expectations[("async", 100)]
    assert e.little_error_pct == pytest.approx(15 * 5.1 - 100)
    assert e.little_off and not e.little_within_noise
    few = tiny_run([ASYNC], [step("async", 10, 10.0, 100), step("async", 100, 40.0, 15, window=1.0)])
    # The same rate from 15 completions in one second: chance alone allows it, so it is not flagged.
    assert not view_of(few).expectations[("async", 100)].little_off


def test_the_mean_is_judged_against_the_models_and_the_knee_says_which_figure_can_disagree() -> None:
    run = tiny_run([ASYNC], [step("async", 10, 10.0, 20), step("async", 100, 40.0, 196)])
    view = view_of(run)
    e = view.expectations[("async", 100)]
    ratio = e.mean_ratio
    assert ratio is not None and ratio == pytest.approx(100.0 / e.prediction.model_mean_ms)
    assert e.mean_outside == (abs(ratio - 1) > expected.MEAN_TOLERANCE)
    assert e.past_knee == (e.prediction.knee_users < 100)
    assert e.prediction_service_ms == pytest.approx(view.systems["async"].demand.service_s * 1000, rel=0.5)
