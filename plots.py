"""Charts and report from a run's saved data alone: ``python plots.py results/<run>``.

Everything here reads ``run.json`` through the store's loader, so a run can be redrawn on any machine, long after
it was measured, and a chart can never show a number that is not in the saved data.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display here, and none needed

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import Patch

from runner import report, store

SYNC_COLOURS = ("#d95f02", "#e6ab02", "#a6761d", "#e7298a")
ASYNC_COLOURS = ("#1b9e77", "#7570b3", "#66a61e", "#386cb0")
PERCENTILE_NOTE = "Requests sent in each measured window; exact times of successful requests; p95 needs 20 requests."


def server_colours(run: dict[str, Any]) -> dict[str, str]:
    colours: dict[str, str] = {}
    counts = {"sync": 0, "async": 0}
    for server in run["config"]["servers"]:
        kind = report.kind_of(server)
        palette = SYNC_COLOURS if kind == "sync" else ASYNC_COLOURS
        colours[server["name"]] = palette[counts[kind] % len(palette)]
        counts[kind] += 1
    return colours


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
    for i, name in enumerate(servers):
        for x, n in enumerate(users):
            pos = x - 0.4 + width * (i + 0.5)
            step = steps.get((name, n))
            data = _latency(step, endpoint)
            if data is None:
                label = "missing" if step is None else "failed"
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


def _legend(fig: Any, run: dict[str, Any]) -> None:
    colours = server_colours(run)
    handles: list[Any] = [
        Patch(
            facecolor=colours[s["name"]], edgecolor="black", label=f"{s['name']} ({report.slots_text(s, short=True)})"
        )
        for s in run["config"]["servers"]
    ]
    handles.append(Patch(facecolor="white", edgecolor="black", label="bar: median   whisker: p95 (from 20 requests)"))
    if any(s.get("saturated") == "client" for s in run["steps"]):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="///", label="client-limited step"))
    fig.legend(handles=handles, loc="upper center", ncol=min(4, len(handles)), fontsize=8, frameon=False)


def response_time_chart(run: dict[str, Any], path: Path) -> Path:
    fig, axes = plt.subplots(2, 1, figsize=(10, 8.5), sharex=True)
    _bars(axes[0], run, None, "All requests: median and p95 response time per user level")
    _bars(axes[1], run, "short", "Short requests only: a quick query stuck behind slow requests")
    _legend(fig, run)
    fig.text(0.01, 0.005, f"{report.headline_setup(run)}  {PERCENTILE_NOTE}", fontsize=7, color="dimgrey", wrap=True)
    fig.tight_layout(rect=(0, 0.03, 1, 0.94))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def throughput_chart(run: dict[str, Any], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(10, 5.5))
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
        for x, y, flag in zip(xs, ys, limited, strict=True):
            ax.annotate(f"{y:.0f}", (x, y), xytext=(0, 6), textcoords="offset points", ha="center", fontsize=7)
            if flag:
                ax.plot([x], [y], marker="x", color="red", markersize=10)
    if any(s.get("saturated") == "client" for s in run["steps"]):
        ax.plot([], [], marker="x", color="red", linestyle="none", label="client-limited step")
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


def render(run_dir: Path) -> list[Path]:
    """Redraw every chart and the report of a run from its ``run.json``. Returns the files written."""
    run_dir = Path(run_dir)
    run = store.load_run(run_dir)
    charts = run_dir / "charts"
    charts.mkdir(exist_ok=True)
    written = []
    for name, draw in (("response_times.png", response_time_chart), ("throughput.png", throughput_chart)):
        final = charts / name
        tmp = charts / f".{name}.tmp.png"
        draw(run, tmp)
        tmp.replace(final)
        written.append(final)
    store.write_summary(run_dir, run)
    written.append(run_dir / store.SUMMARY_FILE)
    text = report.markdown(run)
    store.write_atomically(run_dir / "report.md", lambda f: f.write(text))
    written.append(run_dir / "report.md")
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
