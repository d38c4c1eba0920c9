"""The standalone entry point: exit codes, messages, the versioned file it writes and the chart drawn from it.

Measuring is replaced by a small fake returning saved-looking data, so nothing is started here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner import experiment, render, store
from runner.config import RunConfig, ScenarioError
from runner.processes import CpuPlan
from runner.servers import ServerError
from tests.runs import PNG_SIGNATURE, burst_data, timeline_data

NOT_PINNED = {"BENCH_PIN_CPUS": "false"}  # the test process keeps its cores


def fake_measure(config: RunConfig, cpus: CpuPlan, folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    return {**timeline_data(), "measured_for": config.name}


def raising(error: BaseException) -> Callable[[RunConfig, CpuPlan, Path], dict[str, Any]]:
    def measure(config: RunConfig, cpus: CpuPlan, folder: Path) -> dict[str, Any]:
        raise error

    return measure


def trial(**changes: Any) -> experiment.Experiment:
    values: dict[str, Any] = {
        "name": "timeline",
        "saved": render.TIMELINE,
        "raw": "raw",
        "measure": fake_measure,
        "describe": lambda config: f"trying {config.name}",
        "stopped": "the servers",
    }
    values.update(changes)
    return experiment.Experiment(**values)


def only_folder(results: Path) -> Path:
    folders = list(results.iterdir())
    assert len(folders) == 1, folders
    return folders[0]


def test_a_measured_experiment_writes_its_file_with_format_and_version(
    write_scenario: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    code = experiment.run(trial(), str(write_scenario(name="small")), str(results), NOT_PINNED)
    assert code == 0
    run_dir = only_folder(results)
    assert run_dir.name.endswith("-small-timeline")
    text = (run_dir / store.TIMELINE_FILE).read_text(encoding="utf-8")
    assert list(json.loads(text))[:2] == ["format", "format_version"]
    data = store.load_document(run_dir / store.TIMELINE_FILE, store.TIMELINE_FORMAT, store.EXPERIMENT_VERSION)
    assert data["format"] == store.TIMELINE_FORMAT and data["format_version"] == store.EXPERIMENT_VERSION
    assert data["measured_for"] == "small"
    assert (run_dir / "charts" / "timeline.png").read_bytes().startswith(PNG_SIGNATURE)
    out = capsys.readouterr().out
    assert "trying small" in out and f"results: {run_dir}" in out
    assert "  timeline.json\n" in out and "  charts/timeline.png\n" in out


def test_a_bad_scenario_exits_2_naming_it_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    called: list[bool] = []

    def measure(config: RunConfig, cpus: CpuPlan, folder: Path) -> dict[str, Any]:
        called.append(True)
        return {}

    assert experiment.run(trial(measure=measure), "no-such-scenario", str(results), NOT_PINNED) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no-such-scenario" in err
    assert not called and not results.exists()


def test_a_bad_scenario_message_names_the_file_and_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\nsurprise = 1\n', encoding="utf-8")
    assert experiment.run(trial(), str(bad), str(tmp_path / "results"), NOT_PINNED) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(bad) in err and "surprise" in err


def test_a_scenario_the_experiment_cannot_run_exits_2_with_its_reason(
    write_scenario: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def check(config: RunConfig) -> None:
        raise ScenarioError(f"{config.source} has no [burst] stages")

    results = tmp_path / "results"
    assert experiment.run(trial(check=check), str(write_scenario()), str(results), NOT_PINNED) == 2
    assert "has no [burst] stages" in capsys.readouterr().err
    assert not results.exists()


def test_a_server_that_fails_exits_1_with_its_error_and_no_file(
    write_scenario: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    measure = raising(ServerError("flask-gunicorn-1 did not start: port taken"))
    assert experiment.run(trial(measure=measure), str(write_scenario()), str(results), NOT_PINNED) == 1
    assert "error: flask-gunicorn-1 did not start: port taken" in capsys.readouterr().err
    assert not (only_folder(results) / store.TIMELINE_FILE).exists()


def test_an_interruption_exits_130_and_says_what_was_stopped(
    write_scenario: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    measure = raising(KeyboardInterrupt())
    experiment_ = trial(measure=measure, stopped="the servers and Locust")
    assert experiment.run(experiment_, str(write_scenario()), str(tmp_path / "results"), NOT_PINNED) == 130
    assert "interrupted: the servers and Locust were stopped" in capsys.readouterr().err


def test_problems_inside_a_finished_experiment_exit_1_and_keep_the_file(
    write_scenario: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"

    def measure(config: RunConfig, cpus: CpuPlan, folder: Path) -> dict[str, Any]:
        data = burst_data()
        data["servers"]["fastapi-uvicorn"] = {"kind": "async", "error": "Locust wrote nothing"}
        return data

    experiment_ = trial(
        name="burst",
        saved=render.BURST,
        measure=measure,
        problems=lambda data: ["burst on fastapi-uvicorn failed: Locust wrote nothing"],
    )
    assert experiment.run(experiment_, str(write_scenario()), str(results), NOT_PINNED) == 1
    assert "error: burst on fastapi-uvicorn failed: Locust wrote nothing" in capsys.readouterr().err
    run_dir = only_folder(results)
    assert store.load_document(run_dir / store.BURST_FILE, store.BURST_FORMAT, store.EXPERIMENT_VERSION)
    assert (run_dir / "charts" / "burst.png").exists()  # the servers that were measured are drawn


def test_nothing_to_draw_writes_the_file_and_no_chart(
    write_scenario: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def measure(config: RunConfig, cpus: CpuPlan, folder: Path) -> dict[str, Any]:
        return {"servers": {}}

    results = tmp_path / "results"
    assert experiment.run(trial(measure=measure), str(write_scenario()), str(results), NOT_PINNED) == 0
    run_dir = only_folder(results)
    assert (run_dir / store.TIMELINE_FILE).is_file()
    assert not (run_dir / "charts" / "timeline.png").exists()


def test_the_raw_files_go_under_the_experiments_raw_folder(write_scenario: Callable[..., Path], tmp_path: Path) -> None:
    seen: list[Path] = []

    def measure(config: RunConfig, cpus: CpuPlan, folder: Path) -> dict[str, Any]:
        seen.append(folder)
        return {}

    results = tmp_path / "results"
    experiment.run(trial(measure=measure, raw="raw/burst"), str(write_scenario()), str(results), NOT_PINNED)
    assert seen == [only_folder(results) / "raw" / "burst"]


def test_the_parser_takes_a_scenario_and_a_results_folder() -> None:
    args = experiment.parser("python -m runner.x", "X.\n\nmore", "whose x").parse_args(["quick", "--results-dir", "r"])
    assert (args.scenario, args.results_dir) == ("quick", "r")
    assert experiment.parser("p", "X.", "whose x").parse_args([]).scenario == "default"


@pytest.mark.parametrize(("text", "reason"), [("0", "at least 1, got 0"), ("-2", "at least 1, got -2"),
                                               ("two", "a whole number, got 'two'")])  # fmt: skip
def test_a_count_below_one_is_refused_with_exit_2(text: str, reason: str, capsys: pytest.CaptureFixture[str]) -> None:
    parser = experiment.parser("python -m runner.x", "X.", "whose x")
    parser.add_argument("--rounds", type=experiment.at_least_one)
    with pytest.raises(SystemExit) as caught:
        parser.parse_args(["--rounds", text])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "--rounds" in err and reason in err
