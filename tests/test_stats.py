"""From one step's Locust output to its figures: percentiles, merged latencies and the window's accounting."""

from __future__ import annotations

import gzip
import json
import math
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import binom  # type: ignore[import-untyped]

from runner import store
from runner.stats import (
    POOL_WAITED_MS,
    Latency,
    OutputError,
    Request,
    ServerTimes,
    lower_by_chance,
    percentile,
    quantile_ranks,
    rate_interval,
    read_raw,
    read_window,
    step_figures,
)
from tests.runs import window_file


def locust_percentile(response_times: Mapping[int, int], num_requests: int, percent: float) -> int:
    """Locust 2.x ``calculate_response_time_percentile``, copied here as the reference the harness must match."""
    num_of_request = int(num_requests * percent)
    processed_count = 0
    for response_time in sorted(response_times.keys(), reverse=True):
        processed_count += response_times[response_time]
        if num_requests - processed_count <= num_of_request:
            return response_time
    return 0


# --- percentile -------------------------------------------------------------------------------------------------------

# 10 requests: five at 10 ms, three at 20 ms, two at 30 ms.
HISTOGRAM = {10: 5, 20: 3, 30: 2}


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [
        # Walking down from the highest bucket, the answer is the first whose requests *below* it number at
        # most int(total x fraction): 8 are below 30, 5 below 20, none below 10.
        (0.0, 10.0),
        (0.1, 10.0),
        (0.5, 20.0),
        (0.7, 20.0),
        (0.8, 30.0),
        (0.9, 30.0),
        (0.95, 30.0),
        (0.99, 30.0),
        (1.0, 30.0),
    ],
)
def test_percentile_of_a_hand_computed_histogram(fraction: float, expected: float) -> None:
    assert percentile(HISTOGRAM, 10, fraction) == expected


def test_percentile_of_a_single_request_is_its_bucket() -> None:
    for fraction in (0.5, 0.95, 0.99):
        assert percentile({250: 1}, 1, fraction) == 250.0


def test_percentile_without_requests_is_nan() -> None:
    assert math.isnan(percentile({}, 0, 0.5))
    assert math.isnan(percentile({10: 3}, 0, 0.5))


def test_percentile_with_an_empty_histogram_is_zero_like_locust() -> None:
    assert percentile({}, 5, 0.5) == 0.0


def test_percentile_does_not_depend_on_histogram_order() -> None:
    assert percentile({30: 2, 10: 5, 20: 3}, 10, 0.5) == percentile(HISTOGRAM, 10, 0.5)


def test_percentile_matches_locusts_rule_on_random_histograms() -> None:
    rng = random.Random(2024)
    for _ in range(200):
        buckets = rng.sample([*range(1, 100), *range(100, 1000, 10), *range(1000, 10_000, 100)], rng.randint(1, 30))
        histogram = {b: rng.randint(1, 50) for b in buckets}
        total = sum(histogram.values())
        for fraction in (0.5, 0.9, 0.95, 0.99, 0.999):
            assert percentile(histogram, total, fraction) == locust_percentile(histogram, total, fraction)


# --- Latency.from_entries ---------------------------------------------------------------------------------------------


def entry(
    name: str,
    times: Mapping[int, int],
    *,
    failures: int = 0,
    min_ms: float | None = None,
    max_ms: float | None = None,
    total_ms: float | None = None,
) -> dict[str, Any]:
    """A Locust ``--json-file`` stats entry: response_times keys are strings once written as JSON."""
    count = sum(times.values())
    return {
        "name": name,
        "method": "GET",
        "num_requests": count,
        "num_failures": failures,
        "total_response_time": total_ms if total_ms is not None else float(sum(k * v for k, v in times.items())),
        "min_response_time": min_ms if min_ms is not None else (float(min(times)) if times else None),
        "max_response_time": max_ms if max_ms is not None else (float(max(times)) if times else 0.0),
        "response_times": {str(k): v for k, v in times.items()},
    }


PAGE = entry("page", {90: 1, 100: 2, 120: 1}, failures=1, min_ms=90.4, max_ms=120.3, total_ms=400.0)
SHORT = entry("short", {8: 2, 10: 3, 13: 1}, min_ms=8.2, max_ms=12.6, total_ms=60.0)


def test_from_entries_merges_counts_and_extremes() -> None:
    latency = Latency.from_entries([PAGE, SHORT])
    assert latency.requests == 10
    assert latency.failures == 1
    assert latency.min_ms == 8.2
    assert latency.max_ms == 120.3
    assert latency.mean_ms == pytest.approx(46.0)


def test_from_entries_takes_percentiles_over_the_merged_histogram() -> None:
    latency = Latency.from_entries([PAGE, SHORT])
    # Merged: 8x2 10x3 13x1 90x1 100x2 120x1. Median: at most 5 below -> 13; p90..p99: at most 9 below -> 120.
    assert latency.p50_ms == 13.0
    assert latency.p90_ms == 120.0
    assert latency.p95_ms == 120.0
    assert latency.p99_ms == 120.0


def test_from_entries_reads_json_round_tripped_entries() -> None:
    entries = json.loads(json.dumps([PAGE, SHORT]))
    assert Latency.from_entries(entries) == Latency.from_entries([PAGE, SHORT])


def test_from_entries_clamps_a_percentile_above_the_exact_maximum() -> None:
    # 159.2 ms is counted in Locust's 160 ms bucket; no percentile may exceed the real maximum.
    latency = Latency.from_entries([entry("page", {160: 1}, min_ms=159.2, max_ms=159.2, total_ms=159.2)])
    assert latency.p50_ms == 159.2
    assert latency.p99_ms == 159.2


def test_from_entries_clamps_a_percentile_below_the_exact_minimum() -> None:
    latency = Latency.from_entries([entry("page", {10: 1}, min_ms=10.4, max_ms=10.4, total_ms=10.4)])
    assert latency.p50_ms == 10.4


def test_from_entries_percentiles_stay_within_min_and_max() -> None:
    latency = Latency.from_entries([PAGE, SHORT])
    for value in (latency.p50_ms, latency.p90_ms, latency.p95_ms, latency.p99_ms):
        assert latency.min_ms <= value <= latency.max_ms


def test_from_entries_without_requests_has_no_figures() -> None:
    latency = Latency.from_entries([entry("page", {})])
    assert latency.requests == 0
    assert math.isnan(latency.p50_ms)
    assert math.isnan(latency.mean_ms)
    assert Latency.from_entries([]).requests == 0


def test_from_entries_ignores_an_entry_without_requests() -> None:
    with_empty = Latency.from_entries([PAGE, entry("short", {})])
    assert with_empty == Latency.from_entries([PAGE])


# --- step_figures -----------------------------------------------------------------------------------------------------

WINDOW_START = 1_000.0
WINDOW_END = 1_010.0

# (start epoch s, response ms, endpoint, ok): completion = start + ms / 1000
RAW_ROWS = [
    (995.0, 100.0, "page", 1),  # completed during the warm-up: 995.1
    (999.95, 100.0, "page", 1),  # started in the warm-up, completed in the window: 1000.05
    (1001.0, 50.0, "short", 1),  # in the window
    (1005.0, 200.0, "page", 0),  # in the window, failed
    (1009.0, 500.0, "page", 1),  # in the window: 1009.5
    (1009.8, 400.0, "page", 1),  # drained: 1010.2
    (1009.9, 3000.0, "short", 1),  # drained: 1012.9
]

UNFINISHED = [
    {"start_epoch_s": 1008.0, "endpoint": "page", "age_ms": 12_000.0},  # sent in the window, never answered
    {"start_epoch_s": 1004.0, "endpoint": "short", "age_ms": 16_000.0},  # likewise
    {"start_epoch_s": 1010.5, "endpoint": "short", "age_ms": 9_500.0},  # sent after the window closed
]


def write_step(
    folder: Path,
    *,
    rows: list[tuple[float, float, str, int]] = RAW_ROWS,
    unfinished: list[dict[str, Any]] = UNFINISHED,
    entries: list[dict[str, Any]] | None = None,
) -> tuple[Path, Path, Path]:
    json_path, raw_path, meta_path = folder / "locust.json", folder / "requests.csv", folder / "window.json"
    if entries is None:
        # The six requests completed after the warm-up, as Locust's stats (reset at the window's start) count them.
        entries = [
            entry("page", {100: 1, 200: 1, 500: 1, 400: 1}, failures=1),
            entry("short", {50: 1, 3000: 1}),
        ]
    json_path.write_text(json.dumps(entries, indent=4), encoding="utf-8")
    lines = ["start_epoch_s,response_ms,endpoint,ok,error"]
    lines += [f"{s:.6f},{ms:.3f},{name},{ok},{'' if ok else 'HTTPError: 500'}" for s, ms, name, ok in rows]
    raw_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    meta = {
        "test_start": WINDOW_START - 5,
        "window_start": WINDOW_START,
        "window_end": WINDOW_END,
        "client_cpu_pct": 42.5,
        "unfinished": unfinished,
    }
    window_file(meta_path, meta)
    return json_path, raw_path, meta_path


def test_step_window_is_its_measured_length(tmp_path: Path) -> None:
    assert step_figures(*write_step(tmp_path)).window_s == pytest.approx(10.0)


def test_step_throughput_counts_only_successful_completions_inside_the_window(tmp_path: Path) -> None:
    figures = step_figures(*write_step(tmp_path))
    # 1000.05 (sent in the warm-up), 1001.05 and 1009.5 succeed inside the window; 1005.2 fails there.
    assert figures.completed_in_window == 3
    assert figures.rps == pytest.approx(0.3)
    assert figures.failures_per_s == pytest.approx(0.1)


def test_step_counts_failures_inside_the_window(tmp_path: Path) -> None:
    assert step_figures(*write_step(tmp_path)).failed_in_window == 1


def test_step_counts_completions_after_the_window_as_drained(tmp_path: Path) -> None:
    assert step_figures(*write_step(tmp_path)).drained == 2


def test_step_unfinished_counts_only_requests_sent_before_the_window_closed(tmp_path: Path) -> None:
    figures = step_figures(*write_step(tmp_path))
    assert figures.unfinished == 2
    assert figures.unfinished_oldest_ms == 16_000.0
    assert figures.stopped_after_window == 1


def test_step_without_unfinished_requests(tmp_path: Path) -> None:
    figures = step_figures(*write_step(tmp_path, unfinished=[]))
    assert figures.unfinished == 0
    assert figures.unfinished_oldest_ms == 0.0
    assert figures.stopped_after_window == 0


def test_step_latency_covers_requests_sent_in_the_window_successful_ones_timed(tmp_path: Path) -> None:
    figures = step_figures(*write_step(tmp_path))
    # Sent inside [1000, 1010]: 50 ms (short), 200 ms (page, failed), 500 ms, 400 ms (drained), 3000 ms (drained).
    assert figures.latency.requests == 4
    assert figures.latency.failures == 1
    assert figures.latency.min_ms == 50.0
    assert figures.latency.max_ms == 3000.0
    assert figures.latency.mean_ms == pytest.approx((50 + 500 + 400 + 3000) / 4)
    assert figures.latency.p50_ms == 400.0  # an observed time, not an interpolation
    assert math.isnan(figures.latency.p95_ms)  # four requests cannot give a p95
    assert set(figures.endpoints) == {"page", "short"}
    assert figures.endpoints["short"].requests == 2
    assert figures.endpoints["page"].failures == 1
    assert figures.client_cpu_pct == 42.5


def test_step_keeps_locusts_own_figures_as_a_cross_check(tmp_path: Path) -> None:
    figures = step_figures(*write_step(tmp_path))
    assert figures.locust.requests == 6
    assert figures.locust.failures == 1


def test_step_reports_the_burst_apart(tmp_path: Path) -> None:
    figures = step_figures(*write_step(tmp_path))
    assert figures.burst_requests == 2  # sent at 995.0 and 999.95, during the warm-up
    assert figures.burst_max_ms == 100.0
    assert figures.from_warmup == 1


# --- the server's own times ---------------------------------------------------------------------------------------


def test_an_old_log_without_server_times_leaves_them_blank(tmp_path: Path) -> None:
    server = step_figures(*write_step(tmp_path)).server
    assert server.timed == 0
    assert math.isnan(server.handler_mean_ms) and math.isnan(server.pool_mean_ms)


def test_the_server_times_cover_the_successful_requests_sent_in_the_window(tmp_path: Path) -> None:
    json_path, raw_path, meta_path = write_step(tmp_path)
    # The same log with the locustfile's two last columns: handler and pool ms per request, empty on the failure.
    timed = {1001.0: (40.0, 0.1), 1005.0: (None, None), 1009.0: (450.0, 300.0), 1009.8: (390.0, 2.0),
             1009.9: (2990.0, 0.0), 999.95: (90.0, 80.0), 995.0: (90.0, 80.0)}  # fmt: skip
    lines = ["start_epoch_s,response_ms,endpoint,ok,error,request_id,handler_ms,pool_ms"]
    for number, (start, ms, name, ok) in enumerate(RAW_ROWS):
        handler, pool = timed[start]
        cells = [f"{start:.6f}", f"{ms:.3f}", name, str(ok), "" if ok else "HTTPError: 500", str(number)]
        cells += ["" if handler is None else f"{handler:.3f}", "" if pool is None else f"{pool:.3f}"]
        lines.append(",".join(cells))
    raw_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    server = step_figures(json_path, raw_path, meta_path).server
    # Sent in the window and successful: 1001.0, 1009.0, 1009.8, 1009.9 (the burst's two are not in the sample).
    assert server.timed == 4
    assert server.handler_mean_ms == pytest.approx((40 + 450 + 390 + 2990) / 4)
    assert server.outside_mean_ms == pytest.approx((10 + 50 + 10 + 10) / 4)
    assert server.pool_mean_ms == pytest.approx((0.1 + 300 + 2 + 0) / 4)
    assert server.pool_max_ms == 300.0
    assert server.pool_waited_pct == pytest.approx(50.0)  # 300 and 2 ms waited; 0.1 and 0 did not
    assert math.isnan(server.pool_p95_ms)  # four requests cannot give a p95


def test_server_times_skip_requests_without_a_header_and_need_20_for_a_p95() -> None:
    requests = [Request(0.0, 10.0 + i, "page", True, 8.0 + i, float(i % 4)) for i in range(20)]
    requests.append(Request(0.0, 5.0, "short", True))  # an answer without Server-Timing
    server = ServerTimes.from_requests(requests)
    assert server.timed == 20
    assert server.handler_p95_ms == 8.0 + 18  # the 19th of 20 in order: an observed value
    assert server.outside_p95_ms == 2.0
    assert server.pool_waited_pct == pytest.approx(100 * 15 / 20)  # 1, 2 and 3 ms waited; 0 did not
    assert POOL_WAITED_MS == 1.0
    assert math.isnan(ServerTimes.from_requests([]).handler_mean_ms)


def test_percentiles_need_enough_requests() -> None:
    few = Latency.from_times([float(ms) for ms in range(1, 20)])
    assert math.isnan(few.p95_ms) and not math.isnan(few.p90_ms)
    enough = Latency.from_times([float(ms) for ms in range(1, 101)])
    assert enough.p95_ms == 95.0
    assert enough.p99_ms == 99.0


def test_step_agreeing_json_and_raw_log_leave_no_note(tmp_path: Path) -> None:
    figures = step_figures(*write_step(tmp_path))
    assert figures.raw_vs_json_gap == 0
    assert figures.notes == []


def test_step_notes_a_large_gap_between_json_and_raw_log(tmp_path: Path) -> None:
    entries = [entry("page", {100: 50})]
    figures = step_figures(*write_step(tmp_path, entries=entries))
    assert figures.raw_vs_json_gap == 50 - 6
    assert len(figures.notes) == 1
    assert "50" in figures.notes[0]


def test_step_figures_serialise_to_plain_data(tmp_path: Path) -> None:
    data = step_figures(*write_step(tmp_path)).to_dict()
    assert data["latency"]["requests"] == 4
    assert data["endpoints"]["page"]["requests"] == 2
    json.dumps(data)


# Each case: which output file is damaged, how (deleted, replaced, or a line appended), and with what.
DAMAGED = [
    pytest.param("locust.json", "delete", "", id="locust.json missing"),
    pytest.param("requests.csv", "delete", "", id="requests.csv missing"),
    pytest.param("window.json", "delete", "", id="window.json missing"),
    pytest.param("locust.json", "replace", '{"truncated": ', id="locust.json truncated"),
    pytest.param("window.json", "replace", '{"truncated": ', id="window.json truncated"),
    pytest.param("locust.json", "replace", '{"name": "page"}', id="locust.json not a list"),
    pytest.param(
        "window.json",
        "replace",
        json.dumps(store.stamp({"test_start": 1.0, "unfinished": []}, store.WINDOW_FORMAT, store.LOCUST_FILES_VERSION)),
        id="window never opened",
    ),
    pytest.param("window.json", "replace", '{"window_start": 1000.0, "window_end": 1010.0}', id="window unversioned"),
    pytest.param("requests.csv", "append", "1001.0,fast,page,1,\n", id="raw log with a non-number"),
    pytest.param("requests.csv", "replace", "when,how_long\n1001.0,5.0\n", id="raw log without its columns"),
    pytest.param("requests.csv", "append", "1001.0\n", id="raw log with a truncated row"),
]


@pytest.mark.parametrize(("name", "how", "text"), DAMAGED)
def test_a_damaged_output_file_is_named(tmp_path: Path, name: str, how: str, text: str) -> None:
    paths = write_step(tmp_path)
    target = tmp_path / name
    if how == "delete":
        target.unlink()
    elif how == "replace":
        target.write_text(text, encoding="utf-8")
    else:
        with target.open("a", encoding="utf-8") as handle:
            handle.write(text)
    with pytest.raises(OutputError, match=re.escape(name)):
        step_figures(*paths)


# --- a compressed request log ----------------------------------------------------------------------------------------


def gzipped(path: Path) -> Path:
    """``path`` replaced by its gzip-compressed copy ``<name>.gz``, as a reference ships a request log."""
    packed = path.with_name(path.name + ".gz")
    packed.write_bytes(gzip.compress(path.read_bytes()))
    path.unlink()
    return packed


def test_a_compressed_request_log_gives_the_same_figures_as_the_plain_one(tmp_path: Path) -> None:
    json_path, raw_path, meta_path = write_step(tmp_path, rows=[*RAW_ROWS, *((1002.0 + i / 10, 80.0 + i, "page", 1)
                                                                              for i in range(30))])  # fmt: skip
    plain = step_figures(json_path, raw_path, meta_path)
    plain_rows = read_raw(raw_path)
    packed = gzipped(raw_path)
    assert step_figures(json_path, packed, meta_path) == plain
    assert read_raw(packed) == plain_rows
    assert plain.latency.requests == 34  # the window's requests, read from the compressed file


def test_a_compressed_log_is_chosen_by_its_suffix_alone(tmp_path: Path) -> None:
    """A plain log named .gz is not read as text: the suffix decides, so nothing is read two ways."""
    json_path, raw_path, meta_path = write_step(tmp_path)
    raw_path.rename(tmp_path / "requests.csv.gz")
    with pytest.raises(OutputError, match=r"requests\.csv\.gz is not a readable gzip file"):
        step_figures(json_path, tmp_path / "requests.csv.gz", meta_path)


def test_a_truncated_compressed_log_is_named(tmp_path: Path) -> None:
    json_path, raw_path, meta_path = write_step(tmp_path)
    packed = gzipped(raw_path)
    packed.write_bytes(packed.read_bytes()[:-20])
    with pytest.raises(OutputError, match=r"requests\.csv\.gz is not a readable gzip file"):
        step_figures(json_path, packed, meta_path)


# --- the window file's format -----------------------------------------------------------------------------------------


def test_the_window_file_is_read_with_its_format_and_version(tmp_path: Path) -> None:
    meta = read_window(window_file(tmp_path / "window.json", {"window_start": 1.0, "window_end": 2.0}))
    assert (meta["format"], meta["format_version"]) == (store.WINDOW_FORMAT, store.LOCUST_FILES_VERSION)
    assert meta["window_end"] == 2.0


@pytest.mark.parametrize(
    ("stamped", "needle"),
    [
        ({"format": "sync-async-bench/run", "format_version": 1}, "not a window file"),
        (
            {"format": store.WINDOW_FORMAT, "format_version": store.LOCUST_FILES_VERSION + 1},
            f"format version {store.LOCUST_FILES_VERSION + 1}",
        ),
        ({"format": store.WINDOW_FORMAT}, "format version None"),
        ({}, "not a window file"),
    ],
)
def test_a_window_file_of_another_format_or_version_is_refused_and_named(
    tmp_path: Path, stamped: dict[str, Any], needle: str
) -> None:
    path = tmp_path / "window.json"
    path.write_text(json.dumps({**stamped, "window_start": 1.0, "window_end": 2.0}), encoding="utf-8")
    with pytest.raises(OutputError, match=re.escape(needle)) as refused:
        read_window(path)
    assert str(path) in str(refused.value)


def test_a_missing_window_file_says_locust_did_not_finish(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="was not written"):
        read_window(tmp_path / "window.json")


def test_a_locust_entry_without_its_fields_is_named(tmp_path: Path) -> None:
    paths = write_step(tmp_path, entries=[{"name": "page", "method": "GET"}])
    with pytest.raises(OutputError, match=r"locust\.json"):
        step_figures(*paths)


def test_step_counts_requests_sent_during_the_warm_up_that_finished_after_it(tmp_path: Path) -> None:
    rows = [
        (WINDOW_START - 4.0, 5_000.0, "page", 1),  # sent in the warm-up, finished 1 s into the window
        (WINDOW_START - 0.5, 300.0, "page", 1),  # finished in the warm-up: not counted at all
        (WINDOW_START + 1.0, 100.0, "page", 1),  # an ordinary window request
    ]
    figures = step_figures(*write_step(tmp_path, rows=rows, unfinished=[]))
    assert figures.from_warmup == 1
    assert figures.from_warmup_max_ms == 5_000.0
    assert figures.completed_in_window == 2


# --- intervals --------------------------------------------------------------------------------------------------------


def test_median_interval_of_a_hundred_requests_is_ranks_40_to_61() -> None:
    # The textbook case: for n = 100 the 95% interval for the median runs from the 40th to the 61st value.
    assert quantile_ranks(100, 0.5) == (40, 61)


@pytest.mark.parametrize("fraction", [0.5, 0.95])
def test_quantile_ranks_cover_at_least_95_percent_with_each_tail_at_most_2_5(fraction: float) -> None:
    for n in range(1, 400):
        ranks = quantile_ranks(n, fraction)
        if ranks is None:
            continue
        low, high = ranks
        assert 1 <= low < high <= n
        below = binom.cdf(low - 1, n, fraction)  # the quantile lies below X_(low)
        above = 1 - binom.cdf(high - 1, n, fraction)  # the quantile lies above X_(high)
        assert below <= 0.025 + 1e-12
        assert above <= 0.025 + 1e-12
        assert 1 - below - above >= 0.95


@pytest.mark.parametrize(("fraction", "fewest"), [(0.5, 6), (0.95, 72)])
def test_quantile_ranks_need_a_sample_that_holds_both_tails(fraction: float, fewest: int) -> None:
    # No interval when even the sample's extremes cannot bracket the quantile at 95%: 0.5^5 > 0.025, 0.95^71 > 0.025.
    assert quantile_ranks(fewest - 1, fraction) is None
    assert quantile_ranks(fewest, fraction) is not None
    assert quantile_ranks(0, fraction) is None


def test_from_times_carries_intervals_of_observed_times() -> None:
    times = [float(ms) for ms in range(1, 101)]
    random.Random(7).shuffle(times)  # the input order must not matter
    latency = Latency.from_times(times)
    assert latency.p50_ci_ms == [40.0, 61.0]
    assert latency.p95_ci_ms == [90.0, 100.0]
    assert latency.p50_ci_ms[0] <= latency.p50_ms <= latency.p50_ci_ms[1]
    assert latency.p95_ci_ms[0] <= latency.p95_ms <= latency.p95_ci_ms[1]


def test_from_times_leaves_an_interval_out_when_the_sample_is_too_small() -> None:
    # 71 requests give a p95 but not a 95% interval for it; 5 give a median but no interval for it.
    latency = Latency.from_times([float(ms) for ms in range(1, 72)])
    assert not math.isnan(latency.p95_ms)
    assert latency.p95_ci_ms is None
    assert latency.p50_ci_ms is not None
    assert Latency.from_times([1.0, 2.0, 3.0, 4.0, 5.0]).p50_ci_ms is None
    assert Latency.from_times([]).p95_ci_ms is None


def test_from_entries_has_no_intervals_because_a_histogram_keeps_no_sample() -> None:
    latency = Latency.from_entries([PAGE, SHORT])
    assert latency.p50_ci_ms is None
    assert latency.p95_ci_ms is None


def test_intervals_serialise_with_the_step(tmp_path: Path) -> None:
    data = json.loads(json.dumps(step_figures(*write_step(tmp_path)).to_dict()))
    assert data["latency"]["p95_ci_ms"] is None  # four requests
    assert data["latency"]["p50_ci_ms"] is None
    assert data["locust"]["p95_ci_ms"] is None


@pytest.mark.parametrize(
    ("count", "seconds", "low", "high"),
    [
        # Garwood's exact limits, as tabulated: 10 events -> [4.795, 18.390], none -> [0, 3.689].
        (10, 10.0, 0.47954, 1.83904),
        (10, 1.0, 4.79539, 18.39036),
        (0, 2.0, 0.0, 1.84444),
        (100, 1.0, 81.36399, 121.62679),
    ],
)
def test_rate_interval_is_garwoods_exact_poisson_interval(count: int, seconds: float, low: float, high: float) -> None:
    interval = rate_interval(count, seconds)
    assert interval is not None
    assert interval == pytest.approx((low, high), abs=1e-4)


def test_rate_interval_needs_a_window() -> None:
    assert rate_interval(5, 0.0) is None
    assert rate_interval(5, math.nan) is None
    assert rate_interval(-1, 1.0) is None


# --- a lower rate, or chance? ------------------------------------------------------------------------------------


def test_the_same_rate_over_a_longer_time_is_within_chance() -> None:
    assert lower_by_chance(50, 5.0, 150, 15.0)
    assert lower_by_chance(54, 5.0, 141, 15.0)  # 87% of the rate before: what chance makes of ~200 completions


def test_a_rate_that_fell_by_a_third_on_hundreds_of_completions_is_a_real_drop() -> None:
    assert not lower_by_chance(500, 5.0, 1000, 15.0)


def test_a_server_that_stopped_is_a_real_drop_and_a_higher_rate_is_never_one() -> None:
    assert not lower_by_chance(52, 5.0, 0, 15.0)
    assert lower_by_chance(50, 5.0, 300, 15.0)


def test_with_nothing_counted_or_no_time_nothing_is_told_apart() -> None:
    assert lower_by_chance(0, 5.0, 0, 15.0)
    assert lower_by_chance(10, 0.0, 0, 15.0)
