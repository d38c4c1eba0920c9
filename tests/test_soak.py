"""The soak's judgement (pure) and a short real soak (real uvicorn, real Locust)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from runner import soak
from runner.config import load_config
from runner.soak import judge, memory_ends
from tests.scenarios import small_scenario

ROOT = Path(__file__).resolve().parent.parent


def test_a_clean_soak_with_flat_memory_passes() -> None:
    verdict = judge(failures=0, unfinished=0, baseline_mb=50.0, final_mb=52.0, max_growth=0.10)
    assert verdict.passed and not verdict.reasons
    assert verdict.growth_pct == pytest.approx(4.0)


def test_memory_growth_past_the_limit_fails() -> None:
    verdict = judge(failures=0, unfinished=0, baseline_mb=50.0, final_mb=56.0, max_growth=0.10)
    assert not verdict.passed
    assert "grew 12.0%" in verdict.reasons[0]


@pytest.mark.parametrize(("failures", "unfinished", "needle"), [(1, 0, "failed"), (0, 2, "never answered")])
def test_any_failed_or_unanswered_request_fails(failures: int, unfinished: int, needle: str) -> None:
    verdict = judge(failures=failures, unfinished=unfinished, baseline_mb=50.0, final_mb=50.0, max_growth=0.10)
    assert not verdict.passed
    assert needle in verdict.reasons[0]


def test_unmeasured_memory_fails_rather_than_passes() -> None:
    assert not judge(0, 0, math.nan, math.nan, 0.10).passed


def test_memory_ends_use_medians_so_one_peak_decides_nothing() -> None:
    samples = [(float(t), 100_000_000) for t in range(0, 41)]
    samples[2] = (2.0, 900_000_000)  # a single spike just after the warm-up
    samples[39] = (39.0, 900_000_000)  # and one just before the end
    baseline, final = memory_ends(samples, start=0.0, end=40.0)
    assert baseline == pytest.approx(100.0)
    assert final == pytest.approx(100.0)


def test_the_soak_report_gives_its_figures_with_units_and_dashes_for_what_is_missing() -> None:
    config = load_config("soak")
    record = {
        "server": "fastapi-uvicorn",
        "workers": 1,
        "users": 500,
        "server_cpu_pct": 81.4,
        "figures": {
            "rps": 92.25,
            "client_cpu_pct": None,
            "latency": {"requests": 2767, "p50_ms": 187.3, "p99_ms": 1234.0, "max_ms": None},
        },
    }
    text = soak.report(config, record, judge(0, 0, 50.0, 51.0, 0.10))
    assert "PASSED" in text
    assert "- Requests: 2767 completed, 0 failed, 0 unanswered; 92.2 requests/s; p50 187 ms, p99 1.2 s, max –." in text
    assert "- Resident memory: 50.0 MB after the warm-up, 51.0 MB at the end (+2.0%; limit +10%)." in text
    assert "- CPU: server 81% of its core, Locust –% of its own." in text


@pytest.mark.integration
def test_a_short_real_soak_passes_and_writes_its_files(tmp_path: Path) -> None:
    scenario = tmp_path / "minisoak.toml"
    text = small_scenario(name="minisoak", users="[20]", warmup=2, measure=6)
    scenario.write_text(text.split("[[servers]]")[0] + '[[servers]]\nname = "fastapi-uvicorn"\nserver = "uvicorn"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "runner.soak", str(scenario), "--duration", "8", "--results-dir", str(tmp_path / "r")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED" in done.stdout
    (run_dir,) = (tmp_path / "r").iterdir()
    soak = json.loads((run_dir / "soak.json").read_text())
    assert soak["format"] == "sync-async-bench/soak"
    assert soak["verdict"]["passed"] is True
    assert soak["verdict"]["failures"] == 0
    assert soak["series"]["rss_mb"] and max(soak["series"]["rps"]) > 0
    assert (run_dir / "charts" / "soak.png").read_bytes()[:4] == b"\x89PNG"
    assert "PASSED" in (run_dir / "report.md").read_text()


def test_a_soak_scenario_with_two_servers_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "two.toml"
    scenario.write_text(small_scenario(name="two", users="[5]"))
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # main's handlers would outlive the test
    assert soak.main([str(scenario), "--results-dir", str(tmp_path / "r")]) == 2
    assert "one server at one user level" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
