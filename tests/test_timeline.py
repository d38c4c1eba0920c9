"""The timeline: three requests sent together, what is kept of them, and the file written when it runs alone.

No benchmark server is started: the requests go to a small HTTP stub in this process that answers as the apps do
(a ``Server-Timing`` header), and ``serve`` is replaced by one that hands out the stub's port.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from runner import store, timeline
from runner.config import RunConfig, ServerConfig, load_config
from runner.processes import CpuPlan
from runner.view import shown_round
from tests.runs import PNG_SIGNATURE, complete_run, timeline_data, view_of

PAGE_S = 0.03


class StubHandler(BaseHTTPRequestHandler):
    """A page takes PAGE_S, a short request no time; both say when their handler began, as the apps do."""

    def do_GET(self) -> None:
        started = time.time()
        if self.path == "/page":
            time.sleep(PAGE_S)
        took_ms = (time.time() - started) * 1000
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Server-Timing", f'db;dur=1.5, app;dur=0.5, handler;dur={took_ms:.3f}, start;desc="{started}"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test's output is for the test."""


@pytest.fixture
def stub_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_send_together_sends_the_probes_in_order_and_reads_their_server_timing(stub_port: int) -> None:
    probes = timeline.send_together(stub_port)
    assert [(p.label, p.path) for p in probes] == [(label, path) for label, path, _ in timeline.PROBES]
    for probe in probes:
        assert probe.status == 200
        assert probe.db_ms == 1.5 and probe.app_ms == 0.5
        assert probe.sent <= probe.server_start <= probe.received
        assert probe.total_ms >= probe.handler_ms >= 0
    assert all(p.handler_ms >= PAGE_S * 1000 for p in probes if p.path == "/page")


def test_the_probes_are_two_pages_then_a_short_request_a_few_ms_apart() -> None:
    assert [path for _, path, _ in timeline.PROBES] == ["/page", "/page", "/short"]
    delays = [delay for _, _, delay in timeline.PROBES]
    assert delays == sorted(delays) and delays[-1] < 0.01


def test_each_configuration_is_measured_as_one_worker() -> None:
    spec = ServerConfig.from_dict({"name": "flask-gunicorn", "server": "gunicorn", "workers": 3})
    single = timeline.single(spec)
    assert (single.name, single.workers, single.server) == ("flask-gunicorn-1", 1, "gunicorn")


def fake_serve(port: int, started: list[ServerConfig]) -> Callable[..., Any]:
    @contextlib.contextmanager
    def serve(spec: ServerConfig, config: RunConfig, log: Path, cpus: frozenset[int]) -> Iterator[SimpleNamespace]:
        started.append(spec)
        yield SimpleNamespace(port=port, client_port=port)

    return serve


def test_measure_keeps_every_round_of_one_sync_worker_and_one_event_loop(
    stub_port: int, write_scenario: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[ServerConfig] = []
    monkeypatch.setattr(timeline, "serve", fake_serve(stub_port, started))
    config = load_config(str(write_scenario()))
    data = timeline.measure(config, CpuPlan(frozenset(), frozenset(), "not pinned"), tmp_path / "raw", rounds=2)
    assert [(s.name, s.workers, s.kind) for s in started] == [("flask-gunicorn-1", 1, "sync"),
                                                              ("fastapi-uvicorn-1", 1, "async")]  # fmt: skip
    assert "burst" not in data  # the three requests are the timeline's probes; "burst" is the crowd over time
    assert [p["label"] for p in data["probes"]] == ["page 1", "page 2", "short"]
    assert [p["delay_ms"] for p in data["probes"]] == [d * 1000 for _, _, d in timeline.PROBES]
    assert set(data["servers"]) == {"flask-gunicorn-1", "fastapi-uvicorn-1"}
    for server in data["servers"].values():
        assert server["workers"] == 1 and len(server["rounds"]) == 2
        assert shown_round(server["rounds"]) in server["rounds"]  # what is saved is what the readers pick from
    assert data["workload"]["listing_ms"] == config.workload.listing_ms


def test_the_round_shown_is_the_one_whose_short_request_took_the_median_time() -> None:
    data = timeline_data(rounds=3)
    for server in data["servers"].values():
        rounds = list(reversed(server["rounds"]))  # the pick does not depend on the order measured
        assert shown_round(rounds) is server["rounds"][1]


def test_a_timeline_saved_before_the_rename_still_reads() -> None:
    data = timeline_data()
    data["burst"] = data.pop("probes")  # runs saved before the rename
    run = complete_run()
    run["timeline"] = data
    saved = view_of(run).timeline
    assert saved is not None
    assert all(shown_round(s["rounds"]) for s in saved["servers"].values())


def test_run_alone_it_writes_a_versioned_timeline_json_and_its_chart(
    write_scenario: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[Path, int]] = []

    def measure(config: RunConfig, cpus: CpuPlan, folder: Path, rounds: int = 3) -> dict[str, Any]:
        asked.append((folder, rounds))
        return timeline_data(rounds)

    monkeypatch.setattr(timeline, "measure", measure)
    monkeypatch.setenv("BENCH_PIN_CPUS", "false")
    results = tmp_path / "results"
    argv = [str(write_scenario(name="alone")), "--rounds", "2", "--results-dir", str(results)]
    assert timeline.main(argv) == 0
    (run_dir,) = results.iterdir()
    assert run_dir.name.endswith("-alone-timeline")
    assert asked == [(run_dir / "raw" / "timeline", 2)]
    data = store.load_document(run_dir / store.TIMELINE_FILE, store.TIMELINE_FORMAT, store.EXPERIMENT_VERSION)
    assert data["servers"] == timeline_data(2)["servers"]
    assert (run_dir / "charts" / "timeline.png").read_bytes().startswith(PNG_SIGNATURE)


def test_run_alone_it_refuses_zero_rounds_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        timeline.main(["default", "--rounds", "0", "--results-dir", str(tmp_path / "results")])
    assert caught.value.code == 2
    assert "--rounds" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()
