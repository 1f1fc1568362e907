"""Fewer pages written per order: each b-tree an order's commits touch is at least one page of
the SQLite write-ahead log, and an order's two commits touched about 31 of them.

* SQLite: ``order_events.event_id`` becomes ``INTEGER`` so that it is the table's rowid (it was
  ``BIGINT``, an index of its own beside the table); ``messages``, ``reports`` and ``fills``
  become ``WITHOUT ROWID`` tables (their rows live in their primary key's b-tree: one b-tree
  each instead of a table and its primary key index). The tables are rebuilt, rows copied.
* Both back ends: ``ix_orders_list_id`` covers only the orders of lists (``list_id IS NOT
  NULL``), so an order that came alone never touches it.

Revision ID: 0011
Revises: 0010
Create Date: 2027-01-22
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import CreateIndex, CreateTable

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the tables as of this revision (revisions never import the live schema).
_NAMES = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}
_SESSION = sa.String(255)
_ID = sa.String(255)
_NAME = sa.String(64)
_LISTED = sa.text("list_id IS NOT NULL")
_CHAINED = sa.text("cl_ord_id IS NOT NULL")


def _tables(compact: bool) -> list[sa.Table]:
    """The four tables rebuilt on SQLite, as this revision has them (``compact``) or as the
    one before it had them."""
    md = sa.MetaData(naming_convention=_NAMES)
    rowid: dict[str, Any] = {} if not compact else {"sqlite_with_rowid": False}
    events = sa.Table(
        "order_events", md,
        sa.Column("event_id", sa.Integer() if compact else sa.BigInteger(), nullable=False,
                  autoincrement=False),
        sa.Column("order_id", _NAME, nullable=False),
        sa.Column("session_id", _SESSION, nullable=False),
        sa.Column("kind", _NAME, nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("exec_id", _ID, nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("cl_ord_id", _ID, nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
        sa.UniqueConstraint("exec_id"),
        sa.Index(None, "session_id", "event_id"),
        sa.Index(None, "order_id", "event_id"),
        sa.Index(None, "cl_ord_id", "session_id", "event_id", sqlite_where=_CHAINED),
    )
    messages = sa.Table(
        "messages", md,
        sa.Column("session_id", _SESSION, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", "seq"),
        **rowid,
    )
    reports = sa.Table(
        "reports", md,
        sa.Column("exec_id", _ID, nullable=False),
        sa.Column("session_id", _SESSION, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("exec_id"),
        **rowid,
    )
    fills = sa.Table(
        "fills", md,
        sa.Column("venue", _NAME, nullable=False),
        sa.Column("trade_id", _ID, nullable=False),
        sa.Column("order_id", _NAME, nullable=False),
        sa.Column("quantity", sa.Text(), nullable=False),
        sa.Column("price", sa.Text(), nullable=False),
        sa.Column("fee", sa.Text(), nullable=True),
        sa.Column("fee_currency", _NAME, nullable=True),
        sa.Column("liquidity", _NAME, nullable=True),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("venue", "trade_id"),
        sa.Index(None, "order_id"),
        **rowid,
    )
    return [events, messages, reports, fills]


def _rebuild(compact: bool) -> None:
    """Each table created anew (as ``compact`` says), its rows copied, its indexes made again."""
    dialect = op.get_bind().dialect
    for table in _tables(compact):
        old = f"{table.name}__old"
        columns = ", ".join(c.name for c in table.columns)
        op.execute(f"ALTER TABLE {table.name} RENAME TO {old}")
        op.execute(str(CreateTable(table).compile(dialect=dialect)))
        op.execute(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {old}")  # noqa: S608
        op.execute(f"DROP TABLE {old}")  # (its indexes with it)
        for index in table.indexes:
            op.execute(str(CreateIndex(index).compile(dialect=dialect)))


def _list_index(partial: bool) -> None:
    op.drop_index(op.f("ix_orders_list_id"), table_name="orders")
    if partial:
        op.create_index(op.f("ix_orders_list_id"), "orders", ["list_id", "session_id"],
                        sqlite_where=_LISTED, postgresql_where=_LISTED)
    else:
        op.create_index(op.f("ix_orders_list_id"), "orders", ["list_id", "session_id"])


def upgrade() -> None:
    _list_index(partial=True)
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(compact=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(compact=False)
    _list_index(partial=False)
