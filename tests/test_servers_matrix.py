"""The server matrix: each configuration started for real (its command line and environment are checked without
starting anything in tests/test_servers.py).

The real-server tests send a small burst of identical page requests and read, from the handlers' own
``Server-Timing`` (when each began, how long it ran), how many were in service at once: 4 where the configuration
overlaps its waits, 2 for gthread with 2 threads, 1 where something serialises them (a one-thread pool, a blocking
call inside ``async def``, the hub blocked by CPU work). That count cannot be faked by a fast or slow machine; the
wall-clock totals are checked too, with wide bounds, because this runs on a noisy 2-core machine.
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from async_app.settings import AppSettings
from runner.config import ROOT, RunConfig, load_config
from runner.servers import serve
from simdb import ConfigError, DatabaseConfig
from simdb import workload as wl

# --- the apps' own settings (nothing is started) ---------------------------------------------------------------------


def test_app_settings_default_to_today_and_refuse_nonsense() -> None:
    assert AppSettings.from_env({}) == AppSettings(endpoints="async", thread_limit=40, die_with_parent=False)
    for env in ({"APP_ENDPOINTS": "threads"}, {"APP_THREAD_LIMIT": "many"}, {"APP_THREAD_LIMIT": "0"}):
        with pytest.raises(ConfigError):
            AppSettings.from_env(env)


# --- for real --------------------------------------------------------------------------------------------------------

MATRIX = """
name = "matrix"

[workload]
listing_rows = 1

[database]
jitter = 0.0

[[servers]]
name = "gthread-2"
server = "gunicorn"
worker_class = "gthread"
threads = 2

[[servers]]
name = "gevent"
server = "gunicorn"
worker_class = "gevent"
connections = 50

[[servers]]
name = "async"
server = "uvicorn"

[[servers]]
name = "def-40"
server = "uvicorn"
endpoints = "def"

[[servers]]
name = "def-1"
server = "uvicorn"
endpoints = "def"
thread_limit = 1

[[servers]]
name = "blocking"
server = "uvicorn"
endpoints = "blocking"

[[servers]]
name = "uvicorn-2"
server = "uvicorn"
workers = 2

[[servers]]
name = "gevent-2"
server = "gunicorn"
worker_class = "gevent"
workers = 2

[run]
startup_timeout_s = 30
"""

WAIT_S = 0.2  # each page waits this long on the database, in two queries
PAGE = "/page?user_ms=100&work_ms=0&listing_ms=100&rows=1"
BURN = "/page?user_ms=0&work_ms=150&listing_ms=0&rows=1"
N = 4


@dataclass(frozen=True)
class Burst:
    """N requests sent together: the client's wall time for all of them, and what each handler reported."""

    total_s: float
    timings: list[dict[str, float]]

    @property
    def in_service(self) -> int:
        """The most handlers running at one moment, from their own start and duration (1 ms of clock slack)."""
        spans = [(t["start"], t["start"] + t["handler"] / 1000) for t in self.timings]
        return max(sum(1 for s, e in spans if s <= start < e - 0.001) for start, _ in spans)

    def text(self) -> str:
        return f"{self.total_s * 1000:.0f} ms for {N}, {self.in_service} in service at once"


def burst(url: str, path: str) -> Burst:
    barrier = threading.Barrier(N)
    timings: list[dict[str, float]] = []
    ends: list[float] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            barrier.wait(timeout=10)
            with urllib.request.urlopen(url + path, timeout=20) as response:
                response.read()
                timings.append(wl.parse_server_timing(response.headers["Server-Timing"]))
            ends.append(time.perf_counter())
        except BaseException as error:  # reported by the test's own thread
            errors.append(error)

    threads = [threading.Thread(target=one) for _ in range(N)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert len(timings) == N
    return Burst(max(ends) - started, timings)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunConfig, Path]]:
    folder = tmp_path_factory.mktemp("matrix")
    scenario = folder / "matrix.toml"
    scenario.write_text(MATRIX, encoding="utf-8")
    yield load_config(str(scenario)), folder


@dataclass(frozen=True)
class Expect:
    """What a burst of N 200 ms pages must show: exactly this many in service at once, and a total in range."""

    in_service: int
    low_s: float
    high_s: float


OVERLAP = Expect(N, WAIT_S * 0.95, 2 * WAIT_S)  # all four together: well under twice one request
PAIRS = Expect(2, 2 * WAIT_S * 0.95, N * WAIT_S * 0.95)  # two at a time: about twice one request
SERIAL = Expect(1, N * WAIT_S * 0.95, 4 * N * WAIT_S)  # one at a time: about four times

EXPECTED = {"gthread-2": PAIRS, "gevent": OVERLAP, "async": OVERLAP, "def-40": OVERLAP, "def-1": SERIAL,
            "blocking": SERIAL}  # fmt: skip


def _check(url: str, path: str, expect: Expect, rounds: int = 3) -> list[Burst]:
    """Up to ``rounds`` bursts, until one shows what is expected (someone else's load can stretch a total).

    Never may more be in service than the configuration allows, in any round: that is not noise.
    """
    seen: list[Burst] = []
    for _ in range(rounds):
        result = burst(url, path)
        seen.append(result)
        assert result.in_service <= expect.in_service, [b.text() for b in seen]
        if result.in_service == expect.in_service and expect.low_s <= result.total_s < expect.high_s:
            return seen
    pytest.fail(f"expected {expect}, saw {[b.text() for b in seen]}")


@pytest.mark.integration
@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_configuration_serves_a_burst_as_its_slots_say(matrix: tuple[RunConfig, Path], name: str) -> None:
    config, folder = matrix
    spec = next(s for s in config.servers if s.name == name)
    with serve(spec, config, folder / f"{name}.log", frozenset()) as server:
        burst(server.url, "/page?user_ms=0&listing_ms=0&work_ms=0")  # first requests pay for imports and caches
        seen = _check(server.url, PAGE, EXPECTED[name])
    print(f"{name} ({spec.describe()}): {'; '.join(b.text() for b in seen)}")
    for result in seen:
        for timing in result.timings:
            assert timing["db"] >= WAIT_S * 1000 * 0.95  # every request really waited its 200 ms


@pytest.mark.integration
def test_gevent_yields_on_waits_and_pool_waits_but_not_on_cpu_work(matrix: tuple[RunConfig, Path]) -> None:
    """Under gevent's monkey-patching time.sleep yields, so waits overlap (above); the capacity semaphore still
    limits queries (it is built after the patching, from gevent's locks: no deadlock, just a queue); and burn_cpu
    burns real CPU and holds the hub, as any CPU work on one OS thread must."""
    config, folder = matrix
    spec = next(s for s in config.servers if s.name == "gevent")
    one_connection = dataclasses.replace(config, database=DatabaseConfig(capacity=1))
    with serve(spec, one_connection, folder / "gevent-capacity.log", frozenset()) as server:
        burst(server.url, "/page?user_ms=0&listing_ms=0&work_ms=0")
        pooled = burst(server.url, PAGE)
        workers = [p for p in psutil.Process(server.process.pid).children()]
        cpu_before = sum(p.cpu_times().user + p.cpu_times().system for p in workers)
        burned = burst(server.url, BURN)
        cpu_after = sum(p.cpu_times().user + p.cpu_times().system for p in workers)
    print(f"gevent, capacity 1: {pooled.text()}; 4 x 150 ms CPU: {burned.text()}, {cpu_after - cpu_before:.2f} s CPU")
    # Eight 100 ms queries through one connection: about 0.8 s, and most requests waited for it.
    assert pooled.total_s >= 8 * 0.1 * 0.95
    assert sum(1 for t in pooled.timings if t["pool"] > 50) >= 2
    # CPU work holds the hub. The handlers do overlap (even a 0 ms query is a gevent.sleep(0), which yields), but
    # the work does not: each request did its own 150 ms of real CPU, and the four took at least their sum.
    assert all(t["app"] >= 150 * 0.95 for t in burned.timings)
    assert cpu_after - cpu_before >= N * 0.15 * 0.9
    assert burned.total_s >= N * 0.15 * 0.95


# --- keep-alive, for real ---------------------------------------------------------------------------------------------

KEEP_ALIVE = """
name = "keep-alive"

[[servers]]
name = "sync"
server = "gunicorn"

[[servers]]
name = "gthread"
server = "gunicorn"
worker_class = "gthread"
threads = 2

[[servers]]
name = "gthread-off"
server = "gunicorn"
worker_class = "gthread"
threads = 2
keep_alive_s = 0

[[servers]]
name = "gthread-1s"
server = "gunicorn"
worker_class = "gthread"
threads = 2
keep_alive_s = 1

[[servers]]
name = "gevent"
server = "gunicorn"
worker_class = "gevent"
connections = 50

[[servers]]
name = "gevent-off"
server = "gunicorn"
worker_class = "gevent"
connections = 50
keep_alive_s = 0

[[servers]]
name = "gevent-1s"
server = "gunicorn"
worker_class = "gevent"
connections = 50
keep_alive_s = 1

[[servers]]
name = "uvicorn"
server = "uvicorn"

[[servers]]
name = "uvicorn-off"
server = "uvicorn"
keep_alive_s = 0

[[servers]]
name = "uvicorn-1s"
server = "uvicorn"
keep_alive_s = 1
"""

# How long an open connection is watched for the server closing it: well under the default keep-alive (5 s), so
# a server that keeps the connection is not caught by its own idle timeout, and far longer than closing takes.
WATCH_S = 2.0
# How long a connection idle past a 1 s keep-alive may take to be closed: gthread looks for expired ones about
# once a second, so a few seconds is a wide margin on a busy machine, not a measurement.
EXPIRE_WITHIN_S = 8.0


@dataclass(frozen=True)
class Connection:
    """What happened to one TCP connection after its first response, as the client saw it on the wire."""

    header: str | None  # the first response's Connection header
    closed: bool  # the server closed the connection (FIN) within the watch, after the response
    second_reused: bool  # a second request on the same HTTPConnection went over that same socket


def two_requests(url: str, watch_s: float) -> Connection:
    """Two requests through one http.client.HTTPConnection, watching the first one's socket in between.

    A duplicate of the socket stays open whatever http.client does with its own (it drops it on ``Connection:
    close``), so a peek on it sees what the *server* did: end of stream if it closed the connection, nothing for
    ``watch_s`` if it kept it. The second request then goes over the same socket if both ends kept it, or over a
    new one.
    """
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.connect()
        first_socket = conn.sock
        assert first_socket is not None
        with first_socket.dup() as watcher:
            conn.request("GET", "/health")
            first = conn.getresponse()
            assert first.status == 200
            first.read()
            watcher.settimeout(watch_s)
            try:
                closed = watcher.recv(1, socket.MSG_PEEK) == b""
            except TimeoutError:
                closed = False
        if closed and conn.sock is first_socket:
            # Closed after an idle timeout, unannounced: drop it as Locust's client does before it reuses a socket
            # (http.client would send on it and fail).
            conn.close()
        conn.request("GET", "/health")
        second = conn.getresponse()
        assert second.status == 200
        second.read()
        return Connection(first.getheader("Connection"), closed, conn.sock is first_socket)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def keep_alive(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunConfig, Path]:
    folder = tmp_path_factory.mktemp("keep-alive")
    scenario = folder / "keep-alive.toml"
    scenario.write_text(KEEP_ALIVE, encoding="utf-8")
    return load_config(str(scenario)), folder


# server -> (the first response's Connection header, lowercased; closed after one response)
CLOSES = {"sync": ("close", True), "gthread-off": ("close", True), "gevent-off": ("close", True),
          "uvicorn-off": ("close", True), "gthread": ("keep-alive", False), "gevent": ("keep-alive", False),
          "uvicorn": (None, False)}  # fmt: skip


@pytest.mark.integration
@pytest.mark.parametrize("name", list(CLOSES))
def test_each_server_keeps_or_closes_a_connection_as_its_keep_alive_text_says(
    keep_alive: tuple[RunConfig, Path], name: str
) -> None:
    """The sync worker and every keep-alive-off server answer ``Connection: close`` and close the connection, so
    the second request needs a new one; the others serve it on the same socket (uvicorn says nothing: HTTP/1.1
    keeps a connection unless told otherwise)."""
    config, folder = keep_alive
    spec = next(s for s in config.servers if s.name == name)
    with serve(spec, config, folder / f"{name}.log", frozenset()) as server:
        seen = two_requests(server.url, WATCH_S)
    header, closes = CLOSES[name]
    text = spec.keep_alive_text()
    print(f"{name}: {seen}; {text}")
    assert (seen.header.lower() if seen.header else None, seen.closed, seen.second_reused) == (
        header, closes, not closes
    )  # fmt: skip
    assert text.endswith("so each request opens a new connection") == closes  # the report says what happened


@pytest.mark.integration
@pytest.mark.parametrize("name", ["gthread-1s", "gevent-1s", "uvicorn-1s"])
def test_an_idle_connection_is_closed_once_keep_alive_s_has_passed(
    keep_alive: tuple[RunConfig, Path], name: str
) -> None:
    """keep_alive_s is the idle timeout each server is given: the first response keeps the connection, the
    server then closes it when it has been idle that long (within a wide margin), and the second request is sent
    over a new connection."""
    config, folder = keep_alive
    spec = next(s for s in config.servers if s.name == name)
    assert spec.keep_alive_s == 1
    with serve(spec, config, folder / f"{name}.log", frozenset()) as server:
        seen = two_requests(server.url, EXPIRE_WITHIN_S)
    print(f"{name}: {seen}; {spec.keep_alive_text()}")
    assert seen.header is None or seen.header.lower() == "keep-alive"  # the response itself kept it open
    assert seen.closed and not seen.second_reused
    assert "closed after 1 s" in spec.keep_alive_text()


def test_keep_alive_scenario_here_is_valid_and_names_every_expectation(tmp_path: Path) -> None:
    scenario = tmp_path / "keep-alive.toml"
    scenario.write_text(KEEP_ALIVE, encoding="utf-8")
    servers = {s.name: s for s in load_config(str(scenario)).servers}
    assert set(CLOSES) | {"gthread-1s", "gevent-1s", "uvicorn-1s"} == set(servers)
    assert {name for name, (_, closes) in CLOSES.items() if closes} == {
        name for name, s in servers.items() if not s.keep_alive_s
    }


FAKE_RUNNER = """
import sys, time
from contextlib import ExitStack
from pathlib import Path
from runner.config import load_config
from runner.servers import serve

config = load_config(sys.argv[1])
folder = Path(sys.argv[2])
with ExitStack() as stack:
    for name in sys.argv[3:]:
        spec = next(s for s in config.servers if s.name == name)
        stack.enter_context(serve(spec, config, folder / f"orphan-{name}.log", frozenset()))
    print("ready", flush=True)
    time.sleep(120)
"""


@pytest.mark.integration
def test_a_runner_killed_outright_takes_every_worker_with_it(matrix: tuple[RunConfig, Path]) -> None:
    """SIGKILL leaves no chance to clean up. The runner arms the process it starts (uvicorn's supervisor, gunicorn's
    master); the workers those fork or spawn must die with them on their own: uvicorn's through the app factory
    (APP_DIE_WITH_PARENT), gunicorn's through post_fork, whatever the worker class."""
    config, folder = matrix
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BENCH_", "APP_"))}
    env["PYTHONPATH"] = str(ROOT)
    runner = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(FAKE_RUNNER), config.source, str(folder), "uvicorn-2", "gevent-2"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    started: list[psutil.Process] = []
    try:
        assert runner.stdout is not None
        line = runner.stdout.readline()
        assert line.strip() == "ready", line + (runner.stderr.read() if runner.stderr else "")
        started = psutil.Process(runner.pid).children(recursive=True)
        # Two servers, each a parent with two workers (uvicorn's spawn also leaves a resource tracker).
        assert len(started) >= 6, [p.cmdline() for p in started]
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
        killed = time.monotonic()
        while time.monotonic() < killed + 10 and [p for p in started if _alive(p)]:
            time.sleep(0.1)
        gone_after = time.monotonic() - killed
        left = [p for p in started if _alive(p)]
        assert not left, f"left behind after SIGKILL: {[p.cmdline() for p in left]}"
        print(f"{len(started)} server processes gone {gone_after:.1f} s after the runner was killed")
    finally:
        if runner.poll() is None:
            runner.kill()
        for proc in started:  # only what this test started, by pid
            if _alive(proc):
                proc.kill()
        runner.wait(timeout=10)
        for pipe in (runner.stdout, runner.stderr):
            if pipe is not None:
                pipe.close()


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def test_matrix_scenario_here_is_valid_and_names_every_expectation(tmp_path: Path) -> None:
    scenario = tmp_path / "matrix.toml"
    scenario.write_text(MATRIX, encoding="utf-8")
    assert set(EXPECTED) <= {s.name for s in load_config(str(scenario)).servers}
