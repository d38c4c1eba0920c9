"""Each cause a step off the model can be given needs its own evidence: data where it holds gets the reason,
data where it does not falls through, and a step matching no cause is reported as unexplained."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from runner import explain, model
from runner.config import ServerConfig
from runner.expected import Calibration, Expectation

SYNC = ServerConfig(name="sync", server="gunicorn", workers=3)
LOOP = ServerConfig(name="loop", server="uvicorn", workers=1)

# A page: 100 ms of waits and 10 ms of CPU; users think 5 s.
DEMAND = model.Demand(think_s=5.0, mix=(model.RequestClass("page", 1, 0.100, 0.010),))
CALIBRATION = Calibration(overhead_ms=0.0, steps=3, cpu_per_request_ms=10.0)


def expectation(
    server: model.Server,
    users: int,
    *,
    rate: float | None = None,
    mean_ms: float | None = None,
    interval: tuple[float, float] | None = None,
    little: float | None = 0.0,
    little_noise: bool = False,
) -> Expectation:
    """A step beside the model of ``server``; the measurement defaults to the model's own figures."""
    system = model.System(demand=DEMAND, server=server)
    prediction = model.predict(system, users)
    rate = prediction.model_rps if rate is None else rate
    return Expectation(
        prediction=prediction,
        calibration=CALIBRATION,
        measured_rps=rate,
        measured_mean_ms=prediction.model_mean_ms if mean_ms is None else mean_ms,
        rps_interval=interval or (rate * 0.99, rate * 1.01),
        db_connections=server.db_connections,
        prediction_service_ms=system.demand.service_s * 1000,
        little_error_pct=little,
        little_within_noise=little_noise,
    )


def step(rate: float, cpu_pct: float = 40.0, server: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "status": "ok",
        "server_cpu_pct": cpu_pct,
        "saturated": "",
        "figures": {"window_s": 10.0, "completed_in_window": round(rate * 10), "unfinished": 0},
    }
    if server is not None:
        record["figures"]["server"] = {"timed": 100, **server}
    record.update(extra)
    return record


def times(handler: float, outside: float, pool: float = 0.05, waited: float = 0.0) -> dict[str, float]:
    return {"handler_mean_ms": handler, "outside_mean_ms": outside, "pool_mean_ms": pool, "pool_waited_pct": waited}


THREE_SLOTS = model.Server(slots=3, cpus=1)  # 3 / 110 ms: about 27/s
POOL_OF_4 = model.Server(slots=None, cpus=1, db_connections=4)  # 4 / 100 ms: 40/s


# --- throughput -----------------------------------------------------------------------------------------------------


def test_a_count_that_cannot_tell_is_chance() -> None:
    e = expectation(THREE_SLOTS, 500, rate=20.0, interval=(15.0, 30.0))
    assert "lies inside this step's own 95% interval" in explain.throughput(e, step(20.0), SYNC)


def test_a_client_limited_step_is_the_clients() -> None:
    e = expectation(THREE_SLOTS, 500, rate=20.0)
    assert "the client used more than 80%" in explain.throughput(e, step(20.0, saturated="client"), SYNC)


def test_a_broken_users_law_is_a_measurement_problem_unless_chance_explains_it() -> None:
    e = expectation(THREE_SLOTS, 500, rate=20.0, little=-18.0)
    assert explain.throughput(e, step(20.0), SYNC).startswith("a measurement problem, not a server property")
    chance = expectation(THREE_SLOTS, 500, rate=20.0, little=-18.0, little_noise=True)
    assert "measurement problem" not in explain.throughput(chance, step(20.0), SYNC)


def test_a_pool_is_named_only_when_the_server_measured_requests_waiting_for_it() -> None:
    e = expectation(POOL_OF_4, 500, rate=30.0)
    queued = step(30.0, server=times(900.0, 3.0, pool=800.0, waited=97.0), db_connections_mean=2.5)
    text = explain.throughput(e, queued, LOOP)
    assert text.startswith("requests queued for the database pool: 97% of requests waited for a connection, 800 ms")
    assert "each of the 4 connections was taken for about 133 ms per request" in text
    assert text.endswith("PostgreSQL saw 2.5 of them busy on average, so the pool idled between queries")
    full = step(30.0, server=times(900.0, 3.0, pool=800.0, waited=97.0), db_connections_mean=3.9)
    assert "idled" not in explain.throughput(e, full, LOOP)
    few = step(30.0, server=times(120.0, 3.0, pool=2.0, waited=10.0))
    assert "pool" not in explain.throughput(e, few, LOOP)


def test_a_slow_handler_holds_its_slot_longer() -> None:
    e = expectation(THREE_SLOTS, 500, rate=20.0)
    text = explain.throughput(e, step(20.0, cpu_pct=90.0, server=times(150.0, 5000.0)), SYNC)
    assert text.startswith("the handler took 150 ms on average against the model's 110 ms of service")
    assert "with the server's CPU at 90%" in text and "about 150 ms per request measured" in text


def test_a_slot_busy_beyond_its_handler_is_measured_time_outside_it() -> None:
    e = expectation(THREE_SLOTS, 500, rate=20.0)  # 3 slots at 20/s: each held 150 ms
    text = explain.throughput(e, step(20.0, server=times(110.0, 5000.0)), SYNC)
    assert "each of its 3 slots was held about 150 ms per request" in text
    assert "busy for 40 ms per request outside the handler" in text


def test_more_cpu_per_request_than_calibrated_is_named() -> None:
    cpu_bound = model.Server(slots=None, cpus=1)  # 1 / 10 ms: 100/s
    e = expectation(cpu_bound, 1000, rate=70.0)
    text = explain.throughput(e, step(70.0, cpu_pct=98.0), LOOP)  # 0.98 core / 70 per s = 14 ms each
    assert text.startswith("its CPU per request in this step was 14.0 ms, against the 10.0 ms calibrated")


def test_less_cpu_per_request_than_calibrated_explains_a_step_above_its_cpu_bound() -> None:
    cpu_bound = model.Server(slots=None, cpus=1)
    e = expectation(cpu_bound, 1000, rate=130.0)
    assert explain.throughput(e, step(130.0, cpu_pct=97.5), LOOP).startswith(
        "its CPU per request in this step was 7.5 ms"
    )
    as_calibrated = step(130.0, cpu_pct=130.0)  # 10 ms each: what the calibration says
    assert explain.is_unexplained(explain.throughput(e, as_calibrated, LOOP))


def test_a_faster_handler_explains_a_step_above_its_slot_bound() -> None:
    e = expectation(THREE_SLOTS, 500, rate=35.0)
    assert explain.throughput(e, step(35.0, server=times(80.0, 3000.0)), SYNC).startswith(
        "the handler took 80 ms on average against the model's 110 ms of service"
    )


def test_a_step_matching_no_cause_is_unexplained_with_what_it_measured() -> None:
    e = expectation(THREE_SLOTS, 500, rate=20.0)
    text = explain.throughput(e, step(20.0, cpu_pct=20.0), SYNC)  # no server times, CPU per request 10 ms
    assert explain.is_unexplained(text)
    assert text == (
        "unexplained (server CPU 20%, CPU per request 10.0 ms against 10.0 ms calibrated, no server times in this "
        "run's logs)"
    )


# --- mean response time ---------------------------------------------------------------------------------------------


def test_unanswered_requests_leave_the_mean_incomparable() -> None:
    e = expectation(THREE_SLOTS, 50, mean_ms=40.0)
    record = step(9.0)
    record["figures"]["unfinished"] = 7
    assert explain.response_time(e, record, SYNC).startswith("7 requests sent in the window were never answered")


def test_without_the_servers_own_times_a_mean_gap_is_unexplained() -> None:
    e = expectation(THREE_SLOTS, 50, mean_ms=200.0)
    assert explain.response_time(e, step(9.0), SYNC).startswith("unexplained: this run's request logs do not carry")


def test_a_longer_service_is_found_in_the_handler() -> None:
    e = expectation(POOL_OF_4, 5, mean_ms=150.0)  # model: 110 ms, no queue at 5 users
    gap = explain.response_time(e, step(1.0, cpu_pct=80.0, server=times(146.0, 4.0, pool=0.0)), LOOP)
    assert gap.startswith("the handler's own time was longer than the model's service: measured 146.0 ms of service")
    assert gap.endswith("the server's CPU was at 80%")


def test_a_longer_wait_is_found_outside_the_handler_or_in_the_pool() -> None:
    e = expectation(THREE_SLOTS, 250, mean_ms=6000.0)
    assert e.prediction.model_mean_ms < 4500
    outside = explain.response_time(e, step(25.0, server=times(110.0, 5890.0, pool=0.0)), SYNC)
    assert outside.startswith("requests waited longer than the model queues, most of it outside the handler")
    pool = explain.response_time(e, step(25.0, server=times(4000.0, 2000.0, pool=3890.0, waited=99.0)), SYNC)
    assert "most of it for a connection" in pool


def test_a_gap_neither_part_carries_is_unexplained() -> None:
    e = expectation(POOL_OF_4, 5, mean_ms=150.0)  # 40 ms over the model, split 15 / 15 between the parts
    text = explain.response_time(e, step(1.0, server=times(125.0, 15.0)), LOOP)
    assert text.startswith("unexplained: neither part carries the gap")


def test_a_mean_below_the_curve_must_stay_above_the_bound() -> None:
    near_the_knee = expectation(THREE_SLOTS, 150)
    bound, curve = near_the_knee.prediction.response_bound_ms, near_the_knee.prediction.model_mean_ms
    assert bound < curve
    e = replace(near_the_knee, measured_mean_ms=(bound + curve) / 2)
    text = explain.response_time(e, step(27.0, server=times(110.0, (bound + curve) / 2 - 110)), SYNC)
    assert text.startswith(f"below the model's curve but above its bound ({bound:.0f} ms)")
    below = replace(e, measured_mean_ms=bound / 2)
    assert explain.response_time(below, step(27.0, server=times(110.0, bound / 2 - 110)), SYNC).startswith(
        "unexplained: below even the model's bound"
    )


def test_a_mean_below_a_cpu_bound_model_is_explained_by_less_cpu_per_request() -> None:
    cpu_bound = model.Server(slots=None, cpus=1)  # 1 / 10 ms: 100/s, so 1000 users queue for the core
    e = expectation(cpu_bound, 1000, mean_ms=50.0)
    assert explain.response_time(e, step(130.0, cpu_pct=97.5), LOOP).startswith(
        "its CPU per request in this step was 7.5 ms against the 10.0 ms calibrated"
    )
    as_calibrated = step(97.0, cpu_pct=97.0, server=times(40.0, 10.0))
    assert "CPU per request" not in explain.response_time(e, as_calibrated, LOOP)


def test_a_window_whose_sample_is_not_the_mix_is_explained_by_its_sample() -> None:
    mixed = model.Demand(
        think_s=5.0, mix=(model.RequestClass("page", 4, 0.100, 0.010), model.RequestClass("short", 1, 0.010, 0.002))
    )
    system = model.System(demand=mixed, server=THREE_SLOTS)
    base = expectation(THREE_SLOTS, 5)
    e = replace(
        base,
        prediction=model.predict(system, 5),
        prediction_service_ms=mixed.service_s * 1000,  # 4 x 110 + 12, over 5: 90.4 ms
        class_service_ms=(("page", 4, 110.0), ("short", 1, 12.0)),
        measured_mean_ms=45.0,
    )
    record = step(1.0, server=times(43.0, 2.0))
    record["figures"]["endpoints"] = {"page": {"requests": 3}, "short": {"requests": 5}}  # (330 + 60) / 8 = 48.75 ms
    assert explain.response_time(e, record, SYNC).startswith(
        "the window's requests (3 page, 5 short) are not the scenario's mix: for that sample the model's service time "
        "is 49 ms, not 90 ms"
    )
    record["figures"]["endpoints"] = {"page": {"requests": 8}, "short": {"requests": 2}}  # the mix: no such reason
    assert "not the scenario's mix" not in explain.response_time(e, record, SYNC)


def test_a_rate_above_the_models_capacity_explains_a_much_shorter_mean_near_the_knee() -> None:
    # Three slots of 110 ms: 27.3/s at most. 150 users thinking 5 s near the knee; the step did 28.5/s.
    e = expectation(THREE_SLOTS, 150, rate=28.5, mean_ms=250.0)
    assert e.prediction.bound_by == "slots" and e.prediction.model_mean_ms > 250
    text = explain.response_time(e, step(28.5, server=times(110.0, 140.0)), SYNC)
    assert text.startswith("the step completed 28.5 requests/s, 4% more than the model's capacity of 27.3/s")
    assert f"N / X - Z = {150 / 28.5 * 1000 - 5000:.0f} ms" in text
    below = expectation(THREE_SLOTS, 150, rate=27.0, mean_ms=250.0)  # under the capacity: not this cause
    assert "more than the model's capacity" not in explain.response_time(
        below, step(27.0, server=times(110.0, 140.0)), SYNC
    )
