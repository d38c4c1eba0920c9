"""One typed, read-only view of a saved run: what the summary, the report, the charts and the comparison read.

A run is saved as ``run.json`` (see :mod:`runner.store`), a plain document. Every reader used to pull it apart
again: the configuration by dictionary keys, the steps recombined over repeats, the model rebuilt. This module does
that once. :meth:`RunView.load` reads the file through the store's loader (which refuses unknown format versions)
and the configuration through the runner's own :func:`runner.config.config_from_dict`, so the reading side sees
the same frozen objects the measuring side ran with; steps are combined over repeats once
(:func:`runner.repeats.combine`), and the queueing model's expectations are computed once
(:mod:`runner.expected`), lazily, on first use.

The step records themselves stay the saved dictionaries: they are the measurement, and the view never changes
them. What several readers need to say about a run (how a configuration is named, which round of the timeline is
drawn, which steps are missing) lives here too, so there is one wording of each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from runner import expected, model, open_view, repeats, stats, store
from runner.config import RunConfig, ServerConfig, config_from_dict
from runner.numbers import is_finite
from runner.store import is_ok

Record = dict[str, Any]
StepKey = tuple[str, int]


def slots_text(spec: ServerConfig, short: bool = False) -> str:
    """How many requests a configuration can work on at once: the number every comparison must state."""
    head = f"{spec.server}, {spec.describe()}"
    if short:
        return head
    if spec.slots is None:
        return f"{head}: no per-request slot limit"
    return f"{head}: at most {spec.slots} request{'s' if spec.slots != 1 else ''} at once"


def kind_text(kind: str) -> str:
    """What one process of a kind is, in the timeline's words."""
    return "one sync worker" if kind == "sync" else "one event loop"


def shown_round(rounds: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The timeline round drawn and read: the one whose short request took the median time, so neither extreme
    is shown."""

    def short_took(probes: list[dict[str, Any]]) -> float:
        short = next(p for p in probes if p["label"] == "short")
        return float(short["received"] - short["sent"])

    ordered = sorted(rounds, key=short_took)
    return ordered[len(ordered) // 2]


@dataclass(frozen=True)
class RunView:
    """A saved run, typed: its configuration as objects, its steps combined over repeats, and the model beside
    them. Read-only: nothing here writes the run."""

    path: Path  # the run folder
    doc: Mapping[str, Any]  # run.json as saved, for what is shown verbatim (the HTML report's details)
    config: RunConfig
    _servers: dict[str, ServerConfig] = field(repr=False)

    @classmethod
    def load(cls, run_dir: Path) -> RunView:
        """Read ``run_dir/run.json``; a file that is not a run of a known format, or whose configuration does not
        rebuild, raises :class:`runner.store.ResultsError` naming it."""
        run_dir = Path(run_dir)
        return cls.from_doc(store.load_run(run_dir), run_dir if run_dir.is_dir() else run_dir.parent)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any], path: Path) -> RunView:
        """A view of a run document already in memory (the sweep's, between steps)."""
        try:
            config = config_from_dict(doc["config"])
        except (KeyError, TypeError, ValueError) as error:
            raise store.ResultsError(
                f"{path / store.RUN_FILE}: its 'config' section does not describe a run this tool can read ({error})"
            ) from None
        return cls(Path(path), doc, config, {s.name: s for s in config.servers})

    # --- what was run ------------------------------------------------------------------------------------------

    @property
    def file(self) -> Path:
        return self.path / store.RUN_FILE

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.doc.get("metadata") or {}

    @property
    def saved_config(self) -> Mapping[str, Any]:
        """The configuration exactly as recorded (compare checks settings by their recorded names)."""
        config: Mapping[str, Any] = self.doc["config"]
        return config

    @property
    def status(self) -> str:
        return str(self.doc.get("status"))

    @property
    def servers(self) -> tuple[ServerConfig, ...]:
        return self.config.servers

    @property
    def users(self) -> tuple[int, ...]:
        return self.config.load.users

    def server(self, name: str) -> ServerConfig | None:
        return self._servers.get(name)

    @cached_property
    def pair(self) -> tuple[ServerConfig | None, ServerConfig | None]:
        """The first sync and the first async configuration: the two the reading compares."""
        sync = next((s for s in self.servers if s.kind == "sync"), None)
        asyn = next((s for s in self.servers if s.kind == "async"), None)
        return sync, asyn

    @cached_property
    def proxy_twins(self) -> list[tuple[ServerConfig, ServerConfig]]:
        """Each configuration behind a proxy with its twin, the first configuration the same in every setting but
        its name and the proxy's, served directly: what the proxy costs is read from these pairs only."""
        direct = [s for s in self.servers if s.proxy is None]
        pairs = []
        for spec in self.servers:
            if spec.proxy is None:
                continue
            twin = next((d for d in direct if replace(spec, name=d.name, proxy=None, proxy_workers=None) == d), None)
            if twin is not None:
                pairs.append((spec, twin))
        return pairs

    @property
    def planned_repeats(self) -> int:
        return self.config.load.repeats

    @cached_property
    def server_cores(self) -> int:
        return expected.server_cores(self.config, self.metadata)

    @property
    def timeline(self) -> Mapping[str, Any] | None:
        """The three-request timeline's data, when the run measured one."""
        data = self.doc.get("timeline")
        return data if isinstance(data, Mapping) else None

    @property
    def burst(self) -> Mapping[str, Any] | None:
        """The burst over time's data, when the run measured one."""
        data = self.doc.get("burst")
        return data if isinstance(data, Mapping) else None

    @property
    def slow_clients(self) -> Mapping[str, Any] | None:
        """The slow-client experiment's data, when the run measured it (read with :func:`slow_client_runs`)."""
        data = self.doc.get("slow-clients")
        return data if isinstance(data, Mapping) else None

    @property
    def open(self) -> Mapping[str, Any] | None:
        """The open arrivals' data (runner/open_loop.py), when the run measured them."""
        data = self.doc.get("open")
        return data if isinstance(data, Mapping) else None

    @property
    def capacity(self) -> Mapping[str, Any] | None:
        """The capacity search's data (runner/capacity.py), when the run measured it."""
        data = self.doc.get("capacity")
        return data if isinstance(data, Mapping) else None

    def headline_setup(self) -> str:
        """One line under every chart: what the scenario asks of each request, and on what machine."""
        config, meta = self.config, self.metadata
        load, work = config.load, config.workload
        return (
            f"{config.name}: page = {work.page_wait_ms:g} ms of database waits + {work.app_work_ms:g} ms of Python "
            f"work, short = {work.short_query_ms:g} ms query; think time "
            f"{load.think_time_s[0]:g}-{load.think_time_s[1]:g} s; {meta.get('cpu_count')} cores "
            f"({meta.get('cpu_model', '?')}); {str(meta.get('date', ''))[:10]}"
        )

    # --- the steps ---------------------------------------------------------------------------------------------

    @property
    def records(self) -> list[Record]:
        """Every step record, each repeat its own, in the order they were measured."""
        steps: list[Record] = self.doc["steps"]
        return steps

    @cached_property
    def groups(self) -> dict[StepKey, repeats.Group]:
        """Each (server, users) step's records and the one that stands for them (see :mod:`runner.repeats`)."""
        return repeats.combine(self.doc)

    @cached_property
    def by_level(self) -> dict[StepKey, Record]:
        """One record per (server, users), what every table and chart shows: with repeats the combined record
        (the medians as its headline figures), without them the step's own record."""
        return {key: group.record for key, group in self.groups.items()}

    def step(self, server: str, users: int) -> Record | None:
        return self.by_level.get((server, int(users)))

    def ok_step(self, server: str, users: int) -> Record | None:
        """The step's record if it was measured, else None."""
        record = self.step(server, users)
        return record if is_ok(record) else None

    @property
    def complete(self) -> bool:
        """Every planned step measured: anything less is not a success."""
        return self.status == "complete" and all(is_ok(s) for s in self.records)

    def missing_steps(self) -> list[tuple[str, int, int]]:
        """Planned steps with no record as (server, users, repeat), in the sweep's order, worked out from the
        configuration so it holds even for a killed run; each repeat of a step is a step of its own."""
        done = {repeats.step_key(s) for s in self.records}
        return [
            (server.name, int(users), repeat)
            for users in self.users
            for repeat in range(1, self.planned_repeats + 1)
            for server in self.servers
            if (server.name, int(users), repeat) not in done
        ]

    def step_name(self, server: str, users: int, repeat: int) -> str:
        """How one step is named wherever steps are listed: its repeat only when the run has repeats."""
        return f"{server} at {users} users" + (f" (repeat {repeat})" if self.planned_repeats > 1 else "")

    def record_name(self, record: Mapping[str, Any]) -> str:
        if record.get("arrival") == "open":  # open arrivals (or a capacity probe): named by its rate
            return f"{record['server']} at {float(record['rate']):g} requests/s (open arrivals)"
        return self.step_name(*repeats.step_key(record))

    # --- the model beside every step ----------------------------------------------------------------------------

    @cached_property
    def calibrations(self) -> dict[str, expected.Calibration]:
        return {s.name: expected.calibrate(self.config, self.records, s.name) for s in self.servers}

    @cached_property
    def systems(self) -> dict[str, model.System]:
        """Each server's model under this run's load, for curves, knees and bounds."""
        return {
            s.name: expected.system(self.config, s, self.calibrations[s.name], self.server_cores) for s in self.servers
        }

    @cached_property
    def expectations(self) -> dict[StepKey, expected.Expectation]:
        """The model beside every step that has a record, keyed like :attr:`by_level`: each predicted from a
        calibration on the server's *other* user levels (see :func:`runner.expected.calibrate`), so a step's own
        CPU never enters its own prediction."""
        out = {}
        for (name, users), record in self.by_level.items():
            spec = self.server(name)
            if spec is None:
                continue
            calibration = expected.calibrate(self.config, self.records, name, leave_out=users)
            system = expected.system(self.config, spec, calibration, self.server_cores)
            out[(name, users)] = expected.expectation(system, calibration, record, users)
        return out

    # --- summary.csv --------------------------------------------------------------------------------------------

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per (server, users), keyed by the names of ``store.SUMMARY_COLUMNS`` (the writer orders them):
        repeats folded into their medians and spread, the model's columns beside the measured ones."""
        rows = []
        for (name, users), group in self.groups.items():
            step = group.record
            figures = step.get("figures") or {}
            rps_range = group.spread.get("rps")
            latency = figures.get("latency") or {}
            endpoints = figures.get("endpoints") or {}
            row: dict[str, Any] = {
                "server": step["server"],
                "kind": step["kind"],
                "workers": step["workers"],
                "users": step["users"],
                "status": step["status"],
                "arrival": "closed",
                "requests": latency.get("requests"),
                "failures": latency.get("failures"),
                "unfinished": figures.get("unfinished"),
                "rps": figures.get("rps"),
                "client_cpu_pct": figures.get("client_cpu_pct"),
                "server_cpu_pct": step.get("server_cpu_pct"),
                "server_rss_mb": step.get("server_rss_mb"),
                # nginx's own CPU when the server is behind it (runner.proxy); empty otherwise.
                "proxy_cpu_pct": step.get("proxy_cpu_pct"),
                # The upstream service's CPU with backend = "http" (runner/upstream.py); empty otherwise.
                "upstream_cpu_pct": step.get("upstream_cpu_pct"),
                "saturated": step.get("saturated", ""),
                "repeats": len(group.measured),
                # Without repeats the step's one throughput is its own min and max.
                "rps_min": rps_range["min"] if rps_range else figures.get("rps"),
                "rps_max": rps_range["max"] if rps_range else figures.get("rps"),
                "spread_pct": group.spread_pct,
            }
            for key in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms", "min_ms"):
                row[key] = latency.get(key)
            for endpoint in ("page", "short"):
                data = endpoints.get(endpoint) or {}
                row[f"{endpoint}_p50_ms"] = data.get("p50_ms")
                row[f"{endpoint}_p95_ms"] = data.get("p95_ms")
            server = figures.get("server") or {}
            for key in ("handler_mean_ms", "outside_mean_ms", "pool_mean_ms", "pool_waited_pct"):
                row[key] = server.get(key)
            row["cpu_ms_per_request"] = expected.cpu_ms_per_request(step)
            e = self.expectations.get((name, users))
            if e is not None:
                row.update(
                    model_rps=e.prediction.model_rps,
                    model_mean_ms=e.prediction.model_mean_ms,
                    efficiency=e.efficiency,
                    model_bound=e.prediction.bound_by,
                    mean_vs_model=e.mean_ratio,
                    little_error_pct=e.little_error_pct,
                )
            rows.append(row)
        return rows + open_view.summary_rows(self.open, self.capacity)

    # --- small readings several readers share -------------------------------------------------------------------

    def lowest_ok_record(self, server: str) -> Record | None:
        """The server's measured step record at its lowest user level."""
        measured = [s for s in self.records if s["server"] == server and is_ok(s)]
        return min(measured, key=lambda s: int(s["users"])) if measured else None

    def any_client_limited(self) -> bool:
        return any(s.get("saturated") == "client" for s in self.records)


def figure_of(record: Mapping[str, Any] | None, key: str, endpoint: str | None = None) -> float | None:
    """A latency figure (``p50_ms``, ...) of a measured step, overall or of one endpoint; None where absent."""
    if not is_ok(record):
        return None
    assert record is not None
    figures = record["figures"]
    data = figures["latency"] if endpoint is None else (figures.get("endpoints") or {}).get(endpoint) or {}
    value = data.get(key)
    return float(value) if is_finite(value) else None


# --- the slow-client experiment's reading -------------------------------------------------------------------------

# The rules a server at one K is judged by, against the same run's phase before the slow clients came. The report
# states them beside the sentences they decide.
SLOW_STOPPED_BELOW = 0.10  # throughput during < 10% of before: the slow clients stopped it
SLOW_UNAFFECTED_MEDIAN = 1.5  # median during at most 1.5x before ...
SLOW_UNAFFECTED_RPS = 0.90  # ... and throughput during at least 90% of before: unaffected


@dataclass(frozen=True)
class SlowClientsRun:
    """One server at one K of the slow-client experiment, typed, with its verdict by the rules above."""

    server: str
    kind: str
    count: int
    phases: Mapping[str, Mapping[str, Any]]  # before, during, after: the normal users' figures
    server_closed_s: tuple[float, ...] = ()  # when the server closed a slow connection itself (s since start)
    slow_started_s: float | None = None  # when the slow clients began connecting
    slow_left_s: float | None = None  # when the last slow connection was gone
    recovered_after_s: float | None = None
    failures: int = 0
    timeouts: int = 0
    error: str | None = None

    @classmethod
    def from_saved(cls, server: str, kind: str, run: Mapping[str, Any]) -> SlowClientsRun:
        if "error" in run:
            return cls(server, kind, int(run["count"]), {}, error=str(run["error"]))
        slow = run.get("slow") or {}
        return cls(
            server,
            kind,
            int(run["count"]),
            {p["phase"]: p for p in run["phases"]},
            tuple(float(t) for t in slow.get("server_closed_s", ())),
            slow.get("started_s"),
            slow.get("left_s"),
            run.get("recovered_after_s"),
            int(run.get("failures", 0)),
            int(run.get("timeouts", 0)),
        )

    def figure(self, phase: str, key: str) -> float | None:
        value = (self.phases.get(phase) or {}).get(key)
        return float(value) if is_finite(value) else None

    @property
    def rps_ratio(self) -> float | None:
        """Throughput during the slow clients over throughput before them; None without a throughput before."""
        before, during = self.figure("before", "rps"), self.figure("during", "rps")
        return during / before if before and during is not None else None

    @property
    def median_ratio(self) -> float | None:
        before, during = self.figure("before", "p50_ms"), self.figure("during", "p50_ms")
        return during / before if before and during is not None else None

    def completions(self, phase: str) -> tuple[int, float] | None:
        """The normal users' completions inside a phase and its length in seconds (throughput x length)."""
        rps, start, end = (self.figure(phase, k) for k in ("rps", "start_s", "end_s"))
        if rps is None or start is None or end is None or end <= start:
            return None
        return round(rps * (end - start)), end - start

    @property
    def drop_within_chance(self) -> bool | None:
        """Whether the throughput during is no lower than chance alone makes of the rate before (see
        :func:`runner.stats.lower_by_chance`); None without both phases' counts. Said beside a verdict of
        "slowed", whose rule (a fixed share) does not look at how many completions it rests on."""
        before, during = self.completions("before"), self.completions("during")
        if before is None or during is None:
            return None
        return stats.lower_by_chance(before[0], before[1], during[0], during[1])

    @property
    def verdict(self) -> str:
        """failed (not measured), unknown (no throughput before to judge by), stopped, unaffected, or slowed."""
        if self.error is not None:
            return "failed"
        rps = self.rps_ratio
        if rps is None:
            return "unknown"
        if rps < SLOW_STOPPED_BELOW:
            return "stopped"
        median = self.median_ratio
        if median is not None and median <= SLOW_UNAFFECTED_MEDIAN and rps >= SLOW_UNAFFECTED_RPS:
            return "unaffected"
        return "slowed"


def slow_client_runs(data: Mapping[str, Any] | None) -> list[SlowClientsRun]:
    """Every (server, K) of the saved experiment, in the order measured."""
    if not data:
        return []
    return [
        SlowClientsRun.from_saved(name, str(server.get("kind", "")), run)
        for name, server in (data.get("servers") or {}).items()
        for run in server.get("runs", [])
    ]
