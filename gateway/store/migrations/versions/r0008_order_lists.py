"""Orders: the ListID (66) of the NewOrderList an order came in, indexed with the session, so
that a list's orders are found after a restart (ListStatusRequest, ListCancelRequest).

Revision ID: 0008
Revises: 0007
Create Date: 2027-01-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types as of this revision (revisions never import the live schema).
_ID = sa.String(255)


def upgrade() -> None:
    # nullable, no default: existing orders came alone
    op.add_column("orders", sa.Column("list_id", _ID, nullable=True))
    op.create_index(op.f("ix_orders_list_id"), "orders", ["list_id", "session_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_orders_list_id"), table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("list_id")
