"""Order events: the ClOrdID (11) an event gave its order's chain (a NewOrderSingle's, a cancel's,
a replace's) in a column of its own, indexed, so that a request naming a ClOrdID of an order no
longer open finds the order by an index (it was a LIKE over the session's last events, on the
store's only writer) and compares ClOrdIDs exactly (SQLite's LIKE ignores case). Existing
events get theirs from their JSON.

Revision ID: 0010
Revises: 0009
Create Date: 2027-01-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types as of this revision (revisions never import the live schema).
_ID = sa.String(255)
_NOT_NULL = sa.text("cl_ord_id IS NOT NULL")

# the ClOrdID of each event kind that gives one, from its JSON (SQLite's JSON1, PostgreSQL's json)
_FROM_JSON = {
    "sqlite": ("json_extract(data, '$.order.cl_ord_id')", "json_extract(data, '$.cl_ord_id')"),
    "postgresql": ("CAST(data AS json) -> 'order' ->> 'cl_ord_id'",
                   "CAST(data AS json) ->> 'cl_ord_id'"),
}


def upgrade() -> None:
    op.add_column("order_events", sa.Column("cl_ord_id", _ID, nullable=True))
    created, requested = _FROM_JSON[op.get_bind().dialect.name]
    op.execute(f"UPDATE order_events SET cl_ord_id = {created} WHERE kind = 'created'")  # noqa: S608
    op.execute(f"UPDATE order_events SET cl_ord_id = {requested} "  # noqa: S608
               "WHERE kind IN ('cancel_requested', 'replace_requested')")
    op.create_index(op.f("ix_order_events_cl_ord_id"), "order_events",
                    ["cl_ord_id", "session_id", "event_id"],
                    sqlite_where=_NOT_NULL, postgresql_where=_NOT_NULL)


def downgrade() -> None:
    op.drop_index(op.f("ix_order_events_cl_ord_id"), table_name="order_events")
    with op.batch_alter_table("order_events") as batch:
        batch.drop_column("cl_ord_id")
