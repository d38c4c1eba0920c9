"""The progress line: what Locust's progress file says, the texts shown, the run's time left, plain output."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from runner import store
from runner.progress import (
    Seen,
    SweepProgress,
    about,
    expected_step_seconds,
    phase_text,
    read_seen,
    requests_text,
    run_seconds_left,
    step_label,
    step_status,
)

NOW = 1_000.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def progress_file(path: Path, **fields: Any) -> Path:
    """A progress file as the locustfile writes it."""
    content = {"phase": "window", "phase_ends": NOW + 7, "requests": 1234, "failures": 3, **fields}
    path.write_text(
        json.dumps(store.stamp(content, store.PROGRESS_FORMAT, store.LOCUST_FILES_VERSION)), encoding="utf-8"
    )
    return path


# --- reading Locust's progress file -----------------------------------------------------------------------------------


def test_the_progress_file_is_read(tmp_path: Path) -> None:
    assert read_seen(progress_file(tmp_path / "progress.json")) == Seen("window", NOW + 7, 1234, 3)


def test_a_phase_without_an_end_is_read(tmp_path: Path) -> None:
    seen = read_seen(progress_file(tmp_path / "progress.json", phase_ends=None))
    assert seen is not None
    assert seen.phase_ends is None


def test_no_progress_file_yet_is_nothing_seen(tmp_path: Path) -> None:
    assert read_seen(tmp_path / "progress.json") is None


@pytest.mark.parametrize(
    "content",
    [
        {"format": store.PROGRESS_FORMAT, "format_version": store.LOCUST_FILES_VERSION + 1, "phase": "window"},
        {"format": "sync-async-bench/window", "format_version": 1},
        {
            "format": store.PROGRESS_FORMAT,
            "format_version": store.LOCUST_FILES_VERSION,
            "phase": "window",
            "requests": "many",
        },
        {"format": store.PROGRESS_FORMAT, "format_version": store.LOCUST_FILES_VERSION},
    ],
    ids=["unknown version", "another format", "a count that is no number", "no fields"],
)
def test_a_progress_file_this_code_cannot_read_is_ignored_not_fatal(tmp_path: Path, content: dict[str, Any]) -> None:
    path = tmp_path / "progress.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    assert read_seen(path) is None


def test_a_truncated_progress_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "progress.json"
    path.write_text('{"format": ', encoding="utf-8")
    assert read_seen(path) is None


# --- the texts --------------------------------------------------------------------------------------------------------


def test_the_step_label_names_the_repeat_only_when_the_run_has_repeats() -> None:
    assert step_label("flask-gunicorn", 50, 1, 1) == "flask-gunicorn · 50 users"
    assert step_label("flask-gunicorn", 50, 2, 3) == "flask-gunicorn · 50 users · repeat 2/3"


@pytest.mark.parametrize(
    ("requests", "failures", "text"),
    [(0, 0, "0 requests"), (1, 0, "1 request"), (1234, 0, "1,234 requests"), (1234, 3, "1,234 requests, 3 failed")],
)
def test_requests_so_far(requests: int, failures: int, text: str) -> None:
    assert requests_text(requests, failures) == text


@pytest.mark.parametrize(
    ("seen", "text"),
    [
        (Seen("warm-up", NOW + 2.6, 10, 0), "warm-up, 3 s left"),
        (Seen("window", NOW + 7, 10, 0), "window, 7 s left"),
        (Seen("window", NOW - 1, 10, 0), "window, 0 s left"),  # Locust's clock and ours may differ a little
        (Seen("window", None, 10, 0), "window"),  # a window with no set length
        (Seen("drain", NOW + 12, 10, 0), "drain, at most 12 s left"),  # it ends when the last answer comes
        (Seen("done", None, 10, 0), "writing results"),
    ],
)
def test_the_phase_and_its_seconds_left(seen: Seen, text: str) -> None:
    assert phase_text(seen, NOW) == text


def test_the_step_status_before_and_after_locust_has_written() -> None:
    label = "flask-gunicorn · 50 users"
    assert step_status(label, None, NOW, locust_started=False) == f"{label} · starting server"
    assert step_status(label, None, NOW, locust_started=True) == f"{label} · starting Locust"
    seen = Seen("window", NOW + 7, 1234, 3)
    assert step_status(label, seen, NOW, True) == f"{label} · window, 7 s left · 1,234 requests, 3 failed"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "~0 s"), (40.2, "~41 s"), (59.5, "~1 min"), (240, "~4 min"), (3600, "~1 h 00 min"), (3900, "~1 h 05 min")],
)
def test_about(seconds: float, text: str) -> None:
    assert about(seconds) == text


# --- the run's time left ----------------------------------------------------------------------------------------------


def test_a_step_is_expected_to_last_its_plan_plus_the_server_start_up_measured_so_far() -> None:
    assert expected_step_seconds(30.0, [], []) == 30.0
    assert expected_step_seconds(30.0, [2.0, 4.0], []) == 33.0


def test_once_steps_have_finished_a_step_is_expected_to_last_what_they_took() -> None:
    # The plan's drain bound is rarely used up: finished steps say how long one really takes.
    assert expected_step_seconds(30.0, [2.0], [20.0, 22.0]) == 21.0


def test_the_time_left_is_the_rest_of_this_step_and_every_step_after_it() -> None:
    assert run_seconds_left(20.0, 5.0, 3) == 15.0 + 60.0
    assert run_seconds_left(20.0, 25.0, 1) == 20.0  # a step running over its estimate adds nothing negative


def test_the_display_measures_the_server_start_up_and_each_step() -> None:
    clock = Clock(100.0)
    with SweepProgress(Console(file=io.StringIO(), force_terminal=False), 3, 20.0, clock, Clock(NOW)) as progress:
        progress.start_step("a")
        assert progress.seconds_left() == 60.0  # three planned steps, no start-up measured yet
        clock.now = 104.0
        progress.tick(1.0)  # Locust started a second ago: the server took 3 s to start
        assert progress.startups == [3.0]
        assert progress.seconds_left() == (23.0 - 4.0) + 2 * 23.0
        clock.now = 118.0
        progress.finish_step("line")
        assert progress.durations == [18.0]
        progress.start_step("b")
        assert progress.seconds_left() == 2 * 18.0
        assert progress.left_text() == "~36 s left (estimate)"


# --- what is shown ----------------------------------------------------------------------------------------------------


def run_two_steps(console: Console, tmp_path: Path) -> SweepProgress:
    with SweepProgress(console, 2, 20.0, Clock(), Clock(NOW)) as progress:
        for name in ("one", "two"):
            progress.start_step(f"server-{name} · 5 users")
            progress.watch(progress_file(tmp_path / f"{name}.json"))
            progress.tick(1.0)
            progress.finish_step(f"  step {name} done")
    return progress


def test_not_a_terminal_prints_one_plain_line_per_finished_step(tmp_path: Path) -> None:
    out = io.StringIO()
    run_two_steps(Console(file=out, force_terminal=False, width=200), tmp_path)
    assert out.getvalue() == "  step one done\n  step two done\n"  # no redraws, no control characters


def test_in_a_terminal_the_live_line_shows_the_phase_and_the_requests_so_far(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200, highlight=False)
    with SweepProgress(console, 2, 20.0, Clock(), Clock(NOW)) as progress:
        progress.start_step("flask-gunicorn · 5 users")
        assert progress.status() == "flask-gunicorn · 5 users · starting server"
        progress.watch(progress_file(tmp_path / "progress.json"))
        progress.tick(1.0)
        assert progress.status() == "flask-gunicorn · 5 users · window, 7 s left · 1,234 requests, 3 failed"
        progress.watch(tmp_path / "gone.json")
        progress.tick(1.5)  # the file is gone (Locust exited): the last counts stay on the line
        assert "1,234 requests" in progress.status()
        progress.finish_step("  1/2 done")
    assert "  1/2 done\n" in out.getvalue()
    assert "1,234 requests" in out.getvalue()
    assert "\x1b" in out.getvalue()  # redrawn in place
