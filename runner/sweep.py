"""Run the steps of a scenario: for each user level, each repeat, each server, one fresh server and one Locust process.

User levels are the outer loop, then repeats, and servers the inner one, so any drift in the machine over a run
(another process waking up, thermal throttling) falls on both servers alike instead of on whichever ran last, and
a repeat measures the pair again rather than one server several times in a row.
"""

from __future__ import annotations

import contextlib
import csv
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape

from runner import files, repeats, store
from runner.backends import Backend
from runner.config import RunConfig, ServerConfig
from runner.environment import describe
from runner.files import log_tail
from runner.loadgen import LoadError, StepFiles, run_step
from runner.numbers import fmt_ms
from runner.open_figures import OpenFigures, open_figures
from runner.postgres import StepWatch
from runner.processes import CpuPlan, Sample, TreeSampler, plan_cpus, proportional_memory_mb, steal_seconds
from runner.progress import SweepProgress, step_label
from runner.servers import RunningServer, ServerError, command, proxy_command, serve, server_env
from runner.stats import OutputError, StepFigures, read_window, step_figures
from runner.upstream import UpstreamWatch
from runner.view import RunView
from simdb.database import DRIVER_ENV

CLIENT_SATURATED_PCT = 80.0
SERVER_SATURATED_PCT = 90.0


@dataclass(frozen=True)
class Step:
    server: ServerConfig
    users: int
    # 1-based; the first repeat is what a run without repeats measures, under the same folder name.
    repeat: int = 1
    # Open arrivals at this many requests per second (runner/open_loop.py) instead of ``users`` in a closed loop;
    # ``users`` is then the pool that takes them.
    rate: float | None = None
    # Where an open step's folder goes under raw/: its experiment's ("open", or "capacity" for the search's probes).
    group: str = "open"

    @property
    def folder_name(self) -> str:
        suffix = f"-r{self.repeat}" if self.repeat > 1 else ""
        if self.rate is not None:
            return f"{self.group}/{self.server.name}/rate{self.rate:g}{suffix}"
        return f"{self.server.name}/u{self.users:04d}{suffix}"

    @property
    def key(self) -> tuple[str, int, int]:
        """(server, users, repeat), as :func:`runner.repeats.step_key` reads it back from a record."""
        return self.server.name, self.users, self.repeat


def plan_steps(config: RunConfig) -> list[Step]:
    """The closed loop's steps; none when the scenario's arrivals are open only (runner/open_loop.py has those)."""
    if not config.load.closed:
        return []
    return [
        Step(server, users, repeat)
        for users in config.load.users
        for repeat in range(1, config.load.repeats + 1)
        for server in config.servers
    ]


def saturation(
    client_cpu: float | None,
    server_cpu: float | None,
    server_cores: int,
    client_cpu_max: float | None = None,
    client_cores: int = 0,
    beside_client: float | None = None,
) -> str:
    """Which side ran out of CPU in a step: the client's latencies are its own queueing above ~80% of a core.

    The client is several processes when Locust runs distributed (``client_cpu`` is their sum), and each one
    runs on one core at a time, so it is saturated when any one of them (``client_cpu_max``) is above ~80% of a
    core, or when together they are above ~80% of every core they were pinned to (``client_cores``; two workers
    sharing one core each stay near 50% while the core is full). For one process both rules are the old one.
    ``beside_client`` is CPU spent on the client's cores by something else (PostgreSQL is pinned there): it fills
    those cores as much as the client does.
    """
    busiest = client_cpu if client_cpu_max is None else client_cpu_max
    if busiest is not None and busiest > CLIENT_SATURATED_PCT:
        return "client"
    on_client_cores = None if client_cpu is None else client_cpu + (beside_client or 0.0)
    if client_cores > 0 and on_client_cores is not None and on_client_cores > CLIENT_SATURATED_PCT * client_cores:
        return "client"
    if server_cpu is not None and server_cpu >= SERVER_SATURATED_PCT * max(1, server_cores):
        return "server"
    return ""


def measure_step(
    config: RunConfig,
    step: Step,
    run_dir: Path,
    cpus: CpuPlan,
    tick: Callable[[float], None] | None = None,
    watch: Callable[[Path], None] | None = None,
    database: Backend | None = None,
) -> dict[str, Any]:
    """One step, start to finish. Returns the step's record for ``run.json``; raises ServerError if the server
    cannot start (the run cannot go on without it).

    ``tick`` gets the seconds since Locust started, a few times a second; ``watch`` is told, before the server
    starts, where Locust will write the step's progress (see :mod:`runner.progress`). With a real ``database``
    (``config`` then carries its effective URL, see :func:`runner.postgres.served`) the step also records the
    database's CPU and connections in the window, and fails if the database failed during it."""
    folder = new_step_folder(run_dir / "raw" / step.folder_name)
    if watch is not None:
        watch(StepFiles.inside(folder).progress)
    record: dict[str, Any] = {
        "server": step.server.name,
        "kind": step.server.kind,
        "server_type": step.server.server,
        "workers": step.server.workers,
        "users": step.users,
        "repeat": step.repeat,
        **({"arrival": "open", "rate": step.rate} if step.rate is not None else {}),
        "status": "failed",
        "error": None,
        "files": os.path.relpath(folder, run_dir),
        "started": time.time(),
    }
    log = folder / "server.log"
    with serve(step.server, config, log, cpus.server) as server:
        record["command"] = command(step.server, server.port)
        # uvicorn's command line is the same for async, def and blocking endpoints; the app reads which from
        # these variables, so they belong to "the exact command" as much as its arguments do.
        # The driver too; the database's URL never (it may hold a password).
        record["command_env"] = {
            k: v for k, v in server_env(config, step.server).items() if k.startswith("APP_") or k == DRIVER_ENV
        }
        started_pids = set(server.pids())
        record["server_processes"] = len(started_pids)
        if server.proxy is not None:
            # nginx in front (its nginx.conf and error log are in the step's folder): what ran, and which nginx.
            record["proxy_command"] = proxy_command(server)
            record["proxy_version"] = server.proxy.nginx.version
        with (
            TreeSampler(server.process.pid) as sampler,
            proxy_sampling(server) as proxy_sampler,
            watching(database) as db,
        ):
            steal_before = steal_seconds()
            try:
                files = run_step(config, server.url, step.users, folder, cpus.client, tick, step.rate)
                # Over the whole step (warm-up and drain too): the VM's steal per core, beside the client's lateness.
                record["steal_s"] = [round(b - a, 3) for a, b in zip(steal_before, steal_seconds(), strict=True)]
                figures: StepFigures | OpenFigures = (
                    step_figures(files.json, files.raw, files.meta)
                    if step.rate is None
                    else open_figures(files.raw, files.meta)
                )
            except (LoadError, OutputError) as error:
                record["error"] = _with_faults(_with_server_log(str(error), server, started_pids, log), db)
                return record
        pss = proportional_memory_mb(server.process.pid)
        record["error"] = _with_faults(_server_fault(server, started_pids, log), db)
    write_samples(folder / RESOURCES_FILE, sampler.samples)
    bounds = _window_bounds(files.meta)
    server_cpu, server_rss = sampler.window(*bounds) if bounds else (None, None)
    if proxy_sampler is not None:
        # The proxy's CPU over the same window, apart from the app's: what the proxy costs per request.
        write_samples(folder / PROXY_RESOURCES_FILE, proxy_sampler.samples)
        record["proxy_cpu_pct"] = proxy_sampler.window(*bounds)[0] if bounds else None
    if db is not None:
        record.update(db.figures(bounds))
        if db.cpu is not None:
            write_samples(folder / db.resources_file, db.cpu.samples)
    record.update(
        status="ok" if record["error"] is None else "failed",
        figures=figures.to_dict(),
        server_cpu_pct=server_cpu,
        server_rss_mb=server_rss,
        server_pss_mb=pss,
        saturated="generator"
        if isinstance(figures, OpenFigures) and figures.generator_behind
        else saturation(
            figures.client_cpu_pct,
            # nginx in front shares the server's cores: together they fill them.
            server_cpu if server_cpu is None else server_cpu + (record.get("proxy_cpu_pct") or 0.0),
            len(cpus.server) or os.cpu_count() or 1,
            client_cpu_max=figures.client_cpu_max_pct,
            client_cores=len(cpus.client),
            # PostgreSQL and the upstream service are pinned to the client's cores.
            beside_client=_beside_client(record) if cpus.client else None,
        ),
    )
    return record


def _beside_client(record: dict[str, Any]) -> float | None:
    """CPU on the client's cores besides Locust's: the database's or the upstream's (None: neither measured)."""
    found = [record[key] for key in ("db_cpu_pct", "upstream_cpu_pct") if record.get(key) is not None]
    return sum(found) if found else None


RESOURCES_FILE = "resources.csv"
DATABASE_RESOURCES_FILE = "database_resources.csv"  # PostgreSQL's process tree, sampled as the server's is
PROXY_RESOURCES_FILE = "proxy_resources.csv"  # nginx's process tree in front of a proxied server, sampled alike


@contextlib.contextmanager
def proxy_sampling(server: RunningServer) -> Iterator[TreeSampler | None]:
    """A second sampler on the proxy's tree (nginx's master and workers), when the server has one."""
    if server.proxy is None:
        yield None
        return
    with TreeSampler(server.proxy.process.pid) as sampler:
        yield sampler


@contextlib.contextmanager
def watching(database: Backend | None) -> Iterator[StepWatch | UpstreamWatch | None]:
    """The database's (or the upstream's) watch over one step; nothing to watch with the simulated one."""
    if database is None:
        yield None
        return
    with database.watch() as watch:
        yield watch


def _with_faults(message: str | None, db: StepWatch | UpstreamWatch | None) -> str | None:
    """The step's error with the database's own failure, if any, added: its log tail says what happened."""
    fault = db.fault() if db is not None else None
    if fault is None:
        return message
    return fault if message is None else f"{message}\n{fault}"


def write_samples(path: Path, samples: list[Sample]) -> None:
    """The server tree's CPU seconds and memory as sampled through the step: raw data for memory-over-time."""

    def write(handle: TextIO) -> None:
        out = csv.writer(handle)
        out.writerow(["epoch_s", "cpu_s", "rss_bytes", "processes"])
        for sample in samples:
            out.writerow([f"{sample.t:.3f}", f"{sample.cpu_s:.3f}", sample.rss_bytes, sample.processes])

    files.write_atomically(path, write)


def new_step_folder(base: Path) -> Path:
    """A folder no earlier attempt used: a resumed or repeated step never writes over what another one left."""
    for attempt in range(1, 1000):
        folder = base if attempt == 1 else base.with_name(f"{base.name}-attempt{attempt}")
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            continue
        return folder
    raise store.ResultsError(f"no free folder for a new attempt at {base}")


def _server_fault(server: RunningServer, started_pids: set[int], log: Path) -> str | None:
    """Whether the server lost its master or a worker during the step; a gunicorn master silently replaces a dead
    worker, and the requests that worker held fail, so that counts as a fault too."""
    if not server.alive():
        return f"the server exited during the step (code {server.process.returncode}).\n{log_tail(log)}"
    if server.proxy is not None and not server.proxy.alive():
        code = server.proxy.process.returncode
        return f"nginx in front of the server exited during the step (code {code}).\n{log_tail(server.proxy.error_log)}"
    lost = sorted(started_pids - set(server.pids()))
    if lost:
        return f"server process(es) {lost} died during the step and were replaced.\n{log_tail(log)}"
    return None


def _with_server_log(message: str, server: RunningServer, started_pids: set[int], log: Path) -> str:
    fault = _server_fault(server, started_pids, log)
    return f"{message}\n{fault}" if fault else message


def _window_bounds(meta_path: Path) -> tuple[float, float] | None:
    try:
        meta = read_window(meta_path)
        return float(meta["window_start"]), float(meta["window_end"])
    except (OutputError, ValueError, KeyError, TypeError):
        return None


@dataclass
class Run:
    """A run in progress: its folder, the document written to ``run.json``, and where processes may run."""

    dir: Path
    doc: dict[str, Any]
    cpus: CpuPlan


def start_run(config: RunConfig, cpus: CpuPlan | None = None, database: Backend | None = None) -> Run:
    """Create the run folder and its first ``run.json`` before anything is measured (with the database, where
    it is, what it is and where it was pinned, in the metadata)."""
    cpus = cpus or plan_cpus(config.run.pin_cpus, config.run.server_cores)
    run_dir = store.new_run_dir(config.results_root, config.name)
    metadata = describe(cpus.note)
    if database is not None:
        metadata["database"] = database.metadata()
    run = store.new_run_document(config.to_dict(), metadata)
    files.write_json(run_dir / store.RUN_FILE, run)
    store.point_latest(config.results_root, run_dir)
    return Run(run_dir, run, cpus)


def run_sweep(config: RunConfig, current: Run, console: Console | None = None, database: Backend | None = None) -> None:
    """Run every step and write results after each one.

    An interruption (Ctrl-C, or SIGTERM turned into KeyboardInterrupt by the CLI) marks the run
    ``interrupted``; servers and Locust are already stopped by their context managers when this records it.
    With a real ``database`` it is checked before each step and restarted if it stopped (the step it stopped in
    has failed with its log), so the run goes on.
    """
    console = console or Console()
    run_dir, run, cpus = current.dir, current.doc, current.cpus
    if cpus.client:
        # The harness itself (sampling, bookkeeping) stays off the server's cores too.
        os.sched_setaffinity(0, cpus.client)
    steps = plan_steps(config)
    done = {repeats.step_key(r) for r in run["steps"] if r.get("status") == "ok"}
    todo = [s for s in steps if s.key not in done]
    console.print(f"[bold]{escape(config.name)}[/]: {len(todo)} steps into {escape(str(run_dir))}")
    if done:
        console.print(f"  resuming: {len(done)} step(s) already measured are kept")
    console.print(f"  {escape(cpus.note)}")
    try:
        with SweepProgress(console, len(todo), config.step_seconds()) as progress:
            for index, step in enumerate(todo):
                if database is not None and (note := database.ensure_up()) is not None:
                    console.print(f"  [yellow]{escape(note)}[/]")
                progress.start_step(step_label(step.server.name, step.users, step.repeat, config.load.repeats))
                record = measure_step(config, step, run_dir, cpus, progress.tick, progress.watch, database=database)
                _retire_failed_attempts(run, step)
                run["steps"].append(record)
                _save(run_dir, run)
                progress.finish_step(step_line(index + 1, len(todo), record, config.load.repeats))
        run["status"] = "complete" if all(s["status"] == "ok" for s in run["steps"]) else "incomplete"
    except KeyboardInterrupt:
        run["status"] = "interrupted"
        raise
    except ServerError as error:
        run["status"] = "failed"
        run["error"] = str(error)
        raise
    finally:
        run["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        recorded = {repeats.step_key(r) for r in run["steps"]}
        # A repeat is named only when the run has repeats, so a run without them records what it always did.
        run["missing_steps"] = [
            {"server": s.server.name, "users": s.users, **({"repeat": s.repeat} if config.load.repeats > 1 else {})}
            for s in steps
            if s.key not in recorded
        ]
        _save(run_dir, run)


def _retire_failed_attempts(run: dict[str, Any], step: Step) -> None:
    """A step (one repeat of it) measured again replaces its failed record in ``steps``; the failure is kept, not
    erased. Only that repeat's record moves: the other repeats of the step are measurements of their own."""
    failed = [r for r in run["steps"] if repeats.step_key(r) == step.key]
    if failed:
        run.setdefault("failed_attempts", []).extend(failed)
        run["steps"] = [r for r in run["steps"] if repeats.step_key(r) != step.key]


def resume_run(
    config: RunConfig, run_dir: Path, doc: dict[str, Any], cpus: CpuPlan | None = None, database: Backend | None = None
) -> Run:
    """Reopen an unfinished run: same folder, same document, a note of when and by which code it was resumed
    (and on which database: an embedded cluster is a new one each time)."""
    cpus = cpus or plan_cpus(config.run.pin_cpus, config.run.server_cores)
    meta = describe(cpus.note)
    resumed: dict[str, Any] = {"date": meta["date"], "git": meta["git"], "cpu_pinning": cpus.note}
    if database is not None:
        resumed["database"] = database.metadata()
    doc.setdefault("resumes", []).append(resumed)
    doc["status"] = "running"
    doc["finished"] = None
    files.write_json(run_dir / store.RUN_FILE, doc)
    store.point_latest(run_dir.parent, run_dir)
    return Run(run_dir, doc, cpus)


def _save(run_dir: Path, run: dict[str, Any]) -> None:
    files.write_json(run_dir / store.RUN_FILE, run)
    store.write_summary(run_dir, RunView.from_doc(run, run_dir).summary_rows())


def step_line(number: int, total: int, record: dict[str, Any], planned_repeats: int = 1) -> str:
    """The line a finished step leaves in the output (rich markup), its figures in columns that line up from one
    step to the next: a dash where a percentile was withheld, the first line of the error of a failed step."""
    head = f"  [{number}/{total}] {record['server']:<18} {record['users']:>4} users"
    if planned_repeats > 1:
        head += f" r{repeats.repeat_of(record)}"
    if record["status"] != "ok":
        first = (record.get("error") or "failed").splitlines()[0]
        return f"{head}  [red]FAILED[/]: {escape(first)}"
    figures = record["figures"]
    latency = figures["latency"]
    flag = f"  [yellow]{record['saturated']} saturated[/]" if record.get("saturated") else ""
    return (
        f"{head}  {figures['rps']:7.1f} req/s  p50 {fmt_ms(latency['p50_ms']):>8}  p95 {fmt_ms(latency['p95_ms']):>8}"
        f"  failures {latency['failures']}{flag}"
    )
