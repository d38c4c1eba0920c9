"""The typed view of a saved run: loading, the configuration as objects, steps combined over repeats, the model
beside every step, and the small readings every reader shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner import store
from runner.config import ServerConfig
from runner.expected import calibrate
from runner.store import is_ok
from runner.view import RunView, figure_of, kind_text, shown_round, slots_text
from tests.runs import (
    ASYNC,
    METADATA,
    SYNC,
    USERS,
    complete_run,
    repeated_run,
    save,
    step,
    timeline_data,
    timeline_round,
    view_of,
)

# --- loading ----------------------------------------------------------------------------------------------------------


def test_a_saved_run_loads_with_its_configuration_as_objects(tmp_path: Path) -> None:
    run_dir = save(tmp_path, complete_run())
    view = RunView.load(run_dir)
    assert view.path == run_dir and view.file == run_dir / store.RUN_FILE
    assert view.config.name == "tiny"
    assert view.users == tuple(USERS)
    assert [s.name for s in view.servers] == [SYNC, ASYNC]
    assert view.server(SYNC) == ServerConfig(name=SYNC, server="gunicorn", workers=3)
    assert view.server("nginx") is None
    assert view.config.load.think_mean_s == 2.0
    assert view.status == "complete" and view.complete
    assert view.metadata["cpu_model"] == "Test CPU"
    assert RunView.load(run_dir / store.RUN_FILE).path == run_dir  # the file itself names its folder


@pytest.mark.parametrize(
    ("damage", "what"),
    [
        (lambda c: c.pop("workload"), "workload"),
        (lambda c: c["servers"][0].update(server="nginx"), "nginx"),
        (lambda c: c["workload"].update(listing_ms=-5), "listing_ms"),
        (lambda c: c["load"].update(surprise=1), "surprise"),
    ],
)
def test_loading_refuses_a_damaged_configuration_naming_the_file(tmp_path: Path, damage: Any, what: str) -> None:
    run = complete_run()
    damage(run["config"])
    run_dir = save(tmp_path, run)
    with pytest.raises(store.ResultsError) as error:
        RunView.load(run_dir)
    message = str(error.value)
    assert str(run_dir / store.RUN_FILE) in message
    assert "'config' section does not describe a run" in message and what in message


def test_loading_a_folder_without_a_run_says_so(tmp_path: Path) -> None:
    with pytest.raises(store.ResultsError, match="does not exist"):
        RunView.load(tmp_path)


def test_a_run_saved_before_repeats_and_the_burst_existed_still_loads() -> None:
    run = complete_run()
    run["config"].pop("burst", None)
    assert "repeats" not in run["config"]["load"]
    view = view_of(run)
    assert view.planned_repeats == 1
    assert view.config.burst.stages == ()
    assert view.timeline is None and view.burst is None


# --- steps ------------------------------------------------------------------------------------------------------------


def test_by_level_without_repeats_is_each_steps_own_record() -> None:
    run = complete_run()
    view = view_of(run)
    assert list(view.by_level) == [(SYNC, 5), (ASYNC, 5), (SYNC, 50), (ASYNC, 50)]
    for record in run["steps"]:
        assert view.by_level[(record["server"], record["users"])] is record
    assert view.step(ASYNC, 50) is run["steps"][3]
    assert view.step(ASYNC, 500) is None


def test_by_level_with_repeats_is_one_record_per_level_with_the_medians() -> None:
    run = repeated_run({(ASYNC, 50): [(10.0, 100.0, 150.0), (12.0, 90.0, 200.0), (11.0, 110.0, 140.0)]})
    view = view_of(run)
    assert len(view.records) == 12
    assert list(view.by_level) == [(SYNC, 5), (ASYNC, 5), (SYNC, 50), (ASYNC, 50)]
    record = view.by_level[(ASYNC, 50)]
    assert record["repeat"] == 3  # the middle of 10, 11 and 12 requests/s
    assert record["figures"]["rps"] == 11.0
    assert record["figures"]["latency"]["p50_ms"] == 100.0  # the median of 100, 90 and 110
    assert len(view.groups[(ASYNC, 50)].measured) == 3


def test_ok_step_is_only_a_measured_one() -> None:
    run = complete_run()
    run["steps"][2]["status"] = "failed"
    view = view_of(run)
    assert view.step(SYNC, 50) is run["steps"][2]
    assert view.ok_step(SYNC, 50) is None
    assert view.ok_step(SYNC, 5) is run["steps"][0]
    assert is_ok(run["steps"][0]) and not is_ok(run["steps"][2]) and not is_ok(None)


def test_missing_steps_come_from_the_configuration_in_the_sweeps_order() -> None:
    run = complete_run()
    del run["steps"][1:3]  # async at 5, sync at 50
    run["status"] = "running"
    view = view_of(run)
    assert view.missing_steps() == [(ASYNC, 5, 1), (SYNC, 50, 1)]
    assert not view.complete
    repeated = repeated_run()
    repeated["steps"] = [s for s in repeated["steps"] if not (s["users"] == 50 and s["repeat"] >= 2)]
    assert view_of(repeated).missing_steps() == [(SYNC, 50, 2), (ASYNC, 50, 2), (SYNC, 50, 3), (ASYNC, 50, 3)]
    assert view_of(complete_run()).missing_steps() == []


def test_a_complete_status_with_a_failed_step_is_not_complete() -> None:
    run = complete_run()
    run["steps"][0]["status"] = "failed"
    assert not view_of(run).complete


def test_a_step_is_named_with_its_repeat_only_when_the_run_has_repeats() -> None:
    single, repeated = view_of(complete_run()), view_of(repeated_run())
    assert single.step_name(SYNC, 50, 1) == f"{SYNC} at 50 users"
    assert repeated.step_name(SYNC, 50, 2) == f"{SYNC} at 50 users (repeat 2)"
    assert single.record_name(single.records[3]) == f"{ASYNC} at 50 users"
    assert repeated.record_name(repeated.records[-1]) == f"{ASYNC} at 50 users (repeat 3)"


def test_the_pair_is_the_first_sync_and_the_first_async_configuration() -> None:
    run = complete_run()
    run["config"]["servers"] = [
        {"name": "gevent", "server": "gunicorn", "worker_class": "gevent"},
        {"name": "gthread", "server": "gunicorn", "worker_class": "gthread", "threads": 4},
        {"name": "sync", "server": "gunicorn"},
    ]
    sync, asyn = view_of(run).pair
    assert sync is not None and sync.name == "gthread"
    assert asyn is not None and asyn.name == "gevent"  # gevent's hub is an event loop
    run["config"]["servers"] = run["config"]["servers"][1:]
    assert view_of(run).pair[1] is None


def test_the_lowest_measured_record_of_a_server() -> None:
    run = complete_run()
    run["steps"][0]["status"] = "failed"
    view = view_of(run)
    assert view.lowest_ok_record(SYNC) is run["steps"][2]
    assert view.lowest_ok_record(ASYNC) is run["steps"][1]
    assert view.lowest_ok_record("nobody") is None


def test_any_client_limited() -> None:
    run = complete_run()
    assert not view_of(run).any_client_limited()
    run["steps"][1]["saturated"] = "client"
    assert view_of(run).any_client_limited()


def test_figure_of_reads_a_measured_steps_latency_overall_or_per_endpoint() -> None:
    record = step(SYNC, 5, rps=1.0, p50=100.0, p95=200.0)
    assert figure_of(record, "p95_ms") == 200.0
    assert figure_of(record, "p50_ms", "page") == 120.0
    assert figure_of(record, "p50_ms", "nowhere") is None
    record["figures"]["latency"]["p99_ms"] = float("nan")  # withheld: too few requests
    assert figure_of(record, "p99_ms") is None
    assert figure_of({**record, "status": "failed"}, "p95_ms") is None
    assert figure_of(None, "p95_ms") is None


# --- the model --------------------------------------------------------------------------------------------------------


def test_server_cores_are_the_pinned_ones_or_the_machines() -> None:
    run = complete_run()
    run["config"]["run"]["server_cores"] = 1
    assert view_of(run).server_cores == 1
    assert view_of(run).systems[SYNC].server.cpus == 1
    run["config"]["run"]["pin_cpus"] = False
    run["metadata"]["cpu_pinning"] = "not pinned (turned off): client and server share every core"
    assert view_of(run).server_cores == METADATA["cpu_count"] == 2
    assert view_of(run).systems[SYNC].server.cpus == 2  # three workers, two cores


def test_expectations_are_keyed_per_step_and_measure_the_combined_record() -> None:
    run = repeated_run({(ASYNC, 50): [(10.0, 100.0, 150.0), (12.0, 104.0, 200.0), (11.0, 102.0, 160.0)]})
    view = view_of(run)
    assert list(view.expectations) == list(view.by_level)
    e = view.expectations[(ASYNC, 50)]
    assert e.measured_rps == 11.0  # the median over the repeats
    assert e.prediction.users == 50
    assert view.calibrations[ASYNC].steps == 6  # every repeat of both levels
    # The step's own prediction leaves its level out: calibrated on the three repeats at 5 users only.
    assert e.calibration.steps == 3
    assert e.calibration == calibrate(view.config, view.records, ASYNC, leave_out=50)


def test_a_failed_step_has_an_expectation_with_nothing_measured() -> None:
    run = complete_run()
    run["steps"][3]["status"] = "failed"
    e = view_of(run).expectations[(ASYNC, 50)]
    assert e.measured_rps is None and e.efficiency is None


# --- summary.csv ------------------------------------------------------------------------------------------------------


def test_summary_rows_have_the_summarys_columns_one_row_per_level() -> None:
    view = view_of(repeated_run({(ASYNC, 50): [(10.0, 100.0, 150.0), (12.0, 104.0, 200.0), (11.0, 102.0, 160.0)]}))
    rows = view.summary_rows()
    assert [(r["server"], r["users"]) for r in rows] == [(SYNC, 5), (ASYNC, 5), (SYNC, 50), (ASYNC, 50)]
    for row in rows:
        # summary.csv writes them in SUMMARY_COLUMNS' order; a closed row leaves the open arrivals' columns empty.
        assert set(row) == set(store.SUMMARY_COLUMNS) - set(store.OPEN_SUMMARY_COLUMNS)
        assert row["arrival"] == "closed"
    row = rows[3]
    assert (row["kind"], row["workers"], row["status"], row["repeats"]) == ("async", 1, "ok", 3)
    assert (row["rps"], row["rps_min"], row["rps_max"]) == (11.0, 10.0, 12.0)
    assert row["p50_ms"] == 102.0 and row["page_p50_ms"] == pytest.approx(1.2 * 102.0)
    e = view.expectations[(ASYNC, 50)]
    assert (row["model_rps"], row["efficiency"], row["model_bound"]) == (
        e.prediction.model_rps,
        e.efficiency,
        e.prediction.bound_by,
    )


def test_summary_rows_of_a_run_without_repeats_have_one_measurement_and_no_spread() -> None:
    rows = view_of(complete_run()).summary_rows()
    assert [r["repeats"] for r in rows] == [1, 1, 1, 1]
    assert all(r["rps_min"] == r["rps_max"] == r["rps"] for r in rows)
    assert all(r["spread_pct"] is None for r in rows)


# --- shared wordings --------------------------------------------------------------------------------------------------


def test_slots_text_states_how_many_requests_fit_at_once() -> None:
    sync = ServerConfig(name="s", server="gunicorn", workers=3)
    gthread = ServerConfig(name="t", server="gunicorn", worker_class="gthread", workers=2, threads=4)
    single = ServerConfig(name="b", server="uvicorn", endpoints="blocking")
    loop = ServerConfig(name="a", server="uvicorn")
    assert slots_text(sync) == "gunicorn, 3 sync workers: at most 3 requests at once"
    assert slots_text(sync, short=True) == "gunicorn, 3 sync workers"
    assert slots_text(gthread) == "gunicorn, 2 workers x 4 threads (gthread): at most 8 requests at once"
    assert slots_text(single).endswith(": at most 1 request at once")
    assert slots_text(loop) == "uvicorn, 1 event loop, async def endpoints: no per-request slot limit"


def test_kind_text() -> None:
    assert kind_text("sync") == "one sync worker"
    assert kind_text("async") == "one event loop"


@pytest.mark.parametrize("rounds", [1, 2, 3, 5])
def test_shown_round_is_the_one_whose_short_request_took_the_median_time(rounds: int) -> None:
    # timeline_data's round r has a short request r ms slower than round 0's; shuffle them to check the sort.
    seen = timeline_data(rounds)["servers"][f"{SYNC}-1"]["rounds"]
    shuffled = seen[1::2] + seen[0::2]
    assert shown_round(shuffled) is seen[rounds // 2]


def test_shown_round_orders_by_the_short_requests_time_not_by_when_it_was_sent() -> None:
    slow = timeline_round("sync", t0=0.0, short_s=0.30)
    fast = timeline_round("sync", t0=100.0, short_s=0.01)
    middle = timeline_round("sync", t0=50.0, short_s=0.20)
    assert shown_round([slow, fast, middle]) is middle


def test_the_headline_setup_names_the_scenario_workload_and_machine() -> None:
    assert view_of(complete_run()).headline_setup() == (
        "tiny: page = 100 ms of database waits + 5 ms of Python work, short = 10 ms query; think time 1-3 s; "
        "2 cores (Test CPU); 2026-01-02"
    )
