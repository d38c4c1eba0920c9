"""Comparing two runs: what is refused, how each difference is judged, and what a reader is told."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from runner import compare, files, report, store
from runner.compare import NOT_RECORDED, NOT_SIGNIFICANT, SPREAD_UNKNOWN, TOO_FEW, Spread, main
from tests.runs import ASYNC, complete_run, repeated_run

SERVERS: list[dict[str, Any]] = [
    {"name": "flask-gunicorn", "server": "gunicorn", "workers": 3},
    {"name": "fastapi-uvicorn", "server": "uvicorn", "workers": 1},
]
USERS = [5, 50]


def config(**changes: Any) -> dict[str, Any]:
    """A run's recorded configuration, shaped as runner.config records it; ``changes`` maps dotted names."""
    data: dict[str, Any] = {
        "name": "default",
        "description": "test",
        "source": "/somewhere/scenarios/default.toml",
        "source_sha256": "a" * 64,
        "load": {
            "users": list(USERS),
            "warmup_s": 5,
            "measure_s": 12,
            "drain_s": 15,
            "think_time_s": [2.0, 8.0],
            "request_timeout_s": 30,
            "page_weight": 4,
            "short_weight": 1,
        },
        "workload": {
            "user_lookup_ms": 20,
            "listing_ms": 80,
            "app_work_ms": 10,
            "listing_rows": 20,
            "short_query_ms": 10,
        },
        "database": {"capacity": 0, "jitter": 0.1, "seed": 1},
        "servers": copy.deepcopy(SERVERS),
        "run": {"pin_cpus": True, "server_cores": 1, "startup_timeout_s": 30.0, "results_dir": "results"},
        "overrides": [],
    }
    for name, value in changes.items():
        *path, last = name.split(".")
        table = data
        for part in path:
            table = table[part]
        table[last] = value
    return data


def step(
    server: str,
    users: int,
    *,
    completed: int = 600,
    window_s: float = 12.0,
    p95: float | None = 150.0,
    p95_ci: list[float] | None = None,
    with_ci: bool = True,
    status: str = "ok",
) -> dict[str, Any]:
    """One step as the sweep records it; ``with_ci=False`` writes it as runs before the intervals did."""
    kind = "sync" if server == "flask-gunicorn" else "async"
    record: dict[str, Any] = {"server": server, "kind": kind, "workers": 1, "users": users, "status": status}
    if status != "ok":
        record["error"] = "the server died"
        return record
    latency: dict[str, Any] = {"requests": completed, "failures": 0, "p50_ms": 120.0, "p95_ms": p95}
    if with_ci:
        latency["p50_ci_ms"] = [118.0, 122.0]
        latency["p95_ci_ms"] = p95_ci if p95_ci is not None else ([p95 - 10, p95 + 10] if p95 is not None else None)
    record["figures"] = {
        "window_s": window_s,
        "latency": latency,
        "endpoints": {},
        "completed_in_window": completed,
        "rps": completed / window_s,
    }
    return record


def all_steps(**kwargs: Any) -> list[dict[str, Any]]:
    return [step(s["name"], n, **kwargs) for n in USERS for s in SERVERS]


def write_run(
    folder: Path,
    steps: list[dict[str, Any]] | None = None,
    cfg: dict[str, Any] | None = None,
    status: str = "complete",
    **changes: Any,
) -> Path:
    doc = store.new_run_document(cfg if cfg is not None else config(), {"cpu_count": 2, "git": {"commit": "abc"}})
    doc["status"] = status
    doc["steps"] = steps if steps is not None else all_steps()
    doc.update(changes)
    files.write_json(folder / store.RUN_FILE, doc)
    return folder


def run_compare(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, a: Path, b: Path, *extra: str
) -> tuple[int, str, str]:
    code = main([str(a), str(b), "--out-dir", str(tmp_path / "compare"), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def compare_json(capsys: pytest.CaptureFixture[str], tmp_path: Path, a: Path, b: Path) -> dict[str, Any]:
    code, out, _ = run_compare(capsys, tmp_path, a, b, "--json")
    assert code == 0
    data: dict[str, Any] = json.loads(out)
    return data


def by_step(data: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(s["server"], s["users"]): s for s in data["steps"]}


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text)


# --- comparing -----------------------------------------------------------------------------------------------------


def test_a_run_compared_with_itself_differs_nowhere(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = write_run(tmp_path / "a")
    data = compare_json(capsys, tmp_path, run, run)
    assert len(data["steps"]) == len(SERVERS) * len(USERS)
    for row in data["steps"]:
        assert row["status"] == "compared"
        for key in ("rps", "p95_ms"):
            assert row[key]["ratio"] == 1.0
            assert row[key]["verdict"] == NOT_SIGNIFICANT


def test_the_table_shows_ratios_verdicts_and_says_the_rule_is_conservative(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run = write_run(tmp_path / "a")
    code, out, _ = run_compare(capsys, tmp_path, run, run)
    assert code == 0
    assert "1.00" in out
    assert NOT_SIGNIFICANT in out
    assert "conservative" in out
    assert "flask-gunicorn" in out and "fastapi-uvicorn" in out


def test_differences_beyond_both_spreads_are_called_and_their_direction_given(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a = write_run(tmp_path / "a", all_steps(completed=600, p95=150.0))
    # 900 completions against 600: Poisson intervals [552, 650] and [842, 960] do not overlap. p95 100 +- 10 ms
    # against 150 +- 10 ms do not either.
    b = write_run(tmp_path / "b", all_steps(completed=900, p95=100.0))
    row = by_step(compare_json(capsys, tmp_path, a, b))[("fastapi-uvicorn", 50)]
    assert row["rps"]["verdict"] == "B higher"
    assert row["rps"]["ratio"] == pytest.approx(1.5)
    assert row["p95_ms"]["verdict"] == "B lower"
    assert row["p95_ms"]["ratio"] == pytest.approx(100 / 150)


def test_differences_inside_the_spreads_are_not_significant(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", all_steps(completed=600, p95=150.0))
    # 630 against 600 completions: well inside each other's Poisson interval; p95 intervals [145, 165] and
    # [140, 160] overlap.
    b = write_run(tmp_path / "b", all_steps(completed=630, p95=155.0, p95_ci=[145.0, 165.0]))
    a_steps = json.loads((a / store.RUN_FILE).read_text(encoding="utf-8"))["steps"]
    assert a_steps[0]["figures"]["latency"]["p95_ci_ms"] == [140.0, 160.0]
    row = by_step(compare_json(capsys, tmp_path, a, b))[("flask-gunicorn", 50)]
    assert row["rps"]["verdict"] == NOT_SIGNIFICANT
    assert row["rps"]["ratio"] == pytest.approx(1.05)
    assert row["p95_ms"]["verdict"] == NOT_SIGNIFICANT


def test_a_step_in_only_one_run_is_listed_not_compared(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a = write_run(tmp_path / "a")
    steps = [
        step("flask-gunicorn", 5),
        step("fastapi-uvicorn", 5, status="failed"),
        step("fastapi-uvicorn", 50),
        # flask-gunicorn at 50 users never ran: the run was interrupted.
    ]
    b = write_run(tmp_path / "b", steps, status="interrupted")
    data = compare_json(capsys, tmp_path, a, b)
    rows = by_step(data)
    assert rows[("flask-gunicorn", 5)]["status"] == "compared"
    assert rows[("fastapi-uvicorn", 5)]["status"] == "only in A"
    assert rows[("fastapi-uvicorn", 5)]["detail"] == "B: failed"
    assert rows[("flask-gunicorn", 50)]["status"] == "only in A"
    assert rows[("flask-gunicorn", 50)]["detail"] == "B: missing"
    assert rows[("flask-gunicorn", 50)]["rps"]["b"] is None
    assert rows[("flask-gunicorn", 50)]["rps"]["ratio"] is None
    assert any("interrupted" in note for note in data["notes"])
    code, out, _ = run_compare(capsys, tmp_path, a, b)
    assert code == 0
    assert "only in A" in out and "missing" in out and "failed" in out


def test_a_step_in_neither_run_is_listed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    partial = [step("flask-gunicorn", 5), step("fastapi-uvicorn", 5)]
    a = write_run(tmp_path / "a", partial, status="interrupted")
    b = write_run(tmp_path / "b", [*partial, step("fastapi-uvicorn", 50, status="failed")], status="incomplete")
    rows = by_step(compare_json(capsys, tmp_path, a, b))
    assert rows[("fastapi-uvicorn", 50)]["status"] == "in neither"
    assert rows[("fastapi-uvicorn", 50)]["detail"] == "A: missing, B: failed"


def test_runs_without_recorded_intervals_say_the_spread_is_unknown(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    old = write_run(tmp_path / "old", all_steps(with_ci=False, p95=150.0))
    new = write_run(tmp_path / "new", all_steps(p95=300.0))
    row = by_step(compare_json(capsys, tmp_path, old, new))[("flask-gunicorn", 50)]
    # p95 doubled, but without A's interval nothing is claimed about it.
    assert row["p95_ms"]["verdict"] == SPREAD_UNKNOWN
    assert row["p95_ms"]["why"] == f"A: {NOT_RECORDED}"
    assert row["p95_ms"]["ratio"] == pytest.approx(2.0)
    # Throughput's spread comes from the completion count, which every run records.
    assert row["rps"]["verdict"] == NOT_SIGNIFICANT
    code, out, _ = run_compare(capsys, tmp_path, old, old)
    assert code == 0
    assert SPREAD_UNKNOWN in out and NOT_RECORDED in out


def test_too_few_requests_for_an_interval_is_stated(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    steps = all_steps()
    steps[0]["figures"]["latency"]["p95_ci_ms"] = None
    a = write_run(tmp_path / "a", steps)
    row = by_step(compare_json(capsys, tmp_path, a, a))[(steps[0]["server"], steps[0]["users"])]
    assert row["p95_ms"]["verdict"] == SPREAD_UNKNOWN
    assert row["p95_ms"]["why"] == TOO_FEW


def test_a_step_without_a_p95_has_no_figure_to_compare(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", all_steps(p95=None))
    row = by_step(compare_json(capsys, tmp_path, a, a))[("flask-gunicorn", 5)]
    assert row["p95_ms"]["verdict"] == compare.NO_FIGURE
    assert row["p95_ms"]["ratio"] is None
    assert row["rps"]["verdict"] == NOT_SIGNIFICANT


# --- refusals ------------------------------------------------------------------------------------------------------


def test_runs_of_different_scenarios_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", cfg=config(name="quick"))
    code, out, err = run_compare(capsys, tmp_path, a, b)
    assert code == 2
    assert out == ""
    message = one_line(err)
    assert str(a / "run.json") in message and str(b / "run.json") in message
    assert "'default'" in message and "'quick'" in message
    assert not (tmp_path / "compare").exists()


def test_a_changed_scenario_file_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", cfg=config(source_sha256="b" * 64))
    code, _, err = run_compare(capsys, tmp_path, a, b)
    assert code == 2
    message = one_line(err)
    assert "sha256" in message and "aaaaaaaaaaaa" in message and "bbbbbbbbbbbb" in message
    assert "no recorded setting differs" in message


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"load.think_time_s": [1.0, 4.0]}, ["load.think_time_s ([2.0, 8.0] in A, [1.0, 4.0] in B)"]),
        (
            {"workload.listing_ms": 40, "load.measure_s": 30},
            ["workload.listing_ms (80 in A, 40 in B)", "load.measure_s"],
        ),
        ({"load.users": [5, 50, 500]}, ["load.users"]),
        ({"run.pin_cpus": False}, ["run.pin_cpus"]),
    ],
)
def test_changed_settings_are_refused_and_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, changes: dict[str, Any], named: list[str]
) -> None:
    # Same file (same sha256), settings changed by overrides.
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", cfg=config(**changes))
    code, _, err = run_compare(capsys, tmp_path, a, b)
    assert code == 2
    message = one_line(err)
    assert "settings differ" in message
    for text in named:
        assert text in message
    assert "sha256" not in message


def test_a_changed_server_is_refused_and_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    servers = copy.deepcopy(SERVERS)
    servers[0]["workers"] = 9
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", cfg=config(servers=servers))
    code, _, err = run_compare(capsys, tmp_path, a, b)
    assert code == 2
    assert "servers[0].workers (3 in A, 9 in B)" in one_line(err)


def test_where_the_results_went_is_not_a_setting(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", cfg=config(**{"run.results_dir": "/elsewhere", "source": "/moved/default.toml"}))
    assert run_compare(capsys, tmp_path, a, b)[0] == 0


def test_an_unknown_format_version_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", format_version=99)
    code, _, err = run_compare(capsys, tmp_path, a, b)
    assert code == 2
    message = one_line(err)
    assert "run B" in message
    assert str(b / "run.json") in message
    assert "format version 99" in message


@pytest.mark.parametrize("what", ["an empty folder", "no such path", "a soak folder"])
def test_a_path_that_is_not_a_run_folder_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, what: str
) -> None:
    a = write_run(tmp_path / "a")
    other = tmp_path / "other"
    if what == "an empty folder":
        other.mkdir()
    elif what == "a soak folder":
        other.mkdir()
        (other / "soak.json").write_text("{}", encoding="utf-8")
    code, out, err = run_compare(capsys, tmp_path, other, a)
    assert code == 2
    assert out == ""
    message = one_line(err)
    assert "run A" in message
    assert str(other) in message
    assert "run folder" in message


def test_a_file_that_is_not_a_run_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a = write_run(tmp_path / "a")
    report = tmp_path / "report.md"
    report.write_text("# not a run\n", encoding="utf-8")
    code, _, err = run_compare(capsys, tmp_path, a, report)
    assert code == 2
    assert str(report) in one_line(err)


# --- the markdown file -----------------------------------------------------------------------------------------------


def test_the_markdown_file_is_written_and_never_overwritten(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a = write_run(tmp_path / "20260101T000000Z-default")
    b = write_run(tmp_path / "20260102T000000Z-default")
    out_dir = tmp_path / "compare"
    assert run_compare(capsys, tmp_path, a, b)[0] == 0
    first = out_dir / "compare-20260101T000000Z-default-vs-20260102T000000Z-default.md"
    text = first.read_text(encoding="utf-8")
    assert "| flask-gunicorn | 50 |" in text
    assert NOT_SIGNIFICANT in text
    assert "conservative" in text
    first.write_text("kept\n", encoding="utf-8")
    code, out, _ = run_compare(capsys, tmp_path, a, b)
    assert code == 0
    second = out_dir / "compare-20260101T000000Z-default-vs-20260102T000000Z-default-2.md"
    assert second.is_file()
    assert str(second) in one_line(out)
    assert first.read_text(encoding="utf-8") == "kept\n"
    assert {p.name for p in out_dir.iterdir()} == {first.name, second.name}  # no temporary file left


def test_json_names_the_markdown_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a = write_run(tmp_path / "a")
    data = compare_json(capsys, tmp_path, a, a)
    assert Path(data["markdown"]).is_file()
    assert data["scenario"] == "default"
    assert data["a"]["path"] == str(a)


# --- the spread, ready for repeats -----------------------------------------------------------------------------------


def test_repeats_give_their_min_to_max_as_the_spread_and_their_median_as_the_figure() -> None:
    rps = compare.METRICS[0]
    repeats = [{"rps": 10.0}, {"rps": 12.0}, {"rps": 11.5}]
    assert compare.spread(rps, repeats) == Spread((10.0, 12.0), "min..max of 3 repeats")
    assert compare.point(rps, repeats) == 11.5


def test_one_measurement_gives_its_own_samples_interval() -> None:
    rps = compare.METRICS[0]
    spread = compare.spread(rps, [{"rps": 1.0, "completed_in_window": 10, "window_s": 10.0}])
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
    word, _ = compare.verdict(sum(a) / 2, sum(b) / 2, Spread(a, "test"), Spread(b, "test"))
    assert word == expected


def test_verdict_never_guesses_a_missing_spread() -> None:
    known, unknown = Spread((1.0, 2.0), "test"), Spread(None, NOT_RECORDED)
    assert compare.verdict(1.5, 100.0, known, unknown) == (SPREAD_UNKNOWN, f"B: {NOT_RECORDED}")
    assert compare.verdict(1.5, 1.5, unknown, unknown) == (SPREAD_UNKNOWN, NOT_RECORDED)


# --- the comparison ---------------------------------------------------------------------------------------------------


def test_compare_measurements_are_every_repeats_figures() -> None:
    run = repeated_run({(ASYNC, 50): [(10.0, 100.0, 150.0), (12.0, 104.0, 200.0), (11.0, 102.0, 160.0)]})
    record = report.steps_by_level(run)[(ASYNC, 50)]
    assert [f["rps"] for f in compare.measurements(record)] == [10.0, 12.0, 11.0]
    plain = complete_run()["steps"][0]
    assert compare.measurements(plain) == [plain["figures"]]


def test_compare_judges_repeated_steps_by_their_min_to_max(tmp_path: Path) -> None:
    a = repeated_run({(ASYNC, 50): [(10.0, 100.0, 150.0), (12.0, 104.0, 200.0), (11.0, 102.0, 160.0)]})
    b = repeated_run({(ASYNC, 50): [(11.5, 100.0, 150.0), (13.0, 104.0, 200.0), (12.5, 102.0, 160.0)]})
    c = repeated_run({(ASYNC, 50): [(20.0, 100.0, 150.0), (21.0, 104.0, 200.0), (22.0, 102.0, 160.0)]})
    loaded = [
        compare.LoadedRun(label, tmp_path / label / store.RUN_FILE, doc)
        for label, doc in zip("ABC", (a, b, c), strict=True)
    ]
    for other, verdict in ((loaded[1], compare.NOT_SIGNIFICANT), (loaded[2], "B higher")):
        compare.check_comparable(loaded[0], other)
        row = next(r for r in compare.compare(loaded[0], other).rows if (r.server, r.users) == (ASYNC, 50))
        rps = row.figures[0]
        assert rps.spread_a == compare.Spread((10.0, 12.0), "min..max of 3 repeats")
        assert rps.a == 11.0
        assert rps.verdict == verdict


def test_a_run_recorded_before_repeats_compares_with_one_that_says_repeats_1(tmp_path: Path) -> None:
    old, new = complete_run(), complete_run()
    new["config"]["load"]["repeats"] = 1
    compare.check_comparable(
        compare.LoadedRun("A", tmp_path / "a", old), compare.LoadedRun("B", tmp_path / "b", new)
    )  # does not raise
    three = repeated_run()
    with pytest.raises(compare.CompareError, match=r"load\.repeats"):
        compare.check_comparable(
            compare.LoadedRun("A", tmp_path / "a", old), compare.LoadedRun("B", tmp_path / "b", three)
        )
