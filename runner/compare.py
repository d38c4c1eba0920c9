"""``python -m runner.compare A B``: two runs of one scenario side by side, step by step, with a verdict on each
difference.

A comparison only means something if both runs measured the same thing, so it is refused (exit status 2, with the
file and the difference named) for runs of different scenarios, runs of a scenario file that changed in between
(its sha256 is recorded), runs with different settings (think time, workload, users, servers, ...), and anything
that is not a run folder of a format version this tool reads. A step measured in only one of the runs (failed or
never reached) is listed as such, not compared.

Per (server, user level) the table gives throughput and p95 of A and B, the ratio B/A, and a verdict. A figure's
*spread* is how far it could have moved by chance (:func:`spread`): once steps are repeated, the min..max of the
repeats; until then, the 95% interval of the step's own sample (an exact Poisson interval on the window's
completion count for throughput, a distribution-free order-statistic interval for p95, see ``runner.stats``).

A difference is called "not significant" when the two spreads overlap. That rule is **conservative**: two 95%
intervals can overlap a little while the difference between the figures is significant at the 5% level, so it
misses some real differences rather than announce chance ones. It is *not* conservative about what the intervals
leave out: one window's sampling noise is not the run-to-run variation of a shared machine, which only repeated
runs measure. A run recorded before intervals were kept has no spread for p95; its verdict says so ("spread
unknown") instead of guessing one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from runner import store
from runner.report import is_finite, is_number, steps_by_level
from runner.stats import CONFIDENCE, MIN_REQUESTS, quantile_ranks, rate_interval

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT_DIR = ROOT / "results" / "compare"
EXIT_REFUSED = 2
COMPARE_FORMAT = "sync-async-bench/compare"
COMPARE_FORMAT_VERSION = 1

NOT_SIGNIFICANT = "not significant"
SPREAD_UNKNOWN = "spread unknown"
NO_FIGURE = "no figure"
SIGNIFICANT = ("B higher", "B lower")
# Short reasons a spread is unknown, explained once under the table rather than in every cell.
NOT_RECORDED = "not recorded"
TOO_FEW = "too few requests"

# Parts of a recorded configuration that say where a run came from rather than what it measured. The scenario's
# name and file hash are checked on their own; its description is covered by the hash.
NOT_SETTINGS = frozenset({"name", "description", "source", "source_sha256", "overrides", "run.results_dir"})
# Settings added after runs were recorded without them, and what their absence meant: a run from before repeats
# existed measured each step once, so it is comparable with a run that says repeats = 1.
IMPLIED_SETTINGS: dict[str, Any] = {"load.repeats": 1}

RULE = (
    f"'{NOT_SIGNIFICANT}' means the two {CONFIDENCE:.0%} intervals overlap. This rule is conservative: intervals "
    "can overlap slightly while the difference is still significant, so it misses some real differences rather "
    "than call chance ones real. The intervals hold one window's sampling noise only: the run-to-run variation of "
    "a shared machine is usually larger, so 'B higher' or 'B lower' says a difference is beyond each run's own "
    "noise, not that a third run will repeat it."
)
BASES = (
    f"Spread: throughput, the exact (Garwood) Poisson {CONFIDENCE:.0%} interval of the completions counted in the "
    f"window; p95, the distribution-free {CONFIDENCE:.0%} interval from the order statistics of the step's response "
    "times. When a step holds repeated measurements, their min..max is used instead."
)


def unknown_reasons() -> str:
    """The short reasons in the verdict column, spelt out; the thresholds come from ``runner.stats`` itself."""
    fewest = next(n for n in range(1, 100_000) if quantile_ranks(n, 0.95) is not None)
    return (
        f"'{SPREAD_UNKNOWN}': '{NOT_RECORDED}' when the run predates the intervals in run.json (measured before "
        f"they were kept); '{TOO_FEW}' when the step has fewer than the {fewest} requests a {CONFIDENCE:.0%} "
        f"interval for p95 needs. '{NO_FIGURE}': the step had fewer than {MIN_REQUESTS[0.95]} requests, too few for "
        "a p95 at all."
    )


class CompareError(Exception):
    """Two runs cannot be compared, or one is not a run; the message names the file and what is wrong."""


@dataclass(frozen=True)
class LoadedRun:
    label: str
    file: Path
    doc: dict[str, Any]

    @property
    def name(self) -> str:
        return self.file.parent.name


def load(label: str, path: Path) -> LoadedRun:
    """Read one run through the store, so its checks (a run folder, a known format version) apply here too."""
    try:
        doc = store.load_run(path)
    except store.ResultsError as error:
        raise CompareError(f"run {label}: {error}") from None
    return LoadedRun(label, path / store.RUN_FILE if path.is_dir() else path, doc)


# --- may these two runs be compared? ---------------------------------------------------------------------------

_ABSENT = object()


def settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The recorded configuration as dotted names, ``load.think_time_s`` or ``servers[0].workers``, so that a
    refusal can name exactly the settings that differ. Everything recorded counts unless listed in
    NOT_SETTINGS, so a setting added later is compared without anyone remembering to add it here."""
    flat: dict[str, Any] = {}

    def walk(value: Any, name: str) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, f"{name}.{key}" if name else str(key))
        elif isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
            for index, item in enumerate(value):
                walk(item, f"{name}[{index}]")
        else:
            flat[name] = value

    walk(config, "")
    for key, value in IMPLIED_SETTINGS.items():
        flat.setdefault(key, value)
    return {key: value for key, value in flat.items() if key not in NOT_SETTINGS}


def _setting_text(value: Any) -> str:
    return "absent" if value is _ABSENT else json.dumps(value)


def check_comparable(a: LoadedRun, b: LoadedRun) -> None:
    """Refuse two runs that did not measure the same thing: their differences would be the settings', not the
    code's or the machine's, and a table of ratios would hide that."""
    config_a, config_b = a.doc["config"], b.doc["config"]
    if config_a.get("name") != config_b.get("name"):
        raise CompareError(
            f"{a.file} is a run of scenario {config_a.get('name')!r} but {b.file} is a run of scenario "
            f"{config_b.get('name')!r}; only runs of one scenario are compared"
        )
    settings_a, settings_b = settings(config_a), settings(config_b)
    names = [*settings_a, *(key for key in settings_b if key not in settings_a)]
    changed = [
        f"{key} ({_setting_text(settings_a.get(key, _ABSENT))} in A, {_setting_text(settings_b.get(key, _ABSENT))} "
        "in B)"
        for key in names
        if settings_a.get(key, _ABSENT) != settings_b.get(key, _ABSENT)
    ]
    sha_a, sha_b = config_a.get("source_sha256"), config_b.get("source_sha256")
    if not changed and sha_a == sha_b:
        return
    problems = []
    if sha_a != sha_b:
        problems.append(
            f"its file changed between them (sha256 {str(sha_a)[:12]}… in A, {str(sha_b)[:12]}… in B)"
            + ("" if changed else "; no recorded setting differs, so a comment or the description was edited")
        )
    if changed:
        problems.append("these settings differ: " + "; ".join(changed))
    raise CompareError(
        f"{a.file} (A) and {b.file} (B) both ran scenario {config_a.get('name')!r}, but "
        + ", and ".join(problems)
        + ". Only runs of the same scenario file with the same settings are compared."
    )


# --- spread and verdict ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """How far a figure could have moved by chance: an interval, or the short reason there is none."""

    interval: tuple[float, float] | None
    basis: str


@dataclass(frozen=True)
class Metric:
    key: str
    title: str
    value: Callable[[Mapping[str, Any]], float | None]
    sample_spread: Callable[[Mapping[str, Any]], Spread]
    text: Callable[[float], str]
    range_text: Callable[[float, float], str]


def measurements(step: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every measurement of a step, as its figures: each ok repeat's when the run has repeats (the combined record
    of ``runner.repeats`` lists them), otherwise the step's own. :func:`spread` and :func:`point` take it from
    there, so a repeated step is judged by its min..max and its median."""
    combined = step.get("repeats")
    if isinstance(combined, Mapping) and combined.get("figures"):
        return list(combined["figures"])
    return [step["figures"]]


def spread(metric: Metric, figures: Sequence[Mapping[str, Any]]) -> Spread:
    """Repeats show the spread directly, so two or more give their min..max; a single measurement has only the
    interval of its own sample to go on."""
    if len(figures) >= 2:
        values = [metric.value(f) for f in figures]
        known = [v for v in values if v is not None]
        if len(known) < len(values):
            return Spread(None, f"a repeat has no {metric.title}")
        return Spread((min(known), max(known)), f"min..max of {len(values)} repeats")
    return metric.sample_spread(figures[0])


def point(metric: Metric, figures: Sequence[Mapping[str, Any]]) -> float | None:
    """The figure compared: the median of the repeats, which one odd repeat cannot drag, or the one value."""
    values = [metric.value(f) for f in figures]
    known = [v for v in values if v is not None]
    if not values or len(known) < len(values):
        return None
    return float(statistics.median(known))


def _rps(figures: Mapping[str, Any]) -> float | None:
    value = figures.get("rps")
    return float(value) if is_finite(value) else None


def _rps_spread(figures: Mapping[str, Any]) -> Spread:
    count, window = figures.get("completed_in_window"), figures.get("window_s")
    interval = (
        rate_interval(count, float(window))
        if isinstance(count, int) and not isinstance(count, bool) and is_number(window)
        else None
    )
    if interval is None:
        return Spread(None, NOT_RECORDED)
    return Spread(interval, f"{CONFIDENCE:.0%} Poisson interval of {count} completions")


def _latency_metric(percent: int) -> Metric:
    """A latency percentile with its order-statistic interval, as ``runner.stats`` records it (p50 or p95)."""
    key, ci_key = f"p{percent}_ms", f"p{percent}_ci_ms"

    def value(figures: Mapping[str, Any]) -> float | None:
        v = (figures.get("latency") or {}).get(key)
        return float(v) if is_finite(v) else None

    def sample_spread(figures: Mapping[str, Any]) -> Spread:
        latency = figures.get("latency") or {}
        if ci_key not in latency:
            return Spread(None, NOT_RECORDED)
        ci = latency[ci_key]
        if ci is None:
            return Spread(None, TOO_FEW)
        if not (isinstance(ci, list) and len(ci) == 2 and all(is_finite(x) for x in ci)):
            return Spread(None, "unreadable interval")
        return Spread((float(ci[0]), float(ci[1])), f"{CONFIDENCE:.0%} order-statistic interval")

    return Metric(key, f"p{percent}", value, sample_spread, ms_text, ms_range_text)


def _digits(value: float) -> str:
    """Three significant figures (whole numbers from 100 up): enough to see a difference, few enough to read."""
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def rate_text(value: float) -> str:
    return _digits(value)


def rate_range_text(low: float, high: float) -> str:
    return f"{_digits(low)}–{_digits(high)}"


def ms_text(value: float) -> str:
    """A duration in the unit a reader takes in at a glance: ``9.52 ms``, ``152 ms``, ``13.3 s``."""
    return f"{_digits(value / 1000)} s" if value >= 1000 else f"{_digits(value)} ms"


def ms_range_text(low: float, high: float) -> str:
    """Both ends in one unit, the high end's, so that an interval reads as one quantity: ``90.0-110 ms``."""
    if high >= 1000:
        return f"{_digits(low / 1000)}–{_digits(high / 1000)} s"
    return f"{_digits(low)}–{_digits(high)} ms"


METRICS = (
    Metric("rps", "req/s", _rps, _rps_spread, rate_text, rate_range_text),
    _latency_metric(95),
)


def verdict(a: float | None, b: float | None, spread_a: Spread, spread_b: Spread) -> tuple[str, str]:
    """(verdict, why). Overlapping spreads are "not significant"; a missing spread is stated, never guessed."""
    if a is None or b is None:
        return NO_FIGURE, "none in " + " and ".join(label for label, v in (("A", a), ("B", b)) if v is None)
    if spread_a.interval is None or spread_b.interval is None:
        reasons = {label: s.basis for label, s in (("A", spread_a), ("B", spread_b)) if s.interval is None}
        if len(reasons) == 2 and len(set(reasons.values())) == 1:
            return SPREAD_UNKNOWN, reasons["A"]
        return SPREAD_UNKNOWN, "; ".join(f"{label}: {why}" for label, why in reasons.items())
    (low_a, high_a), (low_b, high_b) = spread_a.interval, spread_b.interval
    if low_a <= high_b and low_b <= high_a:
        return NOT_SIGNIFICANT, "the intervals overlap"
    return ("B higher" if low_b > high_a else "B lower"), "the intervals do not overlap"


# --- the comparison --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One metric of one step in both runs."""

    metric: Metric
    a: float | None
    b: float | None
    spread_a: Spread | None
    spread_b: Spread | None
    ratio: float | None
    verdict: str
    why: str


@dataclass(frozen=True)
class StepRow:
    server: str
    users: int
    # "ok", "missing" (never recorded) or the step's own status, such as "failed".
    state_a: str
    state_b: str
    figures: tuple[Figure, ...]

    @property
    def status(self) -> str:
        """Compared only when measured in both runs; otherwise which run has it."""
        if self.state_a == "ok" and self.state_b == "ok":
            return "compared"
        if self.state_a == "ok":
            return "only in A"
        if self.state_b == "ok":
            return "only in B"
        return "in neither"

    @property
    def detail(self) -> str:
        return ", ".join(
            f"{label}: {state}" for label, state in (("A", self.state_a), ("B", self.state_b)) if state != "ok"
        )


@dataclass(frozen=True)
class Comparison:
    a: LoadedRun
    b: LoadedRun
    rows: tuple[StepRow, ...]
    notes: tuple[str, ...]


def _state(step: Mapping[str, Any] | None) -> str:
    if step is None:
        return "missing"
    return "ok" if step.get("status") == "ok" else str(step.get("status") or "failed")


def _row(server: str, users: int, step_a: Mapping[str, Any] | None, step_b: Mapping[str, Any] | None) -> StepRow:
    state_a, state_b = _state(step_a), _state(step_b)
    row = StepRow(server, users, state_a, state_b, ())
    measured_a = measurements(step_a) if step_a is not None and state_a == "ok" else None
    measured_b = measurements(step_b) if step_b is not None and state_b == "ok" else None
    figures = []
    for metric in METRICS:
        a = point(metric, measured_a) if measured_a else None
        b = point(metric, measured_b) if measured_b else None
        spread_a = spread(metric, measured_a) if measured_a else None
        spread_b = spread(metric, measured_b) if measured_b else None
        ratio = b / a if a is not None and b is not None and a > 0 else None
        if spread_a is not None and spread_b is not None:
            word, why = verdict(a, b, spread_a, spread_b)
        else:
            word, why = row.status, row.detail
        figures.append(Figure(metric, a, b, spread_a, spread_b, ratio, word, why))
    return replace(row, figures=tuple(figures))


def compare(a: LoadedRun, b: LoadedRun) -> Comparison:
    """Every planned step of the (shared) configuration, server by server, then any step recorded beyond it."""
    steps_a, steps_b = steps_by_level(a.doc), steps_by_level(b.doc)
    config = a.doc["config"]
    planned = [(s["name"], int(n)) for s in config["servers"] for n in sorted(config["load"]["users"])]
    extra = sorted((steps_a.keys() | steps_b.keys()) - set(planned))
    rows = tuple(
        _row(server, users, steps_a.get((server, users)), steps_b.get((server, users)))
        for server, users in [*planned, *extra]
    )
    return Comparison(a, b, rows, tuple(environment_notes(a, b)))


def environment_notes(a: LoadedRun, b: LoadedRun) -> list[str]:
    """What else differs between the runs: the reader must know whether a difference is the code's, the
    machine's or a run that did not finish."""
    notes = []
    for run in (a, b):
        if run.doc.get("status") != "complete":
            notes.append(f"Run {run.label} is marked {run.doc.get('status')!r}: not every step was measured.")
    meta_a, meta_b = a.doc.get("metadata") or {}, b.doc.get("metadata") or {}
    for key, label in (("cpu_model", "CPU model"), ("cpu_count", "core count"), ("os", "OS"), ("python", "Python")):
        if meta_a.get(key) != meta_b.get(key):
            notes.append(f"{label} differs: {meta_a.get(key)} in A, {meta_b.get(key)} in B.")
    packages_a, packages_b = meta_a.get("packages") or {}, meta_b.get("packages") or {}
    changed = [
        f"{name} {packages_a.get(name, '-')} -> {packages_b.get(name, '-')}"
        for name in sorted(packages_a.keys() | packages_b.keys())
        if packages_a.get(name) != packages_b.get(name)
    ]
    if changed:
        notes.append("Package versions differ (A -> B): " + ", ".join(changed) + ".")
    return notes


def _commit(run: LoadedRun) -> str:
    git = (run.doc.get("metadata") or {}).get("git") or {}
    commit = str(git.get("commit") or "?")[:10]
    return commit + (" (uncommitted changes)" if git.get("dirty") else "")


def _run_facts(run: LoadedRun) -> dict[str, Any]:
    meta = run.doc.get("metadata") or {}
    return {
        "path": str(run.file.parent),
        "name": run.name,
        "status": run.doc.get("status"),
        "date": meta.get("date") or run.doc.get("started"),
        "commit": _commit(run),
    }


# --- output ----------------------------------------------------------------------------------------------------


def _interval_text(metric: Metric, spread: Spread | None) -> str:
    if spread is None or spread.interval is None:
        return ""
    return metric.range_text(*spread.interval)


def _cells(row: StepRow, figure: Figure, *, markdown: bool) -> list[str]:
    """A, B (each with its spread), B/A and the verdict of one metric, as table cells. The terminal puts the
    spread on a line of its own so that a table per metric fits 80 columns."""
    metric = figure.metric
    cells = []
    for value, spread_, state in ((figure.a, figure.spread_a, row.state_a), (figure.b, figure.spread_b, row.state_b)):
        if state != "ok":
            cells.append(state)
            continue
        text = metric.text(value) if value is not None else "–"
        interval = _interval_text(metric, spread_) if value is not None else ""
        if interval:
            text += f" ({interval})" if markdown else f"\n{interval}"
        cells.append(text)
    cells.append(f"{figure.ratio:.2f}" if figure.ratio is not None else "–")
    word = figure.verdict
    if word in (SPREAD_UNKNOWN, NO_FIGURE):
        word += f" ({figure.why})" if markdown else f"\n({figure.why})"
    elif word in SIGNIFICANT and markdown:
        word = f"**{word}**"
    cells.append(word)
    return cells


def _metric_heading(metric: Metric) -> str:
    return {"rps": "Throughput (requests/s)", "p95_ms": "p95 response time"}.get(metric.key, metric.title)


def tables(comparison: Comparison) -> list[Table]:
    """One table per metric, grouped by server: the rows of a server read as the curve they are."""
    out = []
    for index, metric in enumerate(METRICS):
        grid = Table(title=_metric_heading(metric), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        grid.add_column("server")
        grid.add_column("users", justify="right")
        grid.add_column("A", justify="right")
        grid.add_column("B", justify="right")
        grid.add_column("B/A", justify="right")
        grid.add_column("verdict")
        previous = None
        for row in comparison.rows:
            if previous is not None and row.server != previous:
                grid.add_section()
            figure = row.figures[index]
            cells = [row.server if row.server != previous else "", str(row.users)]
            cells += _cells(row, figure, markdown=False)
            style = "bold" if figure.verdict in SIGNIFICANT else None
            grid.add_row(*(Text(cell) for cell in cells), style=style)
            previous = row.server
        out.append(grid)
    return out


def header_lines(comparison: Comparison) -> list[str]:
    config = comparison.a.doc["config"]
    sha = str(config.get("source_sha256"))[:12]
    lines = [f"Scenario {config.get('name')!r} (file sha256 {sha}…), the same settings in both runs."]
    for run in (comparison.a, comparison.b):
        facts = _run_facts(run)
        lines.append(f"{run.label}: {facts['path']} ({facts['status']}, {facts['date']}, commit {facts['commit']})")
    return lines


def footer_lines(comparison: Comparison) -> list[str]:
    return [BASES, RULE, unknown_reasons(), *comparison.notes]


def markdown(comparison: Comparison) -> str:
    a, b = comparison.a, comparison.b
    lines = [f"# Comparing `{a.name}` (A) with `{b.name}` (B)", ""]
    lines += [header_lines(comparison)[0], ""]
    lines += ["| | A | B |", "|---|---|---|"]
    facts_a, facts_b = _run_facts(a), _run_facts(b)
    for key in ("path", "status", "date", "commit"):
        lines.append(f"| {key} | {facts_a[key]} | {facts_b[key]} |")
    lines += [
        "",
        "Each figure is followed by its spread in brackets (see below); B/A is B's figure divided by A's.",
        "",
    ]
    for index, metric in enumerate(METRICS):
        lines += [f"## {_metric_heading(metric)}", ""]
        lines += ["| server | users | A | B | B/A | verdict |", "|---|---:|---:|---:|---:|---|"]
        for row in comparison.rows:
            cells = [row.server, str(row.users), *_cells(row, row.figures[index], markdown=True)]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    lines += ["## How to read it", ""]
    lines += [f"- {line}" for line in footer_lines(comparison)]
    return "\n".join(lines) + "\n"


def to_json(comparison: Comparison, written: Path | None) -> dict[str, Any]:
    config = comparison.a.doc["config"]

    def spread_json(spread_: Spread | None) -> dict[str, Any] | None:
        if spread_ is None:
            return None
        return {"interval": list(spread_.interval) if spread_.interval else None, "basis": spread_.basis}

    return {
        "format": COMPARE_FORMAT,
        "format_version": COMPARE_FORMAT_VERSION,
        "scenario": config.get("name"),
        "source_sha256": config.get("source_sha256"),
        "a": _run_facts(comparison.a),
        "b": _run_facts(comparison.b),
        "confidence": CONFIDENCE,
        "rule": RULE,
        "steps": [
            {
                "server": row.server,
                "users": row.users,
                "status": row.status,
                "detail": row.detail,
                **{
                    f.metric.key: {
                        "a": f.a,
                        "b": f.b,
                        "ratio": f.ratio,
                        "spread_a": spread_json(f.spread_a),
                        "spread_b": spread_json(f.spread_b),
                        "verdict": f.verdict,
                        "why": f.why,
                    }
                    for f in row.figures
                },
            }
            for row in comparison.rows
        ],
        "notes": list(comparison.notes),
        "markdown": str(written) if written else None,
    }


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "run"


def write_new(out_dir: Path, stem: str, text: str) -> Path:
    """Write ``text`` to ``<stem>.md``, or ``<stem>-2.md`` and so on if taken: a comparison never replaces an
    earlier one. The text is written aside and hard-linked into place, because a link, unlike a rename, fails
    rather than replace an existing file, and a reader never sees half a file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=".tmp", dir=out_dir)
    try:
        # mkstemp makes the file private; a comparison is meant to be read by others, like the runs (see store).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        for attempt in range(1, 1000):
            target = out_dir / (f"{stem}.md" if attempt == 1 else f"{stem}-{attempt}.md")
            try:
                os.link(tmp, target)
            except FileExistsError:
                continue
            return target
        raise OSError(f"no free file name for {stem}.md in {out_dir}")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m runner.compare",
        description=(
            "Compare two runs of one scenario step by step: throughput and p95 of each, B/A, and whether the "
            "difference lies outside both runs' spread. Runs of different scenarios or settings are refused."
        ),
    )
    p.add_argument("a", type=Path, metavar="A", help="the first run folder (the baseline), e.g. results/<run>")
    p.add_argument("b", type=Path, metavar="B", help="the second run folder, compared with A")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON on stdout instead of a table")
    p.add_argument(
        "--out-dir",
        type=Path,
        default=DEFAULT_OUT_DIR,
        metavar="DIR",
        help=f"where the markdown file goes (default: {DEFAULT_OUT_DIR.relative_to(ROOT)}); never overwritten",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status: 0 compared, 1 the markdown file could not be written, 2 refused (bad input, nothing written)."""
    args = parser().parse_args(argv)
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        a = load("A", args.a)
        b = load("B", args.b)
        check_comparable(a, b)
    except CompareError as error:
        err.print(f"[red]error:[/] cannot compare: {escape(str(error))}")
        return EXIT_REFUSED
    comparison = compare(a, b)
    try:
        written = write_new(args.out_dir, f"compare-{_safe(a.name)}-vs-{_safe(b.name)}", markdown(comparison))
    except OSError as error:
        err.print(
            f"[red]error:[/] could not write the comparison under {escape(str(args.out_dir))}: {escape(str(error))}"
        )
        return 1
    if args.json:
        sys.stdout.write(json.dumps(to_json(comparison, written), indent=2, allow_nan=False) + "\n")
        err.print(f"written: {escape(str(written))}")
        return 0
    for line in header_lines(comparison):
        out.print(escape(line), soft_wrap=True)
    for grid in tables(comparison):
        out.print(grid)
    for line in footer_lines(comparison):
        out.print(escape(line), soft_wrap=True)
    out.print(f"written: {escape(str(written))}", soft_wrap=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
