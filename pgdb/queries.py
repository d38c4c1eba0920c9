"""The three queries every raw driver sends, and how long each waits.

The wait is ``pg_sleep`` inside the query, so the connection is held for it as a slow query holds one. It sits in
the ``OFFSET``, which PostgreSQL evaluates (once) before it reads a row: a sleep in the ``FROM`` list is skipped
when no row is asked for (``LIMIT 0``) or none matches, and the wait must be the scenario's in every case.
The ORM builds the same statements from its mapped classes (:mod:`pgdb.orm`).

Values are never formatted into the SQL: each driver passes them as parameters (``%s`` for psycopg, ``$n`` for
asyncpg), and both prepare a statement they send often.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from simdb import User

# How long a request waits for a pooled connection (and a pool for its connections when it opens) before it gives
# up with a 503: long enough for any queue a benchmark step builds on purpose, short enough to end a step whose
# database is gone.
POOL_TIMEOUT_S = 30.0

# Parameters: user id, seconds.
USER = "SELECT u.id, u.name FROM users AS u WHERE u.id = %s OFFSET (SELECT 0 FROM pg_sleep(%s))"
# Parameters: user id, rows, seconds.
LISTING = (
    "SELECT i.id, i.title, i.price_cents, u.name FROM items AS i JOIN users AS u ON u.id = i.user_id "
    "WHERE i.user_id = %s ORDER BY i.position LIMIT %s OFFSET (SELECT 0 FROM pg_sleep(%s))"
)
# Parameters: user id, seconds.
SHORT = "SELECT u.id FROM users AS u WHERE u.id = %s OFFSET (SELECT 0 FROM pg_sleep(%s))"

Latency = Callable[[float], float]
"""Milliseconds asked -> seconds the query waits (the scenario's jitter, if it has one)."""


def seconds(ms: float) -> float:
    return ms / 1000.0


def numbered(sql: str) -> str:
    """The same SQL with asyncpg's placeholders: each ``%s`` in turn becomes ``$1``, ``$2``, ..."""
    count = iter(range(1, sql.count("%s") + 1))
    return re.sub("%s", lambda _: f"${next(count)}", sql)


ASYNCPG_USER = numbered(USER)
ASYNCPG_LISTING = numbered(LISTING)
ASYNCPG_SHORT = numbered(SHORT)


def the_user(rows: Sequence[User]) -> User:
    """The one row the user query returns; none means the schema is not the seeded one."""
    if len(rows) != 1:
        raise LookupError(f"the user query returned {len(rows)} rows, not 1: is the schema seeded (pgdb.schema)?")
    return rows[0]
