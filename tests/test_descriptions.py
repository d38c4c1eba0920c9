"""Every number in a scenario's description is either the scenario's own setting or a claim checked here against
its committed reference run, so a description cannot go stale while its reference changes."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from runner.config import ROOT
from runner.expected import cpu_ms_per_request
from runner.view import RunView

SCENARIOS = ROOT / "scenarios"
REFERENCES = ROOT / "results" / "reference"
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")
# "2 x cores + 1" (gunicorn's advice): the words of a rule, not measurements.
RULE_NUMBERS = {1.0, 2.0}
# Names that carry a number: "psycopg 3" is a library, not a figure.
NAMES = ("psycopg 3",)


def view(name: str) -> RunView:
    return RunView.load(REFERENCES / name)


def _top(v: RunView) -> int:
    return max(v.users)


def _rps(v: RunView, server: str, users: int) -> float:
    return float(v.by_level[(server, users)]["figures"]["rps"])


def _wait_share(v: RunView) -> float:
    work = v.config.workload
    return work.page_wait_ms / (work.page_wait_ms + work.app_work_ms)


def _mix_wait_ms(v: RunView) -> float:
    load, work = v.config.load, v.config.workload
    weights = load.page_weight + load.short_weight
    return (load.page_weight * work.page_wait_ms + load.short_weight * work.short_query_ms) / weights


def _cpu_ms(v: RunView, server: str, users: int) -> float:
    value = cpu_ms_per_request(v.by_level[(server, users)])
    assert value is not None, f"{server} at {users} users has no CPU per request"
    return value


def _near(value: float, target: float, tolerance: float = 0.1) -> bool:
    return abs(value / target - 1) <= tolerance


def _fair_least_cpu_wins(v: RunView) -> bool:
    users = _top(v)
    best = max(v.servers, key=lambda s: _rps(v, s.name, users))
    return (
        all(v.expectations[(s.name, users)].prediction.bound_by == "cpu" for s in v.servers)
        and best.name == min(v.servers, key=lambda s: v.calibrations[s.name].cpu_per_request_ms).name
    )


# Per scenario: each phrase of its description that states a figure or a finding, and the check that holds it.
CLAIMS: dict[str, dict[str, Callable[[RunView], bool]]] = {
    "default": {"about 90% of its time waiting": lambda v: _near(_wait_share(v), 0.90, 0.05)},
    "fair": {
        "holds a request for about\n15 ms": lambda v: _near(v.systems["flask-gunicorn"].demand.service_s * 1000, 15),
        "the model puts the knee past 500 users for all three": lambda v: all(
            s.knee_users > 500 for s in v.systems.values()
        ),
        "the one that spends less CPU per request wins": _fair_least_cpu_wins,
    },
    "cpu-bound": {
        "at about 50 requests/s": lambda v: all(_near(_rps(v, s.name, _top(v)), 50) for s in v.servers),
    },
    "pool-limited": {
        "capped by the pool, at about 49\nrequests/s": lambda v: all(
            v.expectations[(s.name, _top(v))].prediction.bound_by == "database"
            and _near(v.systems[s.name].max_rps, 49, 0.03)
            for s in v.servers
        ),
    },
    "upstream": {
        "The 3 sync workers run out of\nslots, as the model predicts": lambda v: (
            v.expectations[("flask-gunicorn", _top(v))].prediction.bound_by == "slots"
            and _near(_rps(v, "flask-gunicorn", _top(v)), v.systems["flask-gunicorn"].max_rps, 0.1)
        ),
        "at every user level the event loop spends less CPU per request with aiohttp than\nwith httpx": lambda v: all(
            _cpu_ms(v, "fastapi-aiohttp", n) < _cpu_ms(v, "fastapi-httpx", n) for n in v.users
        ),
    },
    "upstream-limited": {
        "both are capped by the upstream, at about 49\nrequests/s, as the model predicts": lambda v: all(
            v.expectations[(s.name, _top(v))].prediction.bound_by == "database"
            and _near(v.systems[s.name].max_rps, 49, 0.03)
            and _near(_rps(v, s.name, _top(v)), v.expectations[(s.name, _top(v))].prediction.model_rps, 0.15)
            for s in v.servers
        ),
    },
    "upstream-antipatterns": {
        # Several times a request's own CPU on both sides, at every level, and not so for a new aiohttp session.
        "building an httpx client costs CPU of its own": lambda v: (
            all(
                _cpu_ms(v, f"{side}-httpx-per-call", n) >= 3 * _cpu_ms(v, f"{side}-httpx", n)
                for side in ("flask", "fastapi")
                for n in v.users
            )
            and all(_cpu_ms(v, "fastapi-aiohttp-per-call", n) <= 1.3 * _cpu_ms(v, "fastapi-httpx", n) for n in v.users)
        ),
    },
    "postgres-pool": {
        "about 82 ms on average over the mix": lambda v: abs(_mix_wait_ms(v) - 82) < 1,
        "at most about 49 requests/s": lambda v: all(_near(v.systems[s.name].max_rps, 49, 0.03) for s in v.servers),
    },
}


def _numbers(value: Any) -> Iterator[float]:
    """Every number a scenario sets, wherever it sits in the TOML."""
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield float(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)


def _settings(data: dict[str, Any]) -> set[float]:
    """The scenario's numbers, and the products a description may quote (workers x threads)."""
    found = set(_numbers(data))
    work = data.get("workload", {})
    found.add(float(work.get("user_lookup_ms", 0) + work.get("listing_ms", 0)))  # a page's waits
    for server in data.get("servers", []):
        if "threads" in server:
            found.add(float(server.get("workers", 1) * server["threads"]))
    return found


SCENARIOS_WITH_REFERENCES = sorted(
    p.stem for p in SCENARIOS.glob("*.toml") if (REFERENCES / p.stem / "run.json").is_file()
)


@pytest.mark.parametrize("name", SCENARIOS_WITH_REFERENCES)
def test_every_number_in_a_description_is_a_setting_or_a_checked_claim(name: str) -> None:
    data = tomllib.loads((SCENARIOS / f"{name}.toml").read_text(encoding="utf-8"))
    text: str = data["description"]
    claims = CLAIMS.get(name, {})
    for phrase in claims:
        assert phrase in text, f"{name}: the checked phrase {phrase!r} is no longer in the description"
    rest = text
    for phrase in (*claims, *NAMES):
        rest = rest.replace(phrase, " ")
    unexplained = [n for n in NUMBER.findall(rest) if float(n) not in _settings(data) | RULE_NUMBERS]
    assert unexplained == [], f"{name}: numbers in the description that are neither settings nor checked claims"


@pytest.mark.parametrize(("name", "phrase"), [(n, p) for n, claims in CLAIMS.items() for p in claims])
def test_each_claim_of_a_description_holds_in_its_reference(name: str, phrase: str) -> None:
    assert CLAIMS[name][phrase](view(name)), f"{name}: {phrase!r} does not hold in results/reference/{name}"
