"""api keys and lead owners

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 18:14:58.039203
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prefix"),
    )
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=200), nullable=True))
        batch_op.create_index(batch_op.f("ix_leads_owner"), ["owner"], unique=False)
    with op.batch_alter_table("lead_states", schema=None) as batch_op:
        batch_op.create_index("ix_lead_states_fit", ["fit", "lead_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("lead_states", schema=None) as batch_op:
        batch_op.drop_index("ix_lead_states_fit")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_leads_owner"))
        batch_op.drop_column("owner")

    op.drop_table("api_keys")
