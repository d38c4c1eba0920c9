"""The reading side of open arrivals: the typed view, summary.csv's open rows, and the report's sections, each
rule checked on both of its sides."""

from __future__ import annotations

import math
from typing import Any

from runner import report, report_open, store
from runner.open_view import capacities, open_records, open_servers, summary_rows
from tests.runs import ASYNC, SYNC, complete_run, table_rows_match_headers, view_of

SLO = 500.0


def open_step(server: str, rate: float, p50: float, p95: float, p99: float | None, **figures: Any) -> dict[str, Any]:
    """An open step record in the shape runner.sweep.measure_step produces for a rate."""
    scheduled = {"requests": 300, "failures": 0, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99 or math.nan}
    sent = {"requests": 300, "failures": 0, "p50_ms": p50 * 0.9, "p95_ms": p95 * 0.9, "p99_ms": (p99 or 0) * 0.9}
    saturated = figures.pop("saturated", "")
    # As runner.sweep.measure_step records it: "generator" exactly where the figures say the generator fell behind.
    figures.setdefault("generator_behind", saturated == "generator")
    return {
        "server": server,
        "kind": "sync" if server == SYNC else "async",
        "workers": 3 if server == SYNC else 1,
        "users": 1000,
        "arrival": "open",
        "rate": rate,
        "status": "ok",
        "error": None,
        "files": f"raw/open/{server}/rate{rate:g}",
        "server_cpu_pct": 30.0,
        "saturated": saturated,
        "figures": {
            "rate": rate,
            "offered_rps": rate * 0.98,
            "rps": rate * 0.97,
            "arrivals": 300,
            "scheduled": scheduled,
            "sent": sent,
            "failed": 0,
            "dropped": 0,
            "unfinished": 0,
            "lost_pct": 0.0,
            "p99_all_ms": p99,
            "p99_all_lost": False,
            "generator_p99_ms": 2.0,
            "client_cpu_pct": 10.0,
            **figures,
        },
    }


def model(capacity: float, slo_capacity: float | None, bottleneck: str = "slots") -> dict[str, Any]:
    return {
        "capacity_rps": capacity,
        "slo_capacity_rps": slo_capacity,
        "bottleneck": bottleneck,
        "curve": [
            {"rate_rps": r, "p50_ms": 110.0, "p99_ms": 150.0 + r, "stable": True} for r in (1.0, 5.0, 10.0, 20.0)
        ],
    }


def run_with_open(sync_steps: list[dict[str, Any]], async_steps: list[dict[str, Any]]) -> dict[str, Any]:
    run = complete_run()
    run["open"] = {
        "rates": sorted({s["rate"] for s in sync_steps + async_steps}),
        "process": "poisson",
        "max_users": 1000,
        "max_lateness_s": 1.0,
        "slo_p99_ms": SLO,
        "measure_s": 10.0,
        "servers": {
            SYNC: {
                "kind": "sync",
                "setup": "gunicorn, 3 sync workers",
                "steps": sync_steps,
                "model": model(33.0, 26.5),
            },
            ASYNC: {"kind": "async", "setup": "uvicorn, 1 event loop", "steps": async_steps, "model": model(115, 109)},
        },
    }
    return run


def test_where_p99_leaves_the_target_is_read_against_the_model_on_both_sides() -> None:
    sync = [open_step(SYNC, 20, 110, 200, 300), open_step(SYNC, 30, 500, 900, 1200)]
    asyn = [open_step(ASYNC, 20, 110, 130, 140), open_step(ASYNC, 30, 110, 130, 150)]
    (s, a) = open_servers(run_with_open(sync, asyn)["open"])
    assert s.leaves_target(SLO) is not None and s.leaves_target(SLO).rate == 30  # type: ignore[union-attr]
    assert a.leaves_target(SLO) is None
    # The model's 26.5 lies between the last pass (20) and the first fail (30): it agrees.
    assert "between 20 and 30" in report_open.leaves_text(s, SLO) and "the model agrees" in report_open.leaves_text(
        s, SLO
    )
    # Moved outside that interval, the same sentence says they disagree.
    s_far = open_servers(run_with_open([open_step(SYNC, 5, 110, 200, 300), open_step(SYNC, 10, 500, 900, 1200)],
                                       asyn)["open"])[0]  # fmt: skip
    assert "disagree" in report_open.leaves_text(s_far, SLO)
    # Kept within the target everywhere: said, with the model above every rate measured.
    assert "kept p99 within 500 ms" in report_open.leaves_text(a, SLO) and "agrees" in report_open.leaves_text(a, SLO)


def test_a_step_that_lost_over_one_percent_leaves_the_target_whatever_its_answers_took() -> None:
    lossy = open_step(SYNC, 20, 110, 120, None, p99_all_lost=True, lost_pct=4.0, dropped=12)
    (s, _) = open_servers(run_with_open([lossy], [open_step(ASYNC, 20, 110, 130, 140)])["open"])
    assert s.leaves_target(SLO) is s.steps[0]
    assert "4.0% of arrivals lost" in report_open.leaves_text(s, SLO)


def test_summary_rows_of_open_steps_carry_the_schedules_percentiles_and_the_capacity() -> None:
    run = run_with_open([open_step(SYNC, 20, 110, 200, 300)], [open_step(ASYNC, 20, 110, 130, 140)])
    run["capacity"] = {
        "slo_p99_ms": SLO,
        "servers": {
            SYNC: {"kind": "sync", "capacity_rps": 27.0, "confirmed": True, "bound": None, "bracket": [13, 40],
                   "model_capacity_rps": 26.5, "probes": []},
            ASYNC: {"kind": "async", "capacity_rps": None, "confirmed": False, "bound": "at least 480.0 requests/s",
                    "bracket": [50, 150], "model_capacity_rps": 109, "probes": []},
        },
    }  # fmt: skip
    rows = summary_rows(run["open"], run["capacity"])
    assert [(r["server"], r["rate"]) for r in rows] == [(SYNC, 20), (ASYNC, 20)]
    for row in rows:
        assert set(row) <= set(store.SUMMARY_COLUMNS)
        assert row["arrival"] == "open"
    assert rows[0]["p99_ms"] == 300 and rows[0]["sent_p99_ms"] == 270.0
    assert rows[0]["capacity_rps"] == 27.0 and rows[1]["capacity_rps"] is None  # an unconfirmed number is not one
    # The whole run's summary: closed rows first, then the open ones.
    view = view_of(run)
    assert [r["arrival"] for r in view.summary_rows()] == ["closed"] * 4 + ["open"] * 2
    found = {c.server: c for c in capacities(run["capacity"])}
    assert found[SYNC].within_bracket is True and found[ASYNC].within_bracket is None


def test_the_closed_loop_is_judged_against_the_open_step_at_the_same_load() -> None:
    # What complete_run's users ask for at 50 users, N / (S + Z) by the model, is where each open step is put.
    asked = {name: view_of(complete_run()).expectations[(name, 50)].prediction.offered_rps for name in (SYNC, ASYNC)}
    # The closed sync step at 50 users had p95 2500 ms (interval below); the async one 150 ms.
    run = run_with_open(
        [open_step(SYNC, round(asked[SYNC], 1), 900, 4000, 5000)],
        [open_step(ASYNC, round(asked[ASYNC], 1), 110, 140, 160)],
    )
    for record in run["steps"]:
        p95 = record["figures"]["latency"]["p95_ms"]
        record["figures"]["latency"]["p95_ci_ms"] = [0.9 * p95, 1.1 * p95]
    view = view_of(run)
    sync_pairs = report_open.same_load(view, open_servers(run["open"])[0])
    async_pairs = report_open.same_load(view, open_servers(run["open"])[1])
    assert [(p.users, p.judged) for p in sync_pairs] == [(50, "hid the queue")]  # 4000 ms above 2250-2750
    assert [(p.users, p.judged) for p in async_pairs] == [(50, "agrees, within chance")]  # 140 inside 135-165
    assert sync_pairs[0].asked_rps == asked[SYNC]
    # At 5 users the users ask for a tenth as much: no open step is within 15% of it, so no row.
    rows = report_open.hidden_rows(view, open_servers(run["open"])[0])
    assert any("| 50 |" in r and "hid the queue" in r for r in rows) and not any(r.startswith("| 5 |") for r in rows)
    # An open step 20% off the closed step's load is no partner.
    far = run_with_open([open_step(SYNC, asked[SYNC] * 1.2, 900, 4000, 5000)], [])
    assert report_open.same_load(view_of(far), open_servers(far["open"])[0]) == []


def test_the_report_has_the_sections_and_the_capacity_heads_it() -> None:
    run = run_with_open(
        [open_step(SYNC, 20, 110, 200, 300)], [open_step(ASYNC, 20, 110, 130, 140, saturated="generator")]
    )
    run["capacity"] = {
        "slo_p99_ms": SLO, "resolution": 0.1, "measure_s": 10.0,
        "servers": {SYNC: {"kind": "sync", "capacity_rps": 27.0, "confirmed": True, "bound": None,
                           "bracket": [13, 40], "model_capacity_rps": 26.5,
                           "probes": [{"rate": 13.0, "purpose": "low end of the bracket", "passed": True,
                                       "why": "p99 200 ms within the target"}]}},
    }  # fmt: skip
    text = report.markdown(view_of(run))
    assert text.index("Capacity within p99 500 ms") < text.index("## Reading")
    assert "flask-gunicorn: 27.0 requests/s" in text or f"{SYNC}: 27.0 requests/s" in text
    assert "## Open arrivals: latency against offered load" in text and "## Capacity within the target" in text
    assert "| 20 ‡ |" in text  # the generator-limited step is marked
    table_rows_match_headers(text)
    # A run without open arrivals has none of it.
    plain = report.markdown(view_of(complete_run()))
    assert "Open arrivals" not in plain and "Capacity within" not in plain


def test_open_records_are_the_documents_own_objects_steps_and_probes() -> None:
    run = run_with_open([open_step(SYNC, 20, 110, 200, 300)], [open_step(ASYNC, 20, 110, 130, 140)])
    probe = open_step(ASYNC, 50, 110, 130, 140)
    run["capacity"] = {"servers": {ASYNC: {"probes": [{"rate": 50, "record": probe}]}}}
    found = open_records(run)
    assert [id(r) for r in found] == [id(run["open"]["servers"][SYNC]["steps"][0]),
                                      id(run["open"]["servers"][ASYNC]["steps"][0]), id(probe)]  # fmt: skip
    assert view_of(run).record_name(probe) == f"{ASYNC} at 50 requests/s (open arrivals)"


def test_an_open_only_run_reads_no_user_levels() -> None:
    run = run_with_open([open_step(SYNC, 20, 110, 200, 300)], [open_step(ASYNC, 20, 110, 130, 140)])
    run["steps"] = []
    run["config"]["load"].update(arrival="open", rates=[20])
    text = report.markdown(view_of(run))
    assert "## Open arrivals" in text
    assert "## Reading" not in text and "## Results per user level" not in text


def test_a_generator_limited_step_shows_the_steal_it_met_and_an_inconclusive_probe_says_so() -> None:
    behind = open_step(ASYNC, 20, 110, 130, 140, saturated="generator")
    behind["steal_s"] = [0.231, 0.012]
    older = open_step(ASYNC, 40, 110, 130, 140, saturated="generator")  # a run from before steal_s was recorded
    run = run_with_open([open_step(SYNC, 20, 110, 200, 300)], [behind, older])
    run["capacity"] = {
        "slo_p99_ms": SLO, "resolution": 0.1, "measure_s": 10.0,
        "servers": {SYNC: {"kind": "sync", "capacity_rps": 27.0, "confirmed": True, "bound": None,
                           "bracket": [13, 40], "model_capacity_rps": 26.5, "client_limited": [],
                           "probes": [{"rate": 30.0, "purpose": "bisection", "passed": None,
                                       "why": "inconclusive, measured again: the load generator fell behind"},
                                      {"rate": 30.0, "purpose": "bisection", "passed": False,
                                       "why": "p99 700 ms over the target"}]}},
    }  # fmt: skip
    text = report.markdown(view_of(run))
    assert "‡ 20/s: the VM's steal over the step: core 0 0.23 s, core 1 0.01 s." in text
    assert "‡ 40/s" not in text  # nothing to say where nothing was recorded
    assert "| 0.23 / 0.01 |" in text and "VM steal s per core" in text
    table_rows_match_headers(text)
    assert "30.0 inconclusive (bisection: inconclusive, measured again" in text
    assert "30.0 fail (bisection: p99 700 ms over the target)" in text


def behind(server: str, rate: float, p99: float, late_max: float) -> dict[str, Any]:
    """An open step whose load generator fell behind, handing one arrival out up to ``late_max`` ms late."""
    return open_step(server, rate, 110, p99 * 0.8, p99, saturated="generator", generator_behind=True,
                     generator_max_ms=late_max)  # fmt: skip


def test_a_step_whose_generator_fell_behind_is_read_only_where_its_lateness_cannot_decide_it() -> None:
    steps = [
        open_step(ASYNC, 10, 110, 130, 140),
        behind(ASYNC, 20, 505.0, 375.0),  # over by 5 ms with the generator up to 375 ms late: not read
        behind(ASYNC, 30, 400.0, 375.0),  # within the target though the generator added to it: within
        open_step(ASYNC, 40, 110, 400, 450),
        behind(ASYNC, 50, 900.0, 375.0),  # over by 400 ms: less than twice the generator's 375, not read
        behind(ASYNC, 60, 1300.0, 375.0),  # over by 800 ms, more than twice the generator's 375: over
    ]
    (_, a) = open_servers(run_with_open([open_step(SYNC, 10, 110, 130, 140)], steps)["open"])
    assert [s.over_target(SLO) for s in a.steps] == [False, None, False, False, None, True]
    assert a.leaves_target(SLO) is a.steps[-1]
    assert [s.rate for s in a.untold(SLO)] == [20, 50]
    text = report_open.leaves_text(a, SLO)
    assert "between 40 and 60" in text
    assert "Not read: 20 requests/s (p99 505 ms, its load generator up to 375 ms late" in text
    # Without the generator's lateness the same 505 ms is over the target, and the interval starts at 10.
    plain = [open_step(ASYNC, 10, 110, 130, 140), open_step(ASYNC, 20, 110, 400, 505)]
    (_, b) = open_servers(run_with_open([open_step(SYNC, 10, 110, 130, 140)], plain)["open"])
    assert "between 10 and 20" in report_open.leaves_text(b, SLO) and "Not read" not in report_open.leaves_text(b, SLO)


def test_the_closed_loop_hid_the_queue_only_by_more_than_the_open_generators_lateness() -> None:
    asked = view_of(complete_run()).expectations[(SYNC, 50)].prediction.offered_rps
    judged = {}
    for late_max in (100.0, 1000.0):
        step = open_step(SYNC, round(asked, 1), 900, 4000, 5000, saturated="generator", generator_behind=True,
                         generator_max_ms=late_max)  # fmt: skip
        run = run_with_open([step], [])
        for record in run["steps"]:
            p95 = record["figures"]["latency"]["p95_ms"]
            record["figures"]["latency"]["p95_ci_ms"] = [0.9 * p95, 1.1 * p95]  # sync at 50 users: 2250-2750 ms
        (pair,) = report_open.same_load(view_of(run), open_servers(run["open"])[0])
        judged[late_max] = pair.judged
    # 4000 ms less twice 100 ms is still above 2750: hid the queue; less twice 1000 ms it is not: not read.
    assert judged == {100.0: "hid the queue", 1000.0: report_open.NOT_READ}
