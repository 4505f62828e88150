"""follow-up state kept per lead (tasks and recovery read an index, not a replay)

The tables ``followup_leads`` and ``followup_phases`` hold each lead's follow-up state as
of its latest fact; ``followup_stale`` lists the leads written since theirs was computed.
Triggers on the tables that state is made of (``lead_states``, ``touches``, ``leads``,
``reps``) mark a written lead stale whatever wrote it, and the next read of Tasks or
Recovery recomputes only those leads.

Backfill: every existing lead is marked stale here, so the first ``tasks`` or ``recover``
after the upgrade computes them all (about as long as one list took before); later reads
recompute only the leads written since.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-07 11:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MARKED = {
    # table: (events, the lead's id as the row gives it)
    "lead_states": ("INSERT OR DELETE OR UPDATE OF last_engaged_at, churned_at, events_count, "
                    "fit, qualified, disqualified, evidence_until, status, playbook_version",
                    "lead_id"),
    "touches": ("INSERT OR DELETE OR UPDATE", "lead_id"),
    "leads": ("INSERT OR DELETE OR UPDATE", "id"),
}  # fmt: skip
"""Triggers that mark the written lead stale (``reps`` is apart: a team change re-plans the
rep's leads' due times in its team's hours)."""


def _sqlite_triggers() -> list[str]:
    found = []
    for table, (events, column) in MARKED.items():
        for event in events.split(" OR "):
            name = event.split()[0].lower()
            row = "OLD" if name == "delete" else "NEW"
            found.append(
                f"CREATE TRIGGER followup_stale_{table}_{name} AFTER {event} ON {table} "
                f"BEGIN INSERT OR IGNORE INTO followup_stale (lead_id, marks) "
                f"VALUES ({row}.{column}, 0); END"
            )
    for event in ("INSERT", "UPDATE OF team"):
        name = event.split()[0].lower()
        found.append(
            f"CREATE TRIGGER followup_stale_reps_{name} AFTER {event} ON reps "
            "BEGIN INSERT OR IGNORE INTO followup_stale (lead_id, marks) "
            "SELECT id, 0 FROM leads WHERE lower(owner) = lower(NEW.email); END"
        )
    return found


def _postgresql_triggers() -> list[str]:
    # ON CONFLICT DO UPDATE (not DO NOTHING) takes the row lock a refreshing reader holds
    # (SELECT … FOR UPDATE), so a write either lands before the reader reads the lead's
    # history or marks the lead stale again after the reader is done.
    found = []
    for table, (events, column) in MARKED.items():
        found.append(
            f"CREATE FUNCTION followup_mark_{table}() RETURNS trigger AS $$ BEGIN "
            "IF TG_OP = 'DELETE' THEN "
            f"INSERT INTO followup_stale (lead_id, marks) VALUES (OLD.{column}, 0) "
            "ON CONFLICT (lead_id) DO UPDATE SET marks = followup_stale.marks + 1; "
            "ELSE "
            f"INSERT INTO followup_stale (lead_id, marks) VALUES (NEW.{column}, 0) "
            "ON CONFLICT (lead_id) DO UPDATE SET marks = followup_stale.marks + 1; "
            "END IF; RETURN NULL; END $$ LANGUAGE plpgsql"
        )
        found.append(
            f"CREATE TRIGGER followup_stale_{table} AFTER {events} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION followup_mark_{table}()"
        )
    found.append(
        "CREATE FUNCTION followup_mark_reps() RETURNS trigger AS $$ BEGIN "
        "INSERT INTO followup_stale (lead_id, marks) "
        "SELECT id, 0 FROM leads WHERE lower(owner) = lower(NEW.email) "
        "ON CONFLICT (lead_id) DO UPDATE SET marks = followup_stale.marks + 1; "
        "RETURN NULL; END $$ LANGUAGE plpgsql"
    )
    found.append(
        "CREATE TRIGGER followup_stale_reps AFTER INSERT OR UPDATE OF team ON reps "
        "FOR EACH ROW EXECUTE FUNCTION followup_mark_reps()"
    )
    return found


def upgrade() -> None:
    op.create_table(
        "followup_leads",
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_touch", sa.BigInteger(), nullable=True),
        sa.Column("last_event_at", sa.BigInteger(), nullable=True),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("lost_start", sa.BigInteger(), nullable=True),
        sa.Column("lost_end", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("lead_id"),
    )
    op.create_index("ix_followup_leads_lost", "followup_leads", ["lost_end", "lead_id"])
    op.create_table(
        "followup_phases",
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("starts", sa.BigInteger(), nullable=False),
        sa.Column("ends", sa.BigInteger(), nullable=False),
        sa.Column("temperature", sa.String(length=8), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("since", sa.BigInteger(), nullable=False),
        sa.Column("rose", sa.Boolean(), nullable=False),
        sa.Column("due", sa.BigInteger(), nullable=False),
        sa.Column("first_contact", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id", "starts"),
    )
    op.create_index("ix_followup_phases_due", "followup_phases", ["due", "lead_id"])
    op.create_index(
        "ix_followup_phases_kind",
        "followup_phases",
        ["temperature", "first_contact", "due", "lead_id"],
    )
    op.create_index("ix_touches_occurred_at", "touches", ["occurred_at"])
    op.create_table(
        "followup_stale",
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("marks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id"),
    )
    dialect = op.get_bind().dialect.name
    for statement in _postgresql_triggers() if dialect == "postgresql" else _sqlite_triggers():
        op.execute(statement)
    op.execute("INSERT INTO followup_stale (lead_id, marks) SELECT id, 0 FROM leads")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in (*MARKED, "reps"):
            op.execute(f"DROP TRIGGER IF EXISTS followup_stale_{table} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS followup_mark_{table}()")
    else:
        for statement in _sqlite_triggers():
            name = statement.split()[2]
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("followup_stale")
    op.drop_index("ix_touches_occurred_at", "touches")
    op.drop_table("followup_phases")
    op.drop_table("followup_leads")
