"""Run folders and result files: never overwritten, written atomically, and refused when they are not ours."""

from __future__ import annotations

import csv
import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runner import files, store
from runner.store import ResultsError

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def valid_run() -> dict[str, Any]:
    config = {"name": "t", "load": {"users": [5]}, "servers": [{"name": "s", "server": "uvicorn", "workers": 1}]}
    return store.new_run_document(config, {"cpu_count": 2})


def write_run(run_dir: Path, data: Any) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / store.RUN_FILE
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# --- run folders -----------------------------------------------------------------------------------------------------


def test_new_run_dir_is_named_after_the_time_and_scenario(tmp_path: Path) -> None:
    run_dir = store.new_run_dir(tmp_path, "quick", NOW)
    assert run_dir.is_dir()
    assert run_dir.parent == tmp_path
    assert run_dir.name == "20260102T030405Z-quick"


def test_new_run_dir_never_reuses_a_folder(tmp_path: Path) -> None:
    first = store.new_run_dir(tmp_path, "quick", NOW)
    (first / "keep.txt").write_text("measured", encoding="utf-8")
    second = store.new_run_dir(tmp_path, "quick", NOW)
    third = store.new_run_dir(tmp_path, "quick", NOW)
    assert len({first, second, third}) == 3
    assert all(p.is_dir() for p in (first, second, third))
    assert list(second.iterdir()) == []
    assert (first / "keep.txt").read_text(encoding="utf-8") == "measured"


def test_new_run_dir_creates_the_results_root(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "results"
    assert store.new_run_dir(root, "default", NOW).parent == root


# --- writing JSON ----------------------------------------------------------------------------------------------------


def test_write_json_writes_valid_json_and_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    files.write_json(path, {"steps": [1, 2], "name": "t"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"steps": [1, 2], "name": "t"}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_write_json_replaces_the_previous_content(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    files.write_json(path, {"version": 1})
    files.write_json(path, {"version": 2})
    assert json.loads(path.read_text(encoding="utf-8")) == {"version": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_write_json_stores_non_finite_numbers_as_null(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    files.write_json(path, {"p50": math.nan, "nested": [{"max": math.inf}, -math.inf, 1.5], "t": (math.nan,)})
    text = path.read_text(encoding="utf-8")
    assert "NaN" not in text
    assert "Infinity" not in text
    assert json.loads(text) == {"p50": None, "nested": [{"max": None}, None, 1.5], "t": [None]}


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    files.write_json(path, {"version": 1})
    with pytest.raises(TypeError):
        files.write_json(path, {"version": 2, "oops": object()})
    assert json.loads(path.read_text(encoding="utf-8")) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


# --- loading a run ----------------------------------------------------------------------------------------------------


def test_load_run_reads_a_run_folder_and_its_file(tmp_path: Path) -> None:
    run = valid_run()
    path = write_run(tmp_path / "run", run)
    assert store.load_run(tmp_path / "run") == run
    assert store.load_run(path) == run


def test_load_run_reads_what_write_json_wrote(tmp_path: Path) -> None:
    run = valid_run()
    run["steps"].append(
        {"server": "s", "kind": "async", "users": 5, "workers": 1, "status": "failed", "figures": {"p50_ms": math.nan}}
    )
    files.write_json(tmp_path / store.RUN_FILE, run)
    assert store.load_run(tmp_path)["steps"][0]["figures"]["p50_ms"] is None


def test_load_run_refuses_a_folder_without_run_json(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match=r"run\.json") as caught:
        store.load_run(tmp_path)
    assert str(tmp_path) in str(caught.value)


def test_load_run_refuses_a_path_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="does not exist"):
        store.load_run(tmp_path / "gone")


def test_load_run_refuses_corrupt_json_and_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / store.RUN_FILE
    path.write_text('{"format": "sync-async-bench/run", "steps": [', encoding="utf-8")
    with pytest.raises(ResultsError, match="corrupt") as caught:
        store.load_run(tmp_path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("data", [[1, 2], "run", {"format": "someone-else/run", "format_version": 1}, {}])
def test_load_run_refuses_a_file_of_another_format(tmp_path: Path, data: Any) -> None:
    write_run(tmp_path, data)
    with pytest.raises(ResultsError, match="format"):
        store.load_run(tmp_path)


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_load_run_refuses_an_unknown_format_version(tmp_path: Path, version: Any) -> None:
    run = valid_run()
    run["format_version"] = version
    write_run(tmp_path, run)
    with pytest.raises(ResultsError, match="format version"):
        store.load_run(tmp_path)


@pytest.mark.parametrize("section", ["metadata", "config", "steps", "status"])
def test_load_run_refuses_a_run_missing_a_section(tmp_path: Path, section: str) -> None:
    run = valid_run()
    del run[section]
    write_run(tmp_path, run)
    with pytest.raises(ResultsError, match=section):
        store.load_run(tmp_path)


def test_new_run_document_starts_running_with_no_steps() -> None:
    run = valid_run()
    assert run["format"] == store.FORMAT
    assert run["format_version"] == store.FORMAT_VERSION
    assert run["status"] == "running"
    assert run["steps"] == []


# --- results/latest ---------------------------------------------------------------------------------------------------


def test_point_latest_makes_a_relative_symlink(tmp_path: Path) -> None:
    run_dir = store.new_run_dir(tmp_path, "quick", NOW)
    store.point_latest(tmp_path, run_dir)
    link = tmp_path / "latest"
    assert link.is_symlink()
    assert not os.path.isabs(os.readlink(link))
    assert link.resolve() == run_dir.resolve()


def test_point_latest_survives_moving_the_results_folder(tmp_path: Path) -> None:
    root = tmp_path / "results"
    run_dir = store.new_run_dir(root, "quick", NOW)
    store.point_latest(root, run_dir)
    moved = root.rename(tmp_path / "moved")
    assert (moved / "latest").resolve() == (moved / run_dir.name).resolve()


def test_point_latest_replaces_an_older_link(tmp_path: Path) -> None:
    older = store.new_run_dir(tmp_path, "quick", NOW)
    newer = store.new_run_dir(tmp_path, "quick", NOW)
    store.point_latest(tmp_path, older)
    store.point_latest(tmp_path, newer)
    assert (tmp_path / "latest").resolve() == newer.resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([older.name, newer.name, "latest"])


def test_point_latest_replaces_a_dangling_link(tmp_path: Path) -> None:
    (tmp_path / "latest").symlink_to("deleted-run")
    run_dir = store.new_run_dir(tmp_path, "quick", NOW)
    store.point_latest(tmp_path, run_dir)
    assert (tmp_path / "latest").resolve() == run_dir.resolve()


def test_point_latest_does_not_replace_a_real_folder(tmp_path: Path) -> None:
    (tmp_path / "latest").mkdir()
    (tmp_path / "latest" / "mine.txt").write_text("x", encoding="utf-8")
    run_dir = store.new_run_dir(tmp_path, "quick", NOW)
    with pytest.raises(ResultsError, match="latest"):
        store.point_latest(tmp_path, run_dir)
    assert (tmp_path / "latest" / "mine.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["latest", run_dir.name])


# --- summary.csv ------------------------------------------------------------------------------------------------------


def step(server: str, users: int, **extra: Any) -> dict[str, Any]:
    latency = {"requests": 120, "failures": 2, "p50_ms": 110.0, "p90_ms": 150.0, "p95_ms": 180.0,
               "p99_ms": 300.0, "max_ms": 412.5, "mean_ms": 120.25, "min_ms": 15.5}  # fmt: skip
    figures = {
        "latency": latency,
        "endpoints": {"page": dict(latency), "short": dict(latency, p50_ms=15.0, p95_ms=math.nan)},
        "rps": 12.3456,
        "unfinished": 0,
        "client_cpu_pct": 10.0,
    }
    record = {"server": server, "kind": "sync", "workers": 3, "users": users, "status": "ok", "figures": figures,
              "server_cpu_pct": 55.5, "server_rss_mb": 120.0, "saturated": ""}  # fmt: skip
    record.update(extra)
    return record


def read_summary(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / store.SUMMARY_FILE).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_write_summary_header_follows_summary_columns(tmp_path: Path) -> None:
    run = valid_run()
    run["steps"] = [step("flask-gunicorn", 5)]
    store.write_summary(tmp_path, run)
    header = (tmp_path / store.SUMMARY_FILE).read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == list(store.SUMMARY_COLUMNS)


def test_summary_columns_include_the_headline_figures_in_order() -> None:
    required = ["server", "kind", "users", "requests", "failures", "rps", "p50_ms", "p95_ms", "p99_ms", "max_ms"]
    positions = [store.SUMMARY_COLUMNS.index(c) for c in required]
    assert positions == sorted(positions)


def test_write_summary_writes_one_row_per_step(tmp_path: Path) -> None:
    run = valid_run()
    run["steps"] = [step("flask-gunicorn", 5), step("fastapi-uvicorn", 5, kind="async", workers=1)]
    store.write_summary(tmp_path, run)
    rows = read_summary(tmp_path)
    assert [(r["server"], r["kind"], r["users"]) for r in rows] == [
        ("flask-gunicorn", "sync", "5"),
        ("fastapi-uvicorn", "async", "5"),
    ]
    assert rows[0]["requests"] == "120"
    assert rows[0]["failures"] == "2"
    assert rows[0]["p95_ms"] == "180"
    assert rows[0]["max_ms"] == "412.5"
    assert rows[0]["rps"] == "12.346"
    assert rows[0]["short_p50_ms"] == "15"


def test_write_summary_leaves_absent_figures_empty(tmp_path: Path) -> None:
    run = valid_run()
    failed = {"server": "flask-gunicorn", "kind": "sync", "workers": 3, "users": 50, "status": "failed"}
    run["steps"] = [step("flask-gunicorn", 5), failed]
    store.write_summary(tmp_path, run)
    rows = read_summary(tmp_path)
    assert rows[0]["short_p95_ms"] == ""  # NaN
    assert rows[1]["status"] == "failed"
    assert rows[1]["requests"] == ""
    assert rows[1]["p50_ms"] == ""


def test_write_summary_of_a_run_without_steps_has_only_the_header(tmp_path: Path) -> None:
    store.write_summary(tmp_path, valid_run())
    lines = (tmp_path / store.SUMMARY_FILE).read_text(encoding="utf-8").splitlines()
    assert lines == [",".join(store.SUMMARY_COLUMNS)]
