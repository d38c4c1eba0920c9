"""The tables as SQLAlchemy ORM classes, and the page's three statements built from them.

The ORM faces map every row into these objects, as an application written with SQLAlchemy does; the statements
match :mod:`pgdb.queries` (the wait in the ``OFFSET``), and are built once so SQLAlchemy compiles each once.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, ScalarSelect, Select, bindparam, func, literal_column
from sqlalchemy import select as select_
from sqlalchemy.orm import DeclarativeBase, Mapped, contains_eager, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class UserRecord(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str]


class ItemRecord(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    position: Mapped[int]
    title: Mapped[str]
    price_cents: Mapped[int]
    user: Mapped[UserRecord] = relationship()


def _wait() -> ScalarSelect[int]:
    sleep = func.pg_sleep(bindparam("seconds", type_=Float))
    return select_(literal_column("0", Integer)).select_from(sleep).scalar_subquery()


_user_id = bindparam("user_id", type_=Integer)

USER: Select[UserRecord] = select_(UserRecord).where(UserRecord.id == _user_id).offset(_wait())
LISTING: Select[ItemRecord] = (
    select_(ItemRecord)
    .join(ItemRecord.user)
    .options(contains_eager(ItemRecord.user))
    .where(ItemRecord.user_id == _user_id)
    .order_by(ItemRecord.position)
    .limit(bindparam("rows", type_=Integer))
    .offset(_wait())
)
SHORT: Select[int] = select_(UserRecord.id).where(UserRecord.id == _user_id).offset(_wait())
