"""Process trees, pure parts: the environment a child gets, the CPU plan, pinning and sampling arithmetic.

Nothing here starts a process (tests/conftest.py fails any test that does). The cores this machine has are
replaced by fixed sets, so every plan is checked exactly whatever machine runs the test; starting, stopping and
killing real trees is tested in tests/test_distributed.py and tests/test_servers_matrix.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from runner import processes
from runner.processes import PASSED_THROUGH, CpuPlan, Sample, TreeSampler, clean_env, plan_cpus

NO_SUCH_PID = 2**31 - 1  # above any pid_max: no process has it


# --- the environment a child gets ------------------------------------------------------------------------------------


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Replace the allow-listed variables of this process's environment with exactly the ones given."""

    def set_to(**values: str) -> None:
        for key in PASSED_THROUGH:
            monkeypatch.delenv(key, raising=False)
        for key, value in values.items():
            monkeypatch.setenv(key, value)

    return set_to


def test_clean_env_passes_only_the_allow_list(environ: Callable[..., None]) -> None:
    environ(PATH="/usr/bin", LANG="C.UTF-8", TZ="UTC", GUNICORN_CMD_ARGS="--workers 9", UVICORN_WORKERS="3",
            LOCUST_USERS="99", PYTHONPATH="/elsewhere", HOME="/home/someone", BENCH_MEASURE_S="1")  # fmt: skip
    assert clean_env() == {"PATH": "/usr/bin", "LANG": "C.UTF-8", "TZ": "UTC"}


def test_clean_env_adds_what_the_caller_names_and_it_wins(environ: Callable[..., None]) -> None:
    environ(PATH="/usr/bin", LC_ALL="C")
    assert clean_env(PATH="/opt/bin", PYTHONPATH="/repo", HOME="/tmp/x") == {
        "PATH": "/opt/bin",
        "LC_ALL": "C",
        "PYTHONPATH": "/repo",
        "HOME": "/tmp/x",
    }


def test_clean_env_with_nothing_allowed_set_is_only_the_extras(environ: Callable[..., None]) -> None:
    environ(SOMETHING="else")
    assert clean_env() == {}
    assert clean_env(A="1") == {"A": "1"}


# --- the CPU plan ----------------------------------------------------------------------------------------------------


@pytest.fixture
def cores(monkeypatch: pytest.MonkeyPatch) -> Callable[[set[int]], None]:
    """Make this process see exactly these cores."""

    def set_to(available: set[int]) -> None:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(available))

    return set_to


def test_without_pinning_nothing_is_pinned_and_the_note_says_it_was_turned_off(
    cores: Callable[[set[int]], None],
) -> None:
    cores({0, 1, 2, 3})
    plan = plan_cpus(pin=False, server_cores=1)
    assert plan == CpuPlan(frozenset(), frozenset(), "not pinned (turned off): client and server share every core")
    assert not plan.pinned


@pytest.mark.parametrize(
    ("available", "server_cores", "server", "client"),
    [
        ({0, 1}, 1, {1}, {0}),  # two cores: one each
        ({0, 1, 2, 3}, 1, {3}, {0, 1, 2}),  # the client gets every core the server does not
        ({0, 1, 2, 3}, 2, {2, 3}, {0, 1}),
        ({0, 2, 5, 7}, 1, {7}, {0, 2, 5}),  # the cores this process may use, not 0..n-1
        ({4, 5, 6}, 2, {5, 6}, {4}),  # exactly enough: one core left for the client
    ],
)
def test_the_server_gets_the_last_cores_and_the_client_the_rest(
    cores: Callable[[set[int]], None], available: set[int], server_cores: int, server: set[int], client: set[int]
) -> None:
    cores(available)
    plan = plan_cpus(pin=True, server_cores=server_cores)
    assert (plan.server, plan.client) == (frozenset(server), frozenset(client))
    assert plan.pinned
    assert plan.note == (
        f"server pinned to core(s) {sorted(server)}, Locust and the harness to core(s) {sorted(client)}"
    )


@pytest.mark.parametrize(("available", "server_cores"), [({0}, 1), ({0, 1}, 2), ({0, 1, 2}, 4)])
def test_too_few_cores_pins_nothing_and_says_how_many_were_needed(
    cores: Callable[[set[int]], None], available: set[int], server_cores: int
) -> None:
    cores(available)
    plan = plan_cpus(pin=True, server_cores=server_cores)
    assert (plan.server, plan.client, plan.pinned) == (frozenset(), frozenset(), False)
    assert plan.note == (
        f"not pinned: {len(available)} core(s) available, {server_cores + 1} needed; "
        "client and server share the cores and can slow each other down"
    )


@pytest.mark.parametrize(
    ("client", "server", "pinned"),
    [(set(), set(), False), ({0}, set(), False), (set(), {1}, False), ({0}, {1}, True)],
)
def test_a_plan_is_pinned_only_when_both_sides_have_cores(client: set[int], server: set[int], pinned: bool) -> None:
    assert CpuPlan(frozenset(client), frozenset(server), "").pinned is pinned


# --- pinning and trees -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeProc:
    pid: int


def test_pinning_to_no_cores_touches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError(f"pinned {args}")

    monkeypatch.setattr(processes, "tree", refuse)
    monkeypatch.setattr(os, "sched_setaffinity", refuse)
    processes.pin_tree(os.getpid(), frozenset())


def test_pinning_reaches_every_thread_and_skips_what_has_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    """The threads of this process are listed in /proc; a process already gone is pinned by its pid, and the
    OSError that gives is ignored."""
    pinned: list[tuple[int, frozenset[int]]] = []

    def setaffinity(tid: int, cpus: frozenset[int]) -> None:
        pinned.append((tid, cpus))
        if tid == NO_SUCH_PID:
            raise ProcessLookupError(tid)

    own_threads = {int(t.name) for t in os.scandir(f"/proc/{os.getpid()}/task")}
    monkeypatch.setattr(processes, "tree", lambda pid: [FakeProc(os.getpid()), FakeProc(NO_SUCH_PID)])
    monkeypatch.setattr(os, "sched_setaffinity", setaffinity)
    processes.pin_tree(os.getpid(), frozenset({1}))
    tids = [tid for tid, _ in pinned]
    assert own_threads <= set(tids[:-1])
    assert tids[-1] == NO_SUCH_PID
    assert {cpus for _, cpus in pinned} == {frozenset({1})}


def test_the_tree_of_a_process_that_does_not_exist_is_empty() -> None:
    assert processes.tree(NO_SUCH_PID) == []
    assert processes.proportional_memory_mb(NO_SUCH_PID) is None


def test_the_tree_of_this_process_starts_with_it() -> None:
    assert processes.tree(os.getpid())[0].pid == os.getpid()


# --- the sampler's arithmetic ----------------------------------------------------------------------------------------


def _sampler(*samples: tuple[float, float, float]) -> TreeSampler:
    """A sampler holding (time, cumulative CPU seconds, resident MB) samples, never started."""
    return TreeSampler(NO_SUCH_PID, samples=[Sample(t, cpu, int(mb * 1e6), 2) for t, cpu, mb in samples])


# 1 s of CPU in the first 5 s, 3 s in the next 5; memory peaks in the middle.
SAMPLES = ((0.0, 0.0, 100.0), (5.0, 1.0, 300.0), (10.0, 4.0, 200.0))


@pytest.mark.parametrize(
    ("start", "end", "cpu_pct", "rss_mb"),
    [
        (1.0, 9.0, 40.0, 300.0),  # CPU from the samples around the window, memory from the ones inside it
        (0.0, 10.0, 40.0, 300.0),
        (0.0, 5.0, 20.0, 300.0),  # a sample at the window's edge counts as inside
        (5.0, 10.0, 60.0, 300.0),
        (6.0, 9.0, 60.0, 300.0),  # nothing inside: the samples on either side stand in
        (20.0, 30.0, None, 200.0),  # after the last sample: no rate, the last memory seen
    ],
)
def test_the_window_reads_cpu_as_a_rate_and_memory_as_the_peak(
    start: float, end: float, cpu_pct: float | None, rss_mb: float
) -> None:
    assert _sampler(*SAMPLES).window(start, end) == (pytest.approx(cpu_pct) if cpu_pct else None, rss_mb)


def test_a_window_with_no_samples_has_no_figures() -> None:
    assert _sampler().window(0.0, 10.0) == (None, None)


def test_the_sampler_of_a_process_that_does_not_exist_records_nothing() -> None:
    sampler = TreeSampler(NO_SUCH_PID)
    sampler.sample()
    assert sampler.samples == []
