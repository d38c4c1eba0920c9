"""Every table row has as many cells as its header: a row that silently loses columns misreports them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from runner import report
from tests.runs import SYNC, complete_run, repeated_run, step, table_rows_match_headers, view_of


def failed_and_missing() -> dict[str, Any]:
    """A run with a failed step and a missing one: the rows that have no figures to fill their cells."""
    run = complete_run()
    run["steps"][2] = {**step(SYNC, 50, rps=0, p50=0, p95=0), "status": "failed", "error": "server exited"}
    del run["steps"][2]["figures"]
    del run["steps"][3]
    run["status"] = "incomplete"
    return run


@pytest.mark.parametrize("build", [complete_run, repeated_run, failed_and_missing])
def test_every_markdown_table_row_matches_its_header(build: Callable[[], dict[str, Any]]) -> None:
    text = report.markdown(view_of(build()))
    assert text.count("\n|") > 10  # there are tables to check
    table_rows_match_headers(text)


def test_a_row_with_a_missing_cell_is_caught() -> None:
    with pytest.raises(AssertionError):
        table_rows_match_headers("| a | b |\n|---|---|\n| 1 |\n")
