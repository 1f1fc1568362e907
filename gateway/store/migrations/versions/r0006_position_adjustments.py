"""Position adjustments: where a venue's own position differed from the one computed from the
gateway's fills, the difference as an explicit record (never a silent overwrite, never an
invented fill).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types as of this revision (revisions never import the live schema).
_NAME = sa.String(64)
_ID = sa.String(255)
_REASON = sa.String(200)


def upgrade() -> None:
    op.create_table(
        "position_adjustments",
        sa.Column("venue", _NAME, nullable=False),
        sa.Column("symbol", _ID, nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("computed", sa.Text(), nullable=False),
        sa.Column("venue_quantity", sa.Text(), nullable=False),
        sa.Column("delta", sa.Text(), nullable=False),
        sa.Column("reason", _REASON, nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("venue", "symbol", "ts_ns",
                                name=op.f("pk_position_adjustments")),
    )


def downgrade() -> None:
    op.drop_table("position_adjustments")
