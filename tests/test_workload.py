"""The workload: its defaults, the one query-string parser both apps share, the Server-Timing header, the
CPU work that stands in for real Python code, and a request run on a database face."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

import pytest

from simdb import (
    MAX_QUERY_MS,
    MAX_ROWS,
    MAX_WORK_MS,
    AsyncDatabase,
    BlockingDatabase,
    ConfigError,
    DatabaseUnavailable,
    PagePlan,
    ParamError,
    QueryTiming,
    ShortPlan,
    SimulatedDatabase,
    Timing,
    WorkloadConfig,
)
from simdb import workload as wl
from simdb.workload import burn_cpu, parse_none, parse_page, parse_short

DEFAULTS = WorkloadConfig()


def make(field: str, value: float) -> WorkloadConfig:
    """A workload with one setting changed, named as a string so tests can be parametrized by setting."""
    settings: dict[str, Any] = {field: value}
    return WorkloadConfig(**settings)


# --- WorkloadConfig ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "upper"),
    [
        ("user_lookup_ms", MAX_QUERY_MS),
        ("listing_ms", MAX_QUERY_MS),
        ("short_query_ms", MAX_QUERY_MS),
        ("app_work_ms", MAX_WORK_MS),
        ("listing_rows", MAX_ROWS),
    ],
)
def test_workload_accepts_zero_and_the_documented_maximum(field: str, upper: float) -> None:
    assert getattr(make(field, 0), field) == 0
    assert getattr(make(field, upper), field) == upper


@pytest.mark.parametrize("field", ["user_lookup_ms", "listing_ms", "short_query_ms", "app_work_ms", "listing_rows"])
@pytest.mark.parametrize("value", [-1, math.nan, math.inf, -math.inf])
def test_workload_refuses_negative_and_non_finite_values(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        make(field, value)


@pytest.mark.parametrize(
    ("field", "too_much"),
    [
        ("user_lookup_ms", MAX_QUERY_MS + 1),
        ("listing_ms", MAX_QUERY_MS + 1),
        ("short_query_ms", MAX_QUERY_MS + 1),
        ("app_work_ms", MAX_WORK_MS + 1),
        ("listing_rows", MAX_ROWS + 1),
    ],
)
def test_workload_refuses_values_above_the_documented_maximum(field: str, too_much: float) -> None:
    with pytest.raises(ConfigError, match=field):
        make(field, too_much)


def test_workload_from_env_without_variables_gives_defaults() -> None:
    assert WorkloadConfig.from_env({}) == DEFAULTS


def test_workload_from_env_reads_each_setting() -> None:
    env = {
        "SIMDB_USER_LOOKUP_MS": "1.5",
        "SIMDB_LISTING_MS": "2",
        "SIMDB_APP_WORK_MS": "3",
        "SIMDB_LISTING_ROWS": "4",
        "SIMDB_SHORT_QUERY_MS": "5",
    }
    assert WorkloadConfig.from_env(env) == WorkloadConfig(
        user_lookup_ms=1.5, listing_ms=2, app_work_ms=3, listing_rows=4, short_query_ms=5
    )


def test_workload_from_env_round_trips_through_to_env() -> None:
    config = WorkloadConfig(user_lookup_ms=1 / 3, listing_ms=0, app_work_ms=MAX_WORK_MS, listing_rows=7)
    assert WorkloadConfig.from_env(config.to_env()) == config


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SIMDB_LISTING_MS", "slow"), ("SIMDB_LISTING_ROWS", "2.5"), ("SIMDB_APP_WORK_MS", "5ms")],
)
def test_workload_from_env_names_the_variable_that_is_not_a_number(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        WorkloadConfig.from_env({variable: value})


def test_workload_from_env_still_checks_the_range() -> None:
    with pytest.raises(ConfigError, match="listing_ms"):
        WorkloadConfig.from_env({"SIMDB_LISTING_MS": str(MAX_QUERY_MS * 2)})


# --- parsing the query string ------------------------------------------------------------------------------------


def test_parse_page_without_parameters_uses_the_defaults() -> None:
    custom = WorkloadConfig(user_lookup_ms=1, app_work_ms=2, listing_ms=3, listing_rows=4)
    assert parse_page([], custom) == PagePlan(user_lookup_ms=1, app_work_ms=2, listing_ms=3, rows=4)


def test_parse_page_overrides_each_parameter() -> None:
    plan = parse_page([("user_ms", "1.5"), ("work_ms", "2"), ("listing_ms", "30"), ("rows", "7")], DEFAULTS)
    assert plan == PagePlan(user_lookup_ms=1.5, app_work_ms=2.0, listing_ms=30.0, rows=7)
    assert isinstance(plan.rows, int)


def test_parse_page_override_keeps_other_defaults() -> None:
    plan = parse_page([("listing_ms", "0")], DEFAULTS)
    assert plan.listing_ms == 0
    assert plan.user_lookup_ms == DEFAULTS.user_lookup_ms
    assert plan.rows == DEFAULTS.listing_rows


def test_parse_page_accepts_the_documented_maxima() -> None:
    plan = parse_page(
        [("user_ms", f"{MAX_QUERY_MS:g}"), ("work_ms", f"{MAX_WORK_MS:g}"), ("rows", str(MAX_ROWS))], DEFAULTS
    )
    assert (plan.user_lookup_ms, plan.app_work_ms, plan.rows) == (MAX_QUERY_MS, MAX_WORK_MS, MAX_ROWS)


def test_parse_page_refuses_an_unknown_parameter_and_lists_the_known_ones() -> None:
    with pytest.raises(ParamError) as caught:
        parse_page([("sleep_ms", "10")], DEFAULTS)
    assert caught.value.parameter == "sleep_ms"
    assert "unknown" in caught.value.detail
    for known in ("user_ms", "work_ms", "listing_ms", "rows"):
        assert known in caught.value.detail


def test_parse_page_refuses_a_repeated_parameter() -> None:
    with pytest.raises(ParamError) as caught:
        parse_page([("rows", "1"), ("rows", "2")], DEFAULTS)
    assert caught.value.parameter == "rows"
    assert "more than once" in caught.value.detail


@pytest.mark.parametrize("parameter", ["user_ms", "work_ms", "listing_ms", "rows"])
@pytest.mark.parametrize("raw", ["abc", "", "10ms", "-1", "nan", "inf", "-inf", "NaN", "Infinity"])
def test_parse_page_refuses_non_numbers_negatives_and_non_finite(parameter: str, raw: str) -> None:
    with pytest.raises(ParamError) as caught:
        parse_page([(parameter, raw)], DEFAULTS)
    assert caught.value.parameter == parameter


@pytest.mark.parametrize(
    ("parameter", "raw"),
    [
        ("user_ms", f"{MAX_QUERY_MS + 0.5:g}"),
        ("listing_ms", f"{MAX_QUERY_MS * 10:g}"),
        ("work_ms", f"{MAX_WORK_MS + 0.5:g}"),
        ("rows", str(MAX_ROWS + 1)),
    ],
)
def test_parse_page_refuses_values_above_the_documented_maximum(parameter: str, raw: str) -> None:
    with pytest.raises(ParamError) as caught:
        parse_page([(parameter, raw)], DEFAULTS)
    assert caught.value.parameter == parameter
    assert "between 0 and" in caught.value.detail


@pytest.mark.parametrize("raw", ["2.5", "1e2", "3.0"])
def test_parse_page_rows_must_be_a_whole_number(raw: str) -> None:
    with pytest.raises(ParamError) as caught:
        parse_page([("rows", raw)], DEFAULTS)
    assert caught.value.parameter == "rows"
    assert "whole number" in caught.value.detail


def test_parse_page_refuses_a_huge_row_count_as_a_parameter_error() -> None:
    with pytest.raises(ParamError) as caught:
        parse_page([("rows", "9" * 400)], DEFAULTS)
    assert caught.value.parameter == "rows"


def test_parse_page_error_detail_quotes_at_most_40_characters_of_the_value() -> None:
    with pytest.raises(ParamError) as caught:
        parse_page([("user_ms", "x" * 1000)], DEFAULTS)
    assert "x" * 40 in caught.value.detail
    assert "x" * 41 not in caught.value.detail


def test_parse_short_without_parameters_uses_the_default() -> None:
    assert parse_short([], WorkloadConfig(short_query_ms=3)) == ShortPlan(query_ms=3)


def test_parse_short_overrides_query_ms() -> None:
    assert parse_short([("query_ms", "12.5")], DEFAULTS) == ShortPlan(query_ms=12.5)


def test_parse_short_refuses_the_page_parameters() -> None:
    with pytest.raises(ParamError) as caught:
        parse_short([("rows", "1")], DEFAULTS)
    assert caught.value.parameter == "rows"
    assert "query_ms" in caught.value.detail


@pytest.mark.parametrize("raw", ["-5", "nan", "inf", "fast", f"{MAX_QUERY_MS + 1:g}"])
def test_parse_short_refuses_bad_query_ms(raw: str) -> None:
    with pytest.raises(ParamError) as caught:
        parse_short([("query_ms", raw)], DEFAULTS)
    assert caught.value.parameter == "query_ms"


def test_parse_short_refuses_a_repeated_parameter() -> None:
    with pytest.raises(ParamError, match="more than once"):
        parse_short([("query_ms", "1"), ("query_ms", "1")], DEFAULTS)


def test_parse_none_accepts_no_parameters() -> None:
    parse_none([])


def test_parse_none_refuses_any_parameter() -> None:
    with pytest.raises(ParamError) as caught:
        parse_none([("verbose", "1")])
    assert caught.value.parameter == "verbose"
    assert "known: none" in caught.value.detail


def test_param_error_body_has_the_shared_error_shape() -> None:
    error = ParamError("rows", "must be a whole number")
    body = error.body()
    assert body == {"error": "invalid_parameter", "parameter": "rows", "detail": "must be a whole number"}
    assert json.loads(json.dumps(body)) == body


def test_param_error_message_names_the_parameter() -> None:
    assert str(ParamError("rows", "too many")) == "rows: too many"


# --- Server-Timing -----------------------------------------------------------------------------------------------

# An HTTP token (RFC 9110) as the name, ";dur=" and a decimal number; entries separated by commas (optional spaces).
METRIC = re.compile(
    r"^(?P<name>[!#$%&'*+\-.^_`|~0-9A-Za-z]+);(?:dur=(?P<dur>[0-9]+(?:\.[0-9]+)?)|desc=\"(?P<desc>[0-9.]+)\")$"
)


def parse_server_timing(header: str) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for entry in header.split(","):
        match = METRIC.match(entry.strip())
        assert match is not None, f"not a Server-Timing metric: {entry!r}"
        assert match["name"] not in metrics, f"{match['name']} appears twice"
        metrics[match["name"]] = float(match["dur"] if match["dur"] is not None else match["desc"])
    return metrics


def test_timing_header_is_a_valid_server_timing_header() -> None:
    timing = Timing(db=QueryTiming(pool=0.002, wait=0.1005), app=0.005, total=0.12, started=1_700_000_000.25)
    metrics = parse_server_timing(timing.header())
    assert set(metrics) == {"db", "pool", "app", "handler", "start"}
    assert metrics["start"] == pytest.approx(1_700_000_000.25)
    # The shared parser used by the timeline reads the header the same way.
    assert wl.parse_server_timing(timing.header()) == pytest.approx(metrics)


def test_timing_header_reports_milliseconds() -> None:
    timing = Timing(db=QueryTiming(pool=0.002, wait=0.1005), app=0.005, total=0.12)
    metrics = parse_server_timing(timing.header())
    assert metrics["db"] == pytest.approx(100.5)
    assert metrics["pool"] == pytest.approx(2.0)
    assert metrics["app"] == pytest.approx(5.0)
    assert metrics["handler"] == pytest.approx(120.0)


def test_timing_header_of_an_empty_timing_is_still_valid() -> None:
    metrics = parse_server_timing(Timing(db=QueryTiming()).header())
    assert metrics == {"db": 0.0, "pool": 0.0, "app": 0.0, "handler": 0.0, "start": 0.0}


# --- CPU work ----------------------------------------------------------------------------------------------------


def test_burn_cpu_uses_at_least_the_requested_thread_cpu_time() -> None:
    before = time.thread_time()
    burn_cpu(30)
    used = time.thread_time() - before
    assert used >= 0.9 * 0.030


def test_burn_cpu_returns_the_wall_time_it_took() -> None:
    before = time.perf_counter()
    wall = burn_cpu(20)
    elapsed = time.perf_counter() - before
    # CPU time cannot exceed wall time on one thread, so at least ~the requested time passed.
    assert 0.9 * 0.020 <= wall <= elapsed


@pytest.mark.parametrize("ms", [0.0, -5.0])
def test_burn_cpu_of_nothing_returns_at_once(ms: float) -> None:
    before = time.thread_time()
    assert burn_cpu(ms) == 0.0
    assert time.thread_time() - before < 0.01


# --- running a request on a database face ------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """An ORM-like object: the attributes the page reads, and more it must leave out."""

    id: int
    name: str = ""
    title: str = ""
    price_cents: int = 0
    secret: str = "not in the JSON"


class RecordingFace:
    """A face of both kinds that answers from fixed rows and fixed timings, and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[object, ...]] = []

    def user(self, user_id: int, ms: float) -> tuple[Record, QueryTiming]:
        self.asked.append(("user", user_id, ms))
        return Record(user_id, name="ada"), QueryTiming(pool=0.001, wait=0.010)

    def listing(self, user_id: int, rows: int, ms: float) -> tuple[list[Record], QueryTiming]:
        self.asked.append(("listing", user_id, rows, ms))
        return [Record(9, title="b", price_cents=2), Record(3, title="a", price_cents=1)], QueryTiming(0.002, 0.020)

    def short(self, user_id: int, ms: float) -> QueryTiming:
        self.asked.append(("short", user_id, ms))
        return QueryTiming(pool=0.004, wait=0.005)

    async def user_async(self, user_id: int, ms: float) -> tuple[Record, QueryTiming]:
        return self.user(user_id, ms)

    async def listing_async(self, user_id: int, rows: int, ms: float) -> tuple[list[Record], QueryTiming]:
        return self.listing(user_id, rows, ms)

    async def short_async(self, user_id: int, ms: float) -> QueryTiming:
        return self.short(user_id, ms)


PLAN = PagePlan(user_lookup_ms=11, app_work_ms=0, listing_ms=22, rows=2)
FACE_BODY = {
    "user": {"id": 5, "name": "ada"},
    "items": [{"id": 9, "title": "b", "price_cents": 2}, {"id": 3, "title": "a", "price_cents": 1}],
}


def test_the_page_is_built_from_the_rows_the_face_returns_in_their_order() -> None:
    face = RecordingFace()
    body, timing = wl.run_page(face, PLAN, user_id=5)
    assert body == FACE_BODY
    assert face.asked == [("user", 5, 11), ("listing", 5, 2, 22)]
    assert (timing.db.pool, timing.db.wait) == pytest.approx((0.003, 0.030))
    assert timing.total >= 0


def test_the_awaitable_page_is_built_the_same_way() -> None:
    body, timing = asyncio.run(wl.run_page_async(RecordingFace(), PLAN, user_id=5))
    assert body == FACE_BODY
    assert (timing.db.pool, timing.db.wait) == pytest.approx((0.003, 0.030))


def test_the_short_request_asks_one_query_of_the_user() -> None:
    face = RecordingFace()
    body, timing = wl.run_short(face, ShortPlan(query_ms=7), user_id=8)
    assert body == {"ok": True}
    assert face.asked == [("short", 8, 7)]
    assert (timing.db.pool, timing.db.wait) == (0.004, 0.005)
    body, timing = asyncio.run(wl.run_short_async(face, ShortPlan(query_ms=7)))
    assert body == {"ok": True} and timing.db.wait == 0.005


def test_the_simulated_page_is_the_json_it_has_always_been() -> None:
    body, _ = wl.run_page(SimulatedDatabase(), PagePlan(0, 0, 0, 3))
    assert body == {
        "user": {"id": 42, "name": "user-42"},
        "items": [
            {"id": 42000, "title": "item 0", "price_cents": 100},
            {"id": 42001, "title": "item 1", "price_cents": 137},
            {"id": 42002, "title": "item 2", "price_cents": 174},
        ],
    }
    assert asyncio.run(wl.run_page_async(SimulatedDatabase(), PagePlan(0, 0, 0, 3)))[0] == body


def test_the_simulated_database_is_both_kinds_of_face() -> None:
    """Checked by mypy: the workload takes it where it takes a real driver's face."""
    blocking: BlockingDatabase = SimulatedDatabase()
    awaitable: AsyncDatabase = SimulatedDatabase()
    assert wl.run_short(blocking, ShortPlan(0))[0] == asyncio.run(wl.run_short_async(awaitable, ShortPlan(0)))[0]


def test_database_unavailable_has_the_shared_error_shape() -> None:
    error = DatabaseUnavailable("no database connection came free within 30 s")
    assert error.body() == {"error": "database_unavailable", "detail": "no database connection came free within 30 s"}
    assert str(error) == error.detail
