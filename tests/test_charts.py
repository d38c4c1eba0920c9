"""Every chart drawn from a small fixed run and checked as a person would look at it: the elements each chart must
show (a bar per measured step, a model line per server, ...), and no title, label, tick, legend entry or note
falling outside the image or lying on another."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.colors import to_hex
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from runner import charts
from runner.config import ServerConfig
from runner.view import RunView
from tests.runs import (
    ASYNC,
    PNG_SIGNATURE,
    SYNC,
    USERS,
    burst_data,
    complete_run,
    run_with_experiments,
    soak_series,
    step,
    timeline_data,
    view_of,
)

REFERENCES = Path(__file__).resolve().parent.parent / "results" / "reference"
SOAK_SERVER = ServerConfig.from_dict({"name": ASYNC, "server": "uvicorn"})
SOAK_TITLE = f"{ASYNC} at 50 users: FAILED: 1 request(s) failed; resident memory grew 12.0% (limit 10%)"


def _figures() -> dict[str, Callable[[], Figure]]:
    view = view_of(run_with_experiments())
    return {
        "response_times": lambda: charts.response_time_figure(view),
        "throughput": lambda: charts.throughput_figure(view),
        "resources": lambda: charts.resources_figure(view),
        "timeline": lambda: charts.timeline_figure(timeline_data()),
        "burst": lambda: charts.burst_figure(burst_data()),
        "soak": lambda: charts.soak_figure(soak_series(), SOAK_SERVER, SOAK_TITLE, 50.0, 10.0),
    }


FIGURES = _figures()


# --- text inside the image, and not on other text ------------------------------------------------------------------


def drawn_texts(fig: Figure, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Text], RendererBase]:
    """Draw the figure with Agg and return every text actually drawn (a tick label outside the axis' view is
    created but never drawn, so asking the figure for its texts would not do)."""
    drawn: list[Text] = []
    draw = Text.draw

    def spy(self: Text, renderer: RendererBase) -> None:
        draw(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append(self)

    monkeypatch.setattr(Text, "draw", spy)
    fig.canvas.draw()
    monkeypatch.undo()
    return drawn, fig.canvas.get_renderer()  # type: ignore[attr-defined]


def assert_readable(fig: Figure, monkeypatch: pytest.MonkeyPatch) -> None:
    """No drawn text outside the image (1 px allowed for rounding), and no title, label or legend on another."""
    texts, renderer = drawn_texts(fig, monkeypatch)
    assert texts, "nothing was drawn"
    image = fig.bbox
    outside = []
    for text in texts:
        box = text.get_window_extent(renderer)
        if box.x0 < image.x0 - 1 or box.y0 < image.y0 - 1 or box.x1 > image.x1 + 1 or box.y1 > image.y1 + 1:
            outside.append(f"{text.get_text()!r} at {box.bounds} (image {image.bounds})")
    assert not outside, "text outside the image:\n" + "\n".join(outside)
    found = list(headings(fig, renderer))
    clashes = [
        f"{a} overlaps {b}"
        for (a, box_a), (b, box_b) in itertools.combinations(found, 2)
        if Bbox.intersection(box_a.shrunk(0.99, 0.99), box_b.shrunk(0.99, 0.99)) is not None
        and not (a.split()[:2] == b.split()[:2] and a.startswith("axes") and "legend" in a + b)
    ]
    assert not clashes, "\n".join(clashes)


def headings(fig: Figure, renderer: RendererBase) -> Iterator[tuple[str, Bbox]]:
    """What a reader takes in first: the figure's title, footer and legends, each axes' title, labels and legend."""
    for text in fig.texts:  # the figure's title and footer among them
        if text.get_visible() and text.get_text():
            yield f"figure text {text.get_text()[:40]!r}", text.get_window_extent(renderer)
    for legend in fig.legends:
        yield "figure legend", legend.get_window_extent(renderer)
    for i, ax in enumerate(fig.axes):
        for what, text in (("title", ax.title), ("x label", ax.xaxis.label), ("y label", ax.yaxis.label)):
            if text.get_visible() and text.get_text():
                yield f"axes {i} {what} {text.get_text()[:40]!r}", text.get_window_extent(renderer)
        own = ax.get_legend()
        if own is not None:
            yield f"axes {i} legend", own.get_window_extent(renderer)


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_text_of_a_chart_is_inside_the_image_and_off_the_others(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_readable(FIGURES[name](), monkeypatch)


@pytest.mark.parametrize("reference", sorted(p.name for p in REFERENCES.iterdir() if p.is_dir()))
def test_the_committed_references_charts_keep_their_text_inside(
    reference: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real runs: four configurations with long names, log axes, a burst with a title over its legend."""
    view = RunView.load(REFERENCES / reference)
    figures = [charts.response_time_figure(view), charts.throughput_figure(view), charts.resources_figure(view)]
    if charts.has_timeline(view.timeline):
        assert view.timeline is not None
        figures.append(charts.timeline_figure(view.timeline))
    if charts.has_burst(view.burst):
        assert view.burst is not None
        figures.append(charts.burst_figure(view.burst))
    for fig in figures:
        assert_readable(fig, monkeypatch)


# --- what each chart shows -----------------------------------------------------------------------------------------


def colour_of(artist: Line2D | Patch) -> str:
    return to_hex(artist.get_color() if isinstance(artist, Line2D) else artist.get_facecolor(), keep_alpha=False)


def xs(line: Line2D) -> list[float]:
    return [float(x) for x in np.asarray(line.get_xdata(), dtype=float)]


def ys(line: Line2D) -> list[float]:
    return [float(y) for y in np.asarray(line.get_ydata(), dtype=float)]


def lines(ax: Axes, colour: str, style: str) -> list[Line2D]:
    return [line for line in ax.get_lines() if colour_of(line) == colour and line.get_linestyle() == style]


def legend_texts(fig: Figure) -> list[str]:
    found = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            found += [t.get_text() for t in legend.get_texts()]
    return found


COLOURS = charts.server_colours(view_of(complete_run()).servers)


def bars(ax: Axes) -> list[Rectangle]:
    return [bar for container in ax.containers if isinstance(container, BarContainer) for bar in container]


def test_response_times_show_a_bar_per_measured_step_and_the_model_per_server() -> None:
    view = view_of(complete_run())
    fig = charts.response_time_figure(view)
    all_requests, short = fig.axes
    for ax, endpoint in ((all_requests, None), (short, "short")):
        shown = bars(ax)
        assert len(shown) == len(view.servers) * len(USERS)
        for name in (SYNC, ASYNC):
            heights = sorted(b.get_height() for b in shown if colour_of(b) == COLOURS[name])
            key = "p50_ms"
            expected = [view.step(name, n)["figures"]["latency"][key] for n in USERS]  # type: ignore[index]
            if endpoint is not None:
                expected = [view.step(name, n)["figures"]["endpoints"][endpoint][key] for n in USERS]  # type: ignore[index]
            assert heights == pytest.approx(sorted(expected))
    for name in (SYNC, ASYNC):
        (model,) = lines(all_requests, COLOURS[name], "--")
        means = [view.expectations[(name, n)].prediction.model_mean_ms for n in USERS]
        assert ys(model) == pytest.approx(means)
        assert not lines(short, COLOURS[name], "--"), "the model is of all requests only"
    texts = legend_texts(fig)
    for server in view.servers:
        assert any(t.startswith(f"{server.name} (") for t in texts)
    assert "model: mean response time" in texts
    assert "client-limited step" not in texts
    assert [t.get_text() for t in short.get_xticklabels()] == [str(n) for n in USERS]


def test_response_times_mark_a_failed_step_and_hatch_a_client_limited_one() -> None:
    run = complete_run()
    run["steps"][2] = {**step(SYNC, 50, rps=0, p50=0, p95=0), "status": "failed", "error": "server exited"}
    run["steps"][3]["saturated"] = "client"
    fig = charts.response_time_figure(view_of(run))
    all_requests = fig.axes[0]
    assert len(bars(all_requests)) == 3
    assert "failed" in [t.get_text() for t in all_requests.texts]
    assert [b.get_hatch() for b in bars(all_requests)].count("///") == 1
    assert "client-limited step" in legend_texts(fig)


def test_throughput_shows_the_measured_line_and_the_model_curve_per_server() -> None:
    view = view_of(complete_run())
    fig = charts.throughput_figure(view)
    (ax,) = fig.axes
    for name in (SYNC, ASYNC):
        (measured,) = lines(ax, COLOURS[name], "-")
        assert xs(measured) == USERS
        assert ys(measured) == [view.step(name, n)["figures"]["rps"] for n in USERS]  # type: ignore[index]
        (curve,) = lines(ax, COLOURS[name], "--")
        (bound,) = lines(ax, COLOURS[name], ":")
        assert min(xs(curve)) == min(USERS) and max(xs(curve)) == max(USERS)
        assert all(m <= b + 1e-9 for m, b in zip(ys(curve), ys(bound), strict=True))
    texts = legend_texts(fig)
    assert any(t.startswith(f"{SYNC} (") for t in texts) and any(t.startswith(f"{ASYNC} (") for t in texts)
    assert any(t.startswith("model: exact") for t in texts)
    assert any(t.startswith("model: throughput bound") for t in texts)
    assert view.headline_setup() in fig.get_supxlabel().replace("\n", " ")


def test_resources_show_server_and_client_cpu_and_memory_per_server() -> None:
    fig = charts.resources_figure(view_of(complete_run()))
    cpu, memory = fig.axes
    for name in (SYNC, ASYNC):
        (server_cpu,) = lines(cpu, COLOURS[name], "-")
        (client_cpu,) = lines(cpu, COLOURS[name], "--")
        assert ys(server_cpu) == [40.0, 40.0]
        assert ys(client_cpu) == [12.0, 12.0]
        (used,) = lines(memory, COLOURS[name], "-")
        assert ys(used) == [80.0, 80.0]  # PSS where it was measured
    assert memory.get_ylabel() == "memory of the server's process tree (PSS, MB)"
    assert "80% of a core" in legend_texts(fig)


def test_the_timeline_has_a_row_per_request_and_a_breakdown_per_server() -> None:
    data = timeline_data()
    fig = charts.timeline_figure(data)
    *panels, breakdown = fig.axes
    assert len(panels) == len(data["servers"])
    colours = charts.kind_colours((name, s["kind"]) for name, s in data["servers"].items())
    for ax, name in zip(panels, data["servers"], strict=True):
        assert [t.get_text() for t in ax.get_yticklabels()] == ["page 1", "page 2", "short"]
        assert len(ax.patches) == 3 * 3  # queued, at work, on the way back: per request
        assert sum(colour_of(p) == colours[name] for p in ax.patches) == 3
        assert ax.get_title(loc="left").startswith(f"{name} (")
        assert len([t for t in ax.texts if t.get_text().endswith("ms")]) == 3
    assert [t.get_text() for t in breakdown.get_yticklabels()] == list(data["servers"])
    assert {"database wait", "app code (Python work)"} <= set(legend_texts(fig))


def test_the_burst_has_a_median_and_a_p95_line_per_server() -> None:
    data = burst_data()
    fig = charts.burst_figure(data)
    top, bottom, users = fig.axes
    for name in data["servers"]:
        (median,) = [line for line in top.get_lines() if line.get_label() == f"{name} median"]
        (p95,) = [line for line in top.get_lines() if line.get_label() == f"{name} p95"]
        assert median.get_linestyle() == "-" and p95.get_linestyle() == "--"
        assert len(xs(median)) == len(data["servers"][name]["seconds"])
        assert [line.get_label() for line in bottom.get_lines()].count(name) == 1
    assert any(str(line.get_label()).startswith("users running") for line in users.get_lines())
    assert [t.get_text() for t in top.texts] == [f"{n} users" for n, _ in data["stages"]]


def test_the_soak_shows_memory_against_its_limit_and_failures_per_interval() -> None:
    series = soak_series()
    fig = charts.soak_figure(series, SOAK_SERVER, SOAK_TITLE, 50.0, 10.0)
    top, bottom = fig.axes
    labels = [line.get_label() for line in top.get_lines()]
    assert labels == ["server resident memory (RSS)", "after warm-up", "limit (+10%)"]
    assert ys(top.get_lines()[2]) == pytest.approx([55.0, 55.0])
    assert [b.get_height() for b in bars(bottom)] == series["failures"]
    assert top.get_title().replace("\n", " ") == SOAK_TITLE


# --- colours and saving --------------------------------------------------------------------------------------------


def test_one_colour_picker_colours_servers_by_kind_in_order() -> None:
    picked = charts.kind_colours([("a", "sync"), ("b", "async"), ("c", "sync"), ("d", "async")])
    assert picked == {
        "a": charts.SYNC_COLOURS[0],
        "b": charts.ASYNC_COLOURS[0],
        "c": charts.SYNC_COLOURS[1],
        "d": charts.ASYNC_COLOURS[1],
    }
    assert charts.server_colours(view_of(complete_run()).servers) == {
        SYNC: charts.SYNC_COLOURS[0],
        ASYNC: charts.ASYNC_COLOURS[0],
    }


def test_save_figure_writes_a_png_and_an_svg_beside_it_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "charts" / "throughput.png"
    assert charts.save_figure(charts.throughput_figure(view_of(complete_run())), target) == target
    assert target.read_bytes()[:8] == PNG_SIGNATURE
    svg = target.with_suffix(".svg").read_text(encoding="utf-8")
    assert svg.startswith("<?xml") and "<svg" in svg
    assert sorted(p.name for p in target.parent.iterdir()) == ["throughput.png", "throughput.svg"]


def test_the_same_data_draws_the_same_svg(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "t.png", tmp_path / "b" / "t.png"
    charts.timeline_chart(timeline_data(), first)
    charts.timeline_chart(timeline_data(), second)
    assert first.with_suffix(".svg").read_bytes() == second.with_suffix(".svg").read_bytes()


def test_the_soak_chart_is_saved_where_the_soak_report_shows_it(tmp_path: Path) -> None:
    target = tmp_path / charts.CHARTS_DIR / charts.CHART_FILES["soak"]
    assert charts.soak_chart(soak_series(), SOAK_SERVER, SOAK_TITLE, 50.0, 10.0, target) == target
    assert target.read_bytes()[:8] == PNG_SIGNATURE
    assert target.with_suffix(".svg").is_file()


# --- latency against offered load (open arrivals) ------------------------------------------------------------------


def open_step(
    server: str, rate: float, p50: float, p99: float, status: str = "ok", saturated: str = ""
) -> dict[str, Any]:
    """One step of the open-arrival experiment as runner/open_loop.py's ``measure`` saves it (the sweep's record
    with open figures); ``sent`` figures differ from ``scheduled`` ones so a chart drawing the wrong ones is
    caught, and a failed step has no figures at all."""
    step: dict[str, Any] = {
        "server": server,
        "rate": rate,
        "status": status,
        "error": None if status == "ok" else "Traceback ...\nRuntimeError: the server died",
        "saturated": saturated,
        "server_cpu_pct": 45.0,
    }
    if status == "ok":
        step["figures"] = {
            "offered_rps": rate * 0.98,
            "rps": rate * 0.97,
            "scheduled": {"p50_ms": p50, "p95_ms": (p50 + p99) / 2, "p99_ms": p99},
            "sent": {"p50_ms": p50 * 0.9, "p95_ms": (p50 + p99) / 2 * 0.9, "p99_ms": p99 * 0.9},
            "dropped": 0,
            "lost_pct": 0.0,
            "p99_all_ms": p99,
            "generator_behind": saturated == "generator",
        }
    return step


def open_model(capacity: float, curve: list[dict[str, Any]]) -> dict[str, Any]:
    """A server's saved model: its calibration and capacities beside the curve the chart draws."""
    return {
        "cpu_per_request_ms": 9.6,
        "calibrated_on": 2,
        "capacity_rps": capacity,
        "bottleneck": "slots",
        "slo_capacity_rps": capacity * 0.8,
        "curve": curve,
    }


def open_data(slo: float | None = 500.0) -> dict[str, Any]:
    """The open experiment as saved: a sync server that fails at the highest rate (no figures) and is
    client-saturated (still measured) at its middle one, and an event loop whose generator fell behind at its
    highest, each with a model curve that ends in an unstable point the chart must leave out."""
    return {
        "slo_p99_ms": slo,
        "rates": [10.0, 20.0, 40.0, 50.0, 100.0],
        "process": "poisson",
        "max_users": 1000,
        "servers": {
            SYNC: {
                "kind": "sync",
                "setup": "gunicorn, 3 sync workers",
                "steps": [
                    open_step(SYNC, 20.0, 110.0, 400.0, saturated="client"),
                    open_step(SYNC, 10.0, 100.0, 180.0),  # out of order: the chart sorts by rate
                    open_step(SYNC, 40.0, 0.0, 0.0, status="failed"),
                ],
                "model": open_model(
                    33.3,
                    [
                        {"rate_rps": 10.0, "p50_ms": 70.0, "p99_ms": 450.0, "mean_ms": 90.0, "stable": True},
                        {"rate_rps": 30.0, "p50_ms": 150.0, "p99_ms": 1500.0, "mean_ms": 300.0, "stable": True},
                        {"rate_rps": 40.0, "p50_ms": None, "p99_ms": None, "mean_ms": None, "stable": False},
                    ],
                ),
            },
            ASYNC: {
                "kind": "async",
                "setup": "uvicorn, 1 worker",
                "steps": [
                    open_step(ASYNC, 50.0, 95.0, 150.0),
                    open_step(ASYNC, 100.0, 110.0, 280.0, saturated="generator"),
                ],
                "model": open_model(
                    122.0,
                    [
                        {"rate_rps": 50.0, "p50_ms": 90.0, "p99_ms": 160.0, "mean_ms": 95.0, "stable": True},
                        {"rate_rps": 110.0, "p50_ms": 150.0, "p99_ms": 600.0, "mean_ms": 200.0, "stable": True},
                    ],
                ),
            },
        },
    }


def test_open_latency_draws_measured_p50_and_p99_from_the_scheduled_start_beside_the_model() -> None:
    data = open_data()
    fig = charts.open_latency_figure(data)
    (ax,) = fig.axes
    colours = charts.kind_colours((name, s["kind"]) for name, s in data["servers"].items())
    (sync_p99,) = lines(ax, colours[SYNC], "-")
    (sync_p50,) = lines(ax, colours[SYNC], "--")
    # From the scheduled start, not the send; the failed step left out, the client-saturated one still measured.
    assert xs(sync_p99) == [10.0, 20.0] and ys(sync_p99) == [180.0, 400.0]
    assert ys(sync_p50) == [100.0, 110.0]
    assert all(line.get_marker() == "o" for line in (sync_p99, sync_p50))
    model_p99, model_p50 = lines(ax, colours[SYNC], ":")
    assert xs(model_p99) == [10.0, 30.0] and ys(model_p99) == [450.0, 1500.0]  # the unstable point is left out
    assert ys(model_p50) == [70.0, 150.0]
    (async_p99,) = lines(ax, colours[ASYNC], "-")
    assert xs(async_p99) == [50.0]  # the generator-limited step is not joined to the curve
    hollow = {str(line.get_label()): line for line in ax.get_lines() if line.get_markerfacecolor() == "none"}
    assert set(hollow) == {f"{SYNC} failed, no figures", f"{ASYNC} limited"}
    assert hollow[f"{SYNC} failed, no figures"].get_marker() == "s"
    assert hollow[f"{ASYNC} limited"].get_marker() == "o" and ys(hollow[f"{ASYNC} limited"]) == [110.0, 280.0]
    (target,) = [line for line in ax.get_lines() if line.get_label() == "target p99 500 ms"]
    assert ys(target) == [500.0, 500.0]
    texts = legend_texts(fig)
    assert {f"{SYNC} (sync)", f"{ASYNC} (async)", "target p99 500 ms", "failed step"} <= set(texts)
    assert any(t.startswith("generator-limited step") for t in texts)
    assert ax.get_xscale() == "linear" and ax.get_yscale() == "log"
    assert fig.get_suptitle() == "Latency against offered load (open arrivals, latency from the scheduled start)"
    assert "model: M/G/k on each server's bottleneck" in fig.get_supxlabel().replace("\n", " ")
    assert "model p50 and p99 (M/G/k)" in texts


def test_open_latency_without_a_target_or_bad_steps_names_neither() -> None:
    data = open_data(slo=None)
    data["servers"][SYNC]["steps"] = data["servers"][SYNC]["steps"][:2]
    data["servers"][ASYNC]["steps"] = data["servers"][ASYNC]["steps"][:1]
    fig = charts.open_latency_figure(data)
    texts = legend_texts(fig)
    assert not [t for t in texts if t.startswith(("target", "failed", "generator-limited"))]
    assert not [line for line in fig.axes[0].get_lines() if str(line.get_label()).startswith("target")]


def test_open_latency_places_a_failed_step_by_its_figures_when_it_kept_any() -> None:
    data = open_data()
    steps = data["servers"][SYNC]["steps"]
    steps[2]["figures"] = {}  # failed with an empty figures section: still on the floor
    with_figures = open_step(SYNC, 30.0, 120.0, 900.0)
    steps.append({**with_figures, "status": "failed", "error": "the window closed early"})
    fig = charts.open_latency_figure(data)
    (ax,) = fig.axes
    hollow = [line for line in ax.get_lines() if line.get_markerfacecolor() == "none" and line.get_marker() == "s"]
    placed = {str(line.get_label()): (xs(line), ys(line)) for line in hollow}
    assert placed[f"{SYNC} failed"] == ([30.0, 30.0], [120.0, 900.0])
    assert placed[f"{SYNC} failed, no figures"][0] == [40.0]
    (sync_p99,) = lines(ax, charts.kind_colours([(SYNC, "sync"), (ASYNC, "async")])[SYNC], "-")
    assert xs(sync_p99) == [10.0, 20.0]  # neither failed step joins the curve


def test_open_latency_keeps_its_text_inside_the_image(monkeypatch: pytest.MonkeyPatch) -> None:
    assert_readable(charts.open_latency_figure(open_data()), monkeypatch)


def test_has_open_only_with_a_step_to_draw() -> None:
    assert charts.has_open(open_data())
    empties: list[dict[str, Any] | None] = [
        None,
        {},
        {"servers": {}},
        {"slo_p99_ms": 500.0, "servers": {SYNC: {"kind": "sync", "steps": []}}},
    ]
    for empty in empties:
        assert not charts.has_open(empty)


def test_the_open_latency_chart_is_saved_with_its_svg(tmp_path: Path) -> None:
    target = tmp_path / charts.CHARTS_DIR / charts.CHART_FILES["open"]
    assert target.name == "open_latency.png"  # the name the open experiment's report links to
    assert charts.open_latency_chart(open_data(), target) == target
    assert target.read_bytes()[:8] == PNG_SIGNATURE
    assert target.with_suffix(".svg").is_file()
