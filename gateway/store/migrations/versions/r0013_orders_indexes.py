"""Fewer index entries written per order: two indexes of ``orders`` shrink or go.

* ``ix_orders_is_open`` keeps the open orders only (``WHERE is_open``): its one use is the open
  orders read at start, and an index of every order by ``is_open`` moved each order from the
  open entries to the closed ones when it ended (two pages of the commit that ends it, on
  SQLite, once orders rest), in an index as large as every order ever stored. An order's entry
  is now added when it is stored open and taken out when it ends.
* ``ix_orders_session_id`` (``session_id, cl_ord_id``) is dropped. An order is found by its
  ClOrdID through ``ix_order_events_cl_ord_id``, which holds every ClOrdID an order's chain had
  (the NewOrderSingle's, each cancel's and replace's: the order's present one among them),
  then by its OrderID. It was written twice an order (the order stored, then updated: SQLite
  rewrites an index entry whose column a statement sets, the value unchanged or not), and the
  client's ClOrdIDs land anywhere in it (about two pages of each commit on SQLite). Its other
  reader, the audit's orders of some sessions (``fixgw audit --store``), now reads the orders
  table through (a store's every order, not only those sessions'): an offline read, once a run.

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
    op.drop_index("ix_orders_session_id", table_name="orders")


def downgrade() -> None:
    op.create_index("ix_orders_session_id", "orders", ["session_id", "cl_ord_id"])
    op.drop_index("ix_orders_is_open", table_name="orders")
    op.create_index("ix_orders_is_open", "orders", ["is_open"])
