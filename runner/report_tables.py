"""The report's tables: the figures per user level, per endpoint, the resources of every step, and the spread over
repeats.

Each table is built from the run's view alone; a row per user level shows one record per server (with repeats,
the combined one of :mod:`runner.repeats`), so a figure here is the figure in ``summary.csv`` and in the charts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runner import repeats
from runner.expected import cpu_ms_per_request
from runner.numbers import DASH, STEAL_HEAD, fmt, fmt_ms, fmt_steal, is_finite, ratio
from runner.stats import POOL_WAITED_MS
from runner.store import is_ok
from runner.view import RunView


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _head(cells: list[str]) -> list[str]:
    """A header row and its separator, every column left to the markdown renderer's default alignment."""
    return [_row(cells), "|" + "---|" * len(cells)]


def results_table(view: RunView) -> list[str]:
    """Per user level, each server's throughput and response times, and async against sync where both ran."""
    sync, asyn = view.pair
    head = ["users"]
    for s in view.servers:
        head += [f"{s.name} req/s", "n", "p50", "p95", "p99", "max", "fail"]
    if sync and asyn:
        head += ["req/s async÷sync", "p50 sync÷async", "p95 sync÷async"]
    rows = _head(head)
    for n in view.users:
        cells = [str(n)]
        for s in view.servers:
            step = view.step(s.name, n)
            if step is None or not is_ok(step):
                cells += ["missing" if step is None else "failed", "", "", "", "", "", ""]
                continue
            f, lat = step["figures"], step["figures"]["latency"]
            mark = " †" if step.get("saturated") == "client" else ""
            fails = f"{lat['failures']}" + (f" (+{f['unfinished']} unfinished)" if f.get("unfinished") else "")
            cells += [
                fmt(f["rps"]) + mark,
                str(lat.get("requests", "")),
                fmt_ms(lat["p50_ms"]),
                fmt_ms(lat["p95_ms"]),
                fmt_ms(lat["p99_ms"]),
                fmt_ms(lat["max_ms"]),
                fails,
            ]
        if sync and asyn:
            a, b = view.ok_step(asyn.name, n), view.ok_step(sync.name, n)
            if a is not None and b is not None:
                cells += [
                    ratio(a["figures"]["rps"], b["figures"]["rps"]),
                    ratio(b["figures"]["latency"]["p50_ms"], a["figures"]["latency"]["p50_ms"]),
                    ratio(b["figures"]["latency"]["p95_ms"], a["figures"]["latency"]["p95_ms"]),
                ]
            else:
                cells += ["", "", ""]
        rows.append(_row(cells))
    return rows


def endpoint_table(view: RunView) -> list[str]:
    """Per user level, the page's and the short request's p50 and p95 on each server."""
    rows = _head(["users"] + [f"{s.name} {e} p50 / p95" for s in view.servers for e in ("page", "short")])
    for n in view.users:
        cells = [str(n)]
        for s in view.servers:
            step = view.ok_step(s.name, n)
            for endpoint in ("page", "short"):
                data = step["figures"]["endpoints"].get(endpoint) if step else None
                cells.append(f"{fmt_ms(data['p50_ms'])} / {fmt_ms(data['p95_ms'])}" if data else DASH)
        rows.append(_row(cells))
    return rows


def resource_table(view: RunView) -> list[str]:
    """Every measured step record (each repeat its own): CPU, memory and how its window ended."""
    head = ["server", "users", "client CPU %", "server CPU %", "server RSS MB", "server PSS MB", "drained",
            "unfinished", "first-burst max", "Locust p95 (cross-check)", "saturated"]  # fmt: skip
    repeated = view.planned_repeats > 1
    if repeated:
        head.insert(2, "repeat")
    real = view.config.database.backend == "postgres"
    if real:
        head += ["server CPU ms / request", "database CPU %", "DB connections busy max / mean", "DB connections open"]
    upstream = view.config.database.backend == "http"
    if upstream:
        # The upstream service runs on the client's cores (runner/upstream.py): its CPU is the client side's too.
        head += ["server CPU ms / request", "upstream CPU %"]
    # The VM's steal per core over each step, where the run recorded it: time the hypervisor took from the cores
    # the server and the client were pinned to.
    steal = any(fmt_steal(step.get("steal_s")) != DASH for step in view.records)
    if steal:
        head.append(STEAL_HEAD)
    rows = _head(head)
    for step in view.records:
        if not is_ok(step):
            continue
        f = step["figures"]
        database = (
            [
                fmt(cpu_ms_per_request(step), 2),
                fmt(step.get("db_cpu_pct"), 0),
                f"{fmt(step.get('db_connections_max'), 0)} / {fmt(step.get('db_connections_mean'), 1)}",
                fmt(step.get("db_connections_total_max"), 0),
            ]
            if real
            else [fmt(cpu_ms_per_request(step), 2), fmt(step.get("upstream_cpu_pct"), 0)]
            if upstream
            else []
        )
        rows.append(
            _row(
                [
                    step["server"],
                    str(step["users"]),
                    *([str(repeats.repeat_of(step))] if repeated else []),
                    fmt(f.get("client_cpu_pct"), 0),
                    fmt(step.get("server_cpu_pct"), 0),
                    fmt(step.get("server_rss_mb"), 0),
                    fmt(step.get("server_pss_mb"), 0),
                    str(f.get("drained", "")),
                    str(f.get("unfinished", "")),
                    fmt_ms(f.get("burst_max_ms")),
                    fmt_ms((f.get("locust") or {}).get("p95_ms")),
                    step.get("saturated") or "",
                    *database,
                    *([fmt_steal(step.get("steal_s"), compact=True)] if steal else []),
                ]
            )
        )
    return rows


def time_split_table(view: RunView) -> list[str]:
    """Every measured step record: where its requests' time went, by the server's own ``Server-Timing``. Nothing
    for a run whose request logs did not keep it (runs from before they did)."""
    timed = [step for step in view.records if is_ok(step) and (step["figures"].get("server") or {}).get("timed")]
    if not timed:
        return []
    repeated = view.planned_repeats > 1
    head = ["server", "users", *(["repeat"] if repeated else []), "response mean (client)", "in the handler mean",
            "outside the handler mean / p95", "pool wait mean / p95", "waited for a connection"]  # fmt: skip
    rows = [
        "### Where the time went",
        "",
        "From each answered request's `Server-Timing`: *in the handler* is the app's own time (its queries, their "
        "wait for a pooled connection, its Python work); *outside the handler* is the rest of what the client saw: "
        "waiting for a worker, a thread or the event loop to take the request up, the framework, HTTP and the "
        f"client. *Waited for a connection* is the share of requests that waited {POOL_WAITED_MS:g} ms or more for "
        "one (a free connection takes microseconds).",
        "",
        *_head(head),
    ]
    for step in timed:
        server = step["figures"]["server"]
        rows.append(
            _row(
                [
                    step["server"],
                    str(step["users"]),
                    *([str(repeats.repeat_of(step))] if repeated else []),
                    fmt_ms((step["figures"].get("latency") or {}).get("mean_ms")),
                    fmt_ms(server.get("handler_mean_ms")),
                    f"{fmt_ms(server.get('outside_mean_ms'))} / {fmt_ms(server.get('outside_p95_ms'))}",
                    f"{fmt_ms(server.get('pool_mean_ms'))} / {fmt_ms(server.get('pool_p95_ms'))}",
                    f"{fmt(server.get('pool_waited_pct'), 0)}%" if is_finite(server.get("pool_waited_pct")) else DASH,
                ]
            )
        )
    return [*rows, ""]


def spread_section(view: RunView) -> list[str]:
    """Per (server, users), how far the repeats of a step disagreed; nothing for a run without repeats."""
    planned = view.planned_repeats
    if planned <= 1:
        return []
    groups = view.groups
    flag = f"⚠ >{repeats.FLAG_SPREAD_PCT:g}%"
    head = ["server", "users", "n", "req/s min / median / max", "spread", "p50 min / median / max", "spread",
            "p95 min / median / max", "spread", "flag"]  # fmt: skip
    lines = [
        "### Spread over repeats",
        "",
        f"Each step was measured {planned} times, each time with a fresh server and Locust run. `n` is how many of "
        "them measured it; min / median / max are over those, and the spread is (max − min) / median. The tables "
        "and charts above show the medians.",
        "",
        _row(head),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]

    def cells(group: repeats.Group | None, metric: str, text: Callable[[Any], str]) -> list[str]:
        span = group.spread.get(metric) if group is not None else None
        if span is None:
            return [DASH, DASH]
        pct = span["spread_pct"]
        return [" / ".join(text(span[k]) for k in ("min", "median", "max")), DASH if pct is None else f"{pct:.1f}%"]

    for users in view.users:
        for server in view.servers:
            group = groups.get((server.name, int(users)))
            measured = len(group.measured) if group is not None else 0
            row = [server.name, str(users), str(measured) if measured == planned else f"{measured} of {planned}"]
            row += cells(group, "rps", fmt) + cells(group, "p50_ms", fmt_ms) + cells(group, "p95_ms", fmt_ms)
            row.append(flag if group is not None and group.flagged else "")
            lines.append(_row(row))
    lines += [
        "",
        f"**{flag}** marks a step whose throughput or median response time differed by more than "
        f"{repeats.FLAG_SPREAD_PCT:g}% between its repeats: the machine, not just the sample, moved that much, so "
        "at that level a difference between servers smaller than the spread is not established by this run. "
        "p95's spread is shown but not flagged: it rests on the slowest twentieth of a window's requests, whose "
        "own sampling noise often exceeds that much.",
        "",
    ]
    if not any(group.flagged for group in groups.values()):
        lines += [
            f"No step's repeats differed by more than {repeats.FLAG_SPREAD_PCT:g}% in throughput or median "
            "response time.",
            "",
        ]
    return lines
