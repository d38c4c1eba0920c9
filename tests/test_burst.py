"""The burst over time: its figures from a per-request log (per second, per stage, the recovery after the crowd
leaves), its scenario table, and the file written when it runs alone.

Pure logic on synthetic rows, and a fake ``measure`` for the standalone run; the real burst (real servers, real
Locust) runs in the integration sweep.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from runner import burst, store
from runner.config import ROOT, BurstConfig, RunConfig, ScenarioError, config_from_dict, load_config
from runner.loadgen import BURST_LOCUSTFILE
from runner.processes import CpuPlan
from tests.runs import PNG_SIGNATURE, burst_data
from tests.scenarios import SMALL_BURST, small_scenario

T0 = 1_000_000.0


def row(sent_s: float, ms: float, endpoint: str = "page", ok: bool = True) -> burst.Row:
    return (T0 + sent_s, ms, endpoint, ok)


def test_a_request_counts_in_the_second_it_was_sent_and_the_second_it_ended() -> None:
    rows = [row(0.2, 100), row(0.9, 2500), row(1.5, 10, "short"), row(2.1, 50, ok=False)]
    seconds = burst.per_second(rows, T0, 4)
    assert [s["requests"] for s in seconds] == [2, 1, 0, 0]
    assert [s["failures"] for s in seconds] == [0, 0, 1, 0]
    # 0.2 + 0.1 -> second 0; 0.9 + 2.5 -> second 3; 1.5 + 0.01 -> second 1; the failure completes nothing.
    assert [s["completed"] for s in seconds] == [1, 1, 0, 1]
    assert seconds[0]["p50_ms"] == 100 and seconds[0]["max_ms"] == 2500
    assert seconds[1]["page_requests"] == 0 and math.isnan(seconds[1]["page_p50_ms"])
    assert seconds[0]["page_requests"] == 2


def test_p95_per_second_needs_twenty_requests() -> None:
    few = burst.per_second([row(0.01 * i, 100 + i) for i in range(19)], T0, 1)
    many = burst.per_second([row(0.01 * i, 100 + i) for i in range(20)], T0, 1)
    assert math.isnan(few[0]["p95_ms"])
    assert many[0]["p95_ms"] == 118  # the 19th of 20 sorted times: an observed value, no interpolation


def test_stages_split_the_log_by_send_time() -> None:
    rows = [row(0.5, 100), row(1.0, 3000), row(1.5, 3000), row(3.5, 100)]
    stages = burst.per_stage(rows, T0, [(5, 1.0), (500, 2.0), (5, 2.0)])
    assert [(s["users"], s["start_s"], s["end_s"], s["requests"]) for s in stages] == [
        (5, 0.0, 1.0, 1),
        (500, 1.0, 3.0, 2),
        (5, 3.0, 5.0, 1),
    ]
    # Completions inside each stage over its length: the crowd's answers land in the last stage.
    assert [s["rps"] for s in stages] == [1.0, 0.0, 1.5]


def test_recovery_is_when_medians_stay_back_near_the_first_stages() -> None:
    def second(t: int, p50: float) -> dict[str, object]:
        return {"t": t, "requests": 1, "p50_ms": p50}

    seconds = [second(0, 100), second(5, 5000), second(10, 4000), second(11, 150), second(12, 900), second(13, 120)]
    assert burst.recovered_after(seconds, baseline_ms=100, drop_at=10) == 3.0  # 12 s is still above 200 ms
    assert burst.recovered_after(seconds[:-1], baseline_ms=100, drop_at=10) is None
    assert burst.recovered_after(seconds, baseline_ms=math.nan, drop_at=10) is None


def test_summary_reads_the_meta_file_and_marks_a_drop() -> None:
    rows = [row(0.1, 100), row(1.1, 2000), row(1.2, 2000), row(3.2, 110), row(4.5, 100)]
    meta = {"window_start": T0, "user_counts": [[T0, 5], [T0 + 1.0, 500], [T0 + 3.0, 5]], "unfinished": []}
    summary = burst.summarise(rows, meta, [(5, 1.0), (500, 2.0), (5, 2.0)])
    assert summary["requests"] == 5 and summary["failures"] == 0
    assert summary["users"] == [[0.0, 5], [1.0, 500], [3.0, 5]]
    assert summary["recovered_after_s"] == 0.0
    assert len(summary["seconds"]) == 5
    rising = burst.summarise(rows, meta, [(5, 1.0), (500, 4.0)])
    assert rising["recovered_after_s"] is None  # no drop, nothing to recover from


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ('stages = "5:5"', "list of [users, seconds]"),
        ("stages = [[5]]", "burst.stages[0]' must be a [users, seconds] pair"),
        ("stages = [[0, 5]]", "burst.stages[0] users' must be > 0"),
        ("stages = [[5.5, 5]]", "must be a whole number"),
        ("stages = [[5, 0]]", "burst.stages[0] seconds' must be > 0"),
        ("stages = [[50000, 5]]", "at most 5000"),
        ("stages = [[5, 5]]\ndrain_s = -1", "burst.drain_s' must be >= 0"),
        ("stage = [[5, 5]]", "unknown key 'burst.stage'"),
    ],
)
def test_bad_burst_tables_are_refused_with_their_key(tmp_path: Path, table: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(small_scenario(burst=f"[burst]\n{table}\n"), encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_config(str(path))
    assert needle in str(caught.value) and str(path) in str(caught.value)


def test_a_saved_config_without_a_burst_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(small_scenario(), encoding="utf-8")
    config = load_config(str(path))
    assert config.burst == BurstConfig()
    saved = config.to_dict()
    del saved["burst"]  # as in run.json files written before the burst existed
    assert config_from_dict(saved) == config


def test_the_default_scenario_bursts_from_5_to_500_and_back() -> None:
    config = load_config("default")
    assert config.burst.stages[0][0] == 5 and config.burst.stages[-1][0] == 5
    assert max(users for users, _ in config.burst.stages) == 500


@pytest.mark.integration
def test_the_burst_locustfile_names_a_bad_stage() -> None:
    """Locust refuses a malformed --stages before sending anything (checked in a real Locust process)."""
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(BURST_LOCUSTFILE), "--headless",
         "--host", "http://127.0.0.1:9", "--stages", "5:5,lots:10"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "bad stage 'lots:10'" in done.stdout + done.stderr


def test_a_request_started_after_the_last_stage_is_not_counted_unfinished() -> None:
    rows = [row(0.1, 100)]
    meta = {
        "window_start": T0,
        "window_end": T0 + 2.0,
        "unfinished": [
            {"start_epoch_s": T0 + 1.5, "endpoint": "page", "age_ms": 600.0},  # sent inside: really unanswered
            {"start_epoch_s": T0 + 2.01, "endpoint": "page", "age_ms": 1.0},  # sent as Locust stopped: killed
        ],
    }
    summary = burst.summarise(rows, meta, [(5, 1.0), (50, 1.0)])
    assert summary["unfinished"] == 1 and summary["stopped_after_end"] == 1


def test_the_locustfile_of_the_burst_is_named_for_its_shape() -> None:
    """The burst is the crowd over time; its Locust file is the shape that drives it, beside the sweep's."""
    assert BURST_LOCUSTFILE == ROOT / "loadtests" / "burst_shape.py"
    assert BURST_LOCUSTFILE.is_file()


def test_the_test_burst_data_has_the_shape_summarise_gives() -> None:
    rows = [row(0.1 * i, 110.0) for i in range(50)]
    meta = {"window_start": T0, "window_end": T0 + 5.0, "unfinished": [], "user_counts": [[T0, 2]]}
    summary = burst.summarise(rows, meta, [(2, 1.0), (20, 2.0), (2, 2.0)])
    for server in burst_data()["servers"].values():
        assert set(summary) <= set(server)
        assert set(summary["seconds"][0]) == set(server["seconds"][0])
        assert set(summary["stages"][0]) == set(server["stages"][0])


def test_stages_are_described_in_words(write_scenario: Callable[..., Path]) -> None:
    config = load_config(str(write_scenario(burst=SMALL_BURST)))
    assert burst.stages_text(config) == "2 users for 1 s, then 20 users for 2 s, then 2 users for 2 s"
    assert burst.describe(config) == (
        "burst over time: 2 users for 1 s, then 20 users for 2 s, then 2 users for 2 s, "
        "on flask-gunicorn, fastapi-uvicorn"
    )


def test_run_alone_a_scenario_without_stages_is_refused_naming_its_file(write_scenario: Callable[..., Path]) -> None:
    path = write_scenario()
    with pytest.raises(ScenarioError, match=r"has no \[burst\] stages") as caught:
        burst.check(load_config(str(path)))
    assert str(path) in str(caught.value)
    burst.check(load_config(str(write_scenario(burst=SMALL_BURST))))  # with stages: nothing to say


def test_problems_name_each_server_the_burst_failed_on() -> None:
    data = burst_data()
    assert burst.problems(data) == []
    data["servers"]["fastapi-uvicorn"] = {"kind": "async", "error": "Locust wrote no meta file"}
    assert burst.problems(data) == ["burst on fastapi-uvicorn failed: Locust wrote no meta file"]
    assert burst.problems({"error": "the servers did not start"}) == []  # said where it was raised


def test_run_alone_it_writes_a_versioned_burst_json_and_its_chart(
    write_scenario: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[Path] = []

    def measure(config: RunConfig, cpus: CpuPlan, folder: Path) -> dict[str, Any]:
        asked.append(folder)
        return burst_data()

    monkeypatch.setattr(burst, "EXPERIMENT", replace(burst.EXPERIMENT, measure=measure))
    monkeypatch.setenv("BENCH_PIN_CPUS", "false")
    results = tmp_path / "results"
    assert burst.main([str(write_scenario(name="alone", burst=SMALL_BURST)), "--results-dir", str(results)]) == 0
    (run_dir,) = results.iterdir()
    assert run_dir.name.endswith("-alone-burst")
    assert asked == [run_dir / "raw" / "burst"]
    data = store.load_document(run_dir / store.BURST_FILE, store.BURST_FORMAT, store.EXPERIMENT_VERSION)
    assert set(data["servers"]) == {"flask-gunicorn", "fastapi-uvicorn"}
    assert (run_dir / "charts" / "burst.png").read_bytes().startswith(PNG_SIGNATURE)


def test_run_alone_without_stages_it_exits_2_and_starts_nothing(
    write_scenario: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    assert burst.main([str(write_scenario()), "--results-dir", str(results)]) == 2
    assert "has no [burst] stages" in capsys.readouterr().err
    assert not results.exists()
