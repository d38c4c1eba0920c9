"""The report's words for the queueing model: the reason given for the highest level, and the model's section."""

from __future__ import annotations

from typing import Any

from runner import expected, explain
from runner.report_model import BOUND_TEXT, model_section, why
from runner.view import slots_text
from tests.runs import ASYNC, SYNC, complete_run, step, view_of

CPU_MS = 5.0  # server CPU per completed request in the runs below: 1 ms of framework cost beside 4 ms of app work


def calibrated(run: dict[str, Any], cpu_ms: float = CPU_MS) -> dict[str, Any]:
    """Each step's server CPU set to ``cpu_ms`` per request it completed, so the model's calibration is known."""
    for record in run["steps"]:
        figures = record["figures"]
        record["server_cpu_pct"] = cpu_ms / 1000 * figures["completed_in_window"] / figures["window_s"] * 100
    return run


def on_the_model(run: dict[str, Any]) -> dict[str, Any]:
    """Every step measured at exactly the model's throughput and mean (the calibration stays the same)."""
    view = view_of(calibrated(run))
    for record in run["steps"]:
        prediction = view.expectations[(record["server"], record["users"])].prediction
        record["figures"]["rps"] = prediction.model_rps
        record["figures"]["completed_in_window"] = round(prediction.model_rps * record["figures"]["window_s"])
        record["figures"]["latency"]["mean_ms"] = prediction.model_mean_ms
    return calibrated(run)


def test_the_calibration_is_what_the_runs_above_intend() -> None:
    view = view_of(calibrated(complete_run()))
    assert view.calibrations[SYNC].cpu_per_request_ms == 5.0
    assert round(view.calibrations[SYNC].overhead_ms, 9) == 1.0  # 5 ms less the mix's 4 / 5 x 5 ms of app work


def test_why_names_each_servers_limit_and_what_it_measured() -> None:
    view = view_of(calibrated(complete_run()))
    text = why(view, 50)
    sync = view.systems[SYNC]
    e = view.expectations[(SYNC, 50)]
    offered = e.prediction.offered_rps
    assert text.startswith(
        f"**Why, by the queueing model:** 50 users thinking between requests ask for about {offered:.0f}/s."
    )
    # Three sync workers each holding a request for its waits and CPU: slots bound, and the step's CPU was low.
    assert sync.bottleneck.resource == "slots" and e.prediction.bound_by == "users"
    assert (
        f"**{SYNC}** can finish at most {sync.max_rps:.0f} requests/s (3 slot(s) each held "
        f"~{sync.bottleneck.service_s * 1000:.0f} ms); its knee is at about {sync.knee_users:.0f} users, so at 50 "
        f"users it serves what they ask: 5/s measured (model {e.prediction.model_rps:.0f}/s)." in text
    )
    assert f"**{ASYNC}** can finish at most" in text and "1 core(s) at ~5.0 ms of CPU per request" in text


def test_why_says_a_slot_bound_server_was_waiting_and_a_busy_one_was_near_its_cpu() -> None:
    run = calibrated(complete_run())
    run["steps"].append(step(SYNC, 500, rps=30.0, p50=9000.0, p95=12000.0, server_cpu_pct=15.0))
    run["steps"].append(step(ASYNC, 500, rps=150.0, p50=900.0, p95=1200.0, server_cpu_pct=95.0))
    run["config"]["load"]["users"] = [5, 50, 500]
    text = why(view_of(run), 500)
    assert f"requests queue for {BOUND_TEXT['slots']}: 30/s measured" in text
    assert "Its CPU was at 15%: it was mostly waiting, not working." in text
    assert "It used 95% CPU: CPU is its nearest limit" in text


def test_why_has_nothing_to_say_about_a_level_nobody_measured() -> None:
    assert why(view_of(complete_run()), 999) == ""


def test_the_model_section_describes_each_server_and_has_a_row_per_measured_step() -> None:
    run = on_the_model(complete_run())
    run["steps"][1]["status"] = "failed"  # async at 5 users: no row
    view = view_of(run)
    lines = model_section(view)
    assert lines[0] == "## What the queueing model expects"
    assert "A closed loop of N users thinking 2 s on average (Z)" in lines[2]
    sync_line = next(line for line in lines if line.startswith(f"- **{SYNC}**"))
    assert f"({slots_text(view.servers[0])})" in sync_line
    assert "needs 5.0 ms of CPU (1.0 ms of framework CPU per request, measured over 2 steps)" in sync_line
    rows = [line for line in lines if line.startswith(("| " + SYNC, "| " + ASYNC))]
    assert [row.split(" | ")[:2] for row in rows] == [["| " + SYNC, "5"], ["| " + SYNC, "50"], ["| " + ASYNC, "50"]]
    e = view.expectations[(SYNC, 50)]
    assert rows[1].split(" | ")[4:7] == [f"{e.prediction.model_rps:.1f}", e.prediction.bound_by, "1.00"]
    assert "Every measured step is within 15% of the model's throughput and 25% of its mean response time." in lines
    assert not any("§" in line for line in lines)


def test_a_step_far_from_the_model_is_marked_and_explained() -> None:
    run = on_the_model(complete_run())
    high = run["steps"][2]  # sync at 50 users, now at half the model's rate
    high["figures"]["rps"] /= 2
    view = view_of(run)
    lines = model_section(view)
    row = next(line for line in lines if line.startswith(f"| {SYNC} | 50 |"))
    assert "0.50 ‡" in row
    e = view.expectations[(SYNC, 50)]
    reason = explain.throughput(e, view.by_level[(SYNC, 50)], view.servers[0])
    assert lines[lines.index("‡ throughput further than 15% from the model:") + 2] == f"- {SYNC} at 50 users: {reason}."


def test_unanswered_requests_are_shown_beside_the_mean_and_explained() -> None:
    run = on_the_model(complete_run())
    run["steps"][3]["figures"]["unfinished"] = 4
    lines = model_section(view_of(run))
    row = next(line for line in lines if line.startswith(f"| {ASYNC} | 50 |"))
    assert "(+4 unanswered) §" in row
    assert any(line.startswith("§ Some requests sent in this step's window were still unanswered") for line in lines)


def test_a_server_without_enough_requests_to_calibrate_says_its_cpu_was_assumed() -> None:
    run = complete_run()
    run["steps"] = [s for s in run["steps"] if s["users"] == 5]  # 15 requests each: too few
    line = next(line for line in model_section(view_of(run)) if line.startswith(f"- **{SYNC}**"))
    assert f"{expected.FALLBACK_OVERHEAD_MS:.1f} ms of framework CPU per request assumed" in line
    # S = (4 x (100 + 5 + 1.5) + (10 + 1.5)) / 5 = 87.5 ms; three slots and Z = 2 s put the knee at 3 (S + Z) / S.
    assert "a request is in service 87.5 ms on average (S)" in line
    assert "Knee: about **72 users** (beyond this sweep)" in line
