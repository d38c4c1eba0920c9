"""Comparing two runs: what is refused, how each difference is judged, and what else a reader is told."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from runner import comparison
from runner.comparison import (
    NO_FIGURE,
    NOT_RECORDED,
    NOT_SIGNIFICANT,
    SPREAD_UNKNOWN,
    TOO_FEW,
    CompareError,
    Spread,
    StepRow,
    check_comparable,
    compare,
)
from runner.view import RunView
from tests.runs import (
    ASYNC,
    METADATA,
    SYNC,
    USERS,
    changed_config,
    complete_run,
    config,
    repeated_run,
    sampled_run,
    sampled_step,
    sampled_steps,
    save_in,
    view_of,
)


def view(run: dict[str, Any], name: str = "a") -> RunView:
    return view_of(run, Path("/runs") / name)


def compared(a: dict[str, Any], b: dict[str, Any]) -> dict[tuple[str, int], StepRow]:
    """The comparison's rows of two run documents, by (server, users), after checking they may be compared."""
    run_a, run_b = view(a, "a"), view(b, "b")
    check_comparable(run_a, run_b)
    return {(row.server, row.users): row for row in compare(run_a, run_b).rows}


def refusal(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Why two runs may not be compared, as one line."""
    with pytest.raises(CompareError) as refused:
        check_comparable(view(a, "a"), view(b, "b"))
    return re.sub(r"\s+", " ", str(refused.value))


# --- comparing -----------------------------------------------------------------------------------------------------


def test_a_run_compared_with_itself_differs_nowhere() -> None:
    run = sampled_run()
    rows = compared(run, run)
    assert len(rows) == 2 * len(USERS)
    for row in rows.values():
        assert row.status == "compared"
        for figure in row.figures:
            assert figure.ratio == 1.0
            assert figure.verdict == NOT_SIGNIFICANT


def test_differences_beyond_both_spreads_are_called_and_their_direction_given() -> None:
    a = sampled_run(sampled_steps(completed=600, p95=150.0))
    # 900 completions against 600: Poisson intervals [552, 650] and [842, 960] do not overlap. p95 100 +- 10 ms
    # against 150 +- 10 ms do not either.
    b = sampled_run(sampled_steps(completed=900, p95=100.0))
    rps, p95 = compared(a, b)[(ASYNC, 50)].figures
    assert rps.verdict == "B higher"
    assert rps.ratio == pytest.approx(1.5)
    assert p95.verdict == "B lower"
    assert p95.ratio == pytest.approx(100 / 150)


def test_differences_inside_the_spreads_are_not_significant() -> None:
    a = sampled_run(sampled_steps(completed=600, p95=150.0))
    # 630 against 600 completions: well inside each other's Poisson interval; p95 intervals [145, 165] and
    # [140, 160] overlap.
    b = sampled_run(sampled_steps(completed=630, p95=155.0, p95_ci=[145.0, 165.0]))
    assert a["steps"][0]["figures"]["latency"]["p95_ci_ms"] == [140.0, 160.0]
    rps, p95 = compared(a, b)[(SYNC, 50)].figures
    assert rps.verdict == NOT_SIGNIFICANT
    assert rps.ratio == pytest.approx(1.05)
    assert p95.verdict == NOT_SIGNIFICANT
    assert p95.spread_a == Spread((140.0, 160.0), "95% order-statistic interval")


def test_a_step_in_only_one_run_is_listed_not_compared() -> None:
    a = sampled_run()
    steps = [
        sampled_step(SYNC, 5),
        sampled_step(ASYNC, 5, status="failed"),
        sampled_step(ASYNC, 50),
        # flask-gunicorn at 50 users never ran: the run was interrupted.
    ]
    b = sampled_run(steps, status="interrupted")
    rows = compared(a, b)
    assert rows[(SYNC, 5)].status == "compared"
    assert rows[(ASYNC, 5)].status == "only in A"
    assert rows[(ASYNC, 5)].detail == "B: failed"
    missing = rows[(SYNC, 50)]
    assert missing.status == "only in A"
    assert missing.detail == "B: missing"
    assert missing.state_b == "missing"
    rps = missing.figures[0]
    assert rps.b is None
    assert rps.ratio is None
    assert (rps.verdict, rps.why) == ("only in A", "B: missing")
    notes = compare(view(a), view(b)).notes
    assert any("Run B" in note and "interrupted" in note for note in notes)


def test_a_step_in_neither_run_is_listed() -> None:
    partial = [sampled_step(SYNC, 5), sampled_step(ASYNC, 5)]
    a = sampled_run(partial, status="interrupted")
    b = sampled_run([*partial, sampled_step(ASYNC, 50, status="failed")], status="incomplete")
    row = compared(a, b)[(ASYNC, 50)]
    assert row.status == "in neither"
    assert row.detail == "A: missing, B: failed"


def test_planned_steps_come_server_by_server_then_any_step_beyond_the_plan() -> None:
    a = sampled_run()
    b = sampled_run([*sampled_steps(), sampled_step(ASYNC, 500)])
    keys = list(compared(a, b))
    assert keys == [(SYNC, 5), (SYNC, 50), (ASYNC, 5), (ASYNC, 50), (ASYNC, 500)]
    assert compared(a, b)[(ASYNC, 500)].status == "only in B"


def test_runs_without_recorded_intervals_say_the_spread_is_unknown() -> None:
    old = sampled_run(sampled_steps(with_ci=False, p95=150.0))
    new = sampled_run(sampled_steps(p95=300.0))
    rps, p95 = compared(old, new)[(SYNC, 50)].figures
    # p95 doubled, but without A's interval nothing is claimed about it.
    assert p95.verdict == SPREAD_UNKNOWN
    assert p95.why == f"A: {NOT_RECORDED}"
    assert p95.ratio == pytest.approx(2.0)
    # Throughput's spread comes from the completion count, which every run records.
    assert rps.verdict == NOT_SIGNIFICANT
    # Both without: the reason is given once.
    assert compared(old, old)[(SYNC, 50)].figures[1].why == NOT_RECORDED


def test_too_few_requests_for_an_interval_is_stated() -> None:
    steps = sampled_steps()
    steps[0]["figures"]["latency"]["p95_ci_ms"] = None
    a = sampled_run(steps)
    p95 = compared(a, a)[(steps[0]["server"], steps[0]["users"])].figures[1]
    assert p95.verdict == SPREAD_UNKNOWN
    assert p95.why == TOO_FEW


def test_a_step_without_a_p95_has_no_figure_to_compare() -> None:
    a = sampled_run(sampled_steps(p95=None))
    rps, p95 = compared(a, a)[(SYNC, 5)].figures
    assert p95.verdict == NO_FIGURE
    assert p95.why == "none in A and B"
    assert p95.ratio is None
    assert rps.verdict == NOT_SIGNIFICANT


def test_what_else_differs_between_the_runs_is_noted() -> None:
    a, b = sampled_run(), sampled_run()
    b["metadata"]["cpu_count"] = 8
    b["metadata"]["packages"]["flask"] = "9.0"
    notes = comparison.environment_notes(view(a), view(b))
    assert notes == ["core count differs: 2 in A, 8 in B.", "Package versions differ (A -> B): flask 3.1.3 -> 9.0."]
    assert comparison.environment_notes(view(a), view(a)) == []


def test_run_facts_name_the_folder_and_the_commit() -> None:
    run = sampled_run()
    run["metadata"]["git"] = {"commit": "0123456789abcdef", "dirty": True}
    facts = comparison.run_facts(view(run, "20260101T000000Z-tiny"))
    assert facts == {
        "path": "/runs/20260101T000000Z-tiny",
        "name": "20260101T000000Z-tiny",
        "status": "complete",
        "date": METADATA["date"],
        "commit": "0123456789 (uncommitted changes)",
    }


# --- refusals ------------------------------------------------------------------------------------------------------


def test_runs_of_different_scenarios_are_refused() -> None:
    message = refusal(sampled_run(), sampled_run(config_doc=changed_config(name="quick")))
    assert "/runs/a/run.json" in message and "/runs/b/run.json" in message
    assert "'tiny'" in message and "'quick'" in message


def test_a_changed_scenario_file_is_refused() -> None:
    message = refusal(sampled_run(), sampled_run(config_doc=changed_config(source_sha256="b" * 64)))
    assert "sha256" in message and config()["source_sha256"][:12] in message and "bbbbbbbbbbbb" in message
    assert "no recorded setting differs" in message


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"load.think_time_s": [1.0, 4.0]}, ["load.think_time_s ([1.0, 3.0] in A, [1.0, 4.0] in B)"]),
        (
            {"workload.listing_ms": 40, "load.measure_s": 30},
            ["workload.listing_ms (80 in A, 40 in B)", "load.measure_s"],
        ),
        ({"load.users": [5, 50, 500]}, ["load.users"]),
        ({"run.pin_cpus": False}, ["run.pin_cpus"]),
    ],
)
def test_changed_settings_are_refused_and_named(changes: dict[str, Any], named: list[str]) -> None:
    # Same file (same sha256), settings changed by overrides.
    message = refusal(sampled_run(), sampled_run(config_doc=changed_config(**changes)))
    assert "settings differ" in message
    for text in named:
        assert text in message
    assert "sha256" not in message


def test_a_changed_server_is_refused_and_named() -> None:
    servers = config()["servers"]
    servers[0]["workers"] = 9
    message = refusal(sampled_run(), sampled_run(config_doc=changed_config(servers=servers)))
    assert "servers[0].workers (3 in A, 9 in B)" in message


def test_where_the_results_went_is_not_a_setting() -> None:
    moved = changed_config(**{"run.results_dir": "/elsewhere", "source": "/moved/tiny.toml"})
    check_comparable(view(sampled_run()), view(sampled_run(config_doc=moved)))  # does not raise


def test_an_unknown_format_version_is_refused(tmp_path: Path) -> None:
    run = sampled_run()
    run["format_version"] = 99
    b = save_in(tmp_path / "b", run)
    with pytest.raises(CompareError) as refused:
        comparison.load("B", b)
    message = str(refused.value)
    assert message.startswith("run B: ")
    assert str(b / "run.json") in message
    assert "format version 99" in message


@pytest.mark.parametrize("what", ["an empty folder", "no such path", "a soak folder"])
def test_a_path_that_is_not_a_run_folder_is_refused(tmp_path: Path, what: str) -> None:
    other = tmp_path / "other"
    if what == "an empty folder":
        other.mkdir()
    elif what == "a soak folder":
        other.mkdir()
        (other / "soak.json").write_text("{}", encoding="utf-8")
    with pytest.raises(CompareError) as refused:
        comparison.load("A", other)
    message = str(refused.value)
    assert message.startswith("run A: ")
    assert str(other) in message
    assert "run folder" in message


def test_a_file_that_is_not_a_run_is_refused(tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    report.write_text("# not a run\n", encoding="utf-8")
    with pytest.raises(CompareError, match=re.escape(str(report))):
        comparison.load("B", report)


def test_a_run_folder_loads_as_its_view(tmp_path: Path) -> None:
    folder = save_in(tmp_path / "20260101T000000Z-tiny", sampled_run())
    loaded = comparison.load("A", folder)
    assert loaded.path == folder
    assert loaded.by_level.keys() == {(SYNC, 5), (SYNC, 50), (ASYNC, 5), (ASYNC, 50)}


# --- the spread, ready for repeats -----------------------------------------------------------------------------------


def test_repeats_give_their_min_to_max_as_the_spread_and_their_median_as_the_figure() -> None:
    rps = comparison.METRICS[0]
    repeats = [{"rps": 10.0}, {"rps": 12.0}, {"rps": 11.5}]
    assert comparison.spread(rps, repeats) == Spread((10.0, 12.0), "min..max of 3 repeats")
    assert comparison.point(rps, repeats) == 11.5


def test_a_repeat_without_the_figure_leaves_no_spread_and_no_point() -> None:
    p95 = comparison.METRICS[1]
    repeats: list[dict[str, Any]] = [{"latency": {"p95_ms": 100.0}}, {"latency": {"p95_ms": None}}]
    assert comparison.spread(p95, repeats) == Spread(None, "a repeat has no p95")
    assert comparison.point(p95, repeats) is None


def test_one_measurement_gives_its_own_samples_interval() -> None:
    rps = comparison.METRICS[0]
    spread = comparison.spread(rps, [{"rps": 1.0, "completed_in_window": 10, "window_s": 10.0}])
    assert spread.interval == pytest.approx((0.47954, 1.83904), abs=1e-4)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((1.0, 2.0), (2.0, 3.0), NOT_SIGNIFICANT),  # touching intervals overlap
        ((1.0, 2.0), (2.1, 3.0), "B higher"),
        ((2.1, 3.0), (1.0, 2.0), "B lower"),
        ((1.0, 5.0), (2.0, 3.0), NOT_SIGNIFICANT),
    ],
)
def test_verdict_is_overlap_of_the_intervals(a: tuple[float, float], b: tuple[float, float], expected: str) -> None:
    word, _ = comparison.verdict(sum(a) / 2, sum(b) / 2, Spread(a, "test"), Spread(b, "test"))
    assert word == expected


def test_verdict_never_guesses_a_missing_spread() -> None:
    known, unknown = Spread((1.0, 2.0), "test"), Spread(None, NOT_RECORDED)
    assert comparison.verdict(1.5, 100.0, known, unknown) == (SPREAD_UNKNOWN, f"B: {NOT_RECORDED}")
    assert comparison.verdict(1.5, 1.5, unknown, unknown) == (SPREAD_UNKNOWN, NOT_RECORDED)


# --- the comparison ---------------------------------------------------------------------------------------------------


def test_compare_measurements_are_every_repeats_figures() -> None:
    run = repeated_run({(ASYNC, 50): [(10.0, 100.0, 150.0), (12.0, 104.0, 200.0), (11.0, 102.0, 160.0)]})
    record = view_of(run).by_level[(ASYNC, 50)]
    assert [f["rps"] for f in comparison.measurements(record)] == [10.0, 12.0, 11.0]
    plain = complete_run()["steps"][0]
    assert comparison.measurements(plain) == [plain["figures"]]


def test_compare_judges_repeated_steps_by_their_min_to_max(tmp_path: Path) -> None:
    a = repeated_run({(ASYNC, 50): [(10.0, 100.0, 150.0), (12.0, 104.0, 200.0), (11.0, 102.0, 160.0)]})
    b = repeated_run({(ASYNC, 50): [(11.5, 100.0, 150.0), (13.0, 104.0, 200.0), (12.5, 102.0, 160.0)]})
    c = repeated_run({(ASYNC, 50): [(20.0, 100.0, 150.0), (21.0, 104.0, 200.0), (22.0, 102.0, 160.0)]})
    loaded = [view_of(doc, tmp_path / label) for label, doc in zip("ABC", (a, b, c), strict=True)]
    for other, verdict in ((loaded[1], NOT_SIGNIFICANT), (loaded[2], "B higher")):
        check_comparable(loaded[0], other)
        row = next(r for r in compare(loaded[0], other).rows if (r.server, r.users) == (ASYNC, 50))
        rps = row.figures[0]
        assert rps.spread_a == Spread((10.0, 12.0), "min..max of 3 repeats")
        assert rps.a == 11.0
        assert rps.verdict == verdict


def test_a_run_recorded_before_repeats_compares_with_one_that_says_repeats_1(tmp_path: Path) -> None:
    old, new = complete_run(), complete_run()
    new["config"]["load"]["repeats"] = 1
    check_comparable(view_of(old, tmp_path / "a"), view_of(new, tmp_path / "b"))  # does not raise
    three = repeated_run()
    with pytest.raises(CompareError, match=r"load\.repeats"):
        check_comparable(view_of(old, tmp_path / "a"), view_of(three, tmp_path / "b"))
