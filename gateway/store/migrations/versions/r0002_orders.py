"""Orders: event log, order snapshots, fills, reported ExecIDs, id counters.

Revision ID: 0002
Revises: 0001
Create Date: 2024-06-15
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types as of this revision (revisions never import the live schema).
_SESSION_ID = sa.String(255)
_ID = sa.String(255)
_NAME = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "order_events",
        sa.Column("event_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("order_id", _NAME, nullable=False),
        sa.Column("session_id", _SESSION_ID, nullable=False),
        sa.Column("kind", _NAME, nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("exec_id", _ID, nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_order_events")),
        sa.UniqueConstraint("exec_id", name=op.f("uq_order_events_exec_id")),
    )
    op.create_index(op.f("ix_order_events_session_id"), "order_events", ["session_id", "event_id"])
    op.create_table(
        "orders",
        sa.Column("order_id", _NAME, nullable=False),
        sa.Column("session_id", _SESSION_ID, nullable=False),
        sa.Column("cl_ord_id", _ID, nullable=False),
        sa.Column("venue", _NAME, nullable=False),
        sa.Column("symbol", _ID, nullable=False),
        sa.Column("status", sa.String(1), nullable=False),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_orders")),
    )
    op.create_index(op.f("ix_orders_is_open"), "orders", ["is_open"])
    op.create_index(op.f("ix_orders_session_id"), "orders", ["session_id", "cl_ord_id"])
    op.create_table(
        "fills",
        sa.Column("venue", _NAME, nullable=False),
        sa.Column("trade_id", _ID, nullable=False),
        sa.Column("order_id", _NAME, nullable=False),
        sa.Column("quantity", sa.Text(), nullable=False),
        sa.Column("price", sa.Text(), nullable=False),
        sa.Column("fee", sa.Text(), nullable=True),
        sa.Column("fee_currency", _NAME, nullable=True),
        sa.Column("liquidity", _NAME, nullable=True),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("venue", "trade_id", name=op.f("pk_fills")),
    )
    op.create_index(op.f("ix_fills_order_id"), "fills", ["order_id"])
    op.create_table(
        "reports",
        sa.Column("exec_id", _ID, nullable=False),
        sa.Column("session_id", _SESSION_ID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("exec_id", name=op.f("pk_reports")),
    )
    op.create_table(
        "counters",
        sa.Column("name", _NAME, nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )


def downgrade() -> None:
    op.drop_table("counters")
    op.drop_table("reports")
    op.drop_index(op.f("ix_fills_order_id"), table_name="fills")
    op.drop_table("fills")
    op.drop_index(op.f("ix_orders_session_id"), table_name="orders")
    op.drop_index(op.f("ix_orders_is_open"), table_name="orders")
    op.drop_table("orders")
    op.drop_index(op.f("ix_order_events_session_id"), table_name="order_events")
    op.drop_table("order_events")
