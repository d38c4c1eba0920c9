"""Locust's own scale-out: a master and N local workers instead of one process, with every figure still exact.

The pure parts (reading several request logs as one, the client's CPU over several processes, the per-process
saturation rule, the setting and the Locust command lines) run everywhere; the integration tests start real
Locust masters and workers, and one real uvicorn server.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psutil
import pytest

from runner import loadgen, servers
from runner.config import MAX_CLIENT_PROCESSES, ROOT, ScenarioError, load_config
from runner.loadgen import StepFiles, burst_command, command
from runner.processes import CpuPlan, start_group, stop_group
from runner.stats import OutputError, client_cpu, read_raw, read_raws, step_figures
from runner.sweep import CLIENT_SATURATED_PCT, Step, measure_step, saturation
from tests.runs import window_file
from tests.scenarios import SMALL_BURST, small_scenario

HEADER = "start_epoch_s,response_ms,endpoint,ok,error,request_id"
WINDOW_START, WINDOW_END = 1000.0, 1010.0


def write_raw(path: Path, rows: list[tuple[float, float, str, int, str]], header: str = HEADER) -> Path:
    """A request log as the locustfile writes it; rows are (start, ms, endpoint, ok, request id)."""
    lines = [header]
    for start, ms, name, ok, request_id in rows:
        error = "" if ok else "HTTPError: 500"
        lines.append(f"{start:.6f},{ms:.3f},{name},{ok},{error}" + (f",{request_id}" if "request_id" in header else ""))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# Two workers' logs of one step: worker 0 sent ids 1-3, worker 1 ids 1-2.
WORKER_0 = [(1001.0, 50.0, "page", 1, "w0-1"), (1004.0, 60.0, "short", 1, "w0-2"), (1008.0, 70.0, "page", 0, "w0-3")]
WORKER_1 = [(1000.5, 40.0, "page", 1, "w1-1"), (1006.0, 30.0, "short", 1, "w1-2")]


# --- reading several request logs -----------------------------------------------------------------------------------


def test_several_logs_read_as_one_in_start_order(tmp_path: Path) -> None:
    rows = read_raws([write_raw(tmp_path / "a.csv", WORKER_0), write_raw(tmp_path / "b.csv", WORKER_1)])
    assert [r[0] for r in rows] == [1000.5, 1001.0, 1004.0, 1006.0, 1008.0]
    assert rows[-1] == (1008.0, 70.0, "page", False)


def test_one_log_reads_the_same_through_either_reader(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "requests.csv", WORKER_0)
    assert read_raw(path) == read_raws([path])


def test_a_request_id_in_two_logs_is_an_error_naming_both(tmp_path: Path) -> None:
    first = write_raw(tmp_path / "a.csv", WORKER_0)
    second = write_raw(tmp_path / "b.csv", [*WORKER_1, (1009.0, 10.0, "page", 1, "w0-2")])
    with pytest.raises(OutputError, match=r"'w0-2' appears twice: in .*a\.csv and .*b\.csv"):
        read_raws([first, second])


def test_a_request_id_twice_in_one_log_is_an_error(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "a.csv", [*WORKER_0, WORKER_0[0]])
    with pytest.raises(OutputError, match="'w0-1' appears twice"):
        read_raws([path])


def test_logs_written_before_request_ids_are_merged_as_they_are(tmp_path: Path) -> None:
    old = "start_epoch_s,response_ms,endpoint,ok,error"
    rows = read_raws([write_raw(tmp_path / "a.csv", WORKER_0, old), write_raw(tmp_path / "b.csv", WORKER_0, old)])
    assert len(rows) == 6


def test_a_missing_log_among_several_is_named(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=re.escape(str(tmp_path / "gone.csv"))):
        read_raws([write_raw(tmp_path / "a.csv", WORKER_0), tmp_path / "gone.csv"])


def _step_files(tmp_path: Path, **meta: Any) -> tuple[Path, Path]:
    entries = [
        {
            "name": name,
            "method": "GET",
            "num_requests": count,
            "num_failures": failures,
            "total_response_time": 100.0,
            "min_response_time": 30.0,
            "max_response_time": 70.0,
            "response_times": {"50": count},
        }
        for name, count, failures in (("page", 3, 1), ("short", 2, 0))
    ]
    json_path = tmp_path / "locust.json"
    json_path.write_text(json.dumps(entries), encoding="utf-8")
    base = {"window_start": WINDOW_START, "window_end": WINDOW_END, "unfinished": [], "client_cpu_pct": 30.0}
    return json_path, window_file(tmp_path / "window.json", {**base, **meta})


def test_step_figures_from_several_logs_equal_those_from_their_merge(tmp_path: Path) -> None:
    json_path, meta_path = _step_files(tmp_path)
    parts = [write_raw(tmp_path / "w0.csv", WORKER_0), write_raw(tmp_path / "w1.csv", WORKER_1)]
    merged = write_raw(tmp_path / "requests.csv", sorted(WORKER_0 + WORKER_1))
    from_parts = step_figures(json_path, parts, meta_path)
    assert from_parts == step_figures(json_path, merged, meta_path)
    assert from_parts.completed_in_window == 4  # five sent in the window, one of them failed
    assert from_parts.failed_in_window == 1


@pytest.mark.parametrize(
    ("meta", "needle"),
    [
        ({"workers_expected": 2, "workers_reported": 1, "workers_missing": ["host_abc"]}, "1 of 2 Locust workers"),
        (
            {"workers_expected": 2, "workers_reported": 2, "workers_incomplete": ["worker 1: 10 of 12 rows"]},
            "worker 1: 10 of 12 rows",
        ),
    ],
)
def test_a_worker_that_did_not_report_everything_fails_the_step(
    tmp_path: Path, meta: dict[str, Any], needle: str
) -> None:
    json_path, meta_path = _step_files(tmp_path, **meta)
    raw = write_raw(tmp_path / "requests.csv", WORKER_0)
    with pytest.raises(OutputError, match=re.escape(needle)):
        step_figures(json_path, raw, meta_path)


# --- the client's CPU and when it is saturated ----------------------------------------------------------------------


def _process(role: str, pct: float, index: int | None = None) -> dict[str, Any]:
    return {"role": role, "index": index, "pid": 1, "cpus": [0], "cpu_seconds": pct / 10, "cpu_pct": pct}


def test_an_old_meta_file_is_one_process_whose_figure_is_sum_and_maximum() -> None:
    assert client_cpu({"client_cpu_pct": 42.5}) == (42.5, 42.5, 1)
    assert client_cpu({}) == (None, None, 1)


def test_a_distributed_meta_file_gives_the_sum_the_busiest_and_the_count() -> None:
    processes = [_process("master", 2.0), _process("worker", 60.0, 0), _process("worker", 85.0, 1)]
    meta = {"client_cpu_pct": 147.0, "client_cpu_max_pct": 85.0, "client_processes": processes}
    assert client_cpu(meta) == (147.0, 85.0, 3)


def test_a_distributed_meta_file_without_a_maximum_has_none() -> None:
    processes = [_process("master", 2.0), _process("worker", 60.0, 0)]
    assert client_cpu({"client_cpu_pct": 62.0, "client_processes": processes}) == (62.0, None, 2)


def test_step_figures_carry_the_busiest_process(tmp_path: Path) -> None:
    processes = [_process("master", 1.0), _process("worker", 40.0, 0), _process("worker", 90.0, 1)]
    json_path, meta_path = _step_files(
        tmp_path, client_cpu_pct=131.0, client_cpu_max_pct=90.0, client_processes=processes
    )
    figures = step_figures(json_path, write_raw(tmp_path / "requests.csv", WORKER_0), meta_path)
    assert (figures.client_cpu_pct, figures.client_cpu_max_pct, figures.client_processes) == (131.0, 90.0, 3)


@pytest.mark.parametrize(
    ("total", "busiest", "client_cores", "expected"),
    [
        # One process: the old rule, whatever the cores (the sum is the process).
        (CLIENT_SATURATED_PCT, CLIENT_SATURATED_PCT, 1, ""),
        (CLIENT_SATURATED_PCT + 0.1, CLIENT_SATURATED_PCT + 0.1, 1, "client"),
        (CLIENT_SATURATED_PCT + 0.1, None, 0, "client"),  # a step saved before the maximum existed
        # Several processes on several cores: any one above ~80% of a core saturates the client ...
        (150.0, 85.0, 4, "client"),
        # ... a sum above one core does not, when no process is near one and the cores are enough ...
        (150.0, 50.0, 4, ""),
        # ... but processes sharing too few cores do, though none of them reaches 80% by itself.
        (90.0, 45.0, 1, "client"),
        (170.0, 57.0, 2, "client"),
        # Unpinned, the client's cores are not known: only the busiest process counts.
        (90.0, 45.0, 0, ""),
    ],
)
def test_the_client_is_saturated_per_process_and_per_core(
    total: float, busiest: float | None, client_cores: int, expected: str
) -> None:
    assert saturation(total, None, 1, client_cpu_max=busiest, client_cores=client_cores) == expected


def test_the_old_call_keeps_its_meaning() -> None:
    assert saturation(CLIENT_SATURATED_PCT + 0.1, None, 1) == "client"
    assert saturation(CLIENT_SATURATED_PCT, None, 1) == ""


# --- the setting and the command lines ------------------------------------------------------------------------------


def _scenario(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "dist.toml"
    text = small_scenario(name="dist", users="[20]", warmup=1, measure=3, burst=SMALL_BURST)
    path.write_text(text.replace("[load]\n", f"[load]\n{extra}"), encoding="utf-8")
    return path


def test_one_client_process_is_the_default(tmp_path: Path) -> None:
    assert load_config(str(_scenario(tmp_path)), environ={}).load.client_processes == 1


def test_the_scenario_the_environment_and_the_flag_set_client_processes(tmp_path: Path) -> None:
    path = _scenario(tmp_path, "client_processes = 3\n")
    assert load_config(str(path), environ={}).load.client_processes == 3
    from_env = load_config(str(path), environ={"BENCH_CLIENT_PROCESSES": "2"})
    assert from_env.load.client_processes == 2
    assert any("BENCH_CLIENT_PROCESSES" in o for o in from_env.overrides)
    from_flag = load_config(str(path), environ={"BENCH_CLIENT_PROCESSES": "2"}, flags={"--client-processes": "4"})
    assert from_flag.load.client_processes == 4


@pytest.mark.parametrize("value", ["0", "-1", str(MAX_CLIENT_PROCESSES + 1), "two", "1.5"])
def test_a_bad_client_processes_override_names_the_flag(tmp_path: Path, value: str) -> None:
    with pytest.raises(ScenarioError, match="--client-processes"):
        load_config(str(_scenario(tmp_path)), environ={}, flags={"--client-processes": value})


@pytest.mark.parametrize("value", ["0", "true", "2.0", '"2"', str(MAX_CLIENT_PROCESSES + 1)])
def test_a_bad_client_processes_in_the_scenario_is_named(tmp_path: Path, value: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape("load.client_processes")):
        load_config(str(_scenario(tmp_path, f"client_processes = {value}\n")), environ={})


def _flag(cmd: list[str], name: str) -> str | None:
    return cmd[cmd.index(name) + 1] if name in cmd else None


def test_one_process_runs_locust_as_before(tmp_path: Path) -> None:
    config = load_config(str(_scenario(tmp_path)), environ={})
    cmd = command(config, "http://127.0.0.1:8000", 20, StepFiles.inside(tmp_path))
    assert not [part for part in cmd if part.startswith("--master") or part == "--processes"]


def test_several_processes_run_a_loopback_master_with_forked_workers(tmp_path: Path) -> None:
    config = load_config(str(_scenario(tmp_path)), environ={}, flags={"--client-processes": "3"})
    cmd = command(config, "http://127.0.0.1:8000", 20, StepFiles.inside(tmp_path))
    assert _flag(cmd, "--processes") == "3"
    assert _flag(cmd, "--master-bind-host") == "127.0.0.1"  # never every interface
    port = _flag(cmd, "--master-bind-port")
    assert port is not None and port != "5557" and _flag(cmd, "--master-port") == port
    assert _flag(cmd, "--raw-file") == str(tmp_path / "requests.csv")  # one log, written by the master


def test_the_burst_always_runs_in_one_process(tmp_path: Path) -> None:
    config = load_config(str(_scenario(tmp_path)), environ={}, flags={"--client-processes": "2"})
    cmd = burst_command(config, "http://127.0.0.1:8000", StepFiles.inside(tmp_path))
    assert "--processes" not in cmd


def test_distribution_flags_use_the_port_given() -> None:
    assert loadgen.distribution(1) == []
    flags = loadgen.distribution(2, port=40123)
    assert _flag(flags, "--master-bind-port") == _flag(flags, "--master-port") == "40123"


# --- real Locust ----------------------------------------------------------------------------------------------------


def _locust_processes() -> set[int]:
    found = set()
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info.get("cmdline") or [])
        if "locust" in cmd and str(ROOT / "loadtests") in cmd:
            found.add(proc.pid)
    return found


def _gone(pids: set[int]) -> list[int]:
    """The pids of ``pids`` still running (zombies count as gone: nothing runs in them)."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            continue
    return alive


def _locust(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    port = str(servers.free_port())
    return subprocess.run(
        [sys.executable, "-m", "locust", "--headless", "--processes", "2", "--master-bind-host", "127.0.0.1",
         "--master-bind-port", port, "--master-port", port, "--loglevel", "WARNING", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.integration
def test_the_burst_refuses_to_run_distributed(tmp_path: Path) -> None:
    before = _locust_processes()
    done = _locust(
        tmp_path, "-f", str(ROOT / "loadtests" / "burst_shape.py"), "--stages", "2:1", "--host", "http://127.0.0.1:9"
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("runs in one Locust process only") == 1
    time.sleep(0.5)
    assert not _gone(_locust_processes() - before)


@pytest.mark.integration
def test_distributed_locust_refuses_a_remote_host_too(tmp_path: Path) -> None:
    before = _locust_processes()
    done = _locust(tmp_path, "-f", str(ROOT / "loadtests" / "locustfile.py"), "-u", "2", "-t", "2s",
                   "--host", "http://example.invalid")  # fmt: skip
    assert done.returncode != 0
    assert "refusing to send load to 'http://example.invalid'" in done.stderr
    time.sleep(0.5)
    assert not _gone(_locust_processes() - before)


@pytest.mark.integration
def test_a_step_with_two_workers_logs_every_request_once(tmp_path: Path) -> None:
    """A real step: uvicorn, a Locust master and two workers, through the sweep's own measure_step."""
    config = load_config(
        str(_scenario(tmp_path)), environ={}, flags={"--client-processes": "2", "--results-dir": str(tmp_path)}
    )
    server = next(s for s in config.servers if s.server == "uvicorn")
    before = _locust_processes()
    unpinned = CpuPlan(frozenset(), frozenset(), "not pinned (test)")
    record = measure_step(config, Step(server, 20), tmp_path / "run", unpinned)
    after = _locust_processes() - before
    assert record["status"] == "ok", record["error"]
    folder = tmp_path / "run" / record["files"]
    meta = json.loads((folder / "window.json").read_text(encoding="utf-8"))

    # No Locust process is left: not the master, not a worker, not anything else started by this step.
    processes = meta["client_processes"]
    pids = {p["pid"] for p in processes}
    assert not _gone(pids | after)

    # One master and two workers, each with its own CPU figure; the workers die with the master.
    assert [p["role"] for p in processes] == ["master", "worker", "worker"]
    assert [p["index"] for p in processes[1:]] == [0, 1]
    assert len(pids) == 3
    assert all(p["cpu_seconds"] is not None and p["cpu_seconds"] >= 0 for p in processes)
    if sys.platform.startswith("linux"):
        assert [p["parent_death_signal"] for p in processes[1:]] == [9, 9]
    assert meta["workers_expected"] == meta["workers_reported"] == 2
    assert not meta["workers_missing"] and not meta["workers_incomplete"]

    # One window, decided once, of the length asked for.
    assert meta["window_end"] - meta["window_start"] == pytest.approx(config.load.measure_s, abs=0.5)

    # Every request handed an id is in the log exactly once, or among the unfinished: none lost, none twice.
    with (folder / "requests.csv").open(newline="", encoding="utf-8") as handle:
        ids = [row["request_id"] for row in csv.DictReader(handle)]
    assert len(ids) == len(set(ids)) == meta["completed_requests"] > 0
    by_worker: dict[str, set[int]] = defaultdict(set)
    for request_id in ids + [u["request_id"] for u in meta["unfinished"]]:
        worker, _, number = request_id.partition("-")
        by_worker[worker].add(int(number))
    assert set(by_worker) == {"w0", "w1"}  # both workers sent load
    for numbers in by_worker.values():
        assert numbers == set(range(1, max(numbers) + 1))

    # The step's figures: Locust's totals (reset on the master and on each worker) agree with the log.
    figures = record["figures"]
    assert figures["notes"] == []
    assert abs(figures["raw_vs_json_gap"]) <= 2
    assert figures["client_processes"] == 3
    assert figures["client_cpu_pct"] == pytest.approx(meta["client_cpu_pct"])
    assert 0 < figures["client_cpu_max_pct"] <= figures["client_cpu_pct"]
    assert figures["rps"] > 0 and figures["latency"]["failures"] == 0
    print(  # the measured behaviour, for whoever reads the test log with -s
        f"\n{figures['rps']:.1f} req/s; client CPU {figures['client_cpu_pct']:.1f}% in all, per process "
        + ", ".join(f"{p['role']}{'' if p['index'] is None else p['index']} {p['cpu_pct']:.1f}%" for p in processes)
    )


def _start_distributed(tmp_path: Path) -> tuple[subprocess.Popen[bytes], list[int]]:
    """A master and two workers loading a port nobody listens on, started as the runner starts Locust; returns
    once both workers are up."""
    cmd = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py"), "--headless",
        "--host", f"http://127.0.0.1:{servers.free_port()}", "-u", "4", "-r", "4", "-t", "60s",
        "--think-min", "0.5", "--think-max", "1", "--loglevel", "WARNING", *loadgen.distribution(2),
    ]  # fmt: skip
    process = start_group(cmd, log_path=tmp_path / "locust.log", env=loadgen.client_env(tmp_path), cwd=tmp_path,
                          cpus=frozenset())  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        workers = [c.pid for c in psutil.Process(process.pid).children()]
        if len(workers) == 2:
            return process, workers
        time.sleep(0.1)
    stop_group(process)
    pytest.fail("the workers did not start")


@pytest.mark.integration
def test_workers_die_with_a_master_killed_alone(tmp_path: Path) -> None:
    """SIGKILL to the master only, as an out-of-memory kill would: its workers go too, by PR_SET_PDEATHSIG."""
    process, workers = _start_distributed(tmp_path)
    try:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
        deadline = time.monotonic() + 5
        while _gone(set(workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _gone(set(workers)), "workers outlived their master"
    finally:
        stop_group(process)


@pytest.mark.integration
def test_stopping_the_group_mid_step_stops_master_and_workers(tmp_path: Path) -> None:
    """What the runner does on Ctrl-C or a deadline: the whole tree goes, workers included."""
    process, workers = _start_distributed(tmp_path)
    stop_group(process)
    assert not _gone({process.pid, *workers})
