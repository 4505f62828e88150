"""follow-up marks that never repeat (the state is computed outside the write lock)

A lead's row in ``followup_stale`` now carries a number drawn afresh at each marking:
SQLite's triggers count on the one-row ``followup_clock``, PostgreSQL's draw from the
sequence ``followup_marks``. A process that computes stale leads from a snapshot
(:func:`leadheat.engage.followup.refresh_apart`) stores a lead's state only where its mark
still holds the number it read; a write meanwhile drew a new one. With 0011's marks (0 on
SQLite, a count from 0 on PostgreSQL) a lead computed, written again and marked anew could
show the number read before, and an outdated state would have been stored.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
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
"""The triggers of migration 0011, here drawing a fresh number at each marking."""


def _sqlite_triggers(fresh: bool) -> list[str]:
    """The SQLite triggers: ``fresh``, drawing a number from ``followup_clock`` at each
    marking; else 0011's (0, and a lead already marked left as it is)."""
    number = "(SELECT n FROM followup_clock)" if fresh else "0"
    mark = (
        "UPDATE followup_clock SET n = n + 1; "
        "INSERT INTO followup_stale (lead_id, marks) {rows} "
        "ON CONFLICT (lead_id) DO UPDATE SET marks = excluded.marks;"
        if fresh
        else "INSERT OR IGNORE INTO followup_stale (lead_id, marks) {rows};"
    )
    found = []
    for table, (events, column) in MARKED.items():
        for event in events.split(" OR "):
            name = event.split()[0].lower()
            rows = f"VALUES ({'OLD' if name == 'delete' else 'NEW'}.{column}, {number})"
            found.append(
                f"CREATE TRIGGER followup_stale_{table}_{name} AFTER {event} ON {table} "
                f"BEGIN {mark.format(rows=rows)} END"
            )
    for event in ("INSERT", "UPDATE OF team"):
        name = event.split()[0].lower()
        # the WHERE also lets SQLite's parser tell the SELECT from the ON CONFLICT after it
        rows = f"SELECT id, {number} FROM leads WHERE lower(owner) = lower(NEW.email)"
        found.append(
            f"CREATE TRIGGER followup_stale_reps_{name} AFTER {event} ON reps "
            f"BEGIN {mark.format(rows=rows)} END"
        )
    return found


def _postgresql_functions(number: str, again: str) -> list[str]:
    """The marking functions of 0011 (``again``: the mark of a lead already marked)."""
    found = [
        f"CREATE OR REPLACE FUNCTION followup_mark_{table}() RETURNS trigger AS $$ BEGIN "
        "IF TG_OP = 'DELETE' THEN "
        f"INSERT INTO followup_stale (lead_id, marks) VALUES (OLD.{column}, {number}) "
        f"ON CONFLICT (lead_id) DO UPDATE SET marks = {again}; "
        "ELSE "
        f"INSERT INTO followup_stale (lead_id, marks) VALUES (NEW.{column}, {number}) "
        f"ON CONFLICT (lead_id) DO UPDATE SET marks = {again}; "
        "END IF; RETURN NULL; END $$ LANGUAGE plpgsql"
        for table, (_, column) in MARKED.items()
    ]
    found.append(
        "CREATE OR REPLACE FUNCTION followup_mark_reps() RETURNS trigger AS $$ BEGIN "
        "INSERT INTO followup_stale (lead_id, marks) "
        f"SELECT id, {number} FROM leads WHERE lower(owner) = lower(NEW.email) "
        f"ON CONFLICT (lead_id) DO UPDATE SET marks = {again}; "
        "RETURN NULL; END $$ LANGUAGE plpgsql"
    )
    return found


def _drop_sqlite_triggers() -> None:
    for statement in _sqlite_triggers(fresh=False):
        op.execute(f"DROP TRIGGER IF EXISTS {statement.split()[2]}")


def upgrade() -> None:
    # the keeper takes the leads marked longest ago first: a lead written all the time
    # cannot hold up the others, as it could by lead id
    op.create_index("ix_followup_stale_marks", "followup_stale", ["marks"])
    if op.get_bind().dialect.name == "postgresql":
        # marks are 64-bit from here on: a busy database draws billions over the years
        op.alter_column("followup_stale", "marks", type_=sa.BigInteger())
        op.execute("CREATE SEQUENCE followup_marks START 1")
        op.execute("SELECT setval('followup_marks', coalesce(max(marks), 0) + 1, false) "
                   "FROM followup_stale")  # fmt: skip
        for statement in _postgresql_functions(
            "nextval('followup_marks')", "nextval('followup_marks')"
        ):
            op.execute(statement)
        return
    op.create_table(
        "followup_clock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_followup_clock_one_row"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO followup_clock (id, n) "
               "SELECT 1, coalesce(max(marks), 0) FROM followup_stale")  # fmt: skip
    _drop_sqlite_triggers()
    for statement in _sqlite_triggers(fresh=True):
        op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_followup_stale_marks", "followup_stale")
    if op.get_bind().dialect.name == "postgresql":
        for statement in _postgresql_functions("0", "followup_stale.marks + 1"):
            op.execute(statement)
        op.execute("DROP SEQUENCE followup_marks")
        op.execute("UPDATE followup_stale SET marks = 0")  # 0011 counted from 0
        op.alter_column("followup_stale", "marks", type_=sa.Integer())
        return
    _drop_sqlite_triggers()
    for statement in _sqlite_triggers(fresh=False):
        op.execute(statement)
    op.drop_table("followup_clock")
