"""Storing a file of events chunk after chunk, in the caller's one transaction.

:func:`~leadheat.store.events.record_events` stores a batch it holds whole. A file of millions
of events is read a chunk at a time instead (memory follows the chunk, not the file), and
each chunk here is a few bulk statements: its unknown leads created with their identities in
two ``executemany``, its events inserted in one ``executemany`` (SQLite) or one ``COPY``
(PostgreSQL), skipping ids already stored. Chunks travel as columns (:class:`EventColumns`):
one object per distinct lead, not per event.

Score states are written once, at :meth:`EventImport.finish`: each chunk's new events are
folded into per-lead :class:`~leadheat.scoring.rescoring.Activity` (a few arrays per lead),
merged as chunks come, so a lead whose events are spread over the file is written once, not
once per chunk. The result equals recording the whole file as one batch: same events, same
leads, same states, heat keys to a few ulps (the exactness rule allows 1e-9).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress, repeat
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from leadheat.identity import LeadKey
from leadheat.playbook import Playbook
from leadheat.scoring.rescoring import Activity, merge_activities
from leadheat.store import accounts
from leadheat.store.audit import DEFAULT_ACTOR
from leadheat.store.driver import execute_many
from leadheat.store.events import EventBatch, RecordReport, evidence_rows
from leadheat.store.leads import create_leads, find_leads, initial_evidence_until, initial_fit
from leadheat.store.state import (
    batch_activity,
    coded_engagements,
    lock_states,
    refresh_facts,
    refuse_merged,
    write_activity,
)
from leadheat.times import from_micros

RESOLVED_AT = 1_000_000
"""Lead keys remembered with their ids across chunks before the memory is let go."""
MERGE_AT = 1_000_000
"""Per-lead entries held before the chunks' activities are merged into one (bounded memory)."""


@dataclass
class EventColumns:
    """Validated events, column by column, leads and types as codes into distinct values.

    ``lead_codes[i]`` indexes ``leads``, ``type_codes[i]`` indexes ``types``; the rest hold
    event ``i`` directly. ``property_names`` is as for :class:`EventBatch`.
    """

    leads: list[LeadKey]
    lead_codes: npt.NDArray[np.int64]
    types: list[str]
    type_codes: npt.NDArray[np.int64]
    at_us: npt.NDArray[np.int64]
    event_ids: list[str]
    properties_json: list[str | None]
    property_names: frozenset[str] | None = None

    def __len__(self) -> int:
        return len(self.event_ids)

    @staticmethod
    def of(batch: EventBatch) -> EventColumns:
        """A row-built batch as columns."""
        leads: dict[LeadKey, int] = {}
        types: dict[str, int] = {}
        count = len(batch)
        lead_codes = np.fromiter(
            (leads.setdefault(key, len(leads)) for key in batch.leads), np.int64, count
        )
        type_codes = np.fromiter(
            (types.setdefault(kind, len(types)) for kind in batch.types), np.int64, count
        )
        return EventColumns(
            list(leads),
            lead_codes,
            list(types),
            type_codes,
            np.asarray(batch.at_us, dtype=np.int64),
            batch.event_ids,
            batch.properties_json,
            batch.property_names,
        )

    def take(self, keep: npt.NDArray[np.bool_]) -> EventColumns:
        """The events where ``keep`` is true, in order."""
        flags = keep.tolist()
        return EventColumns(
            self.leads,
            self.lead_codes[keep],
            self.types,
            self.type_codes[keep],
            self.at_us[keep],
            list(compress(self.event_ids, flags)),
            list(compress(self.properties_json, flags)),
            self.property_names,
        )

    def properties(self, index: int) -> dict[str, Any] | None:
        text = self.properties_json[index]
        return None if text is None else dict(json.loads(text))


@dataclass
class EventImport:
    """One file's events, stored by :meth:`add` chunk after chunk in one transaction, and
    folded into the leads' states by :meth:`finish`.

    ``before_fold`` sees the ids of leads that existed before the import, once locked and
    before anything of theirs changes (speed to lead compares before and after); events of
    ``watch_types`` that were stored are listed per lead in the report's ``arrived``.
    """

    connection: Connection
    book: Playbook
    version: int
    now: datetime
    before_fold: Callable[[list[int]], None] | None = None
    watch_types: frozenset[str] = frozenset()
    report: RecordReport = field(default_factory=RecordReport)
    born: dict[int, int] = field(default_factory=dict)
    """Leads this import created, with their ``created_at`` (µs): their first event in the
    block that created them, moved back to an earlier event a later block stores."""
    fresh: dict[int, tuple[int, float, bool, bool, int | None]] = field(default_factory=dict)
    looked: set[int] = field(default_factory=set)
    parts: list[Activity] = field(default_factory=list)
    with_evidence: set[int] = field(default_factory=set)
    resolved: dict[LeadKey, int] = field(default_factory=dict)
    """Lead ids of keys this import found or created, so that later chunks need not ask."""
    expected: int = 0
    """About how many events the whole import brings (0: unknown)."""
    dropped: list[str] = field(default_factory=list)
    """``CREATE INDEX`` statements of the indexes set aside until :meth:`finish`."""
    unmarked: list[str] = field(default_factory=list)
    cache_before: int | None = None
    """SQLite's page cache setting before the import widened it (``None``: not widened)."""
    """``CREATE TRIGGER`` statements of the follow-up triggers set aside until :meth:`finish`,
    which marks the import's leads stale itself."""
    started: bool = False

    def add(self, chunk: EventColumns) -> None:
        """Store a chunk's new events, creating the leads it names that are unknown."""
        if not self.started:
            self.started = True
            self.dropped = _set_indexes_aside(self.connection, self.expected)
            self.unmarked = _set_triggers_aside(self.connection, self.expected)
            self.cache_before = _widen_cache(self.connection, self.expected)
        report = self.report
        report.received += len(chunk)
        if not len(chunk):
            return
        if len(set(chunk.event_ids)) < len(chunk):  # the same id twice: the first one counts
            first = dict(zip(reversed(chunk.event_ids), range(len(chunk) - 1, -1, -1), strict=True))
            keep = np.zeros(len(chunk), dtype=np.bool_)
            keep[list(first.values())] = True
            chunk = chunk.take(keep)
        lead_ids = self._lead_ids(chunk)
        stored = _insert_new(self.connection, chunk, lead_ids)
        count = int(stored.sum())
        report.stored += count
        if count < len(chunk):
            chunk, lead_ids = chunk.take(stored), lead_ids[stored]
        if not count:
            return
        engaged = coded_engagements(
            self.book, lead_ids, chunk.type_codes, chunk.types, chunk.at_us, chunk.properties
        )
        self._hold(batch_activity(engaged))
        self._evidence(chunk, lead_ids)
        report.lead_ids.update(lead_ids.tolist())
        watched = [code for code, kind in enumerate(chunk.types) if kind in self.watch_types]
        for code in watched:
            kind = chunk.types[code]
            for index in np.flatnonzero(chunk.type_codes == code).tolist():
                report.arrived.setdefault(int(lead_ids[index]), []).append(
                    (kind, from_micros(int(chunk.at_us[index])))
                )

    def finish(self) -> RecordReport:
        """Write the states of every lead the chunks touched; returns what the file did."""
        activity = merge_activities(self.parts) if self.parts else _no_activity()
        write_activity(self.connection, activity, self.fresh, self.born, self.book.accounts)
        if self.unmarked:
            # what the triggers would have marked: the leads created, and those whose states
            # the events changed
            _mark_stale(self.connection, self.born.keys() | set(activity.leads.tolist()))
        for statement in [*self.unmarked, *self.dropped]:
            self.connection.exec_driver_sql(statement)
        if self.cache_before is not None:
            self.connection.exec_driver_sql(f"PRAGMA cache_size = {self.cache_before}")
        if self.with_evidence:
            refresh_facts(self.connection, self.book, self.version, sorted(self.with_evidence))
        report = self.report
        report.duplicates = report.received - report.stored
        report.leads_created = len(self.born)
        return report

    def _lead_ids(self, chunk: EventColumns) -> npt.NDArray[np.int64]:
        """Each event's lead id; unknown leads are created (born at their first event here)."""
        resolved = self.resolved
        if len(resolved) > RESOLVED_AT:
            resolved.clear()
        found = find_leads(self.connection, [key for key in chunk.leads if key not in resolved])
        resolved.update(found)
        lead_of_code = np.fromiter(
            map(resolved.get, chunk.leads, repeat(0)), np.int64, len(chunk.leads)
        )
        used = np.zeros(len(chunk.leads), dtype=np.bool_)
        used[chunk.lead_codes] = True  # a key of bad rows only names no event
        missing = np.flatnonzero((lead_of_code == 0) & used).tolist()
        if missing:
            first_seen = np.full(len(chunk.leads), np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(first_seen, chunk.lead_codes, chunk.at_us)
            keys = [chunk.leads[code] for code in missing]
            born = first_seen[missing].tolist()
            created = create_leads(
                self.connection, keys, born, self.version, self.now, self.book, with_states=False
            )
            # a lead created here holds its key alone (no attributes, no company): only an
            # email can give it an account, so the others are not read back to be placed
            emailed = [lead for key, lead in created.items() if key.kind == "email"]
            accounts.place(self.connection, self.book, emailed, self.now, DEFAULT_ACTOR)
            if len(created) >= ANALYZE_AFTER:
                _refresh_statistics(self.connection)
            until = initial_evidence_until(self.book)
            for lead, fit in initial_fit(created, self.book).items():
                self.fresh[lead] = (self.version, *fit, until)
            leads = [created[key] for key in keys]
            lead_of_code[missing] = leads
            self.born.update(zip(leads, born, strict=True))
            resolved.update(created)
        known = sorted(set(found.values()) - self.born.keys() - self.looked)
        if known:
            lock_states(self.connection, known)
            refuse_merged(self.connection, known)
            if self.before_fold is not None:
                self.before_fold(known)
            self.looked.update(known)
        return lead_of_code[chunk.lead_codes]

    def _hold(self, activity: Activity) -> None:
        self.parts.append(activity)
        if len(self.parts) > 1 and sum(len(part.leads) for part in self.parts) > MERGE_AT:
            self.parts = [merge_activities(self.parts)]

    def _evidence(self, chunk: EventColumns, lead_ids: npt.NDArray[np.int64]) -> None:
        names = self.book.evidence_names.keys()
        if chunk.property_names is not None and not (chunk.property_names & names):
            return
        rows = evidence_rows(
            self.book,
            chunk.properties_json,
            chunk.at_us.tolist(),
            lead_ids.tolist(),
            [chunk.types[code] for code in chunk.type_codes.tolist()],
        )
        if rows:
            execute_many(
                self.connection,
                "INSERT INTO evidence (lead_id, kind, value, stated_at, source) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            self.with_evidence.update(row[0] for row in rows)


BULK_TABLES = ("events", "leads", "identities", "lead_states", "heat_keys")
"""The tables an import writes most rows to."""


def _set_indexes_aside(connection: Connection, expected: int) -> list[str]:
    """SQLite: drop the secondary indexes of the tables an import of ``expected`` events
    writes, when each holds few rows next to it, and return the statements that build them
    again. Building an index once from all rows (a sort) costs less than growing it row by
    row; it happens in the same transaction, so a failing import leaves the schema as it was.
    Unique indexes stay: they find re-delivered events and known identities.
    """
    if connection.dialect.name != "sqlite" or not expected:
        return []
    statements = []
    for table in BULK_TABLES:
        rows = connection.exec_driver_sql(f"SELECT COALESCE(MAX(rowid), 0) FROM {table}").scalar()
        if int(rows or 0) * 4 > expected:
            continue
        for name, sql in connection.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL",
            (table,),
        ).all():
            if "UNIQUE" in sql.upper():
                continue
            connection.exec_driver_sql(f'DROP INDEX "{name}"')
            statements.append(sql)
    return statements


FOLLOWUP_MARKED = ("leads", "lead_states")
"""The tables an import writes whose triggers mark each written lead's follow-up state
stale (migration 0011), a row at a time."""
TRIGGERS_ASIDE_AT = 10_000
"""Events an import brings from which its follow-up triggers are set aside: below, the
triggers cost less than changing the schema (which makes every other connection prepare its
statements again)."""


def _set_triggers_aside(connection: Connection, expected: int) -> list[str]:
    """SQLite: drop the follow-up triggers of the tables an import of ``expected`` events
    writes, and return the statements that create them again. Marking the leads stale in one
    statement at the end (:func:`_mark_stale`) costs less than a trigger per written row;
    all of it happens in the import's transaction, so a failing import leaves the schema as
    it was, and no other writer runs meanwhile (SQLite has one writer at a time).
    """
    if connection.dialect.name != "sqlite" or expected < TRIGGERS_ASIDE_AT:
        return []
    statements = []
    for table in FOLLOWUP_MARKED:
        for name, sql in connection.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? "
            "AND name LIKE 'followup_stale_%'",
            (table,),
        ).all():
            connection.exec_driver_sql(f'DROP TRIGGER "{name}"')
            statements.append(sql)
    return statements


IMPORT_CACHE_KIB = 256 * 1024
"""SQLite's page cache while a large import runs (the default is 2 MiB): the unique index on
event ids takes each new id at a random place, and rebuilding the indexes set aside sorts
every row, so a cache that holds the tables' working set saves reading pages back."""


def _widen_cache(connection: Connection, expected: int) -> int | None:
    """SQLite, imports of :data:`TRIGGERS_ASIDE_AT` events or more: widen this connection's
    page cache to :data:`IMPORT_CACHE_KIB` (pages are taken only as they are used) and
    return the setting to restore at the end; ``None`` where nothing changed."""
    if connection.dialect.name != "sqlite" or expected < TRIGGERS_ASIDE_AT:
        return None
    before = int(connection.exec_driver_sql("PRAGMA cache_size").scalar() or 0)
    connection.exec_driver_sql(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
    return before


ANALYZE_AFTER = 1_000
"""New leads in one block from which PostgreSQL's statistics of ``identities`` are refreshed."""


def _refresh_statistics(connection: Connection) -> None:
    """PostgreSQL: refresh the planner's statistics of ``identities`` after a block created
    many leads. An import fills the table inside its one transaction, where autovacuum's
    ``ANALYZE`` never sees the rows; planned from an empty table, the next blocks' key
    lookups scanned the whole of it, and a million-event import of new leads grew
    quadratically (500,000 events: more than 200 s, against 26 s with this). ``ANALYZE`` in
    the transaction counts its own rows, and samples a bounded number of them."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("ANALYZE identities")


def _mark_stale(connection: Connection, lead_ids: set[int]) -> None:
    """Mark these leads' follow-up state stale with a fresh number, as the triggers set
    aside would have (migration 0012)."""
    if lead_ids:
        connection.exec_driver_sql("UPDATE followup_clock SET n = n + 1")
        connection.exec_driver_sql(
            "INSERT INTO followup_stale (lead_id, marks) "
            "SELECT value, (SELECT n FROM followup_clock) FROM json_each(?) WHERE true "
            "ON CONFLICT (lead_id) DO UPDATE SET marks = excluded.marks",
            (json.dumps(sorted(lead_ids)),),
        )


def _no_activity() -> Activity:
    empty = np.zeros(0, dtype=np.int64)
    return Activity(empty, empty, empty, empty, empty, {})


def _insert_new(
    connection: Connection, chunk: EventColumns, lead_ids: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Insert the chunk's events, skipping ids already stored; says which rows were new."""
    if connection.dialect.name == "postgresql":
        return _copy_new(connection, chunk, lead_ids)
    raw = connection.connection.driver_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        before = cursor.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
        types = chunk.types
        cursor.executemany(
            "INSERT INTO events (event_id, lead_id, type, occurred_at, properties) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
            zip(
                chunk.event_ids,
                lead_ids.tolist(),
                [types[code] for code in chunk.type_codes.tolist()],
                chunk.at_us.tolist(),
                chunk.properties_json,
                strict=True,
            ),
        )
        inserted = cursor.rowcount
        if inserted == len(chunk):
            return np.ones(len(chunk), dtype=np.bool_)
        # one writer at a time: this chunk's rows are the ones after the largest id before
        new = {
            row[0] for row in cursor.execute("SELECT event_id FROM events WHERE id > ?", (before,))
        }
    finally:
        cursor.close()
    return np.fromiter((event_id in new for event_id in chunk.event_ids), np.bool_, len(chunk))


def _copy_new(
    connection: Connection, chunk: EventColumns, lead_ids: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """PostgreSQL: ``COPY`` the chunk into a temporary table, then insert what is new."""
    raw = connection.connection.driver_connection
    assert raw is not None
    types = chunk.types
    with raw.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS event_import (n bigint, event_id text, "
            "lead_id bigint, type text, occurred_at bigint, properties text) ON COMMIT DROP"
        )
        cursor.execute("TRUNCATE event_import")
        with cursor.copy(
            "COPY event_import (n, event_id, lead_id, type, occurred_at, properties) FROM STDIN"
        ) as copy:
            for row in zip(
                range(len(chunk)),
                chunk.event_ids,
                lead_ids.tolist(),
                [types[code] for code in chunk.type_codes.tolist()],
                chunk.at_us.tolist(),
                chunk.properties_json,
                strict=True,
            ):
                copy.write_row(row)
        cursor.execute(
            "INSERT INTO events (event_id, lead_id, type, occurred_at, properties) "
            "SELECT event_id, lead_id, type, occurred_at, properties::jsonb FROM event_import "
            "ORDER BY n ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        )
        new = {row[0] for row in cursor.fetchall()}
    if len(new) == len(chunk):
        return np.ones(len(chunk), dtype=np.bool_)
    return np.fromiter((event_id in new for event_id in chunk.event_ids), np.bool_, len(chunk))
