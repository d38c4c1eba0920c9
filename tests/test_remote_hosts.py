"""Load from another host, exercised: the README's own multi-host commands, run between two network namespaces.

Two network namespaces joined by a veth pair are two network stacks on one machine: the server listens on the
"server" side's address only, and the Locust master and its two workers run on the "load" side, so every request
and every master-worker message crosses a real (virtual) link, with nothing on loopback to fall back to. The
Locust commands are parsed from README.md's block after "Workers on other machines are started by hand" and run
as written, with only the addresses, file paths, durations and user count substituted, so an edit to the README's
commands is an edit to what this test runs. The step's files are then checked as for a local run.

It needs root (or CAP_NET_ADMIN) and iproute2's ``ip``; elsewhere it skips with the reason. Whatever happens, every
process started in a namespace is stopped and both namespaces (and the veth with them) are deleted, and the test
checks that nothing is left.
"""

from __future__ import annotations

import contextlib
import csv
import ipaddress
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil
import pytest

from runner import loadgen, servers
from runner.config import ROOT, load_config
from runner.files import log_tail
from runner.processes import start_group, stop_group
from runner.stats import read_raws, read_window, step_figures

README = ROOT / "README.md"
BLOCK_HEADING = "Workers on other machines are started by hand"

# The two ends of the link: the README's example addresses, so normally nothing is substituted.
SERVER_ADDRESS = "10.0.0.5"
LOAD_ADDRESS = "10.0.0.2"
PREFIX_LENGTH = 24
MASTER_PORT = 5557  # Locust's default --master-bind-port and --master-port

# What the test shortens in the master's command (the README's run takes 40 s at 500 users).
USERS = 20
WARMUP_S = 2
MEASURE_S = 8
RUN_TIME_S = 30  # only Locust's safety net: the locustfile ends the window after warm-up + measure
FINISH_TIMEOUT_S = 90  # the master's whole run, workers' start and drain included

# Namespace names carry the pytest process's pid, so a run killed outright (no finally) is recognised and its
# namespaces removed by the next run.
NS_PREFIX = "benchrh"
NS_PATTERN = re.compile(rf"^{NS_PREFIX}(\d+)x[0-9a-f]+-(server|load)$")

# Run in the load namespace: /health on the server, until it answers; prints the pid that answered.
HEALTH_PROBE = """
import json, sys, time, urllib.request
url, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
while True:
    try:
        with urllib.request.urlopen(url + "/health", timeout=1) as response:
            body = json.loads(response.read())
        if body.get("status") == "ok":
            print(body["pid"])
            break
    except (OSError, ValueError):
        pass
    if time.monotonic() > deadline:
        sys.exit("no answer from " + url + "/health")
    time.sleep(0.2)
"""


# --- the README's commands -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadmeCommands:
    """The master's and the worker's command lines as README.md's block gives them, ``$FLAGS`` expanded."""

    master: list[str]
    worker: list[str]


def readme_commands(text: str) -> ReadmeCommands:
    """Parse the shell block after BLOCK_HEADING: ``NAME="..."`` assignments, then commands (continuation lines
    joined, comments dropped) in which ``$NAME`` is replaced by the assignment's words, as the shell would."""
    at = text.find(BLOCK_HEADING)
    assert at >= 0, f"{README}: no paragraph starting {BLOCK_HEADING!r} (the multi-host commands this test runs)"
    block = re.search(r"```sh\n(.*?)\n```", text[at:], re.DOTALL)
    assert block is not None, f"{README}: no ```sh block after {BLOCK_HEADING!r}"
    variables: dict[str, list[str]] = {}
    commands: list[list[str]] = []
    for line in block.group(1).replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 1 and (assignment := re.fullmatch(r"([A-Za-z_]\w*)=(.*)", words[0], re.DOTALL)):
            variables[assignment.group(1)] = shlex.split(assignment.group(2))
            continue
        expanded: list[str] = []
        for word in words:
            name = word[1:].strip("{}") if word.startswith("$") else None
            if name is not None:
                assert name in variables, f"{README}: the multi-host block uses ${name} before setting it"
                expanded.extend(variables[name])
            else:
                expanded.append(word)
        if expanded:
            commands.append(expanded)
    masters = [c for c in commands if "--master" in c]
    workers = [c for c in commands if "--worker" in c]
    assert len(masters) == 1 and len(workers) == 1, (
        f"{README}: the multi-host block should hold one master command (--master) and one worker command "
        f"(--worker); found {len(masters)} and {len(workers)} in {commands}"
    )
    return ReadmeCommands(masters[0], workers[0])


def option(args: Sequence[str], *names: str) -> str | None:
    """The value of the first of ``names`` found in ``args`` (``--name value`` or ``--name=value``), or None."""
    for index, arg in enumerate(args):
        for name in names:
            if arg == name and index + 1 < len(args):
                return args[index + 1]
            if arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return None


def replace_option(args: Sequence[str], names: Sequence[str], value: str, role: str) -> list[str]:
    """``args`` with the value of the option ``names`` (its aliases) set to ``value``; the option must be there,
    since the test only shortens or relocates what the README states."""
    out = list(args)
    for index, arg in enumerate(out):
        if arg in names and index + 1 < len(out):
            out[index + 1] = value
            return out
        if any(arg.startswith(f"{name}=") for name in names):
            out[index] = f"{arg.split('=', 1)[0]}={value}"
            return out
    raise AssertionError(f"{README}: the {role} command in the multi-host block has no {'/'.join(names)}: {args}")


def as_python_module(args: Sequence[str], role: str) -> list[str]:
    """``locust ...`` as ``<this python> -m locust ...``: the venv's Locust, whatever is on PATH."""
    assert args and args[0] == "locust", f"{README}: the {role} command should start with `locust`: {args}"
    return [sys.executable, "-m", "locust", *args[1:]]


def with_host(url: str, address: str) -> str:
    """``url`` aimed at ``address``, its scheme and port kept."""
    parts = urlsplit(url)
    netloc = address if parts.port is None else f"{address}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class RemoteStep:
    """The commands this test runs, derived from the README's, and where their files go."""

    master: list[str]
    worker: list[str]
    server_url: str
    json_path: Path
    raw_path: Path
    meta_path: Path


def remote_step(commands: ReadmeCommands, folder: Path) -> RemoteStep:
    """The README's commands with only what must change substituted: the server's and the master's addresses (when
    the README's differ from the link's), the files (into ``folder``), the durations and the users."""
    master, worker = commands.master, commands.worker
    url = option(master, "-H", "--host")
    assert url is not None and option(worker, "-H", "--host") == url, (
        f"{README}: the master and the worker should target one --host (FLAGS), got {url!r} and "
        f"{option(worker, '-H', '--host')!r}"
    )
    assert option(worker, "--master-host") is not None, f"{README}: the worker command has no --master-host"
    server_url = with_host(url, SERVER_ADDRESS)
    master = replace_option(master, ("-H", "--host"), server_url, "master")
    worker = replace_option(worker, ("-H", "--host"), server_url, "worker")
    worker = replace_option(worker, ("--master-host",), LOAD_ADDRESS, "worker")
    json_stem = folder / "locust"  # Locust appends .json
    for names, value in (
        (("-u", "--users"), str(USERS)),
        (("-r", "--spawn-rate"), str(USERS)),
        (("-t", "--run-time"), f"{RUN_TIME_S}s"),
        (("--warmup",), str(WARMUP_S)),
        (("--measure",), str(MEASURE_S)),
        (("--json-file",), str(json_stem)),
        (("--raw-file",), str(folder / "requests.csv")),
        (("--meta-file",), str(folder / "window.json")),
    ):
        master = replace_option(master, names, value, "master")
    return RemoteStep(
        master=as_python_module(master, "master"),
        worker=as_python_module(worker, "worker"),
        server_url=server_url,
        json_path=json_stem.with_suffix(".json"),
        raw_path=folder / "requests.csv",
        meta_path=folder / "window.json",
    )


# --- two namespaces joined by a veth pair --------------------------------------------------------------------------


def _ip(ip: str, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ip, *args], capture_output=True, text=True, timeout=timeout, check=False)


def _checked(ip: str, *args: str) -> str:
    done = _ip(ip, *args)
    assert done.returncode == 0, f"`ip {shlex.join(args)}` failed ({done.returncode}): {done.stderr.strip()}"
    return done.stdout


def namespaces(ip: str) -> set[str]:
    """Every network namespace's name (``ip netns list`` prints ``name (id: N)``); none where it cannot list them."""
    return {line.split()[0] for line in _ip(ip, "netns", "list").stdout.splitlines() if line.strip()}


def namespace_pids(ip: str, name: str) -> set[int]:
    done = _ip(ip, "netns", "pids", name)
    return {int(word) for word in done.stdout.split()} if done.returncode == 0 else set()


def _can_administer_network() -> bool:
    """CAP_NET_ADMIN (bit 12) in this process's effective capabilities, which root has unless a container or
    setpriv took it away; root is assumed to have it only when the capabilities cannot be read."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> 12 & 1)
    return os.geteuid() == 0


def _alive(pid: int) -> bool:
    """Running, and not a zombie (nothing runs in one)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


@dataclass
class Link:
    """Two namespaces, ``server`` and ``load``, joined by the veth pair ``server_veth`` - ``load_veth``."""

    ip: str
    server: str
    load: str
    server_veth: str
    load_veth: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    # Every pid seen in either namespace, so the test can check afterwards that none is left.
    seen: set[int] = field(default_factory=set)

    def start(self, namespace: str, command: Sequence[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """``command`` in ``namespace``, in its own process group (``ip netns exec`` execs it: same pid)."""
        process = start_group(
            [self.ip, "netns", "exec", namespace, *command], log_path=log, env=env, cwd=ROOT, cpus=frozenset()
        )
        self.processes.append(process)
        self.seen.add(process.pid)
        return process

    def run(self, namespace: str, command: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """A short command in ``namespace``, to completion (killed at ``timeout``)."""
        return subprocess.run(
            [self.ip, "netns", "exec", namespace, *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=ROOT,
        )

    def received(self) -> tuple[int, int]:
        """(packets, bytes) the server's end of the link has received so far."""
        shown = json.loads(_checked(self.ip, "-n", self.server, "-j", "-s", "link", "show", "dev", self.server_veth))
        rx = shown[0]["stats64"]["rx"]
        return int(rx["packets"]), int(rx["bytes"])

    def stop_everything(self) -> None:
        """Stop every process group started here, then anything else still in either namespace."""
        for process in reversed(self.processes):
            stop_group(process)
        for namespace in (self.load, self.server):
            left = namespace_pids(self.ip, namespace)
            self.seen |= left
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            psutil.wait_procs([p for p in map(_process_or_none, left) if p is not None], timeout=5.0)


def listening_addresses(pid: int, port: int) -> set[str]:
    """The addresses on which a TCP socket of ``pid``'s network namespace listens on ``port`` (IPv4 and IPv6), read
    from ``/proc/<pid>/net``, which shows the namespace the process is in."""
    found: set[str] = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text(encoding="utf-8").splitlines()[1:]:
                fields = line.split()
                address, _, hex_port = fields[1].partition(":")
                if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    raw = bytes.fromhex(address)
                    # The kernel prints each 32-bit word in host (little-endian) order.
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                    found.add(str(ipaddress.ip_address(words)))
    return found


def _process_or_none(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def _remove_stale_namespaces(ip: str) -> None:
    """Namespaces of an earlier run of this test whose pytest process is gone (killed before its cleanup ran)."""
    for name in namespaces(ip):
        match = NS_PATTERN.match(name)
        if match and not psutil.pid_exists(int(match.group(1))):
            for pid in namespace_pids(ip, name):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _ip(ip, "netns", "del", name)


def network_tool() -> str:
    """iproute2's ``ip``, when this machine can build namespaces with it; otherwise the test skips, saying why."""
    if not sys.platform.startswith("linux"):
        pytest.skip(f"network namespaces are Linux only (this is {sys.platform})")
    ip = shutil.which("ip") or next((p for p in ("/usr/sbin/ip", "/sbin/ip") if os.access(p, os.X_OK)), None)
    if ip is None:
        pytest.skip("the `ip` command (iproute2) is missing: apt-get install iproute2")
    if not _can_administer_network():
        pytest.skip("building network namespaces needs root or CAP_NET_ADMIN, which this process has not")
    return ip


def new_link(ip: str) -> Link:
    """Names unique to this run (nothing is created yet); stale namespaces of a killed earlier run are removed."""
    _remove_stale_namespaces(ip)
    token = secrets.token_hex(3)
    base = f"{NS_PREFIX}{os.getpid()}x{token}"
    return Link(ip, f"{base}-server", f"{base}-load", f"rh{token}s", f"rh{token}l")


@contextlib.contextmanager
def joined(link: Link) -> Iterator[Link]:
    """The link's two namespaces, loopback up in each, joined by its veth pair with SERVER_ADDRESS on the server side
    and LOAD_ADDRESS on the load side. Skips when ``ip netns add`` or the veth fails; on the way out, whatever
    happened, every process in them is stopped and both are deleted (the veth pair goes with them)."""
    ip = link.ip
    try:
        for namespace in (link.server, link.load):
            done = _ip(ip, "netns", "add", namespace)
            if done.returncode != 0:
                pytest.skip(f"`ip netns add` failed here ({done.returncode}): {done.stderr.strip()}")
        done = _ip(ip, "link", "add", link.server_veth, "type", "veth", "peer", "name", link.load_veth)
        if done.returncode != 0:
            pytest.skip(f"no veth pair can be made here ({done.returncode}): {done.stderr.strip()}")
        for namespace, veth, address in ((link.server, link.server_veth, SERVER_ADDRESS),
                                         (link.load, link.load_veth, LOAD_ADDRESS)):  # fmt: skip
            _checked(ip, "link", "set", veth, "netns", namespace)
            _checked(ip, "-n", namespace, "addr", "add", f"{address}/{PREFIX_LENGTH}", "dev", veth)
            _checked(ip, "-n", namespace, "link", "set", "lo", "up")
            _checked(ip, "-n", namespace, "link", "set", veth, "up")
        yield link
    finally:
        link.stop_everything()
        for namespace in (link.server, link.load):
            _ip(ip, "netns", "del", namespace)
        # A veth made but not yet moved into a namespace is still here; one moved went with its namespace.
        _ip(ip, "link", "del", link.server_veth)


def leftovers(link: Link) -> list[str]:
    """What is left of ``link`` after its cleanup: namespaces, veth ends, processes that ran in it."""
    left = [f"namespace {name}" for name in sorted({link.server, link.load} & namespaces(link.ip))]
    left += [f"veth {veth}" for veth in (link.server_veth, link.load_veth)
             if _ip(link.ip, "link", "show", "dev", veth).returncode == 0]  # fmt: skip
    left += [f"process {pid}" for pid in sorted(link.seen) if _alive(pid)]
    return left


# --- the test ------------------------------------------------------------------------------------------------------


def _logs(*paths: Path) -> str:
    return "\n".join(log_tail(path, 30) for path in paths)


@dataclass(frozen=True)
class RemoteRun:
    """What the test reads after the run: the Locust processes and what the server's end of the link received."""

    master: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]
    received_before: tuple[int, int]
    received_after: tuple[int, int]


def run_remote_step(
    link: Link, step: RemoteStep, server_command: list[str], server_env: dict[str, str], folder: Path
) -> RemoteRun:
    """The server in the server namespace, checked to answer over the link only; then the README's master and two
    workers in the load namespace, run to their end. Fails, with the logs, on anything that did not go as it should."""
    server_log, master_log = folder / "server.log", folder / "master.log"
    worker_logs = [folder / f"worker{index}.log" for index in range(2)]
    server = link.start(link.server, server_command, server_log, server_env)
    probe = link.run(link.load, [sys.executable, "-c", HEALTH_PROBE, step.server_url, "30"], timeout=40)
    assert probe.returncode == 0, f"{probe.stderr.strip()}\n{_logs(server_log)}"
    # The server side's uvicorn answered, from the other namespace, over the link.
    assert int(probe.stdout.split()[-1]) == server.pid
    # Nothing on the load side's loopback would do instead: the server is not reachable there.
    local_url = with_host(step.server_url, "127.0.0.1")
    assert link.run(link.load, [sys.executable, "-c", HEALTH_PROBE, local_url, "0"], timeout=10).returncode != 0
    received_before = link.received()

    env = loadgen.client_env(folder)
    master = link.start(link.load, step.master, master_log, env)
    workers = [link.start(link.load, step.worker, log, env) for log in worker_logs]
    # The README: Locust's connection is port 5557, opened on every interface unless --master-bind-host says.
    bind_port = int(option(step.master, "--master-bind-port") or MASTER_PORT)
    bind_host = option(step.master, "--master-bind-host")
    everywhere = {"0.0.0.0", "::"}  # IPv4's and IPv6's "every interface"
    deadline = time.monotonic() + 20
    bound: set[str] = set()
    while master.poll() is None and time.monotonic() < deadline and not bound:
        bound = listening_addresses(master.pid, bind_port)
        time.sleep(0.1)
    assert bound and bound <= ({bind_host} if bind_host else everywhere), (
        f"the master listens on {bound or 'nothing'} port {bind_port}, expected {bind_host or 'every interface'}\n"
        + _logs(master_log)
    )
    try:
        code = master.wait(timeout=FINISH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the master did not finish within {FINISH_TIMEOUT_S} s\n{_logs(master_log, *worker_logs)}")
    assert code == 0, f"the master exited with code {code}\n{_logs(master_log, *worker_logs)}"
    for worker, log in zip(workers, worker_logs, strict=True):
        try:
            code = worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"a worker outlived its master by 20 s\n{_logs(log)}")
        assert code == 0, f"a worker exited with code {code}\n{_logs(log)}"
    received_after = link.received()
    return RemoteRun(master, workers, received_before, received_after)


@pytest.mark.integration
def test_the_readme_multi_host_commands_load_a_server_on_another_host(tmp_path: Path) -> None:
    step = remote_step(readme_commands(README.read_text(encoding="utf-8")), tmp_path)
    assert ipaddress.ip_address(SERVER_ADDRESS) in ipaddress.ip_interface(f"{LOAD_ADDRESS}/{PREFIX_LENGTH}").network

    # The server the harness starts for fastapi-uvicorn in the default scenario, bound to the server side's address
    # instead of 127.0.0.1: the harness's own command line, with only the address changed.
    config = load_config(str(ROOT / "scenarios" / "default.toml"), environ={})
    spec = next(s for s in config.servers if s.server == "uvicorn" and (s.endpoints or "async") == "async")
    port = urlsplit(step.server_url).port or 80
    server_command = servers.command(spec, port)
    assert server_command.count("--host") == 1 and option(server_command, "--host") == servers.HOST
    server_command = replace_option(server_command, ("--host",), SERVER_ADDRESS, "server")

    link = new_link(network_tool())
    try:
        with joined(link):
            run = run_remote_step(link, step, server_command, servers.server_env(config, spec), tmp_path)
    finally:
        # Whatever happened above: no namespace of this test, no veth, no process that ran in either namespace.
        left = leftovers(link)
        assert not left, f"left behind after the cleanup: {', '.join(left)}"
    master, workers = run.master, run.workers

    # The step's files, read as the harness reads a local step's.
    window = read_window(step.meta_path)
    assert window["window_start"] < window["window_end"]
    assert window["window_end"] - window["window_start"] == pytest.approx(MEASURE_S, abs=0.5)
    processes: list[dict[str, Any]] = window["client_processes"]
    assert [p["role"] for p in processes] == ["master", "worker", "worker"]
    assert [p["index"] for p in processes[1:]] == [0, 1]
    assert {p["pid"] for p in processes} == {master.pid, *(w.pid for w in workers)}
    assert window["workers_expected"] == window["workers_reported"] == 2
    assert not window["workers_missing"] and not window["workers_incomplete"]

    rows = read_raws([step.raw_path])  # refuses a request id logged twice
    figures = step_figures(step.json_path, step.raw_path, step.meta_path)
    with step.raw_path.open(newline="", encoding="utf-8") as handle:
        logged = list(csv.DictReader(handle))
    ids = [row["request_id"] for row in logged]
    assert len(rows) == len(ids) == len(set(ids)) == window["completed_requests"] > 0
    by_worker: dict[str, set[int]] = defaultdict(set)
    for request_id in ids + [u["request_id"] for u in window["unfinished"]]:
        match = re.fullmatch(r"(w\d+)-(\d+)", request_id)
        assert match, f"request id {request_id!r} is not w<worker>-<n>"
        by_worker[match.group(1)].add(int(match.group(2)))
    assert set(by_worker) == {"w0", "w1"}  # both workers sent load
    for numbers in by_worker.values():
        assert numbers == set(range(1, max(numbers) + 1))  # none lost, none twice

    # No request failed, in the window or out of it, and the app itself answered each (its Server-Timing header).
    assert [row for row in logged if row["ok"] != "1"] == []
    assert all(row["handler_ms"] for row in logged)
    assert figures.failed_in_window == 0 and figures.latency.failures == 0
    assert figures.completed_in_window > 0 and figures.rps > 0
    assert figures.notes == [] and abs(figures.raw_vs_json_gap) <= 2
    assert figures.client_processes == 3

    # Every request crossed the link: the server's end received at least a packet per request.
    packets = run.received_after[0] - run.received_before[0]
    assert packets >= len(rows), f"the server's veth received {packets} packets for {len(rows)} requests"
    assert urlsplit(step.server_url).hostname == SERVER_ADDRESS
    print(  # what was measured, for whoever reads the test log with -s
        f"\n{len(rows)} requests from 2 workers over the veth ({packets} packets, "
        f"{run.received_after[1] - run.received_before[1]} bytes to the server); {figures.rps:.1f} req/s in the window"
    )


def test_the_readme_block_parses_into_a_master_and_a_worker(tmp_path: Path) -> None:
    """The pure half, in the fast suite: the README's block is found and its commands are what the test runs."""
    commands = readme_commands(README.read_text(encoding="utf-8"))
    step = remote_step(commands, tmp_path)
    assert step.master[:3] == [sys.executable, "-m", "locust"]
    assert option(step.master, "--raw-file") == str(tmp_path / "requests.csv")
    assert option(step.master, "-u", "--users") == str(USERS)
    assert option(step.worker, "--master-host") == LOAD_ADDRESS
    assert option(step.master, "-H", "--host") == option(step.worker, "-H", "--host") == step.server_url
    assert "--allow-remote-host" in step.master and "--allow-remote-host" in step.worker


def test_a_shell_variable_expands_and_continuations_join() -> None:
    text = (
        f"{BLOCK_HEADING}:\n\n```sh\nFLAGS=\"--host http://h:1 --x 'a b'\"\n"
        "locust -f f.py $FLAGS --master \\\n  -u 5   # here\nlocust $FLAGS --worker --master-host m\n```\n"
    )
    commands = readme_commands(text)
    assert commands.master == ["locust", "-f", "f.py", "--host", "http://h:1", "--x", "a b", "--master", "-u", "5"]
    assert commands.worker == ["locust", "--host", "http://h:1", "--x", "a b", "--worker", "--master-host", "m"]
