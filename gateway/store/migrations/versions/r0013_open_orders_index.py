"""Only the open orders in ``ix_orders_is_open``: its one use is the open orders read at start,
and an index of every order by ``is_open`` moved each order from the open entries to the closed
ones when it ended -- two pages of the commit that ends it, on SQLite, in an index as large as
every order ever stored. It now keeps the open orders alone (``WHERE is_open``): an order's entry
is added when it is stored open and taken out when it ends, in an index as small as the book.

Revision ID: 0013
Revises: 0012
Create Date: 2027-02-12
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (as SQLAlchemy writes ``orders.c.is_open`` in a WHERE clause on each back end: SQLite uses a
# partial index only for a query whose WHERE holds the index's own term)
_OPEN_SQLITE = sa.text("is_open = 1")
_OPEN_POSTGRESQL = sa.text("is_open")


def upgrade() -> None:
    op.drop_index("ix_orders_is_open", table_name="orders")
    op.create_index("ix_orders_is_open", "orders", ["is_open"], sqlite_where=_OPEN_SQLITE,
                    postgresql_where=_OPEN_POSTGRESQL)


def downgrade() -> None:
    op.drop_index("ix_orders_is_open", table_name="orders")
    op.create_index("ix_orders_is_open", "orders", ["is_open"])
