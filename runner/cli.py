"""``python -m runner [SCENARIO] [flags]``: run a scenario's sweep and draw its charts and report.

Exit codes: 0 all steps measured, 1 the run failed or some steps did, 2 bad input (nothing was started),
130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from rich.console import Console
from rich.markup import escape

from runner.config import OVERRIDES, RunConfig, ScenarioError, load_config
from runner.servers import ServerError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m runner",
        description="Benchmark a sync (Flask/gunicorn) and an async (FastAPI/uvicorn) server side by side.",
    )
    p.add_argument(
        "scenario",
        nargs="?",
        default="default",
        help="a scenario name from scenarios/ (default: default) or a path to a .toml file",
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
        lines.append(f"  server {server.name}: {server.server}, {server.workers} worker(s), {server.kind}")
    load = config.load
    lines.append(
        f"  users {list(load.users)}; warm-up {load.warmup_s:g} s, window {load.measure_s:g} s, "
        f"drain up to {load.drain_s:g} s; think time {load.think_time_s[0]:g}-{load.think_time_s[1]:g} s"
    )
    steps = len(load.users) * len(config.servers)
    lines.append(f"  {steps} steps, at most ~{steps * (config.step_seconds() + 3) / 60:.1f} min")
    for applied in config.overrides:
        lines.append(f"  override: {applied}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(parser().parse_args(argv))
    console = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    flags = {o.flag: args.get(o.flag) for o in OVERRIDES}
    try:
        config = load_config(args["scenario"], os.environ, flags)
    except ScenarioError as error:
        err.print(f"[red]error:[/] {escape(str(error))}", soft_wrap=True)
        return 2
    if args["dry_run"]:
        console.print(describe_plan(config), soft_wrap=True, markup=False)
        return 0

    # Imported here so that --dry-run and bad input answer without loading matplotlib.
    import plots  # noqa: PLC0415
    from runner.sweep import run_sweep, start_run  # noqa: PLC0415

    signal.signal(signal.SIGTERM, _raise_interrupt)
    console.print(describe_plan(config), soft_wrap=True, markup=False)
    current = start_run(config)
    try:
        run_sweep(config, current, console)
        code = 0
    except KeyboardInterrupt:
        err.print("[yellow]interrupted:[/] every server and Locust process was stopped; completed steps are kept")
        code = 130
    except ServerError as error:
        err.print(f"[red]error:[/] {escape(str(error))}", soft_wrap=True)
        code = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    outputs = plots.render(current.dir)
    console.print(f"results: {current.dir}")
    for path in outputs:
        console.print(f"  {path.relative_to(current.dir)}")
    if code == 0:
        code = plots.exit_status(current.dir)
    return code


if __name__ == "__main__":
    sys.exit(main())
