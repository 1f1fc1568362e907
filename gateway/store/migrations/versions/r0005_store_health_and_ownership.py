"""Store health and session ownership: a probe row the writer rewrites to learn that the store
takes writes again after an outage; gateway nodes with their fencing tokens and leases; the
node that owns each session.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types as of this revision (revisions never import the live schema).
_NAME = sa.String(64)
_ADDRESS = sa.String(255)


def upgrade() -> None:
    op.create_table(
        "store_probe",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("probed_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_probe")),
    )
    op.create_table(
        "gateway_nodes",
        sa.Column("node", _NAME, nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("address", _ADDRESS, nullable=False, server_default=""),
        sa.Column("host", _ADDRESS, nullable=False, server_default=""),
        sa.Column("process", _NAME, nullable=False, server_default=""),
        sa.Column("started_ms", sa.BigInteger(), nullable=False),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("node", name=op.f("pk_gateway_nodes")),
    )
    # nullable: a session no node has claimed yet
    op.add_column("sessions", sa.Column("owner", _NAME, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("owner")
    op.drop_table("gateway_nodes")
    op.drop_table("store_probe")
