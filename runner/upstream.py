"""The upstream HTTP service behind both apps (``[database] backend = "http"``): started, checked, watched per
step and stopped by the harness, as the embedded PostgreSQL is (:mod:`runner.postgres`).

The service (:mod:`upstream.service`) runs for the whole run, before the first step and after the last, on a free
port of 127.0.0.1, with the scenario's capacity and fault. It is pinned to the client's core(s), with Locust and
the harness (and PostgreSQL, in its scenarios), never to the measured server's: what it costs shows as
``upstream_cpu_pct`` in each step, beside the server's CPU and the client's. It is a child of the harness in its own
process group that dies with it (:func:`runner.processes.start_group`), and on every way out of the ``with`` block
(the end, an error, Ctrl-C or SIGTERM) it is stopped and its folder (its log) removed. A service that exits during
a step fails that step with the tail of its log; before the next step it is started again and the sweep goes on.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from runner.config import ROOT, RunConfig
from runner.files import log_tail
from runner.processes import TreeSampler, clean_env, pin_tree, start_group, stop_group
from runner.servers import HOST, ServerError, free_port

FOLDER_PREFIX = "bench-upstream-"
START_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0
RESOURCES_FILE = "upstream_resources.csv"  # the service's process, sampled through each step as the server's is


class UpstreamError(ServerError):
    """The upstream service could not start or answer; the message carries the tail of its log. Before the first
    step it stops the run (exit code 2); during the run (a restart that fails) it ends the run like a server."""


def command(port: int, capacity: int, fault: str) -> list[str]:
    """The service's exact command line, as the run's metadata records it."""
    return [
        sys.executable, "-m", "upstream",
        "--host", HOST, "--port", str(port),
        "--capacity", str(capacity),
        "--fault", fault,
    ]  # fmt: skip


def health(url: str, timeout_s: float = 1.0) -> dict[str, Any] | None:
    """The service's /health answer, or None when nothing (or something else) answers."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout_s) as response:  # noqa: S310 (our loopback URL)
            body = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("service") != "upstream" or body.get("status") != "ok":
        return None
    return body


@dataclass
class Upstream:
    """The run's upstream service: where it listens, its settings, its process and log."""

    folder: Path
    capacity: int
    fault: str
    cpus: frozenset[int]
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "upstream.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the service (on a free port the first time, on the same one after) and wait until it answers
        /health from its own pid, then pin it."""
        self.port = self.port or free_port()
        self.process = start_group(
            command(self.port, self.capacity, self.fault),
            log_path=self.log,
            env=clean_env(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1"),
            cwd=ROOT,
            cpus=self.cpus,
        )
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.alive():
                code = self.process.returncode
                raise UpstreamError(f"the upstream service exited with code {code} while starting.\n{self.tail()}")
            answer = health(self.url)
            if answer is not None:
                if answer.get("pid") != self.process.pid:
                    raise UpstreamError(
                        f"{self.url} is answered by process {answer.get('pid')}, not the upstream service the harness "
                        "started; another program holds the port"
                    )
                pin_tree(self.process.pid, self.cpus)
                return
            time.sleep(0.05)
        raise UpstreamError(
            f"the upstream service did not answer on {self.url} within {START_TIMEOUT_S:g} s.\n{self.tail()}"
        )

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process, grace_s=STOP_GRACE_S)

    def tail(self) -> str:
        return log_tail(self.log)

    def ensure_up(self) -> str | None:
        """Before each step: the service answers. One that exited (or stopped answering) is started again on the same
        port (the servers of the next steps are given that address), and the run goes on, saying so."""
        if self.alive() and health(self.url, timeout_s=5.0) is not None:
            return None
        code = self.process.returncode if self.process is not None else None
        self.stop()
        self.start()
        return f"the upstream service had stopped (exit code {code}); started it again on the same port"

    def describe(self) -> str:
        capacity = f"{self.capacity} calls at once, the rest queued" if self.capacity else "no capacity limit"
        fault = "" if self.fault == "none" else f", every call failing with {self.fault!r}"
        return f"upstream service (aiohttp, one event loop) on {HOST}: {capacity}{fault}; {pinning_note(self.cpus)}"

    def metadata(self) -> dict[str, Any]:
        """What run.json records about the service (beside the database's metadata: the run's waited-on side)."""
        return {
            "kind": "upstream",
            "host": HOST,
            "capacity": self.capacity,
            "fault": self.fault,
            "command": command(self.port, self.capacity, self.fault),
            "cpu_pinning": pinning_note(self.cpus),
            "cpu_measured": True,
            "text": self.describe(),
        }

    @contextlib.contextmanager
    def watch(self) -> Iterator[UpstreamWatch]:
        """Watch the service through one step: its CPU, and whether it stayed up."""
        if self.process is None:
            raise UpstreamError("the upstream service is not running")
        with TreeSampler(self.process.pid) as sampler:
            yield UpstreamWatch(self, sampler, self.process.pid)


def pinning_note(cpus: frozenset[int]) -> str:
    if cpus:
        return f"pinned to core(s) {sorted(cpus)} with Locust and the harness; the server under test keeps its own"
    return "not pinned: it shares every core with the client and the server"


@dataclass
class UpstreamWatch:
    """One step's watch on the upstream service (the same faces as :class:`runner.postgres.StepWatch`)."""

    upstream: Upstream
    cpu: TreeSampler | None
    pid: int
    resources_file: str = RESOURCES_FILE

    def figures(self, bounds: tuple[float, float] | None) -> dict[str, float | None]:
        """The step record's upstream figure over the measured window: its CPU, in % of one core."""
        cpu_pct = self.cpu.window(*bounds)[0] if self.cpu is not None and bounds is not None else None
        return {"upstream_cpu_pct": cpu_pct}

    def fault(self) -> str | None:
        """Whether the service failed during the step: it exited (or was replaced)."""
        if not self.upstream.alive() or self.upstream.pid != self.pid:
            process = self.upstream.process
            code = process.returncode if process is not None else None
            return f"the upstream service exited during the step (exit code {code}).\n{self.upstream.tail()}"
        return None


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def run_upstream(config: RunConfig, cpus: frozenset[int], folder_parent: Path | None = None) -> Iterator[Upstream]:
    """The run's upstream service, answering, for the ``with`` block; stopped and its folder removed on every way
    out. Raises UpstreamError (the tail of its log) when it cannot start."""
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=folder_parent))
    service = Upstream(folder, config.upstream.capacity, config.upstream.fault, cpus)
    try:
        service.start()
        yield service
    finally:
        try:
            service.stop()
        finally:
            _remove(folder)


def served(config: RunConfig, service: Upstream | None) -> RunConfig:
    """The configuration the servers get: the service's address in ``[upstream]``. run.json records the scenario's
    (no address: a port of a service that is gone afterwards means nothing)."""
    if service is None:
        return config
    return replace(config, upstream=replace(config.upstream, url=service.url))
