"""Every chart the harness draws, from saved data alone, and the one way a chart is saved.

The run's charts (response times, throughput, resources) read a run only through :class:`runner.view.RunView`, so
they show the same combined steps and the same model as the report's tables; the experiments' charts (the
three-request timeline, the burst over time, the soak) read the data those experiments save. Nothing here
measures or writes anything but images.

Each chart is built by a ``*_figure`` function that returns the figure (what the tests inspect) and saved by
:func:`save_figure`, which writes a PNG for the reports and an SVG beside it for print and zooming, each atomically.
Figures use constrained layout, legends outside the axes sit in a band the layout reserves for them, their columns
chosen to fit the figure's width, and a footer is wrapped to that width: no text of a chart falls outside its image.
One colour picker (:func:`kind_colours`) colours every chart, so a server has the same colour in all of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import matplotlib as mpl
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from runner import files, model, store
from runner.config import ServerConfig
from runner.numbers import fmt, fmt_ms, is_finite
from runner.store import is_ok
from runner.view import RunView, figure_of, kind_text, shown_round, slots_text, slow_client_runs

CHARTS_DIR = store.CHARTS_DIR  # under a run (or experiment) folder
CHART_FILES = {
    "response_times": "response_times.png",
    "throughput": "throughput.png",
    "resources": "resources.png",
    "timeline": "timeline.png",
    "burst": "burst.png",
    "slow_clients": "slow_clients.png",
    "soak": "soak.png",
    "open": "open_latency.png",
}
DPI = 120
SYNC_COLOURS = ("#d95f02", "#e6ab02", "#a6761d", "#e7298a")
ASYNC_COLOURS = ("#1b9e77", "#7570b3", "#66a61e", "#386cb0")
PERCENTILE_NOTE = "Requests sent in each measured window; exact times of successful requests; p95 needs 20 requests."
FOOTER_SIZE = 7.0
LABEL_BOX = {"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8}


# --- colours, layout and saving, shared by every chart ---------------------------------------------------------------


def kind_colours(named_kinds: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Colours by kind, in order: the sync palette for sync servers, the async one for the rest. The one colour
    picker: a run's servers, the timeline's and the burst's all go through it."""
    colours: dict[str, str] = {}
    counts = {"sync": 0, "async": 0}
    for name, kind in named_kinds:
        side = "sync" if kind == "sync" else "async"
        palette = SYNC_COLOURS if side == "sync" else ASYNC_COLOURS
        colours[name] = palette[counts[side] % len(palette)]
        counts[side] += 1
    return colours


def server_colours(servers: Iterable[ServerConfig]) -> dict[str, str]:
    """Each configuration's colour, by its kind and its place in the run."""
    return kind_colours((s.name, s.kind) for s in servers)


def new_figure(width: float, height: float) -> Figure:
    """A figure with constrained layout and its own Agg canvas: no pyplot, no global state, and a renderer to
    measure text with before the figure is drawn."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def fitted_legend(fig: Figure, handles: Sequence[Artist], fontsize: float = 8, above: Axes | None = None) -> Legend:
    """A legend in a band above the panels (or just above the axes ``above``, when a title sits over the band),
    in as few rows as fit the figure's width: long configuration names need room, and one row would run off both
    edges. The layout makes room for the band."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    room = fig.bbox.width * 0.98
    legend: Legend | None = None
    for rows in range(1, len(handles) + 1):
        if legend is not None:
            legend.remove()
        ncol = math.ceil(len(handles) / rows)
        if above is None:
            legend = fig.legend(handles=handles, loc="outside upper center", ncol=ncol, fontsize=fontsize,
                                frameon=False)  # fmt: skip
        else:
            legend = above.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=ncol,
                                  fontsize=fontsize, frameon=False)  # fmt: skip
        if legend.get_window_extent(renderer).width <= room:
            break
    assert legend is not None, "a legend needs at least one entry"
    return legend


def wrapped(fig: Figure, text: str, fontsize: float, share: float = 0.96) -> str:
    """``text`` broken at spaces into lines that each fit ``share`` of the figure's width at ``fontsize``, measured
    with the figure's renderer: matplotlib's own wrapping happens at draw time, after the layout has placed the
    text, so the layout would not make room for the lines it adds."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    probe = fig.text(0, 0, "", fontsize=fontsize)
    room = fig.bbox.width * share

    def fits(line: str) -> bool:
        probe.set_text(line)
        return bool(probe.get_window_extent(renderer).width <= room)

    lines: list[str] = []
    for word in text.split(" "):
        if lines and fits(f"{lines[-1]} {word}"):
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    probe.remove()
    return "\n".join(lines)


def footer(fig: Figure, text: str) -> None:
    """Small grey text under the panels (the setup a chart was measured in), wrapped to the figure's width."""
    fig.supxlabel(wrapped(fig, text, FOOTER_SIZE), x=0.01, ha="left", fontsize=FOOTER_SIZE, color="dimgrey")


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``path`` (a PNG) and an SVG beside it (same stem), each to a temporary file in the same folder and
    renamed into place, so a reader never sees half an image. The figure is cleared afterwards (it belongs to no
    pyplot registry, so there is nothing else to close).

    The SVG carries no date and fixed element ids, so redrawing the same data gives the same file."""
    path = Path(path)
    try:
        with mpl.rc_context({"svg.hashsalt": "sync-async-bench"}):
            # The one atomic writer hands out a text handle; a PNG is bytes, written to the handle's binary buffer.
            files.write_atomically(path, lambda handle: fig.savefig(handle.buffer, format="png", dpi=DPI))
            files.write_atomically(
                path.with_suffix(".svg"), lambda handle: fig.savefig(handle, format="svg", metadata={"Date": None})
            )
    finally:
        fig.clear()
    return path


def _log_axis(ax: Axes, ticks: Sequence[int], label: str) -> None:
    """The user-level axis the run's line charts share: logarithmic, one labelled tick per level measured."""
    ax.set_xscale("log")
    ax.set_xticks(list(ticks), [str(n) for n in ticks])
    ax.minorticks_off()
    ax.set_xlabel(label)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)


# --- a run's charts ---------------------------------------------------------------------------------------------------


def _bars(ax: Axes, view: RunView, endpoint: str | None, title: str, colours: Mapping[str, str]) -> None:
    """Median bars with p95 whiskers per (server, users); for all requests, the model's mean dashed across them."""
    names = [s.name for s in view.servers]
    users = list(view.users)
    width = 0.8 / max(1, len(names))
    values: list[float] = []
    for i, name in enumerate(names):
        colour = colours[name]
        if endpoint is None:
            points = [
                (x - 0.4 + width * (i + 0.5), e.prediction.model_mean_ms)
                for x, n in enumerate(users)
                if (e := view.expectations.get((name, n))) is not None
            ]
            if points:
                ax.plot([p for p, _ in points], [m for _, m in points], linestyle="--", marker="_", markersize=9,
                        color=colour, linewidth=1.0, alpha=0.9)  # fmt: skip
                values.extend(max(m, 0.5) for _, m in points)
        for x, n in enumerate(users):
            pos = x - 0.4 + width * (i + 0.5)
            record = view.step(name, n)
            p50 = figure_of(record, "p50_ms", endpoint)
            if p50 is None:
                label = "missing" if record is None else "failed" if not is_ok(record) else "none sent"
                ax.text(pos, 0.0, label, rotation=90, ha="center", va="bottom", fontsize=7, color="grey",
                        transform=ax.get_xaxis_transform())  # fmt: skip
                continue
            # p95 is withheld when the step had too few requests to estimate it: then there is no whisker.
            p95 = figure_of(record, "p95_ms", endpoint)
            values.extend([max(p50, 0.5), max(p95 or p50, 0.5)])
            limited = record is not None and record.get("saturated") == "client"
            ax.bar(pos, p50, width * 0.9, color=colour, edgecolor="black", linewidth=0.4,
                   hatch="///" if limited else None)  # fmt: skip
            if p95 is not None:
                ax.plot([pos, pos], [p50, p95], color="black", linewidth=1.0)
                ax.plot([pos - width * 0.25, pos + width * 0.25], [p95, p95], color="black", linewidth=1.0)
            # On a light box, so that a whisker's cap just above the bar does not strike the figure through.
            ax.annotate(fmt_ms(p50), (pos, p50), xytext=(0, 2), textcoords="offset points", ha="center",
                        va="bottom", fontsize=6.5, rotation=90 if len(names) > 2 else 0,
                        bbox=LABEL_BOX)  # fmt: skip
    ax.set_xticks(range(len(users)), [str(n) for n in users])
    ax.set_ylabel("response time (ms)")
    ax.set_title(title, fontsize=10)
    if values and max(values) / max(min(values), 0.5) > 20:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3, which="both")
    ax.set_axisbelow(True)


def response_time_figure(view: RunView) -> Figure:
    """Median and p95 per user level, all requests above and short requests below, the model's mean beside them."""
    fig = new_figure(10, 8.5)
    top, bottom = fig.subplots(2, 1, sharex=True)
    colours = server_colours(view.servers)
    _bars(top, view, None, "All requests: median and p95 response time per user level", colours)
    _bars(bottom, view, "short", "Short requests only: a quick query stuck behind slow requests", colours)
    bottom.set_xlabel("concurrent users (all spawned at once)")
    handles: list[Artist] = [
        Patch(facecolor=colours[s.name], edgecolor="black", label=f"{s.name} ({slots_text(s, short=True)})")
        for s in view.servers
    ]
    handles.append(Patch(facecolor="white", edgecolor="black", label="bar: median   whisker: p95 (from 20 requests)"))
    handles.append(Line2D([], [], color="dimgrey", linestyle="--", marker="_", label="model: mean response time"))
    if view.any_client_limited():
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="///", label="client-limited step"))
    fitted_legend(fig, handles)
    footer(fig, f"{view.headline_setup()}  {PERCENTILE_NOTE}")
    return fig


def throughput_figure(view: RunView) -> Figure:
    """Measured throughput per level (solid, points), the model's exact curve (dashed) and its bound (dotted)."""
    fig = new_figure(10, 5.5)
    ax = fig.subplots()
    colours = server_colours(view.servers)
    users = list(view.users)
    for server in view.servers:
        name, colour = server.name, colours[server.name]
        measured = [
            (n, float(record["figures"]["rps"]), record.get("saturated") == "client")
            for n in users
            if (record := view.ok_step(name, n)) is not None and is_finite(record["figures"].get("rps"))
        ]
        xs, ys = [n for n, _, _ in measured], [y for _, y, _ in measured]
        ax.plot(xs, ys, marker="o", color=colour, label=f"{name} ({slots_text(server, short=True)})")
        for x, y, limited in measured:
            # Repeated steps: the point is their median, the bar their min..max.
            span = view.groups[(name, x)].spread.get("rps")
            if span:
                ax.errorbar([x], [y], yerr=[[y - span["min"]], [span["max"] - y]], fmt="none", ecolor=colour,
                            capsize=4, linewidth=1)  # fmt: skip
            ax.annotate(fmt(y, 0), (x, y), xytext=(0, 6), textcoords="offset points", ha="center", fontsize=7)
            if limited:
                ax.plot([x], [y], marker="x", color="red", markersize=10)
        dense = model.dense_curve(view.systems[name], min(users), max(users))
        ax.plot([p.users for p in dense], [p.model_rps for p in dense], linestyle="--", color=colour,
                linewidth=1.0, alpha=0.8)  # fmt: skip
        ax.plot([p.users for p in dense], [p.throughput_bound_rps for p in dense], linestyle=":", color=colour,
                linewidth=0.8, alpha=0.6)  # fmt: skip
    if view.any_client_limited():
        ax.plot([], [], marker="x", color="red", linestyle="none", label="client-limited step")
    ax.plot([], [], linestyle="--", color="dimgrey", label="model: exact finite-population curve (M/M/k//N)")
    ax.plot([], [], linestyle=":", color="dimgrey", label="model: throughput bound min(N/(S+Z), capacity)")
    _log_axis(ax, users, "concurrent users (all spawned at once)")
    ax.set_ylabel("requests per second\n(completed in the measured window)")
    ax.set_title("Throughput per user level", fontsize=11)
    ax.legend(fontsize=8, loc="upper left")
    footer(fig, view.headline_setup())
    return fig


def resources_figure(view: RunView) -> Figure:
    """CPU and memory per user level for each server, with the client's CPU (and the database's, on PostgreSQL)
    beside the server's.

    CPU is over the measured window, summed over each process tree, in % of one core; the dotted line at 80% is
    where a client's own latencies start to count. Memory is PSS (shared pages shared out between forked workers)
    where it was measured, otherwise RSS summed over the tree. One legend band above both panels names the servers
    by colour and the lines by style, so it grows with the number of servers without covering a panel.
    """
    fig = new_figure(11, 5.4)
    cpu_ax, mem_ax = fig.subplots(1, 2)
    colours = server_colours(view.servers)
    users = list(view.users)
    memory_kind = "PSS"
    database = view.config.database.backend == "postgres"
    handles: list[Artist] = []
    for server in view.servers:
        name, colour = server.name, colours[server.name]
        found = [(n, record) for n in users if (record := view.ok_step(name, n)) is not None]
        server_cpu = [(n, float(s["server_cpu_pct"])) for n, s in found if is_finite(s.get("server_cpu_pct"))]
        client_cpu = [(n, float(c)) for n, s in found if is_finite(c := s["figures"].get("client_cpu_pct"))]
        db_cpu = [(n, float(c)) for n, s in found if is_finite(c := s.get("db_cpu_pct"))]
        cpu_ax.plot([n for n, _ in server_cpu], [c for _, c in server_cpu], marker="o", color=colour)
        cpu_ax.plot([n for n, _ in client_cpu], [c for _, c in client_cpu], marker=".", linestyle="--",
                    color=colour, alpha=0.6)  # fmt: skip
        if db_cpu:
            cpu_ax.plot([n for n, _ in db_cpu], [c for _, c in db_cpu], marker="", linestyle="-.", color=colour,
                        alpha=0.6)  # fmt: skip
        memory = []
        for n, record in found:
            value = record.get("server_pss_mb")
            if not is_finite(value):
                value, memory_kind = record.get("server_rss_mb"), "RSS"
            if is_finite(value):
                memory.append((n, float(value)))
        mem_ax.plot([n for n, _ in memory], [m for _, m in memory], marker="o", color=colour)
        for n, record in found:
            y = dict(server_cpu).get(n)
            if record.get("saturated") and y is not None:
                cpu_ax.plot([n], [y], marker="x", color="red", markersize=10)
        handles.append(Line2D([], [], color=colour, marker="o", label=f"{name} ({slots_text(server, short=True)})"))
    cpu_ax.axhline(80, color="red", linestyle=":", linewidth=1)
    handles += [
        Line2D([], [], color="dimgrey", marker="o", label="CPU: the server's process tree"),
        Line2D([], [], color="dimgrey", marker=".", linestyle="--", alpha=0.6, label="CPU: Locust driving it"),
    ]
    if database:
        handles.append(Line2D([], [], color="dimgrey", linestyle="-.", alpha=0.6, label="CPU: PostgreSQL"))
    handles += [
        Line2D([], [], color="red", linestyle=":", linewidth=1, label="80% of a core"),
        Line2D([], [], color="red", marker="x", linestyle="none", label="saturated step"),
    ]
    for ax in (cpu_ax, mem_ax):
        _log_axis(ax, users, "concurrent users")
    cpu_ax.set_ylabel("CPU over the measured window (% of one core)")
    cpu_ax.set_title("CPU per step", fontsize=10)
    mem_ax.set_ylabel(f"memory of the server's process tree ({memory_kind}, MB)")
    mem_ax.set_title("Memory at the end of each step", fontsize=10)
    fitted_legend(fig, handles, fontsize=7)
    footer(fig, view.headline_setup())
    return fig


def response_time_chart(view: RunView, path: Path) -> Path:
    return save_figure(response_time_figure(view), path)


def throughput_chart(view: RunView, path: Path) -> Path:
    return save_figure(throughput_figure(view), path)


def resources_chart(view: RunView, path: Path) -> Path:
    return save_figure(resources_figure(view), path)


# The charts every run has, in the order they are drawn.
RUN_CHARTS: tuple[tuple[str, Callable[[RunView, Path], Path]], ...] = (
    (CHART_FILES["response_times"], response_time_chart),
    (CHART_FILES["throughput"], throughput_chart),
    (CHART_FILES["resources"], resources_chart),
)


# --- the experiments' charts ------------------------------------------------------------------------------------------


def has_timeline(data: Mapping[str, Any] | None) -> bool:
    """Whether the three-request timeline's data has anything to draw."""
    return bool(data and data.get("servers"))


def has_burst(data: Mapping[str, Any] | None) -> bool:
    """Whether the burst's data has a server measured over time (each may have failed on its own)."""
    return bool(data) and any("seconds" in s for s in (data or {}).get("servers", {}).values())


def timeline_figure(data: Mapping[str, Any]) -> Figure:
    """Rows per request, sync above async on one time axis; then one page request broken down.

    Light: from sending until the handler began (waiting for the worker, plus connecting and parsing). Dark: the
    handler at work (its database waits included). Thin: the answer's way back. The bars are measured, per
    request: the client's clock for send and receive, the server's Server-Timing header for the handler.
    """
    servers = list(data["servers"].items())
    fig = new_figure(10, 2.2 * len(servers) + 2.9)
    axes = fig.subplots(len(servers) + 1, 1, gridspec_kw={"height_ratios": [1.0] * len(servers) + [0.8]})
    colours = kind_colours((name, server["kind"]) for name, server in servers)
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
            ax.barh(row, end - start, left=start, color=colours[name], edgecolor="black", height=0.55)
            ax.barh(row, received - end, left=end, color="black", height=0.12)
            ax.annotate(fmt_ms(received - sent), (received, row), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=8)  # fmt: skip
        ax.set_yticks(range(len(probes)), [p["label"] for p in probes])
        ax.invert_yaxis()
        ax.set_title(f"{name} ({kind_text(server['kind'])})", fontsize=9, loc="left")
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
            ax.barh(row, value, left=left, color=colour, edgecolor="black", height=0.5,
                    label=label if row == 0 else None)  # fmt: skip
            left += value
    ax.set_yticks(range(len(breakdown)), [name for name, _ in breakdown])
    ax.invert_yaxis()
    ax.set_xlabel("ms: where one page request's time went (the first page of the three sent together)")
    ax.legend(fontsize=7, ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    handles: list[Artist] = [
        Patch(facecolor="#d9d9d9", edgecolor="grey", label="sent, not yet started by the server (queued)")
    ]
    handles += [
        Patch(facecolor=colours[name], edgecolor="black", label=f"server working on it ({server['kind']})")
        for name, server in servers
    ]
    fitted_legend(fig, handles)
    return fig


def timeline_chart(data: Mapping[str, Any], path: Path) -> Path:
    return save_figure(timeline_figure(data), path)


def burst_figure(data: Mapping[str, Any]) -> Figure:
    """The burst over time: per second, the median (solid) and p95 (dashed) of the page requests sent in that
    second, with the number of users running; below, all requests completed per second.

    A point is what a user who clicked at that moment waited, so the queue a crowd leaves behind shows after
    the crowd has gone. Pages only, because in a quiet second a single short request would make the median
    jump from ~110 ms to ~10 ms and back; p95 is drawn only for seconds with at least 20 pages.
    """
    servers = [(name, s) for name, s in data["servers"].items() if "seconds" in s]
    colours = kind_colours((name, s.get("kind", "")) for name, s in servers)
    fig = new_figure(10, 7.8)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1.6, 1]})
    users_ax = top.twinx()
    for name, server in servers:
        seconds = server["seconds"]
        xs = [s["t"] + 0.5 for s in seconds]
        p50 = [s["page_p50_ms"] if s["page_requests"] else math.nan for s in seconds]
        p95 = [s["page_p95_ms"] if s["page_requests"] else math.nan for s in seconds]
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
        # Headroom above the crowd, for the stages' names.
        users_ax.set_ylim(0, max((n for _, n in counts), default=1) * 1.12)
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
    top.grid(alpha=0.3, which="both")
    handles, _ = top.get_legend_handles_labels()
    more, _ = users_ax.get_legend_handles_labels()
    fig.suptitle("The burst over time: the crowd arrives, stays, and leaves", fontsize=11)
    if handles or more:
        # Above the top panel rather than in the figure's band, which would sit on the title.
        fitted_legend(fig, [*handles, *more], fontsize=7, above=top)
    bottom.set_ylabel("requests completed per second")
    bottom.set_xlabel("seconds since the burst run started (dotted: stage changes; after the last, the drain)")
    bottom.set_ylim(bottom=0)
    bottom.grid(alpha=0.3)
    if servers:
        bottom.legend(fontsize=7, loc="upper right")
    return fig


def burst_chart(data: Mapping[str, Any], path: Path) -> Path:
    return save_figure(burst_figure(data), path)


def has_slow_clients(data: Mapping[str, Any] | None) -> bool:
    """Whether the slow-client experiment's data has a server measured at some K (each may have failed alone)."""
    return any(run.error is None for run in slow_client_runs(data))


# How each phase is drawn in the slow-client chart: before the slow clients dotted, during solid, after dashed.
PHASE_STYLES: dict[str, Literal[":", "-", "--"]] = {"before": ":", "during": "-", "after": "--"}


def slow_clients_figure(data: Mapping[str, Any]) -> Figure:
    """Per server (a column each), against K: the normal users' median (log scale, top) and throughput (bottom),
    before, during and after the slow clients. K is drawn at even spacing (the counts are a list, not a scale).

    A stopped server shows as a throughput during that falls to the floor; its median during is that of the few
    requests sent then, answered only once the slow clients left (or never: failures have no time)."""
    runs = [r for r in slow_client_runs(data) if r.error is None]
    names = list(dict.fromkeys(r.server for r in runs))
    colours = kind_colours(dict.fromkeys((r.server, r.kind) for r in runs))
    counts = [int(k) for k in data.get("counts", [])] or sorted({r.count for r in runs})
    fig = new_figure(max(6.0, 3.2 * len(names)), 6.4)
    # One scale per row across the servers, so a server the slow clients left alone reads as flat beside one they
    # stopped, not as a jump on an axis of its own.
    axes = fig.subplots(2, max(1, len(names)), squeeze=False, sharex=True, sharey="row")
    for column, name in enumerate(names):
        top, bottom = axes[0][column], axes[1][column]
        mine = sorted((r for r in runs if r.server == name), key=lambda r: r.count)
        xs = [counts.index(r.count) if r.count in counts else r.count for r in mine]
        for phase, style in PHASE_STYLES.items():
            p50 = [r.figure(phase, "p50_ms") for r in mine]
            rps = [r.figure(phase, "rps") for r in mine]
            top.plot(xs, [math.nan if v is None else v for v in p50], color=colours[name], linestyle=style,
                     marker="o", markersize=3, label=phase)  # fmt: skip
            bottom.plot(xs, [math.nan if v is None else v for v in rps], color=colours[name], linestyle=style,
                        marker="o", markersize=3, label=phase)  # fmt: skip
        top.set_yscale("log")
        top.set_title(name, fontsize=9)
        top.grid(alpha=0.3, which="both")
        bottom.set_ylim(bottom=0)
        bottom.grid(alpha=0.3)
        bottom.set_xticks(range(len(counts)), [str(k) for k in counts])
        bottom.set_xlabel("slow connections K")
        if column == 0:
            top.set_ylabel("normal users' median, ms (log)")
            bottom.set_ylabel("normal users' requests/s")
    handles: list[Artist] = [
        Line2D([], [], color="black", linestyle=style, marker="o", markersize=3, label=f"{phase} the slow clients")
        for phase, style in PHASE_STYLES.items()
    ]
    if names:
        axes[0][0].legend(handles=handles, fontsize=7, loc="best")
    fig.suptitle(
        f"Slow clients ({data.get('style', '?')}): {data.get('users', '?')} normal users, K connections held "
        f"{data.get('hold_s', 0):g} s",
        fontsize=11,
    )
    footer(
        fig,
        "Medians over the successful requests sent in each phase (exact times); throughput counts completions inside "
        "the phase. Phases are cut at the slow clients' measured open and close times.",
    )
    return fig


def slow_clients_chart(data: Mapping[str, Any], path: Path) -> Path:
    return save_figure(slow_clients_figure(data), path)


def has_open(data: Mapping[str, Any] | None) -> bool:
    """Whether the open-arrival experiment's data (as :func:`runner.open_loop.measure` saves it) has a server with
    at least one step, measured or failed: a step is something to draw even without figures."""
    servers = (data or {}).get("servers") or {}
    return any(isinstance(s, Mapping) and s.get("steps") for s in servers.values())


OPEN_FOOTER = (
    "model: M/G/k on each server's bottleneck with each request class's own time (Allen-Cunneen's approximation, "
    "runner/open_model.py), drawn up to its last stable rate; costs outside it (HTTP, the network, the load "
    "generator) put measured points above it. Each step is drawn at the rate it was scheduled at; latency is timed "
    "from when each request was due, so a request that waited for a free sender counts that wait."
)


def _scheduled(step: Mapping[str, Any], key: str) -> float | None:
    """One of a step's percentiles timed from the scheduled start (``figures.scheduled``), or None where it has
    none: a failed step may have no figures at all, and a log axis cannot show zero either."""
    value = ((step.get("figures") or {}).get("scheduled") or {}).get(key)
    return float(value) if is_finite(value) and value > 0 else None


def _generator_limited(step: Mapping[str, Any]) -> bool:
    """The load generator could not keep the schedule (the sweep's saturation verdict ``"generator"``): the step
    measured the client as much as the server."""
    return step.get("saturated") == "generator"


def _open_server(ax: Axes, name: str, server: Mapping[str, Any], colour: str) -> tuple[list[float], set[str]]:
    """One server's lines on the open-arrival chart: measured p99 (solid) and p50 (dashed) through the steps that
    measured the server, the model's two (dotted), and a hollow marker per step that did not. Returns the measured
    figures drawn (to fit the axis to) and which kinds of bad step were drawn ("failed", "limited")."""
    steps = sorted(server["steps"], key=lambda s: float(s["rate"]))
    good = [s for s in steps if s.get("status") == "ok" and not _generator_limited(s)]
    measured: list[float] = []
    for key, linestyle, what in (("p99_ms", "-", "p99"), ("p50_ms", "--", "p50")):
        points = [(float(s["rate"]), v) for s in good if (v := _scheduled(s, key)) is not None]
        measured.extend(v for _, v in points)
        ax.plot([x for x, _ in points], [y for _, y in points], color=colour, linestyle=linestyle, marker="o",
                markersize=4 if what == "p99" else 3, linewidth=1.6 if what == "p99" else 1.1,
                label=f"{name} {what}")  # fmt: skip
        model_points = [
            (float(p["rate_rps"]), float(p[key]))
            for p in (server.get("model") or {}).get("curve") or []
            if p.get("stable", True) and is_finite(p.get(key)) and p[key] > 0 and is_finite(p.get("rate_rps"))
        ]
        ax.plot([x for x, _ in model_points], [y for _, y in model_points], color=colour, linestyle=":",
                linewidth=0.9, alpha=0.9, label=f"{name} model {what}")  # fmt: skip
    bad: set[str] = set()
    for step in (s for s in steps if not any(s is g for g in good)):
        kind = "failed" if step.get("status") != "ok" else "limited"
        bad.add(kind)
        rate = float(step["rate"])
        shown = [v for key in ("p50_ms", "p99_ms") if (v := _scheduled(step, key)) is not None]
        measured.extend(shown)
        marker = "s" if kind == "failed" else "o"
        if shown:
            ax.plot([rate] * len(shown), shown, color=colour, marker=marker, markerfacecolor="none", linestyle="none",
                    markersize=7, markeredgewidth=1.4, label=f"{name} {kind}")  # fmt: skip
        else:
            # No figures to place it by: on the chart's floor (x in data, y in axes), where it is still seen.
            ax.plot([rate], [0.03], transform=ax.get_xaxis_transform(), clip_on=False, color=colour, marker=marker,
                    markerfacecolor="none", linestyle="none", markersize=7, markeredgewidth=1.4,
                    label=f"{name} {kind}, no figures")  # fmt: skip
    return measured, bad


def open_latency_figure(data: Mapping[str, Any]) -> Figure:
    """Latency against offered load, per server: the measured p50 (dashed) and p99 (solid) from each request's
    scheduled start, the model's p50 and p99 (thin dotted, same colour), and the p99 target when there is one.

    Only steps that measured the server (status ok, the generator keeping up) are joined by lines: a failed step
    (hollow square), or one where the generator could not send at the rate asked (hollow circle), is a marker on its
    own, at its percentiles when it has them and on the floor of the chart when it has none, so it is seen without
    passing for a point on the curve. The model's p99 climbs without bound near capacity, so the latency axis stops
    a little above the highest measured figure or the target, and the model's lines run off its top there.
    """
    servers = [(name, s) for name, s in data.get("servers", {}).items() if s.get("steps")]
    colours = kind_colours((name, s.get("kind", "")) for name, s in servers)
    fig = new_figure(10, 6.2)
    ax = fig.subplots()
    handles: list[Artist] = []
    measured: list[float] = []
    bad: set[str] = set()
    for name, server in servers:
        drawn, bad_here = _open_server(ax, name, server, colours[name])
        measured += drawn
        bad |= bad_here
        handles.append(Line2D([], [], color=colours[name], marker="o", markersize=4,
                              label=f"{name} ({server.get('kind', '?')})"))  # fmt: skip
    handles += [
        Line2D([], [], color="dimgrey", marker="o", markersize=4, label="p99 measured"),
        Line2D([], [], color="dimgrey", linestyle="--", marker="o", markersize=3, label="p50 measured"),
        Line2D([], [], color="dimgrey", linestyle=":", label="model p50 and p99 (M/G/k)"),
    ]
    if "failed" in bad:
        handles.append(Line2D([], [], color="dimgrey", marker="s", markerfacecolor="none", linestyle="none",
                              label="failed step"))  # fmt: skip
    if "limited" in bad:
        handles.append(Line2D([], [], color="dimgrey", marker="o", markerfacecolor="none", linestyle="none",
                              label="generator-limited step (fell behind its schedule)"))  # fmt: skip
    target = data.get("slo_p99_ms")
    if is_finite(target) and target > 0:
        handles.append(ax.axhline(float(target), color="black", linestyle="-.", linewidth=1.0,
                                  label=f"target p99 {float(target):g} ms"))  # fmt: skip
        measured.append(float(target))
    ax.set_yscale("log")
    # Ticks at 1, 2 and 5 per decade, as plain milliseconds: a decade or two of latency with only 100 and 1000
    # labelled cannot be read.
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    if measured:
        # The model's lines rise without bound near capacity: keep the axis on what was measured.
        ax.set_ylim(top=max(measured) * 2.5)
    ax.set_xlim(left=0)
    ax.set_xlabel("offered rate (requests/s, Poisson arrivals, as scheduled)")
    ax.set_ylabel("latency from the scheduled start, ms (log scale)")
    ax.grid(alpha=0.3, which="both")
    fig.suptitle("Latency against offered load (open arrivals, latency from the scheduled start)", fontsize=11)
    fitted_legend(fig, handles, fontsize=7, above=ax)
    footer(fig, OPEN_FOOTER)
    return fig


def open_latency_chart(data: Mapping[str, Any], path: Path) -> Path:
    return save_figure(open_latency_figure(data), path)


def soak_figure(
    series: Mapping[str, Any], server: ServerConfig, title: str, baseline_mb: float, limit_pct: float
) -> Figure:
    """A soak over time: the server's resident memory against the limit it was judged by, and below, the
    requests completed and failed per interval."""
    fig = new_figure(10, 7)
    top, bottom = fig.subplots(2, 1, sharex=True)
    colour = server_colours([server])[server.name]
    top.plot(series["memory_t_s"], series["rss_mb"], color=colour, label="server resident memory (RSS)")
    if math.isfinite(baseline_mb):
        top.axhline(baseline_mb, color="grey", linestyle="--", linewidth=1, label="after warm-up")
        limit = baseline_mb * (1 + limit_pct / 100)
        top.axhline(limit, color="red", linestyle=":", linewidth=1, label=f"limit (+{limit_pct:.0f}%)")
    top.set_ylabel("MB")
    top.set_ylim(bottom=0)
    if math.isfinite(baseline_mb):  # room above the limit, so its line is not lost in the frame
        top.set_ylim(0, max([*series["rss_mb"], baseline_mb * (1 + limit_pct / 100)]) * 1.08)
    top.legend(fontsize=8, loc="lower right")
    top.grid(alpha=0.3)
    top.set_title(wrapped(fig, title, 10, share=0.9), fontsize=10)
    t = series["t_s"]
    # A step plot ends at the last bucket's start; repeat its value so the line reaches the window's end.
    ends = [*t, t[-1] + series["bucket_s"]] if t else t
    bottom.step(ends, [*series["rps"], series["rps"][-1]] if t else [], where="post", color="#386cb0",
                label="completed requests/s")  # fmt: skip
    bottom.bar(t, series["failures"], width=series["bucket_s"], align="edge", color="red", alpha=0.6,
               label="failed requests per interval")  # fmt: skip
    bottom.set_xlabel("seconds since the end of the warm-up")
    bottom.set_ylabel("per interval")
    bottom.set_ylim(bottom=0)
    bottom.legend(fontsize=8, loc="lower right")
    bottom.grid(alpha=0.3)
    return fig


def soak_chart(
    series: Mapping[str, Any], server: ServerConfig, title: str, baseline_mb: float, limit_pct: float, path: Path
) -> Path:
    return save_figure(soak_figure(series, server, title, baseline_mb, limit_pct), path)
