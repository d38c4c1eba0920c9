"""A comparison as a reader gets it: the terminal's tables, the markdown file and the JSON."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from runner import compare_render
from runner.comparison import METRICS, NOT_RECORDED, NOT_SIGNIFICANT, SPREAD_UNKNOWN, Comparison, Spread, compare
from tests.runs import (
    ASYNC,
    SYNC,
    sampled_run,
    sampled_step,
    sampled_steps,
    table_rows_match_headers,
    view_of,
)

RPS, P95 = METRICS


def comparison_of(a: dict[str, Any], b: dict[str, Any]) -> Comparison:
    return compare(view_of(a, Path("/runs/20260101T000000Z-tiny")), view_of(b, Path("/runs/20260102T000000Z-tiny")))


def terminal(comparison: Comparison) -> str:
    """What the command prints, less its last line: header, tables and footer, as plain text 80 columns wide."""
    console = Console(record=True, width=80, file=io.StringIO())
    for line in compare_render.header_lines(comparison):
        console.print(line, soft_wrap=True, markup=False)
    for grid in compare_render.tables(comparison):
        console.print(grid)
    for line in compare_render.footer_lines(comparison):
        console.print(line, soft_wrap=True, markup=False)
    return console.export_text()


def beyond() -> Comparison:
    """B does 1.5 times A's throughput and has two thirds of its p95, well outside both spreads; and B stopped
    before measuring the sync server at 50 users."""
    a = sampled_run(sampled_steps(completed=600, p95=150.0))
    steps = [s for s in sampled_steps(completed=900, p95=100.0) if (s["server"], s["users"]) != (SYNC, 50)]
    return comparison_of(a, sampled_run(steps, status="interrupted"))


# --- figures -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "value", "text"),
    [(RPS, 9.9, "9.90"), (RPS, 117.4, "117"), (P95, 152.4, "152 ms"), (P95, 12.25, "12.2 ms"), (P95, 3600, "3.6 s")],
)
def test_a_figure_is_shown_in_its_unit(metric: Any, value: float, text: str) -> None:
    assert compare_render.value_text(metric, value) == text


def test_a_spread_is_shown_in_one_unit_or_not_at_all() -> None:
    assert compare_render.range_text(RPS, Spread((8.2, 11.84), "test")) == "8.20–11.8"
    assert compare_render.range_text(P95, Spread((990.0, 1100.0), "test")) == "0.99–1.10 s"
    assert compare_render.range_text(P95, Spread(None, NOT_RECORDED)) == ""
    assert compare_render.range_text(P95, None) == ""


# --- the terminal --------------------------------------------------------------------------------------------------


def test_the_table_shows_ratios_verdicts_and_says_the_rule_is_conservative() -> None:
    run = sampled_run()
    text = terminal(comparison_of(run, run))
    assert "1.00" in text
    assert NOT_SIGNIFICANT in text
    assert "conservative" in text
    assert SYNC in text and ASYNC in text
    assert "Throughput (requests/s)" in text and "p95 response time" in text


def test_the_table_gives_each_spread_and_each_step_missing_from_a_run() -> None:
    text = terminal(beyond())
    assert "B higher" in text and "B lower" in text
    assert "1.50" in text
    assert "46.1–54.2" in text  # A's throughput's Poisson interval: 600 completions in 12 s
    assert "90.0–110 ms" in text  # B's p95 interval
    assert "missing" in text
    assert "Run B is marked 'interrupted'" in text
    assert "Scenario 'tiny'" in text and "/runs/20260101T000000Z-tiny" in text


def test_the_terminal_puts_a_spread_under_its_figure_not_beside_it() -> None:
    lines = terminal(beyond()).splitlines()
    row = next(index for index, line in enumerate(lines) if line.strip().startswith(f"{SYNC}        5"))
    assert lines[row].split()[2:] == ["50.0", "75.0", "1.50", "B", "higher"]
    assert lines[row + 1].split() == ["46.1–54.2", "70.2–80.1"]


def test_an_unknown_spread_is_explained_once_under_the_table() -> None:
    old = sampled_run(sampled_steps(with_ci=False))
    text = terminal(comparison_of(old, old))
    assert SPREAD_UNKNOWN in text and f"({NOT_RECORDED})" in text
    assert compare_render.unknown_reasons() in " ".join(text.split())
    assert "72 requests" in compare_render.unknown_reasons()


# --- the markdown file ---------------------------------------------------------------------------------------------


def test_the_markdown_file_names_both_runs_and_shows_every_step() -> None:
    text = compare_render.markdown(beyond())
    assert text.startswith("# Comparing `20260101T000000Z-tiny` (A) with `20260102T000000Z-tiny` (B)\n")
    assert "| status | complete | interrupted |" in text
    assert "| flask-gunicorn | 5 | 50.0 (46.1–54.2) | 75.0 (70.2–80.1) | 1.50 | **B higher** |" in text
    assert "| flask-gunicorn | 50 | 50.0 (46.1–54.2) | missing | – | only in A |" in text
    assert "| fastapi-uvicorn | 50 | 150 ms (140–160 ms) | 100 ms (90.0–110 ms) | 0.67 | **B lower** |" in text
    assert "## How to read it" in text
    assert "conservative" in text
    table_rows_match_headers(text)


def test_the_markdown_file_says_why_a_spread_is_unknown_in_the_cell() -> None:
    old = sampled_run(sampled_steps(with_ci=False))
    text = compare_render.markdown(comparison_of(old, sampled_run()))
    assert f"| {SPREAD_UNKNOWN} (A: {NOT_RECORDED}) |" in text
    table_rows_match_headers(text)


def test_a_failed_step_reads_as_failed() -> None:
    b = sampled_run([*sampled_steps()[:3], sampled_step(ASYNC, 50, status="failed")], status="failed")
    text = compare_render.markdown(comparison_of(sampled_run(), b))
    assert "| fastapi-uvicorn | 50 | 50.0 (46.1–54.2) | failed | – | only in A |" in text


# --- JSON ----------------------------------------------------------------------------------------------------------


def test_json_holds_every_figure_its_spread_and_verdict() -> None:
    data = compare_render.to_json(beyond(), Path("/out/compare-a-vs-b.md"))
    json.dumps(data, allow_nan=False)
    assert data["format"] == compare_render.COMPARE_FORMAT
    assert data["format_version"] == compare_render.COMPARE_FORMAT_VERSION
    assert data["scenario"] == "tiny"
    assert data["a"]["path"] == "/runs/20260101T000000Z-tiny"
    assert data["b"]["status"] == "interrupted"
    assert data["markdown"] == "/out/compare-a-vs-b.md"
    assert data["confidence"] == 0.95
    steps = {(s["server"], s["users"]): s for s in data["steps"]}
    row = steps[(ASYNC, 50)]
    assert row["status"] == "compared"
    assert row["rps"]["ratio"] == pytest.approx(1.5)
    assert row["rps"]["verdict"] == "B higher"
    assert row["p95_ms"]["spread_b"] == {"interval": [90.0, 110.0], "basis": "95% order-statistic interval"}
    assert steps[(SYNC, 50)]["detail"] == "B: missing"
    assert steps[(SYNC, 50)]["rps"]["spread_b"] is None
    assert any("interrupted" in note for note in data["notes"])


def test_json_without_a_markdown_file_says_so() -> None:
    run = sampled_run()
    assert compare_render.to_json(comparison_of(run, run), None)["markdown"] is None
