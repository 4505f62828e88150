"""nurture sequence enrolments and unsubscribes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 14:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "enrollments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.String(length=100), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("enrolled_at", sa.BigInteger(), nullable=False),
        sa.Column("next_at", sa.BigInteger(), nullable=True),
        sa.Column("stopped_at", sa.BigInteger(), nullable=True),
        sa.Column("stop_reason", sa.String(length=50), nullable=True),
        sa.Column("enrolled_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.create_index("ix_enrollments_due", ["status", "next_at"], unique=False)
        batch_op.create_index("ux_enrollments_lead_sequence", ["lead_id", "sequence"], unique=True)

    op.create_table(
        "unsubscribes",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"]),
        sa.PrimaryKeyConstraint("email"),
    )
    with op.batch_alter_table("unsubscribes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unsubscribes_lead_id"), ["lead_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("unsubscribes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unsubscribes_lead_id"))
    op.drop_table("unsubscribes")
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index("ux_enrollments_lead_sequence")
        batch_op.drop_index("ix_enrollments_due")
    op.drop_table("enrollments")
