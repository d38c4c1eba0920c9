"""``python plots.py results/<run>``: redraw a run's charts, summary and report from its saved data alone.

A thin command: the drawing is :func:`runner.render.render` (the charts are in :mod:`runner.charts`). It also
redraws the chart of a folder an experiment wrote alone (``timeline.json`` or ``burst.json``).

Exit status: 0 when the folder was drawn (a partial run is drawn too: its report says what is missing), 2 when it
cannot be drawn: not a run, an unknown format version, or a damaged figure; the message names the file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from runner import store
from runner.render import is_experiment, render


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Redraw a run's charts and report from its saved data.")
    parser.add_argument("run", type=Path, help="a run folder (e.g. results/latest) or an experiment's")
    args = parser.parse_args(argv)
    try:
        written = render(args.run)
    except store.ResultsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (KeyError, TypeError, ValueError) as error:
        # The loader checks the structure charts and report rely on; anything it misses is still named, not dumped.
        saved = args.run if is_experiment(args.run) else args.run / store.RUN_FILE
        print(f"error: {saved} has a damaged figure ({error!r}); it cannot be drawn", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
