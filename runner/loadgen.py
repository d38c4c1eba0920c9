"""Run one Locust process for one (server, user level) step.

One process per step keeps steps independent, gives each its own files, and lets the runner kill it on a
deadline. Locust is started where no stray ``locust.conf`` or ``pyproject.toml`` can be picked up, with no
``LOCUST_*`` variables, and with every setting passed explicitly.

With ``client_processes`` N > 1 that one process is Locust's master and forks N workers (``--processes N``); they
stay in its process group, so stopping the group stops them all, and the master writes the step's files alone
(see ``loadtests/locustfile.py``). The master listens on a free loopback port, never on every interface, and
never on Locust's fixed 5557, which two runs at once would share.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from runner.config import ROOT, RunConfig
from runner.files import log_tail
from runner.processes import clean_env, start_group, stop_group
from runner.servers import free_port

LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
BURST_LOCUSTFILE = ROOT / "loadtests" / "burst_shape.py"
# Past the step's own bound (warm-up + window + drain) Locust gets this long to write its files and exit.
SHUTDOWN_GRACE_S = 20.0
# Forked workers connect within a second or two; a master still short of them after this gives up and says so.
WORKERS_MAX_WAIT_S = 30


class LoadError(RuntimeError):
    """Locust failed or overran; the message carries the tail of its log."""


@dataclass(frozen=True)
class StepFiles:
    """What one Locust run writes in its folder: its totals, the request log, the window (read by
    :func:`runner.stats.read_window`), its log, and the progress a person watches while it runs (read by
    :mod:`runner.progress` only, and removed when Locust exits: not a result)."""

    json: Path
    raw: Path
    meta: Path
    log: Path
    progress: Path

    @classmethod
    def inside(cls, folder: Path) -> StepFiles:
        return cls(
            json=folder / "locust.json",
            raw=folder / "requests.csv",
            meta=folder / "window.json",
            log=folder / "locust.log",
            progress=folder / "progress.json",
        )


def command(config: RunConfig, url: str, users: int, files: StepFiles, rate: float | None = None) -> list[str]:
    """One step's Locust: ``users`` in a closed loop, or, given a ``rate``, open arrivals at that many requests per
    second taken by a pool of ``load.max_users`` users (``users`` is then ignored; see the locustfile)."""
    load = config.load
    hard_limit = max(1, round(config.step_seconds() + 10))
    if rate is not None:
        users = load.max_users
    return [
        sys.executable, "-m", "locust",
        "--locustfile", str(LOCUSTFILE),
        "--headless",
        "--host", url,
        "--users", str(users),
        "--spawn-rate", str(users),  # every user at once: a burst (open: the whole pool, idle until arrivals)
        *(_open_arrivals(config, rate) if rate is not None else []),
        "--run-time", f"{hard_limit}s",  # safety net; the locustfile ends the window itself
        "--stop-timeout", f"{load.drain_s:g}",
        "--warmup", f"{load.warmup_s:g}",
        "--measure", f"{load.measure_s:g}",
        "--progress-file", str(files.progress),
        *distribution(load.client_processes),
        *_common(config, files),
    ]  # fmt: skip


def burst_command(
    config: RunConfig,
    url: str,
    files: StepFiles,
    stages: Sequence[tuple[int, float]] | None = None,
    drain_s: float | None = None,
) -> list[str]:
    """The burst over time: the shape in ``loadtests/burst_shape.py`` sets the user count, stage by stage, and ends
    the run after the last stage; the whole run is the window (no warm-up).

    ``stages`` and ``drain_s`` default to the scenario's ``[burst]``; another experiment that needs users over
    time (a constant count for a set time, as the slow-client experiment's) passes its own.

    Always one Locust process, whatever ``client_processes`` says: distributed, Locust's master starts each stage
    about a second late, so ``burst_shape.py`` refuses to run that way (see there). The burst's few hundred users with
    think time are well within one process's capacity."""
    drain_s = config.burst.drain_s if drain_s is None else drain_s
    shape = ",".join(f"{users}:{seconds:g}" for users, seconds in (config.burst.stages if stages is None else stages))
    return [
        sys.executable, "-m", "locust",
        "--locustfile", str(BURST_LOCUSTFILE),
        "--headless",
        "--host", url,
        "--stages", shape,
        "--stop-timeout", f"{drain_s:g}",
        "--warmup", "0",
        "--measure", "0",
        *_common(config, files),
    ]  # fmt: skip


def _open_arrivals(config: RunConfig, rate: float) -> list[str]:
    load = config.load
    return [
        "--arrival", "open",
        "--rate", f"{rate:g}",
        "--arrival-process", load.arrival_process,
        "--max-lateness", f"{load.max_lateness_s:g}",
    ]  # fmt: skip


def _common(config: RunConfig, files: StepFiles) -> list[str]:
    """What every Locust run gets alike: the users' behaviour, where the files go, and a quiet log."""
    load = config.load
    return [
        "--json-file", str(files.json.with_suffix("")),  # Locust appends .json
        "--only-summary",
        "--exit-code-on-error", "0",  # failed requests are data, not a crash
        "--loglevel", "WARNING",
        "--think-min", f"{load.think_time_s[0]:g}",
        "--think-max", f"{load.think_time_s[1]:g}",
        "--page-weight", str(load.page_weight),
        "--short-weight", str(load.short_weight),
        "--request-timeout", f"{load.request_timeout_s:g}",
        "--raw-file", str(files.raw),
        "--meta-file", str(files.meta),
    ]  # fmt: skip


def distribution(processes: int, port: int | None = None) -> list[str]:
    """Nothing for one process; for more, a master on loopback with that many forked workers."""
    if processes <= 1:
        return []
    port = port or free_port()
    return [
        "--processes", str(processes),
        "--master-bind-host", "127.0.0.1",
        "--master-bind-port", str(port),
        "--master-host", "127.0.0.1",  # what the forked workers connect to
        "--master-port", str(port),
        "--expect-workers-max-wait", str(WORKERS_MAX_WAIT_S),
    ]  # fmt: skip


def client_env(folder: Path) -> dict[str, str]:
    """No LOCUST_* variable, and HOME is the step's folder, so no ~/.locust.conf is read either."""
    return clean_env(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", HOME=str(folder))


def run_step(
    config: RunConfig,
    url: str,
    users: int,
    folder: Path,
    cpus: frozenset[int],
    tick: Callable[[float], None] | None = None,
    rate: float | None = None,
) -> StepFiles:
    """Run Locust to completion (or kill it at its deadline). ``tick`` gets the seconds elapsed, for progress.
    With a ``rate``, open arrivals at that rate instead of ``users`` in a closed loop."""
    files = StepFiles.inside(folder)
    cmd = command(config, url, users, files, rate)
    return run_locust(cmd, files, folder, cpus, deadline(config.step_seconds()), tick)


def deadline(load_seconds: float) -> float:
    """When Locust is stopped whatever it is doing: its load's own length, then time to shut down and write."""
    return load_seconds + SHUTDOWN_GRACE_S + 10


def run_locust(
    cmd: list[str],
    files: StepFiles,
    folder: Path,
    cpus: frozenset[int],
    deadline: float,
    tick: Callable[[float], None] | None = None,
) -> StepFiles:
    """One Locust process (with its forked workers, if any) in its own group, pinned, stopped at ``deadline``
    seconds whatever it is doing. Its progress file goes with it: it only ever described a run under way."""
    process = start_group(cmd, log_path=files.log, env=client_env(folder), cwd=folder, cpus=cpus)
    started = time.monotonic()
    try:
        while True:
            try:
                code = process.wait(timeout=0.25)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - started
                if tick is not None:
                    tick(elapsed)
                if elapsed > deadline:
                    raise LoadError(
                        f"Locust did not finish within {deadline:.0f} s; it was stopped.\n{log_tail(files.log, 20)}"
                    ) from None
    finally:
        stop_group(process)
        files.progress.unlink(missing_ok=True)
    if code != 0:
        raise LoadError(f"Locust exited with code {code}.\n{log_tail(files.log, 20)}")
    return files
