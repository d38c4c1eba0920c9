"""Run folders and result files: never reused, read back only when they are ours and of a version we know.

(Writing a file atomically is runner.files' job, tested in tests/test_files.py.)
"""

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
from tests.runs import ASYNC, SYNC, complete_run, view_of

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


# --- every versioned file ---------------------------------------------------------------------------------------------


EXPERIMENT_FILES = [
    (store.TIMELINE_FILE, store.TIMELINE_FORMAT),
    (store.BURST_FILE, store.BURST_FORMAT),
]


def test_stamp_puts_format_and_version_first_and_keeps_the_data() -> None:
    stamped = store.stamp({"servers": {}, "stages": [[2, 1]]}, store.BURST_FORMAT, store.EXPERIMENT_VERSION)
    assert list(stamped) == ["format", "format_version", "servers", "stages"]
    assert (stamped["format"], stamped["format_version"]) == (store.BURST_FORMAT, store.EXPERIMENT_VERSION)
    assert stamped["stages"] == [[2, 1]]


@pytest.mark.parametrize(("name", "file_format"), EXPERIMENT_FILES)
def test_load_document_reads_what_stamp_and_write_json_wrote(tmp_path: Path, name: str, file_format: str) -> None:
    files.write_json(tmp_path / name, store.stamp({"servers": {"a": 1}}, file_format, store.EXPERIMENT_VERSION))
    data = store.load_document(tmp_path / name, file_format, store.EXPERIMENT_VERSION)
    assert data["servers"] == {"a": 1}


@pytest.mark.parametrize(("name", "file_format"), EXPERIMENT_FILES)
def test_load_document_refuses_another_format_naming_the_file(tmp_path: Path, name: str, file_format: str) -> None:
    path = tmp_path / name
    files.write_json(path, store.stamp({}, "sync-async-bench/something-else", store.EXPERIMENT_VERSION))
    with pytest.raises(ResultsError, match="format is not") as caught:
        store.load_document(path, file_format, store.EXPERIMENT_VERSION, "timeline file")
    assert str(path) in str(caught.value) and file_format in str(caught.value)


def test_load_document_refuses_a_file_without_a_format_naming_it(tmp_path: Path) -> None:
    """A timeline.json or burst.json written before they carried a format is not guessed at."""
    path = tmp_path / store.TIMELINE_FILE
    files.write_json(path, {"burst": [], "servers": {}})
    with pytest.raises(ResultsError) as caught:
        store.load_document(path, store.TIMELINE_FORMAT, store.EXPERIMENT_VERSION, "timeline file")
    assert str(path) in str(caught.value) and "not a timeline file" in str(caught.value)


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_load_document_refuses_an_unknown_version_naming_the_file(tmp_path: Path, version: Any) -> None:
    path = tmp_path / store.BURST_FILE
    files.write_json(path, {"format": store.BURST_FORMAT, "format_version": version, "servers": {}})
    with pytest.raises(ResultsError, match="format version") as caught:
        store.load_document(path, store.BURST_FORMAT, store.EXPERIMENT_VERSION)
    assert str(path) in str(caught.value) and repr(version) in str(caught.value)


def test_load_document_refuses_a_missing_or_corrupt_file_naming_it(tmp_path: Path) -> None:
    path = tmp_path / store.TIMELINE_FILE
    with pytest.raises(ResultsError, match="does not exist"):
        store.load_document(path, store.TIMELINE_FORMAT, store.EXPERIMENT_VERSION)
    path.write_text('{"format": ', encoding="utf-8")
    with pytest.raises(ResultsError, match="corrupt") as caught:
        store.load_document(path, store.TIMELINE_FORMAT, store.EXPERIMENT_VERSION)
    assert str(path) in str(caught.value)


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


def read_summary(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / store.SUMMARY_FILE).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_write_summary_header_follows_summary_columns(tmp_path: Path) -> None:
    store.write_summary(tmp_path, view_of(complete_run()).summary_rows())
    header = (tmp_path / store.SUMMARY_FILE).read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == list(store.SUMMARY_COLUMNS)


def test_summary_columns_include_the_headline_figures_in_order() -> None:
    required = ["server", "kind", "users", "requests", "failures", "rps", "p50_ms", "p95_ms", "p99_ms", "max_ms"]
    positions = [store.SUMMARY_COLUMNS.index(c) for c in required]
    assert positions == sorted(positions)


def test_write_summary_writes_one_row_per_step_with_figures_rounded(tmp_path: Path) -> None:
    run = complete_run()
    figures = run["steps"][0]["figures"]
    figures["rps"] = 12.3456
    figures["latency"].update(requests=120, failures=2, max_ms=412.5)
    store.write_summary(tmp_path, view_of(run).summary_rows())
    rows = read_summary(tmp_path)
    assert [(r["server"], r["kind"], r["users"]) for r in rows] == [
        (SYNC, "sync", "5"),
        (ASYNC, "async", "5"),
        (SYNC, "sync", "50"),
        (ASYNC, "async", "50"),
    ]
    assert (rows[0]["requests"], rows[0]["failures"]) == ("120", "2")
    assert (rows[0]["p95_ms"], rows[0]["max_ms"]) == ("130", "412.5")
    assert rows[0]["rps"] == "12.346"
    assert rows[0]["short_p50_ms"] == "33"


def test_write_summary_leaves_absent_figures_empty(tmp_path: Path) -> None:
    run = complete_run()
    run["steps"][0]["figures"]["endpoints"]["short"]["p95_ms"] = math.nan
    run["steps"][2] = {"server": SYNC, "kind": "sync", "workers": 3, "users": 50, "status": "failed"}
    store.write_summary(tmp_path, view_of(run).summary_rows())
    rows = {(r["server"], r["users"]): r for r in read_summary(tmp_path)}
    assert rows[(SYNC, "5")]["short_p95_ms"] == ""  # NaN
    failed = rows[(SYNC, "50")]
    assert failed["status"] == "failed"
    assert failed["requests"] == "" and failed["p50_ms"] == ""


def test_write_summary_of_a_run_without_steps_has_only_the_header(tmp_path: Path) -> None:
    run = complete_run()
    run["steps"] = []
    store.write_summary(tmp_path, view_of(run).summary_rows())
    lines = (tmp_path / store.SUMMARY_FILE).read_text(encoding="utf-8").splitlines()
    assert lines == [",".join(store.SUMMARY_COLUMNS)]
