"""The report's sections on open arrivals: latency against offered load, the capacity within the target, and the
closed loop's percentiles beside the open loop's at the same throughput.

Each reading states a rule that could have come out the other way and applies it to every server in the table:

* **Where p99 leaves the target**: the lowest measured rate whose p99 over every arrival (a lost one slower than
  any answer) is over the target, between the last rate that passed and it; against the model's capacity under
  the target, which either falls in that interval or does not, and the report says which. A step whose load
  generator fell behind is read only where its lateness cannot decide it (``OpenStep.over_target``): a p99 within
  the target, or over it by more than twice the generator's largest lateness; the others are named, not read.
* **What the closed loop hid**: for each closed step, the open step whose rate is within ``SAME_LOAD`` of what the
  closed step's users ask for, ``N / (S + Z)`` (the model's offered load: below the knee that is the closed step's
  throughput; past it the users ask for more than the server completes, and the closed loop slows them down where
  open arrivals would queue). The closed loop "hid the queue" when the open p95 (from the scheduled start) is above
  the closed p95's 95% interval, "overstated it" when below, and agrees otherwise. The rule is on the p95 because
  that is the highest percentile a closed step keeps an interval for. Where the open step's generator fell behind,
  "hid the queue" needs the open p95 above the interval by more than twice the generator's largest lateness (which
  only adds to the open loop's latencies); short of that the pair is "not read".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.numbers import DASH, STEAL_HEAD, fmt, fmt_ms, fmt_steal, is_finite
from runner.open_view import Capacity, OpenServer, OpenStep, capacities, open_servers
from runner.open_view import headline as capacity_headline_text
from runner.store import is_ok
from runner.view import RunView

# An open step carries "the same load" as a closed step when its rate is within this share of what the closed step's
# users ask for: near enough that the server is asked as much, far enough apart that a sweep of a handful of rates
# finds a partner for most closed steps.
SAME_LOAD = 0.15
# A closed step's pair whose verdict hangs on the open step's load generator.
NOT_READ = "not read: the load generator fell behind"
# A capacity probe's verdict as the report says it: None is a window whose load generator fell behind, measured again.
VERDICT = {True: "pass", False: "fail", None: "inconclusive"}


def capacity_headline(view: RunView) -> list[str]:
    """The line that heads the report when the run searched for each server's capacity."""
    data = view.capacity
    if data is None:
        return []
    if data.get("error"):
        return [f"> **Capacity:** the search could not run: {str(data['error']).splitlines()[0]}", ""]
    return [f"> **{capacity_headline_text(data)}**", ""]


def _lost(step: OpenStep) -> str:
    f = step.figures
    parts = [f"{f.get(key)} {word}" for key, word in (("failed", "failed"), ("dropped", "dropped"),
             ("unfinished", "unanswered")) if f.get(key)]  # fmt: skip
    return ", ".join(parts) if parts else "0"


def _model_cell(server: OpenServer, rate: float, key: str) -> str:
    point = server.model_at(rate)
    return fmt_ms(point.get(key)) if point else "unstable"


def open_table(server: OpenServer) -> list[str]:
    """One server's open steps: offered load, throughput, latency from the schedule and from the send, losses,
    the generator's own lateness and the model beside them."""
    steal = any(fmt_steal(step.record.get("steal_s")) != DASH for step in server.steps)
    lines = [
        f"**{server.name}** ({server.setup}):",
        "",
        "| rate asked | offered | completed/s | p50 | p99 | p99 from send | lost | generator p99 | model p50 | "
        "model p99 | server CPU |" + (f" {STEAL_HEAD} |" if steal else ""),
        "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|" + ("---|" if steal else ""),
    ]
    for step in server.steps:
        if not step.ok:
            first = (step.record.get("error") or "failed").splitlines()[0]
            lines.append(f"| {step.rate:g} | failed: {first} |" + " |" * (10 if steal else 9))
            continue
        flag = " ‡" if step.generator_behind else ""
        cpu = step.record.get("server_cpu_pct")
        lines.append(
            f"| {step.rate:g}{flag} | {fmt(step.figure('offered_rps'))} | {fmt(step.figure('rps'))} | "
            f"{fmt_ms(step.latency('p50_ms'))} | {fmt_ms(step.latency('p99_ms'))} | "
            f"{fmt_ms(step.latency('p99_ms', 'sent'))} | {_lost(step)} | "
            f"{fmt_ms(step.figures.get('generator_p99_ms'))} | "
            f"{_model_cell(server, step.rate, 'p50_ms')} | {_model_cell(server, step.rate, 'p99_ms')} | "
            f"{fmt(cpu, 0) + '%' if is_finite(cpu) else DASH} |"
            + (f" {fmt_steal(step.record.get('steal_s'), compact=True)} |" if steal else "")
        )
    # What may have stalled the client's core in a step whose generator fell behind (recorded since steal_s was).
    behind = [
        f"‡ {s.rate:g}/s: the VM's steal over the step: {fmt_steal(s.record.get('steal_s'))}."
        for s in server.steps
        if s.generator_behind and fmt_steal(s.record.get("steal_s")) != DASH
    ]
    if behind:
        lines += ["", *behind]
    return [*lines, ""]


def leaves_text(server: OpenServer, slo: float) -> str:
    """Where one server's p99 leaves the target, measured and by the model, and whether the two agree; steps whose
    verdict hangs on their load generator are left out of both ends and named."""
    ok = [s for s in server.steps if s.over_target(slo) is not None]
    first_over = server.leaves_target(slo)
    model_cap = server.model.get("slo_capacity_rps")
    bottleneck = server.model.get("bottleneck", "?")
    capacity = server.model.get("capacity_rps")
    model_text = (
        f"the model puts it at {fmt(model_cap)} requests/s, its {bottleneck} saturating at {fmt(capacity)}"
        if is_finite(model_cap)
        else "the model says no rate meets the target"
    )
    untold = server.untold(slo)
    skipped = (
        " Not read: "
        + "; ".join(
            f"{s.rate:g} requests/s (p99 {fmt_ms(s.figures.get('p99_all_ms'))}, its load generator up to "
            f"{fmt_ms(s.generator_max_ms)} late: enough to decide it)"
            for s in untold
        )
        + "."
        if untold
        else ""
    )
    if not ok:
        return f"**{server.name}**: no rate was measured." + skipped
    if first_over is None:
        return (
            f"**{server.name}** kept p99 within {slo:g} ms at every rate measured, up to {ok[-1].rate:g} requests/s; "
            f"{model_text}"
            + (". The model agrees: that is above every rate measured." if not is_finite(model_cap)
               or model_cap >= ok[-1].rate else ", below the highest rate measured: the model is pessimistic here.")
            + skipped
        )  # fmt: skip
    below = [s for s in ok if s.rate < first_over.rate]
    low = below[-1].rate if below else 0.0
    p99 = first_over.figures.get("p99_all_ms")
    lost = first_over.figures.get("p99_all_lost")
    over = f"{fmt(first_over.figure('lost_pct'))}% of arrivals lost" if lost else f"p99 {fmt_ms(p99)}"
    if is_finite(model_cap) and low <= model_cap <= first_over.rate:
        verdict = "inside that interval: the model agrees"
    elif is_finite(model_cap):
        side = "above" if model_cap > first_over.rate else "below"
        verdict = f"{side} that interval: the model and the measurement disagree"
    else:
        verdict = "while the measurement found rates within the target: they disagree"
    return (
        f"**{server.name}** leaves the target between {low:g} and {first_over.rate:g} requests/s ({over} at "
        f"{first_over.rate:g}); {model_text}, {verdict}." + skipped
    )


@dataclass(frozen=True)
class SameLoad:
    """A closed step and the open step whose rate is nearest what the closed step's users ask for (within
    SAME_LOAD), with what the closed loop's p95 did to the queue: "hid the queue", "overstated it", "agrees,
    within chance", NOT_READ where the open step's generator fell behind by enough to decide it, or None without
    the closed p95's interval."""

    closed: Mapping[str, Any]
    asked_rps: float  # N / (S + Z): what the closed step's users ask for
    open: OpenStep
    judged: str | None

    @property
    def users(self) -> int:
        return int(self.closed["users"])

    def closed_latency(self, key: str) -> float | None:
        value = self.closed["figures"]["latency"].get(key)
        return float(value) if is_finite(value) else None


def same_load(view: RunView, server: OpenServer) -> list[SameLoad]:
    """Every closed step of ``server`` that has an open partner at the same load, by user level."""
    pairs = []
    for record in sorted(view.records, key=lambda r: int(r["users"])):
        if record["server"] != server.name or not is_ok(record):
            continue
        expectation = view.expectations.get((server.name, int(record["users"])))
        if expectation is None:
            continue
        asked = expectation.prediction.offered_rps
        partners = [s for s in server.steps if s.ok and abs(s.rate - asked) <= SAME_LOAD * asked]
        if not partners:
            continue
        step = min(partners, key=lambda s: abs(s.rate - asked))
        interval = record["figures"]["latency"].get("p95_ci_ms")
        open_p95 = step.latency("p95_ms")
        judged = None
        if interval and open_p95 is not None:
            # The generator's lateness only adds to the open loop's latencies: an open p95 above the interval says
            # the closed loop hid the queue only when it is above by more than the generator can have added.
            if open_p95 - step.generator_added_ms > interval[1]:
                judged = "hid the queue"
            elif open_p95 > interval[1]:
                judged = NOT_READ
            elif open_p95 < interval[0]:
                judged = "overstated it"
            else:
                judged = "agrees, within chance"
        pairs.append(SameLoad(record, asked, step, judged))
    return pairs


def hidden_rows(view: RunView, server: OpenServer) -> list[str]:
    """Closed steps beside the open step at the same load: what the users asked for and got, the closed loop's p95
    and p99, the open loop's from the schedule with what it lost, and the p95 judged against the closed p95's
    interval."""
    rows = [
        f"| {pair.users} | {fmt(pair.asked_rps)} | {fmt(pair.closed['figures']['rps'])} | "
        f"{fmt_ms(pair.closed_latency('p95_ms'))} | {fmt_ms(pair.closed_latency('p99_ms'))} | {pair.open.rate:g} | "
        f"{fmt(pair.open.figure('rps'))} | {fmt_ms(pair.open.latency('p95_ms'))} | "
        f"{fmt_ms(pair.open.latency('p99_ms'))} | {fmt(pair.open.figure('lost_pct'))}% | {pair.judged or DASH} |"
        for pair in same_load(view, server)
    ]
    if not rows:
        return []
    return [
        f"**{server.name}**:",
        "",
        "| users (closed) | asked/s | completed/s | closed p95 | closed p99 | open rate | completed/s | open p95 | "
        "open p99 | open lost | closed loop |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
    ]


def open_section(view: RunView) -> list[str]:
    """Open arrivals, when the run measured them."""
    data = view.open
    if data is None:
        return []
    title = "## Open arrivals: latency against offered load"
    if data.get("error"):
        return [title, "", f"The open arrivals could not be measured: {str(data['error']).splitlines()[0]}", ""]
    slo = float(data.get("slo_p99_ms") or view.config.load.slo_p99_ms)
    servers = open_servers(data)
    lines = [
        title,
        "",
        f"Requests arrive at a set rate whatever the server does ({data.get('process')} arrivals), taken by a pool of "
        f"up to {data.get('max_users')} Locust users; an arrival that no user could send within "
        f"{fmt(data.get('max_lateness_s'))} s is dropped and counted. Latency is counted from each request's "
        "**scheduled** start, which is what a visitor waits; the p99 from the actual send, what a closed-loop tool "
        f"reports, is beside it. Each step is a fresh server, a warm-up and a {fmt(data.get('measure_s'))} s window. "
        "The model is M/G/k (Allen-Cunneen) on each server's bottleneck with the request classes' own times "
        "(runner/open_model.py), calibrated on the server's own open steps. ‡ the load generator fell behind its "
        "schedule (over 1% of its arrivals, and more than one, handed out over 20 ms late): the client, not the "
        "server, limited that step.",
        "",
        "![Latency against offered load](charts/open_latency.png)",
        "",
        *[leaves_text(server, slo) + "\n" for server in servers],
    ]
    for server in servers:
        lines += open_table(server)
    if view.records:
        hidden = [row for server in servers for row in hidden_rows(view, server)]
        if hidden:
            lines += [
                "### What the closed loop hid",
                "",
                f"Each closed step beside the open step whose rate is within {SAME_LOAD:.0%} of what the closed "
                "step's users ask for (N / (S + Z), the model's offered load): below the knee that is the closed "
                "step's throughput; past it the users ask for more than the server completes, and the closed loop "
                "slows them down where open arrivals queue (and, past the pool, are dropped). The closed loop **hid "
                "the queue** where the open p95 (from the scheduled start) is above the 95% interval of the closed "
                "p95, and **overstated it** where below; otherwise they agree within chance.",
                "",
                *hidden,
            ]
    return lines


def capacity_section(view: RunView) -> list[str]:
    """The capacity search, when the run made one: each server's number, the bracket it started from, and how the
    measurements narrowed it."""
    data = view.capacity
    if data is None or data.get("error"):
        return []
    slo = float(data.get("slo_p99_ms") or view.config.load.slo_p99_ms)
    lines = [
        "## Capacity within the target",
        "",
        f"The highest rate of open arrivals each server sustained with p99 from the scheduled start within {slo:g} ms "
        f"over a full {fmt(data.get('measure_s'))} s window, a failed, dropped or unanswered arrival counting as "
        "slower than any answer. The search started from a bracket around the model's capacity (CPU per request "
        f"at its fallback), checked both ends by measurement, narrowed to {data.get('resolution', 0.1):.0%} and "
        "confirmed the answer with a second fresh measurement (runner/capacity.py).",
        "",
        "| server | capacity | confirmed | model | bracket | inside the bracket | probes |",
        "|---|---:|---|---:|---|---|---:|",
    ]
    found: list[Capacity] = capacities(data)
    for c in found:
        bracket = f"{fmt(c.bracket[0])}-{fmt(c.bracket[1])}" if c.bracket else DASH
        inside = {True: "yes", False: "no", None: DASH}[c.within_bracket]
        number = fmt(c.capacity_rps) if c.capacity_rps is not None else DASH
        lines.append(
            f"| {c.server} | {number} | {'yes' if c.confirmed else 'no: ' + (c.bound or '')} | "
            f"{fmt(c.model_capacity_rps)} | {bracket} | {inside} | {len(c.probes)} |"
        )
    lines.append("")
    for c in found:
        steps = "; ".join(f"{p['rate']:.1f} {VERDICT[p['passed']]} ({p['purpose']}: {p['why']})" for p in c.probes)
        lines.append(f"- {c.server}: {steps}.")
    return [*lines, ""]
