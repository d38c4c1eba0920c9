"""A real, small sweep: real gunicorn and uvicorn, real Locust, real HTTP over loopback.

The runner runs as a subprocess, exactly as ``make benchmark`` starts it (it pins its own process to the
client's core, which must not happen to the test process). Assertions are about behaviour and wide sanity
bounds, never tight timings: this runs on a noisy 2-core machine.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from runner import render, servers, store
from runner.config import load_config
from tests.scenarios import SMALL_BURST, small_scenario

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration


def _bench_processes() -> list[psutil.Process]:
    """Server or Locust processes started from this checkout's code, whoever started them."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info.get("cmdline") or [])
        if (
            ("gunicorn" in cmd and "gunicorn.conf.py" in cmd)
            or "async_app.app:create_app" in cmd
            or ("locust" in cmd and ("locustfile.py" in cmd or "burst_shape.py" in cmd))
            or ("multiprocessing" in cmd and _serves_our_app(proc))
        ):
            found.append(proc)
    return found


def _serves_our_app(proc: psutil.Process) -> bool:
    """uvicorn's extra workers are multiprocessing children whose command line names no app; the harness's
    server environment (APP_ENDPOINTS) marks them."""
    try:
        return "APP_ENDPOINTS" in proc.environ()
    except (psutil.Error, OSError):
        return False


# Settings the servers read from the environment on their own; the harness must not let them through.
HOSTILE_ENV = {"GUNICORN_CMD_ARGS": "--workers 5", "UVICORN_WORKERS": "3", "WEB_CONCURRENCY": "4"}


def _start_runner(args: list[str], *, capture: bool = True) -> subprocess.Popen[str]:
    """The CLI as a user starts it, in the background, so a test can interrupt or kill it mid-run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *args], cwd=ROOT, env=env, stdout=out, stderr=out, text=True
    )


def _end(process: subprocess.Popen[str]) -> None:
    """Kill the runner if a check failed while it ran, reap it and close its pipes (an open pipe left for the
    garbage collector is a ResourceWarning, and warnings are errors)."""
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


def _scenario(tmp_path: Path, name: str, users: str, measure: int = 2) -> tuple[Path, Path]:
    """A small scenario file and a results folder for it."""
    scenario = tmp_path / f"{name}.toml"
    scenario.write_text(small_scenario(name=name, users=users, warmup=1, measure=measure), encoding="utf-8")
    return scenario, tmp_path / "results"


def _run(args: list[str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(HOSTILE_ENV)
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    folder = tmp_path_factory.mktemp("sweep")
    scenario = folder / "small.toml"
    scenario.write_text(small_scenario(name="small", users="[2, 20]", burst=SMALL_BURST), encoding="utf-8")
    results = folder / "results"
    before = {p.pid for p in _bench_processes()}
    done = _run([str(scenario), "--results-dir", str(results)])
    left = [p for p in _bench_processes() if p.pid not in before]
    assert not left, f"processes left behind: {[p.info['cmdline'] for p in left]}"
    return done, results


def test_sweep_exits_cleanly_and_writes_every_file(small_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    done, results = small_run
    assert done.returncode == 0, done.stdout + done.stderr
    latest = results / "latest"
    assert latest.is_symlink()
    run_dir = latest.resolve()
    assert run_dir.name.endswith("-small")
    for name in ("run.json", "summary.csv", "report.md", "charts/response_times.png", "charts/throughput.png",
                 "charts/timeline.png", "charts/burst.png"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    for name in ("charts/response_times.png", "charts/throughput.png"):
        assert (run_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for step in ("flask-gunicorn/u0002", "fastapi-uvicorn/u0020"):
        for name in ("locust.json", "requests.csv", "window.json", "server.log", "locust.log"):
            assert (run_dir / "raw" / step / name).is_file(), f"{step}/{name}"


def test_run_json_describes_itself(small_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, results = small_run
    run = store.load_run(results / "latest")
    assert run["format_version"] == store.FORMAT_VERSION
    assert run["status"] == "complete"
    meta = run["metadata"]
    for key in ("date", "cpu_model", "cpu_count", "os", "python", "packages", "git", "cpu_pinning"):
        assert meta.get(key) is not None, key
    assert meta["packages"]["locust"] != "not installed"
    assert run["config"]["load"]["users"] == [2, 20]
    # The scenario's worker counts, not the ones planted in the environment (see HOSTILE_ENV).
    assert {(s["server"], s["server_processes"]) for s in run["steps"]} == {
        ("flask-gunicorn", 3),
        ("fastapi-uvicorn", 1),
    }
    assert [(s["server"], s["users"]) for s in run["steps"]] == [
        ("flask-gunicorn", 2),
        ("fastapi-uvicorn", 2),
        ("flask-gunicorn", 20),
        ("fastapi-uvicorn", 20),
    ]


def test_the_burst_over_time_follows_its_stages(small_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """Every server ran the stages it was given, and what Locust ran is what the chart will draw."""
    _, results = small_run
    run = store.load_run(results / "latest")
    burst = run["burst"]
    assert burst["stages"] == [[2, 1.0], [20, 2.0], [2, 2.0]]
    assert set(burst["servers"]) == {"flask-gunicorn", "fastapi-uvicorn"}
    for name, server in burst["servers"].items():
        assert "error" not in server, (name, server.get("error"))
        assert server["failures"] == 0 and server["unfinished"] == 0, name
        assert [s["users"] for s in server["stages"]] == [2, 20, 2]
        running = [n for _, n in server["users"]]
        assert max(running) == 20 and running[0] == 2 and running[-1] == 2, (name, running)
        # The jump brings 18 new users whose first request goes out at once: the peak stage sends the most.
        assert server["stages"][1]["requests"] >= 18, name
        # Every logged request falls in exactly one second of the chart.
        assert sum(s["requests"] + s["failures"] for s in server["seconds"]) == server["requests"], name
        assert (run_dir_of(results) / server["files"] / "requests.csv").is_file()
    report = (results / "latest" / "report.md").read_text(encoding="utf-8")
    assert "## The burst over time" in report and "charts/burst.png" in report


def run_dir_of(results: Path) -> Path:
    return (results / "latest").resolve()


def test_numbers_are_plausible(small_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, results = small_run
    rows = list(csv.DictReader((results / "latest" / "summary.csv").read_text().splitlines()))
    assert len(rows) == 4
    page_wait_ms = 10 + 1 + 30  # user lookup + work + listing, no jitter
    for row in rows:
        assert row["status"] == "ok"
        assert int(row["failures"]) == 0
        assert int(row["requests"]) > 0
        users = int(row["users"])
        # A closed loop of N users thinking 0.5-1.5 s cannot exceed N / 0.5 requests/s, and at these loads neither
        # server is anywhere near a limit, so it should reach a good fraction of N / (1 s + response time).
        assert 0.3 * users / 1.1 < float(row["rps"]) <= users / 0.5
        if int(row["requests"]) >= 20:
            assert float(row["p50_ms"]) <= float(row["p95_ms"]) <= float(row["max_ms"])
        else:  # too few requests for a p95: it is left blank, not passed off as the maximum
            assert row["p95_ms"] == ""
            assert float(row["p50_ms"]) <= float(row["max_ms"])
    # At low load the async page takes about its configured waits: never less, and not wildly more. (20 users is
    # still far below any limit here, and unlike 2 users it is sure to include short requests in the mix.)
    # Every answered request's Server-Timing reached the request log: the handler took at least the waits of a
    # request, and what the client saw on top of it (outside the handler) is never negative beyond rounding.
    for record in store.load_run(results / "latest")["steps"]:
        server = record["figures"]["server"]
        assert server["timed"] == record["figures"]["latency"]["requests"], record["server"]
        assert 5 <= server["handler_mean_ms"] < 10 * page_wait_ms, record["server"]
        assert server["outside_mean_ms"] > -1, record["server"]
    async_low = next(r for r in rows if r["server"] == "fastapi-uvicorn" and r["users"] == "20")
    assert page_wait_ms <= float(async_low["page_p50_ms"]) < 2 * page_wait_ms + 30
    assert 5 <= float(async_low["short_p50_ms"]) < 60


def test_report_names_the_setup(small_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, results = small_run
    text = (results / "latest" / "report.md").read_text()
    assert "flask-gunicorn" in text and "fastapi-uvicorn" in text
    assert "2 sync workers" in text
    assert "## Reading" in text


def test_plots_redraws_from_saved_data_alone(
    small_run: tuple[subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    _, results = small_run
    copy = tmp_path / "copy"
    copy.mkdir()
    source = (results / "latest").resolve()
    (copy / "run.json").write_bytes((source / "run.json").read_bytes())
    written = render.render(copy)
    assert {p.name for p in written} >= {"response_times.png", "throughput.png", "report.md", "summary.csv"}
    assert (copy / "summary.csv").read_text() == (source / "summary.csv").read_text()


def test_a_second_run_never_overwrites_the_first(
    small_run: tuple[subprocess.CompletedProcess[str], Path], write_scenario: Callable[..., Path]
) -> None:
    _, results = small_run
    first = (results / "latest").resolve()
    before = (first / "run.json").read_bytes()
    scenario = write_scenario(name="small", users="[1]", warmup=0, measure=1)
    done = _run([str(scenario), "--results-dir", str(results)])
    assert done.returncode == 0, done.stdout + done.stderr
    second = (results / "latest").resolve()
    assert second != first
    assert (first / "run.json").read_bytes() == before


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("[load]\nuserz = [5]\n", "load.userz"),
        ("[load]\nusers = [0]\n", "load.users"),
        ("[load]\nmeasure_s = -1\n", "load.measure_s"),
        ('[[servers]]\nname = "x"\nserver = "tornado"\n', "servers[0].server"),
    ],
)
def test_bad_scenarios_stop_before_anything_starts(tmp_path: Path, content: str, needle: str) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text(content)
    done = _run([str(scenario), "--results-dir", str(tmp_path / "results")])
    assert done.returncode == 2
    assert needle in done.stderr and str(scenario) in done.stderr
    assert not (tmp_path / "results").exists()


def test_missing_scenario_file_is_named(tmp_path: Path) -> None:
    done = _run([str(tmp_path / "nope.toml")])
    assert done.returncode == 2
    assert "nope.toml" in done.stderr and "does not exist" in done.stderr


def test_server_that_never_becomes_healthy_shows_its_log(
    tmp_path: Path, write_scenario: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real process that dies on start: the error carries its exit code and the tail of its log."""
    config = load_config(str(write_scenario()))

    def broken(spec: object, port: int) -> list[str]:
        return [sys.executable, "-c", "import sys; print('simulated import failure in the app'); sys.exit(3)"]

    monkeypatch.setattr(servers, "command", broken)
    with (
        pytest.raises(servers.ServerError) as caught,
        servers.serve(config.servers[0], config, tmp_path / "s.log", frozenset()),
    ):
        pass
    message = str(caught.value)
    assert "exited with code 3" in message
    assert "simulated import failure in the app" in message


def _interrupt_mid_run(scenario: Path, results: Path, signum: int) -> subprocess.CompletedProcess[str]:
    """Start a sweep, let two steps complete, send ``signum`` inside the third, and wait for the exit."""
    process = _start_runner([str(scenario), "--results-dir", str(results)])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            run_file = results / "latest" / "run.json"
            try:
                if len(json.loads(run_file.read_text())["steps"]) >= 2:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        else:
            pytest.fail("the sweep never completed two steps")
        time.sleep(2.5)  # inside the next step: its server and Locust are running
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
    finally:
        _end(process)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_interrupt_stops_every_process_and_keeps_completed_steps(tmp_path: Path) -> None:
    """Ctrl-C in the middle of a step: nothing left running, finished steps on disk, the run marked interrupted."""
    scenario, results = _scenario(tmp_path, "long", "[2, 4, 6]")
    before = {p.pid for p in _bench_processes()}
    done = _interrupt_mid_run(scenario, results, signal.SIGINT)
    assert done.returncode == 130, done.stderr
    assert "RESUME=" in done.stderr
    time.sleep(0.5)
    left = [p for p in _bench_processes() if p.pid not in before]
    assert not left, f"processes left behind: {[p.info['cmdline'] for p in left]}"
    run = store.load_run(results / "latest")
    assert run["status"] == "interrupted"
    assert len(run["steps"]) >= 2
    assert all(s["status"] == "ok" for s in run["steps"])
    assert run["missing_steps"]
    report_text = (results / "latest" / "report.md").read_text()
    assert "interrupted" in report_text and "Missing steps" in report_text


def test_sigterm_then_resume_finishes_the_run_without_touching_measured_steps(tmp_path: Path) -> None:
    scenario, results = _scenario(tmp_path, "resumable", "[2, 4]")
    before = {p.pid for p in _bench_processes()}
    done = _interrupt_mid_run(scenario, results, signal.SIGTERM)
    assert done.returncode == 130, done.stderr
    assert not [p for p in _bench_processes() if p.pid not in before]
    run_dir = (results / "latest").resolve()
    first = store.load_run(run_dir)
    kept = {(s["server"], s["users"]): s for s in first["steps"]}
    assert len(kept) == 2

    resumed = _run(["--resume", str(run_dir)])
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    run = store.load_run(run_dir)
    assert run["status"] == "complete"
    assert sorted((s["server"], s["users"]) for s in run["steps"]) == sorted(
        (name, n) for name in ("flask-gunicorn", "fastapi-uvicorn") for n in (2, 4)
    )
    for step in run["steps"]:  # the steps measured before the interruption are exactly as they were
        if (step["server"], step["users"]) in kept:
            assert step == kept[(step["server"], step["users"])]
    assert len(run["resumes"]) == 1
    # The step that was cut off left a folder; its new attempt got a folder of its own.
    third = run["steps"][2]["files"]
    assert third.endswith("-attempt2"), third


def test_a_server_killed_mid_step_fails_that_step_and_the_sweep_goes_on(tmp_path: Path) -> None:
    scenario, results = _scenario(tmp_path, "crash", "[2, 4]", measure=3)
    before = {p.pid for p in _bench_processes()}
    runner = _start_runner([str(scenario), "--results-dir", str(results)])
    try:
        # The first step is gunicorn's: wait until its master runs, let the load start, then kill it outright.
        deadline = time.monotonic() + 60
        master = None
        while master is None and time.monotonic() < deadline:
            for child in psutil.Process(runner.pid).children():
                if "gunicorn.conf.py" in " ".join(child.cmdline()):
                    master = child
            time.sleep(0.1)
        assert master is not None, "gunicorn never started"
        time.sleep(2.5)
        master.kill()
        out, err = runner.communicate(timeout=180)
    finally:
        _end(runner)
    assert runner.returncode == 1, out + err
    assert not [p for p in _bench_processes() if p.pid not in before], "processes left behind"
    run = store.load_run(results / "latest")
    assert run["status"] == "incomplete"
    by_step = {(s["server"], s["users"]): s for s in run["steps"]}
    assert len(by_step) == 4, "the sweep did not go on after the crash"
    crashed = by_step[("flask-gunicorn", 2)]
    assert crashed["status"] == "failed"
    assert "exited during the step" in crashed["error"]
    # The log's last lines, or that it is empty (gunicorn killed outright may have written nothing): named either way.
    assert "/raw/flask-gunicorn/u0002/server.log" in crashed["error"]
    assert all(s["status"] == "ok" for key, s in by_step.items() if key != ("flask-gunicorn", 2))
    report_text = (results / "latest" / "report.md").read_text()
    assert "Failed: flask-gunicorn at 2 users" in report_text


def test_a_harness_killed_outright_takes_its_servers_and_locust_with_it(tmp_path: Path) -> None:
    """SIGKILL leaves no chance to clean up: the children must die with their parent by themselves."""
    scenario, results = _scenario(tmp_path, "orphans", "[4]", measure=5)
    before = {p.pid for p in _bench_processes()}
    runner = _start_runner([str(scenario), "--results-dir", str(results)], capture=False)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any("locustfile.py" in " ".join(c.cmdline()) for c in psutil.Process(runner.pid).children()):
                break
            time.sleep(0.1)
        else:
            pytest.fail("Locust never started")
        assert [p for p in _bench_processes() if p.pid not in before]
        runner.kill()
        runner.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and [p for p in _bench_processes() if p.pid not in before]:
            time.sleep(0.2)
        left = [p for p in _bench_processes() if p.pid not in before]
        assert not left, f"left behind after SIGKILL: {[p.info['cmdline'] for p in left]}"
    finally:
        _end(runner)


def test_the_timeline_shows_the_short_request_queued_on_sync_and_not_on_async(tmp_path: Path) -> None:
    """From measured timestamps: behind one sync worker the short request starts only after both pages are done;
    on one event loop it comes back before either page."""
    scenario, results = _scenario(tmp_path, "timeline", "[1]")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "runner.timeline", str(scenario), "--rounds", "2", "--results-dir", str(results)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = results.iterdir()
    data = json.loads((run_dir / "timeline.json").read_text())
    assert (run_dir / "charts" / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    kinds = {server["kind"]: server for server in data["servers"].values()}
    for burst in kinds["sync"]["rounds"]:
        probes = {p["label"]: p for p in burst}
        short = probes["short"]
        for page in (probes["page 1"], probes["page 2"]):
            page_end = page["server_start"] + page["handler_ms"] / 1000
            assert short["server_start"] >= page_end - 0.001, "the sync worker began the short request early"
            assert short["received"] > page["received"]
    for burst in kinds["async"]["rounds"]:
        probes = {p["label"]: p for p in burst}
        assert probes["short"]["received"] < min(probes["page 1"]["received"], probes["page 2"]["received"])


def test_a_sweep_with_repeats_measures_each_step_again_in_a_folder_of_its_own(tmp_path: Path) -> None:
    """Two repeats at one user level: four fresh servers and Locust runs in the order repeat, then server; each
    repeat keeps its own record and folder, and the summary and report fold them into one row with a spread."""
    scenario, results = _scenario(tmp_path, "repeats", "[2]")
    # (Teardown is checked by the tests above; this machine may run other benchmarks meanwhile.)
    done = _run([str(scenario), "--results-dir", str(results), "--repeats", "2"], timeout=150)
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = run_dir_of(results)
    run = store.load_run(run_dir)
    assert run["config"]["load"]["repeats"] == 2
    assert [(s["server"], s["users"], s["repeat"], s["status"]) for s in run["steps"]] == [
        ("flask-gunicorn", 2, 1, "ok"),
        ("fastapi-uvicorn", 2, 1, "ok"),
        ("flask-gunicorn", 2, 2, "ok"),
        ("fastapi-uvicorn", 2, 2, "ok"),
    ]
    folders = [s["files"] for s in run["steps"]]
    assert folders == [
        f"raw/{name}/u0002{suffix}" for suffix in ("", "-r2") for name in ("flask-gunicorn", "fastapi-uvicorn")
    ]
    for folder in folders:
        assert (run_dir / folder / "requests.csv").is_file(), folder
    rows = list(csv.DictReader((run_dir / "summary.csv").read_text().splitlines()))
    assert [(r["server"], r["users"], r["repeats"]) for r in rows] == [
        ("flask-gunicorn", "2", "2"),
        ("fastapi-uvicorn", "2", "2"),
    ]
    for row in rows:
        assert float(row["rps_min"]) <= float(row["rps"]) <= float(row["rps_max"])
        assert row["spread_pct"] != ""
    report_text = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "### Spread over repeats" in report_text
    assert "| flask-gunicorn | 2 | 2 |" in report_text and "| fastapi-uvicorn | 2 | 2 |" in report_text
