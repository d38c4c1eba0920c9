"""``report.md`` from a run's view alone: the reading's claims, the tables, the banner of an unfinished run, and
the committed references rendering exactly as they were committed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner import report
from runner.view import RunView
from tests.runs import (
    ASYNC,
    SYNC,
    complete_run,
    step,
    view_of,
)

REFERENCES = Path(__file__).resolve().parent.parent / "results" / "reference"

# --- report.markdown --------------------------------------------------------------------------------------------------


def test_report_mentions_both_servers() -> None:
    text = report.markdown(view_of(complete_run()))
    assert SYNC in text
    assert ASYNC in text


def test_report_gives_the_async_to_sync_throughput_ratio() -> None:
    text = report.markdown(view_of(complete_run()))
    assert "**2.0x**" in text  # in the reading, at the highest level
    row_50 = next(line for line in text.splitlines() if line.startswith("| 50 |"))
    assert "2.0x" in row_50  # and in the table


def test_report_gives_the_latency_ratio_per_level() -> None:
    row_50 = next(line for line in report.markdown(view_of(complete_run())).splitlines() if line.startswith("| 50 |"))
    # p50 sync / async = 900 / 110
    assert f"{900 / 110:.1f}x" in row_50


def test_report_of_a_clean_run_says_no_step_was_client_limited() -> None:
    text = report.markdown(view_of(complete_run()))
    assert "No step was limited by the client" in text
    assert "Client-limited steps" not in text


def test_report_names_a_client_saturated_step() -> None:
    run = complete_run()
    run["steps"][3]["saturated"] = "client"
    run["steps"][3]["figures"]["client_cpu_pct"] = 95.0
    text = report.markdown(view_of(run))
    assert f"Client-limited steps:** {ASYNC} at 50 users" in text
    assert "No step was limited by the client" not in text
    row_50 = next(line for line in text.splitlines() if line.startswith("| 50 |"))
    assert "†" in row_50


def test_report_of_a_complete_run_has_no_incomplete_banner() -> None:
    text = report.markdown(view_of(complete_run()))
    assert "This run is" not in text
    assert "Missing steps" not in text


def test_report_of_a_partial_run_says_incomplete_and_lists_missing_steps() -> None:
    run = complete_run()
    del run["steps"][3]
    run["status"] = "incomplete"
    run["missing_steps"] = [{"server": ASYNC, "users": 50}]
    text = report.markdown(view_of(run))
    assert "This run is incomplete" in text
    assert f"Missing steps: {ASYNC} at 50 users" in text
    row_50 = next(line for line in text.splitlines() if line.startswith("| 50 |"))
    assert "missing" in row_50


def test_report_of_a_partial_run_compares_only_levels_measured_on_both() -> None:
    run = complete_run()
    del run["steps"][3]
    run["status"] = "interrupted"
    run["missing_steps"] = [{"server": ASYNC, "users": 50}]
    text = report.markdown(view_of(run))
    assert "This run was interrupted" in text
    assert "**At 5 users**" in text
    assert "**At 50 users**" not in text


def test_report_lists_a_failed_step_with_the_first_line_of_its_error() -> None:
    run = complete_run()
    run["steps"][2] = {**step(SYNC, 50, rps=0, p50=0, p95=0), "status": "failed",
                       "error": "Locust exited with code 1\nTraceback ..."}  # fmt: skip
    del run["steps"][2]["figures"]
    run["status"] = "incomplete"
    text = report.markdown(view_of(run))
    assert f"Failed: {SYNC} at 50 users: Locust exited with code 1" in text
    assert "Traceback" not in text
    row_50 = next(line for line in text.splitlines() if line.startswith("| 50 |"))
    assert "failed" in row_50


def test_report_of_a_run_that_was_killed_lists_the_steps_it_never_measured() -> None:
    run = complete_run()
    del run["steps"][2:]
    run["status"] = "running"
    del run["missing_steps"]
    text = report.markdown(view_of(run))
    assert f"{SYNC} at 50 users" in text
    assert f"{ASYNC} at 50 users" in text


def test_report_without_a_measured_pair_says_there_is_nothing_to_compare() -> None:
    run = complete_run()
    run["steps"] = [s for s in run["steps"] if s["server"] == SYNC]
    run["status"] = "incomplete"
    assert "nothing to compare" in report.markdown(view_of(run))


def test_report_records_the_setup() -> None:
    text = report.markdown(view_of(complete_run()))
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
    text = report.markdown(view_of(run))
    assert f"The first burst on {ASYNC} at 50 users" in text
    assert "not in the step's figures" in text
    assert "ms of server CPU per request" in text


def test_report_explains_a_sync_tail_from_the_initial_burst_by_workers() -> None:
    run = complete_run()
    _with_burst_tail(run, SYNC, 50, 9_000.0)
    text = report.markdown(view_of(run))
    note = next(line for line in text.splitlines() if line.startswith(f"- {SYNC} at 50 users"))
    assert "3 slot(s) holding each request" in note
    assert "server CPU" not in note


def test_report_does_not_blame_the_burst_when_the_tail_is_elsewhere() -> None:
    run = complete_run()
    record = next(s for s in run["steps"] if s["server"] == ASYNC and s["users"] == 50)
    record["figures"]["burst_requests"] = 50
    record["figures"]["burst_max_ms"] = 1.0  # far below the step's median
    assert "The first burst on" not in report.markdown(view_of(run))


def test_the_reading_claims_only_what_the_numbers_support() -> None:
    run = complete_run()
    sync_high = next(s for s in run["steps"] if s["server"] == SYNC and s["users"] == 50)
    async_high = next(s for s in run["steps"] if s["server"] == ASYNC and s["users"] == 50)
    sync_high["server_cpu_pct"] = 97.0
    sync_high["figures"]["endpoints"]["short"]["p50_ms"] = 12.0
    async_high["figures"]["endpoints"]["short"]["p50_ms"] = 37.0
    text = report.markdown(view_of(run))
    assert "mostly waiting" not in text
    assert "waits in the same queue" not in text
    assert "on neither server was it held back (each within 2x of its own median at low load)" in text


def test_the_short_request_is_held_back_only_beyond_twice_its_own_median_at_low_load() -> None:
    run = complete_run()
    for record in run["steps"]:
        if record["users"] == 50:  # the lowest level's short medians are 33 ms (sync) and 31.5 ms (async)
            record["figures"]["endpoints"]["short"]["p50_ms"] = 600.0 if record["server"] == SYNC else 60.0
    short = next(p for p in report.reading(view_of(run)) if p.startswith("**The short request**"))
    assert "against 33.0 ms and 31.5 ms at the lowest level that sent one" in short
    assert "on the sync server a quick request waits in the same queue" in short
    assert "held it back too" not in short  # 60 ms is within 2x of 31.5 ms
    for record in run["steps"]:
        if record["users"] == 50 and record["server"] == ASYNC:
            record["figures"]["endpoints"]["short"]["p50_ms"] = 150.0  # now 4.8x its own: held back, less than sync
    short = next(p for p in report.reading(view_of(run)) if p.startswith("**The short request**"))
    assert "The event loop held it back too (4.8x its median at low load), far less." in short


def test_a_split_distribution_is_named_with_both_figures() -> None:
    run = complete_run()
    high = next(s for s in run["steps"] if s["server"] == ASYNC and s["users"] == 50)
    high["figures"]["latency"]["mean_ms"] = 3600.0  # against a 110 ms median
    text = "\n".join(report.reading(view_of(run)))
    assert f"On {ASYNC} (mean 3.6 s against median 110 ms: the distribution is split" in text
    assert f"On {SYNC} (mean" not in text  # 990 ms against 900 ms: one hump


def test_matching_the_rate_with_a_slow_median_is_not_keeping_up() -> None:
    run = complete_run()
    run["steps"] += [step(SYNC, 25, rps=5.0, p50=400.0, p95=600.0), step(ASYNC, 25, rps=5.0, p50=108.0, p95=125.0)]
    run["config"]["load"]["users"] = [5, 25, 50]
    assert not any("keeps up" in p for p in report.reading(view_of(run)))


def test_reading_says_up_to_where_sync_kept_up_and_where_the_model_puts_its_knee() -> None:
    run = complete_run()
    run["steps"] += [step(SYNC, 25, rps=4.9, p50=115.0, p95=140.0), step(ASYNC, 25, rps=5.0, p50=108.0, p95=125.0)]
    run["config"]["load"]["users"] = [5, 25, 50]
    kept = next(p for p in report.reading(view_of(run)) if "keeps up" in p)
    assert kept.startswith("**Up to 25 users the sync server keeps up**")
    assert "knee at about" in kept and "at 50 users its throughput fell below 90% of the async server's" in kept


def test_reading_does_not_claim_sync_kept_up_when_it_fell_behind_at_once() -> None:
    run = complete_run()
    for record in run["steps"]:
        if record["server"] == SYNC:
            record["figures"]["rps"] = record["figures"]["rps"] / 3
            record["figures"]["completed_in_window"] = int(record["figures"]["rps"] * 10)
    assert not any("keeps up" in p for p in report.reading(view_of(run)))


# --- the committed references -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in REFERENCES.iterdir() if (p / "run.json").is_file()))
def test_each_committed_reference_renders_to_its_committed_report(name: str) -> None:
    """report.md is a function of run.json: the committed text is what the view of the committed run gives."""
    folder = REFERENCES / name
    assert report.markdown(RunView.load(folder)) == (folder / "report.md").read_text(encoding="utf-8")


# --- the reading, paragraph by paragraph ------------------------------------------------------------------------------


def test_reading_gives_the_low_levels_page_time_against_the_configured_waits_and_work() -> None:
    first = report.reading(view_of(complete_run()))[0]
    # The page's p50 is 1.2 x the step's p50 (tests/runs.py); waits 20 + 80 ms and 5 ms of work = 105 ms.
    assert first == (
        "**At 5 users** a page takes 132 ms (sync) and 126 ms (async) at the median, against 105 ms of simulated "
        "waits and work; the rest is framework, HTTP and scheduling."
    )


def test_reading_without_a_sync_and_async_pair_shows_each_server_side_by_side() -> None:
    run = complete_run()
    run["config"]["servers"] = [{"name": ASYNC, "server": "uvicorn", "workers": 1},
                                {"name": "fastapi-def", "server": "uvicorn", "endpoints": "def"}]  # fmt: skip
    run["steps"] = [s for s in run["steps"] if s["server"] == ASYNC]
    run["steps"] += [step("fastapi-def", 5, rps=1.4, p50=120.0, p95=140.0, kind="async"),
                     step("fastapi-def", 50, rps=7.0, p50=300.0, p95=900.0, kind="async")]  # fmt: skip
    run["steps"][-1]["figures"]["latency"]["failures"] = 3
    paragraphs = report.reading(view_of(run))
    assert paragraphs[0].splitlines() == [
        "**At 5 and 50 users:**",
        f"- **{ASYNC}** (uvicorn, 1 event loop, async def endpoints): median 105 ms at 5 users and 110 ms at 50, "
        "10.0 requests/s.",
        "- **fastapi-def** (uvicorn, 1 event loop, def endpoints in a 40-thread pool): median 120 ms at 5 users and "
        "300 ms at 50, 7.0 requests/s, 3 failed.",
    ]
    assert paragraphs[1].startswith("**Why, by the queueing model:** 50 users thinking between requests ask for")


def test_reading_names_the_steps_with_failures_and_their_counts() -> None:
    run = complete_run()
    run["steps"][2]["figures"]["latency"]["failures"] = 4
    failures = next(p for p in report.reading(view_of(run)) if p.startswith("**Failures:**"))
    assert failures.startswith(f"**Failures:** {SYNC} at 50 users: 4. Failed requests are counted apart")


def test_burst_tail_of_a_sync_step_is_its_slots_times_the_low_levels_service_time() -> None:
    run = complete_run()
    record = run["steps"][2]  # sync at 50 users
    record["figures"].update(burst_requests=50, burst_max_ms=9_000.0, from_warmup=7)
    view = view_of(run)
    # The mix's mean at 5 users: page mean 1.1 x 132 ms, short 1.1 x 33 ms, weighted 4 : 1.
    service = (4 * 1.1 * 132.0 + 1 * 1.1 * 33.0) / 5
    assert report.mix_service_ms(view, run["steps"][0]) == pytest.approx(service)
    tail = report.burst_tail(view, record)
    assert tail is not None
    assert "the slowest of those 50 first requests took 9.0 s; 7 of them were still running" in tail
    assert f"3 slot(s) holding each request about {service:.0f} ms need about {50 * service / 1000 / 3:.1f} s" in tail
    assert report.burst_tail(view, run["steps"][0]) is None  # no burst recorded


def test_the_setup_states_the_configured_page_and_what_share_of_it_is_waiting() -> None:
    text = report.markdown(view_of(complete_run()))
    page = next(line for line in text.splitlines() if line.startswith("- **Page request:**"))
    # 100 of 105 configured ms are waits; the fastest median page measured is 1.2 x 105 = 126 ms.
    assert page == (
        "- **Page request:** user lookup 20 ms, Python work 5 ms (CPU time, holding the GIL), listing query 80 ms, "
        "20 rows of JSON: 95% of the configured time is waiting; as measured (fastest median page, 126 ms) about 79%."
    )
    assert "- **Database:** jitter ±10% (seed 1), no connection limit." in text
    assert "- **Load:** Locust `FastHttpUser`, all users spawned at once; think time uniform 1-3 s;" in text


def test_report_sections_come_in_their_order() -> None:
    text = report.markdown(view_of(complete_run()))
    heads = [line for line in text.splitlines() if line.startswith("## ")]
    assert heads == [
        "## Reading",
        "## Results per user level",
        "## What the queueing model expects",
        "## What was run",
        "## How the numbers were measured",
    ]


def test_report_does_not_change_the_run_it_reads() -> None:
    run = complete_run()
    run["steps"][3]["figures"].update(burst_requests=50, burst_max_ms=4_000.0, from_warmup=7)
    before = repr(run)
    report.markdown(view_of(run))
    assert repr(run) == before
