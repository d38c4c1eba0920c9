"""Repeated steps: each (server, users) step measured R times, folded into one row with its spread.

One window of one run says how much its own sample could move by chance, not how much the next run on a shared
machine would differ: only repeating the step shows that. The sweep measures every repeat as a fresh server and
a fresh Locust run, and records each as its own step record with ``"repeat": i`` (1-based; a record without it,
from before repeats existed, is repeat 1). This module turns those records back into one figure per
(server, users) for tables and charts, and says how far the repeats disagreed. It is pure: run document in,
groups out, so the report, the summary, the charts and the comparison all read the same numbers.

**The rule for what a table shows.** The representative of a group is the ok repeat in the middle of the
throughput order (for an even count, the lower of the two middle ones): a real measurement, so its per-endpoint
figures, CPU, memory, notes and saturation belong together. Its headline figures, throughput and the p50, p95
and mean response times, are then replaced by the *medians over the ok repeats*, the same medians the spread
gives and the comparison compares, so a number in the main table is the median in the spread table. Every other
figure (p90, p99, max, per endpoint, intervals) is the representative's own. With one planned repeat nothing is
replaced or added: the record shown is the step's own record, exactly as before repeats existed.

**What is flagged.** A group is flagged when the spread of its throughput or of its median response time,
(max - min) / median, exceeds :data:`FLAG_SPREAD_PCT`. p95 is shown but not flagged: it rests on the slowest
twentieth of a window's requests (15 of 300), so its own sampling noise routinely exceeds 10% with nothing wrong
with the machine; a flag on it would mark nearly every step and stop meaning anything. Throughput and the median
rest on the whole window, so a wider spread there says the machine, not the sample, moved.
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

# A step whose throughput or median differs by more than this between its repeats, relative to their median.
FLAG_SPREAD_PCT = 10.0
# Figures whose spread is worked out: the headline figures of the report's table (see figure() for where each is).
SPREAD_METRICS = ("rps", "p50_ms", "p95_ms", "mean_ms")
# Of those, the ones whose spread raises a flag (see the module's docstring for why not p95).
FLAGGED_METRICS = ("rps", "p50_ms")


class Range(TypedDict):
    """One figure over a group's ok repeats. ``spread_pct`` is None with fewer than two values: one
    measurement has no spread to give."""

    min: float
    median: float
    max: float
    spread_pct: float | None
    n: int


def repeat_of(record: Mapping[str, Any]) -> int:
    """A step record's repeat number; records from before repeats existed are the first (and only) repeat."""
    return int(record.get("repeat", 1))


def step_key(record: Mapping[str, Any]) -> tuple[str, int, int]:
    """(server, users, repeat): what identifies one measurement, for resuming and for grouping."""
    return str(record["server"]), int(record["users"]), repeat_of(record)


def planned_repeats(run: Mapping[str, Any]) -> int:
    """How many times the run's configuration measures each step; a configuration saved before repeats existed
    measured each once."""
    return int(run["config"]["load"].get("repeats", 1))


def figure(figures: Mapping[str, Any], metric: str) -> float | None:
    """One of SPREAD_METRICS from a step's figures, or None where the step has none (p95 of too few requests)."""
    value = figures.get("rps") if metric == "rps" else (figures.get("latency") or {}).get(metric)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def spread_of(measured: Sequence[Mapping[str, Any]]) -> dict[str, Range]:
    """Min, median and max of each SPREAD_METRICS figure over ok step records; a figure none of them has is left
    out. The spread is relative to the median, so 10% means the same for 5 and for 500 requests/s."""
    out: dict[str, Range] = {}
    for metric in SPREAD_METRICS:
        values = [v for v in (figure(r["figures"], metric) for r in measured) if v is not None]
        if not values:
            continue
        low, middle, high = min(values), float(statistics.median(values)), max(values)
        pct = (high - low) / middle * 100 if len(values) >= 2 and middle > 0 else None
        out[metric] = Range(min=low, median=middle, max=high, spread_pct=pct, n=len(values))
    return out


def flagged(spread: Mapping[str, Range]) -> bool:
    """Whether the repeats disagree by more than FLAG_SPREAD_PCT on throughput or median response time."""
    pct = largest_spread_pct(spread)
    return pct is not None and pct > FLAG_SPREAD_PCT


def largest_spread_pct(spread: Mapping[str, Range]) -> float | None:
    """The largest spread among FLAGGED_METRICS: above FLAG_SPREAD_PCT exactly when the group is flagged."""
    known = [r["spread_pct"] for m in FLAGGED_METRICS if (r := spread.get(m)) and r["spread_pct"] is not None]
    return max(known) if known else None


@dataclass(frozen=True)
class Group:
    """Every record of one (server, users) step, and the one record that stands for them in tables and charts."""

    server: str
    users: int
    planned: int
    # Every record of the step, in repeat order; the sweep keeps one per repeat (earlier failures move to
    # failed_attempts).
    records: tuple[dict[str, Any], ...]
    record: dict[str, Any]
    # Empty when the run plans a single repeat: nothing is added to today's figures.
    spread: dict[str, Range]

    @property
    def measured(self) -> tuple[dict[str, Any], ...]:
        return tuple(r for r in self.records if r.get("status") == "ok")

    @property
    def flagged(self) -> bool:
        return flagged(self.spread)

    @property
    def spread_pct(self) -> float | None:
        return largest_spread_pct(self.spread)


def representative(measured: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ok repeat in the middle of the throughput order; for an even count the lower middle one, so that the
    choice is one actual measurement, never an average of two."""

    def order(record: dict[str, Any]) -> tuple[float, int]:
        rps = figure(record["figures"], "rps")
        return (-math.inf if rps is None else rps), repeat_of(record)

    ranked = sorted(measured, key=order)
    return ranked[(len(ranked) - 1) // 2]


def _combined_record(group: Sequence[dict[str, Any]], planned: int, spread: dict[str, Range]) -> dict[str, Any]:
    """The representative with the medians as its headline figures, and what it was made from under
    ``"repeats"``: who reads one record (the comparison, the charts) can find every repeat's figures there."""
    measured = [r for r in group if r.get("status") == "ok"]
    if not measured:
        # Nothing measured: the latest failure stands for the step, as a single failed step does.
        record = copy.deepcopy(group[-1])
    else:
        record = copy.deepcopy(representative(measured))
        figures = record["figures"]
        for metric, span in spread.items():
            if metric == "rps":
                figures["rps"] = span["median"]
            else:
                figures.setdefault("latency", {})[metric] = span["median"]
    record["repeats"] = {
        "planned": planned,
        "measured": len(measured),
        "representative": repeat_of(record) if measured else None,
        "figures": [r["figures"] for r in measured],
        "spread": spread,
        "flagged": flagged(spread),
    }
    return record


def combine(run: Mapping[str, Any]) -> dict[tuple[str, int], Group]:
    """Group a run's step records by (server, users), in the order each step was first recorded.

    With one planned repeat each group's record is the step's own record object, untouched, so everything built
    on it is exactly what it was before repeats existed.
    """
    planned = planned_repeats(run)
    grouped: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for record in run["steps"]:
        grouped.setdefault((str(record["server"]), int(record["users"])), []).append(record)
    out: dict[tuple[str, int], Group] = {}
    for (server, users), records in grouped.items():
        ordered = tuple(sorted(records, key=repeat_of))
        if planned <= 1:
            out[(server, users)] = Group(server, users, planned, ordered, ordered[-1], {})
            continue
        spread = spread_of([r for r in ordered if r.get("status") == "ok"])
        out[(server, users)] = Group(
            server, users, planned, ordered, _combined_record(ordered, planned, spread), spread
        )
    return out
