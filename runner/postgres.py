"""A real PostgreSQL behind both apps: the harness's own throwaway cluster, or an existing server, checked first.

The database is prepared once per run, before the first step, and kept for the whole run (its schema is seeded
once, not per step): either a cluster of our own (a temporary data directory outside the repository, a free port
on 127.0.0.1, settings for a benchmark) or an existing server named by a URL. Either way every refusal (a
malformed URL, a remote host without the opt-in, a refused connection, wrong credentials, no permission to create
the schema) happens before anything is measured, with a message naming what failed and never the password.

The embedded cluster must not outlive the run: the postmaster is a child of the harness that dies with it (as every
server does, see :func:`runner.processes.start_group`), and on every way out of the ``with`` block (the end, an
error, Ctrl-C or SIGTERM turned into KeyboardInterrupt by the CLI) it is shut down, whatever is left of its process
tree is killed, and its folder is removed. A folder left by a harness that was killed outright is removed by the
next one. PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` user (or ``nobody``).

Per step, :class:`StepWatch` measures what the database did in the window: its process tree's CPU (like the
server's) and the connections in use from ``pg_stat_activity``, the harness's own sampling connection left out.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

import psutil
import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgdb import schema
from runner.config import RunConfig, check_connections, mask_url
from runner.files import log_tail
from runner.processes import TreeSampler, clean_env, identity, pin_tree, start_group, stop_group
from runner.servers import HOST, ServerError, free_port

# The embedded cluster's database and its superuser role (the apps connect as it, over TCP, with a password).
NAME = "bench"
FOLDER_PREFIX = "bench-postgres-"
OWNER_FILE = "harness.pid"  # the pid of the harness that owns a folder: a folder whose owner is gone is stale
PACKAGE_ROOT = Path("/usr/lib/postgresql")
START_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0
CONNECT_TIMEOUT_S = 10
ACTIVITY_INTERVAL_S = 1.0
APPLICATION_NAME = "bench-harness"
# Durability is off: the data is seeded per run and thrown away, and a benchmark of the apps should not measure the
# disk's flush latency. shared_buffers stays modest (the whole data set is a few tens of MB).
BENCHMARK_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "128MB",
}
# What the report states about any server, ours or not (read back with SHOW).
REPORTED_SETTINGS = ("max_connections", *BENCHMARK_SETTINGS)
INSTALL_HINT = (
    "install them with `apt-get install postgresql` (`make test` and `make benchmark` do it), "
    "or point DATABASE_URL at an existing server"
)


class DatabaseError(ServerError):
    """The database cannot be used: the message names what failed (never a password). Raised before the first
    step it stops the run with exit code 2; during the run (a restart that fails) it ends the run like a server
    that cannot start."""


# --- a database URL ---------------------------------------------------------------------------------------------------

_USERINFO = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://)?([^/?#]*)@")  # scheme optional: a typo may drop it


def shown_url(url: str) -> str:
    """A URL fit to print, its password masked, even when the URL is too malformed to be split."""
    try:
        shown = mask_url(url)
    except ValueError:
        shown = url
    return re.sub(r"(password=)[^&\s]*", r"\1***", scrub(shown, url))


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's message, say) with the URL's password taken out, as written and as decoded."""
    match = _USERINFO.match(url)
    if match is None or ":" not in match.group(1):
        return text
    raw = match.group(1).split(":", 1)[1]
    for secret in sorted({raw, unquote(raw)}, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return text


def is_local(host: str) -> bool:
    """This machine: a socket path, ``localhost`` or a literal loopback address; a name is never resolved."""
    if host in ("", "localhost") or host.startswith(("/", "@")):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Target:
    """A parsed database URL; ``url`` holds the password and is never recorded or printed (``shown`` is)."""

    url: str
    hosts: tuple[str, ...]
    port: str
    dbname: str
    user: str

    @property
    def shown(self) -> str:
        return shown_url(self.url)

    @property
    def host(self) -> str:
        return ",".join(self.hosts) or "the default socket"

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}/{self.dbname}"

    @property
    def local(self) -> bool:
        return all(is_local(host) for host in self.hosts)


def parse_url(url: str) -> Target:
    """Check a URL's form with libpq's own parser (no connection is made); raises DatabaseError naming the fault."""
    if not re.match(r"^postgres(ql)?://", url):
        raise DatabaseError(
            f"database URL {shown_url(url)!r} is malformed: it must start with postgresql:// "
            "(postgresql://user:password@host:port/database)"
        )
    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error as error:
        detail = scrub(str(error).strip().splitlines()[0], url)
        raise DatabaseError(f"database URL {shown_url(url)!r} is malformed: {detail}") from None
    port = str(parts.get("port") or "5432")
    if not all(p == "" or (p.isdigit() and 0 < int(p) < 65536) for p in port.split(",")):  # "": the default
        raise DatabaseError(f"database URL {shown_url(url)!r} is malformed: port {port!r} is not a port number")
    user = str(parts.get("user") or pwd.getpwuid(os.geteuid()).pw_name)
    host = str(parts.get("host") or parts.get("hostaddr") or "")
    return Target(
        url=url,
        hosts=tuple(host.split(",")) if host else (),
        port=port,
        dbname=str(parts.get("dbname") or user),
        user=user,
    )


def check_remote(target: Target, allow_remote: bool) -> None:
    """A server on another machine is measured only on request, as a remote load target is: the opt-in says the
    reader knows the network is in every figure."""
    if target.local or allow_remote:
        return
    raise DatabaseError(
        f"database URL {target.shown!r}: {target.host} is not this machine; a database elsewhere needs an explicit "
        "opt-in: allow_remote = true in [database], --allow-remote-database or BENCH_ALLOW_REMOTE_DATABASE=1"
    )


def connect_failure(target: Target, message: str) -> str:
    """What a failed connection means, in the reader's terms; libpq's own words follow in brackets."""
    text = scrub(message, target.url)
    detail = " ".join(text.split("failed:", 1)[-1].split()) or text
    low = text.lower()
    if 'database "' in low and "does not exist" in low:
        return f"database {target.dbname!r} does not exist on {target.host}:{target.port} ({detail})"
    if any(sign in low for sign in ("authentication failed", "no pg_hba.conf entry", "no password supplied", "role ")):
        return f"wrong credentials for {target.where}: the server refused user {target.user!r} ({detail})"
    if "connection refused" in low:
        return f"connection refused by {target.host}:{target.port}: is PostgreSQL running there? ({target.shown})"
    if "timeout" in low:
        return f"no answer from {target.host}:{target.port} within {CONNECT_TIMEOUT_S} s ({detail})"
    return f"could not connect to {target.where}: {detail}"


def connect(target: Target, dbname: str | None = None) -> psycopg.Connection[Any]:
    """An autocommit connection, named so the harness's own sessions can be told apart; DatabaseError if none."""
    conninfo = make_conninfo(target.url, dbname=dbname) if dbname else target.url
    try:
        return psycopg.connect(
            conninfo, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True, application_name=APPLICATION_NAME
        )
    except psycopg.Error as error:
        raise DatabaseError(connect_failure(target, str(error))) from None


@dataclass(frozen=True)
class ServerFacts:
    """What the server says of itself: what the report states, and the ceiling the pools must fit under."""

    version: str
    max_connections: int
    settings: dict[str, str]


def server_facts(conn: psycopg.Connection[Any]) -> ServerFacts:
    rows = conn.execute(
        "SELECT name, current_setting(name) FROM unnest(%s::text[]) AS name", [list(REPORTED_SETTINGS)]
    ).fetchall()
    settings = {str(name): str(value) for name, value in rows}
    version_row = conn.execute("SHOW server_version").fetchone()
    return ServerFacts(
        version=str(version_row[0]) if version_row else "unknown",
        max_connections=int(settings["max_connections"]),
        settings=settings,
    )


def ensure_schema(target: Target) -> None:
    """Create the benchmark's tables once, or check the ones there (:func:`pgdb.schema.ensure`); its refusals are
    told apart by their cause, so a missing permission is named as one."""
    try:
        schema.ensure(target.url)
    except schema.SchemaError as error:
        cause = error.__cause__
        if isinstance(cause, pg_errors.InsufficientPrivilege):
            detail = scrub(cause.diag.message_primary or str(cause), target.url)
            raise DatabaseError(
                f"user {target.user!r} has no permission to create or read the benchmark schema in {target.where} "
                f"({detail}); grant it CREATE on schema public, or use a role that owns the database"
            ) from None
        if isinstance(cause, psycopg.OperationalError):
            raise DatabaseError(connect_failure(target, str(cause))) from None
        raise DatabaseError(f"the benchmark schema in {target.where}: {scrub(str(error), target.url)}") from None


# --- the embedded cluster ---------------------------------------------------------------------------------------------


def find_bindir(package_root: Path = PACKAGE_ROOT) -> Path:
    """The server binaries: ``pg_config --bindir`` if it has them, else the newest major in Debian's layout."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            found = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False
            ).stdout.strip()
            if found:
                candidates.append(Path(found))
    candidates += sorted(package_root.glob("*/bin"), key=_major, reverse=True)
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in ("initdb", "postgres")):
            return bindir
    raise DatabaseError(
        f"the PostgreSQL server binaries (initdb, postgres) are not installed: not in `pg_config --bindir` nor "
        f"in {package_root}/<version>/bin; {INSTALL_HINT}"
    )


def _major(bindir: Path) -> int:
    name = bindir.parent.name
    return int(name) if name.isdigit() else -1


def run_as() -> str | None:
    """Who runs PostgreSQL: ourselves, or as root an unprivileged user (it refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise DatabaseError(
        "running as root, and there is no `postgres` or `nobody` user to run PostgreSQL as (it refuses to run as "
        "root): create one with `useradd --system postgres`"
    )


@dataclass
class Cluster:
    """A throwaway PostgreSQL cluster in ``folder``: data, socket and log inside it, nothing anywhere else."""

    bindir: Path
    folder: Path
    user: str | None
    port: int
    max_connections: int
    cpus: frozenset[int]
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)
    version: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql://{NAME}:{self.password}@{HOST}:{self.port}/{NAME}"

    @property
    def settings(self) -> dict[str, str]:
        """Every setting given on the command line, as the report states them."""
        return {
            "listen_addresses": HOST,
            "port": str(self.port),
            "max_connections": str(self.max_connections),
            **BENCHMARK_SETTINGS,
        }

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def init(self) -> None:
        """initdb, with a random password for the superuser and password authentication for every connection."""
        secret = self.folder / "password"
        secret.write_text(self.password + "\n", encoding="utf-8")
        _hand_over(secret, self.user)
        with self.log.open("ab") as log:
            try:
                done = subprocess.run(
                    [
                        str(self.bindir / "initdb"), "-D", str(self.data), "-U", NAME, "-E", "UTF8",
                        "--locale=C", "--auth=scram-sha-256", f"--pwfile={secret}", "--no-sync",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=clean_env(),
                    cwd=self.folder,
                    timeout=START_TIMEOUT_S,
                    check=False,
                    **identity(self.user),
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                raise DatabaseError(f"initdb did not finish in {START_TIMEOUT_S:g} s.\n{log_tail(self.log)}") from None
            finally:
                secret.unlink(missing_ok=True)
        if done.returncode != 0:
            raise DatabaseError(f"initdb failed (exit code {done.returncode}).\n{log_tail(self.log)}")
        socket_dir = self.folder / "socket"
        socket_dir.mkdir()
        _hand_over(socket_dir, self.user)

    def start(self) -> None:
        """The postmaster as a child of the harness (not through pg_ctl, whose exit would orphan it), pinned, and
        ready: it accepts a connection with the password."""
        options = [f"-c{key}={value}" for key, value in self.settings.items()]
        options.append(f"-cunix_socket_directories={self.folder / 'socket'}")
        self.process = start_group(
            [str(self.bindir / "postgres"), "-D", str(self.data), *options],
            log_path=self.log,
            env=clean_env(),
            cwd=self.folder,
            cpus=self.cpus,
            user=self.user,
        )
        self.version = self.wait_until_ready(START_TIMEOUT_S)
        pin_tree(self.process.pid, self.cpus)

    def wait_until_ready(self, timeout_s: float) -> str:
        """Until a connection to the maintenance database succeeds (startup or crash recovery can take a while);
        returns the server's version."""
        target = parse_url(self.url)
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            if not self.alive():
                code = self.process.returncode if self.process is not None else None
                raise DatabaseError(f"PostgreSQL exited with code {code} while starting.\n{log_tail(self.log)}")
            try:
                with connect(target, dbname="postgres") as conn:
                    row = conn.execute("SHOW server_version").fetchone()
                    return str(row[0]) if row else "unknown"
            except DatabaseError as error:
                last = str(error)
            time.sleep(0.1)
        raise DatabaseError(
            f"PostgreSQL did not accept connections within {timeout_s:g} s ({last}).\n{log_tail(self.log)}"
        )

    def create_database(self) -> None:
        with connect(parse_url(self.url), dbname="postgres") as conn:
            conn.execute(f"CREATE DATABASE {NAME}")

    def restart(self) -> None:
        """After a crash: whatever is left of the old cluster is killed (an orphaned backend holding the shared
        memory would stop the new postmaster), then the same data directory starts again on the same port."""
        self.stop()
        self.start()

    def stop(self) -> None:
        """A fast shutdown (SIGINT, what ``pg_ctl stop -m fast`` sends), then every process of the cluster killed.

        A second Ctrl-C during the shutdown cuts it short but never the kill: it is raised afterwards."""
        pending: KeyboardInterrupt | None = None
        process = self.process
        try:
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=STOP_GRACE_S)
        except KeyboardInterrupt as interrupt:
            pending = interrupt
        finally:
            if process is not None:
                stop_group(process, grace_s=0.0)
            kill_leftovers(self.data)
        if pending is not None:
            raise pending


def _hand_over(path: Path, user: str | None) -> None:
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def leftovers(data: Path) -> list[psutil.Process]:
    """Processes of a cluster, found by their working directory (every PostgreSQL process works in its data
    directory), so even backends orphaned by a killed postmaster are found."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if proc.cwd() == str(data):
                found.append(proc)
    return found


def kill_leftovers(data: Path) -> None:
    procs = leftovers(data)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(procs, timeout=5.0)


def remove_stale(parent: Path) -> None:
    """Folders whose harness is gone (it was killed outright, and its cluster with it) are removed."""
    for folder in parent.glob(f"{FOLDER_PREFIX}*"):
        try:
            owner = int((folder / OWNER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if owner != os.getpid() and not psutil.pid_exists(owner):
            kill_leftovers(folder / "data")
            shutil.rmtree(folder, ignore_errors=True)


def _remove(folder: Path) -> None:
    for _ in range(3):
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            return
        time.sleep(0.5)


@contextlib.contextmanager
def embedded_cluster(
    folder_parent: Path | None = None, max_connections: int = 100, cpus: frozenset[int] = frozenset()
) -> Iterator[Cluster]:
    """A throwaway cluster for the ``with`` block: started, its database created, then stopped and its folder
    removed on every way out (a KeyboardInterrupt included)."""
    bindir = find_bindir()
    user = run_as()
    parent = folder_parent or Path(tempfile.gettempdir())
    remove_stale(parent)
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=parent))
    cluster = Cluster(bindir, folder, user, free_port(), max_connections, cpus)
    try:
        (folder / OWNER_FILE).write_text(str(os.getpid()), encoding="utf-8")
        _hand_over(folder, user)
        cluster.init()
        cluster.start()
        cluster.create_database()
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            _remove(folder)


# --- the database of a run --------------------------------------------------------------------------------------------


@dataclass
class Database:
    """The run's database, embedded or existing: where it is, what it is, and how to watch it during a step."""

    kind: Literal["embedded", "external"]
    target: Target
    facts: ServerFacts
    cpu_pinning: str
    cluster: Cluster | None = None
    external_pid: int | None = None  # an existing server's postmaster, when it runs on this machine

    @property
    def url(self) -> str:
        return self.target.url

    @property
    def postmaster(self) -> int | None:
        """The process whose tree's CPU is the database's; None when it is not on this machine."""
        return self.cluster.pid if self.cluster is not None else self.external_pid

    @property
    def settings(self) -> dict[str, str]:
        return self.facts.settings

    def describe(self) -> str:
        """One line for the console and the report: what served the queries."""
        settings = ", ".join(f"{key}={value}" for key, value in self.settings.items())
        if self.kind == "embedded":
            return f"embedded cluster: PostgreSQL {self.facts.version} on {HOST}, settings {settings}"
        return f"existing server at {self.target.where} (PostgreSQL {self.facts.version}), settings {settings}"

    def metadata(self) -> dict[str, Any]:
        """What run.json records (the URL never: it may hold a password, and an embedded one is gone after)."""
        return {
            "kind": self.kind,
            "version": self.facts.version,
            "host": HOST if self.cluster is not None else self.target.host,
            "port": int(self.target.port) if self.target.port.isdigit() else self.target.port,
            "database": self.target.dbname,
            "settings": self.settings,
            "max_connections": self.facts.max_connections,
            "cpu_pinning": self.cpu_pinning,
            "cpu_measured": self.postmaster is not None,
            "text": self.describe(),
        }

    def ensure_up(self) -> str | None:
        """Before each step: the database answers. A stopped embedded cluster is restarted (the run goes on, and
        says so); an existing server that does not answer ends the run (DatabaseError)."""
        if self.cluster is None:
            connect(self.target).close()
            return None
        if self.cluster.alive():
            self.cluster.wait_until_ready(START_TIMEOUT_S)
            return None
        code = self.cluster.process.returncode if self.cluster.process is not None else None
        self.cluster.restart()
        ensure_schema(self.target)
        return f"PostgreSQL had stopped (exit code {code}); restarted it on the same data directory and port"

    @contextlib.contextmanager
    def watch(self) -> Iterator[StepWatch]:
        """Watch the database through one step: CPU of its process tree, connections in use."""
        pid = self.postmaster
        with contextlib.ExitStack() as held:
            cpu = held.enter_context(TreeSampler(pid)) if pid is not None else None
            activity = held.enter_context(ActivitySampler(self.target))
            yield StepWatch(self, cpu, activity, pid)

    def log(self) -> str:
        return log_tail(self.cluster.log) if self.cluster is not None else "(an existing server: its log is its own)"


@dataclass(frozen=True)
class ActivitySample:
    """One reading of ``pg_stat_activity`` (epoch seconds), the harness's own session not counted."""

    t: float
    active: int  # our database's client connections not idle (running a query, or in a transaction)
    connections: int  # all our database's client connections


@dataclass
class ActivitySampler:
    """Counts the connections in use from ``pg_stat_activity`` about once a second, on its own connection (which
    is left out of the counts), in a background thread."""

    target: Target
    interval_s: float = ACTIVITY_INTERVAL_S
    samples: list[ActivitySample] = field(default_factory=list)
    lost: str | None = None
    _conn: psycopg.Connection[Any] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    QUERY = (
        "SELECT count(*) FILTER (WHERE state <> 'idle'), count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )

    def __enter__(self) -> ActivitySampler:
        try:
            self._conn = connect(self.target)
        except DatabaseError as error:
            self.lost = str(error)
            return self
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="db-activity", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=CONNECT_TIMEOUT_S)
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()

    def _loop(self) -> None:
        while self.lost is None and not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        if self._conn is None or self.lost is not None:
            return
        try:
            row = self._conn.execute(self.QUERY).fetchone()
        except psycopg.Error as error:
            self.lost = scrub(" ".join(str(error).split()), self.target.url)
            return
        if row is not None:
            self.samples.append(ActivitySample(time.time(), int(row[0]), int(row[1])))


@dataclass
class StepWatch:
    """One step's watch on the database: its CPU (None when it is not on this machine) and its connections."""

    database: Database
    cpu: TreeSampler | None
    activity: ActivitySampler
    pid: int | None
    resources_file: str = "database_resources.csv"  # where the step keeps its CPU samples (runner.sweep)

    def figures(self, bounds: tuple[float, float] | None) -> dict[str, float | int | None]:
        """The step record's database figures over the measured window (None where not measured)."""
        cpu_pct: float | None = None
        if self.cpu is not None and bounds is not None:
            cpu_pct, _ = self.cpu.window(*bounds)
        inside = [s for s in self.activity.samples if bounds is not None and bounds[0] <= s.t <= bounds[1]]
        return {
            "db_cpu_pct": cpu_pct,
            "db_connections_max": max((s.active for s in inside), default=None),
            "db_connections_mean": sum(s.active for s in inside) / len(inside) if inside else None,
            "db_connections_total_max": max((s.connections for s in inside), default=None),
        }

    def fault(self) -> str | None:
        """Whether the database failed during the step: its postmaster exited, or the harness's connection was
        cut (a crashed backend makes PostgreSQL end every session while it recovers)."""
        cluster = self.database.cluster
        if cluster is not None and (not cluster.alive() or cluster.pid != self.pid):
            code = cluster.process.returncode if cluster.process is not None else None
            return f"PostgreSQL exited during the step (exit code {code}).\n{self.database.log()}"
        if self.activity.lost is not None:
            return f"the database connection was lost during the step: {self.activity.lost}\n{self.database.log()}"
        return None


def _local_postmaster(conn: psycopg.Connection[Any], target: Target) -> int | None:
    """An existing server's postmaster, if it runs on this machine where we can see it: the parent of our own
    backend. A server in a container (another pid namespace) or elsewhere is not measured."""
    if not target.local:
        return None
    with contextlib.suppress(psutil.Error):
        backend = psutil.Process(conn.info.backend_pid)
        parent = backend.parent()
        if parent is not None and backend.name().startswith("postgres") and parent.name().startswith("postgres"):
            return int(parent.pid)
    return None


def pinning_note(cpus: frozenset[int]) -> str:
    if cpus:
        return (
            f"PostgreSQL pinned to core(s) {sorted(cpus)}, with Locust and the harness; "
            "the server under test keeps its own core(s)"
        )
    return "PostgreSQL not pinned: it shares every core with the client and the server"


@contextlib.contextmanager
def run_database(config: RunConfig, cpus: frozenset[int]) -> Iterator[Database | None]:
    """The run's database, ready, for the ``with`` block; None with the simulated backend.

    Raises DatabaseError (or ScenarioError, from :func:`runner.config.check_connections`) before anything is
    measured: the caller stops the run with exit code 2. The embedded cluster is pinned to ``cpus`` (the client's
    cores: the server under test keeps its own to itself, as in simulated runs)."""
    wanted = config.database
    if wanted.backend != "postgres":
        yield None
        return
    if wanted.url:
        target = parse_url(wanted.url)
        check_remote(target, wanted.allow_remote)
        with connect(target) as conn:
            facts = server_facts(conn)
            pid = _local_postmaster(conn, target)
        check_connections(config, facts.max_connections)
        ensure_schema(target)
        if pid is not None:
            note = "an existing server on this machine, not pinned by the harness; its CPU is measured"
        else:
            note = "an existing server whose processes are not visible here: not pinned, its CPU not measured"
        yield Database("external", target, facts, note, external_pid=pid)
        return
    check_connections(config, wanted.max_connections)  # before anything starts
    with embedded_cluster(None, wanted.max_connections, cpus) as cluster:
        target = parse_url(cluster.url)
        ensure_schema(target)
        with connect(target) as conn:
            facts = server_facts(conn)
        yield Database("embedded", target, facts, pinning_note(cpus), cluster=cluster)


def served(config: RunConfig, database: Database | None) -> RunConfig:
    """The configuration the servers get: the database's effective URL in place of the scenario's (empty for the
    embedded cluster). Only servers see it; run.json records the scenario's, masked."""
    if database is None:
        return config
    return replace(config, database=replace(config.database, url=database.url))
