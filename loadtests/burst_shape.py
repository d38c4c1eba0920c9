"""The burst over time: the same users as ``locustfile.py``, with a user count that follows a list of stages.

A ``LoadTestShape`` is used here and only here, because Locust applies a shape class to every run of the file
that defines it, and its cumulative statistics suit a time series, not the per-step windows of the sweep. The
per-request log (``--raw-file``) is what the runner charts, so every second's figures are exact::

    locust -f loadtests/burst_shape.py --headless --host http://127.0.0.1:8000 --stages 5:5,500:15,5:15

Each stage is ``users:seconds``. Users are started and stopped at the largest stage's count per second, so a
jump from 5 to 500 users is a real burst, and a drop stops the surplus users as soon as their request in flight has
been answered (the drop never cuts a request short, up to ``--stop-timeout``). The user count Locust actually
ran is sampled every 0.25 s into the ``--meta-file``, so the chart draws what happened, not what was asked.

It runs in one Locust process only, and exits with code 2 if started distributed (``--processes``,
``--master``, ``--worker``): Locust's master then hands each stage's users to its workers in messages and waits
up to a second for their reports after every change, so stages start late and the chart would draw a burst at a
time it did not happen. Measured with two workers: the users of a stage due at 1 s started sending at 2.1 s.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import gevent

# Locust puts this file's folder on sys.path. Importing the sweep's locustfile brings its user class, its flags
# and its recorder (the raw log and the meta file), so both files measure requests the same way.
from locust import LoadTestShape, events
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from locustfile import BenchUser, recorder

__all__ = ["BenchUser", "BurstShape"]

SAMPLE_EVERY_S = 0.25


def parse_stages(text: str) -> list[tuple[int, float]]:
    """``5:5,500:15,5:15`` -> [(5, 5.0), (500, 15.0), (5, 15.0)]; raises ValueError naming the bad stage."""
    stages: list[tuple[int, float]] = []
    for part in (p.strip() for p in text.split(",")):
        users, sep, seconds = part.partition(":")
        try:
            if not sep:
                raise ValueError
            stage = (int(users), float(seconds))
        except ValueError:
            raise ValueError(f"bad stage {part!r}: expected users:seconds, e.g. 500:15") from None
        if stage[0] < 1 or not stage[1] > 0:
            raise ValueError(f"bad stage {part!r}: users must be >= 1 and seconds > 0")
        stages.append(stage)
    if not stages:
        raise ValueError("no stages given")
    return stages


@events.init_command_line_parser.add_listener
def _add_arguments(parser: LocustArgumentParser) -> None:
    parser.add_argument("--stages", default="", help="users:seconds,... e.g. 5:5,500:15,5:15")


class BurstShape(LoadTestShape):
    """Hold each stage's user count for its seconds, then stop (returning None ends the test)."""

    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options if self.runner else None
        if options is None or not options.stages:
            return None
        stages = parse_stages(options.stages)
        # Locust starts and stops users at this rate: the largest stage's count, so every change, up or down,
        # happens within a second.
        rate = float(max(users for users, _ in stages))
        elapsed = self.get_run_time()
        for users, seconds in stages:
            if elapsed < seconds:
                return users, rate
            elapsed -= seconds
        return None


def _sample_users(environment: Environment) -> None:
    samples: list[list[float]] = recorder.meta.setdefault("user_counts", [])
    while environment.runner is not None:
        samples.append([time.time(), float(environment.runner.user_count)])
        gevent.sleep(SAMPLE_EVERY_S)


@events.init.add_listener
def _check_stages(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    try:
        parse_stages(options.stages)
    except ValueError as error:
        raise SystemExit(f"--stages: {error}") from None


DISTRIBUTED_REFUSAL = (
    "loadtests/burst_shape.py runs in one Locust process only: distributed, Locust's master starts each stage about a "
    "second late, so the chart would not show when the burst happened. Run it without --processes, --master or "
    "--worker.\n"
)


@events.init.add_listener
def _refuse_distribution(environment: Environment, runner: Any = None, **_: Any) -> None:
    if isinstance(runner, MasterRunner | WorkerRunner):
        options = environment.parsed_options
        # Said once: a worker forked by --processes leaves it to its master.
        if isinstance(runner, MasterRunner) or not getattr(options, "processes", None):
            sys.stderr.write(DISTRIBUTED_REFUSAL)
        raise SystemExit(2)


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    gevent.spawn(_sample_users, environment)
