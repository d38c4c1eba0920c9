"""The report, the charts and the run's summary drawn from a saved run document alone; the sweep's pure parts."""

from __future__ import annotations

from typing import Any

from runner import report
from tests.runs import (
    ASYNC,
    SYNC,
    complete_run,
    step,
)

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
