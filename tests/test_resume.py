"""Resuming an unfinished run: refused whenever it would mix two experiments, and never touching what exists."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from runner import store
from runner.cli import main
from tests.runs import unfinished_run


def test_resume_refuses_when_the_scenario_file_changed(
    tmp_path: Path, write_scenario: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = write_scenario()
    run_dir = unfinished_run(tmp_path, scenario)
    scenario.write_text(scenario.read_text().replace("listing_ms = 30", "listing_ms = 31"))
    before = (run_dir / store.RUN_FILE).read_bytes()
    assert main(["--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert str(scenario) in err and "has changed since" in err
    assert (run_dir / store.RUN_FILE).read_bytes() == before


def test_resume_refuses_an_override_that_changes_a_setting(
    tmp_path: Path, write_scenario: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = unfinished_run(tmp_path, write_scenario())
    assert main(["--resume", str(run_dir), "--measure", "99"]) == 2
    assert "load" in capsys.readouterr().err


def test_resume_refuses_another_scenario(
    tmp_path: Path, write_scenario: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = unfinished_run(tmp_path, write_scenario())
    assert main(["quick", "--resume", str(run_dir)]) == 2
    assert "resumed with its own scenario" in capsys.readouterr().err


def test_resume_refuses_a_complete_run(
    tmp_path: Path, write_scenario: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = unfinished_run(tmp_path, write_scenario(), status="complete")
    assert main(["--resume", str(run_dir)]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_resume_refuses_a_folder_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--resume", str(tmp_path)]) == 2
    assert "run.json" in capsys.readouterr().err


def test_resume_with_unchanged_settings_plans_only_the_run(
    tmp_path: Path, write_scenario: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = unfinished_run(tmp_path, write_scenario())
    assert main(["--resume", str(run_dir), "--dry-run"]) == 0
    assert "scenario test" in capsys.readouterr().out


def test_a_locked_run_cannot_be_locked_twice(tmp_path: Path) -> None:
    with (
        store.locked(tmp_path),
        pytest.raises(store.ResultsError, match="another benchmark process"),
        store.locked(tmp_path),
    ):
        pass
    with store.locked(tmp_path):  # released afterwards
        pass
