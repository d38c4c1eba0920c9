"""Turn one step's Locust output into the figures a report shows.

Which numbers come from where, and why:

* Totals, failures and percentiles come from Locust's ``--json-file`` (exact counts and the response-time
  histogram), not its CSV, whose totals lag by up to a second. Percentiles are therefore Locust's bucket values:
  whole ms below 100 ms, 10 ms steps up to 1 s, 100 ms steps up to 10 s, 1 s steps beyond. Min, max and mean
  are exact.
* Locust's statistics were reset when the warm-up ended, and users finished the request they had in flight
  when the window closed (up to the drain bound). So the totals and percentiles cover every request that
  *completed* after the warm-up, including those drained after the window: slow requests at the end are not
  dropped, which would flatter a slow server.
* Throughput counts, from the per-request log, only the requests that completed *inside* the window, divided by
  the window's length: drained completions would otherwise inflate it.
* Requests sent before the window closed that never completed (the drain bound ran out) are reported as
  ``unfinished``; a report flags them because their response times are missing from the percentiles.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PERCENTILES = (0.50, 0.90, 0.95, 0.99)


class OutputError(RuntimeError):
    """A step's Locust output is missing or malformed; the message names the file."""


def percentile(histogram: Mapping[int, int], total: int, fraction: float) -> float:
    """Locust's own rule (``calculate_response_time_percentile``): walking down from the slowest bucket, the
    first bucket with at most ``int(total x fraction)`` requests below it. Reimplemented because importing
    Locust here would monkey-patch this process with gevent."""
    if total <= 0:
        return math.nan
    allowed_below = int(total * fraction)
    processed = 0
    for bucket in sorted(histogram, reverse=True):
        processed += histogram[bucket]
        if total - processed <= allowed_below:
            return float(bucket)
    return 0.0


@dataclass
class Latency:
    """Response-time figures for a set of requests, in milliseconds."""

    requests: int = 0
    failures: int = 0
    min_ms: float = math.nan
    mean_ms: float = math.nan
    p50_ms: float = math.nan
    p90_ms: float = math.nan
    p95_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan

    @classmethod
    def from_entries(cls, entries: Iterable[Mapping[str, Any]]) -> Latency:
        histogram: Counter[int] = Counter()
        requests = failures = 0
        total_time = 0.0
        lows: list[float] = []
        highs: list[float] = []
        for entry in entries:
            requests += int(entry["num_requests"])
            failures += int(entry["num_failures"])
            total_time += float(entry["total_response_time"])
            if entry.get("min_response_time") is not None:
                lows.append(float(entry["min_response_time"]))
            highs.append(float(entry["max_response_time"]))
            for bucket, count in entry["response_times"].items():
                histogram[int(float(bucket))] += int(count)
        if requests == 0:
            return cls(failures=failures)
        low = min(lows) if lows else 0.0
        high = max(highs)
        # A bucket value can lie just outside the exact extremes (159.2 ms rounds to the 160 ms bucket); a
        # percentile cannot, so it is clamped to [min, max].
        p50, p90, p95, p99 = (min(max(percentile(histogram, requests, p), low), high) for p in PERCENTILES)
        return cls(
            requests=requests,
            failures=failures,
            min_ms=min(lows) if lows else math.nan,
            mean_ms=total_time / requests,
            p50_ms=p50,
            p90_ms=p90,
            p95_ms=p95,
            p99_ms=p99,
            max_ms=high,
        )


@dataclass
class StepFigures:
    """Everything measured in one step, as stored in ``run.json``."""

    window_s: float
    latency: Latency
    endpoints: dict[str, Latency]
    completed_in_window: int
    failed_in_window: int
    # Requests sent during the warm-up that finished after it: they are in the totals and percentiles, and after
    # a burst they are its tail, so a report must be able to say how many there were and how slow.
    from_warmup: int
    from_warmup_max_ms: float
    drained: int
    unfinished: int
    unfinished_oldest_ms: float
    stopped_after_window: int
    rps: float
    client_cpu_pct: float | None
    raw_vs_json_gap: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OutputError(f"{path} was not written (Locust did not finish normally)") from None
    except (OSError, ValueError) as error:
        raise OutputError(f"{path} is not valid JSON: {error}") from None


def read_raw(path: Path) -> list[tuple[float, float, str, bool]]:
    """(start epoch s, response ms, endpoint, ok) per request, from the locustfile's --raw-file."""
    rows: list[tuple[float, float, str, bool]] = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                rows.append((float(row["start_epoch_s"]), float(row["response_ms"]), row["endpoint"], row["ok"] == "1"))
    except FileNotFoundError:
        raise OutputError(f"{path} was not written (Locust did not finish normally)") from None
    except (KeyError, TypeError, ValueError, csv.Error) as error:
        # A truncated row gives None for its missing fields, hence TypeError.
        raise OutputError(f"{path} is malformed: {error!r}") from None
    return rows


def step_figures(json_path: Path, raw_path: Path, meta_path: Path) -> StepFigures:
    entries = _load_json(json_path)
    meta = _load_json(meta_path)
    if not isinstance(entries, list):
        raise OutputError(f"{json_path}: expected a list of Locust stats entries")
    try:
        window_start = float(meta["window_start"])
        window_end = float(meta["window_end"])
    except (KeyError, TypeError, ValueError):
        raise OutputError(f"{meta_path}: the step ended before its measured window opened") from None
    window_s = window_end - window_start
    raw = read_raw(raw_path)

    in_window = [ok for start, ms, _, ok in raw if window_start <= start + ms / 1000.0 <= window_end]
    drained = sum(1 for start, ms, _, _ in raw if start + ms / 1000.0 > window_end)
    after_reset = sum(1 for start, ms, _, _ in raw if start + ms / 1000.0 >= window_start)
    carried = [ms for start, ms, _, _ in raw if start < window_start <= start + ms / 1000.0]

    unfinished_rows = meta.get("unfinished", [])
    # Locust's stop races with users waking from think time: a few start a request just after the window has
    # closed and are killed at once. Those never belonged to the window and are counted apart.
    unfinished = [u for u in unfinished_rows if float(u["start_epoch_s"]) <= window_end]
    stopped_after = len(unfinished_rows) - len(unfinished)

    try:
        latency = Latency.from_entries(entries)
        endpoints = {str(e["name"]): Latency.from_entries([e]) for e in entries}
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise OutputError(f"{json_path}: a stats entry is malformed ({error!r})") from None
    notes: list[str] = []
    gap = latency.requests - after_reset
    if abs(gap) > max(2, 0.01 * max(1, latency.requests)):
        notes.append(
            f"Locust's JSON counts {latency.requests} requests after the warm-up but the raw log {after_reset}"
        )
    client_cpu = meta.get("client_cpu_pct")
    return StepFigures(
        window_s=window_s,
        latency=latency,
        endpoints=endpoints,
        completed_in_window=len(in_window),
        failed_in_window=sum(1 for ok in in_window if not ok),
        from_warmup=len(carried),
        from_warmup_max_ms=max(carried, default=0.0),
        drained=drained,
        unfinished=len(unfinished),
        unfinished_oldest_ms=max((float(u["age_ms"]) for u in unfinished), default=0.0),
        stopped_after_window=stopped_after,
        rps=len(in_window) / window_s if window_s > 0 else math.nan,
        client_cpu_pct=float(client_cpu) if client_cpu is not None else None,
        raw_vs_json_gap=gap,
        notes=notes,
    )
