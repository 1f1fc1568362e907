"""Session store: sessions, sent messages, message log.

Revision ID: 0001
Revises:
Create Date: 2024-06-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types as of this revision (revisions never import the live schema).
_SESSION_ID = sa.String(255)
_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("session_id", _SESSION_ID, nullable=False),
        sa.Column("next_sender", sa.BigInteger(), nullable=False),
        sa.Column("next_target", sa.BigInteger(), nullable=False),
        sa.Column("creation_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_sessions")),
        sa.CheckConstraint("next_sender >= 1", name=op.f("ck_sessions_next_sender_positive")),
        sa.CheckConstraint("next_target >= 1", name=op.f("ck_sessions_next_target_positive")),
    )
    op.create_table(
        "messages",
        sa.Column("session_id", _SESSION_ID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", "seq", name=op.f("pk_messages")),
    )
    op.create_table(
        "message_log",
        sa.Column("id", _AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("session_id", _SESSION_ID, nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_log")),
        sa.CheckConstraint("direction IN ('in', 'out')", name=op.f("ck_message_log_direction")),
    )
    op.create_index(
        op.f("ix_message_log_session_id"), "message_log", ["session_id", "logged_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_message_log_session_id"), table_name="message_log")
    op.drop_table("message_log")
    op.drop_table("messages")
    op.drop_table("sessions")
