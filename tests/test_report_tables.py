"""The report's tables: what each cell holds, for measured, failed and missing steps, with and without repeats."""

from __future__ import annotations

from runner.report_tables import endpoint_table, resource_table, results_table, spread_section, time_split_table
from tests.runs import ASYNC, SYNC, complete_run, repeated_run, step, view_of


def test_the_results_table_has_each_servers_figures_and_the_ratios() -> None:
    rows = results_table(view_of(complete_run()))
    assert rows[0] == (
        f"| users | {SYNC} req/s | n | p50 | p95 | p99 | max | fail | {ASYNC} req/s | n | p50 | p95 | p99 | max | fail "
        "| req/s async÷sync | p50 sync÷async | p95 sync÷async |"
    )
    assert rows[1] == "|" + "---|" * 18
    assert rows[2] == (
        "| 5 | 1.5 | 100 | 110 ms | 130 ms | 156 ms | 195 ms | 0 | 1.5 | 100 | 105 ms | 120 ms | 144 ms | 180 ms | 0 "
        "| 1.0x | 1.0x | 1.1x |"
    )
    assert rows[3].endswith(f"| 2.0x | {900 / 110:.1f}x | {2500 / 150:.1f}x |")


def test_a_failed_and_a_missing_step_leave_their_cells_empty_and_no_ratio() -> None:
    run = complete_run()
    run["steps"][2] = {**step(SYNC, 50, rps=0, p50=0, p95=0), "status": "failed", "error": "x"}
    del run["steps"][2]["figures"]
    del run["steps"][1]  # async at 5 users, never measured
    rows = results_table(view_of(run))
    assert rows[2].startswith("| 5 | 1.5 |") and rows[2].endswith("| missing |  |  |  |  |  |  |  |  |  |")
    assert rows[3].startswith("| 50 | failed |  |  |  |  |  |  | 10.0 |")


def test_a_client_limited_step_and_unfinished_requests_are_marked_in_their_cells() -> None:
    run = complete_run()
    run["steps"][3]["saturated"] = "client"
    run["steps"][3]["figures"]["unfinished"] = 2
    row = results_table(view_of(run))[3].split(" | ")
    assert row[8] == "10.0 †"
    assert row[14] == "0 (+2 unfinished)"


def test_a_run_of_one_kind_has_no_ratio_columns() -> None:
    run = complete_run()
    run["config"]["servers"] = run["config"]["servers"][1:]
    run["steps"] = [s for s in run["steps"] if s["server"] == ASYNC]
    rows = results_table(view_of(run))
    assert "÷" not in rows[0]
    assert rows[2].count("|") == 9


def test_the_endpoint_table_gives_page_and_short_p50_and_p95() -> None:
    rows = endpoint_table(view_of(complete_run()))
    assert rows[0] == (
        f"| users | {SYNC} page p50 / p95 | {SYNC} short p50 / p95 | {ASYNC} page p50 / p95 | {ASYNC} short p50 / p95 |"
    )
    assert rows[2] == "| 5 | 132 ms / 156 ms | 33.0 ms / 39.0 ms | 126 ms / 144 ms | 31.5 ms / 36.0 ms |"


def test_the_resource_table_lists_every_measured_record_and_its_repeat_only_with_repeats() -> None:
    rows = resource_table(view_of(complete_run()))
    assert "repeat" not in rows[0]
    assert rows[2] == f"| {SYNC} | 5 | 12 | 40 | 120 | 80 | 1 | 0 | – | – |  |"
    repeated = resource_table(view_of(repeated_run()))
    assert repeated[0].startswith("| server | users | repeat | client CPU % |")
    assert len(repeated) == 2 + 12  # two levels x three repeats x two servers
    assert repeated[2 + 2].startswith(f"| {SYNC} | 5 | 2 |")


def test_there_is_no_spread_section_without_repeats() -> None:
    assert spread_section(view_of(complete_run())) == []
    assert spread_section(view_of(repeated_run()))[0] == "### Spread over repeats"


def test_where_the_time_went_is_shown_only_for_steps_with_the_servers_own_times() -> None:
    run = complete_run()
    assert time_split_table(view_of(run)) == []  # a run whose request logs kept no Server-Timing
    run["steps"][3]["figures"]["server"] = {
        "timed": 990,
        "handler_mean_ms": 104.0,
        "outside_mean_ms": 17.0,
        "outside_p95_ms": 2400.0,
        "pool_mean_ms": 0.04,
        "pool_p95_ms": 0.08,
        "pool_waited_pct": 0.0,
    }
    rows = time_split_table(view_of(run))
    assert rows[0] == "### Where the time went"
    assert rows[4].startswith("| server | users | response mean (client) | in the handler mean |")
    assert rows[6:] == [f"| {ASYNC} | 50 | 121 ms | 104 ms | 17.0 ms / 2.4 s | 0.0 ms / 0.1 ms | 0% |", ""]


def test_the_vms_steal_per_core_is_a_column_only_where_the_run_recorded_it() -> None:
    run = complete_run()
    run["steps"][0]["steal_s"] = [0.231, 0.012]
    rows = resource_table(view_of(run))
    assert rows[0].endswith("| VM steal s per core |")
    assert rows[2] == f"| {SYNC} | 5 | 12 | 40 | 120 | 80 | 1 | 0 | – | – |  | 0.23 / 0.01 |"
    assert all(row.endswith("| – |") for row in rows[3:])  # the steps without it, a dash each
    assert "steal" not in resource_table(view_of(complete_run()))[0]
