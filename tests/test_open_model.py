"""The open-arrival model: textbook values it must reproduce (Erlang C, the M/M/k wait, Pollaczek-Khinchine),
simulated FCFS queues it must agree with, the quantile convention of a discrete mix, and the shape (monotone,
invertible, undefined past capacity) the capacity search relies on."""

from __future__ import annotations

import heapq
import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.model import Demand, RequestClass, Server, System
from runner.open_model import (
    OpenPrediction,
    bracket,
    capacity_under,
    erlang_c,
    open_curve,
    predict_open,
    response_quantile,
    response_survival,
    service_scv,
    station_classes,
    wait_survival,
)


def single_station(service_s: float, servers: int = 1, fixed_s: float = 0.0) -> System:
    """A system whose bottleneck is ``servers`` cores each taking ``service_s`` of CPU, behind ``fixed_s`` of waits
    (an event loop with no slot limit): one class, so deterministic service at the station plus a known rest."""
    return System(
        Demand(think_s=1.0, mix=(RequestClass("r", 1, fixed_s, service_s),)), Server(slots=None, cpus=servers)
    )


def default_demand() -> Demand:
    """The default scenario's mix: four pages (100 ms of waits, 10 ms of work) to one short (10 ms query)."""
    return Demand(
        think_s=5.0,
        mix=(RequestClass("page", 4, 0.100, 0.010), RequestClass("short", 1, 0.010, 0.001)),
    )


def textbook_erlang_c(servers: int, load: Fraction) -> Fraction:
    """Erlang C from its textbook formula in exact rational arithmetic: an independent reference."""
    term = [load**n / math.factorial(n) for n in range(servers)]
    queued = load**servers / math.factorial(servers) * servers / (servers - load)
    return queued / (sum(term, Fraction(0)) + queued)


def simulated_fcfs(
    servers: int, rate: float, services: np.ndarray[Any, Any], seed: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(waits, times in the system) of a FCFS queue with ``servers`` servers fed by Poisson arrivals at ``rate``,
    each arrival taking the next of ``services``: each arrival, in order, takes the server that frees first (which
    is exactly FCFS with k servers)."""
    rng = np.random.default_rng(seed)
    arrived = np.cumsum(rng.exponential(1 / rate, len(services))).tolist()
    free_at = [0.0] * servers
    waits = np.empty(len(services))
    for i, (at, service) in enumerate(zip(arrived, services.tolist(), strict=True)):
        start = max(at, heapq.heappop(free_at))
        heapq.heappush(free_at, start + service)
        waits[i] = start - at
    return waits, waits + services


def default_mix_services(arrivals: int, seed: int) -> np.ndarray[Any, Any]:
    """The default mix on slots: a page's 0.110 s four times in five, a short request's 0.011 s otherwise."""
    return np.where(np.random.default_rng(seed).random(arrivals) < 0.8, 0.110, 0.011)


# --- Erlang C -----------------------------------------------------------------------------------------------------


def test_erlang_c_textbook_values() -> None:
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=1e-12)
    assert erlang_c(10, 8.0) == pytest.approx(0.40918015, rel=1e-7)
    assert erlang_c(1, 0.7) == pytest.approx(0.7, rel=1e-12)  # M/M/1: an arrival waits iff the server is busy


@pytest.mark.parametrize(("servers", "load"), [(1, "1/3"), (2, "3/2"), (5, "4"), (10, "8"), (20, "39/2"), (40, "1")])
def test_erlang_c_agrees_with_the_exact_textbook_formula(servers: int, load: str) -> None:
    exact = textbook_erlang_c(servers, Fraction(load))
    assert erlang_c(servers, float(Fraction(load))) == pytest.approx(float(exact), rel=1e-12)


def test_erlang_c_is_stable_for_hundreds_of_servers() -> None:
    # The textbook formula in floats overflows at 171! ; in logarithms it is a second, independent reference.
    servers, load = 300, 290.0
    log_terms = [n * math.log(load) - math.lgamma(n + 1) for n in range(servers)]
    log_queued = servers * math.log(load) - math.lgamma(servers + 1) + math.log(servers / (servers - load))
    top = max([*log_terms, log_queued])
    total = math.fsum(math.exp(v - top) for v in log_terms) + math.exp(log_queued - top)
    assert erlang_c(servers, load) == pytest.approx(math.exp(log_queued - top) / total, rel=1e-9)
    assert 0 < erlang_c(500, 100.0) < 1e-50  # lightly loaded: practically nobody waits, and no underflow to NaN


def test_erlang_c_at_and_above_saturation_is_one() -> None:
    assert erlang_c(3, 3.0) == 1.0
    assert erlang_c(3, 30.0) == 1.0
    assert erlang_c(3, 0.0) == 0.0


# --- the wait: exact for M/M/k, exact in the mean for M/G/1 ---------------------------------------------------------


@pytest.mark.parametrize(("servers", "service_s", "rate"), [(1, 0.01, 50.0), (3, 0.09, 20.0), (8, 0.1, 60.0)])
def test_with_exponential_service_the_wait_is_the_exact_mmk_one(servers: int, service_s: float, rate: float) -> None:
    # scv = 1 is the M/M/k limit: P(W > x) = C e^-(k mu - lambda) x exactly, from Erlang C in rationals.
    waits = float(textbook_erlang_c(servers, Fraction(rate) * Fraction(service_s)))
    for x in (0.0, 0.01, 0.1, 1.0):
        expected = waits * math.exp(-(servers / service_s - rate) * x)
        assert wait_survival(servers, service_s, 1.0, rate, x) == pytest.approx(expected, rel=1e-12)
    assert wait_survival(servers, service_s, 1.0, rate, -1e-9) == 1.0  # nobody waits less than nothing
    # ... and a simulated M/M/k queue agrees, in the mean (C theta, the integral of the survival) and the tail.
    # 400,000 arrivals less 1,000 of warm-up: over 20 seeds of 200,000 the simulated mean wait and P(W > theta)
    # deviated from these by a standard deviation of at most 3.4% (P(W > 0): 1.5%; successive waits correlate, most
    # with 8 servers), so 2.4% at twice the length, and 10% is four of them. Dropping the C factor or taking the
    # wrong rate moves them by far more.
    rng = np.random.default_rng(7)
    simulated, _ = simulated_fcfs(servers, rate, rng.exponential(service_s, 400_000), seed=12)
    simulated = simulated[1_000:]
    theta = 1 / (servers / service_s - rate)
    assert float(simulated.mean()) == pytest.approx(waits * theta, rel=0.10)
    for x in (0.0, theta):
        assert float((simulated > x).mean()) == pytest.approx(wait_survival(servers, service_s, 1.0, rate, x), rel=0.10)


@pytest.mark.parametrize("rho", [0.5, 0.7])
def test_one_server_has_the_pollaczek_khinchine_mean_wait(rho: float) -> None:
    # M/G/1 with two deterministic classes (one slot, the default mix): E[W] = lambda E[b^2] / (2 (1 - rho)).
    system = System(default_demand(), Server(slots=1, cpus=1))
    rate = rho * system.max_rps
    p = predict_open(system, rate)
    assert p.mean_ms is not None
    mean_wait = p.mean_ms / 1000 - 0.0902  # less the mix's mean time without waiting
    second_moment = 0.8 * 0.110**2 + 0.2 * 0.011**2
    assert mean_wait == pytest.approx(rate * second_moment / (2 * (1 - rho)), rel=1e-9)
    assert p.wait_probability == pytest.approx(rho, rel=1e-12)  # one server: an arrival waits iff it is busy
    # A simulated M/G/1 queue agrees: 500,000 arrivals, over 8 seeds the simulated mean wait varied by a standard
    # deviation under 0.8% and sat within 0.3% of the formula, so 4% is five deviations.
    waits, _ = simulated_fcfs(1, rate, default_mix_services(500_000, seed=3), seed=4)
    assert float(waits[1_000:].mean()) == pytest.approx(mean_wait, rel=0.04)


# --- against a simulated M/G/k queue with the default mix -----------------------------------------------------------


# Allen-Cunneen is not exact for k > 1. Against 16 seeded simulations (400,000 arrivals at rho 0.5 and 0.8,
# 1,000,000 at 0.9; FCFS, k = 3, the default mix on slots), the model's error relative to the simulated mean was:
#   rho 0.5: p50  0.0%, p95 -4.7%, p99 +3.6%, mean -0.8%;  one run's p99 varies by a standard deviation of 0.4%
#   rho 0.8: p50 -1.4%, p95 +1.9%, p99 +3.9%, mean -0.9%;  p50 0.6%, p99 1.7%
#   rho 0.9: p50 -3.3%, p95 +1.2%, p99 +2.1%, mean -0.8%;  p50 0.9%, p99 2.8% (waits correlate more near capacity)
# Each tolerance is the observed error plus four standard deviations of one run, rounded up: a failure is a wrong
# formula, not bad luck. Exponential service's theta (scv 1 instead of 0.19) would put p99 40-70% too high, and
# leaving out Erlang C (everyone waits) would move p50 by far more than these.
@pytest.mark.parametrize(
    ("rho", "arrivals", "p50_tolerance", "p99_tolerance"),
    [(0.5, 400_000, 0.01, 0.07), (0.8, 400_000, 0.05, 0.12), (0.9, 1_000_000, 0.08, 0.15)],
)
def test_percentiles_agree_with_a_simulated_mgk_queue_of_the_default_mix(
    rho: float, arrivals: int, p50_tolerance: float, p99_tolerance: float
) -> None:
    system = System(default_demand(), Server(slots=3, cpus=1))
    rate = rho * system.max_rps
    _, times = simulated_fcfs(3, rate, default_mix_services(arrivals, seed=11), seed=12)
    times = times[1_000:]  # the queue starts empty
    p = predict_open(system, rate)
    measured = {q: float(np.quantile(times, q, method="inverted_cdf")) * 1000 for q in (0.5, 0.99)}
    assert measured[0.5] == pytest.approx(p.p50_ms, rel=p50_tolerance)
    assert measured[0.99] == pytest.approx(p.p99_ms, rel=p99_tolerance)
    assert float(times.mean()) * 1000 == pytest.approx(p.mean_ms, rel=0.05)


# --- the mix's distribution and its quantiles ---------------------------------------------------------------------


def dyadic_mix(short_weight: float = 1.0) -> System:
    """A short class of 0.125 s and a long one of 0.25 s (weight 1) on one slot: every time is exact in binary,
    so the quantile convention can be asserted at the drops themselves."""
    mix = (RequestClass("short", short_weight, 0.125, 0.0), RequestClass("long", 1, 0.25, 0.0))
    return System(Demand(think_s=1.0, mix=mix), Server(slots=1, cpus=1))


def test_an_idle_mix_is_a_step_function_and_its_quantile_the_smallest_time_low_enough() -> None:
    system = dyadic_mix()
    assert response_survival(system, 0.0, 0.0) == 1.0
    assert response_survival(system, 0.0, 0.124999) == 1.0
    assert response_survival(system, 0.0, 0.125) == 0.5  # right-continuous: a request of exactly 0.125 s is not above
    assert response_survival(system, 0.0, 0.2) == 0.5
    assert response_survival(system, 0.0, 0.25) == 0.0
    # P(R > 0.125) = 0.5 <= 1 - 0.5, and nothing smaller qualifies: the median is the short class's time, as
    # numpy's inverted_cdf takes it from a sample with one of each (the harness's convention for measured ones).
    assert response_quantile(system, 0.0, 0.5) == 0.125 == float(np.quantile([0.125, 0.25], 0.5, method="inverted_cdf"))
    assert response_quantile(system, 0.0, 0.5000001) == 0.25
    assert response_quantile(system, 0.0, 0.25) == 0.125
    assert response_quantile(system, 0.0, 0.99) == 0.25


def brute_force_quantile(totals: list[float], shares: list[float], waits: float, theta: float, p: float) -> float:
    """The smallest grid time (1 us steps) whose survival, written out from the module docstring's formula, is at
    most ``1 - p``: an independent check of the piecewise inversion."""
    t = np.arange(0.0, 2.0, 1e-6)
    survival = np.zeros_like(t)
    for total, share in zip(totals, shares, strict=True):
        survival += share * np.where(t < total, 1.0, waits * np.exp(-(t - total) / theta))
    return float(t[np.argmax(survival <= 1 - p)])


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        (0.2, 0.125),  # below the drop at 0.125 s the survival is 1; just past it 0.25 + 0.75 C = 0.625
        (0.375, 0.125),  # exactly at the drop's foot (1 - p = 0.625): still 0.125
        (0.5, 0.125 + 0.175 * math.log(0.375 / 0.25)),  # on the first decaying piece, in closed form
        (0.6, 0.25),  # the piece ends at 0.434 > 0.4, the drop at 0.25 s lands at 0.309 <= 0.4: on the drop
        (0.99, 0.25 + 0.175 * math.log(0.5 * (0.75 * math.exp(-0.125 / 0.175) + 0.25) / 0.01)),  # the last piece
    ],
)
def test_under_load_a_quantile_sits_on_a_drop_or_solves_a_piece(p: float, expected: float) -> None:
    # Short weight 3: E[b] = 0.15625 s, scv = 0.12; one slot at 3.2/s (rho 0.5) waits with C = 0.5 and theta =
    # (1.12 / 2) / (6.4 - 3.2) = 0.175 s.
    system = dyadic_mix(short_weight=3)
    rate = 3.2
    assert service_scv(station_classes(system)) == pytest.approx(0.12, rel=1e-12)
    assert predict_open(system, rate).wait_probability == pytest.approx(0.5, rel=1e-12)
    found = response_quantile(system, rate, p)
    assert found == pytest.approx(expected, rel=1e-12)
    assert found == pytest.approx(brute_force_quantile([0.125, 0.25], [0.75, 0.25], 0.5, 0.175, p), abs=2e-6)


def test_one_class_is_its_own_time_until_more_than_the_tail_waits() -> None:
    # One class of total c (0.0078125 s on the core, 0.125 s of waits): P(R > t) = C e^-(t - c)/theta for t >= c,
    # so p99 = c while C <= 1%, and c + theta ln(C / 0.01) after.
    system = single_station(0.0078125, servers=2, fixed_s=0.125)
    total = 0.1328125
    assert predict_open(system, 0.0).p99_ms == total * 1000
    for rate in (1.0, 50.0, 200.0):
        waits = erlang_c(2, rate * 0.0078125)
        theta = 0.5 / (2 / 0.0078125 - rate)  # scv 0: deterministic service
        expected = total + (theta * math.log(waits / 0.01) if waits > 0.01 else 0.0)
        assert response_quantile(system, rate, 0.99) == pytest.approx(expected, rel=1e-12)
        assert predict_open(system, rate).mean_ms == pytest.approx((total + waits * theta) * 1000, rel=1e-12)


def held_and_outside(system: System) -> list[float]:
    """Each class's time on the station and off it, in the mix's order, flattened for pytest.approx."""
    return [t for c in station_classes(system) for t in (c.service_s, c.outside_s)]


def test_each_bottleneck_holds_its_own_part_of_each_class() -> None:
    demand = default_demand()
    slots, cpu = System(demand, Server(slots=3, cpus=1)), System(demand, Server(slots=None, cpus=1))
    database = System(demand, Server(slots=None, cpus=16, db_connections=4))
    assert [(c.name, c.share, c.service_s, c.outside_s) for c in station_classes(slots)] == [
        ("page", 0.8, 0.110, 0.0),
        ("short", 0.2, 0.011, 0.0),
    ]
    assert held_and_outside(cpu) == pytest.approx([0.010, 0.100, 0.001, 0.010])
    assert database.bottleneck.resource == "database"
    assert held_and_outside(database) == pytest.approx([0.100, 0.010, 0.010, 0.001])
    # Whatever the station, an idle request takes its class's whole time: the page's 110 ms is the idle p99.
    for system in (slots, cpu, database):
        idle = predict_open(system, 0.0)
        assert [idle.p50_ms, idle.p99_ms] == pytest.approx([110.0, 110.0]) and idle.wait_probability == 0.0
        assert idle.mean_ms == pytest.approx(90.2)
    assert predict_open(cpu, 0.0).fixed_ms == pytest.approx(82.0)  # the mean time off the cores: the waits
    never_sent = Demand(think_s=1.0, mix=(*demand.mix, RequestClass("unused", 0, 5.0, 5.0)))
    assert station_classes(System(never_sent, Server(slots=3, cpus=1))) == station_classes(slots)


def test_the_default_scenario_as_the_module_docstring_works_it() -> None:
    sync = System(default_demand(), Server(slots=3, cpus=1))
    event_loop = System(default_demand(), Server(slots=None, cpus=1))
    idle = predict_open(sync, 0.0)
    assert (round(idle.p50_ms or 0), round(idle.p99_ms or 0)) == (110, 110)
    p = predict_open(sync, 20.0)
    assert (p.bottleneck, round(p.capacity_rps, 1), round(p.wait_probability, 2)) == ("slots", 33.3, 0.36)
    assert round(p.service_scv, 3) == 0.193 and round(predict_open(event_loop, 0.0).service_scv, 3) == 0.193
    assert (round(p.mean_ms or 0), round(p.p50_ms or 0), round(p.p99_ms or 0)) == (106, 110, 262)
    assert round(capacity_under(sync, 500.0) or 0, 1) == 27.0
    q = predict_open(event_loop, 100.0)
    assert (q.bottleneck, round(q.capacity_rps), round(q.utilisation, 2)) == ("cpu", 122, 0.82)
    assert (round(q.mean_ms or 0), round(q.p99_ms or 0)) == (112, 224)
    assert round(capacity_under(event_loop, 500.0) or 0) == 115


# --- properties -----------------------------------------------------------------------------------------------------

seconds = st.floats(min_value=0.0, max_value=0.5)
systems = st.builds(
    System,
    demand=st.builds(
        Demand,
        think_s=st.just(1.0),
        mix=st.lists(
            st.builds(
                RequestClass,
                name=st.just("r"),
                weight=st.floats(min_value=0.01, max_value=10.0),
                wait_s=seconds,
                cpu_s=st.floats(min_value=0.0005, max_value=0.5),
            ),
            min_size=1,
            max_size=3,
        ).map(tuple),
    ),
    server=st.builds(
        Server,
        slots=st.one_of(st.none(), st.integers(min_value=1, max_value=300)),
        cpus=st.integers(min_value=1, max_value=16),
        db_connections=st.one_of(st.none(), st.integers(min_value=1, max_value=64)),
    ),
)
PROPERTIES = settings(max_examples=150, deadline=None)
fractions_of_capacity = st.floats(min_value=0.0, max_value=0.999)


def times_of(p: OpenPrediction) -> list[float]:
    found = [p.mean_ms, p.p50_ms, p.p95_ms, p.p99_ms]
    assert all(t is not None for t in found)
    return [t for t in found if t is not None]


@PROPERTIES
@given(system=systems, a=fractions_of_capacity, b=fractions_of_capacity)
def test_a_higher_rate_never_lowers_the_wait_probability_or_any_time(system: System, a: float, b: float) -> None:
    low, high = sorted((a, b))
    slower = predict_open(system, low * system.max_rps)
    faster = predict_open(system, high * system.max_rps)
    assert faster.wait_probability >= slower.wait_probability * (1 - 1e-12)
    for before, after in zip(times_of(slower), times_of(faster), strict=True):
        assert after >= before * (1 - 1e-9)


@PROPERTIES
@given(system=systems, share=fractions_of_capacity)
def test_percentiles_are_ordered_and_never_below_the_fastest_class(system: System, share: float) -> None:
    p = predict_open(system, share * system.max_rps)
    mean, p50, p95, p99 = times_of(p)
    fastest = min(c.total_s for c in station_classes(system)) * 1000
    assert fastest * (1 - 1e-12) <= p50 <= p95 <= p99
    assert mean >= system.demand.service_s * 1000 * (1 - 1e-9)
    assert 0 <= p.wait_probability <= 1 and p.utilisation == pytest.approx(share)


@PROPERTIES
@given(system=systems, share=fractions_of_capacity, probability=st.floats(min_value=0.01, max_value=0.999))
def test_a_quantile_is_the_smallest_time_whose_survival_is_low_enough(
    system: System, share: float, probability: float
) -> None:
    rate = share * system.max_rps
    t = response_quantile(system, rate, probability)
    tail = 1 - probability
    assert response_survival(system, rate, t) <= tail * (1 + 1e-9) + 1e-12
    # and a hair earlier it is not: a quantile too high (the next class's total where the root lay inside a piece,
    # say) has a survival well below the tail just before it; one too low fails the line above.
    assert response_survival(system, rate, t * (1 - 1e-6)) > tail * (1 - 1e-9)


@PROPERTIES
@given(system=systems, headroom=st.floats(min_value=0.001, max_value=50.0))
def test_capacity_under_inverts_predict_open(system: System, headroom: float) -> None:
    idle = predict_open(system, 0.0).p99_ms
    assert idle is not None
    target = idle * (1 + headroom)
    rate = capacity_under(system, target)
    assert rate is not None and 0 < rate < system.max_rps
    assert predict_open(system, rate).p99_ms == pytest.approx(target, rel=1e-6)
    low, high = bracket(system, target)
    assert (low, high) == pytest.approx((0.5 * rate, 1.5 * rate))


def test_capacity_under_is_none_only_when_even_an_idle_server_misses_the_target() -> None:
    system = single_station(0.0078125, servers=2, fixed_s=0.125)  # one class of 132.8125 ms, exact in binary
    assert predict_open(system, 0.0).p99_ms == 132.8125
    assert capacity_under(system, 132.8) is None
    # A target of exactly the class's time is met while at most 1% of arrivals wait (p99 holds at the class's own
    # time), which with two servers is a real rate: C(2, a) = a^2 / (2 + a) = 0.01 at a = 0.1050..
    exact = capacity_under(system, 132.8125)
    assert exact is not None
    assert erlang_c(2, exact * 0.0078125) == pytest.approx(0.01, rel=1e-9)
    assert predict_open(system, exact * 0.999).p99_ms == 132.8125
    assert (predict_open(system, exact * 1.001).p99_ms or 0) > 132.8125
    with pytest.raises(ValueError, match=r"below the model's p99 of an idle server \(132\.8 ms\)"):
        bracket(system, 120.0)


def test_bracket_spans_its_factors_of_the_models_capacity() -> None:
    system = System(default_demand(), Server(slots=None, cpus=1))
    estimate = capacity_under(system, 500.0)
    assert estimate is not None
    assert bracket(system, 500.0) == pytest.approx((0.5 * estimate, 1.5 * estimate))
    assert bracket(system, 500.0, low_factor=0.8, high_factor=1.2) == pytest.approx((0.8 * estimate, 1.2 * estimate))
    # The top of the bracket fails the target in the model: there is something for the search to find.
    assert (predict_open(system, 1.5 * estimate).p99_ms or math.inf) > 500.0


# --- past capacity --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("share", [1.0, 1.5, 10.0])
def test_at_or_past_capacity_there_is_no_steady_state(share: float) -> None:
    system = single_station(0.01, servers=4)
    p = predict_open(system, share * system.max_rps)
    assert not p.stable and p.utilisation == pytest.approx(share)
    assert (p.mean_ms, p.p50_ms, p.p95_ms, p.p99_ms) == (None, None, None, None)
    assert p.wait_probability == 1.0 and p.capacity_rps == pytest.approx(400.0)
    with pytest.raises(ValueError, match="at or above the station's capacity"):
        response_quantile(system, share * 400.0, 0.99)
    with pytest.raises(ValueError, match="at or above the station's capacity"):
        wait_survival(4, 0.01, 0.5, share * 400.0, 0.1)


def test_open_curve_is_evenly_spaced_and_stops_at_the_last_stable_rate() -> None:
    system = single_station(0.01, servers=1)  # capacity 100/s
    whole = open_curve(system, 0.0, 150.0, points=31)  # a point every 5/s
    assert [p.rate_rps for p in whole] == pytest.approx([5.0 * i for i in range(20)])  # 0 .. 95; 100 is capacity
    assert all(p.stable for p in whole)
    below = open_curve(system, 10.0, 50.0, points=5)
    assert [p.rate_rps for p in below] == pytest.approx([10.0, 20.0, 30.0, 40.0, 50.0])
    assert open_curve(system, 100.0, 200.0) == []


# --- refused inputs -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: erlang_c(0, 1.0), "servers must be a whole number >= 1, got 0"),
        (lambda: erlang_c(True, 0.5), "servers .* got True"),
        (lambda: erlang_c(2, -1.0), r"offered_load .* got -1\.0"),
        (lambda: erlang_c(2, math.nan), "offered_load .* got nan"),
        (lambda: predict_open(single_station(0.01), -5.0), r"rate_rps .* got -5\.0"),
        (lambda: predict_open(single_station(0.01), math.inf), "rate_rps .* got inf"),
        (lambda: predict_open("a system", 1.0), "system must be a runner.model.System, got str"),  # type: ignore[arg-type]
        (lambda: station_classes(None), "system must be a runner.model.System, got NoneType"),  # type: ignore[arg-type]
        (lambda: response_quantile(single_station(0.01), 10.0, 1.0), "probability must be strictly between 0 and 1"),
        (lambda: response_quantile(single_station(0.01), 10.0, 0.0), "probability .* got 0.0"),
        (lambda: response_survival(single_station(0.01), -1.0, 0.1), "rate_rps .* got -1.0"),
        (lambda: wait_survival(1, 0.0, 0.5, 10.0, 1.0), "service_s .* got 0.0"),
        (lambda: wait_survival(0, 0.01, 0.5, 10.0, 1.0), "servers .* got 0"),
        (lambda: wait_survival(1, 0.01, -0.5, 10.0, 1.0), r"scv .* got -0\.5"),
        (lambda: wait_survival(1, 0.01, math.inf, 10.0, 1.0), "scv .* got inf"),
        (lambda: open_curve(single_station(0.01), 50.0, 10.0), r"high_rps \(10\.0\) must be >= low_rps \(50\.0\)"),
        (lambda: open_curve(single_station(0.01), 0.0, 10.0, points=1), "points .* got 1"),
        (lambda: open_curve(single_station(0.01), -1.0, 10.0), "low_rps .* got -1.0"),
        (lambda: capacity_under(single_station(0.01), 0.0), "slo_p99_ms .* got 0.0"),
        (lambda: capacity_under(single_station(0.01), -500.0), "slo_p99_ms .* got -500.0"),
        (lambda: bracket(single_station(0.01), 500.0, low_factor=1.5), "low_factor <= 1 <= high_factor"),
        (lambda: bracket(single_station(0.01), 500.0, high_factor=0.0), "high_factor .* got 0.0"),
    ],
)
def test_invalid_inputs_are_refused_naming_the_value(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()
