"""nginx in front of a server, as production runs it: found, configured per step, started, checked, pinned, stopped.

gunicorn's documentation says its sync workers must sit behind a buffering proxy: a client that sends its request
slowly holds a sync worker for as long as it takes, and a handful of them stop the server. nginx reads each request
whole, and takes each response whole, before it holds an upstream connection for it, so the app's slots are held
only for the app's own time. A configuration with ``proxy = "nginx"`` is measured that way: clients talk to nginx,
nginx to the app over kept-alive loopback connections.

**The proxy is part of the server side.** It is pinned to the server's cores (it shares them with the app, as it
would on a one-machine deployment), its CPU is sampled on its own (a second sampler on its master's tree), and it is
started after the app is ready and stopped before it, inside :func:`runner.servers.serve`, so every experiment that
serves a configuration (the sweep, the timeline, the burst) gets the proxy with it.

Everything nginx is told is written into the step's folder as ``nginx.conf`` (raw data a reader keeps): worker
count, buffering, keep-alive to the app, no access log, and the timeouts that matter to a slow client, stated at
nginx's own defaults so the report can quote them. Its error log goes to the step's folder too, on the command line
(``-e``) as well as in the file, so nothing is written under /var/log. Its pid file and temporary files go to a
private folder (``/tmp/bench-nginx-*``) that is removed whatever happens.

Run as root (as this project's machines are), nginx runs its workers as an unprivileged user; the configuration
names that user (``nobody``) and its group, and the temporary folder is opened to it (traverse only), since nginx
writes a request body larger than its memory buffer there before passing it on.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from runner import files
from runner.config import ServerConfig
from runner.files import log_tail
from runner.processes import clean_env, pin_tree, start_group, stop_group, tree

HOST = "127.0.0.1"
FALLBACK = Path("/usr/sbin/nginx")  # Debian's package puts it here, outside a non-root PATH
TEMP_PREFIX = "bench-nginx-"
WORKER_USER = "nobody"  # what nginx's workers run as when the harness is root
# nginx's own defaults, stated in every configuration so that a report can quote what applied. A client that stops
# sending its request headers (or body) is dropped after client_header_timeout (client_body_timeout, between two
# reads); an idle client connection is kept keepalive_timeout; proxy_read_timeout bounds the app's answer.
TIMEOUTS_S: dict[str, int] = {
    "client_header_timeout": 60,
    "client_body_timeout": 60,
    "keepalive_timeout": 75,
    "send_timeout": 60,
    "proxy_connect_timeout": 60,
    "proxy_read_timeout": 60,
    "proxy_send_timeout": 60,
}
# Idle keep-alive connections to the app each nginx worker keeps: enough for the requests the event loop has in
# service at once at 500 users here (about 20), so nginx does not pay a new connection per request.
UPSTREAM_KEEPALIVE = 64
# Connections one nginx worker may hold, clients and the app together. nginx's own default (512) is below what 500
# users behind a queueing sync server need (each waiting request holds a client and an upstream connection).
WORKER_CONNECTIONS = 4096
# The listen queue, as gunicorn's and uvicorn's (2048), so the proxy does not change where a burst is refused.
BACKLOG = 2048
# The modules without which this is not the deployment the harness describes; a build may leave them out.
REQUIRED_MODULES = ("http_proxy", "http_upstream_keepalive")
# Modules that have a temporary folder of their own; each one built in gets it moved into the private folder.
TEMP_MODULES = ("fastcgi", "uwsgi", "scgi")
CONF_NAME = "nginx.conf"
ERROR_LOG_NAME = "nginx-error.log"


class ProxyError(RuntimeError):
    """nginx is missing, is not nginx, refuses its configuration, or did not come up; the message says which."""


@dataclass(frozen=True)
class Nginx:
    """One nginx binary and what ``nginx -V`` says it is."""

    path: Path
    version: str  # "nginx/1.22.1"
    configure: str  # its configure arguments, which say which modules were left out

    @property
    def temp_modules(self) -> tuple[str, ...]:
        """The modules with a temporary folder of their own that this build has."""
        return tuple(m for m in TEMP_MODULES if f"--without-http_{m}_module" not in self.configure)


# --- finding nginx and checking what it is (pure parts first) ----------------------------------------------------


def find_nginx(given: str, which: Callable[[str], str | None] | None = None, fallback: Path | None = None) -> Path:
    """The nginx binary to run: ``given`` (a path, or a name looked up on PATH) when set, else ``nginx`` on PATH,
    else Debian's /usr/sbin/nginx (root's PATH has /usr/sbin, a user's may not). Raises ProxyError saying how to
    install it or where to give its path. ``which`` and ``fallback`` are for tests (shutil.which, FALLBACK)."""
    which = which or shutil.which
    fallback = fallback or FALLBACK
    if given:
        found = which(given) if "/" not in given else (given if _executable(Path(given)) else None)
        if found is None:
            raise ProxyError(
                f"the nginx binary {given!r} (from [run] nginx, BENCH_NGINX or --nginx) does not exist or is not "
                "an executable file; give the path of an nginx binary, or leave it empty to use the installed one"
            )
        return Path(found)
    on_path = which("nginx")
    if on_path is not None:
        return Path(on_path)
    if _executable(fallback):
        return fallback
    raise ProxyError(
        f'a server has proxy = "nginx" but nginx is not installed (not on PATH, not at {fallback}): `make nginx` '
        "installs Debian's package, or give the binary's path with [run] nginx, BENCH_NGINX or --nginx"
    )


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


_VERSION = re.compile(r"^nginx version: (\S+)", re.MULTILINE)
_CONFIGURE = re.compile(r"^configure arguments:(.*)$", re.MULTILINE)


def parse_build(path: Path, text: str) -> Nginx:
    """What ``nginx -V`` printed, checked: it must be nginx, with the proxy and upstream keep-alive modules."""
    version = _VERSION.search(text)
    if version is None:
        shown = " ".join(text.split())[:200] or "nothing"
        raise ProxyError(f"{path} is not nginx: `{path} -V` printed {shown!r}, not 'nginx version: ...'")
    configure = _CONFIGURE.search(text)
    nginx = Nginx(path, version.group(1), configure.group(1).strip() if configure else "")
    missing = [m for m in REQUIRED_MODULES if f"--without-{m}_module" in nginx.configure]
    if missing:
        raise ProxyError(
            f"{path} ({nginx.version}) was built without {', '.join(missing)}; the harness needs nginx's proxy and "
            "upstream keep-alive (Debian's nginx or nginx-light have both)"
        )
    return nginx


def inspect(path: Path) -> Nginx:
    """Run ``nginx -V`` (it prints to stderr) and read it with :func:`parse_build`."""
    try:
        done = subprocess.run(
            [str(path), "-V"], capture_output=True, text=True, timeout=10, env=clean_env(), check=False
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise ProxyError(f"could not run {path} -V: {error}") from None
    output = done.stderr + done.stdout
    if done.returncode != 0:
        shown = " ".join(output.split())[:300] or "nothing"
        raise ProxyError(
            f"{path} -V exited with code {done.returncode} and printed {shown!r}: it is not a working nginx"
        )
    return parse_build(path, output)


# --- the configuration and the command line ---------------------------------------------------------------------


def worker_user() -> tuple[str, str] | None:
    """The user and group nginx's workers run as when the harness is root (None otherwise: nginx then runs them as
    whoever started it, and a ``user`` line would only draw a warning)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(WORKER_USER)
        group = grp.getgrgid(entry.pw_gid).gr_name
    except KeyError:
        raise ProxyError(
            f"running as root, nginx's workers need an unprivileged user; this machine has no user {WORKER_USER!r} "
            "(or no group for it)"
        ) from None
    return WORKER_USER, group


def open_files_limit(hard: int) -> int:
    """The open-file limit each worker asks for: two descriptors per connection (a client and the app) and a
    margin, within the hard limit nginx may raise its soft limit to."""
    return min(2 * WORKER_CONNECTIONS + 64, hard)


def upstream_idle_ms(app_keep_alive_s: int | None) -> int | None:
    """How long nginx keeps an idle connection to the app: shorter than the app's own keep-alive, so nginx never
    sends a request on a connection the app is just closing. None where the app keeps none (gunicorn's sync worker,
    keep-alive off): nginx cannot reuse its connections then, and its own default stands."""
    if not app_keep_alive_s:
        return None
    return max(app_keep_alive_s * 1000 - 1000, 500)


def config_text(
    *,
    workers: int,
    port: int,
    app_port: int,
    temp_dir: Path,
    error_log: Path,
    user: tuple[str, str] | None,
    app_keep_alive_s: int | None,
    temp_modules: Sequence[str],
    open_files: int,
) -> str:
    """The whole nginx.conf for one proxied server. Every setting that shapes the measurement is stated, including
    those at nginx's defaults (buffering, timeouts), so the file alone says what ran."""
    idle = upstream_idle_ms(app_keep_alive_s)
    connections = min(WORKER_CONNECTIONS, max(open_files // 2, 64))
    temp = "\n".join(
        f"    {module}_temp_path {_quoted(temp_dir / module)};" for module in ("client_body", "proxy", *temp_modules)
    )
    timeouts = "\n".join(f"    {key} {TIMEOUTS_S[key]}s;" for key in TIMEOUTS_S if not key.startswith("proxy_"))
    upstream_timeouts = "\n".join(
        f"            {key} {TIMEOUTS_S[key]}s;" for key in TIMEOUTS_S if key.startswith("proxy_")
    )
    lines = [
        "# Written by the benchmark harness (runner/proxy.py) for this step; nginx ran with exactly this file.",
        "daemon off;",
        "master_process on;",
        f"worker_processes {workers};",
        *([f"user {user[0]} {user[1]};"] if user is not None else []),
        f"pid {_quoted(temp_dir / 'nginx.pid')};",
        f"error_log {_quoted(error_log)} warn;",
        f"worker_rlimit_nofile {open_files};",
        "",
        "events {",
        f"    worker_connections {connections};",
        "}",
        "",
        "http {",
        "    access_log off;",
        temp,
        timeouts,
        "",
        "    upstream app {",
        f"        server {HOST}:{app_port};",
        f"        keepalive {UPSTREAM_KEEPALIVE};",
        *([f"        keepalive_timeout {idle}ms;"] if idle is not None else []),
        "    }",
        "",
        "    server {",
        f"        listen {HOST}:{port} backlog={BACKLOG};",
        "        location / {",
        "            proxy_pass http://app;",
        "            proxy_http_version 1.1;",
        '            proxy_set_header Connection "";',
        "            proxy_set_header Host $http_host;",
        "            proxy_buffering on;",
        "            proxy_request_buffering on;",
        upstream_timeouts,
        "        }",
        "    }",
        "}",
        "",
    ]
    return "\n".join(lines)


def _quoted(path: Path) -> str:
    """A path as an nginx string: quoted, so a results folder with a space or a ``;`` in its name still works."""
    text = str(path).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def command(nginx: Path, conf: Path, error_log: Path, temp_dir: Path) -> list[str]:
    """The exact command line, also recorded per step: the error log given with ``-e`` too, so that nginx writes
    nothing to its compiled-in /var/log path even before it has read the file; the prefix is the private folder."""
    return [str(nginx), "-p", f"{temp_dir}/", "-e", str(error_log), "-c", str(conf)]


def expected_processes(spec: ServerConfig) -> int:
    """nginx's master and its workers."""
    return 1 + (spec.proxy_workers or 1)


def timeouts_text() -> str:
    """nginx's timeouts that matter to a slow or idle client, and to a slow app, for a report."""
    t = TIMEOUTS_S
    return (
        f"client_header_timeout {t['client_header_timeout']} s and client_body_timeout {t['client_body_timeout']} s "
        f"(a client that stops sending its request is dropped after that long), keepalive_timeout "
        f"{t['keepalive_timeout']} s for an idle client connection, proxy_read_timeout {t['proxy_read_timeout']} s "
        "for the app's answer (nginx's own defaults)"
    )


def setup_text(spec: ServerConfig) -> str:
    """How a proxied configuration is served, in one sentence for the report's setup."""
    workers = spec.proxy_workers or 1
    return (
        f"nginx in front ({workers} worker process{'es' if workers != 1 else ''}, on the server's core(s)) reads each "
        f"request whole before passing it on, buffers each response, keeps up to {UPSTREAM_KEEPALIVE} idle "
        f"connections per worker open to the app and logs no access lines; its timeouts: {timeouts_text()}"
    )


# --- running it --------------------------------------------------------------------------------------------------


@dataclass
class RunningProxy:
    """A started nginx: where it listens, its process (the master, leader of its group) and its files."""

    spec: ServerConfig
    nginx: Nginx
    port: int
    process: subprocess.Popen[bytes]
    conf: Path
    error_log: Path
    temp_dir: Path
    command: list[str]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def pids(self) -> list[int]:
        return [p.pid for p in tree(self.process.pid)]


def wait_until_ready(
    proxy: RunningProxy,
    app_pids: Callable[[], list[int]],
    health_pid: Callable[[str], int | None],
    timeout_s: float,
    cpus: frozenset[int],
) -> None:
    """Ready means: /health through nginx is answered by a process of the app's own tree (not another server on
    the port, not nginx itself), and nginx's master has forked every worker it was told to."""
    deadline = time.monotonic() + timeout_s
    want = expected_processes(proxy.spec)
    while time.monotonic() < deadline:
        if not proxy.alive():
            raise ProxyError(
                f"nginx in front of {proxy.spec.name} exited with code {proxy.process.returncode} while starting "
                f"(configuration {proxy.conf}).\n" + log_tail(proxy.error_log)
            )
        # Ask first, then list the app's tree: a pid that answered existed before the list was taken.
        answered = health_pid(proxy.url)
        if answered is not None and answered not in app_pids():
            raise ProxyError(
                f"{proxy.url}/health is answered by process {answered}, which is not one of {proxy.spec.name}'s: "
                "another program holds the proxy's port"
            )
        if answered is not None and len(proxy.pids()) >= want:
            pin_tree(proxy.process.pid, cpus)
            return
        time.sleep(0.1)
    raise ProxyError(
        f"nginx in front of {proxy.spec.name} did not pass /health on {proxy.url} to it within {timeout_s:g} s "
        f"(wanted {want} nginx processes, saw {len(proxy.pids())}).\n" + log_tail(proxy.error_log)
    )


def file_names(stem: str) -> tuple[str, str]:
    """The configuration's and the error log's names beside a server log: ``nginx.conf`` beside ``server.log``
    (a step's folder), ``<stem>-nginx.conf`` beside any other (several servers sharing one folder)."""
    prefix = "" if stem == "server" else f"{stem}-"
    return f"{prefix}{CONF_NAME}", f"{prefix}{ERROR_LOG_NAME}"


@contextmanager
def run_proxy(
    spec: ServerConfig,
    *,
    nginx_setting: str,
    port: int,
    app_port: int,
    app_pids: Callable[[], list[int]],
    health_pid: Callable[[str], int | None],
    server_log: Path,
    cpus: frozenset[int],
    timeout_s: float,
) -> Iterator[RunningProxy]:
    """nginx in front of the app on ``app_port`` for the duration of the ``with`` block, pinned to ``cpus`` (the
    server's); its configuration and error log beside ``server_log``. nginx is stopped (its whole process group)
    and its private folder removed whatever happens, an interrupt included. Raises ProxyError if it cannot start."""
    if spec.proxy is None:
        raise ProxyError(f"{spec.name} has no proxy to start")
    nginx = inspect(find_nginx(nginx_setting))
    conf_name, log_name = file_names(server_log.stem)
    conf, error_log = server_log.parent / conf_name, server_log.parent / log_name
    temp_dir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    try:
        user = worker_user()
        if user is not None:
            temp_dir.chmod(0o711)  # the workers (another user) reach the temporary folders nginx makes for them
        text = config_text(
            workers=spec.proxy_workers or 1,
            port=port,
            app_port=app_port,
            temp_dir=temp_dir,
            error_log=error_log,
            user=user,
            app_keep_alive_s=spec.keep_alive_s,
            temp_modules=nginx.temp_modules,
            open_files=open_files_limit(resource.getrlimit(resource.RLIMIT_NOFILE)[1]),
        )
        files.write_atomically(conf, lambda handle: handle.write(text))
        argv = command(nginx.path, conf, error_log, temp_dir)
        process = start_group(argv, log_path=error_log, env=clean_env(), cwd=temp_dir, cpus=cpus)
        try:
            proxy = RunningProxy(spec, nginx, port, process, conf, error_log, temp_dir, argv)
            wait_until_ready(proxy, app_pids, health_pid, timeout_s, cpus)
            yield proxy
        finally:
            stop_group(process)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


def check(servers: Sequence[ServerConfig], nginx_setting: str) -> Nginx | None:
    """Before a run starts anything: when a server is proxied, find nginx, check what it is, and have it test the
    configuration the run will write (``nginx -t``), so a missing or refusing nginx is bad input (exit 2), not a
    failed step. None when no server is proxied."""
    proxied = [s for s in servers if s.proxy is not None]
    if not proxied:
        return None
    nginx = inspect(find_nginx(nginx_setting))
    temp_dir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    try:
        user = worker_user()
        if user is not None:
            temp_dir.chmod(0o711)
        conf, error_log = temp_dir / CONF_NAME, temp_dir / ERROR_LOG_NAME
        spec = max(proxied, key=lambda s: s.proxy_workers or 1)
        conf.write_text(
            config_text(
                workers=spec.proxy_workers or 1,
                port=8080,  # nginx -t binds nothing: any port will do
                app_port=8081,
                temp_dir=temp_dir,
                error_log=error_log,
                user=user,
                app_keep_alive_s=spec.keep_alive_s,
                temp_modules=nginx.temp_modules,
                open_files=open_files_limit(resource.getrlimit(resource.RLIMIT_NOFILE)[1]),
            ),
            encoding="utf-8",
        )
        argv = [*command(nginx.path, conf, error_log, temp_dir), "-t", "-q"]
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=30, env=clean_env(), cwd=temp_dir, check=False
            )
        except (OSError, subprocess.SubprocessError) as error:
            raise ProxyError(f"could not run {nginx.path} -t: {error}") from None
        if done.returncode != 0:
            said = (done.stderr + done.stdout).strip() or log_tail(error_log)
            raise ProxyError(
                f"{nginx.path} ({nginx.version}) refuses the configuration the harness writes for it "
                f"(`nginx -t` exited with code {done.returncode}):\n{said}"
            )
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    return nginx
