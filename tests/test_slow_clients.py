"""The slow-client experiment: its phases cut at the slow clients' own epochs, its figures and verdicts, the scenario
section, the saved file and chart, the report's sentences; the trickler against a socket of the test's own; and, on
a small scale, real servers: one gunicorn sync worker stopped by two slow clients, one uvicorn event loop not, and
(where nginx is installed) the same sync worker behind nginx not stopped.
"""

from __future__ import annotations

import math
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from runner import charts, report_experiments, slow_clients, store
from runner.burst import Row
from runner.config import (
    RunConfig,
    ScenarioError,
    SlowClientsConfig,
    config_from_dict,
    load_config,
)
from runner.loadgen import StepFiles, burst_command
from runner.processes import CpuPlan, plan_cpus
from runner.stats import OutputError
from runner.trickle import BODY_LENGTH, Trickler, request_bytes
from runner.view import RunView, SlowClientsRun, slow_client_runs
from tests.runs import PNG_SIGNATURE
from tests.scenarios import small_scenario
from tests.test_charts import assert_readable

T0 = 1_000_000.0
TIMEOUT_MS = 10_000.0

SMALL_SLOW = """
[slow_clients]
users = 5
counts = [0, 2]
style = "headers"
before_s = 3
hold_s = 4
after_s = 4
byte_interval_s = 0.5
drain_s = 5
"""


def row(sent_s: float, ms: float, ok: bool = True) -> Row:
    return (T0 + sent_s, ms, "page", ok)


def trickle(count: int, started: float, left: float, closed: list[tuple[float, str]] | None = None) -> dict[str, Any]:
    """What Trickler.result.to_dict() gives: epochs, and each connection's close and who closed it."""
    connections = [
        {"opened": T0 + started, "closed": T0 + at, "closed_by": by, "sent_bytes": 5, "answer": "", "error": ""}
        for at, by in (closed or [(left, "harness")] * count)
    ]
    return {
        "count": count, "style": "headers", "byte_interval_s": 1.0, "hold_s": left - started,
        "started": T0 + started, "all_open": T0 + started, "left": T0 + left, "connections": connections,
    }  # fmt: skip


def steady(start: float, end: float, ms: float, every: float = 0.1) -> list[Row]:
    count = round((end - start) / every)
    return [row(start + i * every, ms) for i in range(count)]


META = {"window_start": T0, "window_end": T0 + 12.0, "unfinished": [], "client_cpu_pct": 10.0}


# --- phases and figures ---------------------------------------------------------------------------------------------


def test_phases_are_cut_at_the_slow_clients_epochs_not_the_schedule() -> None:
    # The slow clients came at 3.5 s (not the 3 s scheduled) and were gone at 7.2 s; the load ended at 12 s.
    rows = [row(1.0, 50), row(3.4, 50), row(3.6, 4000), row(7.1, 50), row(7.3, 50), row(11.9, 50)]
    phases = slow_clients.phase_figures(rows, T0, (T0 + 3.5, T0 + 7.2, T0 + 12.0), 5, TIMEOUT_MS)
    assert [p["phase"] for p in phases] == ["before", "during", "after"]
    assert [b for p in phases for b in (p["start_s"], p["end_s"])] == pytest.approx([0.0, 3.5, 3.5, 7.2, 7.2, 12.0])
    assert [p["requests"] for p in phases] == [2, 2, 2]
    # Completions inside each phase: 3.6 + 4.0 s lands after 7.2 s, so it counts for after.
    assert phases[1]["rps"] == pytest.approx(1 / 3.7)
    assert phases[2]["rps"] == pytest.approx(3 / 4.8)


def test_before_starts_once_the_users_first_requests_have_settled() -> None:
    # Every user's first request at 0 s, then one a second: the start would inflate the throughput before.
    rows = [row(0.0, 10)] * 5 + [row(t + 0.5, 10) for t in range(12)]
    bounds = (T0 + 4.0, T0 + 8.0, T0 + 12.0)
    settled = slow_clients.phase_figures(rows, T0, bounds, 5, TIMEOUT_MS, settle_s=1.5)
    assert settled[0]["start_s"] == 1.5 and settled[0]["rps"] == pytest.approx(3 / 2.5)
    assert settled[1]["start_s"] == 4.0 and settled[1]["rps"] == 1.0
    unsettled = slow_clients.phase_figures(rows, T0, bounds, 5, TIMEOUT_MS)
    assert unsettled[0]["rps"] == pytest.approx(9 / 4)
    # Never more than half of the time before the slow clients.
    assert slow_clients.phase_figures(rows, T0, bounds, 5, TIMEOUT_MS, settle_s=30)[0]["start_s"] == 2.0


def test_a_failure_that_took_the_whole_timeout_is_a_timeout() -> None:
    rows = [row(4.0, TIMEOUT_MS, ok=False), row(4.5, 20, ok=False), row(5.0, 0.995 * TIMEOUT_MS, ok=False)]
    phases = slow_clients.phase_figures(rows, T0, (T0 + 3.0, T0 + 8.0, T0 + 12.0), 5, TIMEOUT_MS)
    assert phases[1]["failures"] == 3 and phases[1]["timeouts"] == 2


def test_phases_that_do_not_fit_the_load_are_refused() -> None:
    with pytest.raises(OutputError, match=r"after -1\.00 s"):
        slow_clients.phase_figures([], T0, (T0 + 3.0, T0 + 13.0, T0 + 12.0), 5, TIMEOUT_MS)


def test_summary_counts_what_the_server_closed_and_when_the_users_were_served_again() -> None:
    rows = steady(0, 3, 50) + steady(3, 7, 4000, every=1.0) + steady(7, 12, 50)
    data = trickle(2, 3.0, 7.0, closed=[(5.0, "server"), (7.0, "harness")])
    summary = slow_clients.summarise(rows, META, data, 5, TIMEOUT_MS)
    assert summary["count"] == 2
    assert summary["slow"]["server_closed"] == 1 and summary["slow"]["server_closed_s"] == [5.0]
    assert summary["slow"]["started_s"] == 3.0 and summary["slow"]["left_s"] == 7.0
    assert summary["recovered_after_s"] == 0.0  # the first second after 7 s is already back near 50 ms
    assert summary["failures"] == 0 and summary["timeouts"] == 0
    zero = slow_clients.summarise(rows, META, trickle(0, 3.0, 7.0), 5, TIMEOUT_MS)
    assert zero["recovered_after_s"] is None and zero["slow"]["opened"] == 0  # nothing to recover from


def test_slow_clients_that_never_started_are_an_error() -> None:
    data = trickle(2, 3.0, 7.0)
    data["started"] = None
    with pytest.raises(OutputError, match="never started"):
        slow_clients.summarise([], META, data, 5, TIMEOUT_MS)


# --- the verdicts -----------------------------------------------------------------------------------------------------


def verdict_of(before_rps: float, during_rps: float, before_p50: float, during_p50: float) -> str:
    phases = {
        "before": {"phase": "before", "rps": before_rps, "p50_ms": before_p50},
        "during": {"phase": "during", "rps": during_rps, "p50_ms": during_p50},
        "after": {"phase": "after", "rps": before_rps, "p50_ms": before_p50},
    }
    return SlowClientsRun("s", "sync", 2, phases).verdict


@pytest.mark.parametrize(
    ("during_rps", "during_p50", "verdict"),
    [
        (0.9, 40.0, "stopped"),  # below 10% of before, whatever the median says
        (1.0, 5000.0, "slowed"),  # 10% exactly is not below it
        (9.0, 60.0, "unaffected"),  # 90% and 1.5x: both bounds included
        (8.9, 40.0, "slowed"),
        (10.0, 61.0, "slowed"),
        (10.0, math.nan, "slowed"),  # no median during: cannot be called unaffected
    ],
)
def test_the_verdict_rules_and_their_bounds(during_rps: float, during_p50: float, verdict: str) -> None:
    assert verdict_of(10.0, during_rps, 40.0, during_p50) == verdict


def test_without_a_throughput_before_nothing_is_judged() -> None:
    assert verdict_of(0.0, 0.0, math.nan, math.nan) == "unknown"
    assert SlowClientsRun.from_saved("s", "sync", {"count": 2, "error": "Locust died"}).verdict == "failed"


def timed_run(before: tuple[float, float], during: tuple[float, float]) -> SlowClientsRun:
    """A run whose phases last ``(seconds, requests/s)``: before from 0 s, during right after it."""
    (before_s, before_rps), (during_s, during_rps) = before, during
    phases = {
        "before": {"phase": "before", "rps": before_rps, "p50_ms": 100.0, "start_s": 0.0, "end_s": before_s},
        "during": {
            "phase": "during",
            "rps": during_rps,
            "p50_ms": 100.0,
            "start_s": before_s,
            "end_s": before_s + during_s,
        },
    }
    return SlowClientsRun("s", "async", 4, phases)


def test_a_slowed_verdict_says_when_chance_alone_could_make_the_drop() -> None:
    noisy = timed_run((5.0, 10.8), (15.0, 9.4))  # 54 completions before, 141 during: 87%
    assert noisy.verdict == "slowed" and noisy.completions("before") == (54, 5.0)
    assert noisy.drop_within_chance is True
    assert "a drop chance alone could make (54 completions before, 141 during)" in report_experiments._as_measured(
        noisy
    )
    real = timed_run((5.0, 100.0), (15.0, 50.0))  # 500 before, 750 during: half the rate on hundreds
    assert real.verdict == "slowed" and real.drop_within_chance is False
    assert "chance" not in report_experiments._as_measured(real)


def test_without_phase_times_chance_is_not_judged() -> None:
    phases = {"before": {"rps": 10.0, "p50_ms": 1.0}, "during": {"rps": 5.0, "p50_ms": 1.0}}
    assert SlowClientsRun("s", "sync", 2, phases).drop_within_chance is None


# --- the scenario section ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ("counts = [2, 4]", "'slow_clients.counts' must start with 0"),
        ("counts = [0, 4, 4]", "'slow_clients.counts' must rise"),
        ("counts = [0, -1]", "'slow_clients.counts' must be >= 0"),
        ("counts = [0, 1.5]", "'slow_clients.counts' must be a whole number"),
        ('counts = "0,2"', "'slow_clients.counts' must be a list"),
        ("counts = [0, 5000]", "'slow_clients.counts' is at most"),
        ("counts = [0]\nusers = 0", "'slow_clients.users' must be > 0"),
        ('counts = [0]\nstyle = "bytes"', "'slow_clients.style' is 'bytes'"),
        ("counts = [0]\nbefore_s = 0", "'slow_clients.before_s' must be > 0"),
        ("counts = [0]\nbyte_interval_s = -1", "'slow_clients.byte_interval_s' must be > 0"),
        ("counts = [0]\ndrain_s = -1", "'slow_clients.drain_s' must be >= 0"),
        ("count = [0]", "unknown key 'slow_clients.count'"),
    ],
)
def test_bad_slow_client_tables_are_refused_with_their_key(tmp_path: Path, table: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(small_scenario(burst=f"[slow_clients]\n{table}\n"), encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_config(str(path))
    assert needle in str(caught.value) and str(path) in str(caught.value)


def test_the_section_is_read_saved_and_rebuilt(write_scenario: Callable[..., Path]) -> None:
    config = load_config(str(write_scenario(burst=SMALL_SLOW)))
    assert config.slow_clients == SlowClientsConfig(5, (0, 2), "headers", 3.0, 4.0, 4.0, 0.5, 5.0)
    assert config.slow_clients.seconds == 11.0
    assert config_from_dict(config.to_dict()) == config
    saved = config.to_dict()
    del saved["slow_clients"]  # as in run.json files written before the experiment existed
    assert config_from_dict(saved).slow_clients == SlowClientsConfig()
    assert load_config(str(write_scenario())).slow_clients.counts == ()  # no section: not run


def test_an_explicit_stage_list_drives_the_shape() -> None:
    config = load_config("default")
    files = StepFiles.inside(Path("/tmp/x"))
    cmd = burst_command(config, "http://127.0.0.1:1", files, [(50, 11.0)], 5.0)
    assert cmd[cmd.index("--stages") + 1] == "50:11" and cmd[cmd.index("--stop-timeout") + 1] == "5"
    default = burst_command(config, "http://127.0.0.1:1", files)
    assert default[default.index("--stages") + 1] == "5:5,500:15,5:15"


# --- the servers' own limits ------------------------------------------------------------------------------------------


def test_the_servers_timeouts_are_read_from_the_gunicorn_configuration(tmp_path: Path) -> None:
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text('timeout = 12\nkeepalive = 7\nbind = "x"\nworkers = f()\n', encoding="utf-8")
    settings = slow_clients.gunicorn_settings(conf)
    assert settings["timeout"] == 12 and settings["keepalive"] == 7
    assert settings["limit_request_fields"] == 100  # gunicorn's own default, the file says nothing
    config = load_config("default")
    sync, asyn = config.servers
    sync_text = " ".join(slow_clients.server_limits(sync, settings))
    assert "`timeout` = 12 s" in sync_text and "no read timeout" in sync_text
    async_text = " ".join(slow_clients.server_limits(asyn, settings))
    assert "--timeout-keep-alive 5 s" in async_text and "no timeout on a request still arriving" in async_text
    assert "behind nginx" in " ".join(slow_clients.server_limits(replace(sync, proxy="nginx"), settings))
    gevent = replace(sync, worker_class="gevent", keep_alive_s=5)
    assert "bounded by `keepalive` = 5 s" in " ".join(slow_clients.server_limits(gevent, settings))
    unbounded = replace(gevent, keep_alive_s=0)
    assert "nothing bounds" in " ".join(slow_clients.server_limits(unbounded, settings))


# --- the trickler, against a socket of the test's own --------------------------------------------------------------


def test_the_headers_style_never_ends_its_headers() -> None:
    first, rest = request_bytes("headers", "127.0.0.1", 8000)
    assert first == b""
    sent = b"".join(next(rest) for _ in range(5000))
    assert sent.startswith(b"GET /short") and b"\r\n\r\n" not in sent
    first, rest = request_bytes("body", "127.0.0.1", 8000)
    assert first.endswith(f"Content-Length: {BODY_LENGTH}\r\n\r\n".encode())
    assert next(rest) == b"a"


def test_the_trickler_records_what_the_server_closed_and_closes_the_rest() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        for _ in range(2):
            accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept)
    thread.start()
    port = listener.getsockname()[1]
    trickler = Trickler("127.0.0.1", port, 2, "headers", 0.05, 1.5, ready=lambda: True, delay_s=0.1)
    try:
        with trickler:
            thread.join(timeout=5)
            time.sleep(0.4)
            # The server gives up on one of them: an answer, then end-of-file (a FIN, not a reset).
            accepted[0].sendall(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
            accepted[0].shutdown(socket.SHUT_WR)
            time.sleep(1.5)  # past the hold: leaving the block earlier would stop the slow clients early
        result = trickler.result
        assert trickler.error is None
        assert sorted(c.closed_by or "" for c in result.connections) == ["harness", "server"]
        closed_by_server = next(c for c in result.connections if c.closed_by == "server")
        assert closed_by_server.answer == "HTTP/1.1 408 Request Timeout"
        assert result.all_open is not None and result.left is not None
        assert result.left - result.all_open == pytest.approx(1.5, abs=0.3)  # the hold, then the harness closed
        received = b""
        while chunk := accepted[1].recv(65536):  # until end-of-file: the harness really closed it
            received += chunk
        assert received.startswith(b"GET /short") and b"\r\n\r\n" not in received
        assert len(received) >= 20  # a byte every 0.05 s for 1.5 s
    finally:
        for sock in accepted:
            sock.close()
        listener.close()


def test_a_trickler_stopped_early_closes_every_socket() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        trickler = Trickler("127.0.0.1", listener.getsockname()[1], 3, "body", 0.05, 60.0, ready=lambda: True,
                            delay_s=0.0)  # fmt: skip
        with trickler:
            time.sleep(0.3)
        result = trickler.result
        assert len(result.connections) == 3
        assert all(c.closed_by == "harness" for c in result.connections)
        assert result.started is not None and result.left is not None and result.left - result.started < 5
    finally:
        listener.close()


def test_a_trickler_whose_load_never_started_does_nothing() -> None:
    trickler = Trickler("127.0.0.1", 9, 2, "headers", 0.1, 1.0, ready=lambda: False, delay_s=0.0)
    with trickler:
        time.sleep(0.05)
    assert trickler.result.started is None and trickler.result.connections == []


# --- the experiment's file, chart and report ---------------------------------------------------------------------


def saved_data() -> dict[str, Any]:
    """What measure returns, built through summarise: a sync server stopped at K = 2 and an async one not."""
    stalled = steady(0, 3, 50) + steady(3, 7, 4000, every=1.0) + steady(7, 12, 50)
    calm = steady(0, 12, 50)
    servers: dict[str, Any] = {}
    for name, kind, rows in (("flask-gunicorn", "sync", stalled), ("fastapi-uvicorn", "async", calm)):
        runs = [
            slow_clients.summarise(calm, META, trickle(0, 3.0, 7.0), 5, TIMEOUT_MS),
            slow_clients.summarise(rows, META, trickle(2, 3.0, 7.0), 5, TIMEOUT_MS),
        ]
        servers[name] = {"kind": kind, "setup": f"{name} setup", "slots": 1 if kind == "sync" else None,
                         "limits": [f"{name} limit"], "runs": runs}  # fmt: skip
    return {"users": 5, "counts": [0, 2], "style": "headers", "style_text": "a byte at a time", "before_s": 3.0,
            "hold_s": 4.0, "after_s": 5.0, "byte_interval_s": 1.0, "drain_s": 5.0, "request_timeout_s": 10.0,
            "recovered_within": 2.0, "settle_s": 1.5, "measured": T0, "servers": servers}  # fmt: skip


def test_the_readings_and_the_report_say_which_server_was_stopped() -> None:
    data = saved_data()
    verdicts = {(r.server, r.count): r.verdict for r in slow_client_runs(data)}
    assert verdicts[("flask-gunicorn", 2)] == "stopped" and verdicts[("fastapi-uvicorn", 2)] == "unaffected"

    class View:
        slow_clients = data

    text = "\n".join(report_experiments.slow_clients_section(View()))  # type: ignore[arg-type]
    assert "**Stopped** (the normal users' throughput during the slow clients below 10% of before): " \
           "flask-gunicorn at K = 2." in text  # fmt: skip
    assert "at least 90% of before): fastapi-uvicorn at K = 2." in text
    assert "**flask-gunicorn** (flask-gunicorn setup; at most 1 request at once): first stopped at K = 2." in text
    assert "**fastapi-uvicorn** (fastapi-uvicorn setup; no per-request slot limit): not stopped" in text
    assert "- flask-gunicorn: flask-gunicorn limit" in text
    assert "| flask-gunicorn | 2 | 10.0 | 0.0 |" in text
    data["servers"]["flask-gunicorn"]["runs"][1] = {"count": 2, "error": "Locust died\nmore"}
    text = "\n".join(report_experiments.slow_clients_section(View()))  # type: ignore[arg-type]
    assert "failed: Locust died |" in text and "**Not measured**: flask-gunicorn at K = 2" in text
    assert "**Stopped** (the normal users' throughput during the slow clients below 10% of before): no server" in text
    assert slow_clients.problems(data) == ["slow clients on flask-gunicorn with K = 2 failed: Locust died\nmore"]


def test_the_chart_has_a_column_per_server_and_a_line_per_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    fig = charts.slow_clients_figure(saved_data())
    top = [ax for ax in fig.axes if ax.get_yscale() == "log"]
    assert [ax.get_title() for ax in top] == ["flask-gunicorn", "fastapi-uvicorn"]
    assert all(len(ax.get_lines()) == 3 for ax in fig.axes)
    assert_readable(fig, monkeypatch)
    assert not charts.has_slow_clients({"servers": {"a": {"runs": [{"count": 0, "error": "x"}]}}})


def test_a_run_without_the_experiment_has_no_section(tmp_path: Path) -> None:
    view = RunView.from_doc({"config": load_config("default").to_dict(), "steps": []}, tmp_path)
    assert view.slow_clients is None and report_experiments.slow_clients_section(view) == []


def test_run_alone_it_writes_a_versioned_file_and_its_chart(
    write_scenario: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[Path] = []

    def measure(config: RunConfig, cpus: CpuPlan, folder: Path) -> dict[str, Any]:
        asked.append(folder)
        return saved_data()

    monkeypatch.setattr(slow_clients, "EXPERIMENT", replace(slow_clients.EXPERIMENT, measure=measure))
    monkeypatch.setenv("BENCH_PIN_CPUS", "false")
    results = tmp_path / "results"
    assert slow_clients.main([str(write_scenario(name="alone", burst=SMALL_SLOW)), "--results-dir", str(results)]) == 0
    (run_dir,) = results.iterdir()
    assert run_dir.name.endswith("-alone-slow-clients")
    assert asked == [run_dir / "raw" / "slow-clients"]
    data = store.load_document(run_dir / store.SLOW_CLIENTS_FILE, store.SLOW_CLIENTS_FORMAT, store.EXPERIMENT_VERSION)
    assert set(data["servers"]) == {"flask-gunicorn", "fastapi-uvicorn"}
    assert (run_dir / "charts" / "slow_clients.png").read_bytes().startswith(PNG_SIGNATURE)


def test_run_alone_without_counts_it_exits_2_and_starts_nothing(
    write_scenario: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    path = write_scenario()
    assert slow_clients.main([str(path), "--results-dir", str(results)]) == 2
    assert f"{path} has no [slow_clients] counts" in capsys.readouterr().err
    assert not results.exists()


def test_the_plan_says_what_is_measured(write_scenario: Callable[..., Path]) -> None:
    config = load_config(str(write_scenario(burst=SMALL_SLOW)))
    assert slow_clients.describe(config) == (
        "slow clients: 5 users for 11 s, with K = 0, 2 slow connections (headers, a byte every 0.5 s) for 4 s after "
        "3 s, on flask-gunicorn, fastapi-uvicorn"
    )


# --- real servers, on a small scale ----------------------------------------------------------------------------------


def _one_run(tmp_path: Path, server: str, count: int, **values: object) -> SlowClientsRun:
    """One server of a small scenario (one gunicorn sync worker, one uvicorn event loop) at one K, measured."""
    path = tmp_path / "slow.toml"
    path.write_text(
        small_scenario(sync_workers=1, think_min=0.3, think_max=0.6, burst=SMALL_SLOW, **values), encoding="utf-8"
    )
    config = load_config(str(path))
    spec = next(s for s in config.servers if s.name == server)
    cpus = plan_cpus(config.run.pin_cpus, config.run.server_cores)
    folder = tmp_path / "run" / "raw" / "slow-clients" / spec.name / f"k{count}"
    result = slow_clients.measure_run(config, spec, count, folder, cpus)
    return SlowClientsRun.from_saved(spec.name, spec.kind, result)


@pytest.mark.integration
def test_two_slow_clients_stop_one_sync_worker(tmp_path: Path) -> None:
    run = _one_run(tmp_path, "flask-gunicorn", 2)
    before, after = run.figure("before", "rps"), run.figure("after", "rps")
    assert before is not None and before > 3, run.phases  # the worker served the users before ...
    assert run.verdict == "stopped", run.phases  # ... not while two slow clients held it ...
    assert after is not None and after > 3, run.phases  # ... and again once they left


@pytest.mark.integration
def test_two_slow_clients_do_not_stop_an_event_loop(tmp_path: Path) -> None:
    run = _one_run(tmp_path, "fastapi-uvicorn", 2)
    assert run.verdict in ("unaffected", "slowed"), run.phases
    assert run.rps_ratio is not None and run.rps_ratio > 0.7, run.phases


def _nginx() -> bool:
    return shutil.which("nginx") is not None or Path("/usr/sbin/nginx").is_file()


@pytest.mark.integration
@pytest.mark.skipif(not _nginx(), reason="nginx is not installed")
def test_behind_nginx_two_slow_clients_do_not_stop_the_sync_worker(tmp_path: Path) -> None:
    run = _one_run(tmp_path, "flask-gunicorn", 2, sync_server='proxy = "nginx"')
    assert run.verdict in ("unaffected", "slowed"), run.phases
    assert run.rps_ratio is not None and run.rps_ratio > 0.7, run.phases
