"""Scenario files, overrides and the command line's answers to bad input (nothing is started here)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path

import psutil
import pytest

from runner.cli import main
from runner.config import (
    HARNESS_CONNECTIONS,
    LoadConfig,
    RunConfig,
    ScenarioError,
    ServerConfig,
    ServerSettingError,
    check_connections,
    config_from_dict,
    load_config,
    mask_url,
)

SERVERS = """
[[servers]]
name = "sync"
server = "gunicorn"
workers = 2

[[servers]]
name = "async"
server = "uvicorn"
"""

PG = '[database]\nbackend = "postgres"\n'
HTTP = '[database]\nbackend = "http"\n'

LOAD = """
[load]
users = [5, 10]
warmup_s = 1
measure_s = 2
drain_s = 1
think_time_s = [1, 2]
"""


def scenario(tmp_path: Path, *, top: str = "", load: str = LOAD, servers: str = SERVERS, extra: str = "") -> Path:
    """Write a small scenario; each part may be replaced to make one thing wrong."""
    path = tmp_path / "scenario.toml"
    path.write_text(f'name = "small"\n{top}\n{load}\n{extra}\n{servers}\n', encoding="utf-8")
    return path


def load_error(
    path: Path, environ: Mapping[str, str] | None = None, flags: Mapping[str, str | None] | None = None
) -> str:
    with pytest.raises(ScenarioError) as caught:
        load_config(str(path), environ=environ, flags=flags)
    return str(caught.value)


@pytest.fixture(autouse=True)
def no_bench_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads os.environ; a BENCH_* variable of the machine running the tests must not leak in."""
    for name in (
        "BENCH_USERS",
        "BENCH_WARMUP_S",
        "BENCH_MEASURE_S",
        "BENCH_DRAIN_S",
        "BENCH_REPEATS",
        "BENCH_CLIENT_PROCESSES",
        "BENCH_PIN_CPUS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("BENCH_RESULTS_DIR", raising=False)


# --- the shipped scenarios ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "quick", "sized-sync"])
def test_shipped_scenario_loads(name: str) -> None:
    config = load_config(name)
    assert config.name == name
    assert {s.kind for s in config.servers} == {"sync", "async"}
    assert config.load.users == tuple(sorted(config.load.users))
    assert Path(config.source).name == f"{name}.toml"
    assert len(config.source_sha256) == 64


def test_quick_scenario_has_three_user_levels() -> None:
    assert load_config("quick").load.users == (5, 50, 500)


def test_loaded_config_and_every_part_of_it_are_frozen() -> None:
    config = load_config("default")
    for part in (config, config.load, config.workload, config.database, config.servers[0], config.run):
        name = dataclasses.fields(part)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(part, name, getattr(part, name))


def test_loaded_config_uses_tuples_not_lists() -> None:
    config = load_config("default")
    assert isinstance(config.load.users, tuple)
    assert isinstance(config.load.think_time_s, tuple)
    assert isinstance(config.servers, tuple)


def test_small_scenario_loads_with_defaults_for_what_it_leaves_out(tmp_path: Path) -> None:
    config = load_config(str(scenario(tmp_path)))
    assert config.load.users == (5, 10)
    assert config.load.request_timeout_s == LoadConfig.request_timeout_s
    assert config.servers == (
        ServerConfig(name="sync", server="gunicorn", workers=2),
        ServerConfig(name="async", server="uvicorn", workers=1),
    )


def test_user_levels_are_sorted(tmp_path: Path) -> None:
    path = scenario(tmp_path, load="[load]\nusers = [50, 5, 10]")
    assert load_config(str(path)).load.users == (5, 10, 50)


# --- the server matrix ---------------------------------------------------------------------------------------------

MATRIX = """
[[servers]]
name = "flask-sync"
server = "gunicorn"
workers = 3

[[servers]]
name = "flask-gthread"
server = "gunicorn"
worker_class = "gthread"
workers = 3
threads = 8

[[servers]]
name = "flask-gevent"
server = "gunicorn"
worker_class = "gevent"
connections = 500

[[servers]]
name = "fastapi-async"
server = "uvicorn"
workers = 2

[[servers]]
name = "fastapi-def"
server = "uvicorn"
endpoints = "def"
thread_limit = 8
workers = 2

[[servers]]
name = "fastapi-def-default"
server = "uvicorn"
endpoints = "def"

[[servers]]
name = "fastapi-blocking"
server = "uvicorn"
endpoints = "blocking"
workers = 2
"""

# name -> (kind, processes, slots, describe())
MATRIX_EXPECTED = {
    "flask-sync": ("sync", 3, 3, "3 sync workers"),
    "flask-gthread": ("sync", 3, 24, "3 workers x 8 threads (gthread)"),
    "flask-gevent": ("async", 1, 500, "1 worker x 500 connections (gevent)"),
    "fastapi-async": ("async", 2, None, "2 event loops, async def endpoints"),
    "fastapi-def": ("async", 2, 16, "2 event loops, def endpoints in an 8-thread pool each"),
    "fastapi-def-default": ("async", 1, 40, "1 event loop, def endpoints in a 40-thread pool"),
    "fastapi-blocking": ("async", 2, 2, "2 event loops, blocking call inside async def"),
}


def test_a_matrix_of_server_configurations_loads(tmp_path: Path) -> None:
    servers = {s.name: s for s in load_config(str(scenario(tmp_path, servers=MATRIX))).servers}
    assert list(servers) == list(MATRIX_EXPECTED)
    for name, (kind, processes, slots, text) in MATRIX_EXPECTED.items():
        spec = servers[name]
        assert (spec.kind, spec.processes, spec.slots, spec.describe()) == (kind, processes, slots, text), name
    assert servers["flask-gthread"].mode == "gthread"
    assert servers["flask-gevent"].connections == 500
    assert servers["fastapi-def-default"].thread_limit == 40  # AnyIO's own default


def test_left_out_settings_mean_what_they_meant_before_the_matrix(tmp_path: Path) -> None:
    """Defaults fill in only what applies: the other mode's sizes stay None, so run.json says what ran."""
    sync, asyn = load_config(str(scenario(tmp_path))).servers
    assert sync == ServerConfig(name="sync", server="gunicorn", workers=2, worker_class="sync")
    assert (sync.threads, sync.connections, sync.endpoints, sync.thread_limit) == (None, None, None, None)
    assert asyn == ServerConfig(name="async", server="uvicorn", endpoints="async")
    assert (asyn.worker_class, asyn.threads, asyn.connections, asyn.thread_limit) == (None, None, None, None)
    assert (sync.slots, asyn.slots) == (2, None)


def test_a_run_json_saved_before_the_matrix_rebuilds_unchanged(tmp_path: Path) -> None:
    """Old run.json files list servers with name, server and workers only; they must mean what they ran."""
    config = load_config(str(scenario(tmp_path)))
    saved = config.to_dict()
    saved["servers"] = [
        {"name": "sync", "server": "gunicorn", "workers": 2},
        {"name": "async", "server": "uvicorn", "workers": 1},
    ]
    assert config_from_dict(saved) == config


KEEP_ALIVE = """
[[servers]]
name = "gthread-off"
server = "gunicorn"
worker_class = "gthread"
threads = 4
keep_alive_s = 0

[[servers]]
name = "gevent-default"
server = "gunicorn"
worker_class = "gevent"

[[servers]]
name = "uvicorn-off"
server = "uvicorn"
keep_alive_s = 0

[[servers]]
name = "uvicorn-long"
server = "uvicorn"
endpoints = "def"
keep_alive_s = 30

[[servers]]
name = "sync"
server = "gunicorn"
"""


def test_keep_alive_is_read_per_server_and_left_out_means_five_seconds_except_on_the_sync_worker(
    tmp_path: Path,
) -> None:
    """5 s is what every run before the setting ran with (uvicorn's default, sync_app/gunicorn.conf.py's keepalive);
    the sync worker keeps None, since it has no keep-alive to set."""
    servers = {s.name: s for s in load_config(str(scenario(tmp_path, servers=KEEP_ALIVE))).servers}
    assert {name: s.keep_alive_s for name, s in servers.items()} == {
        "gthread-off": 0, "gevent-default": 5, "uvicorn-off": 0, "uvicorn-long": 30, "sync": None,
    }  # fmt: skip


def test_a_run_json_saved_before_keep_alive_rebuilds_as_what_it_ran(tmp_path: Path) -> None:
    config = load_config(str(scenario(tmp_path, servers=MATRIX)))
    saved = config.to_dict()
    for server in saved["servers"]:
        del server["keep_alive_s"]
    assert config_from_dict(saved) == config
    assert {s.keep_alive_s for s in config.servers if s.mode != "sync"} == {5}


def test_keep_alive_is_checked_when_built_in_code_too() -> None:
    with pytest.raises(ServerSettingError) as caught:
        ServerConfig("s", "gunicorn", 3, keep_alive_s=5)
    assert caught.value.key == "keep_alive_s"
    for bad in (-1, True, 1.5):
        with pytest.raises(ServerSettingError):
            ServerConfig("u", "uvicorn", keep_alive_s=bad)  # type: ignore[arg-type]


THINK = (2.0, 8.0)
REUSE_HALF = (
    "requests after a shorter think time reuse their user's connection, about 50% of them with think times of 2-8 s"
)
NEW_EACH = "each request opens a new connection"


@pytest.mark.parametrize(
    ("spec", "think", "text"),
    [
        (ServerConfig("s", "gunicorn", 3), THINK,
         f"no keep-alive: the sync worker closes the connection after every response, so {NEW_EACH}"),
        (ServerConfig("t", "gunicorn", 3, worker_class="gthread", threads=8, keep_alive_s=0), THINK,
         f"keep-alive off: every response says `Connection: close`, so {NEW_EACH}"),
        (ServerConfig("u", "uvicorn", keep_alive_s=0), None,
         f"keep-alive off: every response says `Connection: close`, so {NEW_EACH}"),
        (ServerConfig("t", "gunicorn", 3, worker_class="gthread", threads=8), THINK,
         f"keep-alive: an idle connection is closed after 5 s (each worker keeps at most 992 idle); {REUSE_HALF}"),
        (ServerConfig("g", "gunicorn", worker_class="gevent", connections=600), THINK,
         "keep-alive: an idle connection is closed after 5 s (an open one, idle or not, holds one of the worker's "
         f"600 connections); {REUSE_HALF}"),
        (ServerConfig("u", "uvicorn"), THINK, f"keep-alive: an idle connection is closed after 5 s; {REUSE_HALF}"),
        (ServerConfig("u", "uvicorn"), None, "keep-alive: an idle connection is closed after 5 s"),
        (ServerConfig("d", "uvicorn", endpoints="def", keep_alive_s=3), (2.0, 6.0),
         "keep-alive: an idle connection is closed after 3 s; requests after a shorter think time reuse their "
         "user's connection, about 25% of them with think times of 2-6 s"),
        (ServerConfig("u", "uvicorn", keep_alive_s=10), THINK,
         "keep-alive: an idle connection is closed after 10 s; every think time (2-8 s) is shorter, so each request "
         "after a user's first reuses its connection"),
        (ServerConfig("u", "uvicorn", keep_alive_s=1), THINK,
         f"keep-alive: an idle connection is closed after 1 s; every think time (2-8 s) is longer, so {NEW_EACH}"),
        (ServerConfig("u", "uvicorn", keep_alive_s=5), (5.0, 5.0),
         f"keep-alive: an idle connection is closed after 5 s; every think time (5 s) is longer, so {NEW_EACH}"),
        (ServerConfig("t", "gunicorn", worker_class="gthread", threads=1000), THINK,
         f"keep-alive 5 s asked, but with 1000 threads gunicorn keeps no idle connection (worker_connections 1000), "
         f"so {NEW_EACH}"),
    ],
)  # fmt: skip
def test_each_configuration_states_what_it_does_with_a_connection(
    spec: ServerConfig, think: tuple[float, float] | None, text: str
) -> None:
    """The one statement the report makes about connections, from the servers' own code (see keep_alive_text)."""
    assert spec.keep_alive_text(think) == text


def test_a_matrix_round_trips_through_json(tmp_path: Path) -> None:
    config = load_config(str(scenario(tmp_path, servers=MATRIX)))
    assert config_from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize(
    ("spec", "text", "kind", "slots"),
    [
        (ServerConfig("s", "gunicorn", 3), "3 sync workers", "sync", 3),
        (ServerConfig("t", "gunicorn", 2, worker_class="gthread", threads=4), "2 workers x 4 threads (gthread)",
         "sync", 8),
        (ServerConfig("g", "gunicorn", worker_class="gevent"), "1 worker x 1000 connections (gevent)", "async", 1000),
        (ServerConfig("a", "uvicorn", 1), "1 event loop, async def endpoints", "async", None),
        (ServerConfig("d", "uvicorn", endpoints="def", thread_limit=7),
         "1 event loop, def endpoints in a 7-thread pool", "async", 7),
        (ServerConfig("b", "uvicorn", endpoints="blocking"), "1 event loop, blocking call inside async def",
         "async", 1),
    ],
)  # fmt: skip
def test_each_configuration_says_what_it_is_its_kind_and_how_many_requests_fit(
    spec: ServerConfig, text: str, kind: str, slots: int | None
) -> None:
    """The words every report uses, and the kind and slot count the model and the charts use, come from here."""
    assert (spec.describe(), spec.kind, spec.slots) == (text, kind, slots)


def test_a_server_config_built_in_code_is_checked_too() -> None:
    """run.json and code build ServerConfig directly: a combination the scenario would refuse is refused here."""
    with pytest.raises(ServerSettingError) as caught:
        ServerConfig("x", "gunicorn", threads=4)
    assert caught.value.key == "threads"
    with pytest.raises(ServerSettingError):
        ServerConfig("x", "uvicorn", endpoints="def", thread_limit=0)


# --- bad scenarios: the message names the file and the key -----------------------------------------------------


GUNICORN = '[[servers]]\nname = "g"\nserver = "gunicorn"\n'
UVICORN = '[[servers]]\nname = "u"\nserver = "uvicorn"\n'
DUPLICATE_NAMES = '[[servers]]\nname = "same"\nserver = "gunicorn"\n\n[[servers]]\nname = "same"\nserver = "uvicorn"\n'

# Each case: the parts of the scenario that are wrong, and what the message must name besides the file.
REFUSED = [
    pytest.param({"top": "colour = 'blue'"}, ["colour"], id="unknown top-level key"),
    pytest.param({"load": LOAD + "spawn_rate = 10\n"}, ["load.spawn_rate"], id="unknown load key"),
    pytest.param({"servers": SERVERS + "processes = 4\n"}, ["servers[1].processes"], id="unknown server key"),
    pytest.param({"load": "[load]\nusers = [0, 5]"}, ["load.users"], id="users [0, 5]"),
    pytest.param({"load": "[load]\nusers = [-5]"}, ["load.users"], id="users [-5]"),
    pytest.param({"load": "[load]\nusers = [5, 2.5]"}, ["load.users"], id="users [5, 2.5]"),
    pytest.param({"load": "[load]\nusers = [true]"}, ["load.users"], id="users [true]"),
    pytest.param({"load": '[load]\nusers = ["5"]'}, ["load.users"], id='users ["5"]'),
    pytest.param({"load": "[load]\nusers = []"}, ["load.users"], id="users []"),
    pytest.param({"load": "[load]\nusers = [5, 10, 5]"}, ["load.users"], id="users [5, 10, 5]"),
    pytest.param({"load": "[load]\nusers = [5]\nmeasure_s = 0"}, ["load.measure_s"], id="measure_s 0"),
    pytest.param({"load": "[load]\nusers = [5]\nmeasure_s = -1"}, ["load.measure_s"], id="measure_s -1"),
    pytest.param({"load": "[load]\nusers = [5]\nmeasure_s = -0.5"}, ["load.measure_s"], id="measure_s -0.5"),
    pytest.param({"load": "[load]\nusers = [5]\nmeasure_s = nan"}, ["load.measure_s"], id="measure_s nan"),
    pytest.param({"load": "[load]\nusers = [5]\nmeasure_s = inf"}, ["load.measure_s"], id="measure_s inf"),
    pytest.param({"load": '[load]\nusers = [5]\nmeasure_s = "15"'}, ["load.measure_s"], id='measure_s "15"'),
    pytest.param({"load": "[load]\nusers = [5]\nwarmup_s = -1"}, ["load.warmup_s"], id="negative warmup"),
    pytest.param(
        {"load": "[load]\nusers = [5]\nthink_time_s = [8, 2]"}, ["load.think_time_s"], id="think_time_s [8, 2]"
    ),
    pytest.param({"load": "[load]\nusers = [5]\nthink_time_s = [1]"}, ["load.think_time_s"], id="think_time_s [1]"),
    pytest.param(
        {"load": "[load]\nusers = [5]\nthink_time_s = [1, 2, 3]"}, ["load.think_time_s"], id="think_time_s [1, 2, 3]"
    ),
    pytest.param(
        {"load": "[load]\nusers = [5]\nthink_time_s = [-1, 2]"}, ["load.think_time_s"], id="think_time_s [-1, 2]"
    ),
    pytest.param({"load": "[load]\nusers = [5]\nthink_time_s = 3"}, ["load.think_time_s"], id="think_time_s 3"),
    pytest.param(
        {"load": "[load]\nusers = [5]\npage_weight = 0\nshort_weight = 0"}, ["page_weight"], id="both weights zero"
    ),
    pytest.param(
        {"servers": '[[servers]]\nname = "web"\nserver = "nginx"\n'},
        ["servers[0].server", "nginx"],
        id="unknown server type",
    ),
    pytest.param({"servers": DUPLICATE_NAMES}, ["servers", "same"], id="duplicate server names"),
    pytest.param({"servers": ""}, ["servers"], id="no servers"),
    pytest.param(
        {"servers": '[[servers]]\nserver = "gunicorn"\nworkers = 0\n'}, ["servers[0].workers"], id="workers 0"
    ),
    pytest.param(
        {"servers": '[[servers]]\nserver = "gunicorn"\nworkers = -2\n'}, ["servers[0].workers"], id="workers -2"
    ),
    pytest.param(
        {"servers": '[[servers]]\nserver = "gunicorn"\nworkers = 1.5\n'}, ["servers[0].workers"], id="workers 1.5"
    ),
    pytest.param({"extra": "[workload]\nlisting_ms = -5\n"}, ["workload.listing_ms"], id="workload out of range"),
    pytest.param({"extra": "[database]\npool_sise = 5\n"}, ["database.pool_sise"], id="unknown database key"),
    pytest.param({"extra": "[database]\ncapacity = 2.5\n"}, ["database.capacity"], id="fractional capacity"),
    pytest.param({"extra": "[workload]\nlisting_rows = 2.5\n"}, ["workload.listing_rows"], id="fractional rows"),
    # The server matrix: each size belongs to one mode, each mode key to one server.
    pytest.param({"servers": GUNICORN + "threads = 4\n"}, ["servers[0].threads", "gthread"], id="threads on sync"),
    pytest.param(
        {"servers": GUNICORN + 'worker_class = "gevent"\nthreads = 4\n'},
        ["servers[0].threads", "gthread"],
        id="threads on gevent",
    ),
    pytest.param({"servers": UVICORN + "threads = 4\n"}, ["servers[0].threads", "gunicorn"], id="threads on uvicorn"),
    pytest.param(
        {"servers": GUNICORN + 'worker_class = "gthread"\nconnections = 100\n'},
        ["servers[0].connections", "gevent"],
        id="connections on gthread",
    ),
    pytest.param({"servers": UVICORN + "thread_limit = 8\n"}, ["servers[0].thread_limit", "def"], id="limit on async"),
    pytest.param(
        {"servers": UVICORN + 'endpoints = "blocking"\nthread_limit = 8\n'},
        ["servers[0].thread_limit", "def"],
        id="limit on blocking",
    ),
    pytest.param(
        {"servers": GUNICORN + "thread_limit = 8\n"}, ["servers[0].thread_limit", "uvicorn"], id="limit on gunicorn"
    ),
    pytest.param(
        {"servers": UVICORN + 'worker_class = "gevent"\n'},
        ["servers[0].worker_class", "endpoints"],
        id="class on uvicorn",
    ),
    pytest.param(
        {"servers": GUNICORN + 'endpoints = "def"\n'},
        ["servers[0].endpoints", "worker_class"],
        id="endpoints on gunicorn",
    ),
    pytest.param(
        {"servers": GUNICORN + 'worker_class = "eventlet"\n'}, ["servers[0].worker_class", "eventlet"], id="eventlet"
    ),
    pytest.param({"servers": UVICORN + 'endpoints = "sync"\n'}, ["servers[0].endpoints", "sync"], id="endpoints sync"),
    pytest.param({"servers": UVICORN + "endpoints = 1\n"}, ["servers[0].endpoints"], id="endpoints 1"),
    pytest.param(
        {"servers": GUNICORN + 'worker_class = "gthread"\nthreads = 0\n'}, ["servers[0].threads"], id="threads 0"
    ),
    pytest.param(
        {"servers": GUNICORN + 'worker_class = "gthread"\nthreads = 2.5\n'}, ["servers[0].threads"], id="threads 2.5"
    ),
    pytest.param(
        {"servers": GUNICORN + 'worker_class = "gthread"\nthreads = true\n'}, ["servers[0].threads"], id="threads true"
    ),
    pytest.param(
        {"servers": GUNICORN + 'worker_class = "gevent"\nconnections = -1\n'},
        ["servers[0].connections"],
        id="connections -1",
    ),
    pytest.param(
        {"servers": UVICORN + 'endpoints = "def"\nthread_limit = 0\n'}, ["servers[0].thread_limit"], id="limit 0"
    ),
    pytest.param(
        {"servers": SERVERS + 'endpoints = "def"\nthreads = 2\n'}, ["servers[1].threads"], id="second server named"
    ),  # The real database: a driver belongs to PostgreSQL, and to a mode that can wait on it.
    pytest.param({"extra": '[database]\nbackend = "mysql"\n'}, ["backend", "simulated, postgres"], id="backend"),
    pytest.param({"servers": SERVERS + 'driver = "asyncpg"\n'}, ["servers[1]", "driver", "postgres"], id="driver sim"),
    pytest.param(
        {"servers": GUNICORN + "keep_alive_s = 0\n"},
        ["servers[0].keep_alive_s", "'g'", "sync worker", "closes every connection"],
        id="keep-alive on the sync worker",
    ),
    pytest.param(
        {"servers": SERVERS + "keep_alive_s = -1\n"}, ["servers[1].keep_alive_s", "'async'", ">= 0"], id="keep -1"
    ),
    pytest.param({"servers": UVICORN + "keep_alive_s = 2.5\n"}, ["servers[0].keep_alive_s", "2.5"], id="keep 2.5"),
    pytest.param({"servers": UVICORN + "keep_alive_s = false\n"}, ["servers[0].keep_alive_s"], id="keep false"),
    pytest.param({"servers": UVICORN + 'keep_alive_s = "5"\n'}, ["servers[0].keep_alive_s"], id='keep "5"'),
    pytest.param(
        {"extra": PG, "servers": SERVERS.replace("workers = 2", 'workers = 2\ndriver = "asyncpg"')},
        ["servers[0].driver", "'asyncpg'", '"psycopg" | "sqlalchemy"'],
        id="asyncpg on gunicorn",
    ),
    pytest.param(
        {"extra": PG, "servers": SERVERS.replace("workers = 2", 'workers = 2\nworker_class = "gevent"')},
        ["servers[0]", "gevent", "PostgreSQL"],
        id="gevent with postgres",
    ),
    pytest.param({"extra": '[database]\nurl = "postgresql://h/db"\n'}, ["url", '"postgres"'], id="url simulated"),
    pytest.param({"extra": PG + 'allow_remote = "yes"\n'}, ["database.allow_remote", "true or false"], id="remote"),
    pytest.param({"extra": PG + "pool_size = 0\n"}, ["pool_size", "at least 1"], id="pool size 0"),
    pytest.param({"extra": PG + "capacity = 4\n"}, ["capacity", "pool_size"], id="capacity with postgres"),
    # The upstream service: its table only with backend = "http", each key named, clients by the mode's face.
    pytest.param({"extra": "[upstream]\ncapacity = 4\n"}, ["[upstream]", '"http"'], id="upstream without http"),
    pytest.param({"extra": HTTP + "[upstream]\ncapacity = -1\n"}, ["upstream.capacity"], id="upstream capacity"),
    pytest.param({"extra": HTTP + "[upstream]\nurl = 'x'\n"}, ["upstream.url"], id="upstream url"),
    pytest.param({"extra": HTTP + "[upstream]\nfault = 'boom'\n"}, ["upstream.fault", "'hang'"], id="fault"),
    pytest.param(
        {"extra": HTTP + "[upstream]\ntimeout_s = 20\n", "load": LOAD + "request_timeout_s = 5\n"},
        ["upstream.timeout_s", "request_timeout_s", "504"],
        id="upstream timeout past the client's",
    ),
    pytest.param({"extra": HTTP + "capacity = 4\n"}, ["capacity", "[upstream]"], id="capacity with http"),
    pytest.param(
        {"extra": HTTP, "servers": SERVERS.replace("workers = 2", 'workers = 2\ndriver = "aiohttp"')},
        ["servers[0].driver", "'aiohttp'", '"httpx-per-request"'],
        id="aiohttp on gunicorn",
    ),
    pytest.param(
        {"extra": HTTP, "servers": SERVERS.replace("workers = 2", 'workers = 2\ndriver = "psycopg"')},
        ["servers[0]", "'psycopg'", "not an upstream client"],
        id="psycopg with http",
    ),
    pytest.param(
        {"extra": PG, "servers": SERVERS.replace("workers = 2", 'workers = 2\ndriver = "httpx"')},
        ["servers[0]", "'httpx'", "not a PostgreSQL driver"],
        id="httpx with postgres",
    ),
    pytest.param(
        {"extra": HTTP, "servers": SERVERS.replace("workers = 2", 'workers = 2\nworker_class = "gevent"')},
        ["servers[0]", "gevent", "upstream"],
        id="gevent with http",
    ),
]


def test_an_http_scenario_gets_httpx_where_a_server_names_no_client_and_records_its_upstream(tmp_path: Path) -> None:
    path = scenario(tmp_path, extra=HTTP + "[upstream]\ncapacity = 4\nmax_connections = 8\n")
    config = load_config(str(path))
    assert [s.driver for s in config.servers] == ["httpx", "httpx"]
    assert (config.upstream.capacity, config.upstream.max_connections, config.upstream.max_keepalive) == (4, 8, None)
    assert config_from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize(("parts", "needles"), REFUSED)
def test_a_bad_scenario_is_refused_naming_the_file_and_the_key(
    tmp_path: Path, parts: dict[str, str], needles: list[str]
) -> None:
    path = scenario(tmp_path, **parts)
    message = load_error(path)
    assert str(path) in message
    for needle in needles:
        assert needle in message


def test_zero_warmup_and_drain_are_allowed(tmp_path: Path) -> None:
    path = scenario(tmp_path, load="[load]\nusers = [5]\nwarmup_s = 0\ndrain_s = 0")
    load = load_config(str(path)).load
    assert (load.warmup_s, load.drain_s) == (0, 0)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[load\nusers = [5]\n", encoding="utf-8")
    message = load_error(path)
    assert str(path) in message
    assert "TOML" in message


def test_a_missing_scenario_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    message = load_error(path)
    assert str(path) in message
    assert "does not exist" in message


def test_an_unknown_scenario_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ScenarioError) as caught:
        load_config("no-such-scenario")
    assert "no-such-scenario.toml" in str(caught.value)
    assert "default" in str(caught.value)
    assert "quick" in str(caught.value)


# --- overrides -----------------------------------------------------------------------------------------------------


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = load_config(str(scenario(tmp_path)), environ={"BENCH_USERS": "7, 3"})
    assert config.load.users == (3, 7)


def test_flag_overrides_the_environment(tmp_path: Path) -> None:
    config = load_config(str(scenario(tmp_path)), environ={"BENCH_USERS": "7"}, flags={"--users": "9,11"})
    assert config.load.users == (9, 11)


def test_an_empty_override_is_ignored(tmp_path: Path) -> None:
    config = load_config(str(scenario(tmp_path)), environ={"BENCH_USERS": ""}, flags={"--users": None})
    assert config.load.users == (5, 10)


def test_overrides_are_recorded_with_their_origin(tmp_path: Path) -> None:
    config = load_config(str(scenario(tmp_path)), environ={"BENCH_MEASURE_S": "4"}, flags={"--warmup": "0"})
    assert config.load.measure_s == 4.0
    assert config.load.warmup_s == 0.0
    assert any("BENCH_MEASURE_S" in o for o in config.overrides)
    assert any("--warmup" in o for o in config.overrides)


def test_pin_cpus_override_reads_booleans(tmp_path: Path) -> None:
    config = load_config(str(scenario(tmp_path)), environ={"BENCH_PIN_CPUS": "off"})
    assert config.run.pin_cpus is False


def test_no_override_leaves_the_file_values_and_records_nothing(tmp_path: Path) -> None:
    config = load_config(str(scenario(tmp_path)))
    assert config.overrides == ()
    assert config.load.measure_s == 2


@pytest.mark.parametrize(
    ("environ", "flags", "named"),
    [
        ({"BENCH_USERS": "five"}, {}, "BENCH_USERS"),
        ({}, {"--users": "5,x"}, "--users"),
        ({"BENCH_MEASURE_S": "long"}, {}, "BENCH_MEASURE_S"),
        ({}, {"--pin-cpus": "maybe"}, "--pin-cpus"),
    ],
)
def test_an_unreadable_override_names_the_variable_or_flag(
    tmp_path: Path, environ: dict[str, str], flags: dict[str, str], named: str
) -> None:
    message = load_error(scenario(tmp_path), environ=environ, flags=flags)
    assert named in message


@pytest.mark.parametrize(
    ("environ", "flags", "named"),
    [({"BENCH_MEASURE_S": "0"}, {}, "BENCH_MEASURE_S"), ({}, {"--users": "0,5"}, "--users")],
)
def test_an_out_of_range_override_names_the_variable_or_flag(
    tmp_path: Path, environ: dict[str, str], flags: dict[str, str], named: str
) -> None:
    message = load_error(scenario(tmp_path), environ=environ, flags=flags)
    assert named in message


# --- round trip through run.json -----------------------------------------------------------------------------------


def test_config_round_trips_through_to_dict() -> None:
    config = load_config("default", environ={"BENCH_USERS": "5,50"})
    assert config_from_dict(config.to_dict()) == config


def test_config_round_trips_through_json(tmp_path: Path) -> None:
    config = load_config(str(scenario(tmp_path)), flags={"--measure": "3"})
    rebuilt = config_from_dict(json.loads(json.dumps(config.to_dict())))
    assert rebuilt == config
    assert isinstance(rebuilt, RunConfig)


def test_step_seconds_is_warmup_plus_window_plus_drain(tmp_path: Path) -> None:
    assert load_config(str(scenario(tmp_path))).step_seconds() == 1 + 2 + 1


# --- the command line ----------------------------------------------------------------------------------------------


def test_cli_returns_2_for_a_missing_scenario_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "absent.toml"
    assert main([str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "error" in err
    assert "absent.toml" in err


def test_cli_returns_2_for_a_scenario_with_an_unknown_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = scenario(tmp_path, top="colour = 'blue'")
    # --dry-run only as a safety net: the scenario is refused before the flag is even looked at.
    assert main([str(path), "--dry-run", "--results-dir", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert "colour" in err
    assert "scenario.toml" in err
    assert not (tmp_path / "results").exists()


def test_cli_returns_2_for_an_unreadable_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(scenario(tmp_path)), "--users", "many", "--dry-run"]) == 2
    assert "--users" in capsys.readouterr().err


def test_cli_prints_the_error_message_verbatim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    servers = '[[servers]]\nname = "same"\nserver = "gunicorn"\n\n[[servers]]\nname = "same"\nserver = "uvicorn"\n'
    path = scenario(tmp_path, servers=servers)
    with pytest.raises(ScenarioError) as caught:
        load_config(str(path))
    assert main([str(path), "--dry-run"]) == 2
    assert str(caught.value) in capsys.readouterr().err


def test_cli_dry_run_returns_0_and_starts_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    assert main(["quick", "--dry-run", "--results-dir", str(results)]) == 0
    children_after = {p.pid for p in psutil.Process().children(recursive=True)}
    out = capsys.readouterr().out
    assert "flask-gunicorn" in out
    assert "fastapi-uvicorn" in out
    assert "6 steps" in out
    assert not results.exists()
    assert children_after <= children_before


def test_cli_dry_run_shows_the_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(scenario(tmp_path)), "--dry-run", "--users", "3"]) == 0
    out = capsys.readouterr().out
    assert "users [3]" in out
    assert "--users" in out


# --- the real database ------------------------------------------------------------------------------------------


def test_a_postgres_scenario_gives_every_server_a_driver_and_records_it(tmp_path: Path) -> None:
    servers = SERVERS + 'driver = "asyncpg"\n'
    config = load_config(str(scenario(tmp_path, extra=PG + "pool_size = 4\n", servers=servers)))
    assert [s.driver for s in config.servers] == ["psycopg", "asyncpg"]
    assert config.database.pool_size == 4
    assert config.to_dict()["servers"][0]["driver"] == "psycopg"
    assert config.servers[1].describe() == "1 event loop, async def endpoints, asyncpg pool"
    assert config_from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_a_password_in_the_database_url_is_never_recorded(tmp_path: Path) -> None:
    path = scenario(tmp_path, extra=PG)
    config = load_config(str(path), environ={"DATABASE_URL": "postgresql://bench:s3cret@db.local:5433/bench"})
    assert config.database.url == "postgresql://bench:s3cret@db.local:5433/bench"  # what the servers get
    recorded = json.dumps(config.to_dict())
    assert "s3cret" not in recorded
    assert config.to_dict()["database"]["url"] == "postgresql://bench:***@db.local:5433/bench"
    assert any("postgresql://bench:***@db.local:5433/bench" in o for o in config.overrides)


def test_database_url_in_the_environment_is_left_alone_for_the_simulated_database(tmp_path: Path) -> None:
    config = load_config(str(scenario(tmp_path)), environ={"DATABASE_URL": "postgresql://u:p@elsewhere/db"})
    assert config.database.backend == "simulated" and config.database.url == ""
    assert config.overrides == ()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("", ""),
        ("postgresql://localhost/bench", "postgresql://localhost/bench"),
        ("postgresql://u@h:5/db", "postgresql://u@h:5/db"),
        ("postgresql://u:p%40ss@h/db?sslmode=require", "postgresql://u:***@h/db?sslmode=require"),
        ("postgresql://u:hunter2@h:abc/db", "postgresql://u:***@h:abc/db"),
        ("postgresql://u:hunter2@[::1/db", "postgresql://u:***@[::1/db"),
    ],
)
def test_mask_url_hides_only_the_password(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_pools_that_do_not_fit_max_connections_are_refused_naming_both_numbers(tmp_path: Path) -> None:
    servers = SERVERS.replace("workers = 2", "workers = 9")
    config = load_config(str(scenario(tmp_path, extra=PG + "pool_size = 11\n", servers=servers)))
    check_connections(config, 9 * 11 + HARNESS_CONNECTIONS)  # fits exactly
    with pytest.raises(ScenarioError) as caught:
        check_connections(config, 9 * 11 + HARNESS_CONNECTIONS - 1)
    message = str(caught.value)
    assert "sync" in message and "pool_size 11" in message and "= 101 connections" in message
    assert "max_connections = 100" in message
    check_connections(load_config(str(scenario(tmp_path))), 1)  # the simulated database has no connections


def test_a_server_may_wait_on_the_simulated_database_beside_the_real_ones(tmp_path: Path) -> None:
    servers = SERVERS.replace("workers = 2", 'workers = 2\nworker_class = "gevent"\ndriver = "simulated"')
    config = load_config(str(scenario(tmp_path, extra=PG, servers=servers)))
    assert [s.driver for s in config.servers] == ["simulated", "psycopg"]
    assert config.servers[0].describe() == "2 workers x 1000 connections (gevent), simulated database, no connection"
