"""``python -m runner.compare A B``: what is printed, what is written, and the exit status of each outcome."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from runner.compare import EXIT_COULD_NOT_WRITE, EXIT_REFUSED, main
from runner.comparison import NOT_RECORDED, NOT_SIGNIFICANT, SPREAD_UNKNOWN
from tests.runs import ASYNC, SYNC, USERS, changed_config, sampled_run, sampled_step, sampled_steps, save_in


def run_compare(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, a: Path, b: Path, *extra: str
) -> tuple[int, str, str]:
    code = main([str(a), str(b), "--out-dir", str(tmp_path / "compare"), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text)


# --- compared ------------------------------------------------------------------------------------------------------


def test_a_comparison_is_printed_as_tables_and_written(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = save_in(tmp_path / "a", sampled_run())
    code, out, err = run_compare(capsys, tmp_path, run, run)
    assert code == 0
    assert err == ""
    assert "1.00" in out
    assert NOT_SIGNIFICANT in out
    assert "conservative" in out
    assert SYNC in out and ASYNC in out
    written = tmp_path / "compare" / "compare-a-vs-a.md"
    assert f"written: {written}" in one_line(out)
    assert "| flask-gunicorn | 50 |" in written.read_text(encoding="utf-8")


def test_the_table_lists_steps_missing_from_a_run_and_unknown_spreads(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a = save_in(tmp_path / "a", sampled_run(sampled_steps(with_ci=False)))
    steps = [sampled_step(SYNC, 5), sampled_step(ASYNC, 5, status="failed"), sampled_step(ASYNC, 50)]
    b = save_in(tmp_path / "b", sampled_run(steps, status="interrupted"))
    code, out, _ = run_compare(capsys, tmp_path, a, b)
    assert code == 0
    assert "only in A" in out and "missing" in out and "failed" in out
    assert SPREAD_UNKNOWN in out and NOT_RECORDED in out
    assert "interrupted" in out


def test_json_is_printed_instead_and_names_the_markdown_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a = save_in(tmp_path / "a", sampled_run())
    code, out, err = run_compare(capsys, tmp_path, a, a, "--json")
    assert code == 0
    data: dict[str, Any] = json.loads(out)
    assert Path(data["markdown"]).is_file()
    assert f"written: {data['markdown']}" in one_line(err)
    assert data["scenario"] == "tiny"
    assert data["a"]["path"] == str(a)
    assert len(data["steps"]) == 2 * len(USERS)
    assert {row["rps"]["verdict"] for row in data["steps"]} == {NOT_SIGNIFICANT}


def test_the_markdown_file_is_written_and_never_overwritten(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a = save_in(tmp_path / "20260101T000000Z-default", sampled_run())
    b = save_in(tmp_path / "20260102T000000Z-default", sampled_run())
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


def test_a_run_folder_name_becomes_a_safe_file_name(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a = save_in(tmp_path / "my run (1)", sampled_run())
    assert run_compare(capsys, tmp_path, a, a)[0] == 0
    assert (tmp_path / "compare" / "compare-my_run_1-vs-my_run_1.md").is_file()


def test_a_markdown_file_that_cannot_be_written_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a = save_in(tmp_path / "a", sampled_run())
    (tmp_path / "compare").write_text("a file where the folder should be\n", encoding="utf-8")
    code, out, err = run_compare(capsys, tmp_path, a, a)
    assert code == EXIT_COULD_NOT_WRITE == 1
    assert out == ""
    assert "could not write the comparison under" in one_line(err)
    assert str(tmp_path / "compare") in one_line(err)


# --- refused -------------------------------------------------------------------------------------------------------


def _refused(tmp_path: Path, what: str) -> tuple[Path, Path, list[str]]:
    """Run A and a path B that may not be compared with it, and what the refusal must name."""
    a = save_in(tmp_path / "a", sampled_run())
    if what == "another scenario":
        b = save_in(tmp_path / "b", sampled_run(config_doc=changed_config(name="quick")))
        return a, b, [str(a / "run.json"), str(b / "run.json"), "'tiny'", "'quick'"]
    if what == "changed settings":
        b = save_in(tmp_path / "b", sampled_run(config_doc=changed_config(**{"load.measure_s": 30})))
        return a, b, ["settings differ", "load.measure_s (10 in A, 30 in B)"]
    if what == "a changed file":
        b = save_in(tmp_path / "b", sampled_run(config_doc=changed_config(source_sha256="b" * 64)))
        return a, b, ["sha256", "bbbbbbbbbbbb"]
    if what == "an unknown format version":
        run = sampled_run()
        run["format_version"] = 99
        b = save_in(tmp_path / "b", run)
        return a, b, ["run B", str(b / "run.json"), "format version 99"]
    if what == "no run folder":
        return a, tmp_path / "nowhere", ["run B", str(tmp_path / "nowhere"), "run folder"]
    report = tmp_path / "report.md"
    report.write_text("# not a run\n", encoding="utf-8")
    return a, report, ["run B", str(report)]


@pytest.mark.parametrize(
    "what",
    [
        "another scenario",
        "changed settings",
        "a changed file",
        "an unknown format version",
        "no run folder",
        "a file that is not a run",
    ],
)
def test_a_refusal_exits_2_names_what_is_wrong_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, what: str
) -> None:
    a, b, named = _refused(tmp_path, what)
    code, out, err = run_compare(capsys, tmp_path, a, b)
    assert code == EXIT_REFUSED == 2
    assert out == ""
    message = one_line(err)
    assert message.startswith("error: cannot compare: ")
    for text in named:
        assert text in message
    assert not (tmp_path / "compare").exists()


def test_a_refused_baseline_is_named_as_run_a(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    b = save_in(tmp_path / "b", sampled_run())
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_compare(capsys, tmp_path, empty, b)
    assert code == EXIT_REFUSED
    assert "run A" in one_line(err) and str(empty) in one_line(err)
