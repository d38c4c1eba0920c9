"""The report, the charts and the run's summary drawn from a saved run document alone; the sweep's pure parts."""

from __future__ import annotations

import copy
import csv
import os
from pathlib import Path
from typing import Any

import pytest

import plots
from runner import files, report, store
from runner.config import load_config
from runner.processes import plan_cpus
from runner.sweep import CLIENT_SATURATED_PCT, SERVER_SATURATED_PCT, plan_steps, saturation

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SYNC, ASYNC = "flask-gunicorn", "fastapi-uvicorn"
USERS = [5, 50]


def latency(p50: float, p95: float, requests: int = 100) -> dict[str, Any]:
    return {"requests": requests, "failures": 0, "min_ms": p50 * 0.5, "mean_ms": p50 * 1.1, "p50_ms": p50,
            "p90_ms": p95 * 0.9, "p95_ms": p95, "p99_ms": p95 * 1.2, "max_ms": p95 * 1.5}  # fmt: skip


def step(server: str, users: int, *, rps: float, p50: float, p95: float, **extra: Any) -> dict[str, Any]:
    """A step record in the shape runner.sweep.measure_step produces."""
    sync = server == SYNC
    record: dict[str, Any] = {
        "server": server,
        "kind": "sync" if sync else "async",
        "server_type": "gunicorn" if sync else "uvicorn",
        "workers": 3 if sync else 1,
        "users": users,
        "status": "ok",
        "error": None,
        "files": f"raw/{server}/u{users:04d}",
        "figures": {
            "window_s": 10.0,
            "latency": latency(p50, p95),
            "endpoints": {"page": latency(p50 * 1.2, p95 * 1.2, 80), "short": latency(p50 * 0.3, p95 * 0.3, 20)},
            "completed_in_window": int(rps * 10),
            "failed_in_window": 0,
            "drained": 1,
            "unfinished": 0,
            "unfinished_oldest_ms": 0.0,
            "stopped_after_window": 0,
            "rps": rps,
            "client_cpu_pct": 12.0,
            "raw_vs_json_gap": 0,
            "notes": [],
        },
        "server_cpu_pct": 40.0,
        "server_rss_mb": 120.0,
        "server_pss_mb": 80.0,
        "saturated": "",
    }
    record.update(extra)
    return record


def config() -> dict[str, Any]:
    return {
        "name": "tiny",
        "description": "A synthetic run for tests.",
        "source": "/somewhere/scenarios/tiny.toml",
        "source_sha256": "0123456789abcdef" * 4,
        "load": {
            "users": USERS,
            "warmup_s": 1,
            "measure_s": 10,
            "drain_s": 5,
            "think_time_s": [1.0, 3.0],
            "request_timeout_s": 30,
            "page_weight": 4,
            "short_weight": 1,
        },
        "workload": {
            "user_lookup_ms": 20,
            "listing_ms": 80,
            "app_work_ms": 5,
            "listing_rows": 20,
            "short_query_ms": 10,
        },
        "database": {"capacity": 0, "jitter": 0.1, "seed": 1},
        "servers": [
            {"name": SYNC, "server": "gunicorn", "workers": 3},
            {"name": ASYNC, "server": "uvicorn", "workers": 1},
        ],
        "run": {"pin_cpus": True, "server_cores": 1, "startup_timeout_s": 30.0, "results_dir": "results"},
        "overrides": [],
    }


METADATA = {
    "date": "2026-01-02T03:04:05+00:00",
    "cpu_model": "Test CPU",
    "cpu_count": 2,
    "cpu_pinning": "server pinned to core(s) [1], Locust and the harness to core(s) [0]",
    "memory_gb": 8.0,
    "os": "Linux",
    "python": "3.11.7",
    "packages": {"flask": "3.1.3", "locust": "2.47.0"},
    "git": {"commit": "abc123", "dirty": False},
}


def complete_run() -> dict[str, Any]:
    """Both servers at 5 and 50 users; at 50 the async server does twice the sync server's throughput."""
    run = store.new_run_document(config(), copy.deepcopy(METADATA))
    run["steps"] = [
        step(SYNC, 5, rps=1.5, p50=110.0, p95=130.0),
        step(ASYNC, 5, rps=1.5, p50=105.0, p95=120.0),
        step(SYNC, 50, rps=5.0, p50=900.0, p95=2500.0),
        step(ASYNC, 50, rps=10.0, p50=110.0, p95=150.0),
    ]
    run["status"] = "complete"
    run["missing_steps"] = []
    return run


def save(tmp_path: Path, run: dict[str, Any]) -> Path:
    run_dir = tmp_path / "run"
    files.write_json(run_dir / store.RUN_FILE, run)
    return run_dir


# --- report.markdown --------------------------------------------------------------------------------------------------


def test_report_mentions_both_servers() -> None:
    text = report.markdown(complete_run())
    assert SYNC in text
    assert ASYNC in text


def test_report_gives_the_async_to_sync_throughput_ratio() -> None:
    text = report.markdown(complete_run())
    assert "**2.0x**" in text  # in the reading, at the highest level
    row_50 = next(line for line in text.splitlines() if line.startswith("| 50 |"))
    assert "2.0x" in row_50  # and in the table


def test_report_gives_the_latency_ratio_per_level() -> None:
    row_50 = next(line for line in report.markdown(complete_run()).splitlines() if line.startswith("| 50 |"))
    # p50 sync / async = 900 / 110
    assert f"{900 / 110:.1f}x" in row_50


def test_report_of_a_clean_run_says_no_step_was_client_limited() -> None:
    text = report.markdown(complete_run())
    assert "No step was limited by the client" in text
    assert "Client-limited steps" not in text


def test_report_names_a_client_saturated_step() -> None:
    run = complete_run()
    run["steps"][3]["saturated"] = "client"
    run["steps"][3]["figures"]["client_cpu_pct"] = 95.0
    text = report.markdown(run)
    assert f"Client-limited steps:** {ASYNC} at 50 users" in text
    assert "No step was limited by the client" not in text
    row_50 = next(line for line in text.splitlines() if line.startswith("| 50 |"))
    assert "†" in row_50


def test_report_of_a_complete_run_has_no_incomplete_banner() -> None:
    text = report.markdown(complete_run())
    assert "This run is" not in text
    assert "Missing steps" not in text


def test_report_of_a_partial_run_says_incomplete_and_lists_missing_steps() -> None:
    run = complete_run()
    del run["steps"][3]
    run["status"] = "incomplete"
    run["missing_steps"] = [{"server": ASYNC, "users": 50}]
    text = report.markdown(run)
    assert "This run is incomplete" in text
    assert f"Missing steps: {ASYNC} at 50 users" in text
    row_50 = next(line for line in text.splitlines() if line.startswith("| 50 |"))
    assert "missing" in row_50


def test_report_of_a_partial_run_compares_only_levels_measured_on_both() -> None:
    run = complete_run()
    del run["steps"][3]
    run["status"] = "interrupted"
    run["missing_steps"] = [{"server": ASYNC, "users": 50}]
    text = report.markdown(run)
    assert "This run was interrupted" in text
    assert "**At 5 users**" in text
    assert "**At 50 users**" not in text


def test_report_lists_a_failed_step_with_the_first_line_of_its_error() -> None:
    run = complete_run()
    run["steps"][2] = {**step(SYNC, 50, rps=0, p50=0, p95=0), "status": "failed",
                       "error": "Locust exited with code 1\nTraceback ..."}  # fmt: skip
    del run["steps"][2]["figures"]
    run["status"] = "incomplete"
    text = report.markdown(run)
    assert f"Failed: {SYNC} at 50 users: Locust exited with code 1" in text
    assert "Traceback" not in text
    row_50 = next(line for line in text.splitlines() if line.startswith("| 50 |"))
    assert "failed" in row_50


def test_report_of_a_run_that_was_killed_lists_the_steps_it_never_measured() -> None:
    run = complete_run()
    del run["steps"][2:]
    run["status"] = "running"
    del run["missing_steps"]
    text = report.markdown(run)
    assert f"{SYNC} at 50 users" in text
    assert f"{ASYNC} at 50 users" in text


def test_report_without_a_measured_pair_says_there_is_nothing_to_compare() -> None:
    run = complete_run()
    run["steps"] = [s for s in run["steps"] if s["server"] == SYNC]
    run["status"] = "incomplete"
    assert "nothing to compare" in report.markdown(run)


def test_report_records_the_setup() -> None:
    text = report.markdown(complete_run())
    assert "Test CPU" in text
    assert "abc123" in text
    assert "tiny.toml" in text
    assert "at most 3 requests at once" in text


# --- plots.render -----------------------------------------------------------------------------------------------------


def assert_png(path: Path) -> None:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert path.stat().st_size > 1000


def test_render_draws_everything_from_run_json_alone(tmp_path: Path) -> None:
    run_dir = save(tmp_path, complete_run())
    written = plots.render(run_dir)
    assert_png(run_dir / "charts" / "response_times.png")
    assert_png(run_dir / "charts" / "throughput.png")
    assert set(written) == {
        run_dir / "charts" / "response_times.png",
        run_dir / "charts" / "throughput.png",
        run_dir / "charts" / "resources.png",
        run_dir / "summary.csv",
        run_dir / "report.md",
        run_dir / "report.html",
    }
    with (run_dir / "summary.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["server"], r["users"]) for r in rows] == [(SYNC, "5"), (ASYNC, "5"), (SYNC, "50"), (ASYNC, "50")]
    text = (run_dir / "report.md").read_text(encoding="utf-8")
    assert text == report.markdown(store.load_run(run_dir))
    assert "charts/response_times.png" in text
    leftovers = [p.name for p in (run_dir / "charts").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_render_works_with_a_failed_step_and_a_client_limited_one(tmp_path: Path) -> None:
    run = complete_run()
    run["steps"][2] = {**step(SYNC, 50, rps=0, p50=0, p95=0), "status": "failed", "error": "server exited"}
    del run["steps"][2]["figures"]
    run["steps"][3]["saturated"] = "client"
    run["status"] = "incomplete"
    run_dir = save(tmp_path, run)
    plots.render(run_dir)
    assert_png(run_dir / "charts" / "response_times.png")
    assert_png(run_dir / "charts" / "throughput.png")
    text = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "This run is incomplete" in text
    assert f"Failed: {SYNC} at 50 users: server exited" in text
    assert plots.exit_status(run_dir) == 1


def test_render_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(store.ResultsError):
        plots.render(tmp_path)
    assert not (tmp_path / "charts").exists()


def test_exit_status_of_a_complete_run_is_0(tmp_path: Path) -> None:
    assert plots.exit_status(save(tmp_path, complete_run())) == 0


def test_exit_status_of_an_interrupted_run_is_1(tmp_path: Path) -> None:
    run = complete_run()
    run["status"] = "interrupted"
    assert plots.exit_status(save(tmp_path, run)) == 1


# --- the sweep's pure parts ------------------------------------------------------------------------------------------


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


def test_plan_steps_loops_over_users_outside_and_servers_inside() -> None:
    config = load_config("quick")
    steps = [(s.server.name, s.users) for s in plan_steps(config)]
    assert steps == [(server.name, users) for users in config.load.users for server in config.servers]
    assert steps[:2] == [(SYNC, 5), (ASYNC, 5)]


def test_plan_steps_folders_are_distinct() -> None:
    steps = plan_steps(load_config("default"))
    assert len({s.folder_name for s in steps}) == len(steps)


def test_plan_cpus_without_pinning_pins_nothing_and_says_so() -> None:
    plan = plan_cpus(pin=False, server_cores=1)
    assert plan.client == frozenset()
    assert plan.server == frozenset()
    assert not plan.pinned
    assert "not pinned" in plan.note


def test_plan_cpus_with_too_few_cores_pins_nothing_and_says_why() -> None:
    available = len(os.sched_getaffinity(0))
    plan = plan_cpus(pin=True, server_cores=available)
    assert not plan.pinned
    assert "not pinned" in plan.note
    assert f"{available} core(s) available" in plan.note


def test_plan_cpus_with_pinning_gives_client_and_server_separate_cores() -> None:
    available = os.sched_getaffinity(0)
    if len(available) < 2:
        pytest.skip("needs at least two usable cores")
    plan = plan_cpus(pin=True, server_cores=1)
    assert plan.pinned
    assert plan.server == {max(available)}
    assert plan.client == available - plan.server  # every core the server does not have
    assert not plan.client & plan.server
    assert plan.client | plan.server <= available


def _with_burst_tail(run: dict[str, Any], server: str, users: int, slowest: float) -> None:
    record = next(s for s in run["steps"] if s["server"] == server and s["users"] == users)
    record["figures"]["burst_requests"] = users
    record["figures"]["burst_max_ms"] = slowest
    record["figures"]["from_warmup"] = 7


def test_report_explains_an_async_tail_from_the_initial_burst_by_cpu() -> None:
    run = complete_run()
    _with_burst_tail(run, ASYNC, 50, 4_000.0)
    text = report.markdown(run)
    assert f"The first burst on {ASYNC} at 50 users" in text
    assert "not in the step's figures" in text
    assert "ms of server CPU per request" in text


def test_report_explains_a_sync_tail_from_the_initial_burst_by_workers() -> None:
    run = complete_run()
    _with_burst_tail(run, SYNC, 50, 9_000.0)
    text = report.markdown(run)
    note = next(line for line in text.splitlines() if line.startswith(f"- {SYNC} at 50 users"))
    assert "3 slot(s) holding each request" in note
    assert "server CPU" not in note


def test_report_does_not_blame_the_burst_when_the_tail_is_elsewhere() -> None:
    run = complete_run()
    record = next(s for s in run["steps"] if s["server"] == ASYNC and s["users"] == 50)
    record["figures"]["burst_requests"] = 50
    record["figures"]["burst_max_ms"] = 1.0  # far below the step's median
    assert "The first burst on" not in report.markdown(run)


def test_the_reading_claims_only_what_the_numbers_support() -> None:
    run = complete_run()
    sync_high = next(s for s in run["steps"] if s["server"] == SYNC and s["users"] == 50)
    async_high = next(s for s in run["steps"] if s["server"] == ASYNC and s["users"] == 50)
    sync_high["server_cpu_pct"] = 97.0
    sync_high["figures"]["endpoints"]["short"]["p50_ms"] = 12.0
    async_high["figures"]["endpoints"]["short"]["p50_ms"] = 37.0
    text = report.markdown(run)
    assert "mostly waiting" not in text
    assert "waits in the same queue" not in text
    assert "no queue for a worker held it back" in text


def test_report_reads_the_timeline_when_there_is_one() -> None:
    run = complete_run()

    def probe(label: str, path: str, sent: float, received: float) -> dict[str, Any]:
        return {"label": label, "path": path, "status": 200, "sent": sent, "received": received,
                "server_start": sent, "handler_ms": 1.0, "db_ms": 0.5, "app_ms": 0.2}  # fmt: skip

    run["timeline"] = {
        "servers": {
            "flask-gunicorn-1": {"kind": "sync", "rounds": [[probe("page 1", "/page", 0, 0.11),
                                  probe("page 2", "/page", 0, 0.22), probe("short", "/short", 0, 0.25)]]},
            "fastapi-uvicorn-1": {"kind": "async", "rounds": [[probe("page 1", "/page", 0, 0.11),
                                   probe("page 2", "/page", 0, 0.12), probe("short", "/short", 0, 0.015)]]},
        }
    }  # fmt: skip
    text = report.markdown(run)
    assert "came back after both pages, after 250 ms" in text
    assert "came back before the pages, after 15 ms" in text
    assert "charts/timeline.png" in text


def test_reading_says_up_to_where_sync_kept_up_and_where_the_model_puts_its_knee() -> None:
    run = complete_run()
    run["steps"] += [step(SYNC, 25, rps=4.9, p50=115.0, p95=140.0), step(ASYNC, 25, rps=5.0, p50=108.0, p95=125.0)]
    run["config"]["load"]["users"] = [5, 25, 50]
    kept = next(p for p in report.reading(run) if "keeps up" in p)
    assert kept.startswith("**Up to 25 users the sync server keeps up**")
    assert "knee at about" in kept and "past that the async server pulls ahead" in kept


def test_reading_does_not_claim_sync_kept_up_when_it_fell_behind_at_once() -> None:
    run = complete_run()
    for record in run["steps"]:
        if record["server"] == SYNC:
            record["figures"]["rps"] = record["figures"]["rps"] / 3
            record["figures"]["completed_in_window"] = int(record["figures"]["rps"] * 10)
    assert not any("keeps up" in p for p in report.reading(run))
