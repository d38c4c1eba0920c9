"""The simulated database: its settings, its jitter, how long it waits, how its pool limits concurrency, and the
rows its faces return.

Timing bounds here are deliberately wide (the tests share a small, busy machine): they check that a wait
happened and that a pool serialised work, never how precisely.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time

import pytest

from simdb import ConfigError, DatabaseConfig, QueryTiming, SimulatedDatabase, seeded_items, seeded_user

# A wait is never shorter than asked; 1 ms of slack only absorbs clock rounding.
EPSILON_S = 0.001
# How much later than asked a wait may end on a busy 2-core box before something is clearly wrong.
SLACK_S = 0.2


def max_overlap(intervals: list[tuple[float, float]], margin: float) -> int:
    """The largest number of intervals open at one moment, after trimming ``margin`` from both ends of each
    (so a connection handed straight from one query to the next does not count as an overlap)."""
    events: list[tuple[float, int]] = []
    for start, end in intervals:
        if end - start > 2 * margin:
            events += [(start + margin, 1), (end - margin, -1)]
    open_now = peak = 0
    for _, change in sorted(events):
        open_now += change
        peak = max(peak, open_now)
    return peak


def held_intervals(results: list[tuple[float, QueryTiming]]) -> list[tuple[float, float]]:
    """When each query held a connection, from the moment its caller started it and its reported timing."""
    return [(t0 + q.pool, t0 + q.pool + q.wait) for t0, q in results]


# --- configuration ---------------------------------------------------------------------------------------------


def test_default_config_is_unlimited_without_jitter() -> None:
    config = DatabaseConfig()
    assert config.capacity == 0
    assert config.jitter == 0.0


def test_negative_capacity_is_refused() -> None:
    with pytest.raises(ConfigError, match="capacity"):
        DatabaseConfig(capacity=-1)


@pytest.mark.parametrize("jitter", [-0.1, 1.0, 1.5, math.nan, math.inf])
def test_jitter_outside_zero_to_one_is_refused(jitter: float) -> None:
    with pytest.raises(ConfigError, match="jitter"):
        DatabaseConfig(jitter=jitter)


@pytest.mark.parametrize("jitter", [0.0, 0.5, 0.99])
def test_jitter_inside_zero_to_one_is_accepted(jitter: float) -> None:
    assert DatabaseConfig(jitter=jitter).jitter == jitter


def test_from_env_without_variables_gives_defaults() -> None:
    assert DatabaseConfig.from_env({}) == DatabaseConfig()


def test_from_env_treats_empty_variables_as_unset() -> None:
    env = {"SIMDB_CAPACITY": "", "SIMDB_JITTER": "", "SIMDB_SEED": ""}
    assert DatabaseConfig.from_env(env) == DatabaseConfig()


def test_from_env_reads_every_setting() -> None:
    env = {"SIMDB_CAPACITY": "4", "SIMDB_JITTER": "0.25", "SIMDB_SEED": "9"}
    assert DatabaseConfig.from_env(env) == DatabaseConfig(capacity=4, jitter=0.25, seed=9)


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMDB_CAPACITY", "3")
    monkeypatch.delenv("SIMDB_JITTER", raising=False)
    monkeypatch.delenv("SIMDB_SEED", raising=False)
    assert DatabaseConfig.from_env().capacity == 3


@pytest.mark.parametrize(
    "config", [DatabaseConfig(), DatabaseConfig(capacity=7, jitter=0.1, seed=42), DatabaseConfig(jitter=1 / 3)]
)
def test_to_env_and_from_env_round_trip(config: DatabaseConfig) -> None:
    assert DatabaseConfig.from_env(config.to_env()) == config


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SIMDB_CAPACITY", "many"), ("SIMDB_CAPACITY", "2.5"), ("SIMDB_JITTER", "a little"), ("SIMDB_SEED", "x")],
)
def test_from_env_names_the_variable_that_is_not_a_number(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable) as caught:
        DatabaseConfig.from_env({variable: value})
    assert repr(value) in str(caught.value)


def test_from_env_still_validates_the_values_it_reads() -> None:
    with pytest.raises(ConfigError, match="jitter"):
        DatabaseConfig.from_env({"SIMDB_JITTER": "1.5"})


# --- latency and jitter ----------------------------------------------------------------------------------------


def test_latency_without_jitter_is_exactly_the_requested_time() -> None:
    db = SimulatedDatabase()
    assert db.latency(80) == pytest.approx(0.080)
    assert db.latency(0) == 0.0


def test_latency_with_jitter_stays_within_the_jitter_fraction() -> None:
    db = SimulatedDatabase(DatabaseConfig(jitter=0.2, seed=3))
    samples = [db.latency(100) for _ in range(500)]
    assert all(0.080 <= s <= 0.120 for s in samples)


def test_latency_with_jitter_actually_varies() -> None:
    db = SimulatedDatabase(DatabaseConfig(jitter=0.2, seed=3))
    samples = [db.latency(100) for _ in range(200)]
    # Uniform over +-20%: 200 draws cover most of the range, and never all land on one value.
    assert max(samples) - min(samples) > 0.02


def test_jitter_of_a_zero_latency_query_stays_zero() -> None:
    db = SimulatedDatabase(DatabaseConfig(jitter=0.5))
    assert db.latency(0) == 0.0


def test_same_seed_gives_the_same_latency_sequence() -> None:
    first = SimulatedDatabase(DatabaseConfig(jitter=0.3, seed=11))
    second = SimulatedDatabase(DatabaseConfig(jitter=0.3, seed=11))
    assert [first.latency(50) for _ in range(50)] == [second.latency(50) for _ in range(50)]


def test_different_seeds_give_different_latency_sequences() -> None:
    first = SimulatedDatabase(DatabaseConfig(jitter=0.3, seed=11))
    second = SimulatedDatabase(DatabaseConfig(jitter=0.3, seed=12))
    assert [first.latency(50) for _ in range(20)] != [second.latency(50) for _ in range(20)]


# --- waiting -----------------------------------------------------------------------------------------------------


def test_blocking_query_waits_about_the_requested_time() -> None:
    db = SimulatedDatabase()
    started = time.perf_counter()
    timing = db.query(50)
    elapsed = time.perf_counter() - started
    assert 0.050 - EPSILON_S <= elapsed < 0.050 + SLACK_S
    assert 0.050 - EPSILON_S <= timing.wait <= elapsed
    assert timing.pool == 0.0


def test_async_query_waits_about_the_requested_time() -> None:
    db = SimulatedDatabase()

    async def measure() -> tuple[float, QueryTiming]:
        started = time.perf_counter()
        timing = await db.query_async(50)
        return time.perf_counter() - started, timing

    elapsed, timing = asyncio.run(measure())
    assert 0.050 - EPSILON_S <= elapsed < 0.050 + SLACK_S
    assert 0.050 - EPSILON_S <= timing.wait <= elapsed
    assert timing.pool == 0.0


def test_async_query_leaves_the_event_loop_free_while_it_waits() -> None:
    db = SimulatedDatabase()

    async def four_at_once() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(db.query_async(200) for _ in range(4)))
        return time.perf_counter() - started

    # Four 200 ms waits in one loop overlap: far less than the 800 ms they would take one after another.
    assert asyncio.run(four_at_once()) < 0.4


def test_query_timing_add_sums_pool_and_wait() -> None:
    total = QueryTiming()
    total.add(QueryTiming(pool=0.01, wait=0.02))
    total.add(QueryTiming(pool=0.03, wait=0.04))
    assert total.pool == pytest.approx(0.04)
    assert total.wait == pytest.approx(0.06)


# --- the connection pool -----------------------------------------------------------------------------------------

QUERY_MS = 100.0
QUERY_S = QUERY_MS / 1000


def run_blocking_queries(db: SimulatedDatabase, count: int) -> tuple[float, list[tuple[float, QueryTiming]]]:
    results: list[tuple[float, QueryTiming]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(count)

    def one() -> None:
        barrier.wait()
        t0 = time.perf_counter()
        timing = db.query(QUERY_MS)
        with lock:
            results.append((t0, timing))

    threads = [threading.Thread(target=one) for _ in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return time.perf_counter() - started, results


def run_async_queries(db: SimulatedDatabase, count: int) -> tuple[float, list[tuple[float, QueryTiming]]]:
    async def one() -> tuple[float, QueryTiming]:
        t0 = time.perf_counter()
        return t0, await db.query_async(QUERY_MS)

    async def all_of_them() -> list[tuple[float, QueryTiming]]:
        return list(await asyncio.gather(*(one() for _ in range(count))))

    started = time.perf_counter()
    results = asyncio.run(all_of_them())
    return time.perf_counter() - started, results


def test_unlimited_blocking_queries_in_threads_run_at_once() -> None:
    _, results = run_blocking_queries(SimulatedDatabase(DatabaseConfig(capacity=0)), 4)
    assert len(results) == 4
    # The control for the capacity tests below: without a pool, the overlap measure does see all four.
    assert max_overlap(held_intervals(results), margin=0.01) == 4


def test_capacity_two_serialises_four_blocking_queries_into_two_rounds() -> None:
    elapsed, results = run_blocking_queries(SimulatedDatabase(DatabaseConfig(capacity=2)), 4)
    assert len(results) == 4
    assert elapsed >= 2 * QUERY_S - EPSILON_S
    assert elapsed < 2 * QUERY_S + 2 * SLACK_S


def test_capacity_two_never_runs_more_than_two_blocking_queries_at_once() -> None:
    _, results = run_blocking_queries(SimulatedDatabase(DatabaseConfig(capacity=2)), 4)
    assert max_overlap(held_intervals(results), margin=0.01) <= 2


def test_capacity_two_records_pool_wait_for_the_blocking_queries_that_queued() -> None:
    _, results = run_blocking_queries(SimulatedDatabase(DatabaseConfig(capacity=2)), 4)
    pools = sorted(q.pool for _, q in results)
    # Two queries get a connection at once; the other two wait for one to finish (about one query's time;
    # the bound is far lower so a thread started late on a busy machine does not fail the test).
    assert sum(1 for p in pools if p > 0.2 * QUERY_S) >= 2
    assert all(q.wait >= QUERY_S - EPSILON_S for _, q in results)


def test_capacity_two_serialises_four_async_queries_into_two_rounds() -> None:
    elapsed, results = run_async_queries(SimulatedDatabase(DatabaseConfig(capacity=2)), 4)
    assert len(results) == 4
    assert elapsed >= 2 * QUERY_S - EPSILON_S
    assert elapsed < 2 * QUERY_S + 2 * SLACK_S


def test_capacity_two_never_runs_more_than_two_async_queries_at_once() -> None:
    _, results = run_async_queries(SimulatedDatabase(DatabaseConfig(capacity=2)), 4)
    assert max_overlap(held_intervals(results), margin=0.01) <= 2


def test_capacity_two_records_pool_wait_for_the_async_queries_that_queued() -> None:
    _, results = run_async_queries(SimulatedDatabase(DatabaseConfig(capacity=2)), 4)
    pools = sorted(q.pool for _, q in results)
    assert sum(1 for p in pools if p > 0.2 * QUERY_S) >= 2
    assert all(q.wait >= QUERY_S - EPSILON_S for _, q in results)


def test_unlimited_async_queries_record_no_pool_wait() -> None:
    _, results = run_async_queries(SimulatedDatabase(DatabaseConfig(capacity=0)), 4)
    assert all(q.pool == 0.0 for _, q in results)
    assert max_overlap(held_intervals(results), margin=0.01) == 4


# --- the faces the workload waits on -----------------------------------------------------------------------------


def test_the_blocking_face_waits_and_returns_the_seeded_rows() -> None:
    db = SimulatedDatabase()
    user, took = db.user(42, 30)
    assert user == seeded_user(42)
    assert took.wait >= 0.030 - EPSILON_S
    items, took = db.listing(42, 5, 20)
    assert items == seeded_items(42, 5)
    assert took.wait >= 0.020 - EPSILON_S
    assert db.short(42, 10).wait >= 0.010 - EPSILON_S


def test_the_awaitable_face_waits_and_returns_the_same_rows() -> None:
    db = SimulatedDatabase()

    async def ask() -> tuple[object, object, QueryTiming]:
        user, _ = await db.user_async(7, 10)
        items, took = await db.listing_async(7, 3, 20)
        await db.open_async()
        await db.close_async()
        return user, items, took

    user, items, took = asyncio.run(ask())
    assert (user, items) == (seeded_user(7), seeded_items(7, 3))
    assert took.wait >= 0.020 - EPSILON_S
    assert asyncio.run(db.short_async(7, 10)).wait >= 0.010 - EPSILON_S


def test_the_faces_wait_in_the_same_pool() -> None:
    """A listing that queues for the simulated pool reports it, as a real pool's checkout does."""
    db = SimulatedDatabase(DatabaseConfig(capacity=1))
    results: list[QueryTiming] = []
    threads = [threading.Thread(target=lambda: results.append(db.listing(1, 1, QUERY_MS)[1])) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert max(q.pool for q in results) > 0.5 * QUERY_S


def test_the_simulated_database_has_nothing_to_open_or_close() -> None:
    db = SimulatedDatabase()
    db.open()
    db.close()
    assert db.short(1, 0).wait < SLACK_S
