"""Repeats: each step measured R times, folded into medians with their spread; R = 1 is exactly what it was."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from runner import files, html_report, render, repeats, report, store, sweep
from runner.cli import describe_plan, main
from runner.config import MAX_REPEATS, OVERRIDES, ScenarioError, config_from_dict, load_config
from runner.processes import CpuPlan
from tests.runs import (
    ASYNC,
    SYNC,
    USERS,
    complete_run,
    read_summary,
    repeated_run,
    step,
    table_rows_match_headers,
    unfinished_run,
    view_of,
)


@pytest.fixture(autouse=True)
def no_bench_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads os.environ: the machine's own BENCH_* settings must not change what these tests run."""
    for override in OVERRIDES:
        monkeypatch.delenv(override.env, raising=False)


# --- combining: R = 1 is today's run ----------------------------------------------------------------------------------


def test_without_repeats_each_step_is_its_own_record_untouched() -> None:
    run = complete_run()
    before = copy.deepcopy(run)
    by_level = view_of(run).by_level
    assert list(by_level) == [(s["server"], s["users"]) for s in run["steps"]]
    for record in run["steps"]:
        assert by_level[(record["server"], record["users"])] is record
        assert "repeats" not in record
    assert all(group.spread == {} and not group.flagged for group in repeats.combine(run).values())
    assert run == before


def test_without_repeats_the_report_has_no_spread_section_and_does_not_change_with_repeats_1() -> None:
    run = complete_run()
    explicit = copy.deepcopy(run)
    explicit["config"]["load"]["repeats"] = 1
    text = report.markdown(view_of(run))
    assert report.markdown(view_of(explicit)) == text
    assert "Spread over repeats" not in text
    assert "⚠" not in text


def test_an_old_configuration_without_repeats_means_one() -> None:
    run = complete_run()
    assert "repeats" not in run["config"]["load"]
    assert repeats.planned_repeats(run) == 1
    saved = copy.deepcopy(run["config"])
    saved["load"] = {**saved["load"], "users": [5, 50], "think_time_s": [1.0, 3.0]}
    assert config_from_dict(saved).load.repeats == 1
    assert repeats.step_key(run["steps"][0]) == (SYNC, 5, 1)


def test_without_repeats_the_summary_gains_its_columns_with_one_measurement(tmp_path: Path) -> None:
    run = complete_run()
    store.write_summary(tmp_path, view_of(run).summary_rows())
    rows = read_summary(tmp_path)
    assert [(r["server"], r["users"]) for r in rows] == [(s["server"], str(s["users"])) for s in run["steps"]]
    for row in rows:
        assert row["repeats"] == "1"
        assert row["rps_min"] == row["rps_max"] == row["rps"]
        assert row["spread_pct"] == ""  # one measurement has no spread


def test_summary_columns_are_appended_after_saturated() -> None:
    columns = store.SUMMARY_COLUMNS
    at = columns.index("saturated")
    assert columns[at + 1 : at + 5] == ("repeats", "rps_min", "rps_max", "spread_pct")


# --- combining: several repeats ---------------------------------------------------------------------------------------


def test_repeats_are_grouped_per_server_and_level_with_min_median_max() -> None:
    run = repeated_run({(ASYNC, 50): [(10.0, 100.0, 150.0), (12.0, 104.0, 200.0), (11.0, 102.0, 160.0)]})
    groups = repeats.combine(run)
    assert list(groups) == [(SYNC, 5), (ASYNC, 5), (SYNC, 50), (ASYNC, 50)]
    group = groups[(ASYNC, 50)]
    assert [repeats.repeat_of(r) for r in group.records] == [1, 2, 3]
    rps = group.spread["rps"]
    assert (rps["min"], rps["median"], rps["max"], rps["n"]) == (10.0, 11.0, 12.0, 3)
    assert rps["spread_pct"] == pytest.approx(2 / 11 * 100)
    assert group.spread["p95_ms"]["median"] == 160.0
    assert set(group.spread) == {"rps", "p50_ms", "p95_ms", "mean_ms"}


def test_the_representative_is_the_median_throughput_repeat_with_the_medians_as_its_headline() -> None:
    run = repeated_run({(ASYNC, 50): [(10.0, 100.0, 150.0), (12.0, 90.0, 200.0), (11.0, 110.0, 140.0)]})
    record = view_of(run).by_level[(ASYNC, 50)]
    assert record["repeat"] == 3  # 11 req/s, the middle of 10, 11, 12
    assert record["files"] == f"raw/{ASYNC}/u0050-r3"
    assert record["figures"]["rps"] == 11.0
    assert record["figures"]["latency"]["p50_ms"] == 100.0  # the median of 100, 90, 110, not repeat 3's 110
    assert record["figures"]["latency"]["p95_ms"] == 150.0
    assert record["figures"]["latency"]["p99_ms"] == pytest.approx(140.0 * 1.2)  # repeat 3's own
    assert record["repeats"]["representative"] == 3
    assert [f["rps"] for f in record["repeats"]["figures"]] == [10.0, 12.0, 11.0]
    # The run's own records are not touched.
    assert [s["figures"]["rps"] for s in run["steps"] if (s["server"], s["users"]) == (ASYNC, 50)] == [10.0, 12.0, 11.0]


def test_with_an_even_count_the_lower_middle_repeat_represents_and_the_median_is_the_mean_of_the_two() -> None:
    run = repeated_run({(SYNC, 5): [(12.0, 100.0, 120.0), (10.0, 100.0, 120.0), (14.0, 100.0, 120.0)]})
    run["steps"] = [s for s in run["steps"] if not (s["server"] == SYNC and s["users"] == 5 and s["repeat"] == 3)]
    record = view_of(run).by_level[(SYNC, 5)]
    assert record["repeat"] == 2  # 10 and 12: the lower one
    assert record["figures"]["rps"] == 11.0


@pytest.mark.parametrize(
    ("rps", "p50", "p95", "flagged"),
    [
        ((10.0, 10.5, 10.2), (100.0, 105.0, 102.0), (100.0, 100.0, 100.0), False),
        ((10.0, 11.0, 10.5), (100.0, 100.0, 100.0), (100.0, 100.0, 100.0), False),  # 9.5%: under
        ((10.0, 11.1, 10.5), (100.0, 100.0, 100.0), (100.0, 100.0, 100.0), True),  # 10.6% on throughput
        ((10.0, 10.0, 10.0), (100.0, 115.0, 105.0), (100.0, 100.0, 100.0), True),  # 14.3% on the median
        ((10.0, 10.0, 10.0), (100.0, 100.0, 100.0), (100.0, 200.0, 150.0), False),  # p95 is shown, not flagged
    ],
)
def test_a_step_is_flagged_when_throughput_or_median_spread_exceeds_10_percent(
    rps: tuple[float, ...], p50: tuple[float, ...], p95: tuple[float, ...], flagged: bool
) -> None:
    run = repeated_run({(SYNC, 50): list(zip(rps, p50, p95, strict=True))})
    group = repeats.combine(run)[(SYNC, 50)]
    assert group.flagged is flagged
    assert group.record["repeats"]["flagged"] is flagged
    assert repeats.FLAG_SPREAD_PCT == 10.0
    assert (group.spread_pct is not None and group.spread_pct > repeats.FLAG_SPREAD_PCT) is flagged


def test_a_failed_repeat_is_left_out_of_the_spread_and_a_step_with_none_measured_stays_failed() -> None:
    run = repeated_run({(SYNC, 50): [(10.0, 100.0, 150.0), (30.0, 100.0, 150.0), (12.0, 100.0, 150.0)]})
    for record in run["steps"]:
        if (record["server"], record["users"], record["repeat"]) == (SYNC, 50, 2):
            record.update(status="failed", error="server exited")
        if record["server"] == ASYNC and record["users"] == 5:
            record.update(status="failed", error="no server")
    groups = repeats.combine(run)
    assert len(groups[(SYNC, 50)].measured) == 2
    assert groups[(SYNC, 50)].spread["rps"]["max"] == 12.0
    failed = groups[(ASYNC, 5)]
    assert failed.record["status"] == "failed" and failed.spread == {} and not failed.flagged
    text = report.markdown(view_of(run))
    assert f"| {SYNC} | 50 | 2 of 3 |" in text
    assert f"| {ASYNC} | 5 | 0 of 3 | – | – |" in text


# --- the report -------------------------------------------------------------------------------------------------------


def test_the_report_has_a_spread_section_that_marks_flagged_steps() -> None:
    run = repeated_run({(SYNC, 50): [(4.0, 900.0, 2500.0), (5.0, 950.0, 2600.0), (6.0, 1000.0, 3000.0)]})
    text = report.markdown(view_of(run))
    section = text.split("### Spread over repeats", 1)[1].split("\n## ", 1)[0]
    assert "Each step was measured 3 times" in section
    rows = [line for line in section.splitlines() if line.startswith(f"| {SYNC}") or line.startswith(f"| {ASYNC}")]
    assert len(rows) == 4
    flagged = next(r for r in rows if r.startswith(f"| {SYNC} | 50 |"))
    assert "4.0 / 5.0 / 6.0" in flagged and "40.0%" in flagged and "⚠ >10%" in flagged
    assert "900 ms / 950 ms / 1.0 s" in flagged
    assert all("⚠" not in r for r in rows if r is not flagged)
    assert "marks a step whose throughput or median response time differed by more than 10%" in section
    assert "No step's repeats differed" not in section
    # The tables and charts show the medians.
    assert view_of(run).by_level[(SYNC, 50)]["figures"]["rps"] == 5.0
    table_rows_match_headers(text)


def test_the_report_says_when_no_step_was_flagged() -> None:
    text = report.markdown(view_of(repeated_run()))
    assert "No step's repeats differed by more than 10%" in text
    assert "⚠ >10% |" not in text
    table_rows_match_headers(text)


def test_the_method_notes_state_the_rule_for_repeats() -> None:
    notes = " ".join(report.METHOD_NOTES)
    assert "middle of the throughput order" in notes and "medians over the repeats" in notes


def test_missing_steps_include_each_missing_repeat() -> None:
    run = repeated_run()
    run["steps"] = [s for s in run["steps"] if not (s["users"] == 50 and s["repeat"] >= 2)]
    run["status"] = "interrupted"
    assert view_of(run).missing_steps() == [(SYNC, 50, 2), (ASYNC, 50, 2), (SYNC, 50, 3), (ASYNC, 50, 3)]
    text = report.markdown(view_of(run))
    assert f"{SYNC} at 50 users (repeat 2), {ASYNC} at 50 users (repeat 2)" in text
    single = complete_run()
    del single["steps"][3]
    single["status"] = "interrupted"
    assert view_of(single).missing_steps() == [(ASYNC, 50, 1)]
    assert f"Missing steps: {ASYNC} at 50 users." in report.markdown(view_of(single))


def test_the_summary_has_one_row_per_server_and_level_with_the_spread(tmp_path: Path) -> None:
    run = repeated_run({(ASYNC, 50): [(10.0, 100.0, 150.0), (12.0, 104.0, 200.0), (11.0, 102.0, 160.0)]})
    store.write_summary(tmp_path, view_of(run).summary_rows())
    rows = read_summary(tmp_path)
    assert [(r["server"], r["users"]) for r in rows] == [(SYNC, "5"), (ASYNC, "5"), (SYNC, "50"), (ASYNC, "50")]
    row = rows[3]
    assert (row["repeats"], row["rps"], row["rps_min"], row["rps_max"]) == ("3", "11", "10", "12")
    assert row["p50_ms"] == "102"
    assert float(row["spread_pct"]) == pytest.approx(2 / 11 * 100, abs=1e-3)  # the larger of rps's and p50's
    assert rows[0]["spread_pct"] == "0"


def test_charts_and_report_render_from_a_repeated_run(tmp_path: Path) -> None:
    run = repeated_run({(ASYNC, 50): [(10.0, 100.0, 150.0), (12.0, 104.0, 200.0), (11.0, 102.0, 160.0)]})
    run_dir = tmp_path / "run"
    files.write_json(run_dir / store.RUN_FILE, run)
    written = {p.name for p in render.render(run_dir)}
    assert {"throughput.png", "response_times.png", "report.md", "summary.csv"} <= written
    assert "### Spread over repeats" in (run_dir / "report.md").read_text(encoding="utf-8")


# --- configuration ----------------------------------------------------------------------------------------------------


def test_repeats_default_to_one_and_are_read_from_the_scenario(write_scenario: Callable[..., Path]) -> None:
    assert load_config(str(write_scenario())).load.repeats == 1
    scenario = write_scenario()
    scenario.write_text(scenario.read_text().replace("[load]\n", "[load]\nrepeats = 3\n"))
    assert load_config(str(scenario)).load.repeats == 3


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "true", '"2"', str(MAX_REPEATS + 1)])
def test_a_bad_repeat_count_is_refused(write_scenario: Callable[..., Path], value: str) -> None:
    scenario = write_scenario()
    scenario.write_text(scenario.read_text().replace("[load]\n", f"[load]\nrepeats = {value}\n"))
    with pytest.raises(ScenarioError, match=r"load\.repeats"):
        load_config(str(scenario))


def test_repeats_can_be_overridden_by_flag_and_environment(write_scenario: Callable[..., Path]) -> None:
    scenario = str(write_scenario())
    assert load_config(scenario, {"BENCH_REPEATS": "2"}).load.repeats == 2
    config = load_config(scenario, {"BENCH_REPEATS": "2"}, {"--repeats": "4"})
    assert config.load.repeats == 4
    assert any("load.repeats=4" in applied for applied in config.overrides)
    for bad in ("0", "x", str(MAX_REPEATS + 1)):
        with pytest.raises(ScenarioError, match="--repeats"):
            load_config(scenario, {}, {"--repeats": bad})


def test_the_plan_runs_users_then_repeats_then_servers(write_scenario: Callable[..., Path]) -> None:
    config = load_config(str(write_scenario(users="[2, 20]")), {}, {"--repeats": "2"})
    plan = [(s.users, s.repeat, s.server.name) for s in sweep.plan_steps(config)]
    assert plan == [(u, r, name) for u in (2, 20) for r in (1, 2) for name in (SYNC, ASYNC)]
    folders = [s.folder_name for s in sweep.plan_steps(config)]
    assert folders[:4] == [f"{SYNC}/u0002", f"{ASYNC}/u0002", f"{SYNC}/u0002-r2", f"{ASYNC}/u0002-r2"]
    assert len(set(folders)) == len(folders)
    single = load_config(str(write_scenario(users="[2, 20]")))
    assert [s.folder_name for s in sweep.plan_steps(single)] == [
        f"{n}/u{u:04d}" for u in (2, 20) for n in (SYNC, ASYNC)
    ]


def test_the_dry_run_counts_every_repeat(write_scenario: Callable[..., Path]) -> None:
    config = load_config(str(write_scenario(users="[2, 20]")), {}, {"--repeats": "3"})
    plan = describe_plan(config)
    assert "12 steps" in plan and "measured 3 times" in plan
    assert "4 steps" in describe_plan(load_config(str(write_scenario(users="[2, 20]"))))


def test_a_new_attempt_at_a_repeat_gets_its_own_folder(tmp_path: Path) -> None:
    base = tmp_path / "raw" / SYNC / "u0002-r2"
    assert sweep.new_step_folder(base) == base
    assert sweep.new_step_folder(base).name == "u0002-r2-attempt2"


# --- resuming ---------------------------------------------------------------------------------------------------------


def fake_measure(calls: list[tuple[str, int, int]]) -> Callable[..., dict[str, Any]]:
    """measure_step without servers: records what was asked for and returns an ok record for it."""

    def measure(
        config: Any,
        planned: sweep.Step,
        run_dir: Path,
        cpus: CpuPlan,
        tick: Any = None,
        watch: Any = None,
        database: Any = None,
    ) -> dict[str, Any]:
        calls.append(planned.key)
        folder = sweep.new_step_folder(run_dir / "raw" / planned.folder_name)
        return step(planned.server.name, planned.users, rps=5.0, p50=100.0, p95=120.0, repeat=planned.repeat,
                    files=str(folder.relative_to(run_dir)))  # fmt: skip

    return measure


def test_resume_measures_only_the_missing_repeats_and_keeps_a_failed_ones_record(
    tmp_path: Path, write_scenario: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = write_scenario(users="[2]")
    scenario.write_text(scenario.read_text().replace("[load]\n", "[load]\nrepeats = 2\n"))
    run_dir = unfinished_run(tmp_path, scenario)
    config = load_config(str(scenario))
    doc = store.load_run(run_dir)
    kept = [
        step(SYNC, 2, rps=4.0, p50=90.0, p95=110.0, repeat=1),
        step(SYNC, 2, rps=4.5, p50=95.0, p95=115.0, repeat=2, files=f"raw/{SYNC}/u0002-r2"),
    ]
    failed = {**step(ASYNC, 2, rps=0.0, p50=0.0, p95=0.0, repeat=1), "status": "failed", "error": "server exited"}
    del failed["figures"]
    doc["steps"] = [kept[0], failed, kept[1]]
    (run_dir / "raw" / ASYNC / "u0002").mkdir(parents=True)  # the failed attempt's folder
    calls: list[tuple[str, int, int]] = []
    monkeypatch.setattr(sweep, "measure_step", fake_measure(calls))
    current = sweep.Run(run_dir, doc, CpuPlan(frozenset(), frozenset(), "not pinned (test)"))
    sweep.run_sweep(config, current, Console(file=io.StringIO()))

    assert calls == [(ASYNC, 2, 1), (ASYNC, 2, 2)]
    run = store.load_run(run_dir)
    assert run["status"] == "complete"
    assert run["missing_steps"] == []
    assert sorted(repeats.step_key(s) for s in run["steps"]) == sorted(
        (name, 2, r) for name in (SYNC, ASYNC) for r in (1, 2)
    )
    for record in kept:  # measured repeats are exactly as they were
        assert record in run["steps"]
    assert run["failed_attempts"] == [failed]
    files = {repeats.step_key(s): s["files"] for s in run["steps"]}
    assert files[(ASYNC, 2, 1)] == f"raw/{ASYNC}/u0002-attempt2"
    assert files[(ASYNC, 2, 2)] == f"raw/{ASYNC}/u0002-r2"


def test_an_interrupted_repeated_run_records_its_missing_repeats(
    tmp_path: Path, write_scenario: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = write_scenario(users="[2]")
    scenario.write_text(scenario.read_text().replace("[load]\n", "[load]\nrepeats = 2\n"))
    run_dir = unfinished_run(tmp_path, scenario)
    config = load_config(str(scenario))
    calls: list[tuple[str, int, int]] = []
    measure = fake_measure(calls)

    def interrupted_after_two(*args: Any, **kwargs: Any) -> dict[str, Any]:
        if len(calls) == 2:
            raise KeyboardInterrupt
        return measure(*args, **kwargs)

    monkeypatch.setattr(sweep, "measure_step", interrupted_after_two)
    current = sweep.Run(run_dir, store.load_run(run_dir), CpuPlan(frozenset(), frozenset(), "not pinned (test)"))
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(config, current, Console(file=io.StringIO()))
    run = store.load_run(run_dir)
    assert run["status"] == "interrupted"
    assert run["missing_steps"] == [
        {"server": SYNC, "users": 2, "repeat": 2},
        {"server": ASYNC, "users": 2, "repeat": 2},
    ]
    assert view_of(run).missing_steps() == [(SYNC, 2, 2), (ASYNC, 2, 2)]


def test_resume_refuses_a_different_repeat_count(
    tmp_path: Path, write_scenario: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = unfinished_run(tmp_path, write_scenario())
    assert main(["--resume", str(run_dir), "--repeats", "2", "--dry-run"]) == 2
    assert "load" in capsys.readouterr().err


def test_the_html_report_lists_a_repeated_level_once() -> None:
    run = repeated_run()
    for record in run["steps"]:
        record["command"] = ["python", "-m", record["server"], "--bind", f"127.0.0.1:{9000 + record['repeat']}"]
    assert [(server, levels) for server, levels, _ in html_report.server_commands(view_of(run))] == [
        (SYNC, USERS),
        (ASYNC, USERS),
    ]
