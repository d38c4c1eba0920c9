"""The sweep's pure parts: the plan of steps, saturation and the CPU plan."""

from __future__ import annotations

import os

import pytest

from runner.config import load_config
from runner.processes import plan_cpus
from runner.sweep import CLIENT_SATURATED_PCT, SERVER_SATURATED_PCT, plan_steps, saturation
from tests.runs import ASYNC, SYNC

# --- the sweep's pure parts ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client", "server", "cores", "expected"),
    [
        (None, None, 1, ""),
        (10.0, 20.0, 1, ""),
        (CLIENT_SATURATED_PCT, None, 1, ""),  # at the threshold is not above it
        (CLIENT_SATURATED_PCT + 0.1, None, 1, "client"),
        (None, SERVER_SATURATED_PCT - 0.1, 1, ""),
        (None, SERVER_SATURATED_PCT, 1, "server"),
        (None, 150.0, 2, ""),  # 150% of two cores is not saturated
        (None, 2 * SERVER_SATURATED_PCT, 2, "server"),
        (None, SERVER_SATURATED_PCT, 0, "server"),  # no core count: treated as one
        (95.0, 99.0, 1, "client"),  # a saturated client makes the server's figures unreliable: client first
    ],
)
def test_saturation_thresholds(client: float | None, server: float | None, cores: int, expected: str) -> None:
    assert saturation(client, server, cores) == expected


def test_plan_steps_loops_over_users_outside_and_servers_inside() -> None:
    config = load_config("quick")
    steps = [(s.server.name, s.users) for s in plan_steps(config)]
    assert steps == [(server.name, users) for users in config.load.users for server in config.servers]
    assert steps[:2] == [(SYNC, 5), (ASYNC, 5)]


def test_plan_steps_folders_are_distinct() -> None:
    steps = plan_steps(load_config("default"))
    assert len({s.folder_name for s in steps}) == len(steps)


def test_plan_cpus_without_pinning_pins_nothing_and_says_so() -> None:
    plan = plan_cpus(pin=False, server_cores=1)
    assert plan.client == frozenset()
    assert plan.server == frozenset()
    assert not plan.pinned
    assert "not pinned" in plan.note


def test_plan_cpus_with_too_few_cores_pins_nothing_and_says_why() -> None:
    available = len(os.sched_getaffinity(0))
    plan = plan_cpus(pin=True, server_cores=available)
    assert not plan.pinned
    assert "not pinned" in plan.note
    assert f"{available} core(s) available" in plan.note


def test_plan_cpus_with_pinning_gives_client_and_server_separate_cores() -> None:
    available = os.sched_getaffinity(0)
    if len(available) < 2:
        pytest.skip("needs at least two usable cores")
    plan = plan_cpus(pin=True, server_cores=1)
    assert plan.pinned
    assert plan.server == {max(available)}
    assert plan.client == available - plan.server  # every core the server does not have
    assert not plan.client & plan.server
    assert plan.client | plan.server <= available
