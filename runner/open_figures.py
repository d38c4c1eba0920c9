"""Turn one open-arrival step's output into the figures a report shows.

A closed loop's sample is every request *sent* in the window (runner/stats.py). With open arrivals the schedule is
fixed before any answer, so the sample is every arrival **scheduled** inside the window, followed to its end:

* **Latency from the scheduled start** is what a visitor waits: the time the arrival waited for a free user of
  the pool and for the generator to wake, plus the request itself. It is the headline (``scheduled``); the
  latency from the actual send, which is what a closed-loop tool would report, is kept beside it (``sent``), and
  their difference is the queueing a closed loop leaves out of its percentiles.
* **Every arrival is accounted for**: answered, failed, never answered before the drain ran out (``unfinished``),
  or **dropped**: never sent, because every user of the pool stayed busy for longer than the stated lateness.
  ``lost`` is the three together. Percentiles describe answered requests, as in a closed loop; ``p99_all_ms``
  judges every arrival, a lost one counting as slower than any answer, and is blank (None) when more than 1% were
  lost, because no measured time is then the p99. The capacity search judges that figure, so a server cannot pass
  a latency target by failing or shedding the slow requests.
* **The generator's own lateness**: how long after its scheduled time the generator handed each arrival out,
  whatever the server did. With an idle server it is the client's scheduling noise (about a millisecond on a
  2-core VM); when more than 1% of the arrivals (and more than one) were handed out over ``GENERATOR_BEHIND_MS``
  late, the client, not the server, fell behind, and the step is flagged like a client-saturated one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runner.stats import Latency, OutputError, Request, ServerTimes, client_cpu, read_requests, read_window

# More than one arrival in a hundred handed out this late means the generator could not keep its schedule: the
# latency from the scheduled start then measures the client as much as the server. An idle server on this
# project's 2-core VM shows a generator p99 of 2-11 ms (measured at 10 and 60 requests/s), so 20 ms is clear of the
# noise and small beside the ~110 ms a default page takes.
GENERATOR_BEHIND_MS = 20.0
# The share of arrivals p99_all_ms can lose before no answered time is its p99.
P99_LOST_SHARE = 0.01


@dataclass
class OpenFigures:
    """Everything measured in one open-arrival step, as stored in ``run.json``."""

    window_s: float
    rate: float  # asked for, requests per second
    offered_rps: float  # arrivals scheduled inside the window, per second: the rate the schedule really drew
    arrivals: int  # scheduled inside the window
    scheduled: Latency  # answered requests, from the scheduled start
    sent: Latency  # the same requests, from the actual send
    endpoints: dict[str, Latency]  # from the scheduled start
    completed_in_window: int
    rps: float  # successful completions inside the window, per second
    failed: int
    dropped: int
    unfinished: int
    lost_pct: float
    p99_all_ms: float | None  # NaN (null) too few arrivals, or lost ones at the rank: p99_all_lost tells which
    p99_all_lost: bool
    send_late_p50_ms: float
    send_late_p99_ms: float
    send_late_max_ms: float
    generator_p50_ms: float | None
    generator_p99_ms: float | None
    generator_max_ms: float | None
    generator_behind: bool
    client_cpu_pct: float | None
    client_cpu_max_pct: float | None
    client_processes: int
    server: ServerTimes = field(default_factory=ServerTimes)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def p99_all(answered_ms: Sequence[float], lost: int) -> float | None:
    """The p99 over every arrival, a lost one slower than any answer: None when lost ones reach the p99's rank
    (stored as ``p99_all_lost``, since a NaN and a None both read back from JSON as null).

    Rank as :meth:`Latency.from_times` takes it (the observed value at the inverted-CDF rank), over answered and
    lost together; with fewer than 100 arrivals there is no p99 at all (NaN), as elsewhere.
    """
    n = len(answered_ms) + lost
    if n < 100:
        return math.nan
    rank = math.ceil(0.99 * n)  # 1-based rank of the inverted-CDF 99th percentile
    if rank > len(answered_ms):
        return None
    return float(np.sort(np.asarray(answered_ms, dtype=float))[rank - 1])


def _late_ms(values: Sequence[float]) -> tuple[float, float, float]:
    if not values:
        return math.nan, math.nan, math.nan
    array = np.asarray(values, dtype=float)
    p50, p99 = (float(np.percentile(array, q, method="inverted_cdf")) for q in (50, 99))
    return p50, p99, float(array.max())


def generator_behind(late_ms: Sequence[float]) -> bool:
    """Whether the generator fell behind its schedule: more than 1% of the window's arrivals, and more than one,
    handed out over GENERATOR_BEHIND_MS late. One hiccup (a garbage collection in the client) delays one arrival
    and is in that arrival's latency; it is not a generator that could not keep up, and on a slow rate's few
    dozen arrivals it would be the whole p99."""
    late = sum(1 for ms in late_ms if ms > GENERATOR_BEHIND_MS)
    return late > max(1.0, P99_LOST_SHARE * len(late_ms))


def _generator(meta: Mapping[str, Any]) -> tuple[float | None, float | None, float | None, bool]:
    """The generator's p50, p99 and maximum lateness over the window, and whether it fell behind."""
    values = meta.get("generator_late_ms")
    if isinstance(values, list) and values:
        p50, p99, top = _late_ms([float(v) for v in values])
        return p50, p99, top, generator_behind([float(v) for v in values])
    late = meta.get("generator") or {}
    return late.get("p50_ms"), late.get("p99_ms"), late.get("max_ms"), False


def open_figures(raw_path: Path | Sequence[Path], meta_path: Path) -> OpenFigures:
    """The step's figures from its request log (one file, or several read as one) and its window file, which for
    open arrivals also holds the schedule, every dropped arrival and the generator's lateness."""
    meta = read_window(meta_path)
    arrival = meta.get("arrival")
    if not isinstance(arrival, Mapping) or arrival.get("mode") != "open":
        raise OutputError(f"{meta_path}: not an open-arrival step (no 'arrival' section)")
    try:
        start, end = float(meta["window_start"]), float(meta["window_end"])
    except (KeyError, TypeError, ValueError):
        raise OutputError(f"{meta_path}: the step ended before its measured window opened") from None
    window_s = end - start
    raw = read_requests([raw_path] if isinstance(raw_path, Path) else raw_path)
    if any(math.isnan(r.scheduled_s) for r in raw):
        raise OutputError(f"{raw_path}: a request without its scheduled start in an open-arrival step")

    def inside(t: float) -> bool:
        return start <= t <= end

    sample: list[Request] = [r for r in raw if inside(r.scheduled_s)]
    answered = [r for r in sample if r.ok]
    unfinished = [u for u in meta.get("unfinished", []) if inside(float(u.get("scheduled_epoch_s", math.nan)))]
    dropped = sum(1 for t in arrival.get("dropped_epoch_s", []) if inside(float(t)))
    failed = len(sample) - len(answered)
    arrivals = int(arrival.get("scheduled_in_window", len(sample) + len(unfinished) + dropped))

    def from_schedule(r: Request) -> float:
        return (r.start_s - r.scheduled_s) * 1000.0 + r.response_ms

    waited = [from_schedule(r) for r in answered]
    lost = failed + len(unfinished) + dropped
    accounted = len(sample) + len(unfinished) + dropped
    notes: list[str] = []
    if accounted != arrivals:
        notes.append(
            f"{arrivals} arrivals were scheduled in the window but {accounted} are accounted for "
            f"({len(sample)} sent, {len(unfinished)} unfinished, {dropped} dropped)"
        )
    completed = [r for r in raw if inside(r.end_s)]
    ok_done = sum(1 for r in completed if r.ok)
    late_p50, late_p99, late_max = _late_ms([(r.start_s - r.scheduled_s) * 1000.0 for r in sample])
    gen_p50, gen_p99, gen_max, behind = _generator(arrival)
    cpu_total, cpu_busiest, processes = client_cpu(meta)
    return OpenFigures(
        window_s=window_s,
        rate=float(arrival["rate"]),
        offered_rps=arrivals / window_s if window_s > 0 else math.nan,
        arrivals=arrivals,
        scheduled=Latency.from_times(waited, failed),
        sent=Latency.from_times([r.response_ms for r in answered], failed),
        endpoints={
            name: Latency.from_times(
                [from_schedule(r) for r in answered if r.endpoint == name],
                sum(1 for r in sample if r.endpoint == name and not r.ok),
            )
            for name in sorted({r.endpoint for r in sample})
        },
        completed_in_window=ok_done,
        rps=ok_done / window_s if window_s > 0 else math.nan,
        failed=failed,
        dropped=dropped,
        unfinished=len(unfinished),
        lost_pct=100.0 * lost / arrivals if arrivals else math.nan,
        p99_all_ms=p99_all_value if (p99_all_value := p99_all(waited, lost)) is not None else math.nan,
        p99_all_lost=p99_all(waited, lost) is None,
        send_late_p50_ms=late_p50,
        send_late_p99_ms=late_p99,
        send_late_max_ms=late_max,
        generator_p50_ms=gen_p50,
        generator_p99_ms=gen_p99,
        generator_max_ms=gen_max,
        generator_behind=behind,
        client_cpu_pct=cpu_total,
        client_cpu_max_pct=cpu_busiest,
        client_processes=processes,
        server=ServerTimes.from_requests(answered),
        notes=notes,
    )
