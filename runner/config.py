"""Scenario files, overrides, and the one frozen configuration object handed down the whole run.

Configuration flows one way: the scenario's TOML file, then ``BENCH_*`` environment variables, then command-line
flags, then :func:`build_config` validates everything at once into :class:`RunConfig`. Nothing downstream reads
a setting from anywhere else, so what a result file records as "the configuration" is exactly what ran.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from async_app.settings import ANYIO_THREAD_LIMIT
from httpwait.config import ASYNC_CLIENTS, BLOCKING_CLIENTS, CLIENT_TEXT, DEFAULT_CLIENT, UpstreamConfig
from simdb import ConfigError, DatabaseConfig, WorkloadConfig
from simdb.database import ASYNC_DRIVERS, BLOCKING_DRIVERS, DEFAULT_DRIVER, SIMULATED_DRIVER

ROOT = Path(__file__).resolve().parent.parent
SCENARIO_DIR = ROOT / "scenarios"

ServerType = Literal["gunicorn", "uvicorn"]
WorkerClass = Literal["sync", "gthread", "gevent"]
Endpoints = Literal["async", "def", "blocking"]
# How one configuration serves requests: gunicorn's worker class or the style of uvicorn's endpoints.
Mode = Literal["sync", "gthread", "gevent", "async", "def", "blocking"]
Kind = Literal["sync", "async"]
# What can sit in front of a server: only nginx, as production runs it (runner/proxy.py starts it).
Proxy = Literal["nginx"]
PROXIES: tuple[Proxy, ...] = ("nginx",)

# Each server type, the scenario key that chooses its mode, and its modes. The first mode is the default: what
# every scenario meant before the other modes existed (gunicorn sync workers, uvicorn with `async def` endpoints).
SERVER_TYPES: dict[str, tuple[str, tuple[Mode, ...]]] = {
    "gunicorn": ("worker_class", ("sync", "gthread", "gevent")),
    "uvicorn": ("endpoints", ("async", "def", "blocking")),
}
# The kind is about the server, not the endpoint code: "async" where each worker runs an event loop that
# multiplexes its connections (uvicorn whatever its endpoints; gunicorn's gevent worker, whose hub is an event loop
# that every monkey-patched blocking call yields to), "sync" where a request holds an OS thread from start to
# end and nothing else runs on it (gunicorn sync and gthread). It picks the charts' colour family; how many
# requests fit at once is ServerConfig.slots, which is what a comparison must state.
MODE_KINDS: dict[Mode, Kind] = {
    "sync": "sync",
    "gthread": "sync",
    "gevent": "async",
    "async": "async",
    "def": "async",
    "blocking": "async",
}
# gunicorn's own worker_connections default: gevent's size when a scenario names none, and gthread's limit on the
# connections one worker holds open (the harness never sets it for gthread; see keep_alive_text).
GUNICORN_WORKER_CONNECTIONS = 1000
# The one size some modes have besides `workers`, and its default: gunicorn's own (threads 1, worker_connections
# 1000) and AnyIO's (40 threads), so leaving it out means what the server would do by itself.
MODE_SIZES: dict[Mode, tuple[str, int]] = {
    "gthread": ("threads", 1),
    "gevent": ("connections", GUNICORN_WORKER_CONNECTIONS),
    "def": ("thread_limit", ANYIO_THREAD_LIMIT),
}
# How long a server keeps an idle connection open for the user's next request when a scenario does not say: what
# every run before `keep_alive_s` existed ran with, on both servers. uvicorn's own default (--timeout-keep-alive 5)
# and sync_app/gunicorn.conf.py's keepalive = 5 (gunicorn's own default is 2) for its gthread and gevent workers.
# gunicorn's sync worker has no such setting: it closes every connection after one response.
DEFAULT_KEEP_ALIVE_S = 5


# The PostgreSQL drivers each mode can use: a blocking face for a thread that waits (gunicorn's sync and gthread
# workers, FastAPI's def endpoints and the blocking mistake), an awaitable one for an event loop. gevent would need
# a driver that yields to its hub; it is not offered with PostgreSQL. Every mode may wait on the simulated
# database instead, the baseline of what a real driver adds.
DRIVERS: dict[Mode, tuple[str, ...]] = {
    "sync": (*BLOCKING_DRIVERS, SIMULATED_DRIVER),
    "gthread": (*BLOCKING_DRIVERS, SIMULATED_DRIVER),
    "gevent": (SIMULATED_DRIVER,),
    "async": (*ASYNC_DRIVERS, SIMULATED_DRIVER),
    "def": (*BLOCKING_DRIVERS, SIMULATED_DRIVER),
    "blocking": (*BLOCKING_DRIVERS, SIMULATED_DRIVER),
}
# The upstream's clients each mode can use (backend = "http"), by the same rule: a blocking client for a thread that
# waits (and for the blocking mistake: a sync client inside async def), an awaitable one for an event loop.
HTTP_DRIVERS: dict[Mode, tuple[str, ...]] = {
    "sync": (*BLOCKING_CLIENTS, SIMULATED_DRIVER),
    "gthread": (*BLOCKING_CLIENTS, SIMULATED_DRIVER),
    "gevent": (SIMULATED_DRIVER,),
    "async": (*ASYNC_CLIENTS, SIMULATED_DRIVER),
    "def": (*BLOCKING_CLIENTS, SIMULATED_DRIVER),
    "blocking": (*BLOCKING_CLIENTS, SIMULATED_DRIVER),
}
DRIVER_TEXT: dict[str, str] = {
    "psycopg": "psycopg 3 pool",
    "asyncpg": "asyncpg pool",
    "sqlalchemy": "SQLAlchemy ORM session",
    SIMULATED_DRIVER: "simulated database, no connection",
    **CLIENT_TEXT,
}
# Connections the harness itself holds on the database during a run (the schema check, the activity sampler).
HARNESS_CONNECTIONS = 2


Arrival = Literal["closed", "open", "both"]
ArrivalProcess = Literal["poisson", "constant"]
ARRIVALS: tuple[Arrival, ...] = ("closed", "open", "both")
ARRIVAL_PROCESSES: tuple[ArrivalProcess, ...] = ("poisson", "constant")
# An open pool bigger than this is more gevent users than one Locust process schedules well (each is a greenlet
# and, once it has sent, a connection); a rate that needs more belongs on several client processes.
MAX_OPEN_USERS = 10000


class ScenarioError(Exception):
    """The scenario, an override or the command line is wrong; the message says what and where."""


@dataclass(frozen=True)
class LoadConfig:
    """What Locust does in each step. Times are in seconds."""

    users: tuple[int, ...] = (5, 10, 25, 50, 100, 250, 500)
    warmup_s: float = 5.0
    measure_s: float = 15.0
    # How long requests still in flight when the window closes may take to finish (Locust --stop-timeout).
    drain_s: float = 15.0
    think_time_s: tuple[float, float] = (2.0, 8.0)
    request_timeout_s: float = 30.0
    page_weight: int = 4
    short_weight: int = 1
    # How many times each step is measured, each time with a fresh server and Locust run (see runner.repeats).
    repeats: int = 1
    # Locust processes that make requests: 1 is one plain process; N > 1 is Locust's own --processes N, N workers
    # plus a master that only coordinates, for when one process's ~one core of client capacity is not enough.
    client_processes: int = 1
    # Closed: every user waits for its answer, thinks, sends again (the sweep over ``users``). Open: requests
    # arrive at the ``rates`` below whatever the server does (runner/open_loop.py). Both: the sweep, then the open
    # steps, so one run sets closed-loop percentiles beside open-loop ones at the same throughput.
    arrival: Arrival = "closed"
    # Open arrivals: requests per second, one step per rate; Poisson or evenly spaced; the pool of users that takes
    # them (k6's maxVUs: a user sends one arrival at a time, so a pool this big carries rate x response time up to
    # it); and how late an arrival may be sent, every user being busy, before it is dropped (and counted).
    rates: tuple[float, ...] = ()
    arrival_process: ArrivalProcess = "poisson"
    max_users: int = 1000
    max_lateness_s: float = 1.0
    # The latency target of the capacity search (runner/capacity.py): p99 from the scheduled start, in ms. 500 ms
    # is the target the search was asked for ("how many requests per second within p99 500 ms").
    slo_p99_ms: float = 500.0

    @property
    def closed(self) -> bool:
        return self.arrival in ("closed", "both")

    @property
    def open(self) -> bool:
        return self.arrival in ("open", "both")

    @property
    def think_mean_s(self) -> float:
        """The mean of the uniform think time: the Z of the queueing model."""
        return (self.think_time_s[0] + self.think_time_s[1]) / 2

    @property
    def mix(self) -> dict[str, int]:
        """The task weights by endpoint: pages and short requests."""
        return {"page": self.page_weight, "short": self.short_weight}


# More repeats than this would make a default sweep run for hours; a spread needs a handful, not dozens.
MAX_REPEATS = 20
# Each Locust worker is a whole process on the client's cores; more than this on a benchmark machine would measure
# the workers' own contention for those cores, not the server.
MAX_CLIENT_PROCESSES = 64


@dataclass(frozen=True)
class BurstConfig:
    """The burst over time: one Locust run per server whose user count follows ``stages``.

    Each stage is (users, seconds). The default scenario holds a few users, jumps to many at once and drops
    back, so the chart shows the moment the crowd arrives and how long the server takes to recover after it
    leaves. No stages: no burst run.
    """

    stages: tuple[tuple[int, float], ...] = ()
    # How long requests still in flight when the last stage ends may take to finish.
    drain_s: float = 30.0

    @property
    def seconds(self) -> float:
        return sum(seconds for _, seconds in self.stages)


SlowStyle = Literal["headers", "body"]
SLOW_STYLES: tuple[SlowStyle, ...] = ("headers", "body")


@dataclass(frozen=True)
class SlowClientsConfig:
    """The slow-client experiment (runner.slow_clients): while ``users`` normal users run, K extra connections
    trickle their requests one byte every ``byte_interval_s`` for ``hold_s``, for each K in ``counts``.

    ``style`` "headers" sends the request line and headers a byte at a time and never the blank line that ends
    them; "body" sends a GET's complete headers with a Content-Length and then its body a byte at a time, never
    all of it. Each K gets a fresh server and ``before_s`` of normal load first and ``after_s`` after the slow
    clients leave, so the same run shows the server before, during and after. No counts: not run.
    """

    users: int = 50
    counts: tuple[int, ...] = ()
    style: SlowStyle = "headers"
    before_s: float = 10.0
    hold_s: float = 20.0
    after_s: float = 15.0
    byte_interval_s: float = 1.0
    # How long requests still in flight when the normal users stop may take to finish.
    drain_s: float = 15.0

    @property
    def seconds(self) -> float:
        """The normal users' run per K: before, during and after the slow clients."""
        return self.before_s + self.hold_s + self.after_s


class ServerSettingError(ValueError):
    """A server configuration does not hold together; ``key`` names the setting so the scenario error can too."""

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(f"{key} {detail}")
        self.key = key
        self.detail = detail


def _whole_positive(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True)
class ServerConfig:
    """One server configuration under test.

    ``server`` picks the program, then one key picks how it serves requests: gunicorn's ``worker_class`` (sync,
    gthread, gevent) or uvicorn's ``endpoints`` (async, def, blocking). A size that belongs to one mode only
    (``threads`` for gthread, ``connections`` for gevent, ``thread_limit`` for def) is None everywhere else, so a
    saved run.json says plainly which settings applied. Construction fills in the defaults, so a configuration saved
    before these keys existed rebuilds as exactly what it ran.

    ``keep_alive_s`` is how long an idle connection stays open for the next request: 0 turns keep-alive off (every
    response says ``Connection: close``), so the same server can be measured paying a new connection per request,
    as gunicorn's sync worker always does. It is None for the sync worker only, which has nothing to set.
    """

    name: str
    server: ServerType
    workers: int = 1
    worker_class: WorkerClass | None = None
    threads: int | None = None
    connections: int | None = None
    endpoints: Endpoints | None = None
    thread_limit: int | None = None
    # The PostgreSQL driver or the upstream's client (backend = "postgres" or "http"; build_config fills in the
    # default): see DRIVERS and HTTP_DRIVERS.
    driver: str | None = None
    # Seconds an idle connection is kept open; 0 = keep-alive off. Not for the sync worker (see keep_alive_text).
    keep_alive_s: int | None = None
    # A reverse proxy in front of the server ("nginx": runner/proxy.py) and its worker processes (1 when a proxy is
    # set and none is said; refused without a proxy). None: clients talk to the server directly.
    proxy: Proxy | None = None
    proxy_workers: int | None = None

    def __post_init__(self) -> None:
        """Check the combination and fill in the defaults (a frozen dataclass sets them through object)."""
        if self.server not in SERVER_TYPES:
            known = ", ".join(sorted(SERVER_TYPES))
            raise ServerSettingError("server", f"is {self.server!r}; known servers: {known}")
        if not _whole_positive(self.workers):
            raise ServerSettingError("workers", f"must be a whole number > 0, got {self.workers!r}")
        chooser, modes = SERVER_TYPES[self.server]
        choices = " | ".join(f'"{m}"' for m in modes)
        for other_server, (other, _) in SERVER_TYPES.items():
            if other != chooser and getattr(self, other) is not None:
                raise ServerSettingError(
                    other, f"is a {other_server} setting; {self.server} is set with {chooser} = {choices}"
                )
        chosen = getattr(self, chooser)
        mode = modes[0] if chosen is None else chosen
        if mode not in modes:
            raise ServerSettingError(chooser, f"is {mode!r}; {self.server} knows {choices}")
        object.__setattr__(self, chooser, mode)
        for owner, (key, default) in MODE_SIZES.items():
            value = getattr(self, key)
            if owner != mode:
                if value is not None:
                    owner_server, (owner_chooser, _) = next((k, v) for k, v in SERVER_TYPES.items() if owner in v[1])
                    where = "" if owner_server == self.server else f"{owner_server} with "
                    raise ServerSettingError(
                        key, f'applies only to {where}{owner_chooser} = "{owner}"; this is {self.server} {mode}'
                    )
            elif value is None:
                object.__setattr__(self, key, default)
            elif not _whole_positive(value):
                raise ServerSettingError(key, f"must be a whole number > 0, got {value!r}")
        if self.driver is not None and self.driver not in (*DRIVERS[mode], *HTTP_DRIVERS[mode]):
            known = " | ".join(f'"{d}"' for d in dict.fromkeys((*DRIVERS[mode], *HTTP_DRIVERS[mode])))
            raise ServerSettingError("driver", f"is {self.driver!r}; {self.server} {mode} takes {known}")
        self._check_keep_alive(mode)
        self._check_proxy()

    def _check_proxy(self) -> None:
        """Refuse proxy_workers without a proxy and an unknown proxy; fill in one proxy worker, as stated."""
        if self.proxy is None:
            if self.proxy_workers is not None:
                raise ServerSettingError("proxy_workers", 'applies only behind a proxy (proxy = "nginx")')
            return
        if self.proxy not in PROXIES:
            known = " | ".join(f'"{p}"' for p in PROXIES)
            raise ServerSettingError("proxy", f"is {self.proxy!r}; known proxies: {known}")
        if self.proxy_workers is None:
            object.__setattr__(self, "proxy_workers", 1)
        elif not _whole_positive(self.proxy_workers):
            raise ServerSettingError("proxy_workers", f"must be a whole number > 0, got {self.proxy_workers!r}")

    def _check_keep_alive(self, mode: Mode) -> None:
        """Refuse keep_alive_s where it cannot act, check it is whole seconds, fill in the harness's default."""
        value = self.keep_alive_s
        if mode == "sync":
            if value is not None:
                raise ServerSettingError(
                    "keep_alive_s",
                    "does not apply to gunicorn's sync worker: it closes every connection after one response, "
                    'whatever keepalive says; worker_class = "gthread" or "gevent" keep connections open',
                )
            return
        if value is None:
            object.__setattr__(self, "keep_alive_s", DEFAULT_KEEP_ALIVE_S)
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ServerSettingError(
                "keep_alive_s", f"must be whole seconds >= 0 (0 turns keep-alive off), got {value!r}"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerConfig:
        """Rebuild a saved configuration, old ones too: the keys they lack default to what they ran."""
        return cls(**data)

    @property
    def mode(self) -> Mode:
        """The one word for how requests are served: the worker class (gunicorn) or endpoint style (uvicorn)."""
        mode = self.worker_class if self.server == "gunicorn" else self.endpoints
        if mode is None:  # pragma: no cover - __post_init__ always fills it in
            raise AssertionError(f"{self.name}: no mode")
        return mode

    @property
    def kind(self) -> Kind:
        """sync or async, by the server's machinery (see MODE_KINDS for why gevent counts as async)."""
        return MODE_KINDS[self.mode]

    @property
    def processes(self) -> int:
        """Worker processes, the master or supervisor not counted: each has its own database pool and event loop."""
        return self.workers

    @property
    def per_worker(self) -> int | None:
        """Requests one worker process can have in service at once; None where only the machine bounds it."""
        mode = self.mode
        if mode in MODE_SIZES:
            size: int | None = getattr(self, MODE_SIZES[mode][0])
            return size
        # sync: a worker is one thread. blocking: the blocking call holds the worker's only event loop, so it
        # finishes one request before it can even read the next. async: every wait yields to the loop.
        return None if mode == "async" else 1

    @property
    def slots(self) -> int | None:
        """Requests that can be in service at once across all workers (None: no per-request limit).

        A request beyond them waits in a queue (the kernel's backlog, gthread's or gevent's accepted-connection
        list, AnyIO's limiter) however idle the server is while its requests wait on the database. For gevent the
        count is connections, so an idle keep-alive connection holds one too.
        """
        per_worker = self.per_worker
        return None if per_worker is None else self.workers * per_worker

    def describe(self) -> str:
        """A short human text: what the report's setup and the chart legends say about this configuration."""
        workers, mode = self.workers, self.mode
        if mode == "sync":
            return f"{workers} sync worker{_s(workers)}{self._via()}"
        if mode in ("gthread", "gevent"):
            unit = "thread" if mode == "gthread" else "connection"
            size = self.per_worker or 0
            return f"{workers} worker{_s(workers)} x {size} {unit}{_s(size)} ({mode}){self._via()}"
        loops = f"{workers} event loop{_s(workers)}"
        if mode == "def":
            each = " each" if workers > 1 else ""
            limit = self.per_worker or 0
            return f"{loops}, def endpoints in {_a(limit)} {limit}-thread pool{each}{self._via()}"
        if mode == "blocking":
            return f"{loops}, blocking call inside async def{self._via()}"
        return f"{loops}, async def endpoints{self._via()}"

    def _via(self) -> str:
        driver = f", {DRIVER_TEXT[self.driver]}" if self.driver else ""
        if self.proxy is None:
            return driver
        workers = self.proxy_workers or 1
        return f"{driver}, behind {self.proxy}" + (f" ({workers} workers)" if workers > 1 else "")

    def keep_alive_text(self, think_time_s: tuple[float, float] | None = None) -> str:
        """What this configuration does with a connection after a response: the one statement of it, for the report.

        A closed connection costs the next request a new TCP connection (a handshake and an accept) on the server's
        core, which is what a sceptic suspects decides sync against async, since gunicorn's sync worker always pays
        it. With ``think_time_s`` (the load's uniform think time) the text adds how many requests find their user's
        connection still open: the server closes it once it has been idle ``keep_alive_s``, and a user is idle for
        its think time, so the share is the chance a think time is shorter than that. Locust's FastHttpUser keeps
        one connection per user and, before reusing it, drops one the server has closed and opens a new one.

        What each server does, from its code (gunicorn 27.0.1, uvicorn 0.54.0):

        * sync worker: ``resp.force_close()`` on every request (gunicorn/workers/sync.py, handle_request), so each
          response says ``Connection: close``; gunicorn's docs: "sync worker does not support persistent
          connections and will ignore this option".
        * gthread: ``--keep-alive 0`` forces the close the same way (gunicorn/workers/gthread.py, handle_request);
          otherwise an idle connection waits in the worker's poller, not a thread, and is closed after the
          timeout; at most worker_connections - threads of them are kept per worker, beyond that a response closes.
        * gevent: ``--keep-alive 0`` forces the close (gunicorn/workers/base_async.py, handle_request); otherwise
          the connection's greenlet waits up to the timeout for the next request, holding one of the worker's
          ``worker_connections`` the while.
        * uvicorn (httptools): after a response it closes an idle connection after ``--timeout-keep-alive`` s
          (protocols/http/httptools_impl.py, on_response_complete). Its 0 would close it a loop turn after the
          response without saying so, leaving the client to find a dead socket; off is therefore ``--header
          Connection:close``, a default header on every response, which uvicorn honours by closing after the
          response (RequestResponseCycle.send), as gunicorn does.
        """
        new_each = "each request opens a new connection"
        if self.mode == "sync":
            return f"no keep-alive: the sync worker closes the connection after every response, so {new_each}"
        seconds = self.keep_alive_s
        if not seconds:
            return f"keep-alive off: every response says `Connection: close`, so {new_each}"
        text = f"keep-alive: an idle connection is closed after {seconds} s"
        if self.mode == "gthread":
            idle = GUNICORN_WORKER_CONNECTIONS - (self.threads or 0)
            if idle <= 0:  # gunicorn warns "No keepalived connections can be handled" and closes after each response
                return (
                    f"keep-alive {seconds} s asked, but with {self.threads} threads gunicorn keeps no idle connection "
                    f"(worker_connections {GUNICORN_WORKER_CONNECTIONS}), so {new_each}"
                )
            text += f" (each worker keeps at most {idle} idle)"
        elif self.mode == "gevent":
            text += f" (an open one, idle or not, holds one of the worker's {self.connections} connections)"
        return text if think_time_s is None else f"{text}; {_reuse_text(seconds, think_time_s)}"


def _reuse_text(seconds: int, think_time_s: tuple[float, float]) -> str:
    """How many requests find their user's connection still open: those after a think time shorter than the
    server's keep-alive (a user is idle for its think time; the first request of each user always connects)."""
    low, high = think_time_s
    think = f"{low:g} s" if low == high else f"{low:g}-{high:g} s"
    share = _share_below(seconds, think_time_s)
    if share >= 1:
        return f"every think time ({think}) is shorter, so each request after a user's first reuses its connection"
    if share <= 0:
        return f"every think time ({think}) is longer, so each request opens a new connection"
    return (
        "requests after a shorter think time reuse their user's connection, "
        f"about {share * 100:.0f}% of them with think times of {think}"
    )


def _share_below(seconds: float, think_time_s: tuple[float, float]) -> float:
    """The chance a think time drawn uniformly from [low, high] is shorter than ``seconds``."""
    low, high = think_time_s
    if high <= low:
        return 1.0 if low < seconds else 0.0
    return min(max((seconds - low) / (high - low), 0.0), 1.0)


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _a(count: int) -> str:
    """The article a number takes when read aloud: an 8-, 11-, 18-, 80-thread pool, a 40-thread pool."""
    digits = str(count)
    return "an" if digits[0] == "8" or (len(digits) % 3 == 2 and digits[:2] in ("11", "18")) else "a"


@dataclass(frozen=True)
class RunSettings:
    """How the harness runs, as opposed to what it measures."""

    pin_cpus: bool = True
    server_cores: int = 1
    startup_timeout_s: float = 30.0
    results_dir: str = "results"
    # The nginx binary for servers with proxy = "nginx"; empty: `nginx` on PATH, then /usr/sbin/nginx.
    nginx: str = ""


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs, validated and frozen."""

    name: str
    description: str
    source: str
    source_sha256: str
    load: LoadConfig
    workload: WorkloadConfig
    database: DatabaseConfig
    servers: tuple[ServerConfig, ...]
    run: RunSettings = field(default_factory=RunSettings)
    burst: BurstConfig = field(default_factory=BurstConfig)
    slow_clients: SlowClientsConfig = field(default_factory=SlowClientsConfig)
    overrides: tuple[str, ...] = ()
    # The upstream service and its clients (backend = "http" only; the defaults otherwise).
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)

    @property
    def results_root(self) -> Path:
        path = Path(self.run.results_dir)
        return path if path.is_absolute() else ROOT / path

    def to_dict(self) -> dict[str, Any]:
        """The configuration as recorded in run.json: a password in the database URL is masked."""
        data = asdict(self)
        data["database"]["url"] = mask_url(self.database.url)
        return data

    def step_seconds(self) -> float:
        """The longest a step's load can last: warm-up, window, and the drain bound."""
        return self.load.warmup_s + self.load.measure_s + self.load.drain_s


def mask_url(url: str) -> str:
    """A database URL fit to record or print: its password replaced by ``***``. A URL too malformed to parse
    (a port that is not a number, say) is masked by its shape, so the message that refuses it shows no secret."""
    try:
        parts = urlsplit(url)
        password, port = parts.password, parts.port
    except ValueError:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
    if password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{port}" if port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def check_connections(config: RunConfig, max_connections: int) -> None:
    """Refuse a run whose pools could not all connect: each server's processes x pool_size, plus the harness's
    own connections, must fit the database's max_connections (one server runs at a time)."""
    if config.database.backend != "postgres":
        return
    for spec in config.servers:
        wanted = spec.processes * config.database.pool_size + HARNESS_CONNECTIONS
        if wanted > max_connections:
            raise ScenarioError(
                f"{config.source}: {spec.name} needs {spec.processes} process(es) x pool_size "
                f"{config.database.pool_size} + {HARNESS_CONNECTIONS} for the harness = {wanted} connections, but "
                f"the database allows max_connections = {max_connections}; lower pool_size or workers, or raise "
                "max_connections"
            )


def config_from_dict(data: Mapping[str, Any]) -> RunConfig:
    """Rebuild a config saved in a run's ``run.json`` (used to redraw and compare runs)."""
    load = dict(data["load"])
    load["users"] = tuple(load["users"])
    load["think_time_s"] = tuple(load["think_time_s"])
    # Runs saved before open arrivals existed have none of their keys: the defaults are what they measured.
    load["rates"] = tuple(load.get("rates", ()))
    return RunConfig(
        name=data["name"],
        description=data["description"],
        source=data["source"],
        source_sha256=data["source_sha256"],
        load=LoadConfig(**load),
        workload=WorkloadConfig(**data["workload"]),
        database=DatabaseConfig(**data["database"]),
        servers=tuple(ServerConfig.from_dict(s) for s in data["servers"]),
        run=RunSettings(**data["run"]),
        overrides=tuple(data.get("overrides", ())),
        # Runs saved before the burst existed have none.
        burst=_burst_from_dict(data.get("burst")),
        # Runs saved before the slow-client experiment existed have none.
        slow_clients=_slow_clients_from_dict(data.get("slow_clients")),
        # Runs saved before the upstream existed have none.
        upstream=UpstreamConfig(**data["upstream"]) if data.get("upstream") else UpstreamConfig(),
    )


def _slow_clients_from_dict(data: Mapping[str, Any] | None) -> SlowClientsConfig:
    if not data:
        return SlowClientsConfig()
    values = dict(data)
    values["counts"] = tuple(int(n) for n in values.get("counts", ()))
    return SlowClientsConfig(**values)


def _burst_from_dict(data: Mapping[str, Any] | None) -> BurstConfig:
    if not data:
        return BurstConfig()
    stages = tuple((int(users), float(seconds)) for users, seconds in data.get("stages", ()))
    return BurstConfig(stages=stages, drain_s=float(data.get("drain_s", BurstConfig.drain_s)))


# --- finding and reading scenario files ------------------------------------------------------------------------


def resolve_scenario(name_or_path: str) -> Path:
    """``default`` means ``scenarios/default.toml``; anything with a slash or a .toml suffix is a path."""
    if not name_or_path:
        raise ScenarioError("no scenario given: pass a name from scenarios/ or a path to a .toml file")
    candidate = Path(name_or_path)
    if "/" in name_or_path or name_or_path.endswith(".toml"):
        path = candidate if candidate.is_absolute() else Path.cwd() / candidate
    else:
        path = SCENARIO_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))) or "none"
        raise ScenarioError(f"scenario file {path} does not exist (scenarios shipped: {known})")
    return path


def read_scenario(path: Path) -> tuple[dict[str, Any], str]:
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ScenarioError(f"{path}: not valid TOML: {error}") from None
    return data, hashlib.sha256(raw).hexdigest()


# --- overrides from the environment and the command line -------------------------------------------------------


def _users(text: str) -> list[int]:
    users = [int(part) for part in text.replace(" ", "").split(",") if part]
    if not users or any(n <= 0 for n in users):
        raise ValueError("user counts must be whole numbers > 0")
    return users


def _rates(text: str) -> list[float]:
    rates = [float(part) for part in text.replace(" ", "").split(",") if part]
    if not rates or any(not (math.isfinite(r) and r > 0) for r in rates):
        raise ValueError("rates must be numbers > 0 (requests per second)")
    return rates


def _arrival(text: str) -> str:
    if text not in ARRIVALS:
        raise ValueError(f"must be one of {', '.join(ARRIVALS)}")
    return text


def _seconds(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be > 0")
    return value


def _seconds_or_zero(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError("must be >= 0")
    return value


def _repeats(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_REPEATS:
        raise ValueError(f"must be a whole number from 1 to {MAX_REPEATS}")
    return value


def _client_processes(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_CLIENT_PROCESSES:
        raise ValueError(f"must be a whole number from 1 to {MAX_CLIENT_PROCESSES}")
    return value


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


@dataclass(frozen=True)
class Override:
    """A setting that may be overridden: its table and key in the scenario, and how to parse the text."""

    section: str
    key: str
    parse: Callable[[str], Any]
    env: str
    flag: str
    help: str
    secret: bool = False  # recorded masked (a database URL carries a password)


OVERRIDES: tuple[Override, ...] = (
    Override("load", "users", _users, "BENCH_USERS", "--users", "user levels, comma-separated, e.g. 5,50,500"),
    Override(
        "load", "warmup_s", _seconds_or_zero, "BENCH_WARMUP_S", "--warmup", "seconds discarded at the start of a step"
    ),
    Override("load", "measure_s", _seconds, "BENCH_MEASURE_S", "--measure", "seconds measured per step, > 0"),
    Override(
        "load", "drain_s", _seconds_or_zero, "BENCH_DRAIN_S", "--drain", "seconds in-flight requests may take to finish"
    ),
    Override(
        "load", "arrival", _arrival, "BENCH_ARRIVAL", "--arrival", "closed (users), open (rates) or both, one run"
    ),
    Override("load", "rates", _rates, "BENCH_RATES", "--rates", "open arrival rates, req/s, comma-separated"),
    Override(
        "load", "slo_p99_ms", _seconds, "BENCH_SLO_P99_MS", "--slo-p99-ms", "latency target of the capacity search, ms"
    ),
    Override("load", "repeats", _repeats, "BENCH_REPEATS", "--repeats", "times each step is measured, fresh each time"),
    Override(
        "load",
        "client_processes",
        _client_processes,
        "BENCH_CLIENT_PROCESSES",
        "--client-processes",
        "Locust worker processes (1: one plain process; N > 1: a master and N workers)",
    ),
    Override("run", "pin_cpus", _bool, "BENCH_PIN_CPUS", "--pin-cpus", "pin client and server to separate cores"),
    Override(
        "database",
        "url",
        str,
        "DATABASE_URL",
        "--database-url",
        'an existing PostgreSQL server (postgresql://...), for backend = "postgres"',
        secret=True,
    ),
    Override(
        "database",
        "allow_remote",
        _bool,
        "BENCH_ALLOW_REMOTE_DATABASE",
        "--allow-remote-database",
        "allow a database server that is not on this machine",
    ),
    Override("run", "results_dir", str, "BENCH_RESULTS_DIR", "--results-dir", "where run folders are created"),
    Override(
        "run",
        "nginx",
        str,
        "BENCH_NGINX",
        "--nginx",
        'the nginx binary for servers with proxy = "nginx" (default: nginx on PATH, then /usr/sbin/nginx)',
    ),
)


def apply_overrides(
    data: dict[str, Any], environ: Mapping[str, str], flags: Mapping[str, str | None]
) -> tuple[dict[str, Any], list[str]]:
    """Layer environment variables, then flags, over the scenario's own values. Returns what was applied."""
    merged = copy.deepcopy(data)
    applied: list[str] = []
    for override in OVERRIDES:
        for origin, text in (
            (f"environment variable {override.env}", environ.get(override.env)),
            (f"command-line flag {override.flag}", flags.get(override.flag)),
        ):
            if text is None or text == "":
                continue
            if override.section == "database" and merged.get("database", {}).get("backend") != "postgres":
                # DATABASE_URL is a common variable on a developer's machine: it only matters for a real database.
                continue
            try:
                value = override.parse(text)
            except ValueError as error:
                raise ScenarioError(f"{origin}: bad value {text!r}: {error} ({override.help})") from None
            section = merged.setdefault(override.section, {})
            if not isinstance(section, dict):
                raise ScenarioError(f"[{override.section}] must be a table")
            section[override.key] = value
            shown = mask_url(text) if override.secret else text
            applied.append(f"{override.section}.{override.key}={shown} ({origin})")
    return merged, applied


# --- validation ------------------------------------------------------------------------------------------------

TOP_KEYS = {
    "name", "description", "load", "workload", "database", "servers", "run", "burst", "slow_clients", "upstream",
}  # fmt: skip
# Counts cross into server processes as text and are read back as int there, so they must be whole here.
WHOLE_NUMBER_KEYS = {"listing_rows", "capacity", "seed", "pool_size", "max_connections"}
# The database's settings that are not numbers, and the type each must have.
DATABASE_TEXT_KEYS: dict[str, type] = {"backend": str, "url": str, "allow_remote": bool}


def _check_keys(where: str, table: Mapping[str, Any], allowed: set[str], path: Path) -> None:
    for key in table:
        if key not in allowed:
            raise ScenarioError(f"{path}: unknown key '{where}{key}' (allowed here: {', '.join(sorted(allowed))})")


def _table(data: Mapping[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ScenarioError(f"{path}: '{key}' must be a table ([{key}])")
    return value


def _positive(value: Any, name: str, path: Path, *, allow_zero: bool = False, integer: bool = False) -> None:
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type:
        kind = "a whole number" if integer else "a number"
        raise ScenarioError(f"{path}: '{name}' must be {kind}, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ScenarioError(f"{path}: '{name}' must be {bound}, got {value!r}")


def _build_load(table: dict[str, Any], path: Path) -> LoadConfig:  # noqa: PLR0912 (one check per key)
    _check_keys("load.", table, {f.name for f in fields(LoadConfig)}, path)
    values = dict(table)
    users = values.get("users", list(LoadConfig.users))
    if not isinstance(users, list) or not users:
        raise ScenarioError(f"{path}: 'load.users' must be a non-empty list of user counts, got {users!r}")
    for n in users:
        _positive(n, "load.users", path, integer=True)
    if len(set(users)) != len(users):
        raise ScenarioError(f"{path}: 'load.users' lists a user count twice: {users}")
    values["users"] = tuple(sorted(users))
    for key in ("warmup_s", "drain_s"):
        if key in values:
            _positive(values[key], f"load.{key}", path, allow_zero=True)
    for key in ("measure_s", "request_timeout_s"):
        if key in values:
            _positive(values[key], f"load.{key}", path)
    for key in ("page_weight", "short_weight"):
        if key in values:
            _positive(values[key], f"load.{key}", path, allow_zero=True, integer=True)
    if "repeats" in values:
        _positive(values["repeats"], "load.repeats", path, integer=True)
        if values["repeats"] > MAX_REPEATS:
            raise ScenarioError(f"{path}: 'load.repeats' is at most {MAX_REPEATS}, got {values['repeats']!r}")
    if "client_processes" in values:
        _positive(values["client_processes"], "load.client_processes", path, integer=True)
        if values["client_processes"] > MAX_CLIENT_PROCESSES:
            raise ScenarioError(
                f"{path}: 'load.client_processes' is at most {MAX_CLIENT_PROCESSES}, got {values['client_processes']!r}"
            )
    think = values.get("think_time_s", list(LoadConfig.think_time_s))
    if not (isinstance(think, list) and len(think) == 2):
        raise ScenarioError(f"{path}: 'load.think_time_s' must be [min, max] in seconds, got {think!r}")
    for t in think:
        _positive(t, "load.think_time_s", path, allow_zero=True)
    if think[0] > think[1]:
        raise ScenarioError(f"{path}: 'load.think_time_s' must be [min, max] with min <= max, got {think!r}")
    values["think_time_s"] = (float(think[0]), float(think[1]))
    _check_open(values, path)
    load = LoadConfig(**values)
    if load.page_weight + load.short_weight == 0:
        raise ScenarioError(f"{path}: 'load.page_weight' and 'load.short_weight' cannot both be 0")
    return load


def _check_open(values: dict[str, Any], path: Path) -> None:
    """The open-arrival keys, checked and normalised in ``values``: a rate list wherever arrivals are open."""
    arrival = values.get("arrival", "closed")
    if arrival not in ARRIVALS:
        raise ScenarioError(f"{path}: 'load.arrival' must be one of {', '.join(map(repr, ARRIVALS))}, got {arrival!r}")
    rates = values.get("rates", [])
    if not isinstance(rates, list | tuple):
        raise ScenarioError(f"{path}: 'load.rates' must be a list of requests per second, got {rates!r}")
    for rate in rates:
        _positive(rate, "load.rates", path)
    if len(set(rates)) != len(rates):
        raise ScenarioError(f"{path}: 'load.rates' lists a rate twice: {list(rates)}")
    if arrival != "closed" and not rates:
        raise ScenarioError(f"{path}: 'load.arrival' = {arrival!r} needs 'load.rates', e.g. rates = [10, 20, 40]")
    values["rates"] = tuple(sorted(float(r) for r in rates))
    process = values.get("arrival_process", "poisson")
    if process not in ARRIVAL_PROCESSES:
        raise ScenarioError(
            f"{path}: 'load.arrival_process' must be one of {', '.join(map(repr, ARRIVAL_PROCESSES))}, got {process!r}"
        )
    if "max_users" in values:
        _positive(values["max_users"], "load.max_users", path, integer=True)
        if values["max_users"] > MAX_OPEN_USERS:
            raise ScenarioError(f"{path}: 'load.max_users' is at most {MAX_OPEN_USERS}, got {values['max_users']!r}")
    if "max_lateness_s" in values:
        _positive(values["max_lateness_s"], "load.max_lateness_s", path)
    if "slo_p99_ms" in values:
        _positive(values["slo_p99_ms"], "load.slo_p99_ms", path)
        values["slo_p99_ms"] = float(values["slo_p99_ms"])


def _build_servers(value: Any, path: Path) -> tuple[ServerConfig, ...]:
    if not isinstance(value, list) or not value:
        raise ScenarioError(f"{path}: 'servers' must list at least one [[servers]] table")
    servers: list[ServerConfig] = []
    for index, table in enumerate(value):
        where = f"servers[{index}]"
        if not isinstance(table, dict):
            raise ScenarioError(f"{path}: '{where}' must be a table")
        _check_keys(f"{where}.", table, {f.name for f in fields(ServerConfig)}, path)
        server = table.get("server")
        if server not in SERVER_TYPES:
            raise ScenarioError(
                f"{path}: '{where}.server' is {server!r}; known servers: {', '.join(sorted(SERVER_TYPES))}"
            )
        name = table.get("name", server)
        if not isinstance(name, str) or not name or not name.replace("-", "").replace("_", "").isalnum():
            raise ScenarioError(f"{path}: '{where}.name' must be letters, digits, '-' or '_', got {name!r}")
        # ServerConfig checks the combination itself (it is also rebuilt from run.json); this only says where.
        try:
            servers.append(ServerConfig(**{**table, "name": name}))
        except ServerSettingError as error:
            raise ScenarioError(f"{path}: '{where}.{error.key}' of server {name!r} {error.detail}") from None
    names = [s.name for s in servers]
    if len(set(names)) != len(names):
        raise ScenarioError(f"{path}: two [[servers]] share a name: {names}")
    return tuple(servers)


# A burst stage above this many users would measure the client, not the server, on this kind of machine.
MAX_BURST_USERS = 5000


def _build_burst(table: dict[str, Any], path: Path) -> BurstConfig:
    _check_keys("burst.", table, {f.name for f in fields(BurstConfig)}, path)
    stages = table.get("stages", [])
    if not isinstance(stages, list):
        raise ScenarioError(f"{path}: 'burst.stages' must be a list of [users, seconds] pairs")
    parsed: list[tuple[int, float]] = []
    for index, stage in enumerate(stages):
        where = f"burst.stages[{index}]"
        if not isinstance(stage, list) or len(stage) != 2:
            raise ScenarioError(f"{path}: '{where}' must be a [users, seconds] pair, got {stage!r}")
        users, seconds = stage
        _positive(users, f"{where} users", path, integer=True)
        _positive(seconds, f"{where} seconds", path)
        if users > MAX_BURST_USERS:
            raise ScenarioError(f"{path}: '{where}' asks for {users} users; at most {MAX_BURST_USERS}")
        parsed.append((users, float(seconds)))
    drain = table.get("drain_s", BurstConfig.drain_s)
    _positive(drain, "burst.drain_s", path, allow_zero=True)
    return BurstConfig(stages=tuple(parsed), drain_s=float(drain))


# More slow connections than this would measure the harness's file descriptors, not the server.
MAX_SLOW_CLIENTS = 1000


def _build_slow_clients(table: dict[str, Any], path: Path) -> SlowClientsConfig:
    """[slow_clients]: every key checked and named; counts start at 0 (the server without slow clients, the
    baseline every other K is read against) and rise."""
    _check_keys("slow_clients.", table, {f.name for f in fields(SlowClientsConfig)}, path)
    values = dict(table)
    if "users" in values:
        _positive(values["users"], "slow_clients.users", path, integer=True)
        if values["users"] > MAX_BURST_USERS:
            raise ScenarioError(f"{path}: 'slow_clients.users' is at most {MAX_BURST_USERS}, got {values['users']!r}")
    counts = values.get("counts", [])
    if not isinstance(counts, list):
        raise ScenarioError(f"{path}: 'slow_clients.counts' must be a list of whole numbers, e.g. [0, 2, 4, 8]")
    for n in counts:
        _positive(n, "slow_clients.counts", path, allow_zero=True, integer=True)
        if n > MAX_SLOW_CLIENTS:
            raise ScenarioError(f"{path}: 'slow_clients.counts' is at most {MAX_SLOW_CLIENTS} each, got {n!r}")
    if counts and counts[0] != 0:
        raise ScenarioError(
            f"{path}: 'slow_clients.counts' must start with 0 (the server without slow clients), got {counts!r}"
        )
    if any(b <= a for a, b in itertools.pairwise(counts)):
        raise ScenarioError(f"{path}: 'slow_clients.counts' must rise, each count once, got {counts!r}")
    values["counts"] = tuple(counts)
    style = values.get("style", SlowClientsConfig.style)
    if style not in SLOW_STYLES:
        known = " | ".join(f'"{s}"' for s in SLOW_STYLES)
        raise ScenarioError(f"{path}: 'slow_clients.style' is {style!r}; known: {known}")
    for key in ("before_s", "hold_s", "after_s", "byte_interval_s"):
        if key in values:
            _positive(values[key], f"slow_clients.{key}", path)
            values[key] = float(values[key])
    if "drain_s" in values:
        _positive(values["drain_s"], "slow_clients.drain_s", path, allow_zero=True)
        values["drain_s"] = float(values["drain_s"])
    return SlowClientsConfig(**values)


def build_config(data: Mapping[str, Any], path: Path, sha256: str, overrides: tuple[str, ...] = ()) -> RunConfig:
    """Validate a scenario (with overrides already applied) into the frozen config, or raise ScenarioError."""
    _check_keys("", data, TOP_KEYS, path)
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        raise ScenarioError(f"{path}: 'name' must be letters, digits, '-' or '_', got {name!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ScenarioError(f"{path}: 'description' must be a string")
    load = _build_load(_table(data, "load", path), path)

    workload_table = _table(data, "workload", path)
    _check_keys("workload.", workload_table, {f.name for f in fields(WorkloadConfig)}, path)
    database_table = _table(data, "database", path)
    _check_keys("database.", database_table, {f.name for f in fields(DatabaseConfig)}, path)
    for section, table in (("workload", workload_table), ("database", database_table)):
        for key, value in table.items():
            if section == "database" and key in DATABASE_TEXT_KEYS:
                if not isinstance(value, DATABASE_TEXT_KEYS[key]):
                    kind = "true or false" if DATABASE_TEXT_KEYS[key] is bool else "a string"
                    raise ScenarioError(f"{path}: 'database.{key}' must be {kind}, got {value!r}")
                continue
            integer = key in WHOLE_NUMBER_KEYS
            _positive(value, f"{section}.{key}", path, allow_zero=True, integer=integer)
    try:
        workload = WorkloadConfig(**workload_table)
        database = DatabaseConfig(**database_table)
    except (ConfigError, TypeError) as error:
        raise ScenarioError(f"{path}: {error}") from None

    run_table = _table(data, "run", path)
    _check_keys("run.", run_table, {f.name for f in fields(RunSettings)}, path)
    run = RunSettings(**run_table)
    _positive(run.server_cores, "run.server_cores", path, integer=True)
    _positive(run.startup_timeout_s, "run.startup_timeout_s", path)
    if not isinstance(run.pin_cpus, bool):
        raise ScenarioError(f"{path}: 'run.pin_cpus' must be true or false")
    if not isinstance(run.nginx, str):
        raise ScenarioError(
            f"{path}: 'run.nginx' must be a string (the nginx binary's path, or empty to look it up), got {run.nginx!r}"
        )

    return RunConfig(
        name=name,
        description=description,
        source=str(path),
        source_sha256=sha256,
        load=load,
        workload=workload,
        database=database,
        servers=_servers_for(database, _build_servers(data.get("servers"), path), path),
        run=run,
        overrides=overrides,
        burst=_build_burst(_table(data, "burst", path), path),
        slow_clients=_build_slow_clients(_table(data, "slow_clients", path), path),
        upstream=_build_upstream(_table(data, "upstream", path), database, load, path),
    )


# The [upstream] keys a scenario may set (``url`` is the harness's own service's, handed to the servers).
UPSTREAM_KEYS = {f.name for f in fields(UpstreamConfig)} - {"url"}


def _build_upstream(table: dict[str, Any], database: DatabaseConfig, load: LoadConfig, path: Path) -> UpstreamConfig:
    """[upstream]: only with backend = "http", every key checked and named, and a call's timeout shorter than the
    client's, so Locust sees the app's 504 rather than its own timeout."""
    if not table:
        return UpstreamConfig()
    if database.backend != "http":
        raise ScenarioError(f'{path}: [upstream] applies only to [database] backend = "http"')
    _check_keys("upstream.", table, UPSTREAM_KEYS, path)
    try:
        upstream = UpstreamConfig(**table)
    except ConfigError as error:
        raise ScenarioError(f"{path}: upstream.{error}") from None
    if upstream.timeout_s >= load.request_timeout_s:
        raise ScenarioError(
            f"{path}: 'upstream.timeout_s' ({upstream.timeout_s:g} s) must be shorter than 'load.request_timeout_s' "
            f"({load.request_timeout_s:g} s), or the client gives up before the app can answer 504"
        )
    return upstream


def _servers_for(database: DatabaseConfig, servers: tuple[ServerConfig, ...], path: Path) -> tuple[ServerConfig, ...]:
    """Each server's driver, as the backend needs: none with the simulated database, the default one where a
    PostgreSQL or http server names none (so run.json says which ran), and no gevent worker with either."""
    if database.backend == "http":
        return tuple(
            _http_driver(spec, f"{path}: servers[{index}] ({spec.name})") for index, spec in enumerate(servers)
        )
    out = []
    for index, spec in enumerate(servers):
        where = f"{path}: servers[{index}] ({spec.name})"
        if database.backend != "postgres":
            if spec.driver is not None:
                raise ScenarioError(f'{where}: driver applies only to [database] backend = "postgres" or "http"')
            out.append(spec)
            continue
        if spec.driver is not None and spec.driver not in DRIVERS[spec.mode]:
            known = " | ".join(f'"{d}"' for d in DRIVERS[spec.mode])
            raise ScenarioError(
                f"{where}: driver {spec.driver!r} is not a PostgreSQL driver; {spec.mode} takes {known}"
            )
        if spec.driver is None and DEFAULT_DRIVER not in DRIVERS[spec.mode]:
            raise ScenarioError(
                f"{where}: {spec.server} {spec.mode} cannot wait on PostgreSQL (no driver yields to it); "
                f'driver = "{SIMULATED_DRIVER}" measures it on the simulated database beside the others'
            )
        out.append(spec if spec.driver is not None else replace(spec, driver=DEFAULT_DRIVER))
    return tuple(out)


def _http_driver(spec: ServerConfig, where: str) -> ServerConfig:
    """An http server's client: one its mode can wait on, httpx where none is named."""
    allowed = HTTP_DRIVERS[spec.mode]
    if spec.driver is None:
        if DEFAULT_CLIENT not in allowed:
            raise ScenarioError(
                f"{where}: {spec.server} {spec.mode} cannot call the upstream (no client yields to it); "
                f'driver = "{SIMULATED_DRIVER}" measures it on the simulated database beside the others'
            )
        return replace(spec, driver=DEFAULT_CLIENT)
    if spec.driver not in allowed:
        known = " | ".join(f'"{d}"' for d in allowed)
        raise ScenarioError(f"{where}: driver {spec.driver!r} is not an upstream client; {spec.mode} takes {known}")
    return spec


def load_config(
    scenario: str,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, str | None] | None = None,
) -> RunConfig:
    """The whole flow: find the file, read it, layer the overrides, validate."""
    path = resolve_scenario(scenario)
    data, sha = read_scenario(path)
    merged, applied = apply_overrides(data, environ or {}, flags or {})
    return build_config(merged, path, sha, tuple(applied))


def resume_config(
    saved: Mapping[str, Any],
    run_dir: Path,
    environ: Mapping[str, str],
    flags: Mapping[str, str | None],
    scenario: str | None = None,
) -> RunConfig:
    """The configuration to finish an unfinished run with: the run's own, provided nothing has changed since.

    A resumed run must measure its remaining steps exactly as it measured the first ones, so a changed scenario
    file, or an override that would change any setting, is refused rather than silently mixed in.
    """
    config = config_from_dict(saved)
    path = Path(config.source)
    if scenario is not None and resolve_scenario(scenario).resolve() != path.resolve():
        raise ScenarioError(
            f"{run_dir} was started from {path}, not {scenario}; a run is resumed with its own scenario only"
        )
    if not path.is_file():
        raise ScenarioError(f"{run_dir} was started from {path}, which no longer exists; it cannot be resumed")
    data, sha = read_scenario(path)
    if sha != config.source_sha256:
        raise ScenarioError(
            f"{path} has changed since {run_dir.name} started (sha256 {config.source_sha256[:12]}… then, "
            f"{sha[:12]}… now); its remaining steps would measure something else. Start a new run instead."
        )
    merged, _ = apply_overrides(data, environ, flags)
    current = build_config(merged, path, sha)
    # Compared as recorded (a saved URL's password is masked); the resumed run keeps the URL given now.
    changed = [
        name
        for name in ("load", "workload", "database", "servers", "burst", "slow_clients", "upstream")
        if current.to_dict()[name] != config.to_dict()[name]
    ]
    changed += [
        f"run.{key}"
        for key, value in asdict(current.run).items()
        if key != "results_dir" and value != asdict(config.run)[key]
    ]
    if changed:
        raise ScenarioError(
            f"resuming {run_dir.name} with different settings ({', '.join(changed)}) would mix two experiments; "
            "drop the overrides, or start a new run"
        )
    return replace(config, database=current.database, run=replace(config.run, results_dir=str(run_dir.parent)))
