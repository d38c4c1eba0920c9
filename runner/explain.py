"""Why a step sits away from the queueing model, from what that step itself measured, or plainly *unexplained*.

A step further from the model than the tolerance on throughput (:data:`runner.expected.TOLERANCE`) or on mean
response time (:data:`runner.expected.MEAN_TOLERANCE`) is given a reason here. Each named cause needs its own
evidence from the step: the client's CPU, the window's count, the interactive response time law, the server's
own ``Server-Timing`` (time in the handler, time waiting for a pooled connection, time outside the handler), the
server's CPU per request, PostgreSQL's busy connections. A step whose numbers match no cause is reported as
:data:`UNEXPLAINED`, with what it measured; so "every step off the model is explained" is a claim that can fail.

The two figures fail differently. Below the knee, a closed loop's throughput is N / (R + Z) whatever the server
does, so it agrees with the model almost by construction; the response time is what can disagree there. Past the
knee both can.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.config import ServerConfig
from runner.expected import (
    CALIBRATION_MAX_CPU_PCT,
    TOLERANCE,
    Expectation,
    cpu_ms_per_request,
)
from runner.numbers import is_finite

UNEXPLAINED = "unexplained"
# A share of requests that waited for a connection from which the pool is named as a queue.
POOL_QUEUE_PCT = 50.0
# The server's CPU from which a core is named as contended.
BUSY_CPU_PCT = 70.0


def server_times(step: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The step's own account of its requests (``figures.server``), or None when its logs did not keep one."""
    server = (step.get("figures") or {}).get("server") or {}
    return server if server.get("timed") and is_finite(server.get("handler_mean_ms")) else None


def _common(e: Expectation, step: Mapping[str, Any]) -> str | None:
    """Causes that make a step's figures partly not the server's, whichever figure is off."""
    if step.get("saturated") == "client":
        return "the client used more than 80% of its core in this step: its latencies and rate are partly its own"
    error = e.little_error_pct
    if error is not None and e.little_off:
        return (
            f"a measurement problem, not a server property: the users' own law N = X (R + Z) is {error:+.0f}% off "
            "for this step (the users Locust ran did not cycle at the measured rate and response time)"
        )
    return None


def _pool_clause(server: Mapping[str, Any]) -> str:
    return (
        f"{server['pool_waited_pct']:.0f}% of requests waited for a connection, {server['pool_mean_ms']:.0f} ms on "
        "average (measured by the server)"
    )


def _pool_queued(server: Mapping[str, Any] | None) -> bool:
    return (
        server is not None
        and is_finite(server.get("pool_waited_pct"))
        and is_finite(server.get("pool_mean_ms"))
        and float(server["pool_waited_pct"]) >= POOL_QUEUE_PCT
    )


def throughput(e: Expectation, step: Mapping[str, Any], spec: ServerConfig) -> str:  # noqa: PLR0911 (a return per cause)
    """Why a step's throughput is more than TOLERANCE from the model, or UNEXPLAINED with what it measured."""
    p = e.prediction
    eff = e.efficiency
    if eff is None:
        return "not measured"
    if e.within_noise and e.rps_interval is not None:
        low, high = e.rps_interval
        return (
            f"the model's {p.model_rps:.2f}/s lies inside this step's own 95% interval ({low:.2f}-{high:.2f}/s): "
            "with so few completions in the window the difference is chance"
        )
    common = _common(e, step)
    if common:
        return common
    server = server_times(step)
    cpu = step.get("server_cpu_pct")
    spent, calibrated = cpu_ms_per_request(step), e.calibration.cpu_per_request_ms
    if eff < 1 and _pool_queued(server) and e.db_connections and e.measured_rps:
        assert server is not None
        pool = e.db_connections
        held = pool / e.measured_rps * 1000
        busy = step.get("db_connections_mean")
        idle = (
            f"; PostgreSQL saw {busy:.1f} of them busy on average, so the pool idled between queries"
            if is_finite(busy) and busy < 0.9 * pool
            else ""
        )
        return (
            f"requests queued for the database pool: {_pool_clause(server)}, and each of the {pool} connections was "
            f"taken for about {held:.0f} ms per request, more than the model's queries{idle}"
        )
    if eff < 1 and server is not None and spec.slots and e.measured_rps:
        held = spec.slots / e.measured_rps * 1000
        handler = float(server["handler_mean_ms"])
        service = e.prediction_service_ms
        if handler > (1 + TOLERANCE) * service:
            contended = f" with the server's CPU at {cpu:.0f}%" if is_finite(cpu) and cpu >= BUSY_CPU_PCT else ""
            return (
                f"the handler took {handler:.0f} ms on average against the model's {service:.0f} ms of service"
                f"{contended}: a slot was held longer than modelled (about {held:.0f} ms per request measured)"
            )
        if held > (1 + TOLERANCE) * handler:
            return (
                f"each of its {spec.slots} slots was held about {held:.0f} ms per request by the measured rate, while "
                f"the handler took {handler:.0f} ms: the slot stays busy for {held - handler:.0f} ms per request "
                "outside the handler, which the model does not count"
            )
    if eff < 1 and spent is not None and spent > (1 + TOLERANCE) * calibrated:
        return (
            f"its CPU per request in this step was {spent:.1f} ms, against the {calibrated:.1f} ms calibrated on its "
            f"quieter steps: its core could serve fewer requests than the model's capacity"
        )
    if eff > 1 and p.bound_by == "cpu" and spent is not None and spent < (1 - TOLERANCE) * calibrated:
        return (
            f"its CPU per request in this step was {spent:.1f} ms, against the {calibrated:.1f} ms calibrated on its "
            f"steps below {CALIBRATION_MAX_CPU_PCT:.0f}% CPU, so its core served more requests than the model's "
            "capacity allows: busy, a server spends less CPU per request (fixed costs shared by more requests), "
            "which a capacity calibrated on quiet steps does not know"
        )
    if eff > 1 and server is not None and float(server["handler_mean_ms"]) < (1 - TOLERANCE) * e.prediction_service_ms:
        return (
            f"the handler took {float(server['handler_mean_ms']):.0f} ms on average against the model's "
            f"{e.prediction_service_ms:.0f} ms of service: requests were served faster than modelled"
        )
    return _unexplained(step, spent, calibrated, server)


def response_time(e: Expectation, step: Mapping[str, Any], spec: ServerConfig) -> str:  # noqa: PLR0911
    """Why a step's mean response time is more than MEAN_TOLERANCE from the model's, or UNEXPLAINED.

    The measured mean is split by the server's own account into *service* (the handler, less its wait for a
    connection) and *queueing* (that wait, plus the time outside the handler: waiting to be taken up, the
    framework, HTTP and the client), and set beside the model's service S and queue R - S. The part that carries
    at least half of the gap is named; its number is the evidence.
    """
    if e.measured_mean_ms is None or e.mean_ratio is None:
        return "not measured"
    common = _common(e, step)
    if common:
        return common
    unanswered = (step.get("figures") or {}).get("unfinished") or 0
    if unanswered:
        return (
            f"{unanswered} requests sent in the window were never answered: the measured mean covers only the "
            "answered ones, so it is not the model's mean over every request"
        )
    spent, calibrated = cpu_ms_per_request(step), e.calibration.cpu_per_request_ms
    if e.prediction.bound_by == "cpu" and spent is not None and spent < (1 - TOLERANCE) * calibrated:
        return (
            f"its CPU per request in this step was {spent:.1f} ms against the {calibrated:.1f} ms calibrated on "
            "quieter steps, so the model's core is slower than this step's and its queue longer than what was measured"
        )
    capacity, rate = e.prediction.throughput_bound_rps, e.measured_rps
    if (
        e.prediction.bound_by != "users"
        and rate is not None
        and rate > capacity
        and e.measured_mean_ms < e.prediction.model_mean_ms
    ):
        think_ms = _think_ms(e)
        law = e.prediction.users / rate * 1000 - think_ms
        return (
            f"the step completed {rate:.1f} requests/s, {rate / capacity - 1:.0%} more than the model's capacity of "
            f"{capacity:.1f}/s; with users thinking {think_ms / 1000:g} s on average, the mean response time the "
            f"users' law gives for the measured rate (N / X - Z = {law:.0f} ms) moves {think_ms / max(law, 1.0):.0f} "
            "times as much as the rate does, so a capacity a few percent low makes the modelled mean far too long"
        )
    sampled = _sample_service_ms(e, step)
    shift = (sampled or 0.0) - e.prediction_service_ms
    gap_ms = e.measured_mean_ms - e.prediction.model_mean_ms
    if sampled is not None and shift * gap_ms > 0 and abs(shift) >= abs(gap_ms) / 2:
        counts = ", ".join(f"{n} {name}" for name, n in _class_counts(step).items())
        return (
            f"the window's requests ({counts}) are not the scenario's mix: for that sample the model's service time "
            f"is {sampled:.0f} ms, not {e.prediction_service_ms:.0f} ms"
        )
    server = server_times(step)
    if server is None:
        return f"{UNEXPLAINED}: this run's request logs do not carry the server's own times, so nothing splits the gap"
    measured, modelled = e.measured_mean_ms, e.prediction.model_mean_ms
    service_model = e.prediction_service_ms
    queue_model = max(0.0, modelled - service_model)
    pool = float(server["pool_mean_ms"]) if is_finite(server.get("pool_mean_ms")) else 0.0
    service = float(server["handler_mean_ms"]) - pool
    outside = float(server["outside_mean_ms"])
    queue = outside + pool
    gap = measured - modelled
    split = (
        f"measured {service:.1f} ms of service and {queue:.1f} ms waiting ({outside:.1f} ms outside the handler, "
        f"{pool:.1f} ms for a connection), against the model's {service_model:.1f} ms and {queue_model:.1f} ms"
    )
    cpu = step.get("server_cpu_pct")
    if gap > 0:
        if service - service_model >= gap / 2:
            contended = f"; the server's CPU was at {cpu:.0f}%" if is_finite(cpu) and cpu >= BUSY_CPU_PCT else ""
            return f"the handler's own time was longer than the model's service: {split}{contended}"
        if queue - queue_model >= gap / 2:
            where = "for a connection" if pool >= outside else "outside the handler"
            return f"requests waited longer than the model queues, most of it {where}: {split}"
        return f"{UNEXPLAINED}: neither part carries the gap: {split}"
    bound = e.prediction.response_bound_ms
    if measured >= bound:
        return (
            f"below the model's curve but above its bound ({bound:.0f} ms): {split}; the model's exponential service "
            "times queue more than these steadier waits, as its section says"
        )
    return f"{UNEXPLAINED}: below even the model's bound of {bound:.0f} ms: {split}"


def _think_ms(e: Expectation) -> float:
    """The users' mean think time Z in ms, from the prediction: N / offered = S + Z."""
    p = e.prediction
    return (p.users / p.offered_rps - e.prediction_service_ms / 1000) * 1000 if p.offered_rps > 0 else 0.0


def _class_counts(step: Mapping[str, Any]) -> dict[str, int]:
    endpoints = (step.get("figures") or {}).get("endpoints") or {}
    return {name: int(data.get("requests") or 0) for name, data in endpoints.items() if isinstance(data, Mapping)}


def _sample_service_ms(e: Expectation, step: Mapping[str, Any]) -> float | None:
    """The model's service time re-weighed by the request classes the window's sample actually held (a low level
    has a dozen requests, and whether three or one of them were short requests moves its mean by tens of ms)."""
    counts = _class_counts(step)
    total = sum(counts.get(name, 0) for name, _, _ in e.class_service_ms)
    if not e.class_service_ms or total == 0:
        return None
    return sum(counts.get(name, 0) * service for name, _, service in e.class_service_ms) / total


def _unexplained(
    step: Mapping[str, Any], spent: float | None, calibrated: float, server: Mapping[str, Any] | None
) -> str:
    """No named cause matched: say so, with what the step did measure."""
    facts = []
    cpu = step.get("server_cpu_pct")
    if is_finite(cpu):
        facts.append(f"server CPU {cpu:.0f}%")
    if spent is not None:
        facts.append(f"CPU per request {spent:.1f} ms against {calibrated:.1f} ms calibrated")
    if server is not None:
        facts.append(f"handler {float(server['handler_mean_ms']):.0f} ms")
        if is_finite(server.get("pool_waited_pct")):
            facts.append(f"{float(server['pool_waited_pct']):.0f}% waited for a connection")
    else:
        facts.append("no server times in this run's logs")
    return f"{UNEXPLAINED} ({', '.join(facts)})" if facts else UNEXPLAINED


def is_unexplained(reason: str) -> bool:
    return reason.startswith(UNEXPLAINED)
