"""The report's sections on the experiments a run may carry besides its sweep: three requests arriving together
(the timeline), the crowd over time (the burst) and slow clients (the slow-client experiment).

Each reads its experiment's saved data through the view and is left out of the report when the run has none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from runner.numbers import DASH, fmt, fmt_ms, is_number
from runner.view import (
    SLOW_STOPPED_BELOW,
    SLOW_UNAFFECTED_MEDIAN,
    SLOW_UNAFFECTED_RPS,
    RunView,
    SlowClientsRun,
    kind_text,
    shown_round,
    slow_client_runs,
)


def timeline_section(view: RunView) -> list[str]:
    """Three requests arriving together, read from the measured timeline (when the run has one)."""
    data = view.timeline
    if data is None:
        return []
    if data.get("error"):
        return ["## Three requests arriving together", "", f"The timeline could not be measured: {data['error']}", ""]
    lines = ["## Three requests arriving together", ""]
    for name, server in data.get("servers", {}).items():
        probes = {p["label"]: p for p in shown_round(server["rounds"])}
        short, pages = probes.get("short"), [p for label, p in probes.items() if label != "short"]
        if not short or not pages:
            continue
        took = (short["received"] - short["sent"]) * 1000
        last_page = max((p["received"] - p["sent"]) * 1000 for p in pages)
        order = "after both pages" if short["received"] > max(p["received"] for p in pages) else "before the pages"
        lines.append(
            f"- **{name}** ({kind_text(server['kind'])}): the short request "
            f"came back {order}, after {took:.0f} ms (the slower page: {last_page:.0f} ms)."
        )
    return [*lines, "", "![Timeline](charts/timeline.png)", ""]


# The fewest requests in the first stage from which its median is a baseline to judge recovery by: 5 users thinking
# 2-8 s send about five requests in 5 s, and whether those were pages or short requests moves their median tenfold.
MIN_BASELINE_REQUESTS = 20


def burst_story(server: Mapping[str, Any]) -> str:
    """One server's burst in a sentence: the median of each stage with how many requests it rests on, and whether
    it recovered, said only when the stage before the crowd had enough requests to be a baseline."""
    stages = server["stages"]
    peak = max(stages, key=lambda s: s["users"])
    parts = [f"median {fmt_ms(s['p50_ms'])} with {s['users']} users ({s['requests']} requests)" for s in stages]
    text = ", then ".join(parts)
    first, after = stages[0], server.get("recovered_after_s")
    if first["requests"] < MIN_BASELINE_REQUESTS:
        return (
            f"{text}; the stage before the {peak['users']} users has too few requests to tell when the server was "
            "back to it"
        )
    if after is None:
        return f"{text}; it had not recovered by the end of the last stage"
    return f"{text}; it was back within twice its first median {after:g} s after the crowd left"


def burst_section(view: RunView) -> list[str]:
    """The burst over time, per stage and server, and how long each server took to recover after the drop."""
    data = view.burst
    if data is None:
        return []
    title = ["## The burst over time", ""]
    if data.get("error"):
        return [*title, f"The burst could not be measured: {data['error']}", ""]
    lines = [
        *title,
        "Each server, fresh, ran these stages one after another, users all arriving (or leaving) within about a "
        "second; figures are over the requests *sent* in each stage, so a stage's queue is charged to it. "
        "Throughput counts requests completed inside the stage.",
        "",
        "| server | users | seconds | n | p50 | p95 | max | req/s | failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    recoveries = []
    for name, server in data.get("servers", {}).items():
        if "error" in server:
            cells = " | ".join([DASH] * 7)
            lines.append(f"| {name} | {cells} | failed: {server['error'].splitlines()[0]} |")
            continue
        for stage in server["stages"]:
            lines.append(
                f"| {name} | {stage['users']} | {stage['end_s'] - stage['start_s']:g} | {stage['requests']} "
                f"| {fmt_ms(stage['p50_ms'])} | {fmt_ms(stage['p95_ms'])} | {fmt_ms(stage['max_ms'])} "
                f"| {fmt(stage['rps'])} | {stage['failures']} |"
            )
        if len(server["stages"]) >= 2:
            recoveries.append(f"- **{name}**: {burst_story(server)}")
        cpu = server.get("client_cpu_pct")
        if is_number(cpu) and cpu > 80:
            recoveries.append(
                f"- **{name}**: the client used {cpu:.0f}% of its core; its latencies are partly the client's."
            )
    lines += ["", *recoveries, "", "![The burst over time](charts/burst.png)", ""]
    return lines


def _closed_text(run: SlowClientsRun) -> str:
    """How many slow connections the server closed itself, and when (seconds after the slow clients began)."""
    if not run.server_closed_s:
        return "0"
    start = run.slow_started_s or 0.0
    first, last = run.server_closed_s[0] - start, run.server_closed_s[-1] - start
    when = f"{first:.1f} s" if math.isclose(first, last, abs_tol=0.05) else f"{first:.1f}-{last:.1f} s"
    return f"{len(run.server_closed_s)} (after {when})"


def _back_text(run: SlowClientsRun) -> str:
    """When every second's median was back near the one before the slow clients, or why that cannot be said."""
    if run.count == 0:
        return DASH
    before = run.phases.get("before") or {}
    if int(before.get("requests", 0)) < MIN_BASELINE_REQUESTS:
        return "too few before"
    if run.recovered_after_s is None:
        return "not by the end"
    return f"{run.recovered_after_s:.1f} s"


def _as_measured(run: SlowClientsRun) -> str:
    rps, median = run.rps_ratio, run.median_ratio
    rps_text = DASH if rps is None else f"{rps * 100:.0f}%"
    median_text = DASH if median is None else f"{median:.1f}x"
    chance = ""
    if rps is not None and rps < 1 and run.drop_within_chance:
        before, during = run.completions("before"), run.completions("during")
        counts = f" ({before[0]} completions before, {during[0]} during)" if before and during else ""
        chance = f", a drop chance alone could make{counts}"
    return f"{run.server} at K = {run.count}: throughput during {rps_text} of before{chance}, median {median_text}"


def _listed(runs: list[SlowClientsRun]) -> str:
    """``a at K = 2, 4; b at K = 4``, grouped by server in the order measured."""
    by_server: dict[str, list[str]] = {}
    for run in runs:
        by_server.setdefault(run.server, []).append(str(run.count))
    return "; ".join(f"{name} at K = {', '.join(counts)}" for name, counts in by_server.items())


def slow_clients_section(view: RunView) -> list[str]:
    """Slow clients against each server: a table per server and K, the rules the sentences are judged by, and
    the servers' own timeouts that decide what a slow client can do."""
    data = view.slow_clients
    if data is None:
        return []
    title = ["## Slow clients", ""]
    if data.get("error"):
        return [*title, f"The slow-client experiment could not be measured: {data['error']}", ""]
    lines = [
        *title,
        f"Each server, fresh for each K, served {data.get('users')} normal users (think time as in the sweep) for "
        f"{data.get('before_s', 0):g} + {data.get('hold_s', 0):g} + {data.get('after_s', 0):g} s; after the first "
        f"{data.get('before_s', 0):g} s, K extra connections sent {data.get('style_text', data.get('style'))}, for "
        f"{data.get('hold_s', 0):g} s, then left. The phases are cut at the slow clients' own measured times: "
        "*before* until the first one connected, *during* until the last one was gone (closed by the harness at the "
        "end of the hold, or earlier by the server), *after* until the normal users stopped. *Before* starts "
        f"{data.get('settle_s', 0):g} s in (at most half-way), once the users' first requests, all sent at once, have "
        "settled into their pace (the longest think time). Throughput counts the "
        "normal users' completions inside a phase; medians and p95 are over the requests sent in it. A failed "
        f"request that took the whole request timeout ({data.get('request_timeout_s', 0):g} s) counts as a timeout. "
        "*Back after*: seconds from the slow clients' leaving until every later second's median stayed within "
        f"{data.get('recovered_within', 2):g}x the median before them.",
        "",
        "| server | K | req/s before | during | after | p50 before | during | after | p95 during | failed (timeouts) "
        "| closed by server | back after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    runs = slow_client_runs(data)
    for run in runs:
        if run.error is not None:
            cells = " | ".join([DASH] * 9)
            lines.append(f"| {run.server} | {run.count} | {cells} | failed: {run.error.splitlines()[0]} |")
            continue
        rps = [fmt(run.figure(p, "rps")) for p in ("before", "during", "after")]
        p50 = [fmt_ms(run.figure(p, "p50_ms")) for p in ("before", "during", "after")]
        lines.append(
            f"| {run.server} | {run.count} | {' | '.join(rps)} | {' | '.join(p50)} | "
            f"{fmt_ms(run.figure('during', 'p95_ms'))} | {run.failures} ({run.timeouts}) | {_closed_text(run)} "
            f"| {_back_text(run)} |"
        )
    judged = [r for r in runs if r.count > 0]
    stopped = [r for r in judged if r.verdict == "stopped"]
    unaffected = [r for r in judged if r.verdict == "unaffected"]
    rest = [r for r in judged if r.verdict in ("slowed", "unknown")]
    failed = [r for r in judged if r.verdict == "failed"]
    lines += [
        "",
        f"- **Stopped** (the normal users' throughput during the slow clients below {SLOW_STOPPED_BELOW * 100:.0f}% "
        f"of before): {_listed(stopped) or 'no server at any K'}.",
        f"- **Unaffected** (median during at most {SLOW_UNAFFECTED_MEDIAN:g}x before and throughput at least "
        f"{SLOW_UNAFFECTED_RPS * 100:.0f}% of before): {_listed(unaffected) or 'no server at any K'}.",
    ]
    if rest:
        lines.append(f"- **Between the two**, as measured: {'; '.join(_as_measured(r) for r in rest)}.")
    if failed:
        lines.append(f"- **Not measured**: {_listed(failed)} (see the table).")
    servers: Mapping[str, Any] = data.get("servers") or {}
    for name, server in servers.items():
        first = next((r.count for r in stopped if r.server == name), None)
        slots = server.get("slots")
        plural = "" if slots == 1 else "s"
        room = "no per-request slot limit" if slots is None else f"at most {slots} request{plural} at once"
        said = "not stopped at any K measured" if first is None else f"first stopped at K = {first}"
        lines.append(f"- **{name}** ({server.get('setup', '')}; {room}): {said}.")
    lines += ["", "The servers' own timeouts and limits that decide what a slow client can do:", ""]
    for name, server in servers.items():
        for limit in server.get("limits", []):
            lines.append(f"- {name}: {limit}")
    return [*lines, "", "![Slow clients](charts/slow_clients.png)", ""]
