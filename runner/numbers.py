"""Figures as a reader sees them: the one place that decides what counts as a number and how one is printed.

A saved run stores an absent figure as null and a withheld percentile as NaN; every table, chart, comparison and
progress line goes through these few functions, so a missing figure always reads as a dash and a duration always
carries the unit a reader takes in at a glance.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

DASH = "–"
# A table's head for the VM's steal per step: seconds per core, core 0 first, over the whole step (warm-up and
# drain too), as fmt_steal(..., compact=True) writes its cells.
STEAL_HEAD = "VM steal s per core"


def is_finite(value: Any) -> TypeGuard[int | float]:
    """A real, finite number (not a bool, not NaN, not None): what may be drawn or printed as a figure."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_number(value: Any) -> TypeGuard[int | float]:
    """A positive, finite figure: what a duration, a rate or a CPU share must be to divide by or compare."""
    return is_finite(value) and value > 0


def fmt(value: Any, digits: int = 1) -> str:
    """A plain figure with a fixed number of decimals, or a dash where there is none."""
    return f"{value:.{digits}f}" if is_finite(value) else DASH


def fmt_ms(value: Any) -> str:
    """A duration with its unit: ``12.0 ms``, ``110 ms``, ``9.6 s``; a dash where there is none."""
    if not is_finite(value):
        return DASH
    if value >= 1_000:
        return f"{value / 1000:.1f} s"
    if value >= 100:
        return f"{value:.0f} ms"
    return f"{value:.1f} ms"


def sig3(value: float) -> str:
    """Three significant figures (whole numbers from 100 up): enough to see a difference, few enough to read."""
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_ms_range(low: float, high: float) -> str:
    """Both ends in one unit, the high end's, so that an interval reads as one quantity: ``90.0-110 ms``."""
    if high >= 1000:
        return f"{sig3(low / 1000)}–{sig3(high / 1000)} s"
    return f"{sig3(low)}–{sig3(high)} ms"


def ratio(a: Any, b: Any) -> str:
    """``a / b`` as ``2.9x``, or a dash when either is missing or b is not positive."""
    if not (is_finite(a) and is_finite(b)) or b <= 0:
        return DASH
    return f"{a / b:.1f}x"


def fmt_steal(steal_s: Any, compact: bool = False) -> str:
    """The VM's steal time per core over a step, as recorded (``steal_s``): ``core 0 0.12 s, core 1 0.01 s``, or
    ``0.12 / 0.01`` for a table's cell; a dash for a run that did not record it."""
    if not isinstance(steal_s, list | tuple) or not steal_s or not all(is_finite(v) for v in steal_s):
        return DASH
    if compact:
        return " / ".join(f"{seconds:.2f}" for seconds in steal_s)
    return ", ".join(f"core {core} {seconds:.2f} s" for core, seconds in enumerate(steal_s))
