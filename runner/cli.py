"""``python -m runner [SCENARIO] [flags]``: run a scenario's sweep and draw its charts and report.

Exit codes: 0 all steps measured, 1 the run failed or some steps did, 2 bad input (nothing was started),
130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.markup import escape

from runner import (
    backends,
    burst,
    capacity,
    experiment,
    files,
    open_loop,
    proxy,
    render,
    slow_clients,
    store,
    timeline,
)
from runner.config import OVERRIDES, RunConfig, ScenarioError, load_config, resume_config
from runner.processes import plan_cpus
from runner.servers import ServerError
from runner.sweep import Run, resume_run, run_sweep, start_run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m runner",
        description="Benchmark a sync (Flask/gunicorn) and an async (FastAPI/uvicorn) server side by side.",
    )
    p.add_argument(
        "scenario",
        nargs="?",
        default=None,
        help="a scenario name from scenarios/ (default: default) or a path to a .toml file",
    )
    p.add_argument(
        "--resume",
        metavar="RUN",
        type=Path,
        help="finish an interrupted or incomplete run folder, from its first missing step, with its own scenario",
    )
    for override in OVERRIDES:
        p.add_argument(override.flag, dest=override.flag, metavar="VALUE", help=f"{override.help} (env {override.env})")
    p.add_argument("--dry-run", action="store_true", help="validate the scenario and print the plan, start nothing")
    return p


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM takes the same path as Ctrl-C, so every context manager tears its processes down on the way out.
    raise KeyboardInterrupt(f"signal {signum}")


def describe_plan(config: RunConfig) -> str:
    lines = [f"scenario {config.name} ({config.source})"]
    for server in config.servers:
        lines.append(f"  server {server.name}: {server.server}, {server.describe()} ({server.kind})")
    load = config.load
    if load.closed:
        lines.append(
            f"  users {list(load.users)}; warm-up {load.warmup_s:g} s, window {load.measure_s:g} s, "
            f"drain up to {load.drain_s:g} s; think time {load.think_time_s[0]:g}-{load.think_time_s[1]:g} s"
        )
    steps = len(load.users) * load.repeats * len(config.servers) if load.closed else 0
    if load.repeats > 1:
        lines.append(f"  each step measured {load.repeats} times, each time with a fresh server and Locust run")
    lines.append(f"  {steps} steps, at most ~{steps * (config.step_seconds() + 3) / 60:.1f} min")
    if config.burst.stages:
        per_server = config.burst.seconds + config.burst.drain_s + 3
        lines.append(
            f"  then the burst over time on each server: {burst.stages_text(config)} "
            f"(at most ~{len(config.servers) * per_server / 60:.1f} min)"
        )
    if config.slow_clients.counts:
        sc = config.slow_clients
        per_server = len(sc.counts) * (sc.seconds + sc.drain_s + 3)
        lines.append(
            f"  then slow clients on each server: K = {', '.join(map(str, sc.counts))} at {sc.users} users "
            f"(at most ~{len(config.servers) * per_server / 60:.1f} min)"
        )
    if load.open:
        open_steps = len(load.rates) * len(config.servers)
        lines.append(
            f"  then {open_loop.describe(config)} ({open_steps} steps, at most "
            f"~{open_steps * (config.step_seconds() + 3) / 60:.1f} min)"
        )
        lines.append(f"  then the {capacity.describe(config)}")
    for applied in config.overrides:
        lines.append(f"  override: {applied}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(parser().parse_args(argv))
    console = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    flags = {o.flag: args.get(o.flag) for o in OVERRIDES}
    run_dir: Path | None = None
    try:
        if args["resume"] is not None:
            run_dir = Path(args["resume"]).resolve()
            resume_doc = store.load_run(run_dir)
            if resume_doc["status"] == "complete":
                raise ScenarioError(f"{run_dir} is complete: every step was measured, there is nothing to resume")
            config = resume_config(resume_doc["config"], run_dir, os.environ, flags, args["scenario"])
        else:
            config = load_config(args["scenario"] or "default", os.environ, flags)
    except (ScenarioError, store.ResultsError) as error:
        err.print(f"[red]error:[/] {escape(str(error))}", soft_wrap=True)
        return 2
    if args["dry_run"]:
        console.print(describe_plan(config), soft_wrap=True, markup=False)
        return 0
    try:
        # A server behind nginx: nginx must be there and accept the configuration before anything starts.
        proxy.check(config.servers, config.run.nginx)
    except proxy.ProxyError as error:
        err.print(f"[red]error:[/] {escape(str(error))}", soft_wrap=True)
        return 2

    # SIGTERM and a closed terminal (SIGHUP) take the same path as Ctrl-C: every process is torn down.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    console.print(describe_plan(config), soft_wrap=True, markup=False)
    try:
        code, current, outputs = _run(config, run_dir, console, err)
    except store.ResultsError as error:
        err.print(f"[red]error:[/] {escape(str(error))}", soft_wrap=True)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
    if current is None:
        return code
    console.print(f"results: {current.dir}")
    for path in outputs:
        console.print(f"  {path.relative_to(current.dir)}")
    return code if code != 0 else render.exit_status(current.dir)


def _run(config: RunConfig, resume: Path | None, console: Console, err: Console) -> tuple[int, Run | None, list[Path]]:
    """The database, the run folder (new, or ``resume``), the sweep and what follows it, and the report; returns
    the exit code so far, the run (None when nothing was started) and the files drawn."""
    cpus = plan_cpus(config.run.pin_cpus, config.run.server_cores)
    with contextlib.ExitStack() as held:
        # A resumed run is locked before its run.json is touched; a new one as soon as its folder exists (no
        # other process can know the new name yet). The lock is kept until the report is written.
        if resume is not None:
            held.enter_context(store.locked(resume))
        # The database (PostgreSQL only) is ready and checked before a new run's folder exists, and stays up until
        # the report is written; leaving this block by any path stops it.
        try:
            database = held.enter_context(backends.run_backend(config, cpus.client))
        except (ScenarioError, *backends.BackendError) as error:
            err.print(f"[red]error:[/] {escape(str(error))}", soft_wrap=True)
            return 2, None, []
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/] while the database was being prepared; nothing was measured")
            return 130, None, []
        if database is not None:
            console.print(f"  database: {database.describe()}", soft_wrap=True, markup=False)
        if resume is None:
            current = start_run(config, cpus, database)
            held.enter_context(store.locked(current.dir))
        else:
            current = resume_run(config, resume, store.load_run(resume), cpus, database)
        # The servers get the database's effective URL; run.json keeps the scenario's, masked.
        serving = backends.served(config, database)
        code = _sweep(serving, current, console, err, database)
        if code == 0:
            code = _after_sweep(timeline.EXPERIMENT, serving, current, console, err, database)
        if code == 0 and config.burst.stages:
            code = _after_sweep(burst.EXPERIMENT, serving, current, console, err, database)
        if code == 0 and config.slow_clients.counts:
            code = _after_sweep(slow_clients.EXPERIMENT, serving, current, console, err, database)
        if code == 0 and config.load.open:
            code = _after_sweep(open_loop.EXPERIMENT, serving, current, console, err, database)
        if code == 0 and config.load.open:
            code = _after_sweep(capacity.EXPERIMENT, serving, current, console, err, database)
        return code, current, render.render(current.dir)


def _after_sweep(
    step: experiment.Experiment,
    config: RunConfig,
    current: Run,
    console: Console,
    err: Console,
    database: backends.Backend | None = None,
) -> int:
    """After a complete sweep: the timeline, the burst over time, then slow clients, each saved into its section of
    run.json.
    An experiment that fails (or a server that fails it) is recorded with its error: the sweep's results are never
    at stake."""
    console.print(step.describe(config))
    try:
        if database is not None and (note := database.ensure_up()) is not None:
            err.print(f"[yellow]{escape(note)}[/]", soft_wrap=True)
        current.doc[step.name] = step.measure(config, current.cpus, current.dir / step.raw)
    except (ServerError, OSError) as error:
        err.print(f"[yellow]{step.name} skipped:[/] {escape(str(error))}", soft_wrap=True)
        current.doc[step.name] = {"error": str(error)}
    except KeyboardInterrupt:
        err.print(f"[yellow]{step.name} interrupted:[/] {step.stopped} were stopped; the sweep's results are kept")
        return 130
    files.write_json(current.dir / store.RUN_FILE, current.doc)
    for problem in step.problems(current.doc[step.name]):
        err.print(f"[yellow]{escape(problem)}[/]", soft_wrap=True)
    return 0


def _sweep(
    config: RunConfig, current: Run, console: Console, err: Console, database: backends.Backend | None = None
) -> int:
    """Run the sweep; an interruption or a server that cannot start still leaves a report of what was measured."""
    try:
        run_sweep(config, current, console, database)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted:[/] every server and Locust process was stopped; completed steps are kept")
        err.print(f"  finish it later with: make benchmark RESUME={current.dir}", soft_wrap=True, markup=False)
        return 130
    except ServerError as error:
        err.print(f"[red]error:[/] {escape(str(error))}", soft_wrap=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
