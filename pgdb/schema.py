"""The benchmark's tables: created and seeded once per database, checked before every run.

``users`` (200, named ``user-<id>``) and ``items`` (1,000 per user, 200,000 in all, indexed by user and position)
hold exactly the rows :func:`simdb.seeded_items` computes, so a page has the same JSON on both backends. The
seed is one ``INSERT ... SELECT`` over ``generate_series`` (well under a second), in the same transaction as the
tables, so a failed creation leaves nothing behind. ``bench_schema`` records the version and the counts; the check
compares it, the real counts, the index and every row with the formulas, and names the first thing that is wrong.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

SCHEMA_VERSION = 1
USERS = 200
ITEMS_PER_USER = 1000
ITEMS = USERS * ITEMS_PER_USER
TABLES = ("users", "items", "bench_schema")
INDEX = "items_user_position"
CONNECT_TIMEOUT_S = 10

CREATE = sql.SQL("""
CREATE TABLE users (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE items (
    id bigint PRIMARY KEY,
    user_id integer NOT NULL,
    position integer NOT NULL,
    title text NOT NULL,
    price_cents integer NOT NULL
);
INSERT INTO users (id, name) SELECT u, 'user-' || u FROM generate_series(1, {users}) AS u;
INSERT INTO items (id, user_id, position, title, price_cents)
    SELECT u * 1000 + p, u, p, 'item ' || p, 100 + (p * 37) % 900
    FROM generate_series(1, {users}) AS u, generate_series(0, {per_user} - 1) AS p;
ALTER TABLE items ADD FOREIGN KEY (user_id) REFERENCES users;
CREATE INDEX items_user_position ON items (user_id, position);
CREATE TABLE bench_schema (version integer NOT NULL, users integer NOT NULL, items integer NOT NULL);
INSERT INTO bench_schema (version, users, items) VALUES ({version}, {users}, {items});
ANALYZE users, items;
""").format(
    users=sql.Literal(USERS), per_user=sql.Literal(ITEMS_PER_USER), version=sql.Literal(SCHEMA_VERSION),
    items=sql.Literal(ITEMS),
)  # fmt: skip

# Each check counts what is wrong; zero means it holds. In order: the first that fails is named. With the counts
# and the foreign key they pin every row: ids are unique and follow from (user, position), positions are 0..999, so
# 200,000 rows over 200 users are 1,000 for each.
CHECKS: tuple[tuple[str, sql.Composed], ...] = tuple(
    (what, sql.SQL(query).format(users=sql.Literal(USERS), per_user=sql.Literal(ITEMS_PER_USER)))
    for what, query in (
        (f"users whose name is not 'user-<id>' or whose id is outside 1..{USERS}",
         "SELECT count(*) FROM users WHERE name <> 'user-' || id OR id NOT BETWEEN 1 AND {users}"),
        ("items that differ from the seed (id, position, title or price_cents)",
         "SELECT count(*) FROM items WHERE id <> user_id * 1000 + position OR title <> 'item ' || position "
         "OR price_cents <> 100 + (position * 37) % 900 OR position NOT BETWEEN 0 AND {per_user} - 1"),
    )
)  # fmt: skip

REMEDY = "drop the tables users, items and bench_schema (or use an empty database) and the harness creates them again"


class SchemaError(RuntimeError):
    """The database cannot be used: it cannot be reached, the schema cannot be created, or it is not the one the
    harness seeds. The message names what failed."""


def ensure(conninfo: str) -> bool:
    """Create the schema if none of its tables exists, then check it; True if it was created just now.

    A database with some of the tables but not all is refused rather than repaired: they may be someone else's.
    """
    with _connect(conninfo) as conn:
        present = _present(conn)
        if not present:
            _create(conn)
        elif len(present) < len(TABLES):
            missing = [t for t in TABLES if t not in present]
            raise SchemaError(
                f"the database has the table(s) {', '.join(present)} but not {', '.join(missing)}: it is not a "
                f"schema this harness made; {REMEDY}"
            )
        _check(conn)
    return not present


def check(conninfo: str) -> None:
    """Check the schema without changing anything; raise SchemaError naming what is wrong."""
    with _connect(conninfo) as conn:
        present = _present(conn)
        if len(present) < len(TABLES):
            missing = [t for t in TABLES if t not in present]
            raise SchemaError(f"the benchmark schema is missing the table(s) {', '.join(missing)}; {REMEDY}")
        _check(conn)


def _connect(conninfo: str) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)
    except psycopg.Error as error:
        raise SchemaError(f"could not connect to the database: {str(error).strip()}") from error


def _present(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    """Which of the schema's tables the connection sees (on its search path)."""
    found = []
    for table in TABLES:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
        if row is not None and row[0]:
            found.append(table)
    return found


def _create(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    try:
        with conn.transaction():
            conn.execute(CREATE)
    except psycopg.errors.InsufficientPrivilege as error:
        user = conn.info.user
        raise SchemaError(
            f"user {user!r} may not create tables in database {conn.info.dbname!r} (schema on its search path): "
            f"{str(error).strip()}; grant it CREATE there, or let the harness use its own cluster"
        ) from error
    except psycopg.Error as error:
        raise SchemaError(f"could not create the benchmark schema: {str(error).strip()}") from error


def _check(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    try:
        _check_contents(conn)
    except psycopg.Error as error:
        raise SchemaError(f"could not check the benchmark schema: {str(error).strip()}; {REMEDY}") from error


def _check_contents(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    recorded = conn.execute("SELECT version, users, items FROM bench_schema").fetchall()
    if len(recorded) != 1:
        raise SchemaError(f"bench_schema has {len(recorded)} rows, not 1; {REMEDY}")
    version, users, items = recorded[0]
    if version != SCHEMA_VERSION:
        raise SchemaError(f"the schema is version {version}, this harness uses version {SCHEMA_VERSION}; {REMEDY}")
    if (users, items) != (USERS, ITEMS):
        raise SchemaError(
            f"bench_schema records {users} users and {items} items, this harness seeds {USERS} and {ITEMS}; {REMEDY}"
        )
    for table, expected in (("users", USERS), ("items", ITEMS)):
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
        count = row[0] if row else None
        if count != expected:
            raise SchemaError(f"table {table} has {count} rows, not the {expected} it was seeded with; {REMEDY}")
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (INDEX,)).fetchone()
    if not (row and row[0]):
        raise SchemaError(f"the index {INDEX} on items(user_id, position) is missing; {REMEDY}")
    for what, query in CHECKS:
        row = conn.execute(query).fetchone()
        wrong = row[0] if row else None
        if wrong:
            raise SchemaError(f"{wrong} {what}; {REMEDY}")
