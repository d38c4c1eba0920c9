"""The capacity search's logic: a rate passes only on a full, unlost p99 within the target; the search checks its
bracket, narrows it, and reports only what passed twice. Measurement is the probe's job (integration-tested with
real servers in tests/test_open_loop.py); here the probe is a server whose p99 is a known function of the rate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from runner.capacity import (
    CONFIRM_TRIES,
    INCONCLUSIVE_TRIES,
    MIN_ARRIVALS,
    RESOLUTION,
    WIDEN,
    inconclusive,
    passes,
    probe_config,
    problems,
    search,
)
from runner.config import load_config
from runner.open_view import headline

SLO = 500.0


def record(p99_all: float | None, lost_pct: float = 0.0, generator_behind: bool = False) -> dict[str, Any]:
    """A step record as read back from run.json: a p99 over every arrival that lost ones reach is null, with
    p99_all_lost saying so."""
    figures = {"p99_all_ms": p99_all, "p99_all_lost": p99_all is None, "lost_pct": lost_pct, "rps": 1.0}
    return {"status": "ok", "figures": {**figures, "generator_behind": generator_behind}}


def server(capacity: float, calls: list[float] | None = None) -> Callable[[float], dict[str, Any]]:
    """A server whose p99 is under the target exactly up to ``capacity`` requests per second."""

    def probe(rate: float) -> dict[str, Any]:
        if calls is not None:
            calls.append(rate)
        return record(SLO * rate / capacity)

    return probe


def test_a_rate_passes_only_with_every_arrival_within_the_target() -> None:
    assert passes(record(499.0), SLO)[0]
    assert passes(record(SLO), SLO)[0]
    assert not passes(record(501.0), SLO)[0]
    ok, why = passes(record(None, lost_pct=3.0), SLO)
    assert not ok and "3.0%" in why
    # A generator that fell behind only added to the latencies: within the target all the same is a pass, a miss
    # is not the server's (inconclusive, measured again by the search).
    ok, why = passes(record(100.0, generator_behind=True), SLO)
    assert ok and "though the load generator fell behind" in why
    assert not inconclusive(record(100.0, generator_behind=True), SLO)
    ok, why = passes(record(700.0, generator_behind=True), SLO)
    assert not ok and "generator" in why and inconclusive(record(700.0, generator_behind=True), SLO)
    assert not inconclusive(record(700.0), SLO)
    ok, why = passes({"status": "failed", "error": "server died\nlog"}, SLO)
    assert not ok and "server died" in why and "log" not in why
    too_few = record(None)
    too_few["figures"]["p99_all_lost"] = False  # null without lost arrivals: too few arrivals for a p99
    ok, why = passes(too_few, SLO)
    assert not ok and "too few" in why


@pytest.mark.parametrize("capacity", [20.0, 30.0, 31.0, 44.0, 59.9])
def test_inside_the_bracket_the_search_finds_the_capacity_to_its_resolution(capacity: float) -> None:
    calls: list[float] = []
    found = search(20.0, 60.0, server(capacity, calls), SLO)
    assert found["confirmed"] and found["bound"] is None
    assert capacity * (1 - RESOLUTION) <= found["capacity_rps"] <= capacity
    # The answer was measured twice (once as it was found, once to confirm), and every probe is recorded.
    assert calls.count(found["capacity_rps"]) == 2
    assert [p["rate"] for p in found["probes"]] == calls
    assert found["probes"][-1]["purpose"] == "confirmation"


def test_a_bracket_the_model_got_wrong_is_widened_by_measurement() -> None:
    below = search(20.0, 60.0, server(7.0), SLO)  # the low end fails: halved until it passes
    assert below["confirmed"] and 7.0 * (1 - RESOLUTION) <= below["capacity_rps"] <= 7.0
    above = search(20.0, 60.0, server(150.0), SLO)  # the high end passes: doubled until it fails
    assert above["confirmed"] and 150.0 * (1 - RESOLUTION) <= above["capacity_rps"] <= 150.0


def test_beyond_what_widening_can_reach_it_reports_a_bound_not_a_capacity() -> None:
    low = search(20.0, 60.0, server(0.5), SLO)
    assert low["capacity_rps"] is None and not low["confirmed"]
    assert "every rate tried failed" in low["bound"]
    assert len(low["probes"]) == WIDEN + 1
    high = search(20.0, 60.0, server(10_000.0), SLO)
    assert not high["confirmed"] and "every rate tried passed" in high["bound"]
    assert high["capacity_rps"] == 60.0 * 2**WIDEN  # the highest rate that passed: a lower bound


def test_a_confirmation_that_fails_steps_the_answer_down_and_confirms_again() -> None:
    seen: dict[float, int] = {}

    def flaky(rate: float) -> dict[str, Any]:
        # Passes up to 40 the first time a rate is measured, but only up to 36 when measured again.
        seen[rate] = seen.get(rate, 0) + 1
        limit = 40.0 if seen[rate] == 1 else 36.0
        return record(SLO * rate / limit)

    found = search(20.0, 60.0, flaky, SLO)
    assert found["confirmed"]
    assert found["capacity_rps"] <= 36.0
    confirmations = [p for p in found["probes"] if p["purpose"] == "confirmation"]
    assert 2 <= len(confirmations) <= 2 * CONFIRM_TRIES
    assert not confirmations[0]["passed"] and confirmations[-1]["passed"]
    # The answer passed twice, and never failed: a rate stepped down to is measured twice afresh.
    at_answer = [p["passed"] for p in found["probes"] if p["rate"] == found["capacity_rps"]]
    assert at_answer == [True, True]


def test_a_capacity_that_never_passes_twice_is_not_reported() -> None:
    seen: set[float] = set()

    def once(rate: float) -> dict[str, Any]:
        first = rate not in seen
        seen.add(rate)
        return record(100.0 if first else 900.0)

    # Every rate passes the first time it is measured and fails the second: nothing is ever confirmed.
    found = search(20.0, 60.0, once, SLO)
    assert not found["confirmed"]
    assert all(p["purpose"] != "confirmation" or not p["passed"] for p in found["probes"])


def test_a_probe_window_holds_enough_arrivals_for_its_p99() -> None:
    config = load_config("default")
    assert probe_config(config, 1000.0).load.measure_s == config.load.measure_s  # never shorter than the scenario's
    slow = probe_config(config, 5.0).load
    assert slow.measure_s * 5.0 >= MIN_ARRIVALS
    assert slow.users == config.load.users and slow.warmup_s == config.load.warmup_s


def test_a_window_whose_generator_fell_behind_is_measured_again_not_failed() -> None:
    tries: dict[float, int] = {}

    def hiccups(rate: float) -> dict[str, Any]:
        # The first measurement of every rate meets a stall of the client's core; the server is the one of server().
        tries[rate] = tries.get(rate, 0) + 1
        return record(SLO * rate / 30.0, generator_behind=tries[rate] == 1)

    found = search(20.0, 60.0, hiccups, SLO)
    assert found["confirmed"] and 30.0 * (1 - RESOLUTION) <= found["capacity_rps"] <= 30.0
    assert found["client_limited"] == []
    # A rate over the capacity missed its first try with the generator behind: inconclusive, measured again, and
    # its verdict is the next try's. A rate under it passed on its first try all the same.
    over = {rate for rate in tries if rate > 30.0}
    again = [p for p in found["probes"] if p["passed"] is None]
    assert over and {p["rate"] for p in again} == over and all("inconclusive" in p["why"] for p in again)
    for rate in tries:
        verdicts = [p["passed"] for p in found["probes"] if p["rate"] == rate]
        assert verdicts == ([None, False] if rate in over else [True] * len(verdicts))


def test_a_rate_whose_generator_always_falls_behind_fails_and_is_named_client_limited() -> None:
    def weak_client(rate: float) -> dict[str, Any]:
        # Past 40/s the client falls behind and its lateness alone misses the target; the server could take more.
        return record(SLO * rate / 1000.0 + (SLO if rate > 40.0 else 0.0), generator_behind=rate > 40.0)

    found = search(20.0, 60.0, weak_client, SLO)
    assert found["confirmed"] and found["capacity_rps"] <= 40.0
    assert 60.0 in found["client_limited"]
    at_60 = [p for p in found["probes"] if p["rate"] == 60.0]
    assert [p["passed"] for p in at_60] == [None] * (INCONCLUSIVE_TRIES - 1) + [False]
    assert f"in {INCONCLUSIVE_TRIES} measurements in a row" in at_60[-1]["why"]
    said = problems({"servers": {"s": found}})
    assert said and all("load generator" in line for line in said)
    assert "lower bound" in headline({"slo_p99_ms": SLO, "servers": {"s": found}})
