"""Kill switches: which scopes (a session id, or "*" for the whole gateway) an admin engaged.

Revision ID: 0004
Revises: 0003
Create Date: 2024-07-15
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types as of this revision (revisions never import the live schema).
_SCOPE = sa.String(255)
_REASON = sa.String(200)


def upgrade() -> None:
    op.create_table(
        "kill_switches",
        sa.Column("scope", _SCOPE, nullable=False),
        sa.Column("engaged", sa.Boolean(), nullable=False),
        sa.Column("reason", _REASON, nullable=False, server_default=""),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_kill_switches")),
    )


def downgrade() -> None:
    op.drop_table("kill_switches")
