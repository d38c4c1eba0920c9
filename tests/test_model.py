"""The queueing model: closed forms it must reproduce, limits it must approach, and bounds it must never cross."""

from __future__ import annotations

import math
from fractions import Fraction
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.model import (
    Demand,
    RequestClass,
    Server,
    System,
    curve,
    dense_curve,
    dense_users,
    predict,
    repairman,
)


def one_class(wait_s: float, cpu_s: float, think_s: float = 5.0) -> Demand:
    return Demand(think_s=think_s, mix=(RequestClass("page", 1, wait_s, cpu_s),))


def default_demand() -> Demand:
    """The default scenario's mix: four pages (100 ms of waits, 10 ms of work) to one short (10 ms query)."""
    return Demand(
        think_s=5.0,
        mix=(RequestClass("page", 4, 0.100, 0.010), RequestClass("short", 1, 0.010, 0.001)),
    )


def exact_repairman(users: int, servers: int, service: Fraction, delay: Fraction) -> Fraction:
    """The same birth-death chain in rational arithmetic: a reference with no rounding at all."""
    weights = [Fraction(1)]
    for n in range(1, users + 1):
        weights.append(weights[-1] * (users - n + 1) * service / (delay * min(n, servers)))
    return sum((w * min(n, servers) for n, w in enumerate(weights)), Fraction(0)) / sum(weights) / service


# --- the exact chain against hand-computed values --------------------------------------------------------------------


def test_mm1_two_users_by_hand() -> None:
    # p0 = 1 / (1 + 2 (s/Z) + 2 (s/Z)^2) = 1/5 with s = Z = 1, so X = (1 - p0) / s = 0.8 and R = N/X - Z = 1.5.
    throughput, at_station = repairman(users=2, servers=1, service_s=1.0, delay_s=1.0)
    assert throughput == pytest.approx(0.8, rel=1e-12)
    assert at_station == pytest.approx(1.5, rel=1e-12)


def test_mm1_three_users_by_hand() -> None:
    # s/Z = 1/2: p0 = 1 / (1 + 3/2 + 6/4 + 6/8) = 4/19, X = 15/19, R = 3 / (15/19) - 2 = 1.8.
    throughput, at_station = repairman(users=3, servers=1, service_s=1.0, delay_s=2.0)
    assert throughput == pytest.approx(15 / 19, rel=1e-12)
    assert at_station == pytest.approx(1.8, rel=1e-12)


def test_mm2_three_users_by_hand() -> None:
    # Unnormalised pi(n): 1, 3, 3 (3 x 2/2), 1.5 (3 x 1/2); X = (3 x 1 + 3 x 2 + 1.5 x 2) / 8.5 = 24/17.
    throughput, _ = repairman(users=3, servers=2, service_s=1.0, delay_s=1.0)
    assert throughput == pytest.approx(24 / 17, rel=1e-12)


@pytest.mark.parametrize(("users", "servers"), [(1, 1), (7, 1), (60, 1), (60, 4), (200, 3), (150, 150)])
def test_chain_in_logarithms_matches_rational_arithmetic(users: int, servers: int) -> None:
    service, delay = Fraction(9, 100), Fraction(5)
    expected = exact_repairman(users, servers, service, delay)
    throughput, _ = repairman(users, servers, float(service), float(delay))
    assert throughput == pytest.approx(float(expected), rel=1e-10)


def test_one_user_never_queues() -> None:
    throughput, at_station = repairman(users=1, servers=1, service_s=0.3, delay_s=2.0)
    assert throughput == pytest.approx(1 / 2.3, rel=1e-12)
    assert at_station == pytest.approx(0.3, rel=1e-12)


def test_as_many_servers_as_users_is_a_pure_delay() -> None:
    throughput, at_station = repairman(users=5, servers=10, service_s=1.0, delay_s=4.0)
    assert throughput == pytest.approx(1.0, rel=1e-12)
    assert at_station == pytest.approx(1.0, rel=1e-12)


def test_no_think_time_keeps_every_user_at_the_station() -> None:
    assert repairman(users=10, servers=4, service_s=0.5, delay_s=0.0) == pytest.approx((8.0, 1.25))


def test_five_thousand_users_neither_overflow_nor_underflow() -> None:
    saturated, _ = repairman(users=5000, servers=3, service_s=0.09, delay_s=5.0)
    assert saturated == pytest.approx(3 / 0.09, rel=1e-9)
    idle, at_station = repairman(users=5000, servers=1, service_s=1e-6, delay_s=1000.0)
    assert idle == pytest.approx(5000 / (1000 + 1e-6), rel=1e-6)
    assert at_station == pytest.approx(1e-6, rel=1e-3)


# --- which resource bounds the server ---------------------------------------------------------------------------------


def test_three_sync_workers_are_bounded_by_their_slots() -> None:
    system = System(one_class(wait_s=0.08, cpu_s=0.01), Server(slots=3, cpus=1))
    p = predict(system, 500)
    assert p.bound_by == "slots"
    assert p.capacities_rps == pytest.approx({"slots": 3 / 0.09, "cpu": 100.0})
    assert p.throughput_bound_rps == pytest.approx(33.33, abs=0.01)
    assert p.knee_users == pytest.approx(3 * (0.09 + 5.0) / 0.09)
    assert p.model_rps == pytest.approx(3 / 0.09, rel=1e-6)


def test_an_event_loop_on_one_core_is_bounded_by_cpu() -> None:
    system = System(one_class(wait_s=0.1, cpu_s=0.009), Server(slots=None, cpus=1))
    p = predict(system, 2000)
    assert p.bound_by == "cpu"
    assert set(p.capacities_rps) == {"cpu"}
    assert p.throughput_bound_rps == pytest.approx(1 / 0.009)
    assert 110 < p.model_rps <= p.throughput_bound_rps


def test_a_small_connection_pool_caps_sync_and_async_alike() -> None:
    demand = one_class(wait_s=0.1, cpu_s=0.001)
    for server in (Server(slots=10, cpus=1, db_connections=4), Server(slots=None, cpus=1, db_connections=4)):
        p = predict(System(demand, server), 5000)
        assert p.bound_by == "database", server
        assert p.throughput_bound_rps == pytest.approx(40.0)
        assert p.model_rps == pytest.approx(40.0, rel=1e-6)


def test_below_the_knee_the_users_bound_throughput() -> None:
    system = System(one_class(wait_s=0.08, cpu_s=0.01), Server(slots=3, cpus=1))
    p = predict(system, 10)
    assert p.bound_by == "users"
    assert p.bottleneck == "slots"
    assert p.throughput_bound_rps == pytest.approx(10 / 5.09)
    assert p.response_bound_ms == pytest.approx(90.0)


def test_bound_switches_at_the_knee() -> None:
    system = System(one_class(wait_s=0.08, cpu_s=0.01), Server(slots=3, cpus=1))
    knee = system.knee_users  # 169.67
    assert predict(system, math.floor(knee)).bound_by == "users"
    assert predict(system, math.ceil(knee)).bound_by == "slots"


def test_more_cores_move_an_event_loop_back_below_its_knee() -> None:
    demand = one_class(wait_s=0.1, cpu_s=0.009)
    assert predict(System(demand, Server(slots=None, cpus=1)), 1000).bound_by == "cpu"
    assert predict(System(demand, Server(slots=None, cpus=8)), 1000).bound_by == "users"


# --- the worked example: the default scenario -------------------------------------------------------------------------


def test_default_scenario_at_500_users() -> None:
    demand = default_demand()
    assert demand.service_s == pytest.approx(0.0902)
    assert demand.cpu_s == pytest.approx(0.0082)
    assert demand.wait_s == pytest.approx(0.082)
    assert demand.service_scv < 1  # less variable than exponential: measurements should sit above the curve

    sync = predict(System(demand, Server(slots=3, cpus=1)), 500)
    assert sync.bound_by == "slots"
    assert sync.throughput_bound_rps == pytest.approx(33.26, abs=0.01)
    assert sync.knee_users == pytest.approx(169.3, abs=0.1)
    assert sync.model_rps == pytest.approx(33.26, abs=0.01)
    assert sync.response_bound_ms == pytest.approx((500 / (3 / 0.0902) - 5) * 1000)  # about 10 s

    event_loop = predict(System(demand, Server(slots=None, cpus=1)), 500)
    assert event_loop.bound_by == "users"
    assert event_loop.bottleneck == "cpu"
    assert event_loop.capacities_rps["cpu"] == pytest.approx(122.0, abs=0.1)
    assert event_loop.offered_rps == pytest.approx(98.23, abs=0.01)
    assert 95 < event_loop.model_rps < event_loop.offered_rps
    assert event_loop.utilisation == pytest.approx(event_loop.model_rps * 0.0082)


def test_mixing_classes_uses_their_weighted_means() -> None:
    mixed = default_demand()
    flat = one_class(wait_s=mixed.wait_s, cpu_s=mixed.cpu_s)
    for server in (Server(slots=3, cpus=1), Server(slots=None, cpus=1)):
        a, b = predict(System(mixed, server), 300), predict(System(flat, server), 300)
        assert a.model_rps == pytest.approx(b.model_rps, rel=1e-12)
        assert a.throughput_bound_rps == pytest.approx(b.throughput_bound_rps, rel=1e-12)


# --- properties over random systems -----------------------------------------------------------------------------------

seconds = st.floats(min_value=0.0, max_value=2.0, allow_nan=False)
classes = st.builds(
    RequestClass,
    name=st.just("r"),
    weight=st.floats(min_value=0.01, max_value=10.0),
    wait_s=seconds,
    cpu_s=st.floats(min_value=1e-4, max_value=0.5),
)
demands = st.builds(
    Demand,
    think_s=st.floats(min_value=0.0, max_value=20.0),
    mix=st.lists(classes, min_size=1, max_size=3).map(tuple),
)
servers = st.builds(
    Server,
    slots=st.one_of(st.none(), st.integers(min_value=1, max_value=64)),
    cpus=st.integers(min_value=1, max_value=16),
    db_connections=st.one_of(st.none(), st.integers(min_value=1, max_value=32)),
)
systems = st.builds(System, demand=demands, server=servers)
PROPERTIES = settings(max_examples=150, deadline=None)
TOLERANCE = 1e-9


@PROPERTIES
@given(system=systems, users=st.integers(min_value=1, max_value=800))
def test_curve_respects_both_bounds_and_the_response_time_law(system: System, users: int) -> None:
    p = predict(system, users)
    assert 0 < p.model_rps <= p.throughput_bound_rps * (1 + TOLERANCE)
    assert p.model_mean_ms >= p.response_bound_ms * (1 - TOLERANCE)
    assert p.model_mean_ms / 1000 == pytest.approx(users / p.model_rps - system.demand.think_s, rel=1e-6, abs=1e-9)
    assert 0 < p.utilisation <= 1 + TOLERANCE
    assert p.throughput_bound_rps == min(p.offered_rps, *p.capacities_rps.values())


@PROPERTIES
@given(system=systems, users=st.integers(min_value=1, max_value=400))
def test_more_users_never_lower_throughput_or_response_time(system: System, users: int) -> None:
    fewer, more = curve(system, [users, users + 1])
    assert more.model_rps >= fewer.model_rps * (1 - TOLERANCE)
    assert more.model_mean_ms >= fewer.model_mean_ms * (1 - TOLERANCE)


# Systems whose knee stays below a few thousand users, so that "far past the knee" is cheap to solve.
small_systems = st.builds(
    System,
    demand=st.builds(
        Demand,
        think_s=st.floats(min_value=0.0, max_value=5.0),
        mix=st.lists(
            st.builds(
                RequestClass,
                name=st.just("r"),
                weight=st.floats(min_value=0.01, max_value=10.0),
                wait_s=seconds,
                cpu_s=st.floats(min_value=0.005, max_value=0.5),
            ),
            min_size=1,
            max_size=3,
        ).map(tuple),
    ),
    server=st.builds(
        Server,
        slots=st.one_of(st.none(), st.integers(min_value=1, max_value=16)),
        cpus=st.integers(min_value=1, max_value=4),
        db_connections=st.one_of(st.none(), st.integers(min_value=1, max_value=8)),
    ),
)


@settings(max_examples=60, deadline=None)
@given(system=small_systems)
def test_one_user_gets_the_unqueued_rate_and_many_reach_the_capacity(system: System) -> None:
    service, think = system.demand.service_s, system.demand.think_s
    alone = predict(system, 1)
    assert alone.model_rps == pytest.approx(1 / (service + think), rel=1e-9)
    assert alone.model_mean_ms == pytest.approx(service * 1000, rel=1e-9)
    # At three times the knee the users ask for three times the capacity: the bottleneck is never idle.
    crowd = predict(system, max(50, math.ceil(3 * system.knee_users)))
    assert crowd.model_rps == pytest.approx(system.max_rps, rel=1e-3)


@PROPERTIES
@given(system=systems, users=st.integers(min_value=1, max_value=400))
def test_knee_is_where_the_two_throughput_bounds_meet(system: System, users: int) -> None:
    p = predict(system, users)
    demand = system.demand
    assert p.knee_users == pytest.approx(system.max_rps * (demand.service_s + demand.think_s))
    assert (p.bound_by == "users") == (users < p.knee_users)


# --- plotting helpers -------------------------------------------------------------------------------------------------


def test_dense_users_are_whole_sorted_and_span_the_range() -> None:
    users = dense_users(5, 500, points=20, knee=169.3)
    assert users[0] == 5
    assert users[-1] == 500
    assert users == sorted(set(users))
    assert {169, 170} <= set(users)


def test_dense_users_on_a_single_level() -> None:
    assert dense_users(7, 7) == [7]


def test_dense_curve_draws_the_bounds_corner() -> None:
    system = System(default_demand(), Server(slots=3, cpus=1))
    lines = dense_curve(system, 5, 500, points=30)
    assert [p.bound_by for p in lines if p.users in {169, 170}] == ["users", "slots"]
    assert all(a.model_rps <= b.model_rps for a, b in pairwise(lines))


# --- refused inputs ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: RequestClass("p", 1, -0.1, 0.01), "wait_s"),
        (lambda: RequestClass("p", 1, 0.1, math.nan), "cpu_s"),
        (lambda: RequestClass("p", -1, 0.1, 0.01), "weight"),
        (lambda: RequestClass("p", 1, math.inf, 0.01), "wait_s"),
        (lambda: Demand(think_s=-1.0, mix=(RequestClass("p", 1, 0.1, 0.01),)), "think_s"),
        (lambda: Demand(think_s=5.0, mix=()), "empty"),
        (lambda: Demand(think_s=5.0, mix=(RequestClass("p", 0, 0.1, 0.01),)), "weights are all zero"),
        (lambda: Demand(think_s=5.0, mix=(RequestClass("p", 1, 0.0, 0.0),)), "zero time"),
        (lambda: Server(slots=0, cpus=1), "slots"),
        (lambda: Server(slots=True, cpus=1), "slots"),
        (lambda: Server(slots=3, cpus=0), "cpus"),
        (lambda: Server(slots=3, cpus=1, db_connections=0), "db_connections"),
        (lambda: System(one_class(0.1, 0.0), Server(slots=None, cpus=1)), "nothing in this system"),
        (lambda: predict(System(one_class(0.1, 0.01), Server(slots=3, cpus=1)), 0), "users"),
        (lambda: repairman(5, 1, 0.0, 1.0), "service_s"),
        (lambda: repairman(5, 0, 1.0, 1.0), "servers"),
        (lambda: repairman(5, 1, 1.0, -1.0), "delay_s"),
        (lambda: dense_users(10, 5), "high"),
        (lambda: dense_users(1, 5, points=1), "points"),
    ],
)
def test_invalid_inputs_are_refused_with_a_reason(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_a_mix_given_as_a_list_is_frozen_into_a_tuple() -> None:
    mix: Any = [RequestClass("p", 1, 0.1, 0.01)]
    assert isinstance(Demand(think_s=1.0, mix=mix).mix, tuple)
