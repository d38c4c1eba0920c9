"""Safe by default: load only on this machine unless asked, and damaged results named rather than dumped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "loadtests"))
from hosts import is_loopback

import plots
from runner import store

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.3.4.5", True),
        ("http://localhost:1", True),
        ("http://[::1]:8000", True),
        ("http://10.0.0.1", False),
        ("http://192.168.1.5:80", False),
        ("http://example.com", False),
        ("http://127.0.0.1.example.com", False),
        ("", False),
    ],
)
def test_only_literal_loopback_hosts_count_as_local(url: str, expected: bool) -> None:
    assert is_loopback(url) is expected


@pytest.mark.integration
def test_locust_refuses_a_remote_host_before_sending_anything(tmp_path: Path) -> None:
    """Checked in a real Locust process: the refusal is wired into Locust's start-up, not only written."""
    # A reserved name that never resolves: the refusal happens at start-up, before any request or lookup.
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py"), "--headless",
         "-u", "1", "-r", "1", "-t", "2s", "--host", "http://example.invalid"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "refusing to send load to 'http://example.invalid'" in done.stderr
    assert "--allow-remote-host" in done.stderr


def _run_doc() -> dict[str, Any]:
    config = {"load": {"users": [5]}, "servers": [{"name": "a", "server": "uvicorn", "workers": 1}]}
    return store.new_run_document(config, {})


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (lambda d: d["config"].pop("servers"), "'config' section is damaged"),
        (lambda d: d.update(steps={"x": 1}), "'steps' is not a list"),
        (lambda d: d["steps"].append({"server": "a"}), "steps[0] is damaged"),
        (
            lambda d: d["steps"].append({"server": "a", "kind": "async", "users": 5, "status": "ok", "workers": 1}),
            "a measured step without figures",
        ),
    ],
)
def test_a_damaged_run_file_is_named(tmp_path: Path, damage: Any, needle: str) -> None:
    doc = _run_doc()
    damage(doc)
    (tmp_path / "run.json").write_text(json.dumps(doc))
    with pytest.raises(store.ResultsError, match=r"run\.json") as caught:
        store.load_run(tmp_path)
    assert needle in str(caught.value)


def test_plots_names_a_truncated_run_file_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "run.json").write_text('{"format": "sync-async-bench/run", "format_version": 1, "steps": [')
    assert plots.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "run.json" in err and "corrupt or truncated" in err
    assert "Traceback" not in err
