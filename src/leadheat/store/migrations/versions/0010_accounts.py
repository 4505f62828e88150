"""accounts: companies, their members (now and past) and their heat keys

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 11:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=320), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("owner", sa.String(length=320), nullable=True),
        sa.Column("traits", _JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("hot_until", sa.BigInteger(), nullable=True),
        sa.Column("warm_until", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accounts_owner"), ["owner"], unique=False)
        batch_op.create_index(batch_op.f("ix_accounts_hot_until"), ["hot_until"], unique=False)
        batch_op.create_index(batch_op.f("ix_accounts_warm_until"), ["warm_until"], unique=False)
    op.create_table(
        "account_members",
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("since", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(length=30), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"]),
        sa.PrimaryKeyConstraint("lead_id"),
    )
    with op.batch_alter_table("account_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_account_members_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_account_members_since"), ["since"], unique=False)
    op.create_table(
        "account_past_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("since", sa.BigInteger(), nullable=True),
        sa.Column("until", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("account_past_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_account_past_members_lead_id"), ["lead_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_account_past_members_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_account_past_members_until"), ["until"], unique=False)
    op.create_table(
        "account_heat_keys",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("half_life_us", sa.BigInteger(), nullable=False),
        sa.Column("whole", sa.BigInteger(), nullable=False),
        sa.Column("frac", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("account_id", "half_life_us"),
    )
    with op.batch_alter_table("account_heat_keys", schema=None) as batch_op:
        batch_op.create_index(
            "ix_account_heat_keys_rank",
            ["half_life_us", "whole", "frac", "account_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("account_heat_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_account_heat_keys_rank")
    op.drop_table("account_heat_keys")
    with op.batch_alter_table("account_past_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_past_members_until"))
        batch_op.drop_index(batch_op.f("ix_account_past_members_account_id"))
        batch_op.drop_index(batch_op.f("ix_account_past_members_lead_id"))
    op.drop_table("account_past_members")
    with op.batch_alter_table("account_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_members_since"))
        batch_op.drop_index(batch_op.f("ix_account_members_account_id"))
    op.drop_table("account_members")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_warm_until"))
        batch_op.drop_index(batch_op.f("ix_accounts_hot_until"))
        batch_op.drop_index(batch_op.f("ix_accounts_owner"))
    op.drop_table("accounts")
