"""Everything stored about one person: to hand it over (export) or to remove it (erasure).

What counts as "about the person" is read from the schema, not listed here: the rows of
``leads`` that are the person (the lead and every lead merged into it), and every row of any
table with a foreign key to one of those rows, followed on through the tables that reference
*them* (a notification references its SLA clock). A table added later that references a lead
is exported and erased without anyone having to remember this module.

>>> from datetime import UTC, datetime
>>> from sqlalchemy import create_engine, insert
>>> from leadheat.store.models import Base, Identity, Lead
>>> engine = create_engine("sqlite://")
>>> Base.metadata.create_all(engine)
>>> now = datetime(2026, 11, 1, tzinfo=UTC)
>>> with engine.begin() as connection:
...     _ = connection.execute(insert(Lead).values(id=1, email="ana@example.com",
...         attributes={}, created_at=now, updated_at=now))
...     _ = connection.execute(insert(Identity).values(kind="email", value="ana@example.com",
...         lead_id=1))
...     export_person(connection, [1])["identities"]
...     erase_person(connection, 1).removed["identities"]
[{'kind': 'email', 'value': 'ana@example.com', 'lead_id': 1}]
1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, delete, func, or_, select

from leadheat.store.models import Base, Lead, ViewSnapshot
from leadheat.times import isoformat

WITHHELD: Mapping[str, frozenset[str]] = {"deliveries": frozenset({"target", "secret_env"})}
"""Columns left out of an export: where a notification went is not about the person, and a
target can be a secret (a Slack incoming-webhook URL is its own password)."""


@dataclass(frozen=True)
class Erasure:
    """What an erasure removed: the leads (the one named and those merged into it) and the
    number of rows per table."""

    lead_id: int
    lead_ids: Sequence[int]
    removed: Mapping[str, int]


def person_lead_ids(connection: Connection, lead_id: int) -> list[int]:
    """The lead and every lead merged into it, however indirectly."""
    ids = {lead_id}
    frontier = [lead_id]
    while frontier:
        merged = connection.execute(select(Lead.id).where(Lead.merged_into_id.in_(frontier)))
        frontier = [found for found in merged.scalars() if found not in ids]
        ids.update(frontier)
    return sorted(ids)


def tables_about(lead_ids: Sequence[int]) -> dict[Table, ColumnElement[bool]]:
    """Every table that can hold rows about these leads, referenced tables first, each with
    the condition that selects those rows."""
    leads = Lead.__table__
    found: dict[Table, ColumnElement[bool]] = {}
    for table in Base.metadata.sorted_tables:
        if table is leads:
            found[table] = leads.c.id.in_(lead_ids)
            continue
        conditions: list[ColumnElement[bool]] = []
        for key in table.foreign_keys:
            target = key.column.table
            if not isinstance(target, Table) or target is table or target not in found:
                continue
            if target is leads:
                conditions.append(key.parent.in_(lead_ids))
            else:
                conditions.append(key.parent.in_(select(key.column).where(found[target])))
        if conditions:
            found[table] = or_(*conditions)
    for table in Base.metadata.sorted_tables:
        if table not in found and "lead_id" in table.columns:
            found[table] = table.c.lead_id.in_(lead_ids)  # kept per lead, no foreign key
    return found


def _unlinked(table: Table) -> bool:
    """A table kept per lead without a foreign key to it (the follow-up state, which the
    writes to leads, states and touches mark stale by trigger)."""
    return "lead_id" in table.columns and not table.foreign_keys


def export_person(connection: Connection, lead_ids: Sequence[int]) -> dict[str, list[Any]]:
    """Every row about the person, by table (a table with none gives an empty list), times
    as ISO 8601 UTC; only :data:`WITHHELD` columns are left out."""
    data: dict[str, list[Any]] = {}
    for table, condition in tables_about(lead_ids).items():
        withheld = WITHHELD.get(table.name, frozenset())
        columns = [column for column in table.columns if column.name not in withheld]
        query = select(*columns).where(condition).order_by(*table.primary_key.columns)
        data[table.name] = [
            {name: _plain(value) for name, value in row.items()}
            for row in connection.execute(query).mappings()
        ]
    return data


def erase_person(connection: Connection, lead_id: int) -> Erasure:
    """Delete the lead, the leads merged into it and every row about them, in the caller's
    transaction. Their rows are locked first (PostgreSQL), so that an event arriving for the
    person meanwhile waits and then finds them gone rather than half-erased."""
    connection.execute(select(Lead.id).where(Lead.id == lead_id).with_for_update())
    lead_ids = person_lead_ids(connection, lead_id)
    connection.execute(select(Lead.id).where(Lead.id.in_(lead_ids)).with_for_update())
    about = tables_about(lead_ids)
    removed: dict[str, int] = {}
    # rows that reference others go first; the follow-up state (no foreign key) last, after
    # the deletes that mark the person stale again by trigger: those marks are the erasure's
    # own, so what it reports removed there is what was there before it
    unlinked = [t for t in about if _unlinked(t)]
    for table in unlinked:
        removed[table.name] = int(
            connection.execute(
                select(func.count()).select_from(table).where(about[table])
            ).scalar_one()
        )
    for table in reversed(list(about)):
        if not _unlinked(table):
            removed[table.name] = int(
                connection.execute(delete(table).where(about[table])).rowcount
            )
    for table in unlinked:
        connection.execute(delete(table).where(about[table]))
    connection.execute(delete(ViewSnapshot))  # the dashboard's may name them; recomputed later
    return Erasure(lead_id, lead_ids, {table.name: removed[table.name] for table in about})


def _plain(value: Any) -> Any:
    return isoformat(value) if isinstance(value, datetime) else value
