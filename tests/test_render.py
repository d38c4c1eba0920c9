"""Rendering a run folder from its run.json alone: charts, summary, report.md and report.html."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import plots
from runner import report, store
from tests.runs import ASYNC, PNG_SIGNATURE, SYNC, complete_run, save, step

# --- plots.render -----------------------------------------------------------------------------------------------------


def assert_png(path: Path) -> None:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert path.stat().st_size > 1000


def test_render_draws_everything_from_run_json_alone(tmp_path: Path) -> None:
    run_dir = save(tmp_path, complete_run())
    written = plots.render(run_dir)
    assert_png(run_dir / "charts" / "response_times.png")
    assert_png(run_dir / "charts" / "throughput.png")
    assert set(written) == {
        run_dir / "charts" / "response_times.png",
        run_dir / "charts" / "throughput.png",
        run_dir / "charts" / "resources.png",
        run_dir / "summary.csv",
        run_dir / "report.md",
        run_dir / "report.html",
    }
    with (run_dir / "summary.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["server"], r["users"]) for r in rows] == [(SYNC, "5"), (ASYNC, "5"), (SYNC, "50"), (ASYNC, "50")]
    text = (run_dir / "report.md").read_text(encoding="utf-8")
    assert text == report.markdown(store.load_run(run_dir))
    assert "charts/response_times.png" in text
    leftovers = [p.name for p in (run_dir / "charts").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_render_works_with_a_failed_step_and_a_client_limited_one(tmp_path: Path) -> None:
    run = complete_run()
    run["steps"][2] = {**step(SYNC, 50, rps=0, p50=0, p95=0), "status": "failed", "error": "server exited"}
    del run["steps"][2]["figures"]
    run["steps"][3]["saturated"] = "client"
    run["status"] = "incomplete"
    run_dir = save(tmp_path, run)
    plots.render(run_dir)
    assert_png(run_dir / "charts" / "response_times.png")
    assert_png(run_dir / "charts" / "throughput.png")
    text = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "This run is incomplete" in text
    assert f"Failed: {SYNC} at 50 users: server exited" in text
    assert plots.exit_status(run_dir) == 1


def test_render_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(store.ResultsError):
        plots.render(tmp_path)
    assert not (tmp_path / "charts").exists()


def test_exit_status_of_a_complete_run_is_0(tmp_path: Path) -> None:
    assert plots.exit_status(save(tmp_path, complete_run())) == 0


def test_exit_status_of_an_interrupted_run_is_1(tmp_path: Path) -> None:
    run = complete_run()
    run["status"] = "interrupted"
    assert plots.exit_status(save(tmp_path, run)) == 1
