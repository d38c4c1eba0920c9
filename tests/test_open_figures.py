"""An open-arrival step's figures from its files: the sample is every arrival scheduled in the window, timed from
its scheduled start, every one accounted for."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from runner import store
from runner.open_figures import GENERATOR_BEHIND_MS, open_figures, p99_all
from runner.stats import OutputError

T0 = 1_800_000_000.0  # the window opens here
WINDOW = 10.0
COLUMNS = ("start_epoch_s", "response_ms", "endpoint", "ok", "error", "request_id", "handler_ms", "pool_ms",
           "scheduled_epoch_s")  # fmt: skip


def write_step(
    folder: Path,
    requests: list[tuple[float, float, float, bool]],
    dropped: list[float] = (),  # type: ignore[assignment]
    unfinished: list[dict[str, Any]] = (),  # type: ignore[assignment]
    generator_p99_ms: float = 1.0,
    scheduled_in_window: int | None = None,
    generator_late_ms: list[float] | None = None,
) -> tuple[Path, Path]:
    """A request log of (scheduled, sent, response ms, ok) and a window file as the locustfile writes them."""
    raw, meta = folder / "requests.csv", folder / "window.json"
    with raw.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for i, (scheduled, sent, ms, ok) in enumerate(requests):
            writer.writerow([f"{sent:.6f}", f"{ms:.3f}", "page", int(ok), "" if ok else "boom", i + 1, "", "",
                             f"{scheduled:.6f}"])  # fmt: skip
    inside = sum(1 for s, *_ in requests if T0 <= s <= T0 + WINDOW)
    counted = inside + sum(1 for t in dropped if T0 <= t <= T0 + WINDOW)
    counted += sum(1 for u in unfinished if T0 <= u["scheduled_epoch_s"] <= T0 + WINDOW)
    data = {
        "window_start": T0,
        "window_end": T0 + WINDOW,
        "unfinished": list(unfinished),
        "client_cpu_pct": 12.0,
        "client_processes": [{"role": "local"}],
        "arrival": {
            "mode": "open",
            "rate": 50.0,
            "process": "poisson",
            "max_lateness_s": 1.0,
            "scheduled_in_window": counted if scheduled_in_window is None else scheduled_in_window,
            "dropped_epoch_s": list(dropped),
            "generator": {"arrivals": counted, "p50_ms": 0.5, "p99_ms": generator_p99_ms, "max_ms": 9.0},
            **({} if generator_late_ms is None else {"generator_late_ms": generator_late_ms}),
        },
    }
    meta.write_text(json.dumps(store.stamp(data, store.WINDOW_FORMAT, store.LOCUST_FILES_VERSION)))
    return raw, meta


def test_latency_counts_from_the_scheduled_start_and_the_send_is_kept_beside_it(tmp_path: Path) -> None:
    # 200 arrivals 50 ms apart; every one sent 40 ms late and answered in 100 ms.
    requests = [(T0 + 0.05 * i, T0 + 0.05 * i + 0.040, 100.0, True) for i in range(200)]
    f = open_figures(*write_step(tmp_path, requests))
    assert f.arrivals == 200
    assert f.offered_rps == pytest.approx(20.0)
    assert f.scheduled.p50_ms == pytest.approx(140.0, abs=0.01)
    assert f.sent.p50_ms == pytest.approx(100.0)
    assert f.send_late_p50_ms == pytest.approx(40.0, abs=0.01)
    assert (f.failed, f.dropped, f.unfinished, f.lost_pct) == (0, 0, 0, 0.0)
    assert f.p99_all_ms == pytest.approx(140.0, abs=0.01) and not f.p99_all_lost
    assert f.notes == [] and not f.generator_behind


def test_only_arrivals_scheduled_inside_the_window_are_the_sample(tmp_path: Path) -> None:
    # Scheduled before the window but sent inside it: the warm-up's, not the sample's.
    early = [(T0 - 0.5, T0 + 0.1, 5000.0, True)]
    inside = [(T0 + 0.05 * i, T0 + 0.05 * i, 100.0, True) for i in range(150)]
    late = [(T0 + WINDOW + 0.5, T0 + WINDOW + 0.5, 100.0, True)]
    f = open_figures(*write_step(tmp_path, early + inside + late))
    assert f.scheduled.requests == 150
    assert f.scheduled.max_ms == pytest.approx(100.0)


def test_every_lost_arrival_is_counted_and_a_p99_beyond_the_answers_is_none(tmp_path: Path) -> None:
    answered = [(T0 + 0.05 * i, T0 + 0.05 * i, 100.0, True) for i in range(190)]
    failed = [(T0 + 0.01, T0 + 0.01, 3.0, False)]
    dropped = [T0 + 1.0, T0 + 2.0, T0 - 3.0]  # the last one is the warm-up's
    unfinished = [{"start_epoch_s": T0 + 5, "scheduled_epoch_s": T0 + 5, "endpoint": "page", "age_ms": 1.0,
                   "request_id": "x"}]  # fmt: skip
    f = open_figures(*write_step(tmp_path, answered + failed, dropped, unfinished))
    assert (f.failed, f.dropped, f.unfinished) == (1, 2, 1)
    assert f.arrivals == 194
    assert f.lost_pct == pytest.approx(100 * 4 / 194)
    # 4 of 194 lost is over 1%: no answered time is the p99 of every arrival.
    assert f.p99_all_lost and f.p99_all_ms is not None and math.isnan(f.p99_all_ms)
    # The answered requests' own p99 is still given, as in a closed loop.
    assert f.scheduled.p99_ms == pytest.approx(100.0)


def test_an_arrival_the_files_do_not_account_for_is_noted(tmp_path: Path) -> None:
    requests = [(T0 + 0.05 * i, T0 + 0.05 * i, 100.0, True) for i in range(100)]
    f = open_figures(*write_step(tmp_path, requests, scheduled_in_window=103))
    assert f.notes and "103 arrivals" in f.notes[0]


def test_a_generator_that_fell_behind_is_flagged_and_one_hiccup_is_not(tmp_path: Path) -> None:
    requests = [(T0 + 0.05 * i, T0 + 0.05 * i, 100.0, True) for i in range(100)]

    def behind(late: list[float]) -> bool:
        return open_figures(*write_step(tmp_path, requests, generator_late_ms=late)).generator_behind

    on_time = [0.8] * 100
    assert not behind(on_time)
    # One arrival 47 ms late (a garbage collection in the client): it is that arrival's latency, not a generator
    # that could not keep up, though on 100 arrivals it is the p99.
    hiccup = [*on_time[:99], 47.0]
    assert not behind(hiccup)
    f = open_figures(*write_step(tmp_path, requests, generator_late_ms=hiccup))
    assert f.generator_max_ms == 47.0 and f.generator_p50_ms == 0.8
    # Two of 100 over the bound: more than 1%, more than one.
    assert behind([*on_time[:98], GENERATOR_BEHIND_MS + 1, 30.0])
    assert not behind([*on_time[:98], GENERATOR_BEHIND_MS, GENERATOR_BEHIND_MS])  # at the bound is not over it
    # On 300 arrivals three late ones are 1%: not more than 1%.
    assert not behind([0.8] * 297 + [50.0] * 3)
    assert behind([0.8] * 296 + [50.0] * 4)


def test_a_closed_step_or_a_row_without_its_schedule_is_refused(tmp_path: Path) -> None:
    raw, meta = write_step(tmp_path, [(T0 + 1, T0 + 1, 100.0, True)])
    data = json.loads(meta.read_text())
    del data["arrival"]
    meta.write_text(json.dumps(data))
    with pytest.raises(OutputError, match="not an open-arrival step"):
        open_figures(raw, meta)
    raw, meta = write_step(tmp_path, [(T0 + 1, T0 + 1, 100.0, True)])
    raw.write_text(raw.read_text().replace(f"{T0 + 1:.6f}\n", "\n").replace(f",{T0 + 1:.6f}\r\n", ",\r\n"))
    with pytest.raises(OutputError, match="without its scheduled start"):
        open_figures(raw, meta)


def test_p99_over_every_arrival_ranks_lost_ones_above_every_answer() -> None:
    # 100 arrivals, one lost: the p99's rank (99) is still an answer; two lost, it is not.
    assert p99_all([float(i) for i in range(1, 100)], 1) == 99.0
    assert p99_all([float(i) for i in range(1, 99)], 2) is None
    assert p99_all([float(i) for i in range(1, 200)], 1) == 198.0
    too_few = p99_all([1.0] * 50, 0)
    assert too_few is not None and math.isnan(too_few)
