"""A report that commits with its event is kept on the event: two b-trees fewer in the commit
of every report.

``order_events.report_seq`` is the MsgSeqNum that carried the event's report when the report
committed with its event (the usual case); the ``reports`` table keeps the others (a report
told at a Logon, one sent while its event waited in memory for the store). The partial index
``ix_order_events_unreported`` (``session_id, event_id`` of the events with an ExecID and no
``report_seq``) takes the place of the index of every event by session, whose one use was a
session's unreported events, read at its Logon: that read no longer goes through the events
already reported with their own commit. The existing ``reports`` rows move onto their events
(so that the index starts small); the downgrade moves them back. Rows are kept both ways.

Revision ID: 0012
Revises: 0011
Create Date: 2027-02-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNREPORTED = sa.text("exec_id IS NOT NULL AND report_seq IS NULL")


def upgrade() -> None:
    op.add_column("order_events", sa.Column("report_seq", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE order_events SET report_seq = (SELECT seq FROM reports "
        "WHERE reports.exec_id = order_events.exec_id) "
        "WHERE exec_id IN (SELECT exec_id FROM reports)"
    )
    op.execute("DELETE FROM reports WHERE EXISTS (SELECT 1 FROM order_events WHERE "
               "order_events.exec_id = reports.exec_id AND order_events.report_seq IS NOT NULL)")
    op.drop_index("ix_order_events_session_id", table_name="order_events")
    op.create_index("ix_order_events_unreported", "order_events", ["session_id", "event_id"],
                    sqlite_where=_UNREPORTED, postgresql_where=_UNREPORTED)


def downgrade() -> None:
    op.execute(
        "INSERT INTO reports (exec_id, session_id, seq) SELECT exec_id, session_id, report_seq "
        "FROM order_events WHERE report_seq IS NOT NULL AND exec_id IS NOT NULL "
        "AND exec_id NOT IN (SELECT exec_id FROM reports)"
    )
    op.drop_index("ix_order_events_unreported", table_name="order_events")
    op.create_index("ix_order_events_session_id", "order_events", ["session_id", "event_id"])
    op.drop_column("order_events", "report_seq")
