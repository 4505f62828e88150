"""view snapshots (the dashboard's whole-history views, computed in the background)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 15:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "view_snapshots",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("computed_at", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("view_snapshots")
