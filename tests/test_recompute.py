"""A run's figures recomputed from the raw files its folder keeps: equal to run.json's exactly, or an error naming
the step, the figure and both values; a folder without raw files is drawn from run.json as before."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import pytest

from runner import files, recompute, render, report, store
from runner.open_view import open_records
from runner.view import RunView
from tests.runs import ASYNC, SYNC, WINDOW, complete_run, measured_run, read_summary, save

REFERENCES = Path(__file__).resolve().parent.parent / "results" / "reference"


def load(run_dir: Path) -> RunView:
    return RunView.load(run_dir)


def step_folder(run_dir: Path, server: str, users: int) -> Path:
    return run_dir / "raw" / server / f"u{users:04d}"


def slow_down_one_request(log: Path) -> None:
    """Make the first successful request sent inside the window take 1 ms longer, in a plain request log."""
    lines = log.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines[1:], start=1):
        cells = line.split(",")
        if WINDOW[0] <= float(cells[0]) <= WINDOW[1] and cells[3] == "1":
            cells[1] = f"{float(cells[1]) + 1:.3f}"
            lines[index] = ",".join(cells)
            break
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_the_synthetic_runs_figures_are_recomputed_exactly(tmp_path: Path) -> None:
    run_dir = measured_run(tmp_path / "run")
    view = load(run_dir)
    assert len(recompute.measured_sources(view)) == 4
    doc = recompute.recomputed(view)
    assert doc == store.load_run(run_dir)
    # Not the stored objects handed back: every step's figures are the recomputation's own.
    assert all(a["figures"] is not b["figures"] for a, b in zip(doc["steps"], view.records, strict=True))


def test_render_draws_a_run_with_raw_files_as_its_run_json_says(tmp_path: Path) -> None:
    run_dir = measured_run(tmp_path / "run")
    render.render(run_dir)
    expected = tmp_path / "expected"
    expected.mkdir()
    store.write_summary(expected, load(run_dir).summary_rows())
    assert (run_dir / store.SUMMARY_FILE).read_bytes() == (expected / store.SUMMARY_FILE).read_bytes()
    assert [row["server"] for row in read_summary(run_dir)] == [SYNC, ASYNC, SYNC, ASYNC]
    text = (run_dir / render.REPORT_FILE).read_text(encoding="utf-8")
    assert text == report.markdown(load(run_dir))


def test_a_changed_request_row_makes_render_fail_naming_the_step_and_the_figure(tmp_path: Path) -> None:
    run_dir = measured_run(tmp_path / "run")
    before = (run_dir / store.RUN_FILE).read_bytes()
    slow_down_one_request(step_folder(run_dir, ASYNC, 50) / "requests.csv")
    stored = store.load_run(run_dir)["steps"][3]["figures"]["latency"]["mean_ms"]
    with pytest.raises(store.ResultsError) as caught:
        render.render(run_dir)
    message = str(caught.value)
    assert f"{ASYNC} at 50 users (raw/{ASYNC}/u0050) does not recompute to its stored figures" in message
    # The first figure that differs, with both values: one request 1 ms slower moves the mean by 1 ms / requests.
    named = re.search(r"latency\.mean_ms: (\S+) in run\.json, (\S+) from the raw files", message)
    assert named is not None
    assert float(named[1]) == stored
    assert float(named[2]) == pytest.approx(
        stored + 1 / store.load_run(run_dir)["steps"][3]["figures"]["latency"]["requests"]
    )
    # Nothing measured is touched, nothing is drawn.
    assert (run_dir / store.RUN_FILE).read_bytes() == before
    assert not (run_dir / render.REPORT_FILE).exists()


def test_a_changed_stored_figure_is_named_with_both_values(tmp_path: Path) -> None:
    run_dir = measured_run(tmp_path / "run")
    run = store.load_run(run_dir)
    measured = run["steps"][0]["figures"]["rps"]
    run["steps"][0]["figures"]["rps"] = measured + 1
    files.write_json(run_dir / store.RUN_FILE, run)
    with pytest.raises(store.ResultsError, match=rf"{SYNC} at 5 users .*rps: {measured + 1!r} in run.json, "
                       rf"{measured!r} from the raw files"):  # fmt: skip
        recompute.recomputed(load(run_dir))


def test_a_figure_run_json_lacks_is_taken_from_the_raw_data(tmp_path: Path) -> None:
    """Stored figures computed by an earlier harness (no server times yet): what they hold must match, and the
    figure they lack is drawn from the raw files rather than refusing the whole run."""
    run_dir = measured_run(tmp_path / "run")
    run = store.load_run(run_dir)
    kept = run["steps"][1]["figures"].pop("server")
    files.write_json(run_dir / store.RUN_FILE, run)
    assert recompute.recomputed(load(run_dir))["steps"][1]["figures"]["server"] == kept
    run["steps"][1]["figures"]["rps"] += 1  # but a figure it holds must still match
    files.write_json(run_dir / store.RUN_FILE, run)
    with pytest.raises(store.ResultsError, match=rf"{ASYNC} at 5 users .*rps: "):
        recompute.recomputed(load(run_dir))


def test_many_differences_are_counted_beyond_the_first_few(tmp_path: Path) -> None:
    run_dir = measured_run(tmp_path / "run")
    log = step_folder(run_dir, SYNC, 50) / "requests.csv"
    log.write_text(log.read_text(encoding="utf-8").replace(",page,", ",short,"), encoding="utf-8")
    with pytest.raises(store.ResultsError, match=r"; and \d+ more\. "):
        recompute.recomputed(load(run_dir))


def test_a_compressed_request_log_recomputes_to_the_same_figures(tmp_path: Path) -> None:
    run_dir = measured_run(tmp_path / "run")
    for server, users in ((SYNC, 5), (ASYNC, 50)):
        plain = step_folder(run_dir, server, users) / "requests.csv"
        plain.with_name("requests.csv.gz").write_bytes(gzip.compress(plain.read_bytes()))
        plain.unlink()
    assert recompute.recomputed(load(run_dir)) == store.load_run(run_dir)


def test_a_folder_without_raw_files_is_drawn_from_run_json_alone(tmp_path: Path) -> None:
    run_dir = save(tmp_path, complete_run())
    view = load(run_dir)
    assert recompute.measured_sources(view) == []
    assert recompute.recomputed(view) == store.load_run(run_dir)
    render.render(run_dir)  # the synthetic figures of complete_run() could never be recomputed


def test_a_failed_step_is_not_recomputed(tmp_path: Path) -> None:
    run_dir = measured_run(tmp_path / "run")
    run = store.load_run(run_dir)
    run["steps"][2] = {**run["steps"][2], "status": "failed", "error": "the server died", "figures": None}
    run["status"] = "incomplete"
    files.write_json(run_dir / store.RUN_FILE, run)
    assert len(recompute.measured_sources(load(run_dir))) == 3
    assert recompute.recomputed(load(run_dir)) == run


def test_a_run_keeping_only_some_steps_raw_files_is_refused(tmp_path: Path) -> None:
    run_dir = measured_run(tmp_path / "run")
    shutil.rmtree(step_folder(run_dir, SYNC, 50))
    with pytest.raises(store.ResultsError, match=rf"{SYNC} at 50 users keeps no request log under 'raw/{SYNC}/u0050'"):
        render.render(run_dir)


def test_a_request_log_without_its_window_file_is_refused_naming_it(tmp_path: Path) -> None:
    run_dir = measured_run(tmp_path / "run")
    (step_folder(run_dir, ASYNC, 5) / "window.json").unlink()
    with pytest.raises(store.ResultsError, match=r"u0005 holds requests.csv but not window.json"):
        recompute.recomputed(load(run_dir))


def test_a_step_with_both_a_plain_and_a_compressed_log_is_refused(tmp_path: Path) -> None:
    run_dir = measured_run(tmp_path / "run")
    plain = step_folder(run_dir, ASYNC, 5) / "requests.csv"
    plain.with_name("requests.csv.gz").write_bytes(gzip.compress(plain.read_bytes()))
    with pytest.raises(store.ResultsError, match=r"holds both requests.csv and requests.csv.gz"):
        recompute.recomputed(load(run_dir))


def test_a_damaged_compressed_log_is_named(tmp_path: Path) -> None:
    run_dir = measured_run(tmp_path / "run")
    plain = step_folder(run_dir, ASYNC, 5) / "requests.csv"
    plain.with_name("requests.csv.gz").write_bytes(gzip.compress(plain.read_bytes())[:-40])
    plain.unlink()
    with pytest.raises(store.ResultsError, match=rf"{ASYNC} at 5 users: .*requests.csv.gz is not a readable gzip"):
        recompute.recomputed(load(run_dir))


def test_step_files_outside_the_run_folder_are_refused(tmp_path: Path) -> None:
    run_dir = measured_run(tmp_path / "run")
    run = store.load_run(run_dir)
    run["steps"][0]["files"] = "../elsewhere"
    files.write_json(run_dir / store.RUN_FILE, run)
    with pytest.raises(store.ResultsError, match=r"'\.\./elsewhere' lie outside the run folder"):
        recompute.recomputed(load(run_dir))


@pytest.mark.parametrize(
    ("stored", "fresh", "found"),
    [
        ({"a": 1.0, "b": [1, 2]}, {"a": 1.0, "b": [1, 2]}, []),
        ({"a": {"b": 1.5}}, {"a": {"b": 1.25}}, [("a.b", 1.5, 1.25)]),
        ({"a": [1.0, None]}, {"a": [1.0, 2.0]}, [("a[1]", None, 2.0)]),
        ({"a": 1}, {"a": 1.0}, [("a", 1, 1.0)]),  # exact: the JSON text differs
        ({"a": [1]}, {"a": [1, 2]}, [("a", [1], [1, 2])]),
        ({}, {"new": 0}, []),  # a figure run.json never held: computed by a later harness, not a difference
        ({"old": 0}, {}, [("old", 0, recompute.ABSENT)]),
    ],
)
def test_differences_are_exact_and_named_by_their_dotted_path(stored: object, fresh: object, found: object) -> None:
    assert recompute.differences(stored, fresh) == found


def test_the_stored_form_is_what_run_json_reads_back() -> None:
    assert recompute.stored_form({"x": float("nan"), "t": (1.0, 2)}) == {"x": None, "t": [1.0, 2]}
    assert recompute.stored_form({"x": 0.1 + 0.2}) == json.loads(json.dumps({"x": 0.1 + 0.2}))


# --- the committed references ---------------------------------------------------------------------------------------


def references_with_raw_data() -> list[str]:
    return sorted(p.name for p in REFERENCES.iterdir() if (p / store.RUN_FILE).is_file() and (p / "raw").is_dir())


@pytest.mark.parametrize("name", references_with_raw_data())
def test_each_committed_reference_with_raw_data_recomputes_its_figures_exactly(name: str) -> None:
    """Every measured step of the reference keeps its files, and they give its stored figures exactly: the sweep's
    steps, and its open arrivals' steps and capacity probes where it has them."""
    view = load(REFERENCES / name)
    measured = [r for r in (*view.records, *open_records(view.doc)) if r.get("status") == "ok"]
    assert len(recompute.measured_sources(view)) == len(measured) > 0
    assert recompute.recomputed(view) == store.load_run(REFERENCES / name)


def test_every_reference_ships_its_raw_data() -> None:
    """Issue 11's bar: a reader can recompute every committed reference, the default's first of all."""
    with_run = sorted(p.name for p in REFERENCES.iterdir() if (p / store.RUN_FILE).is_file())
    assert "default" in references_with_raw_data()
    assert references_with_raw_data() == with_run
