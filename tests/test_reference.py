"""Making a committed reference from a measured run: what it copies (request logs compressed, no logs), what it
refuses (an incomplete run, an existing reference without --replace), and that it is never left half made."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

import plots
from runner import files, recompute, reference, render, store
from runner.view import RunView
from tests.runs import ASYNC, SYNC, measured_run

STEPS = [f"raw/{server}/u{users:04d}" for users in (5, 50) for server in (SYNC, ASYNC)]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A complete measured run (not drawn: the reference draws itself)."""
    return measured_run(tmp_path / "results" / "20260102T030405Z-tiny")


@pytest.fixture
def undrawn(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference's rendering reduced to its check (the recomputation), for tests of what is copied: drawing
    the charts takes seconds and is tested where it matters."""

    def check_only(folder: Path) -> list[Path]:
        recompute.recomputed(RunView.load(folder))
        return []

    monkeypatch.setattr(render, "render", check_only)


def made(references: Path) -> list[str]:
    """Everything in the references folder, hidden leftovers included."""
    return sorted(p.name for p in references.iterdir())


def test_a_reference_ships_the_run_and_each_steps_raw_files(run_dir: Path, tmp_path: Path) -> None:
    references = tmp_path / "reference"
    target = reference.make_reference(run_dir, "tiny", references=references)
    assert target == references / "tiny"
    assert made(references) == ["tiny"]  # no temporary folder left beside it
    assert (target / store.RUN_FILE).read_bytes() == (run_dir / store.RUN_FILE).read_bytes()
    for name in (store.SUMMARY_FILE, render.REPORT_FILE, "report.html", "charts/response_times.png"):
        assert (target / name).is_file(), name
    for step in STEPS:
        kept = target / step
        original = run_dir / step
        expected = {"requests.csv.gz", "window.json", "locust.json", "resources.csv"}
        if step == f"raw/{ASYNC}/u0050":
            expected.add("database_resources.csv")
        assert {p.name for p in kept.iterdir()} == expected, step  # no server.log, no locust.log
        assert gzip.decompress((kept / "requests.csv.gz").read_bytes()) == (original / "requests.csv").read_bytes()
        for name in expected - {"requests.csv.gz"}:
            assert (kept / name).read_bytes() == (original / name).read_bytes(), name


def test_a_reference_is_recomputed_from_its_compressed_logs_by_plots(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    render.render(run_dir)
    target = reference.make_reference(run_dir, "tiny", references=tmp_path / "reference")
    assert len(recompute.measured_sources(RunView.load(target))) == 4
    assert plots.main([str(target)]) == 0
    assert (target / store.SUMMARY_FILE).read_bytes() == (run_dir / store.SUMMARY_FILE).read_bytes()
    assert (target / render.REPORT_FILE).read_text(encoding="utf-8") == (run_dir / render.REPORT_FILE).read_text(
        encoding="utf-8"
    )
    capsys.readouterr()


def test_an_incomplete_run_is_refused_with_exit_2_naming_it(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = store.load_run(run_dir)
    run["steps"] = run["steps"][:3]
    run["status"] = "interrupted"
    files.write_json(run_dir / store.RUN_FILE, run)
    references = tmp_path / "reference"
    monkeypatch.setattr(reference, "REFERENCES", references)
    assert reference.main([str(run_dir), "tiny"]) == 2
    err = capsys.readouterr().err
    assert f"{run_dir} is not a complete run (status 'interrupted', 1 step(s) not measured)" in err
    assert not references.exists() or made(references) == []


def test_a_run_with_a_failed_step_is_refused(run_dir: Path, tmp_path: Path) -> None:
    run = store.load_run(run_dir)
    run["steps"][1] = {**run["steps"][1], "status": "failed", "error": "the server died"}
    files.write_json(run_dir / store.RUN_FILE, run)
    with pytest.raises(reference.Refused, match="is not a complete run"):
        reference.make_reference(run_dir, "tiny", references=tmp_path / "reference")


def test_an_existing_reference_is_refused_and_left_as_it_was(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    references = tmp_path / "reference"
    (references / "tiny").mkdir(parents=True)
    (references / "tiny" / "run.json").write_text("the old reference", encoding="utf-8")
    monkeypatch.setattr(reference, "REFERENCES", references)
    assert reference.main([str(run_dir), "tiny"]) == 2
    assert f"{references / 'tiny'} exists: give --replace" in capsys.readouterr().err
    assert (references / "tiny" / "run.json").read_text(encoding="utf-8") == "the old reference"
    assert made(references) == ["tiny"]


@pytest.mark.usefixtures("undrawn")
def test_replace_puts_the_new_reference_in_place_of_the_old(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    references = tmp_path / "reference"
    (references / "tiny").mkdir(parents=True)
    (references / "tiny" / "stale.txt").write_text("from the old reference", encoding="utf-8")
    monkeypatch.setattr(reference, "REFERENCES", references)
    assert reference.main(["--replace", str(run_dir), "tiny"]) == 0
    assert capsys.readouterr().out.strip() == str(references / "tiny")
    assert not (references / "tiny" / "stale.txt").exists()
    assert (references / "tiny" / store.RUN_FILE).read_bytes() == (run_dir / store.RUN_FILE).read_bytes()
    assert made(references) == ["tiny"]


@pytest.mark.usefixtures("undrawn")
def test_made_again_from_the_same_run_a_reference_is_byte_for_byte_the_same(run_dir: Path, tmp_path: Path) -> None:
    """No time or name in the gzip header: re-making a reference does not change it in git."""
    references = tmp_path / "reference"
    first = reference.make_reference(run_dir, "tiny", references=references)
    logs = {step: (first / step / "requests.csv.gz").read_bytes() for step in STEPS}
    again = reference.make_reference(run_dir, "tiny", references=references, replace=True)
    assert {step: (again / step / "requests.csv.gz").read_bytes() for step in STEPS} == logs


@pytest.mark.usefixtures("undrawn")
def test_a_reference_of_a_reference_keeps_its_compressed_logs(run_dir: Path, tmp_path: Path) -> None:
    first = reference.make_reference(run_dir, "tiny", references=tmp_path / "one")
    second = reference.make_reference(first, "tiny", references=tmp_path / "two")
    for step in STEPS:
        assert (second / step / "requests.csv.gz").read_bytes() == (first / step / "requests.csv.gz").read_bytes()


def test_a_run_whose_raw_files_disagree_with_it_leaves_no_reference(run_dir: Path, tmp_path: Path) -> None:
    run = store.load_run(run_dir)
    run["steps"][0]["figures"]["rps"] += 1
    files.write_json(run_dir / store.RUN_FILE, run)
    references = tmp_path / "reference"
    with pytest.raises(store.ResultsError, match=f"{SYNC} at 5 users .*does not recompute"):
        reference.make_reference(run_dir, "tiny", references=references)
    assert made(references) == []  # neither the reference nor its half-built folder


@pytest.mark.usefixtures("undrawn")
def test_a_failed_replacement_keeps_the_old_reference(run_dir: Path, tmp_path: Path) -> None:
    references = tmp_path / "reference"
    old = reference.make_reference(run_dir, "tiny", references=references)
    before = (old / store.RUN_FILE).read_bytes()
    run = store.load_run(run_dir)
    run["steps"][0]["figures"]["rps"] += 1
    files.write_json(run_dir / store.RUN_FILE, run)
    with pytest.raises(store.ResultsError):
        reference.make_reference(run_dir, "tiny", references=references, replace=True)
    assert (old / store.RUN_FILE).read_bytes() == before
    assert made(references) == ["tiny"]


def test_a_step_without_its_request_log_is_refused(run_dir: Path, tmp_path: Path) -> None:
    for step in STEPS:
        (run_dir / step / "requests.csv").unlink()
    with pytest.raises(reference.Refused, match=f"{SYNC} at 5 users keeps no request log under 'raw/{SYNC}/u0005'"):
        reference.make_reference(run_dir, "tiny", references=tmp_path / "reference")


@pytest.mark.parametrize("name", ["", "../elsewhere", "a/b", ".hidden", "-flag"])
def test_a_name_that_is_not_one_plain_folder_name_is_refused(run_dir: Path, tmp_path: Path, name: str) -> None:
    with pytest.raises(reference.Refused, match="is not a reference name"):
        reference.make_reference(run_dir, name, references=tmp_path / "reference")


def test_a_folder_that_is_not_a_run_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert reference.main([str(tmp_path / "nothing"), "tiny"]) == 2
    assert str(tmp_path / "nothing") in capsys.readouterr().err
