"""``python -m runner.serve``: which command it would run, and what it refuses, without starting anything.

``os.execve`` is replaced by a recorder, so these tests see the exact command and environment the foreground
server would get and start no process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from runner import serve
from runner.config import load_config
from runner.servers import command
from tests.scenarios import small_scenario


class Replaced(Exception):
    """Raised where the process would have been replaced by the server."""


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str], dict[str, str]]]:
    calls: list[tuple[str, list[str], dict[str, str]]] = []

    def record(path: str, argv: list[str], env: dict[str, str]) -> Any:
        calls.append((path, list(argv), dict(env)))
        raise Replaced  # a real exec never returns

    monkeypatch.setattr(os, "execve", record)
    monkeypatch.setattr(os, "chdir", lambda _path: None)
    monkeypatch.setattr(serve, "port_in_use", lambda _port: False)
    return calls


def _scenario(tmp_path: Path, sync_server: str = "") -> Path:
    path = tmp_path / "s.toml"
    path.write_text(small_scenario(sync_server=sync_server), encoding="utf-8")
    return path


def test_a_proxied_configuration_is_served_directly_and_says_so(
    tmp_path: Path, execs: list[tuple[str, list[str], dict[str, str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    path = _scenario(tmp_path, 'proxy = "nginx"')
    with pytest.raises(Replaced):
        serve.main(["flask-gunicorn", "--scenario", str(path), "--port", "8123"])
    spec = load_config(str(path)).servers[0]
    assert spec.proxy == "nginx"
    assert [argv for _, argv, _ in execs] == [command(spec, 8123)]
    err = capsys.readouterr().err
    assert "served directly here, without its nginx in front" in err
    assert "behind nginx" not in err


def test_a_direct_configuration_says_nothing_about_a_proxy(
    tmp_path: Path, execs: list[tuple[str, list[str], dict[str, str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(Replaced):
        serve.main(["sync", "--scenario", str(_scenario(tmp_path)), "--port", "8124"])
    assert len(execs) == 1
    assert "nginx" not in capsys.readouterr().err


def test_a_port_out_of_range_is_refused_before_anything_runs(
    tmp_path: Path, execs: list[tuple[str, list[str], dict[str, str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert serve.main(["sync", "--scenario", str(_scenario(tmp_path)), "--port", "70000"]) == 2
    assert execs == []
    assert "--port 70000 is not a TCP port" in capsys.readouterr().err
