"""The real database, harness side: URLs and their refusals, the embedded cluster's life, and a sweep on it.

The first part starts no process: URL parsing, masking and the remote refusal, the messages a failed connection
gives, where the binaries are looked for, what a step records. The integration part starts real PostgreSQL
clusters: one starts, answers and leaves nothing behind (on an exception and Ctrl-C too, and after its harness was
killed outright); each refusal on a real server; a cluster killed in the middle of a step; a small sweep through
``python -m runner``, interrupted once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
from rich.console import Console

from runner import cli, loadgen, postgres, store, sweep
from runner.config import RunConfig, ScenarioError, load_config
from runner.postgres import (
    ActivitySample,
    ActivitySampler,
    DatabaseError,
    StepWatch,
    check_remote,
    connect_failure,
    embedded_cluster,
    find_bindir,
    is_local,
    parse_url,
    run_database,
    served,
    shown_url,
)
from runner.processes import CpuPlan, Sample, TreeSampler
from runner.servers import free_port
from tests.scenarios import POSTGRES, small_scenario

ROOT = Path(__file__).resolve().parent.parent
SECRET = "hunter2"  # a password no message may show
UNPINNED = CpuPlan(frozenset(), frozenset(), "not pinned (test)")


def postgres_config(tmp_path: Path, environ: dict[str, str] | None = None, **values: object) -> RunConfig:
    scenario = tmp_path / "pg.toml"
    scenario.write_text(small_scenario(**{**POSTGRES, **values}), encoding="utf-8")
    return load_config(str(scenario), environ or {}, {"--results-dir": str(tmp_path / "results")})


# --- a database URL ---------------------------------------------------------------------------------------------------


def test_a_url_is_read_into_its_parts_and_shown_without_its_password() -> None:
    target = parse_url(f"postgresql://alice:{SECRET}@db.internal:6543/shop")
    assert (target.hosts, target.port, target.dbname, target.user) == (("db.internal",), "6543", "shop", "alice")
    assert target.shown == "postgresql://alice:***@db.internal:6543/shop"
    assert target.where == "db.internal:6543/shop"
    assert not target.local


def test_a_url_without_port_user_or_database_gets_libpq_defaults() -> None:
    target = parse_url("postgresql://127.0.0.1")
    assert target.port == "5432"
    assert target.user and target.dbname == target.user  # libpq's defaults: the OS user, a database of its name
    assert target.local


@pytest.mark.parametrize(
    ("url", "named"),
    [
        (f"mysql://u:{SECRET}@h/db", "must start with postgresql://"),
        (f"u:{SECRET}@h/db", "must start with postgresql://"),
        (f"postgresql://u:{SECRET}@[::1/db", "IPv6"),
        (f"postgresql://u:{SECRET}%zz@h/db", "percent-encoded"),
        (f"postgresql://u:{SECRET}@h:abc/db", "port 'abc' is not a port number"),
        (f"postgresql://u:{SECRET}@h:99999/db", "port '99999' is not a port number"),
    ],
)
def test_a_malformed_url_is_named_without_its_password(url: str, named: str) -> None:
    with pytest.raises(DatabaseError, match="malformed") as caught:
        parse_url(url)
    assert named in str(caught.value)
    assert SECRET not in str(caught.value)


def test_a_password_is_masked_even_where_the_url_cannot_be_split() -> None:
    assert SECRET not in shown_url(f"postgresql://u:{SECRET}@h:abc/db")
    assert SECRET not in shown_url(f"postgresql://h/db?password={SECRET}")
    assert shown_url("postgresql://u@h/db") == "postgresql://u@h/db"


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("::1", True),
        ("/var/run/postgresql", True),
        ("", True),  # no host: libpq's default socket
        ("10.0.0.5", False),
        ("db.example.com", False),
        ("localhost.example.com", False),  # a name is never resolved
    ],
)
def test_this_machine_is_a_socket_localhost_or_a_loopback_address(host: str, local: bool) -> None:
    assert is_local(host) is local


def test_a_server_elsewhere_needs_the_opt_in() -> None:
    remote = parse_url(f"postgresql://u:{SECRET}@db.example.com/x")
    with pytest.raises(DatabaseError, match="not this machine") as caught:
        check_remote(remote, allow_remote=False)
    assert "allow_remote = true" in str(caught.value) and SECRET not in str(caught.value)
    check_remote(remote, allow_remote=True)
    check_remote(parse_url("postgresql://u@localhost/x"), allow_remote=False)
    with pytest.raises(DatabaseError, match="not this machine"):
        check_remote(parse_url("postgresql://u@127.0.0.1,db.example.com/x"), allow_remote=False)


# libpq's own words, as psycopg 3 reports them.
FAILURES = [
    pytest.param(
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication '
        'failed for user "alice"',
        "wrong credentials for 127.0.0.1:5432/shop: the server refused user 'alice'",
        id="password",
    ),
    pytest.param(
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  role "alice" does not exist',
        "wrong credentials",
        id="role",
    ),
    pytest.param(
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  database "shop" does not '
        "exist",
        "database 'shop' does not exist on 127.0.0.1:5432",
        id="database",
    ),
    pytest.param(
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection refused\n\tIs the '
        "server running on that host and accepting TCP/IP connections?",
        "connection refused by 127.0.0.1:5432",
        id="refused",
    ),
    pytest.param("connection failed: timeout expired", "no answer from 127.0.0.1:5432", id="timeout"),
]


@pytest.mark.parametrize(("message", "named"), FAILURES)
def test_a_failed_connection_says_what_failed(message: str, named: str) -> None:
    text = connect_failure(parse_url(f"postgresql://alice:{SECRET}@127.0.0.1:5432/shop"), message)
    assert named in text
    assert SECRET not in text


def test_a_refused_connection_stops_before_anything_is_measured(tmp_path: Path) -> None:
    """Nothing listens on a fresh free port: the connection is refused (no process is started for this)."""
    url = f"postgresql://bench:{SECRET}@127.0.0.1:{free_port()}/bench"
    config = postgres_config(tmp_path, {"DATABASE_URL": url})
    with (
        pytest.raises(DatabaseError, match=r"connection refused by 127\.0\.0\.1") as caught,
        run_database(config, frozenset()),
    ):
        pass
    assert SECRET not in str(caught.value)


def test_a_remote_server_is_refused_before_any_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_connection(*args: object, **named: object) -> None:
        pytest.fail("connected to a remote server without the opt-in")

    monkeypatch.setattr(psycopg, "connect", no_connection)
    config = postgres_config(tmp_path, {"DATABASE_URL": f"postgresql://u:{SECRET}@10.1.2.3/x"})
    with pytest.raises(DatabaseError, match=r"10\.1\.2\.3 is not this machine"), run_database(config, frozenset()):
        pass


def test_pools_too_big_for_the_cluster_are_refused_before_it_starts(tmp_path: Path) -> None:
    """2 sync workers x pool 3 + the harness's 2 = 8 > 5: refused before any process (the fast suite's guard would
    fail this test if the cluster were started)."""
    config = postgres_config(tmp_path, database='backend = "postgres"\npool_size = 3\nmax_connections = 5')
    with pytest.raises(ScenarioError, match="max_connections = 5"), run_database(config, frozenset()):
        pass


def test_the_simulated_backend_has_no_database(tmp_path: Path) -> None:
    config = postgres_config(tmp_path, database="", sync_server="", async_server="")
    with run_database(config, frozenset()) as database:
        assert database is None
    assert served(config, None) is config


@pytest.mark.parametrize(
    ("url", "named"),
    [
        (f"postgresql://u:{SECRET}@h:abc/db", "malformed"),
        (f"postgresql://u:{SECRET}@db.example.com/x", "not this machine"),
    ],
)
def test_the_command_stops_with_exit_code_2_and_starts_no_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, named: str
) -> None:
    scenario = tmp_path / "pg.toml"
    scenario.write_text(small_scenario(**POSTGRES), encoding="utf-8")
    results = tmp_path / "results"
    code = cli.main([str(scenario), "--results-dir", str(results), "--database-url", url])
    err = capsys.readouterr().err
    assert code == 2
    assert named in err and SECRET not in err
    assert not results.exists() or not list(results.iterdir())


# --- where the binaries are, and who runs them ------------------------------------------------------------------------


def _fake_bin(root: Path, major: str, names: tuple[str, ...] = ("initdb", "postgres")) -> Path:
    bindir = root / major / "bin"
    bindir.mkdir(parents=True)
    for name in names:
        (bindir / name).write_text("#!/bin/sh\n")
        (bindir / name).chmod(0o755)
    return bindir


def test_the_newest_installed_major_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    _fake_bin(tmp_path, "9")
    newest = _fake_bin(tmp_path, "16")
    _fake_bin(tmp_path, "17", names=("initdb",))  # no server binary: not usable
    assert find_bindir(tmp_path) == newest


def test_missing_binaries_say_how_to_install_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DatabaseError, match="not installed") as caught:
        find_bindir(tmp_path)
    assert "apt-get install postgresql" in str(caught.value)


def test_as_root_postgres_runs_as_an_unprivileged_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert postgres.run_as() is None  # a normal user runs it as themselves
    monkeypatch.setattr(os, "geteuid", lambda: 0)

    def nobody(name: str) -> None:
        raise KeyError(name)

    monkeypatch.setattr(pwd, "getpwnam", nobody)
    with pytest.raises(DatabaseError, match="useradd"):
        postgres.run_as()


# --- what a step records ----------------------------------------------------------------------------------------------


def _database(cluster: postgres.Cluster | None = None) -> postgres.Database:
    facts = postgres.ServerFacts("15.18", 100, {"max_connections": "100", "fsync": "off"})
    target = parse_url(f"postgresql://bench:{SECRET}@127.0.0.1:5999/bench")
    return postgres.Database("embedded", target, facts, "not pinned", cluster=cluster)


def test_a_step_records_the_database_cpu_and_connections_in_its_window() -> None:
    cpu = TreeSampler(pid=1)
    cpu.samples = [Sample(100.0, 1.0, 0, 3), Sample(110.0, 3.0, 0, 3)]
    activity = ActivitySampler(parse_url("postgresql://u@127.0.0.1/x"))
    activity.samples = [ActivitySample(99.0, 9, 9), ActivitySample(101.0, 2, 6), ActivitySample(102.0, 4, 6),
                        ActivitySample(103.0, 3, 7), ActivitySample(111.0, 9, 9)]  # fmt: skip
    watch = StepWatch(_database(), cpu, activity, 1)
    figures = watch.figures((100.0, 110.0))
    assert figures == {"db_cpu_pct": pytest.approx(20.0), "db_connections_max": 4, "db_connections_mean": 3.0,
                       "db_connections_total_max": 7}  # fmt: skip
    assert StepWatch(_database(), None, activity, None).figures(None) == dict.fromkeys(figures)


def test_a_lost_database_connection_fails_the_step() -> None:
    activity = ActivitySampler(parse_url("postgresql://u@127.0.0.1/x"))
    activity.lost = "terminating connection because of crash of another server process"
    fault = StepWatch(dataclasses.replace(_database(), kind="external"), None, activity, None).fault()
    assert fault is not None and fault.startswith("the database connection was lost during the step")


def test_the_servers_get_the_effective_url_and_run_json_never_does(tmp_path: Path) -> None:
    config = postgres_config(tmp_path)
    database = _database()
    serving = served(config, database)
    assert serving.database.url == database.url
    assert config.database.url == ""
    metadata = json.dumps(database.metadata())
    assert SECRET not in metadata and "postgresql://" not in metadata
    assert database.describe().startswith("embedded cluster: PostgreSQL 15.18 on 127.0.0.1, settings ")


# --- real clusters (integration) --------------------------------------------------------------------------------------

MARK = pytest.mark.integration
TEMP = Path(tempfile.gettempdir())


def folder_of(harness: int) -> Path | None:
    """The cluster folder a harness process made (it writes its pid there); other tests' clusters are not ours."""
    for folder in TEMP.glob(f"{postgres.FOLDER_PREFIX}*"):
        try:
            if (folder / postgres.OWNER_FILE).read_text(encoding="utf-8") == str(harness):
                return folder
        except OSError:
            continue
    return None


def working_in(folder: Path) -> list[psutil.Process]:
    """Processes whose working directory is inside ``folder``, even after it was deleted."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.cwd().startswith(str(folder)):
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


@pytest.fixture
def cluster_parent() -> Iterator[Path]:
    """A folder the unprivileged user PostgreSQL runs as can reach (pytest's own tmp_path is root's alone)."""
    parent = Path(tempfile.mkdtemp(prefix="bench-test-"))
    parent.chmod(0o755)
    yield parent
    for folder in parent.glob(f"{postgres.FOLDER_PREFIX}*"):
        postgres.kill_leftovers(folder / "data")
    subprocess.run(["rm", "-rf", str(parent)], check=False)


@pytest.fixture(scope="module")
def cluster() -> Iterator[postgres.Cluster]:
    with embedded_cluster(max_connections=30) as running:
        postgres.ensure_schema(parse_url(running.url))
        yield running


def _gone(cluster: postgres.Cluster) -> None:
    assert not cluster.folder.exists()
    assert postgres.leftovers(cluster.data) == []
    assert cluster.pid is not None and not psutil.pid_exists(cluster.pid)


@MARK
def test_the_embedded_cluster_answers_and_leaves_nothing_behind(cluster_parent: Path) -> None:
    core = frozenset(sorted(os.sched_getaffinity(0))[:1])
    with embedded_cluster(cluster_parent, max_connections=20, cpus=core) as running:
        with postgres.connect(parse_url(running.url)) as conn:
            facts = postgres.server_facts(conn)
        assert facts.settings["fsync"] == "off" and facts.max_connections == 20
        assert running.version.split(".")[0].isdigit()
        processes = postgres.leftovers(running.data)
        assert len(processes) >= 3  # the postmaster and its background workers
        checked = 0
        for proc in processes:
            try:
                affinity = os.sched_getaffinity(proc.pid)
            except ProcessLookupError:
                continue  # a short-lived backend that ended between the listing and this check
            assert affinity == core
            if os.geteuid() == 0:
                with contextlib.suppress(psutil.NoSuchProcess):
                    assert proc.username() != "root"
            checked += 1
        assert checked >= 3  # the postmaster and its long-lived background workers are always there
    _gone(running)


@MARK
def test_an_interrupted_run_leaves_no_cluster_behind(cluster_parent: Path) -> None:
    with pytest.raises(KeyboardInterrupt), embedded_cluster(cluster_parent) as running:
        raise KeyboardInterrupt
    _gone(running)


@MARK
def test_a_killed_harness_takes_its_cluster_along_and_the_next_one_removes_its_folder(cluster_parent: Path) -> None:
    script = (
        "import sys, time\nfrom pathlib import Path\nfrom runner.postgres import embedded_cluster\n"
        "with embedded_cluster(Path(sys.argv[1])) as c:\n    print(c.pid, c.folder, flush=True)\n    time.sleep(120)\n"
    )
    harness = subprocess.Popen(
        [sys.executable, "-c", script, str(cluster_parent)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert harness.stdout is not None
        pid_text, folder_text = harness.stdout.readline().split()
        harness.kill()
        harness.wait(timeout=10)
        postmaster = psutil.Process(int(pid_text))
        postmaster.wait(timeout=10)  # killed with its parent (PR_SET_PDEATHSIG)
        folder = Path(folder_text)
        deadline = time.monotonic() + 10
        while postgres.leftovers(folder / "data") and time.monotonic() < deadline:
            time.sleep(0.1)  # its backends notice their postmaster is gone
        assert postgres.leftovers(folder / "data") == []
        assert folder.exists()  # a SIGKILL leaves no chance to clean up ...
        with embedded_cluster(cluster_parent):
            assert not folder.exists()  # ... so the next cluster does it
    finally:
        if harness.poll() is None:
            harness.kill()
        harness.wait(timeout=10)
        if harness.stdout is not None:
            harness.stdout.close()


def _url(cluster: postgres.Cluster, user: str, password: str, dbname: str = postgres.NAME) -> str:
    return f"postgresql://{user}:{password}@127.0.0.1:{cluster.port}/{dbname}"


@MARK
def test_wrong_credentials_are_named(cluster: postgres.Cluster, tmp_path: Path) -> None:
    config = postgres_config(tmp_path, {"DATABASE_URL": _url(cluster, postgres.NAME, SECRET)})
    with pytest.raises(DatabaseError, match="wrong credentials") as caught, run_database(config, frozenset()):
        pass
    assert f"user {postgres.NAME!r}" in str(caught.value) and SECRET not in str(caught.value)


@MARK
def test_a_missing_database_is_named(cluster: postgres.Cluster, tmp_path: Path) -> None:
    config = postgres_config(tmp_path, {"DATABASE_URL": _url(cluster, postgres.NAME, cluster.password, "nosuch")})
    with pytest.raises(DatabaseError, match="database 'nosuch' does not exist"), run_database(config, frozenset()):
        pass


@MARK
def test_no_permission_to_create_the_schema_is_named(cluster: postgres.Cluster, tmp_path: Path) -> None:
    """A role that may connect to an empty database but not create tables in it (PostgreSQL 15's default for a
    role that does not own the database)."""
    with postgres.connect(parse_url(cluster.url)) as conn:
        conn.execute(f"CREATE ROLE reader LOGIN PASSWORD '{SECRET}'")
        conn.execute("CREATE DATABASE empty")
    config = postgres_config(tmp_path, {"DATABASE_URL": _url(cluster, "reader", SECRET, "empty")})
    with pytest.raises(DatabaseError, match="no permission") as caught, run_database(config, frozenset()):
        pass
    assert "'reader'" in str(caught.value) and "empty" in str(caught.value) and SECRET not in str(caught.value)


@MARK
def test_an_existing_server_on_this_machine_is_used_and_measured(cluster: postgres.Cluster, tmp_path: Path) -> None:
    config = postgres_config(tmp_path, {"DATABASE_URL": cluster.url})
    with run_database(config, frozenset()) as database:
        assert database is not None and database.kind == "external"
        assert database.postmaster == cluster.pid  # its CPU can be measured
        assert database.metadata()["port"] == cluster.port
        assert cluster.password not in json.dumps(database.metadata())
        assert database.ensure_up() is None


@MARK
def test_a_database_killed_in_a_step_fails_that_step_and_the_sweep_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real servers, real Locust: PostgreSQL is killed a second into the first step's load. That step fails with
    PostgreSQL's log tail; before the next one the cluster is restarted, and it is measured."""
    config = postgres_config(tmp_path, users="[2]", warmup=1, measure=3)
    real_run_step = loadgen.run_step
    killed: list[int] = []

    def run_step(*args: Any, **named: Any) -> Any:
        if not killed:
            assert database is not None
            pid = database.postmaster
            assert pid is not None
            killed.append(pid)
            threading.Timer(1.0, os.kill, (pid, signal.SIGKILL)).start()
        return real_run_step(*args, **named)

    monkeypatch.setattr(sweep, "run_step", run_step)
    text = io.StringIO()
    out = Console(file=text, width=200)
    with run_database(config, frozenset()) as database:
        assert database is not None
        current = sweep.start_run(config, UNPINNED, database)
        sweep.run_sweep(served(config, database), current, out, database=database)
        assert database.postmaster != killed[0]
        cluster = database.cluster
    assert cluster is not None
    _gone(cluster)
    first, second = store.load_run(current.dir)["steps"]
    assert first["status"] == "failed"
    assert "PostgreSQL exited during the step" in first["error"] and "Last lines of" in first["error"]
    assert second["status"] == "ok", second["error"]
    assert second["db_cpu_pct"] is not None
    assert "restarted" in text.getvalue()


def _runner(args: list[str], folder: Path) -> subprocess.Popen[str]:
    """``python -m runner`` as a user starts it, its output in ``folder``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BENCH_", "DATABASE_URL"))}
    env["PYTHONPATH"] = str(ROOT)
    with (folder / "out.txt").open("w") as out, (folder / "err.txt").open("w") as err:
        return subprocess.Popen([sys.executable, "-m", "runner", *args], cwd=ROOT, env=env, stdout=out, stderr=err,
                                text=True)  # fmt: skip


def _watch(runner: subprocess.Popen[str], timeout: float, until: Callable[[], bool] | None = None) -> Path | None:
    """Wait for the runner to end (or, given ``until``, for that to hold); returns its cluster's folder as seen
    while it ran."""
    deadline = time.monotonic() + timeout
    seen = None
    while runner.poll() is None and time.monotonic() < deadline:
        seen = seen or folder_of(runner.pid)
        if until is not None and seen is not None and until():
            return seen
        time.sleep(0.2)
    if runner.poll() is None and until is None:
        runner.kill()
        runner.wait(timeout=30)
        pytest.fail(f"the runner did not finish within {timeout:g} s")
    return seen


@MARK
def test_a_small_sweep_on_the_embedded_cluster(tmp_path: Path) -> None:
    """``python -m runner`` on PostgreSQL: every step measured with no failure, the database's CPU and connections
    recorded, no URL in run.json, and no PostgreSQL process or folder left."""
    scenario = tmp_path / "pg.toml"
    scenario.write_text(small_scenario(**POSTGRES, name="pg", users="[2, 10]", warmup=1, measure=3))
    runner = _runner([str(scenario), "--results-dir", str(tmp_path / "results")], tmp_path)
    folder = _watch(runner, 300)
    out = (tmp_path / "out.txt").read_text()
    assert runner.returncode == 0, out + (tmp_path / "err.txt").read_text()
    assert folder is not None, "no cluster folder was seen while the run ran"
    assert not folder.exists()
    assert working_in(folder) == []
    run_dir = (tmp_path / "results" / "latest").resolve()
    text = (run_dir / store.RUN_FILE).read_text(encoding="utf-8")
    assert "postgresql://" not in text
    run = store.load_run(run_dir)
    assert run["status"] == "complete"
    database = run["metadata"]["database"]
    assert (database["kind"], database["host"], database["settings"]["fsync"]) == ("embedded", "127.0.0.1", "off")
    assert run["config"]["database"]["url"] == ""
    for record in run["steps"]:
        assert record["figures"]["latency"]["failures"] == 0, record["server"]
        assert record["db_cpu_pct"] is not None and record["db_cpu_pct"] >= 0
        assert record["db_connections_total_max"] >= 1
        assert record["db_connections_max"] <= record["db_connections_total_max"]
        assert record["command_env"]["SIMDB_DRIVER"] in ("psycopg", "asyncpg")
        assert (run_dir / record["files"] / sweep.DATABASE_RESOURCES_FILE).is_file()
        # Every answered request carried the server's own times, and the pool wait is the real pool's.
        server = record["figures"]["server"]
        assert server["timed"] == record["figures"]["latency"]["requests"] > 0, record["server"]
        assert 0 <= server["pool_mean_ms"] <= server["handler_mean_ms"], record["server"]
    assert "embedded cluster: PostgreSQL" in out


@MARK
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_sweep_leaves_no_postgres_behind(tmp_path: Path, stop: signal.Signals) -> None:
    scenario = tmp_path / "pg.toml"
    scenario.write_text(small_scenario(**POSTGRES, name="pg", users="[2, 10]", warmup=1, measure=20))
    runner = _runner([str(scenario), "--results-dir", str(tmp_path / "results")], tmp_path)
    try:
        folder = _watch(runner, 60, until=lambda: any(tmp_path.glob("results/*/raw/*/*/server.log")))
        assert folder is not None and working_in(folder), "no cluster was running during the step"
        time.sleep(1.0)
        runner.send_signal(stop)
        runner.wait(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(timeout=30)
    assert runner.returncode == 130, (tmp_path / "err.txt").read_text()
    assert not folder.exists()
    assert working_in(folder) == []
