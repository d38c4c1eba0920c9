"""Turn one step's output into the figures a report shows.

What is measured, and why:

* **The sample is every request sent inside the measured window**, followed to its end: users finish the
  request they have in flight when the window closes (up to the drain bound), so slow requests at the end are
  not dropped, which would flatter a slow server. Requests sent during the warm-up are *not* in the sample, even
  if they finish inside the window: after a burst they are its tail (three sync workers need ~16 s to clear 500
  simultaneous first requests), and they are reported apart as the burst.
* **Response times are exact**, from the per-request log, and describe successful requests; failures are
  counted apart, because a server that fails fast would otherwise look fast. A percentile needs enough requests
  to mean anything: p90 is given from 10 requests, p95 from 20, p99 from 100; below that it is left blank rather
  than reported as the maximum under another name.
* **Throughput** is successful completions inside the window divided by its length (drained completions would
  inflate it); failures per second are given beside it.
* **How far chance alone could move a figure** is kept with it where the sample allows: a 95% interval for the
  median and p95 from the order statistics of the exact times (:func:`quantile_interval`), and for throughput
  from the window's count (:func:`rate_interval`). Both treat requests as independent draws (completions as a
  Poisson count), which requests that queue behind each other are not, and neither sees how the machine varies
  from one run to the next: they measure the sampling noise of one window, not the whole uncertainty.
* **Locust's own figures** from ``--json-file`` (exact counts, histogram percentiles in Locust's buckets, over
  every request completed after the warm-up) are kept beside ours as a cross-check, and a disagreement between
  Locust's count and the per-request log is noted.
* Requests sent before the window closed that were never answered (the drain bound ran out) are ``unfinished``;
  their times are missing from the percentiles, so a report flags them.
* **The server's own account** of each request, from its ``Server-Timing`` header (logged per request by the
  locustfile): time in the handler, time it waited for a pooled connection, and so the time spent in front of the
  handler (queued for a worker or the event loop, framework and HTTP). A pool that runs out shows here as a
  measured wait, not only as a throughput the model explains afterwards.
* **The client's CPU** is summed over every Locust process (one, or a master and its workers), and the busiest
  process is kept beside the sum: one process runs on one core at a time, so a single process near a full core
  is the client's bottleneck even when the sum looks modest. Several processes' request logs are read as one,
  and a request id seen twice, or a worker that never reported, makes the step's output an error, not a figure.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import numpy as np
from scipy.stats import binom, chi2  # type: ignore[import-untyped]  # scipy ships no type information

from runner import store

PERCENTILES = (0.50, 0.90, 0.95, 0.99)
# The fewest requests from which a percentile is reported: below that, p95 or p99 would just be the maximum.
MIN_REQUESTS = {0.90: 10, 0.95: 20, 0.99: 100}
# The coverage of every interval stored with a figure.
CONFIDENCE = 0.95


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


def quantile_ranks(n: int, fraction: float, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """Ranks ``(low, high)``, counted from 1 in the sorted sample, of the order statistics that bracket the
    population's ``fraction`` quantile with at least ``confidence`` probability; None if the sample is too small.

    Whatever the distribution of response times, the number of independent draws below its true quantile is
    Binomial(n, fraction), so the ranks are that binomial's quantiles, ``(1 - confidence) / 2`` in each tail:
    no assumption of a shape, which response times (long-tailed, often bimodal) would break. A tail that does not
    fit inside the sample means no interval at that confidence: a median needs 6 requests, a p95 72.
    """
    if n <= 0:
        return None
    tail = (1.0 - confidence) / 2
    # P(X_(low) <= q <= X_(high)) = F(high - 1) - F(low - 1) for the binomial F, and ppf is the smallest k with
    # F(k) >= its argument, so F(low - 1) < tail and F(high - 1) >= 1 - tail: each tail holds at most `tail`.
    low = int(binom.ppf(tail, n, fraction))
    high = int(binom.ppf(1.0 - tail, n, fraction)) + 1
    if low < 1 or high > n:
        return None
    return low, high


def quantile_interval(sorted_ms: Sequence[float], fraction: float) -> list[float] | None:
    """The distribution-free interval of :func:`quantile_ranks` as times ``[low, high]``, from a sorted sample."""
    ranks = quantile_ranks(len(sorted_ms), fraction)
    if ranks is None:
        return None
    return [float(sorted_ms[ranks[0] - 1]), float(sorted_ms[ranks[1] - 1])]


def rate_interval(count: int, seconds: float, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The exact (Garwood) Poisson interval for ``count`` events seen in ``seconds``, as events per second.

    A step's throughput is a count of completions in a window, so its chance variation is a count's: exact
    rather than the normal approximation, because a low user level completes only a handful of requests.
    """
    if count < 0 or not math.isfinite(seconds) or seconds <= 0:
        return None
    tail = (1.0 - confidence) / 2
    low = float(chi2.ppf(tail, 2 * count)) / 2 if count > 0 else 0.0
    high = float(chi2.ppf(1.0 - tail, 2 * (count + 1))) / 2
    return low / seconds, high / seconds


def lower_by_chance(
    count_before: int, seconds_before: float, count_after: int, seconds_after: float, confidence: float = CONFIDENCE
) -> bool:
    """Whether ``count_after`` events in ``seconds_after`` are no fewer than chance alone makes of the rate seen
    before (``count_before`` in ``seconds_before``).

    The exact conditional test of two Poisson counts: if one rate made both, then given all ``n`` events the later
    count is Binomial(n, seconds_after / (seconds_before + seconds_after)). A later count in that binomial's lower
    tail of ``(1 - confidence) / 2`` (the same tail as each side of a 95% interval) is a real drop; anything above
    is one chance could make. With nothing counted there is nothing to tell apart: True.
    """
    total = count_before + count_after
    if total <= 0 or not (seconds_before > 0 and seconds_after > 0):
        return True
    share = seconds_after / (seconds_before + seconds_after)
    return float(binom.cdf(count_after, total, share)) >= (1.0 - confidence) / 2


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
    # 95% intervals [low, high] for p50 and p95 (see quantile_interval), so that two runs can be told apart from
    # chance. None where the sample is too small for one, and for Locust's histogram, which keeps no sample.
    p50_ci_ms: list[float] | None = None
    p95_ci_ms: list[float] | None = None

    @classmethod
    def from_times(cls, times_ms: Sequence[float], failures: int = 0) -> Latency:
        """Exact figures over successful requests' times; percentiles only where the sample can support them."""
        if not times_ms:
            return cls(failures=failures)
        values = np.sort(np.asarray(times_ms, dtype=float))
        n = len(values)
        ordered = values.tolist()

        def pct(fraction: float, minimum: int) -> float:
            # The observed value at that rank (no interpolation): every figure is a time some request took.
            return float(np.percentile(values, fraction * 100, method="inverted_cdf")) if n >= minimum else math.nan

        return cls(
            requests=n,
            failures=failures,
            min_ms=float(values.min()),
            mean_ms=float(values.mean()),
            p50_ms=pct(0.50, 1),
            p90_ms=pct(0.90, MIN_REQUESTS[0.90]),
            p95_ms=pct(0.95, MIN_REQUESTS[0.95]),
            p99_ms=pct(0.99, MIN_REQUESTS[0.99]),
            max_ms=float(values.max()),
            p50_ci_ms=quantile_interval(ordered, 0.50),
            p95_ci_ms=quantile_interval(ordered, 0.95),
        )

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


# A request that waited at least this long for a pooled connection queued for it: a free connection is handed out in
# tens of microseconds.
POOL_WAITED_MS = 1.0


@dataclass
class ServerTimes:
    """The server's own times for the window's successful requests, from their ``Server-Timing`` (ms).

    ``outside`` is the client's response time less the handler's: the time a request spent queued in front of the
    handler (for a sync worker, a thread or the event loop), in the framework, in HTTP and in the client. Blank
    (NaN) without timed requests: a run from before the log kept these, or a server that sent no header.
    """

    timed: int = 0
    handler_mean_ms: float = math.nan
    handler_p95_ms: float = math.nan
    outside_mean_ms: float = math.nan
    outside_p95_ms: float = math.nan
    pool_mean_ms: float = math.nan
    pool_p95_ms: float = math.nan
    pool_max_ms: float = math.nan
    # % of timed requests that waited at least POOL_WAITED_MS for a connection.
    pool_waited_pct: float = math.nan

    @classmethod
    def from_requests(cls, requests: Sequence[Request]) -> ServerTimes:
        timed = [r for r in requests if math.isfinite(r.handler_ms)]
        if not timed:
            return cls()
        handler = np.asarray([r.handler_ms for r in timed])
        outside = np.asarray([r.response_ms - r.handler_ms for r in timed])
        pooled = np.asarray([r.pool_ms for r in timed if math.isfinite(r.pool_ms)])

        def p95(values: np.ndarray[Any, Any]) -> float:
            enough = len(values) >= MIN_REQUESTS[0.95]
            return float(np.percentile(values, 95, method="inverted_cdf")) if enough else math.nan

        return cls(
            timed=len(timed),
            handler_mean_ms=float(handler.mean()),
            handler_p95_ms=p95(handler),
            outside_mean_ms=float(outside.mean()),
            outside_p95_ms=p95(outside),
            pool_mean_ms=float(pooled.mean()) if len(pooled) else math.nan,
            pool_p95_ms=p95(pooled) if len(pooled) else math.nan,
            pool_max_ms=float(pooled.max()) if len(pooled) else math.nan,
            pool_waited_pct=100.0 * float((pooled >= POOL_WAITED_MS).sum()) / len(pooled) if len(pooled) else math.nan,
        )


@dataclass
class StepFigures:
    """Everything measured in one step, as stored in ``run.json``."""

    window_s: float
    # Requests sent inside the window: successful ones' times, failures counted apart.
    latency: Latency
    endpoints: dict[str, Latency]
    # Locust's own view (bucketed, every request completed after the warm-up, failures included): a cross-check.
    locust: Latency
    completed_in_window: int
    failed_in_window: int
    rps: float
    failures_per_s: float
    # The initial burst: requests sent during the warm-up, and those of them still running when it ended.
    burst_requests: int
    burst_max_ms: float
    from_warmup: int
    from_warmup_max_ms: float
    drained: int
    unfinished: int
    unfinished_oldest_ms: float
    stopped_after_window: int
    # The client's CPU over the window, % of one core, summed over its processes (one, or a master and workers).
    client_cpu_pct: float | None
    raw_vs_json_gap: int
    notes: list[str] = field(default_factory=list)
    # The busiest single Locust process (% of one core): what saturates first. Equal to client_cpu_pct for one.
    client_cpu_max_pct: float | None = None
    client_processes: int = 1
    # The server's own times for the requests in ``latency`` (see ServerTimes).
    server: ServerTimes = field(default_factory=ServerTimes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OutputError(f"{path} was not written (Locust did not finish normally)") from None
    except (OSError, ValueError) as error:
        raise OutputError(f"{path} is not valid JSON: {error}") from None


def read_window(path: Path) -> dict[str, Any]:
    """The window's timestamps, the client's CPU and the unfinished requests, from the locustfile's --meta-file.

    Refused, naming the file, when it is not a window file or of a format version this code does not know: its
    fields would be read with a meaning they may not have. An OutputError like any other damaged output, so the
    step fails with the message rather than the run with a traceback.
    """
    if not path.exists():
        raise OutputError(f"{path} was not written (Locust did not finish normally)")
    try:
        return store.load_document(path, store.WINDOW_FORMAT, store.LOCUST_FILES_VERSION, "window file")
    except store.ResultsError as error:
        raise OutputError(str(error)) from None


RawRow = tuple[float, float, str, bool]


class Request(NamedTuple):
    """One logged request: when it was sent, how long it took, and the server's own times (NaN where the log has
    none: a failed request, or a log from before they were kept)."""

    start_s: float
    response_ms: float
    endpoint: str
    ok: bool
    handler_ms: float = math.nan
    pool_ms: float = math.nan
    # Open arrivals only: when the request was scheduled to start (NaN in a closed loop, and in older logs).
    scheduled_s: float = math.nan

    @property
    def end_s(self) -> float:
        return self.start_s + self.response_ms / 1000.0

    @property
    def raw(self) -> RawRow:
        return self.start_s, self.response_ms, self.endpoint, self.ok


def read_raw(path: Path) -> list[RawRow]:
    """(start epoch s, response ms, endpoint, ok) per request, from the locustfile's --raw-file (or its gzip-compressed
    copy, see :func:`open_request_log`)."""
    return [row.raw for row, _ in _read_raw_with_ids(path)]


def read_raws(paths: Iterable[Path]) -> list[RawRow]:
    """Several request logs as one, ordered by start time (see :func:`read_requests`)."""
    return [row.raw for row in read_requests(paths)]


def read_requests(paths: Iterable[Path]) -> list[Request]:
    """Several request logs (one per Locust process, or parts of one step) as one, ordered by start time.

    Each request must appear once: a request id found twice, in one file or across two, means the same request
    would be counted twice, so it is an error naming both files. Rows without an id (logs written before ids
    existed) are taken as they are.
    """
    seen: dict[str, Path] = {}
    rows: list[Request] = []
    for path in paths:
        for row, request_id in _read_raw_with_ids(path):
            if request_id:
                if request_id in seen:
                    raise OutputError(f"request id {request_id!r} appears twice: in {seen[request_id]} and {path}")
                seen[request_id] = path
            rows.append(row)
    rows.sort(key=lambda r: r[0])
    return rows


COMPRESSED_SUFFIX = ".gz"


def open_request_log(path: Path) -> TextIO:
    """A request log opened for reading as text: ``requests.csv`` as Locust wrote it, or ``requests.csv.gz`` as a
    reference ships it (gzip-compressed, chosen by the suffix), so every reader reads both alike."""
    if path.suffix == COMPRESSED_SUFFIX:
        return gzip.open(path, "rt", newline="", encoding="utf-8")
    return path.open(newline="", encoding="utf-8")


def _read_raw_with_ids(path: Path) -> list[tuple[Request, str]]:
    rows: list[tuple[Request, str]] = []
    try:
        with open_request_log(path) as handle:
            for row in csv.DictReader(handle):
                parsed = Request(
                    float(row["start_epoch_s"]),
                    float(row["response_ms"]),
                    row["endpoint"],
                    row["ok"] == "1",
                    _optional_number(row.get("handler_ms")),
                    _optional_number(row.get("pool_ms")),
                    _optional_number(row.get("scheduled_epoch_s")),
                )
                rows.append((parsed, row.get("request_id") or ""))
    except FileNotFoundError:
        raise OutputError(f"{path} was not written (Locust did not finish normally)") from None
    except (KeyError, TypeError, ValueError, csv.Error) as error:
        # A truncated row gives None for its missing fields, hence TypeError.
        raise OutputError(f"{path} is malformed: {error!r}") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        # Not gzip at all, or a compressed copy cut short.
        raise OutputError(f"{path} is not a readable gzip file: {error!r}") from None
    return rows


def _optional_number(text: str | None) -> float:
    """An optional column: empty, or absent from an older log, is NaN."""
    return float(text) if text else math.nan


def client_cpu(meta: Mapping[str, Any]) -> tuple[float | None, float | None, int]:
    """(sum over the client's processes, the busiest process, how many processes), each in % of one core.

    A meta file from before processes were listed describes one process, whose figure is both the sum and the
    maximum, so old runs keep their meaning.
    """
    processes = meta.get("client_processes") or []
    total = meta.get("client_cpu_pct")
    busiest = meta.get("client_cpu_max_pct", total if len(processes) <= 1 else None)
    return (
        float(total) if total is not None else None,
        float(busiest) if busiest is not None else None,
        max(1, len(processes)),
    )


def _check_workers(meta: Mapping[str, Any], meta_path: Path) -> None:
    """A distributed step is complete only if every worker sent every row: otherwise its requests are missing
    from the log, with nothing in the figures to show it."""
    missing = meta.get("workers_missing") or []
    incomplete = meta.get("workers_incomplete") or []
    if missing or incomplete:
        reported = meta.get("workers_reported", "?")
        expected = meta.get("workers_expected", "?")
        detail = "; ".join(str(item) for item in incomplete)
        raise OutputError(
            f"{meta_path}: {reported} of {expected} Locust workers reported their requests"
            + (f"; incomplete: {detail}" if detail else "")
            + ", so the step's request log is incomplete"
        )


def step_figures(json_path: Path, raw_path: Path | Sequence[Path], meta_path: Path) -> StepFigures:
    """The step's figures from Locust's totals, its request log (one file, or several read as one) and the
    window's meta file (see :func:`read_window`)."""
    entries = _load_json(json_path)
    meta = read_window(meta_path)
    if not isinstance(entries, list):
        raise OutputError(f"{json_path}: expected a list of Locust stats entries")
    try:
        window_start = float(meta["window_start"])
        window_end = float(meta["window_end"])
    except (KeyError, TypeError, ValueError):
        raise OutputError(f"{meta_path}: the step ended before its measured window opened") from None
    window_s = window_end - window_start
    _check_workers(meta, meta_path)
    raw = read_requests([raw_path] if isinstance(raw_path, Path) else raw_path)

    sent = [r for r in raw if window_start <= r.start_s <= window_end]
    burst = [r for r in raw if r.start_s < window_start]
    carried = [r.response_ms for r in burst if r.end_s >= window_start]
    completed = [r for r in raw if window_start <= r.end_s <= window_end]
    after_reset = sum(1 for r in raw if r.end_s >= window_start)

    unfinished_rows = meta.get("unfinished", [])
    # Locust's stop races with users waking from think time: a few start a request just after the window has
    # closed and are killed at once. Those never belonged to the window and are counted apart.
    unfinished = [u for u in unfinished_rows if float(u["start_epoch_s"]) <= window_end]
    stopped_after = len(unfinished_rows) - len(unfinished)

    succeeded = [r for r in sent if r.ok]
    latency = Latency.from_times([r.response_ms for r in succeeded], len(sent) - len(succeeded))
    endpoints = {
        name: Latency.from_times(
            [r.response_ms for r in succeeded if r.endpoint == name],
            sum(1 for r in sent if r.endpoint == name and not r.ok),
        )
        for name in sorted({r.endpoint for r in sent})
    }
    try:
        locust = Latency.from_entries(entries)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise OutputError(f"{json_path}: a stats entry is malformed ({error!r})") from None
    notes: list[str] = []
    gap = locust.requests - after_reset
    if abs(gap) > max(2, 0.01 * max(1, locust.requests)):
        notes.append(f"Locust's JSON counts {locust.requests} requests after the warm-up but the raw log {after_reset}")
    cpu_total, cpu_busiest, processes = client_cpu(meta)
    ok_done = sum(1 for r in completed if r.ok)
    return StepFigures(
        window_s=window_s,
        latency=latency,
        endpoints=endpoints,
        locust=locust,
        completed_in_window=ok_done,
        failed_in_window=len(completed) - ok_done,
        rps=ok_done / window_s if window_s > 0 else math.nan,
        failures_per_s=(len(completed) - ok_done) / window_s if window_s > 0 else math.nan,
        burst_requests=len(burst),
        burst_max_ms=max((r.response_ms for r in burst), default=0.0),
        from_warmup=len(carried),
        from_warmup_max_ms=max(carried, default=0.0),
        drained=sum(1 for r in sent if r.end_s > window_end),
        unfinished=len(unfinished),
        unfinished_oldest_ms=max((float(u["age_ms"]) for u in unfinished), default=0.0),
        stopped_after_window=stopped_after,
        client_cpu_pct=cpu_total,
        raw_vs_json_gap=gap,
        notes=notes,
        client_cpu_max_pct=cpu_busiest,
        client_processes=processes,
        server=ServerTimes.from_requests(succeeded),
    )
