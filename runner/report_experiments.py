"""The report's sections on the two experiments a run may carry besides its sweep: three requests arriving
together (the timeline) and the crowd over time (the burst).

Each reads its experiment's saved data through the view and is left out of the report when the run has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.numbers import DASH, fmt, fmt_ms, is_number
from runner.view import RunView, kind_text, shown_round


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
