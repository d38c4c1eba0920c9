"""The report's words for the queueing model: why the highest level came out as it did, and the model beside
every step.

The model itself is :mod:`runner.model` (arithmetic) fed by :mod:`runner.expected` (what goes into it); the view
computes both once per run. This module only says what they show, and claims a reason only where the step's own
numbers support it.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from runner import expected, explain
from runner.numbers import DASH, fmt, fmt_ms, is_number
from runner.store import is_ok
from runner.view import RunView, slots_text

# What runs out when a resource bounds a server, as the report names it.
BOUND_TEXT = {
    "slots": "its slots (requests in service at once)",
    "cpu": "its CPU",
    "database": "the database's capacity",
}


def bound_text(view: RunView, resource: str) -> str:
    """BOUND_TEXT, with the waits' resource named for what the requests wait on: with backend = "http" it is the
    upstream service's capacity (and each process's client pool), not a database's."""
    if resource == "database" and view.config.database.backend == "http":
        return "the upstream's capacity"
    return BOUND_TEXT[resource]


def why(view: RunView, high: int) -> str:
    """Explain the highest level with the queueing model, server by server, claiming only what the numbers support.

    A server whose bounding resource can hold k requests for s seconds each finishes at most k / s requests/s;
    N users thinking Z ask for N / (Z + S). Which of the two is smaller decides whether requests queue.
    """
    parts = []
    offered = None
    for server in view.servers:
        name = server.name
        e = view.expectations.get((name, high))
        step = view.ok_step(name, high)
        if e is None or step is None or e.measured_rps is None:
            continue
        system = view.systems[name]
        p = e.prediction
        offered = p.offered_rps
        station = system.bottleneck
        limit = {
            "slots": f"{station.servers} slot(s) each held ~{station.service_s * 1000:.0f} ms",
            "cpu": f"{station.servers} core(s) at ~{station.service_s * 1000:.1f} ms of CPU per request",
            "database": (
                f"{station.servers} upstream call(s) at once, each held ~{station.service_s * 1000:.0f} ms"
                if view.config.database.backend == "http"
                else f"{station.servers} database connection(s) each held ~{station.service_s * 1000:.0f} ms"
            ),
        }[station.resource]
        text = (
            f"**{name}** can finish at most {system.max_rps:.0f} requests/s ({limit}); its knee is at about "
            f"{system.knee_users:.0f} users"
        )
        if p.bound_by == "users":
            text += f", so at {high} users it serves what they ask: {e.measured_rps:.0f}/s measured"
        else:
            queue = bound_text(view, p.bound_by)
            text += f", so at {high} users requests queue for {queue}: {e.measured_rps:.0f}/s measured"
        text += f" (model {p.model_rps:.0f}/s)."
        cpu = step.get("server_cpu_pct")
        if is_number(cpu):
            if p.bound_by == "slots" and cpu < 60:
                text += f" Its CPU was at {cpu:.0f}%: it was mostly waiting, not working."
            elif cpu >= 70:
                text += f" It used {cpu:.0f}% CPU: CPU is its nearest limit, and latency grows as it approaches it."
        parts.append(text)
    if not parts or offered is None:
        return ""
    return f"**Why, by the queueing model:** {high} users thinking between requests ask for about {offered:.0f}/s. " + (
        " ".join(parts)
    )


def agreement(view: RunView) -> list[str]:
    """How many steps agree with the model on the figure that can disagree at each: the mean response time below
    the knee, throughput and mean past it."""
    measured = [e for key, e in view.expectations.items() if e.efficiency is not None and view.ok_step(*key)]
    below = [e for e in measured if not e.past_knee]
    past = [e for e in measured if e.past_knee]
    mean_tolerance = f"{expected.MEAN_TOLERANCE * 100:.0f}%"
    parts = []
    if below:
        within = sum(1 for e in below if not e.mean_outside)
        parts.append(
            f"below the knee, {within} of {len(below)} steps have a mean response time within {mean_tolerance} of "
            "the model's"
        )
    if past:
        rate = sum(1 for e in past if not e.outside)
        mean = sum(1 for e in past if not e.mean_outside)
        close = sum(1 for e in past if e.mean_ratio is not None and abs(e.mean_ratio - 1) <= 0.10)
        parts.append(
            f"past the knee, {rate} of {len(past)} have a throughput within {expected.TOLERANCE * 100:.0f}% and "
            f"{mean} a mean within {mean_tolerance} ({close} within 10%)"
        )
    if not parts:
        return []
    return [f"**Where the model can be wrong:** {'; '.join(parts)}.", ""]


def _cpu_cell(e: expected.Expectation, step: Mapping[str, Any]) -> str:
    spent = expected.cpu_ms_per_request(step)
    predicted = e.calibration.cpu_per_request_ms if e.calibration.steps else None
    return f"{fmt(spent, 2)} / {fmt(predicted, 2)}"


def cpu_prediction_lines(view: RunView) -> list[str]:
    """How well each step's CPU per request was predicted from the server's other levels: the out-of-sample error,
    over the quiet steps (those a calibration could use) and the busy ones apart, since CPU per request moves
    with load."""
    errors: dict[bool, list[tuple[float, str]]] = {True: [], False: []}
    for (name, users), e in view.expectations.items():
        step = view.ok_step(name, users)
        spent = expected.cpu_ms_per_request(step) if step is not None else None
        cpu = step.get("server_cpu_pct") if step is not None else None
        if spent is None or not e.calibration.steps or not is_number(cpu):
            continue
        quiet = float(cpu) < expected.CALIBRATION_MAX_CPU_PCT
        errors[quiet].append((spent / e.calibration.cpu_per_request_ms * 100 - 100, f"{name} at {users} users"))
    parts = []
    for quiet, label in ((True, "quiet steps (below 70% CPU)"), (False, "busy steps")):
        found = errors[quiet]
        if not found:
            continue
        middle = statistics.median(abs(error) for error, _ in found)
        worst, where = max(found, key=lambda item: abs(item[0]))
        parts.append(f"on {len(found)} {label} the median error was {middle:.0f}%, the largest {worst:+.0f}% ({where})")
    if not parts:
        return []
    return [
        "**CPU per request, predicted from each server's other levels:** " + "; ".join(parts) + ". CPU per request "
        "is not a constant: it tends to fall as load rises, as fixed costs are shared by more requests.",
        "",
    ]


def little_lines(view: RunView) -> list[str]:
    """The consistency check every step must pass: the users' own law, over the step's own figures."""
    limit = expected.LITTLE_TOLERANCE_PCT
    off = [
        f"{name} at {users} users ({e.little_error_pct:+.0f}%)"
        for (name, users), e in view.expectations.items()
        if e.little_off and e.little_error_pct is not None
    ]
    checked = sum(1 for e in view.expectations.values() if e.little_error_pct is not None)
    if not checked:
        return []
    if not off:
        return [
            f"N = X (R + Z), the users' own law over each step's throughput and mean, holds within {limit:.0f}% (or "
            f"within what the window's count allows by chance) at every one of the {checked} steps: the figures "
            "describe N users cycling as configured.",
            "",
        ]
    return [
        f"¶ N = X (R + Z) is off by more than {limit:.0f}%, beyond chance, at {', '.join(off)}: a measurement "
        "problem (users not cycling as configured, or requests missing from the mean), not a property of the server.",
        "",
    ]


def _server_lines(view: RunView) -> list[str]:
    """Each server's model: service time, CPU and where it came from, capacities, bound and knee."""
    lines = []
    top = max(view.users, default=0)
    for server in view.servers:
        name = server.name
        system, calibration = view.systems[name], view.calibrations[name]
        capacities = ", ".join(f"{res} {rps:.0f}/s" for res, rps in system.capacities_rps.items())
        source = (
            f"{calibration.overhead_ms:.1f} ms of framework CPU per request, measured over {calibration.steps} steps"
            if calibration.steps
            else f"{calibration.overhead_ms:.1f} ms of framework CPU per request assumed (no step could measure it)"
        )
        knee = system.knee_users
        beyond = " (beyond this sweep)" if knee > top else ""
        lines.append(
            f"- **{name}** ({slots_text(server)}): a request is in service {system.demand.service_s * 1000:.1f} ms "
            f"on average (S) and needs {system.demand.cpu_s * 1000:.1f} ms of CPU ({source}). Capacity: {capacities}; "
            f"bound by {bound_text(view, system.bottleneck.resource)} at {system.max_rps:.1f} requests/s. "
            f"Knee: about **{knee:.0f} users**{beyond}, where requests start to queue."
        )
    return lines


def model_section(view: RunView) -> list[str]:
    """The queueing model beside every step: each server's capacity, knee and bounding resource, then per step the
    measured and modelled throughput and mean, with any step further than the tolerance explained."""
    lines = ["## What the queueing model expects", ""]
    lines.append(
        f"A closed loop of N users thinking {view.config.load.think_mean_s:g} s on average (Z) between requests. "
        "Waits come from the scenario; CPU per request is the app's work plus the framework's cost, measured by the "
        "service-demand law (CPU seconds / requests) over the server's steps below "
        f"{expected.CALIBRATION_MAX_CPU_PCT:.0f}% CPU, so "
        "where the CPU is the limit the throughput is still a prediction. Throughput can be no more than "
        "min(N / (S + Z), capacity); the dashed curves in the charts are the exact finite-population (M/M/k//N) "
        "solution for the bounding resource. Real waits vary less than the model's exponential ones, so "
        "measurements should sit between the curve and the bound."
    )
    lines.append("")
    lines += _server_lines(view)
    lines += [
        "",
        "Each step's model is calibrated on the server's other user levels only, never on the step itself. Below "
        "the knee a closed loop's throughput is N / (R + Z) whatever the server does, so there the figure that can "
        "disagree is the mean response time; past the knee both can.",
        "",
        "| server | users | req/s measured | 95% interval | model req/s | bound by | efficiency | mean | model mean "
        "| mean ÷ model | N = X (R + Z) | CPU ms / request, measured / predicted |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    off_rate: list[str] = []
    off_mean: list[str] = []
    unexplained: list[str] = []
    for n in view.users:
        for server in view.servers:
            e = view.expectations.get((server.name, n))
            step = view.ok_step(server.name, n)
            if e is None or step is None:
                continue
            p = e.prediction
            interval = f"{e.rps_interval[0]:.1f}-{e.rps_interval[1]:.1f}" if e.rps_interval else DASH
            name = f"{server.name} at {n} users"
            rate_mark = mean_mark = ""
            if e.outside:
                rate_mark = " ‡"
                reason = explain.throughput(e, step, server)
                off_rate.append(f"- {name}: {reason}.")
                unexplained += [name] if explain.is_unexplained(reason) else []
            if e.mean_outside:
                mean_mark = " †"
                reason = explain.response_time(e, step, server)
                off_mean.append(f"- {name}: {reason}.")
                unexplained += [name] if explain.is_unexplained(reason) and name not in unexplained else []
            # Requests never answered are missing from the measured mean, which then describes the lucky ones only.
            unanswered = (step.get("figures") or {}).get("unfinished") or 0
            mean = fmt_ms(e.measured_mean_ms) + (f" (+{unanswered} unanswered) §" if unanswered else "")
            little = DASH if e.little_error_pct is None else f"{e.little_error_pct:+.0f}%"
            if e.little_off:
                little += " ¶"
            lines.append(
                f"| {server.name} | {n} | {fmt(e.measured_rps)} | {interval} | {p.model_rps:.1f} | {p.bound_by} "
                f"| {fmt(e.efficiency, 2)}{rate_mark} | {mean} | {fmt_ms(p.model_mean_ms)} "
                f"| {fmt(e.mean_ratio, 2)}{mean_mark} | {little} | {_cpu_cell(e, step)} |"
            )
    lines.append("")
    lines += agreement(view)
    tolerance, mean_tolerance = f"{expected.TOLERANCE * 100:.0f}%", f"{expected.MEAN_TOLERANCE * 100:.0f}%"
    if off_rate:
        lines += [f"‡ throughput further than {tolerance} from the model:", "", *off_rate, ""]
    if off_mean:
        lines += [f"† mean response time further than {mean_tolerance} from the model's:", "", *off_mean, ""]
    if not off_rate and not off_mean:
        lines += [
            f"Every measured step is within {tolerance} of the model's throughput and {mean_tolerance} of its mean "
            "response time.",
            "",
        ]
    if unexplained:
        lines += [f"**Unexplained** (no measured cause matched): {', '.join(unexplained)}.", ""]
    lines += little_lines(view)
    lines += cpu_prediction_lines(view)
    lines.append(
        "The measured mean is the client's: it adds the network, HTTP parsing and Locust's own scheduling to what "
        "the model counts, a few ms per request at low load."
    )
    if any((s.get("figures") or {}).get("unfinished") for s in view.by_level.values() if is_ok(s)):
        lines += [
            "",
            "§ Some requests sent in this step's window were still unanswered when its drain ran out. The measured "
            "mean covers only the answered ones, so it is not comparable with the model's, which averages over "
            "every request: a server that does not serve in arrival order (an event loop picks ready sockets in "
            "no fixed order) answers some requests quickly while others starve.",
        ]
    return [*lines, ""]
