"""The rows a page is built from: the seeded formulas, and the plain rows the workload reads."""

from __future__ import annotations

from simdb import Item, ItemRow, User, UserRow, seeded_items, seeded_user


def test_a_seeded_user_is_named_after_its_id() -> None:
    assert seeded_user(42) == User(42, "user-42")


def test_the_seeded_listing_follows_the_position_formulas() -> None:
    items = seeded_items(7, 3)
    assert items == [
        Item(7000, "item 0", 100, "user-7"),
        Item(7001, "item 1", 137, "user-7"),
        Item(7002, "item 2", 174, "user-7"),
    ]
    assert [item.price_cents for item in seeded_items(1, 1000)] == [100 + (p * 37) % 900 for p in range(1000)]
    assert seeded_items(3, 0) == []


def test_plain_rows_are_what_the_workload_reads() -> None:
    """Checked by mypy: a plain row is a UserRow or an ItemRow, as an ORM's objects are."""
    user: UserRow = seeded_user(1)
    item: ItemRow = seeded_items(1, 1)[0]
    assert (user.id, user.name, item.id, item.title, item.price_cents) == (1, "user-1", 1000, "item 0", 100)
