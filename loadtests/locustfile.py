"""The load: simulated users who mostly load pages and sometimes make a short request.

Every setting arrives as an explicit command-line flag from the runner (none is hard-coded, no host included),
so the same file works from ``make benchmark`` and by hand::

    locust -f loadtests/locustfile.py --headless -u 50 -r 50 -t 20s --host http://127.0.0.1:8000

Besides Locust's own ``--json-file`` totals, each step gets:

* a warm-up: statistics are reset ``--warmup`` seconds after the start, so the burst's first moments are
  discarded from the totals and percentiles;
* ``--raw-file``: one row per request (start, duration, endpoint, outcome) so the runner can count what
  completed inside the measured window, what finished during the drain, and what never finished;
* ``--meta-file``: the window's timestamps and this process's own CPU time over the window, because Locust's
  built-in CPU warning needs ~20 s before it can fire.
"""

from __future__ import annotations

import csv
import json
import os
import random
import time
from typing import Any

import gevent
import psutil

# Locust puts this file's folder on sys.path, so its neighbour imports by plain name.
from hosts import is_loopback
from locust import FastHttpUser, events
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment


@events.init_command_line_parser.add_listener
def _add_arguments(parser: LocustArgumentParser) -> None:
    group = parser.add_argument_group("bench", "settings passed by the benchmark runner")
    group.add_argument("--warmup", type=float, default=0.0, help="seconds discarded before the measured window")
    group.add_argument(
        "--measure", type=float, default=0.0, help="length of the measured window (s); 0: until --run-time ends"
    )
    group.add_argument("--think-min", type=float, default=1.0, help="shortest think time between requests (s)")
    group.add_argument("--think-max", type=float, default=3.0, help="longest think time between requests (s)")
    group.add_argument("--page-weight", type=int, default=4, help="relative frequency of page requests")
    group.add_argument("--short-weight", type=int, default=1, help="relative frequency of short requests")
    group.add_argument("--request-timeout", type=float, default=30.0, help="connect and network timeout (s)")
    group.add_argument("--raw-file", default="", help="write one CSV row per request here")
    group.add_argument("--meta-file", default="", help="write the window's timestamps and client CPU here")
    group.add_argument(
        "--allow-remote-host",
        action="store_true",
        help="allow a --host that is not on this machine (127.0.0.0/8, ::1, localhost); off by default",
    )


class _Recorder:
    """Collects every request and the window's boundaries for the runner."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, float, str, int, str]] = []
        self.in_flight: dict[int, tuple[float, str]] = {}
        self._next_id = 0
        self.meta: dict[str, Any] = {}
        self._cpu_at_window_start = 0.0
        self._process = psutil.Process()

    def begin(self, name: str) -> dict[str, int]:
        """Note a request about to be sent; the returned context comes back with its request event."""
        self._next_id += 1
        self.in_flight[self._next_id] = (time.time(), name)
        return {"request_id": self._next_id}

    def cpu_seconds(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def open_window(self, environment: Environment) -> None:
        environment.stats.reset_all()
        self.meta["window_start"] = time.time()
        self._cpu_at_window_start = self.cpu_seconds()

    def close_window(self) -> None:
        now = time.time()
        self.meta["window_end"] = now
        start = self.meta.get("window_start")
        if start is not None and now > start:
            used = self.cpu_seconds() - self._cpu_at_window_start
            self.meta["client_cpu_seconds"] = used
            self.meta["client_cpu_pct"] = 100.0 * used / (now - start)


recorder = _Recorder()


@events.request.add_listener
def _on_request(
    request_type: str,
    name: str,
    response_time: float,
    response_length: int,
    exception: BaseException | None = None,
    start_time: float | None = None,
    context: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    if context and "request_id" in context:
        recorder.in_flight.pop(context["request_id"], None)
    started = start_time if start_time is not None else time.time() - response_time / 1000.0
    error = "" if exception is None else type(exception).__name__ + ": " + str(exception)[:200]
    recorder.rows.append((started, response_time, name, 0 if exception else 1, error))


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    recorder.meta["test_start"] = time.time()
    options = environment.parsed_options
    warmup = float(options.warmup) if options else 0.0
    measure = float(options.measure) if options else 0.0
    if warmup > 0:
        gevent.spawn_later(warmup, recorder.open_window, environment)
    else:
        recorder.open_window(environment)
    if measure > 0 and environment.runner is not None:
        # End the window ourselves so it lasts exactly --measure seconds: Locust's --run-time clock starts a
        # little before test_start, and stays only as a safety net.
        gevent.spawn_later(warmup + measure, environment.runner.quit)


@events.test_stopping.add_listener
def _on_test_stopping(environment: Environment, **_: Any) -> None:
    # The run time is over: users in think time stop now, users with a request in flight finish it (up to
    # --stop-timeout). Completions from here on are the drain.
    recorder.close_window()


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    stop_end = time.time()
    recorder.meta["stop_end"] = stop_end
    recorder.meta["completed_requests"] = len(recorder.rows)
    # Requests sent but never answered: their users were killed when --stop-timeout ran out. Their age at that
    # moment is a lower bound on their response time.
    recorder.meta["unfinished"] = [
        {"start_epoch_s": started, "endpoint": name, "age_ms": (stop_end - started) * 1000.0}
        for started, name in sorted(recorder.in_flight.values())
    ]
    options = environment.parsed_options
    if options is None:
        return
    if options.raw_file:
        _write_atomically(options.raw_file, _raw_csv)
    if options.meta_file:
        _write_atomically(options.meta_file, lambda f: json.dump(recorder.meta, f, indent=2))


def _raw_csv(handle: Any) -> None:
    writer = csv.writer(handle)
    writer.writerow(["start_epoch_s", "response_ms", "endpoint", "ok", "error"])
    for started, response_ms, name, ok, error in recorder.rows:
        writer.writerow([f"{started:.6f}", f"{response_ms:.3f}", name, ok, error])


def _write_atomically(path: str, write: Any) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        write(handle)
    os.replace(tmp, path)


class BenchUser(FastHttpUser):
    """One simulated user. Think time, task mix and timeouts are set from the command line at init."""

    # Placeholders (FastHttpUser's own default is 60 s): _configure_user sets both from --request-timeout.
    connection_timeout = 30.0
    network_timeout = 30.0

    def wait_time(self) -> float:
        options = self.environment.parsed_options
        return random.uniform(options.think_min, options.think_max)

    def page(self) -> None:
        self.client.get("/page", name="page", context=recorder.begin("page"))

    def short(self) -> None:
        self.client.get("/short", name="short", context=recorder.begin("short"))


@events.init.add_listener
def _configure_user(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    if not is_loopback(environment.host or "") and not options.allow_remote_host:
        raise SystemExit(
            f"refusing to send load to {environment.host!r}: not an address on this machine. Load tests target "
            "127.0.0.1 by default; pass --allow-remote-host if you really mean to load another host."
        )
    if options.think_min < 0 or options.think_max < options.think_min:
        raise SystemExit(f"bad think time: --think-min {options.think_min} --think-max {options.think_max}")
    if options.page_weight < 0 or options.short_weight < 0 or options.page_weight + options.short_weight == 0:
        raise SystemExit("bad task weights: --page-weight and --short-weight must be >= 0 and not both 0")
    BenchUser.connection_timeout = options.request_timeout
    BenchUser.network_timeout = options.request_timeout
    tasks: list[Any] = [BenchUser.page] * options.page_weight + [BenchUser.short] * options.short_weight
    BenchUser.tasks = tasks
