"""The rows a page is built from: what the workload reads from them, and the plain rows most faces return.

The workload only reads attributes (:class:`UserRow`, :class:`ItemRow`), so a face may hand it plain rows (the
simulated database, the raw drivers) or an ORM's mapped objects, and the JSON is built by the same code either
way. :func:`seeded_user` and :func:`seeded_items` compute the rows the seeded schema holds (pgdb/schema.py writes
the same formulas in SQL): the simulated database returns them, and tests hold a real database to them.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol


class UserRow(Protocol):
    """A user as the page shows it."""

    @property
    def id(self) -> int: ...

    @property
    def name(self) -> str: ...


class ItemRow(Protocol):
    """One listing row as the page shows it."""

    @property
    def id(self) -> int: ...

    @property
    def title(self) -> str: ...

    @property
    def price_cents(self) -> int: ...


class User(NamedTuple):
    id: int
    name: str


class Item(NamedTuple):
    """A listing row with its user's name, as the listing query returns it (joined to the user)."""

    id: int
    title: str
    price_cents: int
    user_name: str


def seeded_user(user_id: int) -> User:
    return User(user_id, f"user-{user_id}")


def seeded_items(user_id: int, rows: int) -> list[Item]:
    """The first ``rows`` of the user's listing, in position order."""
    name = f"user-{user_id}"
    return [Item(user_id * 1000 + i, f"item {i}", 100 + (i * 37) % 900, name) for i in range(rows)]
