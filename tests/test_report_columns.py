"""Every table row has as many cells as its header: a row that silently loses columns misreports them."""

from __future__ import annotations

from runner import report
from tests.runs import complete_run


def test_every_markdown_table_row_matches_its_header() -> None:
    text = report.markdown(complete_run())
    header_cells = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header_cells = None
            continue
        cells = line.count("|") - 1
        if header_cells is None:
            header_cells = cells
        else:
            assert cells == header_cells, f"{cells} cells where the header has {header_cells}: {line}"
