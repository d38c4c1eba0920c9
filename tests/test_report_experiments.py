"""The report's sections on the timeline (three requests arriving together) and the burst over time."""

from __future__ import annotations

from runner.report_experiments import burst_section, timeline_section
from tests.runs import ASYNC, SYNC, burst_data, complete_run, timeline_data, view_of


def test_no_timeline_and_no_burst_means_no_sections() -> None:
    view = view_of(complete_run())
    assert timeline_section(view) == []
    assert burst_section(view) == []


def test_the_timeline_section_reads_the_median_round_of_each_server() -> None:
    run = complete_run()
    run["timeline"] = timeline_data(rounds=3)
    lines = timeline_section(view_of(run))
    assert lines[0] == "## Three requests arriving together"
    # Round 1 of 0, 1, 2: its short request was sent 4 ms after the first page and answered 251 (sync) or 16
    # (async) ms after it; the second page was sent 2 ms after the first.
    assert lines[2:4] == [
        f"- **{SYNC}-1** (one sync worker): the short request came back after both pages, after 247 ms "
        "(the slower page: 218 ms).",
        f"- **{ASYNC}-1** (one event loop): the short request came back before the pages, after 12 ms "
        "(the slower page: 110 ms).",
    ]
    assert lines[-2:] == ["![Timeline](charts/timeline.png)", ""]


def test_a_timeline_that_failed_says_why_and_draws_nothing() -> None:
    run = complete_run()
    run["timeline"] = {"error": "server did not start"}
    lines = timeline_section(view_of(run))
    assert "The timeline could not be measured: server did not start" in lines
    assert not any("timeline.png" in line for line in lines)


def test_the_burst_section_has_a_row_per_stage_and_a_recovery_line_per_server() -> None:
    run = complete_run()
    run["burst"] = burst_data()
    lines = burst_section(view_of(run))
    rows = [line for line in lines if line.startswith(f"| {SYNC} |")]
    assert rows == [
        f"| {SYNC} | 2 | 1 | 10 | 110 ms | – | 165 ms | 10.0 | 0 |",
        f"| {SYNC} | 20 | 2 | 20 | 900 ms | – | 1.4 s | 10.0 | 0 |",
        f"| {SYNC} | 2 | 2 | 20 | 110 ms | – | 165 ms | 10.0 | 0 |",
    ]
    # Ten requests before the crowd are too few to be a baseline: no recovery is claimed either way.
    assert (
        f"- **{SYNC}**: median 110 ms with 2 users (10 requests), then median 900 ms with 20 users (20 requests), then "
        "median 110 ms with 2 users (20 requests); the stage before the 20 users has too few requests to tell when "
        "the server was back to it" in lines
    )
    for server in run["burst"]["servers"].values():
        server["stages"][0]["requests"] = 30
    lines = burst_section(view_of(run))
    assert any(
        line.startswith(f"- **{SYNC}**: median 110 ms with 2 users (30 requests)")
        and line.endswith("it was back within twice its first median 0 s after the crowd left")
        for line in lines
    )
    assert not any("the client used" in line for line in lines)
    assert "![The burst over time](charts/burst.png)" in lines


def test_the_burst_section_names_a_server_that_failed_and_a_busy_client() -> None:
    run = complete_run()
    data = burst_data()
    data["servers"][SYNC] = {"error": "server exited\ntraceback"}
    data["servers"][ASYNC]["client_cpu_pct"] = 91.0
    data["servers"][ASYNC]["recovered_after_s"] = None
    data["servers"][ASYNC]["stages"][0]["requests"] = 30
    run["burst"] = data
    lines = burst_section(view_of(run))
    assert f"| {SYNC} | – | – | – | – | – | – | – | failed: server exited |" in lines
    assert any(line.startswith(f"- **{ASYNC}**:") and "had not recovered by the end" in line for line in lines)
    assert f"- **{ASYNC}**: the client used 91% of its core; its latencies are partly the client's." in lines


def test_a_burst_that_failed_says_why() -> None:
    run = complete_run()
    run["burst"] = {"error": "no Locust"}
    assert burst_section(view_of(run)) == [
        "## The burst over time",
        "",
        "The burst could not be measured: no Locust",
        "",
    ]
