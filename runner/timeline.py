"""``python -m runner.timeline``: a few requests arriving together, on one sync worker and on one event loop.

The argument for async in one picture, drawn from measurements: two page requests and one short request are
sent within a few milliseconds. A single sync worker takes them one after another, so the short one waits for
both pages and is the slowest to come back; a single event loop overlaps their waits, so the short one comes
back first. Each request's send and receive times are the client's; when the handler started and how long it
ran come from the ``Server-Timing`` header. Client and server share one machine and one clock.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from runner import files, store
from runner.config import RunConfig, ScenarioError, ServerConfig, load_config
from runner.processes import CpuPlan, plan_cpus
from runner.servers import HOST, ServerError, serve
from simdb.workload import parse_server_timing

# What is sent, in order, and how long after the first each one leaves.
BURST: tuple[tuple[str, str, float], ...] = (
    ("page 1", "/page", 0.000),
    ("page 2", "/page", 0.002),
    ("short", "/short", 0.004),
)


@dataclass(frozen=True)
class Probe:
    """One request of a burst; times are epoch seconds, durations milliseconds."""

    label: str
    path: str
    status: int
    sent: float
    received: float
    server_start: float
    handler_ms: float
    db_ms: float
    app_ms: float

    @property
    def total_ms(self) -> float:
        return (self.received - self.sent) * 1000


def _send(port: int, label: str, path: str, delay: float, barrier: threading.Barrier, out: dict[str, Probe]) -> None:
    barrier.wait()
    time.sleep(delay)
    sent = time.time()
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        received = time.time()
        timing = parse_server_timing(response.getheader("Server-Timing") or "")
    finally:
        connection.close()
    out[label] = Probe(
        label=label,
        path=path,
        status=response.status,
        sent=sent,
        received=received,
        server_start=timing.get("start", float("nan")),
        handler_ms=timing.get("handler", float("nan")),
        db_ms=timing.get("db", float("nan")),
        app_ms=timing.get("app", float("nan")),
    )


def burst(port: int) -> list[Probe]:
    """Send the burst once, each request on its own connection and thread, and wait for every answer."""
    barrier = threading.Barrier(len(BURST))
    out: dict[str, Probe] = {}
    threads = [
        threading.Thread(target=_send, args=(port, label, path, delay, barrier, out), daemon=True)
        for label, path, delay in BURST
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    missing = [label for label, _, _ in BURST if label not in out]
    if missing:
        raise ServerError(f"no answer to {', '.join(missing)} within 90 s")
    return [out[label] for label, _, _ in BURST]


def single(spec: ServerConfig) -> ServerConfig:
    """The experiment's point is one worker or one event loop: queueing inside it, not across several."""
    return replace(spec, name=f"{spec.name}-1", workers=1)


def measure(config: RunConfig, cpus: CpuPlan, folder: Path, rounds: int = 3) -> dict[str, Any]:
    """Run the bursts against one sync and one async configuration of the scenario; return what was seen."""
    # The picture is of the two classic models: a plain sync worker and an event loop awaiting its waits. A
    # scenario without one of them (gthread only, say, or only a blocking FastAPI) gets the default of that kind.
    sync = next(
        (s for s in config.servers if s.server == "gunicorn" and s.mode == "sync"),
        ServerConfig.from_dict({"name": "flask-gunicorn", "server": "gunicorn"}),
    )
    asyn = next(
        (s for s in config.servers if s.server == "uvicorn" and s.mode == "async"),
        ServerConfig.from_dict({"name": "fastapi-uvicorn", "server": "uvicorn"}),
    )
    folder.mkdir(parents=True, exist_ok=True)
    servers: dict[str, Any] = {}
    for spec in (single(sync), single(asyn)):
        with serve(spec, config, folder / f"{spec.name}.log", cpus.server) as server:
            for _ in range(3):  # warm the process: first requests pay for imports and caches
                burst(server.port)
            seen = []
            for _ in range(rounds):
                seen.append([asdict(p) for p in burst(server.port)])
                time.sleep(0.3)
        servers[spec.name] = {"kind": spec.kind, "workers": 1, "rounds": seen}
    return {
        "burst": [{"label": label, "path": path, "delay_ms": delay * 1000} for label, path, delay in BURST],
        "servers": servers,
        "workload": asdict(config.workload),
    }


def shown_round(rounds: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The round drawn: the one whose short request took the median time, so neither extreme is shown."""
    ordered = sorted(rounds, key=lambda r: next(p for p in r if p["label"] == "short")["received"]
                     - next(p for p in r if p["label"] == "short")["sent"])  # fmt: skip
    return ordered[len(ordered) // 2]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.timeline", description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="default", help="whose workload to use (default: default)")
    parser.add_argument("--rounds", type=int, default=3, help="bursts to measure after the warm-up (default 3)")
    parser.add_argument("--results-dir", help="where the timeline's folder is created")
    args = parser.parse_args(argv)
    try:
        if args.rounds < 1:
            raise ScenarioError(f"--rounds must be at least 1, got {args.rounds}")
        config = load_config(args.scenario, os.environ, {"--results-dir": args.results_dir})
    except ScenarioError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    import plots  # noqa: PLC0415 (matplotlib only once the input is known to be good)

    cpus = plan_cpus(config.run.pin_cpus, config.run.server_cores)
    if cpus.client:
        os.sched_setaffinity(0, cpus.client)
    run_dir = store.new_run_dir(config.results_root, f"{config.name}-timeline")
    try:
        data = measure(config, cpus, run_dir / "raw", args.rounds)
    except ServerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: the servers were stopped", file=sys.stderr)
        return 130
    files.write_json(run_dir / "timeline.json", data)
    (run_dir / "charts").mkdir(exist_ok=True)
    plots.timeline_chart(data, run_dir / "charts" / "timeline.png")
    print(f"results: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
