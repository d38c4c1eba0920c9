"""Scenario files, overrides, and the one frozen configuration object handed down the whole run.

Configuration flows one way: the scenario's TOML file, then ``BENCH_*`` environment variables, then command-line
flags, then :func:`build_config` validates everything at once into :class:`RunConfig`. Nothing downstream reads
a setting from anywhere else, so what a result file records as "the configuration" is exactly what ran.
"""

from __future__ import annotations

import copy
import hashlib
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from simdb import ConfigError, DatabaseConfig, WorkloadConfig

ROOT = Path(__file__).resolve().parent.parent
SCENARIO_DIR = ROOT / "scenarios"

ServerType = Literal["gunicorn", "uvicorn"]
SERVER_TYPES: dict[str, Literal["sync", "async"]] = {"gunicorn": "sync", "uvicorn": "async"}


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


@dataclass(frozen=True)
class ServerConfig:
    """One server configuration under test."""

    name: str
    server: ServerType
    workers: int = 1

    @property
    def kind(self) -> Literal["sync", "async"]:
        return SERVER_TYPES[self.server]


@dataclass(frozen=True)
class RunSettings:
    """How the harness runs, as opposed to what it measures."""

    pin_cpus: bool = True
    server_cores: int = 1
    startup_timeout_s: float = 30.0
    results_dir: str = "results"


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
    overrides: tuple[str, ...] = ()

    @property
    def results_root(self) -> Path:
        path = Path(self.run.results_dir)
        return path if path.is_absolute() else ROOT / path

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def step_seconds(self) -> float:
        """The longest a step's load can last: warm-up, window, and the drain bound."""
        return self.load.warmup_s + self.load.measure_s + self.load.drain_s


def config_from_dict(data: Mapping[str, Any]) -> RunConfig:
    """Rebuild a config saved in a run's ``run.json`` (used to redraw and compare runs)."""
    load = dict(data["load"])
    load["users"] = tuple(load["users"])
    load["think_time_s"] = tuple(load["think_time_s"])
    return RunConfig(
        name=data["name"],
        description=data["description"],
        source=data["source"],
        source_sha256=data["source_sha256"],
        load=LoadConfig(**load),
        workload=WorkloadConfig(**data["workload"]),
        database=DatabaseConfig(**data["database"]),
        servers=tuple(ServerConfig(**s) for s in data["servers"]),
        run=RunSettings(**data["run"]),
        overrides=tuple(data.get("overrides", ())),
    )


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


OVERRIDES: tuple[Override, ...] = (
    Override("load", "users", _users, "BENCH_USERS", "--users", "user levels, comma-separated, e.g. 5,50,500"),
    Override(
        "load", "warmup_s", _seconds_or_zero, "BENCH_WARMUP_S", "--warmup", "seconds discarded at the start of a step"
    ),
    Override("load", "measure_s", _seconds, "BENCH_MEASURE_S", "--measure", "seconds measured per step, > 0"),
    Override(
        "load", "drain_s", _seconds_or_zero, "BENCH_DRAIN_S", "--drain", "seconds in-flight requests may take to finish"
    ),
    Override("run", "pin_cpus", _bool, "BENCH_PIN_CPUS", "--pin-cpus", "pin client and server to separate cores"),
    Override("run", "results_dir", str, "BENCH_RESULTS_DIR", "--results-dir", "where run folders are created"),
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
            try:
                value = override.parse(text)
            except ValueError as error:
                raise ScenarioError(f"{origin}: bad value {text!r}: {error} ({override.help})") from None
            section = merged.setdefault(override.section, {})
            if not isinstance(section, dict):
                raise ScenarioError(f"[{override.section}] must be a table")
            section[override.key] = value
            applied.append(f"{override.section}.{override.key}={text} ({origin})")
    return merged, applied


# --- validation ------------------------------------------------------------------------------------------------

TOP_KEYS = {"name", "description", "load", "workload", "database", "servers", "run"}
# Counts cross into server processes as text and are read back as int there, so they must be whole here.
WHOLE_NUMBER_KEYS = {"listing_rows", "capacity", "seed"}


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
    think = values.get("think_time_s", list(LoadConfig.think_time_s))
    if not (isinstance(think, list) and len(think) == 2):
        raise ScenarioError(f"{path}: 'load.think_time_s' must be [min, max] in seconds, got {think!r}")
    for t in think:
        _positive(t, "load.think_time_s", path, allow_zero=True)
    if think[0] > think[1]:
        raise ScenarioError(f"{path}: 'load.think_time_s' must be [min, max] with min <= max, got {think!r}")
    values["think_time_s"] = (float(think[0]), float(think[1]))
    load = LoadConfig(**values)
    if load.page_weight + load.short_weight == 0:
        raise ScenarioError(f"{path}: 'load.page_weight' and 'load.short_weight' cannot both be 0")
    return load


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
        workers = table.get("workers", 1)
        _positive(workers, f"{where}.workers", path, integer=True)
        servers.append(ServerConfig(name=name, server=server, workers=workers))
    names = [s.name for s in servers]
    if len(set(names)) != len(names):
        raise ScenarioError(f"{path}: two [[servers]] share a name: {names}")
    return tuple(servers)


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

    return RunConfig(
        name=name,
        description=description,
        source=str(path),
        source_sha256=sha256,
        load=load,
        workload=workload,
        database=database,
        servers=_build_servers(data.get("servers"), path),
        run=run,
        overrides=overrides,
    )


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
    changed = [
        name for name in ("load", "workload", "database", "servers") if asdict(current)[name] != asdict(config)[name]
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
    return replace(config, run=replace(config.run, results_dir=str(run_dir.parent)))
