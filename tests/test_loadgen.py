"""The Locust command lines the runner builds: every setting explicit, the step's files, the progress file.

Pure: the commands are built and read, never run (a real step is in tests/test_integration.py).
"""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest

from runner.config import RunConfig, load_config
from runner.loadgen import LOCUSTFILE, StepFiles, client_env, command, distribution

URL = "http://127.0.0.1:8123"
# Off unless asked for: the runner only ever loads this machine, so it never passes it.
NOT_PASSED = {"--allow-remote-host"}
# Passed only to an open-arrival step (a closed step leaves them at their closed-loop defaults).
OPEN_ONLY = {"--arrival", "--rate", "--arrival-process", "--max-lateness"}


def value_of(cmd: list[str], flag: str) -> str:
    assert cmd.count(flag) == 1, f"{flag} appears {cmd.count(flag)} times in {cmd}"
    return cmd[cmd.index(flag) + 1]


def locustfile_options() -> set[str]:
    """The flags the locustfile adds to Locust's own (read from its source: importing it would start gevent)."""
    tree = ast.parse(LOCUSTFILE.read_text(encoding="utf-8"))
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "add_argument"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    }


@pytest.fixture
def config() -> RunConfig:
    return load_config("quick")


def test_the_step_files_are_named_inside_the_folder(tmp_path: Path) -> None:
    files = StepFiles.inside(tmp_path)
    assert {p.name for p in (files.json, files.raw, files.meta, files.log, files.progress)} == {
        "locust.json", "requests.csv", "window.json", "locust.log", "progress.json"
    }  # fmt: skip
    assert {p.parent for p in (files.json, files.raw, files.meta, files.log, files.progress)} == {tmp_path}


def test_every_option_of_the_locustfile_is_passed_explicitly(config: RunConfig, tmp_path: Path) -> None:
    cmd = command(config, URL, 20, StepFiles.inside(tmp_path))
    options = locustfile_options()
    assert "--progress-file" in options
    assert options >= OPEN_ONLY
    assert options - NOT_PASSED - OPEN_ONLY <= set(cmd)
    assert not (NOT_PASSED | OPEN_ONLY) & set(cmd)
    open_cmd = command(config, URL, 20, StepFiles.inside(tmp_path), rate=12.5)
    assert options - NOT_PASSED <= set(open_cmd)


def test_an_open_step_sends_its_rate_to_a_pool_of_max_users(config: RunConfig, tmp_path: Path) -> None:
    open_config = replace(
        config, load=replace(config.load, max_users=300, arrival_process="constant", max_lateness_s=0.5)
    )
    cmd = command(open_config, URL, 20, StepFiles.inside(tmp_path), rate=12.5)
    assert value_of(cmd, "--arrival") == "open"
    assert value_of(cmd, "--rate") == "12.5"
    assert value_of(cmd, "--arrival-process") == "constant"
    assert value_of(cmd, "--max-lateness") == "0.5"
    # The pool, not the closed loop's user count, and every user at once: they wait idle for arrivals.
    assert value_of(cmd, "--users") == "300"
    assert value_of(cmd, "--spawn-rate") == "300"


def test_the_command_carries_the_step_and_its_files(config: RunConfig, tmp_path: Path) -> None:
    files = StepFiles.inside(tmp_path)
    cmd = command(config, URL, 20, files)
    load = config.load
    assert value_of(cmd, "--locustfile") == str(LOCUSTFILE)
    assert "--headless" in cmd
    assert value_of(cmd, "--host") == URL
    assert value_of(cmd, "--users") == "20"
    assert value_of(cmd, "--spawn-rate") == "20"  # every user at once
    assert float(value_of(cmd, "--warmup")) == load.warmup_s
    assert float(value_of(cmd, "--measure")) == load.measure_s
    assert float(value_of(cmd, "--stop-timeout")) == load.drain_s
    assert float(value_of(cmd, "--think-min")) == load.think_time_s[0]
    assert float(value_of(cmd, "--think-max")) == load.think_time_s[1]
    assert int(value_of(cmd, "--page-weight")) == load.page_weight
    assert int(value_of(cmd, "--short-weight")) == load.short_weight
    assert float(value_of(cmd, "--request-timeout")) == load.request_timeout_s
    assert value_of(cmd, "--json-file") == str(files.json.with_suffix(""))  # Locust adds .json
    assert value_of(cmd, "--raw-file") == str(files.raw)
    assert value_of(cmd, "--meta-file") == str(files.meta)
    assert value_of(cmd, "--progress-file") == str(files.progress)


def test_the_run_time_is_only_a_safety_net_past_the_step(config: RunConfig, tmp_path: Path) -> None:
    run_time = value_of(command(config, URL, 5, StepFiles.inside(tmp_path)), "--run-time")
    assert run_time.endswith("s")
    assert int(run_time[:-1]) > config.step_seconds()


def test_one_client_process_runs_undistributed(config: RunConfig, tmp_path: Path) -> None:
    assert config.load.client_processes == 1
    assert distribution(1) == []
    cmd = command(config, URL, 5, StepFiles.inside(tmp_path))
    assert "--processes" not in cmd
    assert "--master-bind-host" not in cmd


def test_several_client_processes_run_a_master_on_loopback_with_forked_workers() -> None:
    args = distribution(3, port=45678)
    assert value_of(args, "--processes") == "3"
    assert value_of(args, "--master-bind-host") == "127.0.0.1"
    assert value_of(args, "--master-host") == "127.0.0.1"
    assert value_of(args, "--master-bind-port") == value_of(args, "--master-port") == "45678"
    assert "--expect-workers-max-wait" in args


def test_locust_sees_no_locust_variables_and_no_home_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCUST_USERS", "999")
    env = client_env(tmp_path)
    assert not [key for key in env if key.startswith("LOCUST_")]
    assert env["HOME"] == str(tmp_path)
