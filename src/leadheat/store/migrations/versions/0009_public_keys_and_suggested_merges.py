"""public (publishable) keys with their origins, the fields public collection set, and
suggested merges

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 04:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("public", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("origins", _JSON, nullable=True))
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_fields", _JSON, nullable=True))
    op.create_table(
        "suggested_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("into_lead_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("resolved_at", sa.BigInteger(), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["into_lead_id"], ["leads.id"]),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("suggested_merges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_suggested_merges_lead_id"), ["lead_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_suggested_merges_into_lead_id"), ["into_lead_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("suggested_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_suggested_merges_into_lead_id"))
        batch_op.drop_index(batch_op.f("ix_suggested_merges_lead_id"))
    op.drop_table("suggested_merges")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_column("public_fields")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("origins")
        batch_op.drop_column("public")
