"""Rendering a results folder from its saved data alone: a run's charts (PNG and SVG), summary, report.md and
report.html from run.json; an experiment's chart from its timeline.json or burst.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner import charts, render, report, store
from runner.view import RunView
from tests.runs import (
    ASYNC,
    PNG_SIGNATURE,
    SYNC,
    burst_data,
    complete_run,
    read_summary,
    run_with_experiments,
    save,
    save_experiment,
    step,
    timeline_data,
)

RUN_CHARTS = ["response_times", "throughput", "resources"]


def assert_chart(folder: Path, name: str) -> None:
    """A PNG of some substance, and its SVG beside it."""
    png = folder / charts.CHARTS_DIR / charts.CHART_FILES[name]
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert png.stat().st_size > 1000
    assert png.with_suffix(".svg").read_text(encoding="utf-8").startswith("<?xml")


def chart_files(folder: Path, *names: str) -> set[Path]:
    pngs = [folder / charts.CHARTS_DIR / charts.CHART_FILES[name] for name in names]
    return {*pngs, *(p.with_suffix(".svg") for p in pngs)}


def test_render_draws_everything_from_run_json_alone(tmp_path: Path) -> None:
    run_dir = save(tmp_path, complete_run())
    written = render.render(run_dir)
    for name in RUN_CHARTS:
        assert_chart(run_dir, name)
    assert set(written) == chart_files(run_dir, *RUN_CHARTS) | {
        run_dir / store.SUMMARY_FILE,
        run_dir / render.REPORT_FILE,
        run_dir / "report.html",
    }
    rows = read_summary(run_dir)
    assert [(r["server"], r["users"]) for r in rows] == [(SYNC, "5"), (ASYNC, "5"), (SYNC, "50"), (ASYNC, "50")]
    text = (run_dir / render.REPORT_FILE).read_text(encoding="utf-8")
    assert text == report.markdown(RunView.load(run_dir))
    assert "charts/response_times.png" in text
    assert (run_dir / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    leftovers = [p.name for p in (run_dir / charts.CHARTS_DIR).iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_render_draws_the_timeline_and_the_burst_when_the_run_measured_them(tmp_path: Path) -> None:
    run_dir = save(tmp_path, run_with_experiments())
    written = render.render(run_dir)
    assert chart_files(run_dir, "timeline", "burst") <= set(written)
    assert_chart(run_dir, "timeline")
    assert_chart(run_dir, "burst")


def test_render_draws_no_burst_when_every_server_of_it_failed(tmp_path: Path) -> None:
    run = run_with_experiments()
    run["burst"]["servers"] = {name: {"kind": s["kind"], "error": "Locust died"} for name, s in
                               run["burst"]["servers"].items()}  # fmt: skip
    run_dir = save(tmp_path, run)
    render.render(run_dir)
    assert not (run_dir / charts.CHARTS_DIR / charts.CHART_FILES["burst"]).exists()


def test_render_works_with_a_failed_step_and_a_client_limited_one(tmp_path: Path) -> None:
    run = complete_run()
    run["steps"][2] = {**step(SYNC, 50, rps=0, p50=0, p95=0), "status": "failed", "error": "server exited"}
    del run["steps"][2]["figures"]
    run["steps"][3]["saturated"] = "client"
    run["status"] = "incomplete"
    run_dir = save(tmp_path, run)
    render.render(run_dir)
    for name in RUN_CHARTS:
        assert_chart(run_dir, name)
    text = (run_dir / render.REPORT_FILE).read_text(encoding="utf-8")
    assert "This run is incomplete" in text
    assert f"Failed: {SYNC} at 50 users: server exited" in text
    assert render.exit_status(run_dir) == 1


def test_render_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(store.ResultsError, match="does not exist"):
        render.render(tmp_path)
    assert not (tmp_path / charts.CHARTS_DIR).exists()


def test_exit_status_of_a_complete_run_is_0(tmp_path: Path) -> None:
    assert render.exit_status(save(tmp_path, complete_run())) == 0


def test_exit_status_of_an_interrupted_run_is_1(tmp_path: Path) -> None:
    run = complete_run()
    run["status"] = "interrupted"
    assert render.exit_status(save(tmp_path, run)) == 1


# --- a folder an experiment wrote alone ----------------------------------------------------------------------------


def test_a_timeline_folder_renders_its_chart(tmp_path: Path) -> None:
    folder = save_experiment(tmp_path / "t", store.TIMELINE_FILE, store.TIMELINE_FORMAT, timeline_data())
    assert render.is_experiment(folder)
    assert set(render.render(folder)) == chart_files(folder, "timeline")
    assert_chart(folder, "timeline")
    assert render.exit_status(folder) == 0
    assert not (folder / render.REPORT_FILE).exists()


def test_a_burst_folder_renders_its_chart_and_fails_when_a_server_failed(tmp_path: Path) -> None:
    data = burst_data()
    folder = save_experiment(tmp_path / "b", store.BURST_FILE, store.BURST_FORMAT, data)
    assert set(render.render(folder)) == chart_files(folder, "burst")
    assert_chart(folder, "burst")
    assert render.exit_status(folder) == 0
    data["servers"][SYNC] = {"kind": "sync", "error": "Locust died"}
    save_experiment(folder, store.BURST_FILE, store.BURST_FORMAT, data)
    assert render.exit_status(folder) == 1


def test_an_experiment_file_of_an_unknown_version_is_refused(tmp_path: Path) -> None:
    folder = save_experiment(tmp_path / "t", store.TIMELINE_FILE, store.TIMELINE_FORMAT, timeline_data(), version=99)
    with pytest.raises(store.ResultsError, match=r"timeline\.json has format version 99"):
        render.render(folder)
    assert not (folder / charts.CHARTS_DIR).exists()


def test_a_folder_with_run_json_is_a_run_whatever_else_it_holds(tmp_path: Path) -> None:
    run_dir = save(tmp_path, complete_run())
    save_experiment(run_dir, store.TIMELINE_FILE, store.TIMELINE_FORMAT, timeline_data())
    assert not render.is_experiment(run_dir)
    assert run_dir / render.REPORT_FILE in render.render(run_dir)
