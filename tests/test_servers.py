"""The servers' pure parts: each configuration's command line, process count and environment, the port finder,
and how a server that will not come up is reported. Nothing here starts a process (tests/conftest.py fails any
test that does); real servers are started in tests/test_servers_matrix.py and tests/test_integration.py."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import pytest

from async_app.settings import AppSettings
from runner import servers
from runner.config import ROOT, Endpoints, RunConfig, ServerConfig, load_config
from runner.processes import PASSED_THROUGH
from runner.servers import HOST, RunningServer, ServerError, command, expected_processes, server_env
from simdb.database import DRIVER_ENV

GUNICORN_CONF = str(ROOT / "sync_app" / "gunicorn.conf.py")
UVICORN_TAIL = [
    "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
    "--timeout-graceful-shutdown", "3",
]  # fmt: skip
DEFAULT_KEEP_ALIVE = ["--timeout-keep-alive", "5"]  # stated even when the scenario leaves it out
NO_SUCH_PID = 2**31 - 1  # above any pid_max: no process has it


# --- command lines and process counts --------------------------------------------------------------------------------

# endpoint style, workers, processes expected (a supervisor beside several workers)
UVICORN_CASES: tuple[tuple[Endpoints, int, int], ...] = (("async", 1, 1), ("def", 2, 3), ("blocking", 1, 1))
COMMANDS = [
    pytest.param(
        ServerConfig("s", "gunicorn", 3),
        ["-m", "gunicorn", "--config", GUNICORN_CONF, "--workers", "3", "--worker-class", "sync",
         "--bind", "127.0.0.1:8123"],
        4,
        id="gunicorn sync",
    ),
    pytest.param(
        ServerConfig("t", "gunicorn", 3, worker_class="gthread", threads=8),
        ["-m", "gunicorn", "--config", GUNICORN_CONF, "--workers", "3", "--worker-class", "gthread",
         "--threads", "8", "--keep-alive", "5", "--bind", "127.0.0.1:8123"],
        4,
        id="gunicorn gthread",
    ),
    pytest.param(
        ServerConfig("g", "gunicorn", 1, worker_class="gevent", connections=200),
        ["-m", "gunicorn", "--config", GUNICORN_CONF, "--workers", "1", "--worker-class", "gevent",
         "--worker-connections", "200", "--keep-alive", "5", "--bind", "127.0.0.1:8123"],
        2,
        id="gunicorn gevent",
    ),
    *[
        pytest.param(
            ServerConfig("u", "uvicorn", workers, endpoints=endpoints),
            ["-m", "uvicorn", "async_app.app:create_app", "--factory", "--host", "127.0.0.1", "--port", "8123",
             "--workers", str(workers), *UVICORN_TAIL, *DEFAULT_KEEP_ALIVE],
            processes,
            id=f"uvicorn {endpoints} x{workers}",
        )
        for endpoints, workers, processes in UVICORN_CASES
    ],
]  # fmt: skip


@pytest.mark.parametrize(("spec", "argv", "processes"), COMMANDS)
def test_command_line_per_configuration(spec: ServerConfig, argv: list[str], processes: int) -> None:
    assert command(spec, 8123) == [sys.executable, *argv]
    assert expected_processes(spec) == processes


# keep_alive_s -> what gunicorn's gthread and gevent workers, and uvicorn, are told
KEEP_ALIVE_FLAGS = [
    pytest.param(0, ["--keep-alive", "0"], ["--header", "Connection:close"], id="off"),
    pytest.param(1, ["--keep-alive", "1"], ["--timeout-keep-alive", "1"], id="1 s"),
    pytest.param(75, ["--keep-alive", "75"], ["--timeout-keep-alive", "75"], id="75 s"),
]


@pytest.mark.parametrize(("seconds", "gunicorn", "uvicorn"), KEEP_ALIVE_FLAGS)
def test_keep_alive_becomes_each_servers_own_flag(seconds: int, gunicorn: list[str], uvicorn: list[str]) -> None:
    """gunicorn takes 0 as off (gthread and gevent then answer ``Connection: close``); uvicorn's own 0 would close
    the connection unannounced, so off is a ``Connection: close`` header on every response instead."""
    gthread = command(ServerConfig("t", "gunicorn", 2, worker_class="gthread", threads=4, keep_alive_s=seconds), 8123)
    assert gthread[-4:] == [*gunicorn, "--bind", "127.0.0.1:8123"]
    gevent = command(ServerConfig("g", "gunicorn", worker_class="gevent", keep_alive_s=seconds), 8123)
    assert gevent[-4:] == [*gunicorn, "--bind", "127.0.0.1:8123"]
    for endpoints in ("async", "def", "blocking"):
        argv = command(ServerConfig("u", "uvicorn", endpoints=endpoints, keep_alive_s=seconds), 8123)
        assert argv[-len(UVICORN_TAIL) - 2 :] == [*UVICORN_TAIL, *uvicorn], endpoints
        assert argv.count("--timeout-keep-alive") + argv.count("--header") == 1


def test_the_sync_worker_is_told_nothing_about_keep_alive() -> None:
    """It ignores the setting (it closes after every response), so its command must not suggest otherwise."""
    argv = command(ServerConfig("s", "gunicorn", 3), 8123)
    assert "--keep-alive" not in argv


@pytest.mark.parametrize(
    ("spec", "processes"),
    [
        (ServerConfig("s1", "gunicorn", 1), 2),  # gunicorn's master is always there
        (ServerConfig("g4", "gunicorn", 4, worker_class="gevent", connections=10), 5),
        (ServerConfig("u1", "uvicorn", 1), 1),  # one uvicorn worker is the process itself
        (ServerConfig("u4", "uvicorn", 4), 5),  # several: a supervisor beside them
    ],
)
def test_expected_processes_counts_the_master_or_supervisor(spec: ServerConfig, processes: int) -> None:
    assert expected_processes(spec) == processes


# --- the environment a server gets -----------------------------------------------------------------------------------


def _config(spec: ServerConfig) -> RunConfig:
    return dataclasses.replace(load_config("quick"), servers=(spec,))


def test_server_env_passes_only_the_allow_list_and_the_scenario(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings the servers read on their own (GUNICORN_CMD_ARGS, UVICORN_*, WEB_CONCURRENCY, a PYTHON* setting)
    must not reach them: they would change one side of the comparison unseen."""
    for key in PASSED_THROUGH:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setenv("LANG", "C.UTF-8")
    hostile = {"GUNICORN_CMD_ARGS": "--workers 9", "UVICORN_WORKERS": "3", "WEB_CONCURRENCY": "4",
               "PYTHONOPTIMIZE": "2", "PYTHONPATH": "/elsewhere", "APP_ENDPOINTS": "def", "SIMDB_JITTER": "0.9",
               "HOME": "/home/someone"}  # fmt: skip
    for key, value in hostile.items():
        monkeypatch.setenv(key, value)
    uvicorn_app = AppSettings(endpoints="async", thread_limit=40, die_with_parent=True).to_env()
    for spec, app in ((ServerConfig("g", "gunicorn", 2), {}), (ServerConfig("u", "uvicorn", 1), uvicorn_app)):
        config = _config(spec)
        env = server_env(config, spec)
        scenario = {**config.database.to_env(), **config.workload.to_env()}
        assert env == {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **scenario, **app,
                       "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}, spec.server  # fmt: skip
        assert env["SIMDB_JITTER"] == repr(config.database.jitter)  # the scenario's, not the caller's


@pytest.mark.parametrize(
    ("spec", "endpoints", "limit"),
    [
        (ServerConfig("a", "uvicorn"), "async", "40"),
        (ServerConfig("d", "uvicorn", endpoints="def", thread_limit=7), "def", "7"),
        (ServerConfig("b", "uvicorn", 2, endpoints="blocking"), "blocking", "40"),
    ],
)
def test_uvicorn_gets_its_endpoint_style_and_dies_with_its_parent(
    spec: ServerConfig, endpoints: str, limit: str
) -> None:
    env = server_env(_config(spec), spec)
    assert (env["APP_ENDPOINTS"], env["APP_THREAD_LIMIT"], env["APP_DIE_WITH_PARENT"]) == (endpoints, limit, "1")
    settings = AppSettings.from_env(env)
    assert (settings.endpoints, str(settings.thread_limit), settings.die_with_parent) == (endpoints, limit, True)
    assert env["SIMDB_CAPACITY"] == "0"  # the database settings travel beside them


def test_gunicorn_gets_no_app_settings() -> None:
    """Its worker class is on the command line, and post_fork ties its workers to the master."""
    spec = ServerConfig("t", "gunicorn", worker_class="gthread", threads=2)
    env = server_env(_config(spec), spec)
    assert not [key for key in env if key.startswith("APP_")]
    assert env["SIMDB_CAPACITY"] == "0"


def test_with_postgres_a_server_gets_the_effective_url_and_its_driver() -> None:
    """The URL is the one the runner hands over (runner.postgres.served), the driver the server's own; the
    simulated backend gets neither."""
    spec = ServerConfig("a", "uvicorn", driver="asyncpg")
    url = "postgresql://bench:pw@127.0.0.1:5999/bench"
    base = _config(spec)
    config = dataclasses.replace(base, database=dataclasses.replace(base.database, backend="postgres", url=url))
    env = server_env(config, spec)
    assert (env["SIMDB_BACKEND"], env["SIMDB_URL"], env[DRIVER_ENV]) == ("postgres", url, "asyncpg")
    simulated = server_env(base, ServerConfig("a", "uvicorn"))
    assert "SIMDB_URL" not in simulated and DRIVER_ENV not in simulated


# --- ports -----------------------------------------------------------------------------------------------------------


def test_free_port_gives_a_loopback_port_that_can_be_bound() -> None:
    port = servers.free_port()
    assert 1024 <= port <= 65535
    assert not servers.port_in_use(port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, port))  # raises if the port were taken


def test_port_in_use_sees_a_listener() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((HOST, 0))
        holder.listen()
        assert servers.port_in_use(holder.getsockname()[1])


def test_serve_refuses_a_port_in_use_before_starting_anything(tmp_path: Path) -> None:
    config = load_config("quick")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((HOST, 0))
        holder.listen()
        port = holder.getsockname()[1]
        with (
            pytest.raises(ServerError, match=f"port {port} on 127.0.0.1 is already in use"),
            servers.serve(config.servers[1], config, tmp_path / "s.log", frozenset(), port=port),
        ):
            pass
    assert not (tmp_path / "s.log").exists()


# --- a server that will not come up ----------------------------------------------------------------------------------


@dataclasses.dataclass
class FakeProcess:
    """What wait_until_ready asks of a started process: whether it still runs, its exit code, its pid."""

    returncode: int | None
    pid: int = NO_SUCH_PID

    def poll(self) -> int | None:
        return self.returncode


def _server(spec: ServerConfig, process: FakeProcess, log: Path, port: int | None = None) -> RunningServer:
    return RunningServer(spec, port or servers.free_port(), cast(Any, process), log)


def test_a_server_that_exits_while_starting_is_named_with_its_code_and_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("starting\nImportError: no module named app\n", encoding="utf-8")
    spec = ServerConfig("flask-gunicorn", "gunicorn", 2)
    with pytest.raises(ServerError) as caught:
        servers.wait_until_ready(_server(spec, FakeProcess(returncode=3), log), 5.0, frozenset())
    message = str(caught.value)
    assert message.startswith("flask-gunicorn exited with code 3 while starting.")
    assert f"Last lines of {log}:\nstarting\nImportError: no module named app" in message


def test_a_server_that_never_answers_is_named_with_what_was_wanted(tmp_path: Path) -> None:
    spec = ServerConfig("fastapi-uvicorn", "uvicorn", 2)
    server = _server(spec, FakeProcess(returncode=None), tmp_path / "missing.log")
    with pytest.raises(ServerError) as caught:
        servers.wait_until_ready(server, 0.3, frozenset())
    message = str(caught.value)
    assert f"fastapi-uvicorn did not become healthy on http://127.0.0.1:{server.port} within 0.3 s" in message
    assert "(wanted 3 processes, saw 0)" in message
    assert f"(no log at {tmp_path / 'missing.log'})" in message


@pytest.fixture
def impostor() -> Iterator[int]:
    """A server in this process that answers /health as ours would, with a pid that is not ours; yields its port."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": "ok", "pid": os.getpid()}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with ThreadingHTTPServer((HOST, 0), Health) as http:
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        try:
            yield http.server_address[1]
        finally:
            http.shutdown()
            thread.join(timeout=5)


def test_another_server_on_the_port_is_named_not_measured(tmp_path: Path, impostor: int) -> None:
    spec = ServerConfig("fastapi-uvicorn", "uvicorn", 1)
    server = _server(spec, FakeProcess(returncode=None), tmp_path / "s.log", port=impostor)
    with pytest.raises(ServerError) as caught:
        servers.wait_until_ready(server, 5.0, frozenset())
    assert str(caught.value) == (
        f"http://127.0.0.1:{impostor} is answered by process {os.getpid()}, which fastapi-uvicorn did not start; "
        "another server holds the port"
    )


def test_a_running_server_has_a_loopback_url(tmp_path: Path) -> None:
    server = _server(ServerConfig("u", "uvicorn"), FakeProcess(returncode=None), tmp_path / "s.log", port=8123)
    assert server.url == "http://127.0.0.1:8123"
    assert server.alive()
    assert server.pids() == []  # no such process: an empty tree, not an error
