"""Sessions: the cancel-on-disconnect override of the client's last Logon (tag 8013).

Revision ID: 0003
Revises: 0002
Create Date: 2024-07-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types as of this revision (revisions never import the live schema).
_MODE = sa.String(16)


def upgrade() -> None:
    # nullable, no default: existing sessions have no override (their configured mode holds)
    op.add_column("sessions", sa.Column("cod_override", _MODE, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("cod_override")
