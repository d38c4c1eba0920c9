"""Process trees: start them in their own group, pin them to cores, sample them, and make sure they end.

Both servers fork workers and Locust may too, so everything here works on the whole tree under a pid, not on
one process: CPU and memory are summed over the tree, pinning reaches every thread of every process, and
teardown kills the process group and then any descendant that escaped it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil


@dataclass(frozen=True)
class CpuPlan:
    """Which cores the client and the server may use; empty sets mean "not pinned"."""

    client: frozenset[int]
    server: frozenset[int]
    note: str

    @property
    def pinned(self) -> bool:
        return bool(self.client and self.server)

    @property
    def server_core_count(self) -> int:
        """The cores the server can use: those it is pinned to, or every one when nothing is pinned."""
        return len(self.server) or os.cpu_count() or 1


def plan_cpus(pin: bool, server_cores: int) -> CpuPlan:
    """Give the server the last ``server_cores`` cores this process may use and the client every other one (so
    several Locust worker processes can spread out on a bigger machine; on two cores that is one core each).

    With fewer cores than that, nothing is pinned and the note says so, because the client's and the server's
    CPU use then interfere and every report has to say it.
    """
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not pin:
        return CpuPlan(frozenset(), frozenset(), "not pinned (turned off): client and server share every core")
    if len(available) < server_cores + 1:
        return CpuPlan(
            frozenset(),
            frozenset(),
            f"not pinned: {len(available)} core(s) available, {server_cores + 1} needed; "
            "client and server share the cores and can slow each other down",
        )
    server = frozenset(available[-server_cores:])
    client = frozenset(available[:-server_cores])
    return CpuPlan(
        client,
        server,
        f"server pinned to core(s) {sorted(server)}, Locust and the harness to core(s) {sorted(client)}",
    )


def pin_tree(pid: int, cpus: frozenset[int]) -> None:
    """Pin every thread of every process under ``pid``; a thread or process that just ended is skipped."""
    if not cpus:
        return
    for proc in tree(pid):
        task_dir = Path(f"/proc/{proc.pid}/task")
        try:
            tids = [int(t.name) for t in task_dir.iterdir()]
        except OSError:
            tids = [proc.pid]
        for tid in tids:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, cpus)


def steal_seconds() -> list[float]:
    """Each core's steal time so far: CPU time the hypervisor gave to another guest while this one had work. On a
    VM a burst of it stalls whatever runs on that core (the load generator's schedule slips by 100 ms and more),
    so a step records how much it met, per core."""
    return [float(getattr(core, "steal", 0.0)) for core in psutil.cpu_times(percpu=True)]


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


# Only these variables of the harness's own environment reach a server or Locust. Anything else could change one
# side of the comparison unseen: GUNICORN_CMD_ARGS, UVICORN_*, WEB_CONCURRENCY, LOCUST_*, a PYTHON* setting...
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")


def clean_env(**extra: str) -> dict[str, str]:
    env = {key: os.environ[key] for key in PASSED_THROUGH if key in os.environ}
    env.update(extra)
    return env


_PR_SET_PDEATHSIG = 1
try:  # Resolved here, not in the child: between fork and exec only a plain C call is safe.
    _prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _prctl = None


def _die_with_parent() -> None:
    """Runs in the child before exec: if the harness dies (SIGKILL, a closed terminal, out of memory), the kernel
    kills this child too, so no server is left behind. The setting survives exec."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def identity(user: str | None) -> dict[str, Any]:
    """Popen's arguments that run a child as ``user`` (None: as ourselves), with that user's group and no other."""
    if user is None:
        return {}
    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def start_group(
    command: Sequence[str],
    *,
    log_path: Path,
    env: dict[str, str],
    cwd: Path,
    cpus: frozenset[int],
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start a command in a new process group with its output in ``log_path``, pinned from its first moment.

    ``user`` runs it as that user, with that user's group and no other (PostgreSQL refuses to run as root). The
    identity changes before the death signal is set: a change of identity clears it, so this order keeps it."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 (a single C call, resolved before the fork)
            **identity(user),
        )
    try:
        # Pinning right after the start reaches the interpreter before it has forked or started threads;
        # anything forked later inherits the mask. Callers pin the tree again once it is up, to be sure.
        pin_tree(process.pid, cpus)
    except BaseException:
        # Nobody holds the process yet: an interrupt here must not leave it running.
        stop_group(process, grace_s=0.0)
        raise
    return process


def stop_group(process: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """Stop the whole tree: SIGTERM, ``grace_s`` to finish, then SIGKILL to the group and any escaped descendant.

    A second Ctrl-C during teardown must not abandon it half-way (that is how processes get left behind): the
    interrupt is held, the rest of the teardown runs without waiting, and the interrupt is raised afterwards.
    """
    pending: KeyboardInterrupt | None = None
    while True:
        try:
            _stop_group(process, grace_s if pending is None else 0.0)
            break
        except KeyboardInterrupt as interrupt:
            pending = interrupt
    if pending is not None:
        raise pending


def _stop_group(process: subprocess.Popen[bytes], grace_s: float) -> None:
    known = tree(process.pid)
    if process.poll() is None and grace_s > 0:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    for proc in known:
        with contextlib.suppress(psutil.Error):
            if proc.is_running():
                proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5.0)
    psutil.wait_procs([p for p in known if _alive(p)], timeout=5.0)


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


@dataclass(frozen=True)
class Sample:
    """The tree's cumulative CPU seconds and resident memory at one moment."""

    t: float
    cpu_s: float
    rss_bytes: int
    processes: int


@dataclass
class TreeSampler:
    """Samples a process tree in a background thread so CPU and memory can be read over any window afterwards.

    CPU time of a process that exits mid-run is lost with it; server trees here keep their workers for the
    whole step, so that does not arise in practice.
    """

    pid: int
    interval_s: float = 0.25
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _procs: dict[int, psutil.Process] = field(default_factory=dict)

    def __enter__(self) -> TreeSampler:
        self.sample()
        self._thread = threading.Thread(target=self._loop, name=f"sampler-{self.pid}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sample()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        cpu = 0.0
        rss = 0
        count = 0
        for proc in tree(self.pid):
            # Reuse Process objects: psutil caches per-object state and it keeps the sampler cheap.
            cached = self._procs.setdefault(proc.pid, proc)
            try:
                with cached.oneshot():
                    times = cached.cpu_times()
                    cpu += times.user + times.system
                    rss += cached.memory_info().rss
                count += 1
            except psutil.Error:
                continue
        if count:
            self.samples.append(Sample(time.time(), cpu, rss, count))

    def window(self, start: float, end: float) -> tuple[float | None, float | None]:
        """CPU use (% of one core) and peak resident memory (MB) between two wall-clock times."""
        inside = [s for s in self.samples if start <= s.t <= end]
        before = [s for s in self.samples if s.t <= start]
        after = [s for s in self.samples if s.t >= end]
        first = before[-1] if before else (inside[0] if inside else None)
        last = after[0] if after else (inside[-1] if inside else None)
        cpu_pct = None
        if first is not None and last is not None and last.t > first.t:
            cpu_pct = 100.0 * (last.cpu_s - first.cpu_s) / (last.t - first.t)
        span = inside or [s for s in (first, last) if s is not None]
        rss_mb = max(s.rss_bytes for s in span) / 1e6 if span else None
        return cpu_pct, rss_mb


def proportional_memory_mb(pid: int) -> float | None:
    """The tree's proportional set size (PSS): forked workers share pages, so summing RSS over-counts them;
    PSS splits each shared page between its sharers and adds up to what the tree really costs."""
    total = 0
    seen = False
    for proc in tree(pid):
        try:
            total += proc.memory_full_info().pss
            seen = True
        except (psutil.Error, AttributeError):
            continue
    return total / 1e6 if seen else None
