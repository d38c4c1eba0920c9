"""Drawing a results folder from its saved data alone: ``python plots.py <folder>`` and the end of every run.

A run folder is redrawn from ``run.json`` through :class:`runner.view.RunView`: its summary table
(``summary.csv``), its charts (the timeline's and the burst's only when the run measured them), ``report.md`` and
``report.html``. So a run can be redrawn on any machine, long after it was measured, and nothing drawn can show a
number that is not in the saved data. Where the folder keeps its steps' raw files (a run as measured, or a
reference), each step's figures are first recomputed from them and must equal the stored ones
(:mod:`runner.recompute`): what is drawn is then what the per-request data gives, not only what ``run.json``
says. A folder written by an experiment run alone (``timeline.json``, ``burst.json`` or ``slow_clients.json``, no
``run.json``) is redrawn too: its one chart. Every file read is checked for its format and version first
(:func:`runner.store.load_document`), so an unknown one is refused, named, rather than misdrawn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import charts, files, html_report, recompute, report, store
from runner.view import RunView

REPORT_FILE = "report.md"


@dataclass(frozen=True)
class ExperimentFile:
    """An experiment run alone: the file it saves, that file's format, and the chart drawn from it."""

    file: str
    file_format: str
    what: str  # how a message names the file
    drawable: Callable[[Mapping[str, Any] | None], bool]
    draw: Callable[[Mapping[str, Any], Path], Path] | None  # None: the experiment has no chart of its own
    chart: str


TIMELINE = ExperimentFile(store.TIMELINE_FILE, store.TIMELINE_FORMAT, "timeline file", charts.has_timeline,
                          charts.timeline_chart, charts.CHART_FILES["timeline"])  # fmt: skip
BURST = ExperimentFile(store.BURST_FILE, store.BURST_FORMAT, "burst file", charts.has_burst, charts.burst_chart,
                       charts.CHART_FILES["burst"])  # fmt: skip
SLOW_CLIENTS = ExperimentFile(store.SLOW_CLIENTS_FILE, store.SLOW_CLIENTS_FORMAT, "slow-client file",
                              charts.has_slow_clients, charts.slow_clients_chart,
                              charts.CHART_FILES["slow_clients"])  # fmt: skip
OPEN = ExperimentFile(store.OPEN_FILE, store.OPEN_FORMAT, "open-arrival file", charts.has_open,
                      charts.open_latency_chart, charts.CHART_FILES["open"])  # fmt: skip
# The capacity search's probes are open steps, read in the report; the number needs no chart of its own.
CAPACITY = ExperimentFile(store.CAPACITY_FILE, store.CAPACITY_FORMAT, "capacity file", lambda data: False, None, "")
EXPERIMENTS = (TIMELINE, BURST, SLOW_CLIENTS, OPEN, CAPACITY)


def _with_svg(png: Path) -> list[Path]:
    return [png, png.with_suffix(".svg")]


def is_experiment(folder: Path) -> bool:
    """A folder an experiment wrote: one of the experiments' files and no run.json (a folder with one is a run)."""
    folder = Path(folder)
    return (
        folder.is_dir()
        and not (folder / store.RUN_FILE).exists()
        and any((folder / e.file).is_file() for e in EXPERIMENTS)
    )


def _experiments(folder: Path) -> list[tuple[ExperimentFile, dict[str, Any]]]:
    """Each experiment file of the folder, read and checked; ResultsError for an unknown format or version."""
    return [
        (e, store.load_document(folder / e.file, e.file_format, store.EXPERIMENT_VERSION, e.what))
        for e in EXPERIMENTS
        if (folder / e.file).is_file()
    ]


def render_experiment(folder: Path) -> list[Path]:
    """Redraw the chart of each experiment file in ``folder``. Returns the files written."""
    written: list[Path] = []
    for experiment, data in _experiments(Path(folder)):
        if experiment.draw is not None and experiment.drawable(data):
            written += _with_svg(experiment.draw(data, Path(folder) / charts.CHARTS_DIR / experiment.chart))
    return written


def render(run_dir: Path) -> list[Path]:
    """Redraw every chart, the summary and the report of a run from its ``run.json`` (or the chart of an
    experiment's folder). Returns the files written; raises ResultsError for a folder that is neither, and for a
    run whose raw files do not give its stored figures (see :mod:`runner.recompute`)."""
    run_dir = Path(run_dir)
    if is_experiment(run_dir):
        return render_experiment(run_dir)
    saved = RunView.load(run_dir)
    # Equal to the saved figures by recompute's check; drawn from the recomputation all the same, so that what is
    # drawn comes from the raw data wherever the folder keeps it.
    view = RunView.from_doc(recompute.recomputed(saved), saved.path)
    folder = view.path / charts.CHARTS_DIR
    written: list[Path] = []
    for name, draw in charts.RUN_CHARTS:
        written += _with_svg(draw(view, folder / name))
    if charts.has_timeline(view.timeline):
        assert view.timeline is not None
        written += _with_svg(charts.timeline_chart(view.timeline, folder / charts.CHART_FILES["timeline"]))
    if charts.has_burst(view.burst):
        assert view.burst is not None
        written += _with_svg(charts.burst_chart(view.burst, folder / charts.CHART_FILES["burst"]))
    if charts.has_slow_clients(view.slow_clients):
        assert view.slow_clients is not None
        written += _with_svg(charts.slow_clients_chart(view.slow_clients, folder / charts.CHART_FILES["slow_clients"]))
    if charts.has_open(view.open):
        assert view.open is not None
        written += _with_svg(charts.open_latency_chart(view.open, folder / charts.CHART_FILES["open"]))
    store.write_summary(view.path, view.summary_rows())
    written.append(view.path / store.SUMMARY_FILE)
    text = report.markdown(view)
    files.write_atomically(view.path / REPORT_FILE, lambda f: f.write(text))
    written.append(view.path / REPORT_FILE)
    written.append(html_report.write_html(view, text))
    return written


def exit_status(run_dir: Path) -> int:
    """0 when every planned step was measured, 1 otherwise: a partial run is not a success. For an experiment's
    folder, 1 when a server of it failed."""
    run_dir = Path(run_dir)
    if is_experiment(run_dir):
        servers = [s for _, data in _experiments(run_dir) for s in (data.get("servers") or {}).values()]
        return 1 if any(isinstance(s, Mapping) and "error" in s for s in servers) else 0
    return 0 if RunView.load(run_dir).complete else 1
