"""The real database's faces: the same rows as the simulated one, the waits inside PostgreSQL, the pool timed apart.

The first part starts no process: the SQL each driver sends, the errors that become a 503, which face a server
gets and what it refuses. The integration part runs every face (psycopg, SQLAlchemy's Session; psycopg async,
asyncpg, SQLAlchemy's AsyncSession) against a real PostgreSQL (tests/conftest.py's ``pg_cluster``), and creates,
checks and damages the schema in databases of its own.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import psycopg
import psycopg_pool
import pytest
import sqlalchemy.exc
from anyio.from_thread import start_blocking_portal
from psycopg.conninfo import make_conninfo
from sqlalchemy import create_engine

from pgdb import choose, failures, orm, queries, schema
from pgdb.aio import AsyncpgDatabase, AsyncPsycopgDatabase, AsyncSqlAlchemyDatabase
from pgdb.blocking import PsycopgDatabase, SqlAlchemyDatabase
from runner.postgres import Cluster
from runner.servers import free_port
from simdb import ConfigError, DatabaseConfig, DatabaseUnavailable, SimulatedDatabase, Timing
from simdb import workload as wl
from simdb.workload import PagePlan, ShortPlan

URL = "postgresql://bench:secret@127.0.0.1:5999/bench"
POSTGRES = DatabaseConfig(backend="postgres", url=URL, pool_size=4)
PSYCOPG_DIALECT = create_engine("postgresql+psycopg://").dialect  # to compile statements; it never connects

# --- the SQL ---------------------------------------------------------------------------------------------------------


def test_numbered_gives_each_placeholder_its_number_in_turn() -> None:
    assert queries.numbered("a = %s AND b < %s LIMIT %s") == "a = $1 AND b < $2 LIMIT $3"


@pytest.mark.parametrize(
    ("psycopg_sql", "asyncpg_sql", "parameters"),
    [
        (queries.USER, queries.ASYNCPG_USER, 2),
        (queries.LISTING, queries.ASYNCPG_LISTING, 3),
        (queries.SHORT, queries.ASYNCPG_SHORT, 2),
    ],
)
def test_both_raw_drivers_send_the_same_sql_with_the_wait_in_the_offset(
    psycopg_sql: str, asyncpg_sql: str, parameters: int
) -> None:
    assert psycopg_sql.count("%s") == parameters
    assert asyncpg_sql == queries.numbered(psycopg_sql)
    # The wait is evaluated before any row is read, so it happens even when no row is asked for or found.
    assert psycopg_sql.endswith("OFFSET (SELECT 0 FROM pg_sleep(%s))")


@pytest.mark.parametrize("statement", [orm.USER, orm.LISTING, orm.SHORT])
def test_the_orm_statements_wait_the_same_way(statement: Any) -> None:
    text = " ".join(str(statement.compile(dialect=PSYCOPG_DIALECT)).split())
    assert text.endswith("OFFSET (SELECT 0 FROM pg_sleep(%(seconds)s))")
    assert "%(user_id)s" in text


def test_the_orm_listing_joins_the_user_orders_by_position_and_limits_the_rows() -> None:
    text = " ".join(str(orm.LISTING.compile(dialect=PSYCOPG_DIALECT)).split())
    assert "FROM items JOIN users ON users.id = items.user_id" in text
    assert "ORDER BY items.position LIMIT %(rows)s" in text


# --- driver errors into DatabaseUnavailable ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        psycopg_pool.PoolTimeout("couldn't get a connection"),
        sqlalchemy.exc.TimeoutError("QueuePool limit reached"),
        TimeoutError(),  # asyncpg's pool
    ],
)
def test_no_free_connection_in_time_is_database_unavailable(error: Exception) -> None:
    with pytest.raises(DatabaseUnavailable) as caught, failures.reaching(2.5):
        raise error
    assert caught.value.detail == "no database connection came free within 2.5 s"
    assert caught.value.__cause__ is error


@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError("connection refused"),
        sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection")),
        sqlalchemy.exc.InterfaceError("SELECT 1", {}, Exception("connection is closed")),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        ConnectionRefusedError(111, "Connect call failed"),
    ],
)
def test_a_refused_or_lost_connection_is_database_unavailable(error: Exception) -> None:
    with pytest.raises(DatabaseUnavailable) as caught, failures.reaching(30):
        raise error
    # The same words whichever driver failed: both apps, every driver, one body.
    assert caught.value.body() == {"error": "database_unavailable", "detail": failures.UNREACHABLE_DETAIL}


@pytest.mark.parametrize(
    "error", [psycopg.errors.UndefinedTable("relation does not exist"), LookupError("no user"), ValueError("bug")]
)
def test_a_wrong_query_is_not_unavailability(error: Exception) -> None:
    with pytest.raises(type(error)), failures.reaching(30):
        raise error


def test_a_pool_that_cannot_open_says_why_for_the_server_log() -> None:
    expected = r"pool of 3 connections within 5 s: OperationalError: refused"
    with pytest.raises(DatabaseUnavailable, match=expected), failures.opening(3, 5):
        raise psycopg.OperationalError("refused")


# --- choosing a face -------------------------------------------------------------------------------------------------


def test_the_simulated_backend_gets_the_simulated_database_on_both_sides() -> None:
    config = DatabaseConfig(capacity=3)
    blocking = choose.blocking_database(config, None)
    aio = choose.async_database(config, None)
    assert isinstance(blocking, SimulatedDatabase) and blocking.config == config
    assert isinstance(aio, SimulatedDatabase) and aio.config == config


def test_the_simulated_driver_of_a_postgres_scenario_waits_the_same_latencies_with_no_pool() -> None:
    config = DatabaseConfig(backend="postgres", url="postgresql://u:p@127.0.0.1:1/bench", jitter=0.1, seed=7)
    for face in (choose.blocking_database(config, "simulated"), choose.async_database(config, "simulated")):
        assert isinstance(face, SimulatedDatabase)
        assert face.config == DatabaseConfig(jitter=0.1, seed=7)  # no capacity, no URL: nothing to connect to


def test_a_driver_on_the_simulated_backend_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"SIMDB_DRIVER='asyncpg' applies only to the postgres and http backends"):
        choose.async_database(DatabaseConfig(), "asyncpg")


@pytest.mark.parametrize(
    ("driver", "face"), [(None, PsycopgDatabase), ("psycopg", PsycopgDatabase), ("sqlalchemy", SqlAlchemyDatabase)]
)
def test_each_blocking_driver_gets_its_face(driver: str | None, face: type) -> None:
    chosen = choose.blocking_database(POSTGRES, driver)
    assert type(chosen) is face
    assert getattr(chosen, "pool_size", None) == POSTGRES.pool_size


@pytest.mark.parametrize(
    ("driver", "face"),
    [
        (None, AsyncPsycopgDatabase),
        ("psycopg", AsyncPsycopgDatabase),
        ("asyncpg", AsyncpgDatabase),
        ("sqlalchemy", AsyncSqlAlchemyDatabase),
    ],
)
def test_each_async_driver_gets_its_face(driver: str | None, face: type) -> None:
    chosen = choose.async_database(POSTGRES, driver)
    assert type(chosen) is face
    assert getattr(chosen, "pool_size", None) == POSTGRES.pool_size


def test_asyncpg_has_no_blocking_face() -> None:
    expected = r"'asyncpg' has no blocking face; the drivers for it are psycopg, sqlalchemy"
    with pytest.raises(ConfigError, match=expected):
        choose.blocking_database(POSTGRES, "asyncpg")


@pytest.mark.parametrize("chooser", [choose.blocking_database, choose.async_database])
def test_an_unknown_driver_is_refused_with_the_known_ones(chooser: Callable[..., object]) -> None:
    with pytest.raises(ConfigError, match=r"SIMDB_DRIVER='psycopg2' has no .* face; the drivers for it are .*psycopg"):
        chooser(POSTGRES, "psycopg2")


@pytest.mark.parametrize("chooser", [choose.blocking_database, choose.async_database])
def test_postgres_without_a_url_is_refused(chooser: Callable[..., object]) -> None:
    with pytest.raises(ConfigError, match="SIMDB_URL is empty"):
        chooser(DatabaseConfig(backend="postgres"), "psycopg")


def test_a_real_face_waits_with_the_scenarios_jitter_as_the_simulated_one_spreads_it() -> None:
    jittered = DatabaseConfig(backend="postgres", url=URL, jitter=0.2, seed=5)
    face = choose.blocking_database(jittered, "psycopg")
    assert isinstance(face, PsycopgDatabase)
    simulated = SimulatedDatabase(DatabaseConfig(jitter=0.2, seed=5))
    assert [face.latency(100) for _ in range(20)] == [simulated.latency(100) for _ in range(20)]
    plain = choose.blocking_database(POSTGRES, "psycopg")
    assert isinstance(plain, PsycopgDatabase)
    assert plain.latency(80) == pytest.approx(0.080)


@pytest.mark.parametrize(
    ("environ", "driver"), [({}, None), ({"SIMDB_DRIVER": ""}, None), ({"SIMDB_DRIVER": "x"}, "x")]
)
def test_the_driver_is_read_from_the_environment(environ: dict[str, str], driver: str | None) -> None:
    assert choose.driver_from_env(environ) == driver


def test_the_simulated_database_is_every_kind_of_face() -> None:
    """Checked by mypy as much as here: the apps handle every backend alike."""
    blocking: choose.BlockingFace = SimulatedDatabase()
    aio: choose.AsyncFace = SimulatedDatabase()
    assert isinstance(blocking, SimulatedDatabase) and isinstance(aio, SimulatedDatabase)


def test_a_schema_on_a_closed_port_is_a_connection_error() -> None:
    with pytest.raises(schema.SchemaError, match="could not connect to the database"):
        schema.ensure(f"postgresql://bench@127.0.0.1:{free_port()}/bench")


# --- every face on a real PostgreSQL ----------------------------------------------------------------------------------

FACES = [
    pytest.param(("blocking", "psycopg"), id="psycopg"),
    pytest.param(("blocking", "sqlalchemy"), id="sqlalchemy-session"),
    pytest.param(("async", "psycopg"), id="psycopg-async"),
    pytest.param(("async", "asyncpg"), id="asyncpg"),
    pytest.param(("async", "sqlalchemy"), id="sqlalchemy-asyncsession"),
]


@dataclass
class Driven:
    """A face of either kind, driven from the test's threads (an async face runs in an event loop of its own)."""

    page: Callable[[PagePlan, int], tuple[dict[str, Any], Timing]]
    short: Callable[[ShortPlan], tuple[dict[str, Any], Timing]]


@contextmanager
def driven(kind_and_driver: tuple[str, str], url: str, pool_size: int, timeout: float = 10.0) -> Iterator[Driven]:
    kind, driver = kind_and_driver
    if kind == "blocking":
        face = choose.BLOCKING_DRIVERS[driver](url, pool_size, timeout=timeout)
        face.open()
        try:
            yield Driven(
                page=lambda plan, user_id: wl.run_page(face, plan, user_id), short=lambda plan: wl.run_short(face, plan)
            )
        finally:
            face.close()
        return
    aio = choose.ASYNC_DRIVERS[driver](url, pool_size, timeout=timeout)
    with start_blocking_portal() as portal:
        portal.call(aio.open_async)
        try:
            yield Driven(
                page=lambda plan, user_id: portal.call(wl.run_page_async, aio, plan, user_id),
                short=lambda plan: portal.call(wl.run_short_async, aio, plan),
            )
        finally:
            portal.call(aio.close_async)


def at_once(count: int, call: Callable[[], object]) -> list[tuple[float, Any]]:
    """Run ``call`` in ``count`` threads released together; each result with the moment its call began."""
    results: list[tuple[float, Any]] = []
    barrier = threading.Barrier(count)
    lock = threading.Lock()

    def one() -> None:
        barrier.wait()
        started = time.perf_counter()
        try:
            result: Any = call()
        except Exception as error:  # the test looks at what each call raised
            result = error
        with lock:
            results.append((started, result))

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return sorted(results, key=lambda r: r[0])


@pytest.mark.integration
@pytest.mark.parametrize("face", FACES)
@pytest.mark.parametrize(("user_id", "rows"), [(42, 20), (42, 0), (1, 1000), (200, 3)])
def test_a_page_on_postgres_is_the_simulated_page(pg_url: str, face: tuple[str, str], user_id: int, rows: int) -> None:
    plan = PagePlan(user_lookup_ms=0, app_work_ms=0, listing_ms=0, rows=rows)
    expected, _ = wl.run_page(SimulatedDatabase(), plan, user_id)
    with driven(face, pg_url, 1) as db:
        body, _ = db.page(plan, user_id)
        short, _ = db.short(ShortPlan(0))
    assert body == expected
    assert short == {"ok": True}


@pytest.mark.integration
@pytest.mark.parametrize("face", FACES)
def test_each_query_waits_its_time_inside_the_database(pg_url: str, face: tuple[str, str]) -> None:
    """No row asked for (rows=0), and still both waits happen, in the queries, not in the pool."""
    with driven(face, pg_url, 1) as db:
        db.page(PagePlan(0, 0, 0, 1), 42)  # the first use of a connection prepares what it will reuse
        _, timing = db.page(PagePlan(user_lookup_ms=30, app_work_ms=0, listing_ms=50, rows=0), 42)
        _, short = db.short(ShortPlan(query_ms=40))
    assert 0.080 <= timing.db.wait < 0.080 + 0.5
    assert timing.db.pool < 0.05
    assert 0.040 <= short.db.wait < 0.040 + 0.5


@pytest.mark.integration
@pytest.mark.parametrize("face", FACES)
def test_with_a_pool_of_one_the_second_request_waits_for_the_first_query(pg_url: str, face: tuple[str, str]) -> None:
    with driven(face, pg_url, 1) as db:
        db.short(ShortPlan(0))
        results = at_once(2, lambda: db.short(ShortPlan(query_ms=300))[1].db)
    (_, first), (_, second) = sorted(results, key=lambda r: r[1].pool)
    assert first.pool < 0.1
    assert first.wait >= 0.300 and second.wait >= 0.300
    # The second waited for the connection the first held through its query: about the first's query time.
    assert second.pool >= 0.8 * 0.300
    assert second.pool < first.wait + 0.3


@pytest.mark.integration
@pytest.mark.parametrize("face", FACES)
def test_pg_sleep_holds_a_connection_busy_in_the_database(pg_url: str, face: tuple[str, str]) -> None:
    name = f"holds-{secrets.token_hex(4)}"
    url = f"{pg_url}?application_name={name}"
    busy = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state = 'active'"
    with driven(face, url, 2) as db, psycopg.connect(pg_url, autocommit=True) as watcher:
        worker = threading.Thread(target=db.short, args=(ShortPlan(query_ms=600),))
        worker.start()
        seen = 0
        deadline = time.monotonic() + 0.5
        while not seen and time.monotonic() < deadline:
            row = watcher.execute(busy, (name,)).fetchone()
            seen = row[0] if row else 0
            time.sleep(0.02)
        worker.join()
        row = watcher.execute(busy, (name,)).fetchone()
    assert seen == 1
    assert row is not None and row[0] == 0


@pytest.mark.integration
@pytest.mark.parametrize("face", FACES)
def test_no_free_connection_in_time_is_a_503_not_a_driver_error(pg_url: str, face: tuple[str, str]) -> None:
    with driven(face, pg_url, 1, timeout=0.3) as db:
        db.short(ShortPlan(0))
        results = at_once(2, lambda: db.short(ShortPlan(query_ms=1000)))
    errors = [r for _, r in results if isinstance(r, BaseException)]
    assert len(errors) == 1, results
    assert isinstance(errors[0], DatabaseUnavailable)
    assert errors[0].detail == "no database connection came free within 0.3 s"


@pytest.mark.integration
@pytest.mark.parametrize("face", FACES)
def test_a_lost_connection_is_a_503_and_the_pool_recovers(pg_url: str, face: tuple[str, str]) -> None:
    """Connections cut by the server (as when it restarts) give DatabaseUnavailable, or a fresh connection (asyncpg
    reconnects on its own); never a driver's error. Then the pool serves again."""
    name = f"lost-{secrets.token_hex(4)}"
    with driven(face, f"{pg_url}?application_name={name}", 2) as db:
        db.short(ShortPlan(0))
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (name,))
        time.sleep(0.2)
        outcomes: list[object] = []
        for _ in range(20):
            try:
                outcomes.append(db.short(ShortPlan(0))[0])
            except DatabaseUnavailable as error:
                outcomes.append(error)
                time.sleep(0.1)
            if outcomes[-1] == {"ok": True}:
                break
    assert outcomes[-1] == {"ok": True}, outcomes


@pytest.mark.integration
@pytest.mark.parametrize("face", FACES)
def test_a_pool_that_cannot_connect_fails_to_open(face: tuple[str, str]) -> None:
    nowhere = f"postgresql://bench@127.0.0.1:{free_port()}/bench"
    expected = "could not open a pool of 1 connections within 2 s"
    with pytest.raises(DatabaseUnavailable, match=expected), driven(face, nowhere, 1, timeout=2):
        pass


# --- the schema ------------------------------------------------------------------------------------------------------


@pytest.fixture
def fresh_database(pg_cluster: Cluster) -> Iterator[str]:
    """An empty database of its own in the session's cluster; its conninfo."""
    name = f"fresh_{secrets.token_hex(4)}"
    with psycopg.connect(pg_cluster.url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield make_conninfo(pg_cluster.url, dbname=name)
    finally:
        with psycopg.connect(pg_cluster.url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _run(conninfo: str, statement: str) -> Any:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        cursor = conn.execute(statement.encode())
        return cursor.fetchall() if cursor.description else None


@pytest.mark.integration
def test_ensure_creates_and_seeds_the_schema_once_then_only_checks_it(fresh_database: str) -> None:
    assert schema.ensure(fresh_database) is True
    counts = _run(fresh_database, "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM items)")
    assert counts == [(schema.USERS, schema.ITEMS)]
    table = "SELECT 'items'::regclass::oid, (SELECT min(xmin::text::bigint) FROM items)"
    before = _run(fresh_database, table)
    assert schema.ensure(fresh_database) is False
    schema.check(fresh_database)
    assert _run(fresh_database, table) == before  # the same table, the same rows: nothing was recreated


@pytest.mark.integration
def test_check_names_the_tables_of_a_database_without_the_schema(fresh_database: str) -> None:
    with pytest.raises(schema.SchemaError, match=r"missing the table.s. users, items, bench_schema"):
        schema.check(fresh_database)


DAMAGE = [
    ("DELETE FROM items WHERE id = 42007", r"table items has 199999 rows, not the 200000"),
    ("UPDATE items SET title = 'changed' WHERE id = 42007", r"1 items that differ from the seed"),
    ("UPDATE users SET name = 'bob' WHERE id = 7", r"1 users whose name is not 'user-<id>'"),
    ("UPDATE items SET position = 1007 WHERE id = 42007", r"1 items that differ from the seed"),
    ("DROP INDEX items_user_position", r"the index items_user_position on items\(user_id, position\) is missing"),
    ("UPDATE bench_schema SET version = 0", r"the schema is version 0, this harness uses version 1"),
    ("DELETE FROM bench_schema", r"bench_schema has 0 rows, not 1"),
    ("UPDATE bench_schema SET items = 5", r"bench_schema records 200 users and 5 items"),
    ("DROP TABLE bench_schema", r"the table.s. users, items but not bench_schema"),
]


@pytest.mark.integration
@pytest.mark.parametrize(("damage", "named"), DAMAGE)
def test_a_damaged_schema_is_named_and_not_repaired(fresh_database: str, damage: str, named: str) -> None:
    schema.ensure(fresh_database)
    _run(fresh_database, damage)
    with pytest.raises(schema.SchemaError, match=named) as caught:
        schema.ensure(fresh_database)
    assert schema.REMEDY in str(caught.value)
    with pytest.raises(schema.SchemaError):
        schema.check(fresh_database)
