"""``python -m runner``: bad input is refused with exit 2 and a message naming it; --dry-run prints the plan.

Nothing here gets as far as starting a server (the guard in conftest.py would fail the test if it did); the
full run is tested in tests/test_integration.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from runner import cli, store
from runner.config import load_config
from tests.runs import complete_run, save, unfinished_run
from tests.scenarios import SMALL_BURST


def test_an_unknown_scenario_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["no-such-scenario", "--results-dir", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "no-such-scenario" in err
    assert not (tmp_path / "results").exists()


def test_a_bad_override_exits_2_naming_the_flag(
    write_scenario: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([str(write_scenario()), "--users", "five", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "--users" in err and "'five'" in err


def test_a_bad_environment_variable_exits_2_naming_it(
    write_scenario: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BENCH_MEASURE_S", "-3")
    assert cli.main([str(write_scenario()), "--dry-run"]) == 2
    assert "BENCH_MEASURE_S" in capsys.readouterr().err


def test_an_unknown_flag_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["--no-such-flag"])
    assert caught.value.code == 2
    assert "--no-such-flag" in capsys.readouterr().err


def test_resuming_a_folder_that_is_not_a_run_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--resume", str(tmp_path / "gone"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "gone" in err and "does not exist" in err


def test_resuming_a_complete_run_exits_2_saying_there_is_nothing_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = save(tmp_path, complete_run())
    assert cli.main(["--resume", str(run_dir)]) == 2
    assert "is complete" in capsys.readouterr().err
    assert sorted(p.name for p in run_dir.iterdir()) == [store.RUN_FILE]


def test_dry_run_prints_the_plan_and_starts_nothing(
    write_scenario: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    scenario = write_scenario(name="planned", burst=SMALL_BURST)
    assert cli.main([str(scenario), "--dry-run", "--results-dir", str(results), "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    assert f"scenario planned ({scenario})" in out
    assert "server flask-gunicorn: gunicorn" in out and "server fastapi-uvicorn: uvicorn" in out
    assert "users [2, 20]" in out
    assert "each step measured 2 times" in out and "8 steps" in out
    assert "then the burst over time on each server: 2 users for 1 s, then 20 users for 2 s, then 2 users" in out
    assert "override: load.repeats=2 (command-line flag --repeats)" in out
    assert not results.exists()


def test_the_plan_leaves_out_the_burst_when_the_scenario_has_none(write_scenario: Callable[..., Path]) -> None:
    plan = cli.describe_plan(load_config(str(write_scenario())))
    assert "burst" not in plan
    assert "4 steps" in plan


def test_dry_run_of_an_unfinished_run_plans_with_its_own_scenario(
    write_scenario: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = unfinished_run(tmp_path, write_scenario(name="halfway"))
    assert cli.main(["--resume", str(run_dir), "--dry-run"]) == 0
    assert "scenario halfway" in capsys.readouterr().out
    assert sorted(p.name for p in run_dir.iterdir()) == [store.RUN_FILE]
