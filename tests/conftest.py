"""Shared fixtures (small scenario files, the ways into the apps) and the rule that keeps the fast suite fast.

The rule: a test not marked ``integration`` starts no process. ``make test-fast`` runs ``-m "not integration"``
and must never start a server, Locust, a browser or any other program, so while such a test is set up, runs and
is torn down, every way of starting a process fails it at once with the test's name and the command. A refusal
the code under test catches and swallows still fails the test afterwards. There is no allowance: a test whose
code would start something (``git`` for the commit id, ``uname`` behind ``platform``) replaces that call with
monkeypatch, or is marked ``integration``.

It is enforced by hook wrappers around each phase rather than by an autouse fixture, because pytest sets up
session-scoped fixtures (the real servers of :func:`server_ways`) before any function-scoped one, so a fixture
would come too late to see them start. Collection (importing the test modules) is not guarded. The rule's own
tests are in tests/test_conftest.py.
"""

from __future__ import annotations

import _posixsubprocess
import os
import shlex
import signal
import subprocess
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from pgdb import schema
from runner.postgres import Cluster, embedded_cluster
from tests import ways as way_builders
from tests.scenarios import small_scenario
from tests.ways import CLIENTS, EVERY_WAY, ON_POSTGRES, WAY_PARAMS, WAY_SETS, Get

# --- a test not marked integration starts no process ---------------------------------------------------------------

# Every door to a new process: Popen (and with it subprocess.run, check_output, os.popen, asyncio's subprocesses),
# the fork-exec that multiprocessing calls without Popen, and the os calls that fork or spawn directly.
_OS_DOORS = ("system", "fork", "forkpty", "posix_spawn", "posix_spawnp")


def _command_text(args: Any) -> str:
    if isinstance(args, str | bytes | os.PathLike):
        return os.fsdecode(args)
    try:
        return shlex.join(os.fsdecode(a) for a in args)
    except TypeError:
        return repr(args)


@contextmanager
def _processes_refused(item: pytest.Item) -> Iterator[list[str]]:
    """While the block runs, starting a process fails the test; yields the commands that were tried."""
    tried: list[str] = []

    def refuse(door: str, command: str) -> None:
        tried.append(command)
        pytest.fail(
            f"{item.nodeid} is not marked integration but tried to start a process ({door}): {command}\n"
            "`make test-fast` starts none: replace the call with monkeypatch, or mark the test "
            "@pytest.mark.integration.",
            pytrace=True,
        )

    def execute_child(self: subprocess.Popen[Any], args: Any, *rest: Any, **named: Any) -> None:
        refuse("subprocess.Popen", _command_text(args))

    def fork_exec(args: Any, *rest: Any, **named: Any) -> int:
        refuse("_posixsubprocess.fork_exec", _command_text(args))
        return -1

    def os_door(name: str) -> Callable[..., Any]:
        def door(*args: Any, **named: Any) -> Any:
            refuse(f"os.{name}", _command_text(args[:2]) if args else "a copy of the test process")

        return door

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "_execute_child", execute_child)
        patch.setattr(_posixsubprocess, "fork_exec", fork_exec)
        for name in _OS_DOORS:
            if hasattr(os, name):
                patch.setattr(os, name, os_door(name))
        yield tried


def _guarded(item: pytest.Item) -> Generator[None, object, object]:
    if item.get_closest_marker("integration") is not None:
        return (yield)
    with _processes_refused(item) as tried:
        result = yield
    if tried:
        pytest.fail(f"{item.nodeid} tried to start a process and carried on: {'; '.join(tried)}", pytrace=False)
    return result


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C reaches the harness in the tests that press it, however the suite itself was started.

    A shell without job control starts a background command (``make test &``, a CI script) with SIGINT ignored, and
    a child inherits an ignored signal across exec, so the harness would never see the SIGINT those tests send and
    would run to its end. The suite's own process takes the default handler back; the children then start with
    SIGINT at its default, as they do from a terminal."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    return (yield from _guarded(item))


# --- scenarios -------------------------------------------------------------------------------------------------------


@pytest.fixture
def write_scenario(tmp_path: Path) -> Callable[..., Path]:
    """Write a small, valid scenario; keyword arguments replace its defaults."""

    def write(**values: object) -> Path:
        path = tmp_path / f"{values.get('name', 'test')}.toml"
        path.write_text(small_scenario(**values), encoding="utf-8")
        return path

    return write


# --- the ways into the apps (tests/ways.py) -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def client_ways() -> Iterator[dict[str, Get]]:
    """Flask and FastAPI through their test clients, inside this process, opened once."""
    with ExitStack() as stack:
        yield way_builders.client_ways(stack)


@pytest.fixture(scope="session")
def server_ways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Get]]:
    """Real gunicorn and uvicorn, started once, for integration tests only (the guard above fails any other)."""
    with ExitStack() as stack:
        yield way_builders.server_ways(stack, tmp_path_factory.mktemp("contract"))


@pytest.fixture(scope="session")
def postgres_client_ways(pg_url: str) -> Iterator[dict[str, Get]]:
    """Both apps on a real PostgreSQL through their test clients, every driver (integration: the cluster is a
    process)."""
    with ExitStack() as stack:
        yield way_builders.postgres_client_ways(stack, pg_url)


@pytest.fixture(scope="session")
def postgres_server_ways(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Get]]:
    """Real gunicorn and uvicorn on a real PostgreSQL, started once, for integration tests only."""
    with ExitStack() as stack:
        yield way_builders.postgres_server_ways(stack, tmp_path_factory.mktemp("contract-postgres"), pg_url)


_WAY_SOURCES = (
    (way_builders.CLIENT_WAYS, "client_ways"),
    (way_builders.SERVER_WAYS, "server_ways"),
    (way_builders.POSTGRES_CLIENT_WAYS, "postgres_client_ways"),
    (way_builders.POSTGRES_SERVER_WAYS, "postgres_server_ways"),
)


@pytest.fixture(params=WAY_PARAMS)
def way(request: pytest.FixtureRequest) -> Get:
    """One way in; the parameters that reach a real server or a real database are marked integration."""
    name: str = request.param
    source = next(fixture for names, fixture in _WAY_SOURCES if name in names)
    found: dict[str, Get] = request.getfixturevalue(source)
    return found[name]


@pytest.fixture(params=WAY_SETS)
def ways(request: pytest.FixtureRequest) -> dict[str, Get]:
    """Every way in at once, to compare their answers: the test clients, and (integration) the real servers too,
    or every way on PostgreSQL beside the simulated test clients (so both backends must give the same JSON)."""
    found: dict[str, Get] = dict(request.getfixturevalue("client_ways"))
    if request.param == EVERY_WAY:
        found.update(request.getfixturevalue("server_ways"))
    elif request.param == ON_POSTGRES:
        found.update(request.getfixturevalue("postgres_client_ways"))
        found.update(request.getfixturevalue("postgres_server_ways"))
    else:
        assert request.param == CLIENTS
    return found


# --- a real PostgreSQL -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The harness's own throwaway cluster (runner.postgres), seeded once, for the session: integration tests only.

    It runs as an unprivileged user when the tests run as root, on a free port of 127.0.0.1, and is stopped and
    its folder removed at the end, as in a run."""
    with embedded_cluster(max_connections=100) as cluster:
        schema.ensure(cluster.url)
        yield cluster


@pytest.fixture(scope="session")
def pg_url(pg_cluster: Cluster) -> str:
    """The seeded database's URL (it holds a password: never print it in a message a test asserts on)."""
    return pg_cluster.url
