"""Drop copies: each copy of an ExecutionReport a drop copy session is to receive, stored in
the commit of the event it copies, with the MsgSeqNum (34) that carried it to the drop copy
session once it was sent (NULL until then), so that what a drop copy missed is delivered when
it logs on again, after a restart too.

Revision ID: 0009
Revises: 0008
Create Date: 2027-01-20
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types as of this revision (revisions never import the live schema).
_SESSION = sa.String(255)
_ID = sa.String(255)


def upgrade() -> None:
    op.create_table(
        "drop_copies",
        sa.Column("session_id", _SESSION, nullable=False),
        sa.Column("exec_id", _ID, nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("source", _SESSION, nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("session_id", "exec_id", name=op.f("pk_drop_copies")),
    )
    op.create_index(op.f("ix_drop_copies_session_id"), "drop_copies",
                    ["session_id", "seq", "event_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_drop_copies_session_id"), table_name="drop_copies")
    op.drop_table("drop_copies")
