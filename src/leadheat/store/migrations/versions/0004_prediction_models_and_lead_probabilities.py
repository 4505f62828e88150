"""prediction models and lead probabilities

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 20:05:54.496762
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prediction_models",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("trained_at", sa.BigInteger(), nullable=False),
        sa.Column("horizon_us", sa.BigInteger(), nullable=False),
        sa.Column("playbook_version", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("positives", sa.Integer(), nullable=False),
        sa.Column("censored", sa.Integer(), nullable=False),
        sa.Column(
            "event_types",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "evaluation",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("document", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["playbook_version"],
            ["playbook_versions.version"],
        ),
        sa.PrimaryKeyConstraint("version"),
    )
    with op.batch_alter_table("lead_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("probability", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("probability_at", sa.BigInteger(), nullable=True))
        batch_op.create_index(
            "ix_lead_states_probability", ["probability", "lead_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("lead_states", schema=None) as batch_op:
        batch_op.drop_index("ix_lead_states_probability")
        batch_op.drop_column("probability_at")
        batch_op.drop_column("probability")

    op.drop_table("prediction_models")
