"""The model's inputs as taken from a run: what is configured, what is calibrated, and what is predicted."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from runner import expected

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference" / "default" / "run.json"


def reference() -> dict[str, Any]:
    run: dict[str, Any] = json.loads(REFERENCE.read_text(encoding="utf-8"))
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
    return {
        "config": {
            "load": {"users": [10, 100], "think_time_s": [2, 8], "page_weight": 4, "short_weight": 1},
            "workload": {"user_lookup_ms": 20, "listing_ms": 80, "app_work_ms": 10, "short_query_ms": 10},
            "database": {"capacity": capacity},
            "servers": servers,
            "run": {"pin_cpus": True, "server_cores": 1},
        },
        "metadata": {"cpu_count": 2, "cpu_pinning": "server pinned to core(s) [1], Locust to core(s) [0]"},
        "steps": steps,
    }


SYNC = {"name": "sync", "server": "gunicorn", "workers": 3}
ASYNC = {"name": "async", "server": "uvicorn", "workers": 1}


def test_calibration_uses_only_steps_where_the_cpu_was_not_the_limit() -> None:
    # 10 s at 20% CPU for 100 requests: 20 ms each. The 95% step would say 95 ms and must be left out.
    run = tiny_run([ASYNC], [step("async", 10, 20.0, 100), step("async", 100, 95.0, 100)])
    calibration = expected.calibrate(run, "async")
    assert calibration.steps == 1
    assert calibration.cpu_per_request_ms == pytest.approx(20.0)
    assert calibration.overhead_ms == pytest.approx(20.0 - 8.0)  # the mix's app work is 4/5 x 10 ms


def test_too_few_requests_fall_back_to_a_stated_assumption() -> None:
    run = tiny_run([ASYNC], [step("async", 10, 20.0, 5)])
    calibration = expected.calibrate(run, "async")
    assert calibration.steps == 0 and calibration.overhead_ms == expected.FALLBACK_OVERHEAD_MS


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
    system = expected.system(run, server, expected.Calibration(1.0, 1, 9.0))
    assert system.server.slots == slots
    assert system.server.cpus == cpus  # pinned to one core: more processes do not add cores
    assert system.bottleneck.resource == bottleneck
    if capacity:
        assert system.server.db_connections == capacity  # per process, one process here


def test_an_unpinned_run_lets_processes_use_every_core() -> None:
    run = tiny_run([SYNC], [])
    run["config"]["run"]["pin_cpus"] = False
    run["metadata"]["cpu_pinning"] = "not pinned"
    system = expected.system(run, SYNC, expected.Calibration(1.0, 1, 9.0))
    assert system.server.cpus == 2


def test_the_reference_run_sits_within_tolerance_or_is_explained() -> None:
    run = reference()
    exps = expected.expectations(run)
    assert len(exps) == len(run["steps"])
    steps = {(s["server"], int(s["users"])): s for s in run["steps"]}
    servers = {s["name"]: s for s in run["config"]["servers"]}
    for key, e in exps.items():
        assert e.efficiency is not None
        if e.outside:
            reason = expected.explain(e, steps[key], servers[key[0]])
            assert reason and "not measured" not in reason
    # The classic story, in the model's own terms: sync is bound by its slots, async by the users who ask.
    assert exps[("flask-gunicorn", 500)].prediction.bound_by == "slots"
    assert exps[("fastapi-uvicorn", 500)].prediction.bound_by == "users"


def test_a_client_limited_step_is_explained_as_the_clients() -> None:
    run = reference()
    run = copy.deepcopy(run)
    target = next(s for s in run["steps"] if s["server"] == "flask-gunicorn" and s["users"] == 500)
    target["saturated"] = "client"
    target["figures"]["rps"] = 10.0
    e = expected.expectations(run)[("flask-gunicorn", 500)]
    assert e.outside
    assert "client" in expected.explain(e, target, run["config"]["servers"][0])


def test_summary_columns_carry_the_model() -> None:
    columns = expected.summary_columns(reference())
    row = columns[("fastapi-uvicorn", 500)]
    assert set(row) == {"model_rps", "model_mean_ms", "efficiency", "model_bound"}
    assert 0.85 <= row["efficiency"] <= 1.15


def test_a_pool_bound_step_below_the_model_is_explained_by_the_pools_idle_time() -> None:
    # One event loop, a pool of 2: capacity 2 / 82 ms ~ 24/s. Measured 16/s: each connection is taken ~125 ms.
    run = tiny_run([ASYNC], [step("async", 10, 20.0, 100), step("async", 200, 40.0, 160)], capacity=2)
    e = expected.expectations(run)[("async", 200)]
    assert e.prediction.bound_by == "database" and e.db_connections == 2
    assert e.outside
    reason = expected.explain(e, run["steps"][1], ASYNC)
    assert "each of the 2 connections was taken for about 125 ms" in reason
