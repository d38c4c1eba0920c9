"""The upstream service, harness side (runner/upstream.py), and what both apps do when it fails.

The first part starts no process: what a step records and when it has failed, what the servers are handed. The
integration part starts the real service and real servers: the service answers from its own pid and leaves nothing
behind; an upstream answering 500, resetting the connection or never answering gives the same 502 or 504 JSON from
both apps, within the call's timeout and without a traceback in the server's log; a service killed in a step fails
that step with its log tail while the sweep goes on; a small sweep through ``python -m runner``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest
from rich.console import Console

from runner import backends, loadgen, store, sweep, upstream
from runner.config import RunConfig, ServerConfig, load_config
from runner.processes import CpuPlan, Sample, TreeSampler
from runner.servers import serve, server_env
from tests.scenarios import UPSTREAM, small_scenario

ROOT = Path(__file__).resolve().parent.parent
UNPINNED = CpuPlan(frozenset(), frozenset(), "not pinned (test)")
MARK = pytest.mark.integration


def upstream_config(tmp_path: Path, extra: str = "", **values: object) -> RunConfig:
    """The small test scenario on the upstream service; ``extra`` adds lines to its [upstream] table."""
    scenario = {**UPSTREAM, "database": str(UPSTREAM["database"]) + "\n" + extra}
    path = tmp_path / "up.toml"
    path.write_text(small_scenario(**{**scenario, **values}), encoding="utf-8")
    return load_config(str(path), flags={"--results-dir": str(tmp_path / "results")})


def test_a_step_records_the_upstreams_cpu_in_its_window(tmp_path: Path) -> None:
    service = upstream.Upstream(tmp_path, 0, "none", frozenset())
    cpu = TreeSampler(pid=1)
    cpu.samples = [Sample(100.0, 1.0, 0, 1), Sample(110.0, 2.0, 0, 1)]
    watch = upstream.UpstreamWatch(service, cpu, 1)
    assert watch.figures((100.0, 110.0)) == {"upstream_cpu_pct": pytest.approx(10.0)}
    assert watch.figures(None) == {"upstream_cpu_pct": None}
    # No process: it is not alive, so the step it was watched in has failed, with its log.
    (tmp_path / "upstream.log").write_text("something went wrong\n", encoding="utf-8")
    fault = watch.fault()
    assert fault is not None and fault.startswith("the upstream service exited during the step")
    assert "something went wrong" in fault


def test_the_servers_get_the_services_address_and_run_json_never_does(tmp_path: Path) -> None:
    config = upstream_config(tmp_path)
    service = upstream.Upstream(tmp_path, 0, "none", frozenset(), port=4321)
    serving = backends.served(config, service)
    assert serving.upstream.url == "http://127.0.0.1:4321" and config.upstream.url == ""
    env = server_env(serving, config.servers[0])
    assert (env["UPSTREAM_URL"], env["SIMDB_BACKEND"], env["SIMDB_DRIVER"]) == (serving.upstream.url, "http", "httpx")
    assert "UPSTREAM_MAX_CONNECTIONS" not in env  # left to the library
    assert config.to_dict()["upstream"]["url"] == ""


# --- the real service and real servers (integration) ------------------------------------------------------------------


def _gone(service: upstream.Upstream, pid: int) -> None:
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not service.folder.exists()


@MARK
def test_the_service_answers_from_its_own_pid_and_leaves_nothing_behind(tmp_path: Path) -> None:
    config = upstream_config(tmp_path, "capacity = 3")
    with upstream.run_upstream(config, frozenset(), tmp_path) as service:
        assert service.process is not None
        pid = service.process.pid
        health = upstream.health(service.url)
        assert health is not None and (health["pid"], health["capacity"]) == (pid, 3)
        assert service.ensure_up() is None
        assert service.metadata()["command"][-4:] == ["--capacity", "3", "--fault", "none"]
    _gone(service, pid)
    with pytest.raises(KeyboardInterrupt), upstream.run_upstream(config, frozenset(), tmp_path) as service:
        assert service.process is not None
        pid = service.process.pid
        raise KeyboardInterrupt
    _gone(service, pid)


def _get(url: str) -> tuple[int, dict[str, Any], float]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read()), time.perf_counter() - started
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), time.perf_counter() - started


# One server of each kind and client: a sync worker with httpx, one event loop with httpx, one with aiohttp.
SERVERS = [
    ServerConfig("flask-gunicorn", "gunicorn", workers=1, driver="httpx"),
    ServerConfig("fastapi-httpx", "uvicorn", workers=1, driver="httpx"),
    ServerConfig("fastapi-aiohttp", "uvicorn", workers=1, driver="aiohttp"),
]
ANSWERS = {
    "500": (502, {"error": "upstream_error", "detail": "the upstream answered 500"}),
    "reset": (502, {"error": "upstream_error", "detail": "the upstream could not be reached or closed the connection"}),
    "hang": (504, {"error": "upstream_timeout", "detail": "no answer from the upstream within 2 s"}),
}


@MARK
@pytest.mark.parametrize("fault", ["500", "reset", "hang"])
def test_both_apps_answer_an_upstream_fault_with_the_same_error(tmp_path: Path, fault: str) -> None:
    """Twice in a row on one worker each: the second answer on time shows the first left no worker hung."""
    config = upstream_config(tmp_path, f'fault = "{fault}"')
    answers: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    with upstream.run_upstream(config, frozenset(), tmp_path) as service:
        serving = backends.served(config, service)
        for spec in SERVERS:
            log = tmp_path / f"{spec.name}.log"
            with serve(spec, serving, log, frozenset()) as server:
                for path in ("/page", "/short"):
                    status, body, took = _get(server.url + path)
                    assert took < 2.0 + 1.0, (spec.name, path, took)  # the page's first call fails: one timeout
                    answers.setdefault(spec.name, []).append((status, body))
            text = log.read_text(encoding="utf-8")
            assert "Traceback" not in text, text
    first, *others = answers.values()
    assert all(other == first for other in others), answers
    assert first == [ANSWERS[fault]] * 2


@MARK
def test_an_upstream_killed_in_a_step_fails_that_step_and_the_sweep_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real servers, real Locust: the service is killed a second into the first step's load. That step fails with
    the service's log tail; before the next one it is started again on the same port, and that step is measured."""
    config = upstream_config(tmp_path, users="[2]", warmup=1, measure=3)
    config = dataclasses.replace(config, servers=config.servers[:1])
    real_run_step = loadgen.run_step
    killed: list[int] = []

    def run_step(*args: Any, **named: Any) -> Any:
        if not killed:
            assert service.pid is not None
            killed.append(service.pid)
            threading.Timer(1.0, os.kill, (service.pid, signal.SIGKILL)).start()
        return real_run_step(*args, **named)

    monkeypatch.setattr(sweep, "run_step", run_step)
    config = dataclasses.replace(config, load=dataclasses.replace(config.load, repeats=2))
    text = io.StringIO()
    with upstream.run_upstream(config, frozenset(), tmp_path) as service:
        port = service.port
        current = sweep.start_run(config, UNPINNED, service)
        sweep.run_sweep(backends.served(config, service), current, Console(file=text, width=200), database=service)
        assert service.pid != killed[0] and service.port == port
    first, second = store.load_run(current.dir)["steps"]
    assert first["status"] == "failed"
    assert "the upstream service exited during the step" in first["error"] and "Last lines of" in first["error"]
    assert second["status"] == "ok", second["error"]
    assert second["upstream_cpu_pct"] is not None
    assert second["figures"]["latency"]["failures"] == 0
    assert "started it again" in text.getvalue()


@MARK
def test_a_small_sweep_on_the_upstream(tmp_path: Path) -> None:
    """``python -m runner`` on the upstream: every step measured with no failure, the upstream's CPU beside the
    server's, its samples kept, the wait named upstream, and no service left behind."""
    scenario = tmp_path / "up.toml"
    scenario.write_text(small_scenario(**UPSTREAM, name="up", users="[2, 10]", warmup=1, measure=3))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")} | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "runner", str(scenario), "--results-dir", str(tmp_path / "results")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = (tmp_path / "results" / "latest").resolve()
    run = store.load_run(run_dir)
    assert run["status"] == "complete"
    assert run["metadata"]["database"]["kind"] == "upstream"
    assert any(record["upstream_cpu_pct"] > 0 for record in run["steps"] if record["users"] == 10)
    for record in run["steps"]:
        assert record["figures"]["latency"]["failures"] == 0, record["server"]
        # Measured in every step; at 2 users a 3 s window holds a few calls, under the CPU clock's 10 ms tick.
        assert record["upstream_cpu_pct"] is not None and record["upstream_cpu_pct"] >= 0
        assert (run_dir / record["files"] / upstream.RESOURCES_FILE).is_file()
        server = record["figures"]["server"]
        assert server["timed"] == record["figures"]["latency"]["requests"] > 0, record["server"]
    assert [p for p in psutil.process_iter(["cmdline"]) if "upstream" in (p.info["cmdline"] or [])[1:3]] == []
