"""The sweep's pure parts: the plan of steps, saturation, the CPU plan and the line each finished step prints."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from runner import store, sweep
from runner.config import RunConfig, load_config
from runner.postgres import Database
from runner.processes import CpuPlan
from runner.sweep import CLIENT_SATURATED_PCT, SERVER_SATURATED_PCT, plan_steps, saturation, step_line
from tests.runs import ASYNC, SYNC, step, unfinished_run

# --- the sweep's pure parts -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client", "server", "cores", "expected"),
    [
        (None, None, 1, ""),
        (10.0, 20.0, 1, ""),
        (CLIENT_SATURATED_PCT, None, 1, ""),  # at the threshold is not above it
        (CLIENT_SATURATED_PCT + 0.1, None, 1, "client"),
        (None, SERVER_SATURATED_PCT - 0.1, 1, ""),
        (None, SERVER_SATURATED_PCT, 1, "server"),
        (None, 150.0, 2, ""),  # 150% of two cores is not saturated
        (None, 2 * SERVER_SATURATED_PCT, 2, "server"),
        (None, SERVER_SATURATED_PCT, 0, "server"),  # no core count: treated as one
        (95.0, 99.0, 1, "client"),  # a saturated client makes the server's figures unreliable: client first
    ],
)
def test_saturation_thresholds(client: float | None, server: float | None, cores: int, expected: str) -> None:
    assert saturation(client, server, cores) == expected


def test_cpu_spent_beside_the_client_fills_its_cores_too() -> None:
    """PostgreSQL is pinned to the client's cores: with it, a client at 50% of its one core can be saturated."""
    assert saturation(50.0, 20.0, 1, client_cores=1) == ""
    assert saturation(50.0, 20.0, 1, client_cores=1, beside_client=20.0) == ""
    assert saturation(50.0, 20.0, 1, client_cores=1, beside_client=CLIENT_SATURATED_PCT - 49.0) == "client"
    assert saturation(50.0, 20.0, 1, client_cores=0, beside_client=90.0) == ""  # not pinned: no cores to fill


def test_plan_steps_loops_over_users_outside_and_servers_inside() -> None:
    config = load_config("quick")
    steps = [(s.server.name, s.users) for s in plan_steps(config)]
    assert steps == [(server.name, users) for users in config.load.users for server in config.servers]
    assert steps[:2] == [(SYNC, 5), (ASYNC, 5)]


def test_plan_steps_folders_are_distinct() -> None:
    steps = plan_steps(load_config("default"))
    assert len({s.folder_name for s in steps}) == len(steps)


# --- the line a finished step prints ----------------------------------------------------------------------------------


def shown(markup: str) -> str:
    """The line as a reader sees it, markup rendered, on a console that is not a terminal."""
    out = io.StringIO()
    Console(file=out, force_terminal=False, width=300, highlight=False).print(markup)
    return out.getvalue().rstrip("\n")


def test_a_measured_step_shows_its_throughput_percentiles_and_failures() -> None:
    line = shown(step_line(3, 12, step(SYNC, 50, rps=5.0, p50=900.0, p95=2500.0)))
    assert line == f"  [3/12] {SYNC:<18}   50 users      5.0 req/s  p50   900 ms  p95    2.5 s  failures 0"


def test_the_figures_line_up_from_one_step_to_the_next() -> None:
    lines = [
        shown(step_line(1, 2, step(SYNC, 5, rps=1.5, p50=12.0, p95=130.0))),
        shown(step_line(2, 2, step(ASYNC, 500, rps=110.0, p50=1500.0, p95=9600.0))),
    ]
    assert [line.index("req/s") for line in lines] == [lines[0].index("req/s")] * 2
    assert [line.index("p95") for line in lines] == [lines[0].index("p95")] * 2
    assert [line.index("failures") for line in lines] == [lines[0].index("failures")] * 2
    assert "p50  12.0 ms" in lines[0]


def test_a_withheld_percentile_is_a_dash_in_its_column() -> None:
    record = step(SYNC, 5, rps=1.5, p50=110.0, p95=130.0)
    record["figures"]["latency"]["p95_ms"] = math.nan
    line = shown(step_line(1, 2, record))
    assert "p95        –  failures" in line
    assert line.index("failures") == shown(step_line(1, 2, step(SYNC, 5, rps=1.5, p50=1.0, p95=1.0))).index("failures")


def test_a_repeat_is_named_only_when_the_run_has_repeats() -> None:
    record = step(SYNC, 5, rps=1.5, p50=110.0, p95=130.0, repeat=2)
    assert f"{SYNC:<18}    5 users r2  " in shown(step_line(1, 4, record, planned_repeats=2))
    assert " r2" not in shown(step_line(1, 4, step(SYNC, 5, rps=1.5, p50=110.0, p95=130.0)))


def test_a_failed_step_shows_the_first_line_of_its_error() -> None:
    record: dict[str, Any] = {**step(ASYNC, 50, rps=0.0, p50=0.0, p95=0.0), "status": "failed"}
    record["error"] = "Locust exited with code 1.\n[the log's tail]"
    assert shown(step_line(2, 2, record)) == f"  [2/2] {ASYNC:<18}   50 users  FAILED: Locust exited with code 1."


def test_a_saturated_side_is_flagged() -> None:
    line = shown(step_line(1, 1, step(SYNC, 50, rps=5.0, p50=900.0, p95=2500.0, saturated="server")))
    assert line.endswith("failures 0  server saturated")


# --- the sweep's output -----------------------------------------------------------------------------------------------


def fake_measure(
    config: RunConfig,
    planned: sweep.Step,
    run_dir: Path,
    cpus: CpuPlan,
    tick: Callable[[float], None] | None = None,
    watch: Callable[[Path], None] | None = None,
    database: Database | None = None,
) -> dict[str, Any]:
    """measure_step without processes: a progress file as Locust writes it, a few ticks, and an ok record."""
    folder = sweep.new_step_folder(run_dir / "raw" / planned.folder_name)
    seen = {"phase": "window", "phase_ends": None, "requests": 42, "failures": 0}
    (folder / "progress.json").write_text(
        json.dumps(store.stamp(seen, store.PROGRESS_FORMAT, store.LOCUST_FILES_VERSION)), encoding="utf-8"
    )
    if watch is not None:
        watch(folder / "progress.json")
    for elapsed in (0.25, 0.5):
        if tick is not None:
            tick(elapsed)
    return step(planned.server.name, planned.users, rps=5.0, p50=100.0, p95=120.0,
                files=str(folder.relative_to(run_dir)))  # fmt: skip


def test_a_sweep_whose_output_is_not_a_terminal_prints_plain_lines(
    tmp_path: Path, write_scenario: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = write_scenario(users="[2]")
    run_dir = unfinished_run(tmp_path, scenario)
    monkeypatch.setattr(sweep, "measure_step", fake_measure)
    out = io.StringIO()
    current = sweep.Run(run_dir, store.load_run(run_dir), CpuPlan(frozenset(), frozenset(), "not pinned (test)"))
    sweep.run_sweep(load_config(str(scenario)), current, Console(file=out, force_terminal=False, width=200))
    text = out.getvalue()
    assert "\x1b" not in text
    assert "\r" not in text
    step_lines = [line for line in text.splitlines() if line.startswith("  [")]
    assert [line[:6] for line in step_lines] == ["  [1/2", "  [2/2"]
    assert store.load_run(run_dir)["status"] == "complete"
