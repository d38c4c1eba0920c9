"""The one way an experiment runs alone: ``python -m runner.timeline`` and ``python -m runner.burst``.

A full run (``python -m runner``) measures the timeline and the burst after its sweep and keeps them in its
``run.json``. Run alone, each gets a folder of its own (``<scenario>-timeline``, ``<scenario>-burst``) with one
versioned JSON file and its chart. Only the measuring differs between the two; the rest lives here: reading the
scenario (bad input exits 2 before anything starts), pinning this process to the client's cores, the new folder,
the exit codes (1 when a server failed, 130 when interrupted), and the file's format and version, so that a reader
can refuse a file it does not know. The chart is drawn from the file as saved, by the code that redraws the folder
later (runner.render, ``python plots.py <folder>``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import backends, files, proxy, render, store
from runner.config import RunConfig, ScenarioError, load_config
from runner.processes import CpuPlan, plan_cpus
from runner.servers import ServerError

# Given the scenario, the cores and the folder for its raw files, measure and return what the JSON file holds.
Measure = Callable[[RunConfig, CpuPlan, Path], dict[str, Any]]


def _no_check(config: RunConfig) -> None:
    """Most experiments can run any valid scenario."""


def _no_problems(data: Mapping[str, Any]) -> list[str]:
    return []


@dataclass(frozen=True)
class Experiment:
    """What one standalone experiment does differently from another; ``run`` does the rest."""

    name: str  # names the folder: ``<scenario>-<name>``, and the section of run.json in a full run
    saved: render.ExperimentFile  # the JSON file written alone, its format, and the chart drawn from it
    raw: str  # the folder, inside the run folder, for the raw files measure writes (alone and in a full run)
    measure: Measure
    describe: Callable[[RunConfig], str]  # one line saying what is about to be measured
    stopped: str  # what an interruption stops, said when it happens ("the servers")
    check: Callable[[RunConfig], None] = _no_check  # raises ScenarioError if the scenario cannot run it
    problems: Callable[[Mapping[str, Any]], list[str]] = _no_problems  # what failed inside a finished run


def parser(prog: str, doc: str, scenario_help: str) -> argparse.ArgumentParser:
    """The arguments every experiment takes; a module adds its own before parsing."""
    p = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    p.add_argument("scenario", nargs="?", default="default", help=f"{scenario_help} (default: default)")
    p.add_argument("--results-dir", help="where the experiment's folder is created")
    return p


def at_least_one(text: str) -> int:
    """An argparse type: a whole number >= 1 (argparse prints the message, naming the flag, and exits 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def run(
    experiment: Experiment, scenario: str, results_dir: str | None, environ: Mapping[str, str] | None = None
) -> int:
    """Run one experiment alone, start to finish; returns the process's exit code.

    0 measured and drawn; 1 a server could not start or failed part of the experiment; 2 bad input (nothing was
    started); 130 interrupted (every server and Locust process stopped on the way out).
    """
    try:
        config = load_config(scenario, os.environ if environ is None else environ, {"--results-dir": results_dir})
        experiment.check(config)
        proxy.check(config.servers, config.run.nginx)  # nginx there and willing, when a server is behind it
    except (ScenarioError, proxy.ProxyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    cpus = plan_cpus(config.run.pin_cpus, config.run.server_cores)
    if cpus.client:
        os.sched_setaffinity(0, cpus.client)
    with contextlib.ExitStack() as held:
        # A PostgreSQL scenario's database is ready and checked before the folder exists, and stopped on the way
        # out whatever happens (the simulated database needs nothing: None).
        try:
            database = held.enter_context(backends.run_backend(config, cpus.client))
        except (ScenarioError, *backends.BackendError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted while the database was being prepared; nothing was measured", file=sys.stderr)
            return 130
        run_dir = store.new_run_dir(config.results_root, f"{config.name}-{experiment.name}")
        print(experiment.describe(config))
        try:
            data = experiment.measure(backends.served(config, database), cpus, run_dir / experiment.raw)
        except ServerError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"interrupted: {experiment.stopped} were stopped", file=sys.stderr)
            return 130
    saved = experiment.saved
    files.write_json(run_dir / saved.file, store.stamp(data, saved.file_format, store.EXPERIMENT_VERSION))
    written = render.render_experiment(run_dir)
    print(f"results: {run_dir}")
    for path in [run_dir / saved.file, *written]:
        print(f"  {path.relative_to(run_dir)}")
    problems = experiment.problems(data)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0
