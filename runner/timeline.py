"""``python -m runner.timeline``: a few requests arriving together, on one sync worker and on one event loop.

The argument for async in one picture, drawn from measurements: two page requests and one short request are
sent within a few milliseconds. A single sync worker takes them one after another, so the short one waits for
both pages and is the slowest to come back; a single event loop overlaps their waits, so the short one comes
back first. Each request's send and receive times are the client's; when the handler started and how long it
ran come from the ``Server-Timing`` header. Client and server share one machine and one clock.

A full run measures it after the sweep, into ``run.json``; run alone (``make timeline``) it writes
``timeline.json`` and its chart into a folder of its own (see runner.experiment). It is three requests, once;
the crowd of users arriving and leaving over time is the other experiment, runner.burst.
"""

from __future__ import annotations

import http.client
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from runner import experiment, render
from runner.config import RunConfig, ServerConfig
from runner.processes import CpuPlan
from runner.servers import HOST, ServerError, serve
from simdb.workload import parse_server_timing

# What is sent together, in order, and how long after the first each one leaves. (Older runs saved this list
# under the key "burst"; nothing reads it back, the rounds carry each request's label and path.)
PROBES: tuple[tuple[str, str, float], ...] = (
    ("page 1", "/page", 0.000),
    ("page 2", "/page", 0.002),
    ("short", "/short", 0.004),
)


@dataclass(frozen=True)
class Probe:
    """One of the requests sent together; times are epoch seconds, durations milliseconds."""

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
        # The wait, whatever it waited on: the database's queries, or the calls to the upstream service.
        db_ms=timing.get("db", timing.get("upstream", float("nan"))),
        app_ms=timing.get("app", float("nan")),
    )


def send_together(port: int) -> list[Probe]:
    """Send the PROBES once, each request on its own connection and thread, and wait for every answer."""
    barrier = threading.Barrier(len(PROBES))
    out: dict[str, Probe] = {}
    threads = [
        threading.Thread(target=_send, args=(port, label, path, delay, barrier, out), daemon=True)
        for label, path, delay in PROBES
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    missing = [label for label, _, _ in PROBES if label not in out]
    if missing:
        raise ServerError(f"no answer to {', '.join(missing)} within 90 s")
    return [out[label] for label, _, _ in PROBES]


def single(spec: ServerConfig) -> ServerConfig:
    """The experiment's point is one worker or one event loop: queueing inside it, not across several."""
    return replace(spec, name=f"{spec.name}-1", workers=1)


def measure(config: RunConfig, cpus: CpuPlan, folder: Path, rounds: int = 3) -> dict[str, Any]:
    """Send the probes, round after round, to one sync and one async configuration of the scenario; return what
    was seen."""
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
                send_together(server.client_port)
            seen = []
            for _ in range(rounds):
                seen.append([asdict(p) for p in send_together(server.client_port)])
                time.sleep(0.3)
        servers[spec.name] = {"kind": spec.kind, "workers": 1, "rounds": seen}
    return {
        "probes": [{"label": label, "path": path, "delay_ms": delay * 1000} for label, path, delay in PROBES],
        "servers": servers,
        "workload": asdict(config.workload),
    }


def describe(config: RunConfig) -> str:
    """What is about to be measured, in one line."""
    return "timeline: two pages and a short request together, on one sync worker and one event loop"


# The experiment, as the full run (runner.cli) and ``python -m runner.timeline`` both run it.
EXPERIMENT = experiment.Experiment("timeline", render.TIMELINE, "raw/timeline", measure, describe, "the servers")


def main(argv: Sequence[str] | None = None) -> int:
    parser = experiment.parser("python -m runner.timeline", __doc__ or "", "whose workload to use")
    parser.add_argument(
        "--rounds", type=experiment.at_least_one, default=3, help="rounds to measure after the warm-up (default 3)"
    )
    args = parser.parse_args(argv)
    rounds = replace(EXPERIMENT, measure=partial(measure, rounds=args.rounds))
    return experiment.run(rounds, args.scenario, args.results_dir)


if __name__ == "__main__":
    sys.exit(main())
