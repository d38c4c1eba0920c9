"""``python plots.py <folder>``: a thin command; what it prints and the exit codes it gives."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import plots
from runner import charts, render, store
from tests.runs import complete_run, save, save_experiment, timeline_data

ROOT = Path(__file__).resolve().parent.parent


def test_a_run_is_drawn_and_every_file_written_is_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = save(tmp_path, complete_run())
    assert plots.main([str(run_dir)]) == 0
    printed = capsys.readouterr().out.split()
    assert str(run_dir / render.REPORT_FILE) in printed
    assert str(run_dir / charts.CHARTS_DIR / "response_times.svg") in printed
    assert all(Path(p).is_file() for p in printed)


def test_a_partial_run_is_drawn_with_status_0(tmp_path: Path) -> None:
    """Drawing succeeded; the report says what is missing (the benchmark's own exit status is what says 1)."""
    run = complete_run()
    run["status"] = "interrupted"
    assert plots.main([str(save(tmp_path, run))]) == 0


def test_an_experiment_folder_is_drawn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = save_experiment(tmp_path / "t", store.TIMELINE_FILE, store.TIMELINE_FORMAT, timeline_data())
    assert plots.main([str(folder)]) == 0
    assert str(folder / charts.CHARTS_DIR / charts.CHART_FILES["timeline"]) in capsys.readouterr().out


def test_a_folder_that_is_not_a_run_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert plots.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(tmp_path / store.RUN_FILE) in err
    assert "Traceback" not in err


def test_an_unknown_format_version_exits_2_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = save_experiment(tmp_path / "t", store.TIMELINE_FILE, store.TIMELINE_FORMAT, timeline_data(), version=2)
    assert plots.main([str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"{folder / store.TIMELINE_FILE} has format version 2" in err


def test_a_damaged_figure_exits_2_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = complete_run()
    run["timeline"] = {"servers": {"flask-gunicorn-1": {"kind": "sync", "rounds": [[{"path": "/page"}]]}}}
    run_dir = save(tmp_path, run)
    assert plots.main([str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert f"error: {run_dir / store.RUN_FILE} has a damaged figure" in err
    assert "Traceback" not in err


def test_plots_is_a_thin_command() -> None:
    """Argument parsing and a call: the charts live in runner/charts.py, the rendering in runner/render.py."""
    source = (ROOT / "plots.py").read_text(encoding="utf-8")
    assert len(source.splitlines()) < 80
    functions = [n.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)]
    assert functions == ["main"]


def test_nothing_in_runner_imports_plots() -> None:
    """plots.py is the top of the house: the runner never reaches back up to it."""
    importers = []
    for path in sorted((ROOT / "runner").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                if "plots" in names:
                    importers.append(f"{path.name}:{node.lineno}")
    assert importers == []
