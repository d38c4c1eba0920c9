"""What a person watching a sweep sees: a live line per step in a terminal, plain lines otherwise.

In a terminal, one line redrawn a few times a second shows the step (server, users, repeat), its phase (starting
server, warm-up, window, drain), the seconds left in that phase, the requests sent so far, and an estimate of the
run's time left. The phase and the requests come from the step's Locust process itself: the locustfile rewrites a
small progress file about once a second (``--progress-file``, see ``loadtests/locustfile.py``), so the line shows
what Locust has seen, not what the plan says it should have seen. That file has no other reader, and
``runner/loadgen.py`` removes it when Locust exits: it is not a result.

When output is not a terminal (a log file, CI), nothing is redrawn and no control character is written: one plain
line per finished step, as :class:`rich.console.Console` reports through ``is_terminal``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from runner import store


@dataclass(frozen=True)
class Seen:
    """What the step's Locust process last wrote: its phase, when that phase ends (epoch seconds, None when it
    has no set end) and the requests it has counted since it started, failures among them."""

    phase: str
    phase_ends: float | None
    requests: int
    failures: int


def read_seen(path: Path) -> Seen | None:
    """The progress file's content; None before Locust has written one, or if it is not one this code reads. A
    progress line is no reason to stop a run, so nothing here raises."""
    try:
        data = store.load_document(path, store.PROGRESS_FORMAT, store.LOCUST_FILES_VERSION, "progress file")
        ends = data.get("phase_ends")
        return Seen(
            phase=str(data["phase"]),
            phase_ends=None if ends is None else float(ends),
            requests=int(data["requests"]),
            failures=int(data["failures"]),
        )
    except (store.ResultsError, KeyError, TypeError, ValueError):
        return None


def step_label(server: str, users: int, repeat: int, planned_repeats: int) -> str:
    """``flask-gunicorn · 50 users``, with ``· repeat 2/3`` when the run has repeats."""
    label = f"{server} · {users} users"
    if planned_repeats > 1:
        label += f" · repeat {repeat}/{planned_repeats}"
    return label


def requests_text(requests: int, failures: int) -> str:
    """``1,234 requests``, and ``, 3 failed`` when any did."""
    text = f"{requests:,} request{'' if requests == 1 else 's'}"
    return f"{text}, {failures:,} failed" if failures else text


def phase_text(seen: Seen, now: float) -> str:
    """The phase and the seconds left in it: the drain's are a bound (it ends as soon as the last request in
    flight is answered), a window with no set length has none, and once the load is over Locust writes its files."""
    if seen.phase == "done":
        return "writing results"
    if seen.phase_ends is None:
        return seen.phase
    left = max(0.0, seen.phase_ends - now)
    bound = "at most " if seen.phase == "drain" else ""
    return f"{seen.phase}, {bound}{left:.0f} s left"


def step_status(label: str, seen: Seen | None, now: float, locust_started: bool) -> str:
    """The live line's text for the current step (plain text: the caller escapes it for rich)."""
    if not locust_started:
        return f"{label} · starting server"
    if seen is None:
        return f"{label} · starting Locust"
    return f"{label} · {phase_text(seen, now)} · {requests_text(seen.requests, seen.failures)}"


def expected_step_seconds(planned_s: float, startups: Sequence[float], durations: Sequence[float]) -> float:
    """How long one step is expected to take, start to finish.

    Once steps have finished, the mean of what they took: that holds their server start-up, Locust's own start and
    the drain as it actually went (the drain bound in the plan is rarely used up). Before that, the planned length
    (warm-up, window, drain bound) plus the mean server start-up measured so far.
    """
    if durations:
        return fmean(durations)
    return planned_s + (fmean(startups) if startups else 0.0)


def run_seconds_left(per_step_s: float, current_so_far_s: float, steps_after: int) -> float:
    """The rest of the current step (never below zero: a step may run over) and every step after it."""
    return max(0.0, per_step_s - current_so_far_s) + steps_after * per_step_s


def about(seconds: float) -> str:
    """A duration as an estimate reads: ``~40 s``, ``~4 min``, ``~1 h 05 min``."""
    whole = math.ceil(max(seconds, 0.0))
    if whole < 60:
        return f"~{whole} s"
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return f"~{minutes} min"
    return f"~{minutes // 60} h {minutes % 60:02d} min"


class SweepProgress:
    """The sweep's display. Use as a context manager around the steps; for each step call :meth:`start_step`, pass
    :meth:`watch` and :meth:`tick` to the step (they are told the progress file and the seconds since Locust
    started), and :meth:`finish_step` with the line that sums the step up.

    Not a terminal: only the finished steps' lines are printed.
    """

    def __init__(
        self,
        console: Console,
        steps: int,
        planned_step_s: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.console = console
        self.steps = steps
        self.planned_step_s = planned_step_s
        self._clock = clock
        self._wall = wall
        self.done = 0
        self.startups: list[float] = []
        self.durations: list[float] = []
        self._label = ""
        self._step_started = clock()
        self._locust_started: float | None = None
        self._progress_file: Path | None = None
        self._seen: Seen | None = None
        self._live: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> SweepProgress:
        if self.console.is_terminal:
            self._live = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[left]}"),
                console=self.console,
                transient=True,
                refresh_per_second=4,
            )
            self._live.start()
            self._task = self._live.add_task("", total=self.steps, left="")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def start_step(self, label: str) -> None:
        self._label = label
        self._step_started = self._clock()
        self._locust_started = None
        self._progress_file = None
        self._seen = None
        self._redraw()

    def watch(self, progress_file: Path) -> None:
        """Where the step's Locust process will write its progress (the step's folder exists by now)."""
        self._progress_file = progress_file

    def tick(self, elapsed: float) -> None:
        """Called a few times a second while Locust runs, with the seconds since it was started; the first call
        measures the server's start-up, the time from the step's start until Locust could be started."""
        if self._locust_started is None:
            self._locust_started = self._clock() - elapsed
            self.startups.append(max(0.0, self._locust_started - self._step_started))
        if self._progress_file is not None:
            self._seen = read_seen(self._progress_file) or self._seen
        self._redraw()

    def finish_step(self, line: str) -> None:
        """Print the finished step's line (rich markup) above the live line, or alone when it is not a terminal."""
        self.durations.append(self._clock() - self._step_started)
        self.done += 1
        self.console.print(line)
        if self._live is not None and self._task is not None:
            self._live.advance(self._task)

    def status(self) -> str:
        return step_status(self._label, self._seen, self._wall(), self._locust_started is not None)

    def seconds_left(self) -> float:
        """The run's time left: an estimate (see :func:`expected_step_seconds`)."""
        per_step = expected_step_seconds(self.planned_step_s, self.startups, self.durations)
        steps_after = max(0, self.steps - self.done - 1)
        return run_seconds_left(per_step, self._clock() - self._step_started, steps_after)

    def left_text(self) -> str:
        return f"{about(self.seconds_left())} left (estimate)"

    def _redraw(self) -> None:
        if self._live is not None and self._task is not None:
            self._live.update(self._task, description=escape(self.status()), left=self.left_text())
