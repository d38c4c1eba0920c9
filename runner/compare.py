"""``python -m runner.compare A B``: two runs of one scenario side by side, step by step, with a verdict on each
difference (``make compare A=... B=...``).

The command only: it reads both runs and checks that they may be compared (:mod:`runner.comparison`, which also
explains the spreads and the verdicts), prints the tables or, with ``--json``, the JSON (:mod:`runner.compare_render`),
and writes the markdown under ``--out-dir``, always to a new file (:func:`runner.files.write_new`).

Exit status: 0 compared, 1 the markdown file could not be written, 2 refused (runs that did not measure the same
thing, or a path that is not a run; the message names the file and the difference, and nothing is written).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from runner import compare_render, files
from runner.comparison import CompareError, check_comparable, compare, load

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT_DIR = ROOT / "results" / "compare"
EXIT_COULD_NOT_WRITE = 1
EXIT_REFUSED = 2


def _safe(name: str) -> str:
    """A run folder's name as a piece of a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "run"


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
    text = compare_render.markdown(comparison)
    stem = f"compare-{_safe(a.path.name)}-vs-{_safe(b.path.name)}"
    try:
        written = files.write_new(args.out_dir, stem, ".md", lambda handle: handle.write(text))
    except OSError as error:
        err.print(
            f"[red]error:[/] could not write the comparison under {escape(str(args.out_dir))}: {escape(str(error))}"
        )
        return EXIT_COULD_NOT_WRITE
    if args.json:
        sys.stdout.write(json.dumps(compare_render.to_json(comparison, written), indent=2, allow_nan=False) + "\n")
        err.print(f"written: {escape(str(written))}")
        return 0
    for line in compare_render.header_lines(comparison):
        out.print(escape(line), soft_wrap=True)
    for grid in compare_render.tables(comparison):
        out.print(grid)
    for line in compare_render.footer_lines(comparison):
        out.print(escape(line), soft_wrap=True)
    out.print(f"written: {escape(str(written))}", soft_wrap=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
