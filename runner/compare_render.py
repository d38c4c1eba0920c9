"""A :class:`~runner.comparison.Comparison` as a reader gets it: rich tables for the terminal, a markdown file,
and JSON for scripts. All three say the same things (each figure with its spread, B/A, the verdict and why) and
end with how to read them, so a table is never read without the rule behind its verdicts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from runner.comparison import (
    METRICS,
    NO_FIGURE,
    NOT_RECORDED,
    NOT_SIGNIFICANT,
    SIGNIFICANT,
    SPREAD_UNKNOWN,
    TOO_FEW,
    Comparison,
    Figure,
    Metric,
    Spread,
    StepRow,
    run_facts,
)
from runner.numbers import DASH, fmt, fmt_ms, fmt_ms_range, sig3
from runner.stats import CONFIDENCE, MIN_REQUESTS, quantile_ranks

COMPARE_FORMAT = "sync-async-bench/compare"
COMPARE_FORMAT_VERSION = 1

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


# --- cells -----------------------------------------------------------------------------------------------------


def _is_duration(metric: Metric) -> bool:
    return metric.key.endswith("_ms")


def value_text(metric: Metric, value: float) -> str:
    """A figure in its unit: a duration as ``152 ms`` or ``3.6 s``, a rate with three significant figures."""
    return fmt_ms(value) if _is_duration(metric) else sig3(value)


def range_text(metric: Metric, spread: Spread | None) -> str:
    """A spread's interval with both ends in one unit, or nothing where there is none."""
    if spread is None or spread.interval is None:
        return ""
    low, high = spread.interval
    return fmt_ms_range(low, high) if _is_duration(metric) else f"{sig3(low)}–{sig3(high)}"


def _cells(row: StepRow, figure: Figure, *, markdown: bool) -> list[str]:
    """A, B (each with its spread), B/A and the verdict of one metric, as table cells. The terminal puts the
    spread on a line of its own so that a table per metric fits 80 columns."""
    metric = figure.metric
    cells = []
    for value, spread, state in ((figure.a, figure.spread_a, row.state_a), (figure.b, figure.spread_b, row.state_b)):
        if state != "ok":
            cells.append(state)
            continue
        text = value_text(metric, value) if value is not None else DASH
        interval = range_text(metric, spread) if value is not None else ""
        if interval:
            text += f" ({interval})" if markdown else f"\n{interval}"
        cells.append(text)
    cells.append(fmt(figure.ratio, 2))
    word = figure.verdict
    if word in (SPREAD_UNKNOWN, NO_FIGURE):
        word += f" ({figure.why})" if markdown else f"\n({figure.why})"
    elif word in SIGNIFICANT and markdown:
        word = f"**{word}**"
    cells.append(word)
    return cells


def _metric_heading(metric: Metric) -> str:
    return {"rps": "Throughput (requests/s)", "p95_ms": "p95 response time"}.get(metric.key, metric.title)


# --- the terminal ----------------------------------------------------------------------------------------------


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
    """What was compared: the scenario, and each run's folder, status, date and commit."""
    config = comparison.a.config
    lines = [f"Scenario {config.name!r} (file sha256 {config.source_sha256[:12]}…), the same settings in both runs."]
    for label, run in (("A", comparison.a), ("B", comparison.b)):
        facts = run_facts(run)
        lines.append(f"{label}: {facts['path']} ({facts['status']}, {facts['date']}, commit {facts['commit']})")
    return lines


def footer_lines(comparison: Comparison) -> list[str]:
    """How to read the tables, then what else differs between the runs."""
    return [BASES, RULE, unknown_reasons(), *comparison.notes]


# --- the markdown file -----------------------------------------------------------------------------------------


def markdown(comparison: Comparison) -> str:
    a, b = comparison.a, comparison.b
    lines = [f"# Comparing `{a.path.name}` (A) with `{b.path.name}` (B)", ""]
    lines += [header_lines(comparison)[0], ""]
    lines += ["| | A | B |", "|---|---|---|"]
    facts_a, facts_b = run_facts(a), run_facts(b)
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


# --- JSON ------------------------------------------------------------------------------------------------------


def _spread_json(spread: Spread | None) -> dict[str, Any] | None:
    if spread is None:
        return None
    return {"interval": list(spread.interval) if spread.interval else None, "basis": spread.basis}


def to_json(comparison: Comparison, written: Path | None) -> dict[str, Any]:
    """Everything the tables say, as numbers; ``written`` is the markdown file's path, when there is one."""
    config = comparison.a.config
    return {
        "format": COMPARE_FORMAT,
        "format_version": COMPARE_FORMAT_VERSION,
        "scenario": config.name,
        "source_sha256": config.source_sha256,
        "a": run_facts(comparison.a),
        "b": run_facts(comparison.b),
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
                        "spread_a": _spread_json(f.spread_a),
                        "spread_b": _spread_json(f.spread_b),
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
