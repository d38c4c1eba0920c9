"""Start and stop the servers under test: gunicorn with the Flask app, uvicorn with the FastAPI app.

Each step gets a fresh server so no queue, connection or warm cache carries over from the previous step. Both
servers bind to 127.0.0.1 only, log no access lines, and get their database and workload settings through the
environment (the only channel into a forked worker), read once when the app is created. gunicorn's worker class
and its sizes are on its command line; uvicorn's endpoint style, which only the app can act on, travels in the
environment too (``APP_*``, see :mod:`async_app.settings`).
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from async_app.settings import ANYIO_THREAD_LIMIT, AppSettings
from httpwait.config import DEFAULT_CLIENT
from runner.config import ROOT, RunConfig, ServerConfig
from runner.files import log_tail
from runner.processes import clean_env, pin_tree, start_group, stop_group, tree
from runner.proxy import ProxyError, RunningProxy, run_proxy
from simdb.database import DEFAULT_DRIVER, DRIVER_ENV, ENV_PREFIX

HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """A server did not come up or died; the message carries the tail of its log."""


def command(spec: ServerConfig, port: int) -> list[str]:
    """The exact command line for one server configuration; also shown in reports so anyone can rerun it."""
    if spec.server == "gunicorn":
        # The worker class and keep-alive are always stated, so the command means the same whatever the config file
        # says (the sync worker has no keep-alive to state: it ignores the setting).
        sizes = {"gthread": ["--threads", str(spec.threads)], "gevent": ["--worker-connections", str(spec.connections)]}
        keep_alive = [] if spec.keep_alive_s is None else ["--keep-alive", str(spec.keep_alive_s)]
        return [
            sys.executable, "-m", "gunicorn",
            "--config", str(ROOT / "sync_app" / "gunicorn.conf.py"),
            "--workers", str(spec.workers),
            "--worker-class", spec.mode,
            *sizes.get(spec.mode, []),
            *keep_alive,
            "--bind", f"{HOST}:{port}",
        ]  # fmt: skip
    return [
        sys.executable, "-m", "uvicorn", "async_app.app:create_app", "--factory",
        "--host", HOST, "--port", str(port),
        "--workers", str(spec.workers),
        "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning",
        "--timeout-graceful-shutdown", "3",
        *_uvicorn_keep_alive(spec.keep_alive_s),
    ]  # fmt: skip


def _uvicorn_keep_alive(seconds: int | None) -> list[str]:
    """uvicorn's flags for a keep-alive: its idle timeout, or for 0 a ``Connection: close`` header on every response.

    uvicorn's own ``--timeout-keep-alive 0`` would close the connection a loop turn after the response without
    saying so, and a client that reuses it finds a dead socket; with the header the response itself says close,
    uvicorn closes the connection after it, and the client opens a new one for its next request, exactly as
    gunicorn's ``--keep-alive 0`` and its sync worker do (see ServerConfig.keep_alive_text)."""
    if seconds is None:  # pragma: no cover - ServerConfig fills it in for every uvicorn configuration
        return []
    return ["--header", "Connection:close"] if seconds == 0 else ["--timeout-keep-alive", str(seconds)]


def expected_processes(spec: ServerConfig) -> int:
    """gunicorn always runs a master beside its workers; uvicorn runs one process unless it has several workers."""
    if spec.server == "gunicorn":
        return spec.workers + 1
    return 1 if spec.workers == 1 else spec.workers + 1


def server_env(config: RunConfig, spec: ServerConfig) -> dict[str, str]:
    """Only what the server needs: the scenario's database and workload, where the code is, and for uvicorn which
    endpoints to register and that every worker must die with its parent (gunicorn's post_fork does that itself).

    With PostgreSQL, the database's URL (the effective one: see :func:`runner.postgres.served`) and the server's
    driver too; the URL travels only here, never into run.json."""
    app: dict[str, str] = {}
    if spec.server == "uvicorn":
        limit = ANYIO_THREAD_LIMIT if spec.thread_limit is None else spec.thread_limit  # used by def endpoints only
        app = AppSettings(endpoints=spec.endpoints or "async", thread_limit=limit, die_with_parent=True).to_env()
    database = config.database.to_env()
    if config.database.backend == "postgres":
        database |= {f"{ENV_PREFIX}URL": config.database.url, DRIVER_ENV: spec.driver or DEFAULT_DRIVER}
    elif config.database.backend == "http":
        # The upstream's address (the harness's own service: see runner.upstream.served) and the client's settings.
        database |= {**config.upstream.to_env(), DRIVER_ENV: spec.driver or DEFAULT_CLIENT}
    return clean_env(**database, **config.workload.to_env(), **app, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")


def free_port() -> int:
    """A loopback port free right now. Another program could take it before it is bound (a server, Locust's
    master); that program then exits saying the port was busy, and the step fails rather than measure anything
    else."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((HOST, port)) == 0


@dataclass
class RunningServer:
    """A started server; ``port`` and ``process`` are the app's own, ``proxy`` the nginx in front of it (if any)."""

    spec: ServerConfig
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    proxy: RunningProxy | None = None

    @property
    def url(self) -> str:
        """Where clients send their requests: the proxy when there is one, else the app itself."""
        return self.proxy.url if self.proxy is not None else self.app_url

    @property
    def client_port(self) -> int:
        """The port clients connect to: the proxy's when there is one (``port`` is always the app's)."""
        return self.proxy.port if self.proxy is not None else self.port

    @property
    def app_url(self) -> str:
        """The app's own address, behind the proxy when there is one."""
        return f"http://{HOST}:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def pids(self) -> list[int]:
        return [p.pid for p in tree(self.process.pid)]


def _health_pid(url: str) -> int | None:
    """The pid that answered /health, or None: the caller checks it is ours, not another server on the port."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1.0) as response:  # noqa: S310 (loopback URL we built)
            body = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    if response.status != 200 or not isinstance(body, dict) or body.get("status") != "ok":
        return None
    pid = body.get("pid")
    return pid if isinstance(pid, int) else None


def wait_until_ready(server: RunningServer, timeout_s: float, cpus: frozenset[int]) -> None:
    """Ready means: /health answers and every worker the configuration asks for has been forked."""
    deadline = time.monotonic() + timeout_s
    want = expected_processes(server.spec)
    while time.monotonic() < deadline:
        if not server.alive():
            raise ServerError(
                f"{server.spec.name} exited with code {server.process.returncode} while starting.\n"
                + log_tail(server.log_path)
            )
        # Ask first, then list our tree: whatever answered existed before the list was taken, so a pid missing
        # from it is truly not ours (listing first would miss a worker forked in between).
        answered = _health_pid(server.app_url)
        pids = server.pids()
        if answered is not None and answered not in pids:
            raise ServerError(
                f"{server.app_url} is answered by process {answered}, which {server.spec.name} did not start; "
                "another server holds the port"
            )
        if answered is not None and len(pids) >= want:
            pin_tree(server.process.pid, cpus)
            return
        time.sleep(0.1)
    raise ServerError(
        f"{server.spec.name} did not become healthy on {server.app_url} within {timeout_s:g} s "
        f"(wanted {want} processes, saw {len(server.pids())}).\n" + log_tail(server.log_path)
    )


def proxy_command(server: RunningServer) -> list[str] | None:
    """The proxy's exact command line, for the step's record (None without a proxy); ``command`` is the app's."""
    return None if server.proxy is None else server.proxy.command


@contextmanager
def serve(
    spec: ServerConfig, config: RunConfig, log_path: Path, cpus: frozenset[int], port: int | None = None
) -> Iterator[RunningServer]:
    """Run one server for the duration of the ``with`` block; it is always torn down, whatever happens inside.

    With ``spec.proxy`` set, nginx is started in front of it once the app is ready (pinned to the same ``cpus``:
    the proxy is part of the server side) and stopped before it; ``server.url`` is then the proxy's."""
    port = port if port is not None else free_port()
    if port_in_use(port):
        raise ServerError(f"port {port} on {HOST} is already in use; stop what holds it or choose another port")
    process = start_group(command(spec, port), log_path=log_path, env=server_env(config, spec), cwd=ROOT, cpus=cpus)
    server = RunningServer(spec, port, process, log_path)
    try:
        with contextlib.ExitStack() as held:
            wait_until_ready(server, config.run.startup_timeout_s, cpus)
            if spec.proxy is not None:
                try:
                    server.proxy = held.enter_context(
                        run_proxy(
                            spec,
                            nginx_setting=config.run.nginx,
                            port=free_port(),
                            app_port=port,
                            app_pids=server.pids,
                            health_pid=_health_pid,
                            server_log=log_path,
                            cpus=cpus,
                            timeout_s=config.run.startup_timeout_s,
                        )
                    )
                except ProxyError as error:
                    raise ServerError(str(error)) from None
            yield server
    finally:
        stop_group(process)
