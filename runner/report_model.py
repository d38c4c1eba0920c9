"""The report's words for the queueing model: why the highest level came out as it did, and the model beside
every step.

The model itself is :mod:`runner.model` (arithmetic) fed by :mod:`runner.expected` (what goes into it); the view
computes both once per run. This module only says what they show, and claims a reason only where the step's own
numbers support it.
"""

from __future__ import annotations

from runner import expected
from runner.numbers import DASH, fmt, fmt_ms, is_number
from runner.view import RunView, is_ok, slots_text

# What runs out when a resource bounds a server, as the report names it.
BOUND_TEXT = {
    "slots": "its slots (requests in service at once)",
    "cpu": "its CPU",
    "database": "the database's capacity",
}


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
            "database": f"{station.servers} database connection(s) each held ~{station.service_s * 1000:.0f} ms",
        }[station.resource]
        text = (
            f"**{name}** can finish at most {system.max_rps:.0f} requests/s ({limit}); its knee is at about "
            f"{system.knee_users:.0f} users"
        )
        if p.bound_by == "users":
            text += f", so at {high} users it serves what they ask: {e.measured_rps:.0f}/s measured"
        else:
            text += f", so at {high} users requests queue for {BOUND_TEXT[p.bound_by]}: {e.measured_rps:.0f}/s measured"
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
            f"bound by {BOUND_TEXT[system.bottleneck.resource]} at {system.max_rps:.1f} requests/s. "
            f"Knee: about **{knee:.0f} users**{beyond}, where requests start to queue."
        )
    lines += [
        "",
        "| server | users | req/s measured | 95% interval | model req/s | bound by | efficiency | mean | model mean |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    outside = []
    for n in view.users:
        for server in view.servers:
            e = view.expectations.get((server.name, n))
            step = view.ok_step(server.name, n)
            if e is None or step is None:
                continue
            p = e.prediction
            interval = f"{e.rps_interval[0]:.1f}-{e.rps_interval[1]:.1f}" if e.rps_interval else DASH
            mark = ""
            if e.outside:
                mark = " ‡"
                outside.append(f"- {server.name} at {n} users: {expected.explain(e, step, server)}.")
            # Requests never answered are missing from the measured mean, which then describes the lucky ones only.
            unanswered = (step.get("figures") or {}).get("unfinished") or 0
            mean = fmt_ms(e.measured_mean_ms) + (f" (+{unanswered} unanswered) §" if unanswered else "")
            lines.append(
                f"| {server.name} | {n} | {fmt(e.measured_rps)} | {interval} | {p.model_rps:.1f} | {p.bound_by} "
                f"| {fmt(e.efficiency, 2)}{mark} | {mean} | {fmt_ms(p.model_mean_ms)} |"
            )
    lines.append("")
    tolerance = f"{expected.TOLERANCE * 100:.0f}%"
    if outside:
        lines += [f"‡ further than {tolerance} from the model:", "", *outside, ""]
    else:
        lines += [f"Every measured step is within {tolerance} of the model's throughput.", ""]
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
