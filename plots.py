"""Charts and report from a run's saved data alone: ``python plots.py results/<run>``.

Everything here reads ``run.json`` through the store's loader, so a run can be redrawn on any machine, long after
it was measured, and a chart can never show a number that is not in the saved data.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display here, and none needed

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from runner import expected, files, html_report, model, report, store

SYNC_COLOURS = ("#d95f02", "#e6ab02", "#a6761d", "#e7298a")
ASYNC_COLOURS = ("#1b9e77", "#7570b3", "#66a61e", "#386cb0")
PERCENTILE_NOTE = "Requests sent in each measured window; exact times of successful requests; p95 needs 20 requests."


def server_colours(run: dict[str, Any]) -> dict[str, str]:
    return _kind_colours([(server["name"], {"kind": report.kind_of(server)}) for server in run["config"]["servers"]])


def _latency(step: dict[str, Any] | None, endpoint: str | None) -> dict[str, Any] | None:
    if step is None or step.get("status") != "ok":
        return None
    figures = step["figures"]
    data = figures["latency"] if endpoint is None else figures["endpoints"].get(endpoint)
    if not data or not report.is_finite(data.get("p50_ms")):
        return None
    return dict(data)


def _bars(ax: Axes, run: dict[str, Any], endpoint: str | None, title: str) -> None:
    servers = [s["name"] for s in run["config"]["servers"]]
    users = list(run["config"]["load"]["users"])
    steps = report.steps_by_level(run)
    colours = server_colours(run)
    width = 0.8 / max(1, len(servers))
    values: list[float] = []
    expectations = expected.expectations(run) if endpoint is None else {}
    for i, name in enumerate(servers):
        # The model's mean response time for this server, dashed across its bars (all requests only).
        model_points = [
            (x - 0.4 + width * (i + 0.5), expectations[(name, n)].prediction.model_mean_ms)
            for x, n in enumerate(users)
            if (name, n) in expectations
        ]
        if model_points:
            ax.plot([p for p, _ in model_points], [m for _, m in model_points], linestyle="--", marker="_",
                    markersize=9, color=colours[name], linewidth=1.0, alpha=0.9)  # fmt: skip
            values.extend(max(m, 0.5) for _, m in model_points)
        for x, n in enumerate(users):
            pos = x - 0.4 + width * (i + 0.5)
            step = steps.get((name, n))
            data = _latency(step, endpoint)
            if data is None:
                label = "missing" if step is None else "failed" if step.get("status") != "ok" else "none sent"
                ax.text(pos, 0.0, label, rotation=90, ha="center", va="bottom", fontsize=7, color="grey",
                        transform=ax.get_xaxis_transform())  # fmt: skip
                continue
            p50 = float(data["p50_ms"])
            # p95 is withheld when the step had too few requests to estimate it: then there is no whisker.
            p95 = float(data["p95_ms"]) if report.is_finite(data.get("p95_ms")) else None
            values.extend([max(p50, 0.5), max(p95 or p50, 0.5)])
            limited = bool(step and step.get("saturated") == "client")
            ax.bar(pos, p50, width * 0.9, color=colours[name], edgecolor="black", linewidth=0.4,
                   hatch="///" if limited else None)  # fmt: skip
            if p95 is not None:
                ax.plot([pos, pos], [p50, p95], color="black", linewidth=1.0)
                ax.plot([pos - width * 0.25, pos + width * 0.25], [p95, p95], color="black", linewidth=1.0)
            ax.annotate(_short_ms(p50), (pos, p50), xytext=(0, 2), textcoords="offset points", ha="center",
                        va="bottom", fontsize=6.5, rotation=90 if len(servers) > 2 else 0)  # fmt: skip
    ax.set_xticks(range(len(users)), [str(n) for n in users])
    ax.set_xlabel("concurrent users (all spawned at once)")
    ax.set_ylabel("response time (ms)")
    ax.set_title(title, fontsize=10)
    if values and max(values) / max(min(values), 0.5) > 20:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3, which="both")
    ax.set_axisbelow(True)


def _short_ms(value: float) -> str:
    return f"{value / 1000:.1f}s" if value >= 1000 else f"{value:.0f}"


def _legend(fig: Any, run: dict[str, Any]) -> int:
    """Draw the shared legend above the panels; returns its number of rows, for the layout."""
    colours = server_colours(run)
    handles: list[Any] = [
        Patch(
            facecolor=colours[s["name"]], edgecolor="black", label=f"{s['name']} ({report.slots_text(s, short=True)})"
        )
        for s in run["config"]["servers"]
    ]
    handles.append(Patch(facecolor="white", edgecolor="black", label="bar: median   whisker: p95 (from 20 requests)"))
    handles.append(Line2D([], [], color="dimgrey", linestyle="--", marker="_", label="model: mean response time"))
    if any(s.get("saturated") == "client" for s in run["steps"]):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="///", label="client-limited step"))
    # Long configuration names need room: two columns once there are more entries than fit on one row.
    fig.legend(handles=handles, loc="upper center", ncol=2 if len(handles) > 4 else len(handles), fontsize=8,
               frameon=False)  # fmt: skip
    return math.ceil(len(handles) / (2 if len(handles) > 4 else len(handles)))


def response_time_chart(run: dict[str, Any], path: Path) -> Path:
    fig, axes = plt.subplots(2, 1, figsize=(10, 8.5), sharex=True)
    _bars(axes[0], run, None, "All requests: median and p95 response time per user level")
    _bars(axes[1], run, "short", "Short requests only: a quick query stuck behind slow requests")
    rows = _legend(fig, run)
    fig.text(0.01, 0.005, f"{report.headline_setup(run)}  {PERCENTILE_NOTE}", fontsize=7, color="dimgrey", wrap=True)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97 - 0.022 * rows))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def throughput_chart(run: dict[str, Any], path: Path) -> Path:
    """Measured throughput per level (solid, points), the model's exact curve (dashed) and its bound (dotted)."""
    fig, ax = plt.subplots(figsize=(10, 5.5))
    models = expected.systems(run)
    steps = report.steps_by_level(run)
    colours = server_colours(run)
    users = list(run["config"]["load"]["users"])
    for server in run["config"]["servers"]:
        name = server["name"]
        xs, ys, limited = [], [], []
        for n in users:
            step = steps.get((name, n))
            if step is None or step.get("status") != "ok" or not report.is_finite(step["figures"].get("rps")):
                continue
            xs.append(n)
            ys.append(float(step["figures"]["rps"]))
            limited.append(step.get("saturated") == "client")
        ax.plot(xs, ys, marker="o", color=colours[name], label=f"{name} ({report.slots_text(server, short=True)})")
        for x, y in zip(xs, ys, strict=True):  # repeated steps: the point is their median, the bar their min..max
            span = (steps[(name, x)].get("repeats") or {}).get("spread", {}).get("rps")
            if span:
                ax.errorbar([x], [y], yerr=[[y - span["min"]], [span["max"] - y]], fmt="none", ecolor=colours[name],
                            capsize=4, linewidth=1)  # fmt: skip
        system, _ = models[name]
        dense = model.dense_curve(system, min(users), max(users))
        ax.plot([p.users for p in dense], [p.model_rps for p in dense], linestyle="--", color=colours[name],
                linewidth=1.0, alpha=0.8)  # fmt: skip
        ax.plot([p.users for p in dense], [p.throughput_bound_rps for p in dense], linestyle=":",
                color=colours[name], linewidth=0.8, alpha=0.6)  # fmt: skip
        for x, y, flag in zip(xs, ys, limited, strict=True):
            ax.annotate(f"{y:.0f}", (x, y), xytext=(0, 6), textcoords="offset points", ha="center", fontsize=7)
            if flag:
                ax.plot([x], [y], marker="x", color="red", markersize=10)
    if any(s.get("saturated") == "client" for s in run["steps"]):
        ax.plot([], [], marker="x", color="red", linestyle="none", label="client-limited step")
    ax.plot([], [], linestyle="--", color="dimgrey", label="model: exact finite-population curve (M/M/k//N)")
    ax.plot([], [], linestyle=":", color="dimgrey", label="model: throughput bound min(N/(S+Z), capacity)")
    ax.set_xscale("log")
    ax.set_xticks(users, [str(n) for n in users])
    ax.minorticks_off()
    ax.set_xlabel("concurrent users (all spawned at once)")
    ax.set_ylabel("requests per second (completed in the measured window)")
    ax.set_title("Throughput per user level", fontsize=11)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.text(0.01, 0.005, report.headline_setup(run), fontsize=7, color="dimgrey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def resources_chart(run: dict[str, Any], path: Path) -> Path:
    """CPU and memory per user level for each server, with the client's CPU beside the server's.

    CPU is over the measured window, summed over the server's process tree, in % of one core; the dotted line at
    80% is where a client's own latencies start to count. Memory is PSS (shared pages shared out between forked
    workers) where it was measured, otherwise RSS summed over the tree.
    """
    fig, (cpu_ax, mem_ax) = plt.subplots(1, 2, figsize=(11, 4.8))
    steps = report.steps_by_level(run)
    colours = server_colours(run)
    users = list(run["config"]["load"]["users"])
    memory_kind = "PSS"
    for server in run["config"]["servers"]:
        name = server["name"]
        found = [(n, steps[(name, n)]) for n in users if (name, n) in steps and steps[(name, n)].get("status") == "ok"]
        label = f"{name} ({report.slots_text(server, short=True)})"
        server_cpu = [(n, s["server_cpu_pct"]) for n, s in found if report.is_finite(s.get("server_cpu_pct"))]
        client_cpu = [(n, s["figures"].get("client_cpu_pct")) for n, s in found]
        client_cpu = [(n, c) for n, c in client_cpu if report.is_finite(c)]
        cpu_ax.plot([n for n, _ in server_cpu], [c for _, c in server_cpu], marker="o", color=colours[name],
                    label=f"server: {label}")  # fmt: skip
        cpu_ax.plot([n for n, _ in client_cpu], [c for _, c in client_cpu], marker=".", linestyle="--",
                    color=colours[name], alpha=0.6, label=f"Locust, driving {name}")  # fmt: skip
        memory = []
        for n, step in found:
            value = step.get("server_pss_mb")
            if not report.is_finite(value):
                value, memory_kind = step.get("server_rss_mb"), "RSS"
            if report.is_finite(value):
                memory.append((n, float(value)))
        mem_ax.plot([n for n, _ in memory], [m for _, m in memory], marker="o", color=colours[name], label=label)
        for n, step in found:
            if step.get("saturated"):
                y = next((c for m, c in server_cpu if m == n), None)
                if y is not None:
                    cpu_ax.plot([n], [y], marker="x", color="red", markersize=10)
    cpu_ax.axhline(80, color="red", linestyle=":", linewidth=1, label="80% of a core")
    for ax in (cpu_ax, mem_ax):
        ax.set_xscale("log")
        ax.set_xticks(users, [str(n) for n in users])
        ax.minorticks_off()
        ax.set_xlabel("concurrent users")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    cpu_ax.set_ylabel("CPU over the measured window (% of one core)")
    cpu_ax.set_title("CPU: server tree (solid), Locust (dashed); x = saturated step", fontsize=10)
    mem_ax.set_ylabel(f"memory of the server's process tree ({memory_kind}, MB)")
    mem_ax.set_title("Memory at the end of each step", fontsize=10)
    cpu_ax.legend(fontsize=7, loc="upper left")
    mem_ax.legend(fontsize=7, loc="lower right")
    fig.text(0.01, 0.005, report.headline_setup(run), fontsize=7, color="dimgrey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def timeline_chart(data: dict[str, Any], path: Path) -> Path:
    """Rows per request, sync above async on one time axis; then one page request broken down.

    Light: from sending until the handler began (waiting for the worker, plus connecting and parsing). Dark: the
    handler at work (its database waits included). Thin: the answer's way back. The bars are measured, per
    request: the client's clock for send and receive, the server's Server-Timing header for the handler.
    """
    from runner.timeline import shown_round  # noqa: PLC0415 (keeps plots importable without the runner's extras)

    servers = list(data["servers"].items())
    fig, axes = plt.subplots(len(servers) + 1, 1, figsize=(10, 2.2 * len(servers) + 2.6),
                             gridspec_kw={"height_ratios": [1.0] * len(servers) + [0.8]})  # fmt: skip
    colours = {"sync": SYNC_COLOURS[0], "async": ASYNC_COLOURS[0]}
    longest = 0.0
    breakdown: list[tuple[str, dict[str, float]]] = []
    for ax, (name, server) in zip(axes, servers, strict=False):
        probes = shown_round(server["rounds"])
        t0 = min(p["sent"] for p in probes)
        for row, probe in enumerate(probes):
            sent = (probe["sent"] - t0) * 1000
            start = (probe["server_start"] - t0) * 1000
            end = start + probe["handler_ms"]
            received = (probe["received"] - t0) * 1000
            longest = max(longest, received)
            ax.barh(row, start - sent, left=sent, color="#d9d9d9", edgecolor="grey", height=0.55)
            ax.barh(row, end - start, left=start, color=colours[server["kind"]], edgecolor="black", height=0.55)
            ax.barh(row, received - end, left=end, color="black", height=0.12)
            ax.annotate(f"{received - sent:.0f} ms", (received, row), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=8)  # fmt: skip
        ax.set_yticks(range(len(probes)), [p["label"] for p in probes])
        ax.invert_yaxis()
        kind = "one sync worker" if server["kind"] == "sync" else "one event loop"
        ax.set_title(f"{name} ({kind})", fontsize=9, loc="left")
        ax.grid(axis="x", alpha=0.3)
        page = next(p for p in probes if p["path"] == "/page")
        other = max(0.0, page["handler_ms"] - page["db_ms"] - page["app_ms"])
        breakdown.append((name, {
            "waiting, connecting, framework, HTTP": (page["received"] - page["sent"]) * 1000 - page["handler_ms"],
            "database wait": page["db_ms"],
            "app code (Python work)": page["app_ms"],
            "rest of the handler": other,
        }))  # fmt: skip
    for ax in axes[: len(servers)]:
        ax.set_xlim(0, longest * 1.15)
    axes[len(servers) - 1].set_xlabel("ms since the first request was sent")
    ax = axes[-1]
    parts_colours = ["#d9d9d9", "#7570b3", "#e7298a", "#66a61e"]
    for row, (_, parts) in enumerate(breakdown):
        left = 0.0
        for (label, value), colour in zip(parts.items(), parts_colours, strict=True):
            ax.barh(
                row, value, left=left, color=colour, edgecolor="black", height=0.5, label=label if row == 0 else None
            )
            left += value
    ax.set_yticks(range(len(breakdown)), [name for name, _ in breakdown])
    ax.invert_yaxis()
    ax.set_xlabel("ms: where one page request's time went (the first page of the burst)")
    ax.legend(fontsize=7, ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    handles = [
        Patch(facecolor="#d9d9d9", edgecolor="grey", label="sent, not yet started by the server (queued)"),
        Patch(facecolor=colours["sync"], edgecolor="black", label="server working on it (sync)"),
        Patch(facecolor=colours["async"], edgecolor="black", label="server working on it (async)"),
    ]
    fig.legend(handles=handles, loc="upper center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path


def _kind_colours(servers: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """Colours by kind, in order: the sync palette for sync servers, the async one for the rest."""
    colours: dict[str, str] = {}
    counts = {"sync": 0, "async": 0}
    for name, server in servers:
        kind = "sync" if server.get("kind") == "sync" else "async"
        palette = SYNC_COLOURS if kind == "sync" else ASYNC_COLOURS
        colours[name] = palette[counts[kind] % len(palette)]
        counts[kind] += 1
    return colours


def burst_chart(data: dict[str, Any], path: Path) -> Path:
    """The burst over time: per second, the median (solid) and p95 (dashed) of the page requests sent in that
    second, with the number of users running; below, all requests completed per second.

    A point is what a user who clicked at that moment waited, so the queue a crowd leaves behind shows after
    the crowd has gone. Pages only, because in a quiet second a single short request would make the median
    jump from ~110 ms to ~10 ms and back; p95 is drawn only for seconds with at least 20 pages.
    """
    servers = [(name, s) for name, s in data["servers"].items() if "seconds" in s]
    colours = _kind_colours(servers)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7.5), sharex=True, gridspec_kw={"height_ratios": [1.6, 1]})
    users_ax = top.twinx()
    for name, server in servers:
        seconds = server["seconds"]
        xs = [s["t"] + 0.5 for s in seconds]
        p50 = [s["page_p50_ms"] if s["page_requests"] else float("nan") for s in seconds]
        p95 = [s["page_p95_ms"] if s["page_requests"] else float("nan") for s in seconds]
        colour = colours[name]
        top.plot(xs, p50, color=colour, marker=".", linewidth=1.6, label=f"{name} median")
        top.plot(xs, p95, color=colour, linestyle="--", linewidth=1.1, label=f"{name} p95")
        bottom.plot(xs, [s["completed"] for s in seconds], color=colour, drawstyle="steps-mid", label=name)
    if servers:
        # Every server ran the same stages; the first one's samples show what Locust actually ran.
        # A leaving user first finishes the request it is waiting on, so on a server with a queue the count
        # falls only as fast as the queue is served.
        first, record = servers[0]
        counts = record.get("users") or []
        label = f"users running (on {first}; a leaving user finishes its request first)"
        users_ax.plot([t for t, _ in counts], [n for _, n in counts], color="grey", alpha=0.5, drawstyle="steps-post",
                      linewidth=2.5, label=label)  # fmt: skip
    boundary = 0.0
    for users, seconds in data.get("stages", []):
        top.annotate(f"{users} users", (boundary + seconds / 2, 1.0), xycoords=("data", "axes fraction"),
                     xytext=(0, -12), textcoords="offset points", ha="center", fontsize=8, color="dimgrey")  # fmt: skip
        boundary += seconds
        for ax in (top, bottom):
            ax.axvline(boundary, color="grey", linestyle=":", linewidth=1)
    top.set_yscale("log")
    top.set_ylabel("page response time, ms\n(pages sent in that second; log scale)")
    users_ax.set_ylabel("users running", color="grey")
    users_ax.set_ylim(bottom=0)
    top.grid(alpha=0.3, which="both")
    handles, labels = top.get_legend_handles_labels()
    more, more_labels = users_ax.get_legend_handles_labels()
    fig.suptitle("The burst over time: the crowd arrives, stays, and leaves", fontsize=11)
    fig.legend(handles + more, labels + more_labels, fontsize=7, loc="upper center", ncol=3, frameon=False,
               bbox_to_anchor=(0.5, 0.965))  # fmt: skip
    bottom.set_ylabel("requests completed per second")
    bottom.set_xlabel("seconds since the burst run started (dotted: stage changes; after the last, the drain)")
    bottom.set_ylim(bottom=0)
    bottom.grid(alpha=0.3)
    bottom.legend(fontsize=7, loc="upper right")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path


def render(run_dir: Path) -> list[Path]:
    """Redraw every chart and the report of a run from its ``run.json``. Returns the files written."""
    run_dir = Path(run_dir)
    run = store.load_run(run_dir)
    charts = run_dir / "charts"
    charts.mkdir(exist_ok=True)
    written = []
    for name, draw in (
        ("response_times.png", response_time_chart),
        ("throughput.png", throughput_chart),
        ("resources.png", resources_chart),
    ):
        final = charts / name
        tmp = charts / f".{name}.tmp.png"
        draw(run, tmp)
        tmp.replace(final)
        written.append(final)
    timeline = run.get("timeline")
    if isinstance(timeline, dict) and timeline.get("servers"):
        written.append(timeline_chart(timeline, charts / "timeline.png"))
    burst = run.get("burst")
    if isinstance(burst, dict) and any("seconds" in s for s in burst.get("servers", {}).values()):
        written.append(burst_chart(burst, charts / "burst.png"))
    store.write_summary(run_dir, run, expected.summary_columns(run))
    written.append(run_dir / store.SUMMARY_FILE)
    text = report.markdown(run)
    files.write_atomically(run_dir / "report.md", lambda f: f.write(text))
    written.append(run_dir / "report.md")
    written.append(html_report.write_html(run_dir, run, text))
    return written


def exit_status(run_dir: Path) -> int:
    """0 when every planned step was measured, 1 otherwise: a partial run is not a success."""
    run = store.load_run(run_dir)
    ok = run["status"] == "complete" and all(s["status"] == "ok" for s in run["steps"])
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Redraw a run's charts and report from its saved data.")
    parser.add_argument("run", type=Path, help="a run folder, e.g. results/latest")
    args = parser.parse_args(argv)
    try:
        written = render(args.run)
    except store.ResultsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (KeyError, TypeError, ValueError) as error:
        # load_run checks the structure charts and report rely on; anything it misses is still named, not dumped.
        print(f"error: {args.run}/run.json has a damaged figure ({error!r}); it cannot be drawn", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
