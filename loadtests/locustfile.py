"""The load: simulated users who mostly load pages and sometimes make a short request.

Every setting arrives as an explicit command-line flag from the runner (none is hard-coded, no host included),
so the same file works from ``make benchmark`` and by hand::

    locust -f loadtests/locustfile.py --headless -u 50 -r 50 -t 20s --host http://127.0.0.1:8000

Besides Locust's own ``--json-file`` totals, each step gets:

* a warm-up: statistics are reset ``--warmup`` seconds after the start, so the burst's first moments are
  discarded from the totals and percentiles;
* ``--raw-file``: one row per request (start, duration, endpoint, outcome, request id, and the server's own
  ``handler`` and ``pool`` times from its ``Server-Timing`` header) so the runner can count what completed inside
  the measured window, what finished during the drain, and what never finished, and can tell time spent in the
  handler and waiting for a pooled connection from time spent queued in front of it;
* ``--meta-file``: the window's timestamps and the client's own CPU time over the window, because Locust's
  built-in CPU warning needs ~20 s before it can fire (format ``sync-async-bench/window``, read by
  ``runner.stats.read_window``);
* ``--progress-file``: rewritten about once a second with the phase and the requests counted so far, for the
  runner's progress line (``runner/progress.py``) and nothing else.

The same file runs distributed (``--processes N``, or ``--master`` and ``--worker`` by hand). Requests are then
made on the workers and only the master decides the window, so the roles split:

* the **master** opens the window (resets its totals and tells every worker to reset its own), closes it, and
  writes both files: each worker sends its rows, its unfinished requests and its CPU time to the master when it
  has drained (Locust custom messages), so the runner still reads one ``--raw-file`` and one ``--meta-file``;
* a **worker** logs its requests, resets its statistics when the master says so, and reports at its end. Request
  ids carry the worker's index (``w0-17``), so a request counted twice would show.
"""

from __future__ import annotations

import collections
import csv
import ctypes
import gc
import json
import math
import os
import pathlib
import random
import signal
import sys
import time
from typing import Any

import gevent
import gevent.event
import psutil

# Locust puts this file's folder on sys.path, so its neighbour imports by plain name.
from hosts import is_loopback
from locust import FastHttpUser, events
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment
from locust.exception import StopUser
from locust.rpc.protocol import Message
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import RequestStats, StatsEntry

# Run by hand from a checkout (``locust -f loadtests/locustfile.py``), the project's root is not on sys.path; the
# raw files are written by the project's one atomic writer, so the root is added here (the runner sets PYTHONPATH).
if str(_ROOT := pathlib.Path(__file__).resolve().parent.parent) not in sys.path:
    sys.path.append(str(_ROOT))
from runner.files import write_atomically

# The formats of the files the runner reads, checked there (runner.stats.read_window, runner.progress.read_seen).
from runner.store import LOCUST_FILES_VERSION, PROGRESS_FORMAT, WINDOW_FORMAT, stamp
from simdb.workload import parse_server_timing

PROGRESS_EVERY_S = 1.0

# Custom messages between the master and its workers (see the module docstring for who sends what).
RESET = "bench_reset"  # master -> workers: the window opens now; reset your statistics and start your CPU clock
RESET_DONE = "bench_reset_done"  # worker -> master: reset; every statistics report from now on is in the window
FINISH = "bench_finish"  # master -> workers: stop and drain, if Locust's own stop message has not reached you
ROWS = "bench_rows"  # worker -> master: a slice of the worker's per-request rows
DONE = "bench_done"  # worker -> master: every row sent; here are the row count, unfinished requests and CPU time
# Rows per message: a few hundred kB, so no single message holds up the master's message loop for long.
ROWS_PER_MESSAGE = 5000
# How much longer than the drain bound the master waits for its workers' reports before writing what it has.
REPORT_GRACE_S = 10.0

OPEN_RATE = "bench_open_rate"  # master -> workers: your share of the arrivals; start scheduling them now

RAW_COLUMNS = (
    "start_epoch_s",
    "response_ms",
    "endpoint",
    "ok",
    "error",
    "request_id",
    "handler_ms",
    "pool_ms",
    "scheduled_epoch_s",
)
# start epoch s, response ms, endpoint, ok (1/0), error, request id (text: "17" alone, "w0-17" from worker 0), the
# server's handler and pool-wait times in ms (NaN in memory, empty in the file, when the response had none), and,
# with open arrivals, when the request was scheduled to start (empty in a closed loop, where nothing is scheduled).
Row = tuple[float, float, str, int, str, str, float, float, float]
NAN = float("nan")


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
    group.add_argument(
        "--arrival",
        choices=("closed", "open"),
        default="closed",
        help="closed: each user thinks, then sends again; open: users take arrivals scheduled at --rate",
    )
    group.add_argument("--rate", type=float, default=0.0, help="open arrivals: requests per second in total")
    group.add_argument(
        "--arrival-process",
        choices=("poisson", "constant"),
        default="poisson",
        help="open arrivals: exponential gaps (poisson) or equal ones (constant)",
    )
    group.add_argument(
        "--max-lateness",
        type=float,
        default=1.0,
        help="open arrivals: an arrival no user could send within this many seconds is dropped (and counted)",
    )
    group.add_argument("--raw-file", default="", help="write one CSV row per request here")
    group.add_argument("--meta-file", default="", help="write the window's timestamps and client CPU here")
    group.add_argument("--progress-file", default="", help="rewrite the phase and requests so far here every second")
    group.add_argument(
        "--allow-remote-host",
        action="store_true",
        help="allow a --host that is not on this machine (127.0.0.0/8, ::1, localhost); off by default",
    )


# --- dying with the master ----------------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_PR_GET_PDEATHSIG = 2
try:  # Resolved at import, before Locust forks any worker.
    _prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _prctl = None
_fork_parent: list[int] = []


def _remember_parent() -> None:
    _fork_parent[:] = [os.getpid()]


def _die_with_parent() -> None:
    """Runs in each worker the moment ``--processes`` forks it. The runner starts the master with
    PR_SET_PDEATHSIG, but a fork does not inherit it: without this, a master killed alone (SIGKILL, out of
    memory) would leave its workers sending load. Armed here rather than in ``init`` so there is no gap at all,
    and a master that died before it was armed is caught by its pid having changed."""
    if _prctl is None:
        return
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if _fork_parent and os.getppid() != _fork_parent[0]:
        os._exit(1)


if _prctl is not None:
    os.register_at_fork(before=_remember_parent, after_in_child=_die_with_parent)


def _parent_death_signal() -> int | None:
    """The signal this process gets when its parent dies (0: none), recorded so a run can show it was armed."""
    if _prctl is None:
        return None
    value = ctypes.c_int(0)
    _prctl(_PR_GET_PDEATHSIG, ctypes.byref(value))
    return value.value


# --- the client's own pauses ----------------------------------------------------------------------------------------


class _GcPauses:
    """Every garbage collection this process makes, timed: a collection stops every greenlet, the arrivals'
    scheduler too, so a long one shows as generator lateness; kept so a late arrival can be put down to it or
    not. One callback per collection costs a few microseconds."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, int, float]] = []  # (epoch s at the end, generation, ms)
        self._started = 0.0

    def install(self) -> None:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((time.time(), int(info["generation"]), (time.perf_counter() - self._started) * 1e3))

    def summary(self, start: float, end: float) -> dict[str, Any]:
        """The collections that ended inside [start, end]: how many of each generation, the total and longest
        pause, and each one of GC_REPORTED_MS or more with when it ended."""
        inside = [(t, gen, ms) for t, gen, ms in self.pauses if start <= t <= end]
        return {
            "collections": [sum(1 for _, gen, _ in inside if gen == g) for g in range(3)],
            "total_ms": round(sum(ms for _, _, ms in inside), 3),
            "max_ms": round(max((ms for _, _, ms in inside), default=0.0), 3),
            "long": [[round(t, 4), gen, round(ms, 3)] for t, gen, ms in inside if ms >= GC_REPORTED_MS],
        }


# A collection at least this long is listed by itself in the window file (a quarter of what flags the generator).
GC_REPORTED_MS = 5.0
gc_pauses = _GcPauses()
gc_pauses.install()


# --- the recorder -------------------------------------------------------------------------------------------------


class _Recorder:
    """Collects every request and the window's boundaries for the runner; on a master, its workers' too."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, float, str, int, str, int, float, float, float]] = []
        # request id -> (when sent, endpoint, when scheduled: NaN in a closed loop)
        self.in_flight: dict[int, tuple[float, str, float]] = {}
        self._next_id = 0
        self.meta: dict[str, Any] = {}
        self._cpu_at_window_start = 0.0
        self._window_opened: float | None = None
        self._process: psutil.Process | None = None
        # This process's CPU over the window: (seconds used, seconds of wall clock), once the window has closed.
        self.own_cpu: tuple[float, float] | None = None
        # Worker: set once a stop has begun, so a second request to stop never starts a second drain.
        self.stopping = False
        # Master: workers in the test, those whose reports still predate the window, and what each has sent.
        self.participants: set[str] = set()
        self.awaiting_reset: set[str] = set()
        self.worker_rows: dict[str, list[list[Any]]] = {}
        self.worker_reports: dict[str, dict[str, Any]] = {}
        # For the progress file: the phase, when it ends (epoch s; None: no set end), and the requests and
        # failures counted before the window opened, since Locust's totals start again from zero there.
        self.phase = "starting"
        self.phase_ends: float | None = None
        self.counted_before_window = (0, 0)

    def enter_phase(self, phase: str, seconds: float | None = None) -> None:
        self.phase = phase
        self.phase_ends = time.time() + seconds if seconds else None

    def begin(self, name: str, scheduled: float = NAN) -> dict[str, Any]:
        """Note a request about to be sent (an open arrival's with when it was scheduled); the returned context
        comes back with its request event."""
        self._next_id += 1
        self.in_flight[self._next_id] = (time.time(), name, scheduled)
        return {"request_id": self._next_id, "scheduled": scheduled}

    def cpu_seconds(self) -> float:
        # A worker is forked from the master after this module was imported: a Process made before the fork
        # would still measure the master.
        if self._process is None or self._process.pid != os.getpid():
            self._process = psutil.Process()
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def start_cpu_clock(self) -> None:
        self._window_opened = time.time()
        self._cpu_at_window_start = self.cpu_seconds()

    def stop_cpu_clock(self) -> None:
        if self._window_opened is None or self.own_cpu is not None:
            return
        self.own_cpu = (self.cpu_seconds() - self._cpu_at_window_start, time.time() - self._window_opened)

    def open_window(self, environment: Environment) -> None:
        runner = environment.runner
        if isinstance(runner, MasterRunner):
            # Reports from a worker that has not reset yet carry warm-up requests: from here until its
            # RESET_DONE arrives they are dropped (see _drop_warmup_reports).
            self.awaiting_reset = set(runner.clients)
        total = environment.stats.total
        self.counted_before_window = (total.num_requests, total.num_failures)
        environment.stats.reset_all()
        self.meta["window_start"] = time.time()
        self.start_cpu_clock()
        options = environment.parsed_options
        self.enter_phase("window", float(options.measure) if options else None)
        if isinstance(runner, MasterRunner):
            runner.send_message(RESET)

    def close_window(self, environment: Environment) -> None:
        now = time.time()
        self.meta["window_end"] = now
        self.enter_phase("drain", environment.stop_timeout)
        start = self.meta.get("window_start")
        if start is not None and now > start:
            self.stop_cpu_clock()
            # A master's own CPU is only its part: the client's figures wait for its workers (_collect_workers).
            if self.own_cpu is not None and not isinstance(environment.runner, MasterRunner):
                self.meta["client_cpu_seconds"] = self.own_cpu[0]
                self.meta["client_cpu_pct"] = 100.0 * self.own_cpu[0] / (now - start)
                self.meta["client_cpu_max_pct"] = self.meta["client_cpu_pct"]

    def process_entry(self, role: str, index: int | None = None) -> dict[str, Any]:
        """This process's part of the client: which cores it could run on and its CPU over the window."""
        used, span = self.own_cpu if self.own_cpu is not None else (None, None)
        return {
            "role": role,
            "index": index,
            "pid": os.getpid(),
            "cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "cpu_seconds": used,
            "cpu_pct": 100.0 * used / span if used is not None and span else None,
            "parent_death_signal": _parent_death_signal(),
            "gc": gc_pauses.summary(
                float(self.meta.get("window_start", math.inf)), float(self.meta.get("window_end", -math.inf))
            ),
        }

    def export_rows(self, prefix: str = "") -> list[Row]:
        return [
            (s, ms, name, ok, error, f"{prefix}{rid}" if rid else "", handler, pool, scheduled)
            for s, ms, name, ok, error, rid, handler, pool, scheduled in self.rows
        ]

    def unfinished(self, stop_end: float, prefix: str = "") -> list[dict[str, Any]]:
        """Requests sent but never answered: their users were killed when --stop-timeout ran out. Their age at
        that moment is a lower bound on their response time. Their ids complete the log's: every id handed out
        is either a row or here."""
        return [
            {
                "start_epoch_s": started,
                "endpoint": name,
                "age_ms": (stop_end - started) * 1000.0,
                "request_id": f"{prefix}{request_id}",
                **({} if math.isnan(scheduled) else {"scheduled_epoch_s": scheduled}),
            }
            for request_id, (started, name, scheduled) in sorted(self.in_flight.items(), key=lambda item: item[1])
        ]


recorder = _Recorder()


# --- open arrivals ------------------------------------------------------------------------------------------------


class _Arrivals:
    """Open arrivals: one greenlet schedules them at the step's rate, whatever the server does, and the users of
    the pool take them.

    Locust has no open model of its own: ``constant_throughput`` paces each user by itself, so a user stuck on a
    slow answer sends its next request late, which is still a closed loop and hides the slow requests
    (coordinated omission). Here the schedule is drawn in advance of any answer, and a request's latency can be
    counted from when it was **scheduled**, as wrk2 does, queueing in the generator included.

    A user that is free takes the oldest arrival not yet sent; free users wait on a stack, so the user freed last
    takes the next arrival: below the overload a small set of users with warm keep-alive connections does the
    work, instead of a round-robin over the whole pool whose connections would sit idle long enough for a server
    to close them. An arrival that no user could take within ``max_lateness_s`` (every user of the pool busy) is
    **dropped** and its scheduled time kept, as k6 counts its dropped iterations: never silently lost.

    The generator's own lateness (how long after its scheduled time the scheduler woke to hand an arrival out) is
    kept per arrival: with an idle server it is the client's scheduling noise and must be near zero; a client short
    of CPU shows here first.
    """

    def __init__(self) -> None:
        self.active = False
        self.rate = 0.0
        self.process = "poisson"
        self.max_lateness_s = 1.0
        self._waiting: list[gevent.event.AsyncResult] = []
        self._backlog: collections.deque[float] = collections.deque()
        self._scheduler: gevent.Greenlet | None = None
        self.closed = False
        self.dropped: list[float] = []  # scheduled epoch s of every dropped arrival
        self.handed: list[tuple[float, float]] = []  # (scheduled epoch s, generator lateness ms) per arrival

    def start(self, rate: float, process: str, max_lateness_s: float) -> None:
        if rate <= 0 or not math.isfinite(rate):
            raise SystemExit(f"bad --rate {rate}: open arrivals need a rate > 0 requests per second")
        self.active = True
        self.rate, self.process, self.max_lateness_s = rate, process, max_lateness_s
        self._scheduler = gevent.spawn(self._schedule)

    def _schedule(self) -> None:
        rng = random.Random()
        gap = 1.0 / self.rate
        # A constant rate starts at a random phase, so that several generators (distributed) do not send together.
        due = time.time() + (rng.uniform(0.0, gap) if self.process == "constant" else 0.0)
        while not self.closed:
            due += rng.expovariate(self.rate) if self.process == "poisson" else gap
            delay = due - time.time()
            if delay > 0:
                gevent.sleep(delay)
            if self.closed:
                return
            now = time.time()
            self.handed.append((due, (now - due) * 1000.0))
            self._expire(now)
            if self._waiting:
                self._waiting.pop().set(due)
            else:
                self._backlog.append(due)

    def _expire(self, now: float) -> None:
        while self._backlog and now - self._backlog[0] > self.max_lateness_s:
            self.dropped.append(self._backlog.popleft())

    def take(self) -> float | None:
        """The scheduled time of the next arrival, for a user that is free; None once arrivals have stopped."""
        if self.closed:
            return None
        self._expire(time.time())
        if self._backlog:
            return self._backlog.popleft()
        waiter = gevent.event.AsyncResult()
        self._waiting.append(waiter)
        try:
            value: float | None = waiter.get()
        except BaseException:
            # Killed while waiting (the test is stopping): an arrival handed to this user in that instant goes
            # back to the front of the line, never lost.
            if waiter in self._waiting:
                self._waiting.remove(waiter)
            elif waiter.successful() and waiter.value is not None:
                self._backlog.appendleft(waiter.value)
            raise
        return value

    def close(self) -> None:
        """No more arrivals. Those still waiting for a free user were never sent: they are dropped."""
        if self.closed:
            return
        self.closed = True
        if self._scheduler is not None:
            self._scheduler.kill(block=False)
        self.dropped.extend(self._backlog)
        self._backlog.clear()
        for waiter in self._waiting:
            waiter.set(None)
        self._waiting.clear()

    def report(self) -> dict[str, Any]:
        """What the runner needs from this process: every dropped arrival and every hand-off's lateness."""
        return {"dropped": list(self.dropped), "handed": [list(pair) for pair in self.handed]}


arrivals = _Arrivals()


def _lateness_summary(handed: list[list[float]], start: float, end: float) -> dict[str, Any]:
    """The generator's lateness (ms) over the arrivals scheduled inside the window [start, end]."""
    values = sorted(ms for due, ms in handed if start <= due <= end)
    if not values:
        return {"arrivals": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}

    def rank(fraction: float) -> float:
        return values[min(len(values) - 1, max(0, math.ceil(fraction * len(values)) - 1))]

    return {"arrivals": len(values), "p50_ms": rank(0.50), "p99_ms": rank(0.99), "max_ms": values[-1]}


def _arrival_meta(options: Any, reports: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The open arrivals' part of the window file: the schedule's settings, every dropped arrival (the runner
    counts those inside the window) and the generator's lateness over the window."""
    dropped = sorted(float(t) for report in reports for t in report["dropped"])
    handed = [pair for report in reports for pair in report["handed"]]
    start = float(meta.get("window_start", math.inf))
    end = float(meta.get("window_end", -math.inf))
    return {
        "mode": "open",
        "rate": float(options.rate),
        "process": options.arrival_process,
        "max_lateness_s": float(options.max_lateness),
        "scheduled_in_window": sum(1 for due, _ in handed if start <= due <= end),
        "dropped_epoch_s": dropped,
        "generator": _lateness_summary(handed, start, end),
        # Every in-window arrival's lateness, so the runner can judge the tail itself (one hiccup is not a
        # generator that fell behind); to the microsecond, which keeps the file small.
        "generator_late_ms": sorted(round(ms, 3) for due, ms in handed if start <= due <= end),
    }


class _ProgressFile:
    """The ``--progress-file``: the phase, when it ends, and the requests counted so far (failures among them),
    rewritten every PROGRESS_EVERY_S by one greenlet and once more when the load is over.

    The counts are Locust's totals (plus those from before the window's reset). On a master those are the sum
    of its workers' statistics reports, which arrive every few seconds, and the last seconds of the warm-up
    are dropped with the rest of the warm-up's reports (see _drop_warmup_reports): good enough for a progress
    line, which is their only reader. Writing a few hundred bytes once a second costs the client far less than
    a millisecond a second.
    """

    def __init__(self) -> None:
        self._writer: gevent.Greenlet | None = None
        self._over = gevent.event.Event()

    def start(self, environment: Environment, path: str) -> None:
        self._writer = gevent.spawn(self._keep_writing, environment, path)

    def stop(self) -> None:
        """Write the last counts and stop; the one greenlet writes them, so no older write can land after."""
        self._over.set()
        if self._writer is not None:
            self._writer.join(timeout=5.0)
            self._writer = None

    def _keep_writing(self, environment: Environment, path: str) -> None:
        while True:
            over = self._over.is_set()
            write_atomically(path, lambda handle: json.dump(self._content(environment), handle))
            if over:
                return
            self._over.wait(PROGRESS_EVERY_S)

    @staticmethod
    def _content(environment: Environment) -> dict[str, Any]:
        total = environment.stats.total
        requests, failures = recorder.counted_before_window
        counts = {
            "phase": recorder.phase,
            "phase_ends": recorder.phase_ends,
            "requests": requests + total.num_requests,
            "failures": failures + total.num_failures,
        }
        return stamp(counts, PROGRESS_FORMAT, LOCUST_FILES_VERSION)


progress = _ProgressFile()


@events.request.add_listener
def _on_request(
    request_type: str,
    name: str,
    response_time: float,
    response_length: int,
    exception: BaseException | None = None,
    start_time: float | None = None,
    context: dict[str, Any] | None = None,
    response: Any = None,
    **_: Any,
) -> None:
    request_id = 0
    scheduled = NAN
    if context and "request_id" in context:
        request_id = context["request_id"]
        scheduled = float(context.get("scheduled", NAN))
        recorder.in_flight.pop(request_id, None)
    started = start_time if start_time is not None else time.time() - response_time / 1000.0
    error = "" if exception is None else type(exception).__name__ + ": " + str(exception)[:200]
    handler, pool = _server_times(response)
    ok = 0 if exception else 1
    recorder.rows.append((started, response_time, name, ok, error, request_id, handler, pool, scheduled))


def _server_times(response: Any) -> tuple[float, float]:
    """The server's own ``handler`` and ``pool`` times (ms) from the response's ``Server-Timing``; NaN when it
    has none (a failed connection, an error page from the server rather than the app)."""
    headers = getattr(response, "headers", None)
    header = headers.get("server-timing") if headers is not None else None
    if not header:
        return NAN, NAN
    metrics = parse_server_timing(str(header))
    return metrics.get("handler", NAN), metrics.get("pool", NAN)


# Registered at import, before Locust creates its runner, so it runs before the runner's own listener that adds a
# report to the master's totals: a report can still be emptied here.
@events.worker_report.add_listener
def _drop_warmup_reports(client_id: str, data: dict[str, Any], **_: Any) -> None:
    if client_id in recorder.awaiting_reset:
        data["stats"] = []
        data["errors"] = {}
        data["stats_total"] = StatsEntry(RequestStats(), "Aggregated", "").serialize()


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    recorder.meta["test_start"] = time.time()
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return  # the master opens and closes the window; a worker follows its messages
    if isinstance(runner, MasterRunner):
        recorder.participants = set(runner.clients)
    options = environment.parsed_options
    warmup = float(options.warmup) if options else 0.0
    measure = float(options.measure) if options else 0.0
    if options and options.progress_file:
        progress.start(environment, options.progress_file)
    if options and options.arrival == "open":
        if isinstance(runner, MasterRunner):
            # Each worker schedules its share; independent Poisson streams add up to one at the total rate.
            share = float(options.rate) / max(1, len(recorder.participants))
            settings = {"rate": share, "process": options.arrival_process, "max_lateness_s": options.max_lateness}
            for client_id in recorder.participants:
                runner.send_message(OPEN_RATE, settings, client_id=client_id)
        else:
            arrivals.start(float(options.rate), options.arrival_process, float(options.max_lateness))
    if warmup > 0:
        recorder.enter_phase("warm-up", warmup)
        gevent.spawn_later(warmup, recorder.open_window, environment)
    else:
        recorder.open_window(environment)
    if measure > 0 and runner is not None:
        # End the window ourselves so it lasts exactly --measure seconds: Locust's --run-time clock starts a
        # little before test_start, and stays only as a safety net.
        gevent.spawn_later(warmup + measure, _end_window, environment)


def _end_window(environment: Environment) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        # stop() tells the workers to stop and waits for their users to finish (the drain); quit() alone would
        # tell them to quit and leave 0.5 s later, cutting the drain short.
        runner.stop()
    if runner is not None:
        runner.quit()


@events.test_stopping.add_listener
def _on_test_stopping(environment: Environment, **_: Any) -> None:
    # The run time is over: users in think time stop now, users with a request in flight finish it (up to
    # --stop-timeout). Completions from here on are the drain.
    if isinstance(environment.runner, WorkerRunner):
        recorder.stopping = True
        recorder.stop_cpu_clock()
    else:
        recorder.close_window(environment)
    # No arrival is scheduled after the window; users waiting for one are let go at once, not at the drain's end.
    arrivals.close()


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    stop_end = time.time()
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        _report_to_master(environment, runner, stop_end)
        return
    arrivals.close()
    if isinstance(runner, MasterRunner):
        rows = _collect_workers(environment, runner)
        stop_end = time.time()  # when Locust quit on its own, the workers drained while this waited
        reports = [r["arrivals"] for r in recorder.worker_reports.values() if r.get("arrivals")]
    else:
        rows = recorder.export_rows()
        recorder.meta["completed_requests"] = len(rows)
        recorder.meta["unfinished"] = recorder.unfinished(stop_end)
        recorder.meta["client_processes"] = [recorder.process_entry("local")]
        reports = [arrivals.report()]
    recorder.meta["stop_end"] = stop_end
    recorder.enter_phase("done")
    progress.stop()
    options = environment.parsed_options
    if options is None:
        return
    if options.arrival == "open":
        recorder.meta["arrival"] = _arrival_meta(options, reports, recorder.meta)
    if options.raw_file:
        write_atomically(options.raw_file, lambda handle: _raw_csv(handle, rows))
    if options.meta_file:
        meta = stamp(recorder.meta, WINDOW_FORMAT, LOCUST_FILES_VERSION)
        write_atomically(options.meta_file, lambda f: json.dump(meta, f, indent=2))


def _report_to_master(environment: Environment, runner: WorkerRunner, stop_end: float) -> None:
    """A worker has drained: send the master its rows, its last statistics, and then DONE, in that order on one
    connection, so the master has everything once DONE arrives."""
    index = runner.worker_index
    prefix = f"w{index}-"
    rows = recorder.export_rows(prefix)
    for first in range(0, len(rows), ROWS_PER_MESSAGE):
        runner.send_message(ROWS, {"rows": rows[first : first + ROWS_PER_MESSAGE]})
    # What Locust's own final report would carry (it sends one only on quit, possibly after the master has gone).
    report: dict[str, Any] = {}
    environment.events.report_to_master.fire(client_id=runner.client_id, data=report)
    runner.send_message("stats", report)
    runner.send_message(
        DONE,
        {
            "rows": len(rows),
            "unfinished": recorder.unfinished(stop_end, prefix),
            "process": recorder.process_entry("worker", index),
            "arrivals": arrivals.report() if arrivals.active else None,
        },
    )
    # Locust's stop handler sleeps --stop-timeout after a stop before it reads its next message; the drain is
    # over, so the master's quit would otherwise wait that long, and the worker be killed instead of quitting.
    environment.stop_timeout = 0


def _collect_workers(environment: Environment, runner: MasterRunner) -> list[Row]:
    """Wait for every worker in the test to report, then merge their rows, unfinished requests and CPU time.

    On the runner's path (stop, then quit) the workers have drained before this runs. When Locust quits on its
    own (--run-time, Ctrl-C, a shape's end) nobody told them to stop yet, so FINISH does, and this waits for the
    drain too.
    """
    expected = set(recorder.participants)
    for client_id in expected - set(recorder.worker_reports):
        runner.send_message(FINISH, client_id=client_id)
    deadline = time.monotonic() + float(environment.stop_timeout or 0.0) + REPORT_GRACE_S
    while not expected <= set(recorder.worker_reports) and time.monotonic() < deadline:
        gevent.sleep(0.05)
    rows: list[Row] = []
    unfinished: list[dict[str, Any]] = []
    processes = [recorder.process_entry("master")]
    incomplete: list[str] = []
    for client_id, report in sorted(recorder.worker_reports.items(), key=lambda item: item[1]["process"]["index"]):
        received = recorder.worker_rows.get(client_id, [])
        if len(received) != report["rows"]:
            incomplete.append(f"worker {report['process']['index']}: {len(received)} of {report['rows']} rows")
        # msgpack turns tuples into lists on the way.
        rows.extend(_row_from_message(r) for r in received)
        unfinished.extend(report["unfinished"])
        processes.append(report["process"])
    missing = sorted(expected - set(recorder.worker_reports))
    rows.sort()
    meta = recorder.meta
    meta["completed_requests"] = len(rows)
    meta["unfinished"] = sorted(unfinished, key=lambda u: float(u["start_epoch_s"]))
    meta["client_processes"] = processes
    meta["workers_expected"] = len(expected)
    meta["workers_reported"] = len(recorder.worker_reports)
    meta["workers_missing"] = missing
    meta["workers_incomplete"] = incomplete
    window = float(meta.get("window_end", 0.0)) - float(meta.get("window_start", meta.get("window_end", 0.0)))
    used = [p["cpu_seconds"] for p in processes]
    # Only with every process's figure: a sum missing a worker would understate the client.
    if "window_start" in meta and window > 0 and None not in used:
        # The client's CPU is the sum over its processes; saturation is per process, since one process uses at
        # most one core (see runner.sweep.saturation).
        meta["client_cpu_seconds"] = sum(used)
        meta["client_cpu_pct"] = 100.0 * sum(used) / window
        meta["client_cpu_max_pct"] = max(p["cpu_pct"] for p in processes if p["cpu_pct"] is not None)
    return rows


def _row_from_message(r: list[Any]) -> Row:
    """A worker's row as msgpack delivers it (a list), typed again."""
    return (float(r[0]), float(r[1]), str(r[2]), int(r[3]), str(r[4]), str(r[5]), float(r[6]), float(r[7]), float(r[8]))


def _on_reset(environment: Environment, msg: Message, **_: Any) -> None:
    """Worker: the master opened the window. Statistics not yet reported are warm-up and are dropped."""
    environment.stats.reset_all()
    recorder.start_cpu_clock()
    if environment.runner is not None:
        environment.runner.send_message(RESET_DONE)


def _on_finish(environment: Environment, msg: Message, **_: Any) -> None:
    """Worker: stop and drain now, unless a stop is already under way (its end reports anyway). Run in the
    message loop, like Locust's own stop, so a quit message cannot start a second stop alongside it."""
    if not recorder.stopping and environment.runner is not None:
        environment.runner.stop()


def _on_open_rate(environment: Environment, msg: Message, **_: Any) -> None:
    """Worker: schedule this share of the open arrivals from now on."""
    arrivals.start(float(msg.data["rate"]), str(msg.data["process"]), float(msg.data["max_lateness_s"]))


def _on_reset_done(environment: Environment, msg: Message, **_: Any) -> None:
    recorder.awaiting_reset.discard(msg.node_id)


def _on_rows(environment: Environment, msg: Message, **_: Any) -> None:
    recorder.worker_rows.setdefault(msg.node_id, []).extend(msg.data["rows"])


def _on_done(environment: Environment, msg: Message, **_: Any) -> None:
    recorder.worker_reports[msg.node_id] = msg.data


@events.init.add_listener
def _join_distribution(environment: Environment, runner: Any = None, **_: Any) -> None:
    if isinstance(runner, MasterRunner):
        runner.register_message(RESET_DONE, _on_reset_done)
        runner.register_message(ROWS, _on_rows)
        runner.register_message(DONE, _on_done)
    elif isinstance(runner, WorkerRunner):
        runner.register_message(RESET, _on_reset)
        runner.register_message(FINISH, _on_finish)
        runner.register_message(OPEN_RATE, _on_open_rate)
        if environment.parsed_options is not None:
            # Locust's totals are the master's; a worker writing the same --json-file at its exit would race it
            # with a near-empty one.
            environment.parsed_options.json_file = None


def _raw_csv(handle: Any, rows: list[Row]) -> None:
    writer = csv.writer(handle)
    writer.writerow(RAW_COLUMNS)
    for started, response_ms, name, ok, error, request_id, handler, pool, scheduled in rows:
        writer.writerow(
            [
                f"{started:.6f}",
                f"{response_ms:.3f}",
                name,
                ok,
                error,
                request_id,
                _ms_text(handler),
                _ms_text(pool),
                "" if math.isnan(scheduled) else f"{scheduled:.6f}",
            ]
        )


def _ms_text(ms: float) -> str:
    return "" if math.isnan(ms) else f"{ms:.3f}"


class BenchUser(FastHttpUser):
    """One simulated user. Think time, task mix and timeouts are set from the command line at init."""

    # Placeholders (FastHttpUser's own default is 60 s): _configure_user sets both from --request-timeout.
    connection_timeout = 30.0
    network_timeout = 30.0

    def wait_time(self) -> float:
        if arrivals.active:
            return 0.0  # the schedule paces the requests, not the users
        options = self.environment.parsed_options
        return random.uniform(options.think_min, options.think_max)

    def page(self) -> None:
        self._send("/page", "page")

    def short(self) -> None:
        self._send("/short", "short")

    def _send(self, path: str, name: str) -> None:
        """Send now (a closed loop), or when the next open arrival is due; with arrivals over, this user is done."""
        scheduled = NAN
        if arrivals.active:
            due = arrivals.take()
            if due is None:
                raise StopUser()
            scheduled = due
        self.client.get(path, name=name, context=recorder.begin(name, scheduled))


@events.init.add_listener
def _configure_user(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    # On a worker too: it checks its own --host, and the host its master sends was checked by the master.
    if not is_loopback(environment.host or "") and not options.allow_remote_host:
        raise SystemExit(
            f"refusing to send load to {environment.host!r}: not an address on this machine. Load tests target "
            "127.0.0.1 by default; pass --allow-remote-host if you really mean to load another host (to the "
            "master and to every worker, with the same --host)."
        )
    if options.think_min < 0 or options.think_max < options.think_min:
        raise SystemExit(f"bad think time: --think-min {options.think_min} --think-max {options.think_max}")
    if options.page_weight < 0 or options.short_weight < 0 or options.page_weight + options.short_weight == 0:
        raise SystemExit("bad task weights: --page-weight and --short-weight must be >= 0 and not both 0")
    if options.arrival == "open":
        # A worker gets its share of the rate from the master (OPEN_RATE); its users wait for arrivals until then.
        arrivals.active = True
        if not isinstance(environment.runner, WorkerRunner) and not (options.rate > 0 and math.isfinite(options.rate)):
            raise SystemExit(f"bad --rate {options.rate}: open arrivals need a rate > 0 requests per second")
        if not (options.max_lateness > 0 and math.isfinite(options.max_lateness)):
            raise SystemExit(f"bad --max-lateness {options.max_lateness}: must be > 0 seconds")
    BenchUser.connection_timeout = options.request_timeout
    BenchUser.network_timeout = options.request_timeout
    tasks: list[Any] = [BenchUser.page] * options.page_weight + [BenchUser.short] * options.short_weight
    BenchUser.tasks = tasks
