"""Recording events: each stored once per event id, each folded into its lead's score state.

A batch of any size is one pass: resolve (or create) the leads, insert the events that are
new, fold only those into the heat keys. Re-delivering an event, or a whole file, changes
nothing. The caller owns the transaction, so a failing batch leaves no trace.

Batches travel column by column (:class:`EventBatch`): a million-row import is a few list and
array operations per column rather than a million objects.
"""

from __future__ import annotations

import hashlib
import json
from _json import encode_basestring_ascii, make_encoder
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, func, select

from leadheat.identity import LeadKey
from leadheat.playbook import Playbook
from leadheat.scoring.lead import evidence_in
from leadheat.store import accounts
from leadheat.store.audit import DEFAULT_ACTOR
from leadheat.store.driver import execute_many
from leadheat.store.leads import create_leads, find_leads, initial_evidence_until, initial_fit
from leadheat.store.models import Event
from leadheat.store.state import (
    engagements,
    fold_batch,
    lock_states,
    refresh_facts,
    refuse_merged,
)
from leadheat.times import from_micros, to_micros

ROWS_PER_INSERT = 1000


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event as it arrives, already validated at the edge."""

    lead: LeadKey
    type: str
    at: datetime
    event_id: str
    properties: dict[str, Any] | None = None


@dataclass
class EventBatch:
    """Validated events, column by column; entry ``i`` of every list is event ``i``.

    ``properties_json`` is what is stored; ``property_names`` (every name a row's properties
    use, when known: the columns of a CSV file, the keys of events given as dicts) lets the
    batch skip evidence checks no name could match.
    """

    leads: list[LeadKey] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    at_us: list[int] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    properties_json: list[str | None] = field(default_factory=list)
    property_names: frozenset[str] | None = None

    def __len__(self) -> int:
        return len(self.event_ids)

    @staticmethod
    def of(events: Sequence[NewEvent]) -> EventBatch:
        """The events as columns; the names of their properties are kept, so that a batch
        with no evidence property (most are) does not read its JSON back to find none."""
        return EventBatch(
            leads=[e.lead for e in events],
            types=[e.type for e in events],
            at_us=[to_micros(e.at) for e in events],
            event_ids=[e.event_id for e in events],
            properties_json=[stored_properties(e.properties) for e in events],
            property_names=property_names([e.properties for e in events]),
        )

    def properties(self, index: int) -> dict[str, Any] | None:
        text = self.properties_json[index]
        return None if text is None else dict(json.loads(text))

    def take(self, indices: Sequence[int]) -> EventBatch:
        """The events at ``indices``, in that order."""
        return EventBatch(
            leads=[self.leads[i] for i in indices],
            types=[self.types[i] for i in indices],
            at_us=[self.at_us[i] for i in indices],
            event_ids=[self.event_ids[i] for i in indices],
            properties_json=[self.properties_json[i] for i in indices],
            property_names=self.property_names,
        )


def stored_properties(properties: Mapping[str, Any] | None) -> str | None:
    """An event's properties as stored: JSON text, ``None`` when there are none; the text of
    ``json.dumps(properties, default=str)``.

    It calls the C encoder that ``json.dumps`` ends in directly: the Python layers above it
    (a new encoder, and a float formatter the C one never uses, made per call) were a third
    of the time, and every collected event is stored through here. A fresh ``markers`` dict
    each time, as ``json.dumps`` makes, so a circular value is refused as it would be there.

    >>> stored_properties({"plan": "pro", "seats": 3}), stored_properties({})
    ('{"plan": "pro", "seats": 3}', None)
    """
    if not properties:
        return None
    encode = make_encoder({}, str, encode_basestring_ascii, None, ": ", ", ", False, False, True)
    return "".join(encode(properties, 0))


def property_names(properties: Sequence[Mapping[str, Any] | None]) -> frozenset[str] | None:
    """Every property name of these events as stored (``None`` if one is not a string: JSON
    would store it under another name)."""
    names = {name for given in properties if given for name in given}
    return frozenset(names) if all(isinstance(name, str) for name in names) else None


@dataclass
class RecordReport:
    """What a batch did: what came in, what was new, what was a re-delivery."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    leads_created: int = 0
    lead_ids: set[int] = field(default_factory=set)
    arrived: dict[int, list[tuple[str, datetime]]] = field(default_factory=dict)
    """New events of the watched types, per lead: ``(type, occurred_at)``."""
    new_ids: list[str] = field(default_factory=list)
    """The ids of the events stored (not already there): a joined write's counts are split
    by them among its requests (:mod:`leadheat.api.group_commit`)."""
    created: list[LeadKey] = field(default_factory=list)
    """The keys of the leads the batch created (when the caller did not find its leads)."""


def derived_event_id(
    lead: LeadKey, event_type: str, at: datetime, properties: Mapping[str, Any] | None, seen: int
) -> str:
    """A stable id for an event that came without one: the same row, imported again, gets
    the same id; the ``seen``-th identical row within one file stays distinct.

    >>> from datetime import UTC
    >>> key = LeadKey("email", "a@b.co")
    >>> at = datetime(2024, 1, 1, tzinfo=UTC)
    >>> same = derived_event_id(key, "page_view", at, None, 0)
    >>> same == derived_event_id(key, "page_view", at, {}, 0)
    True
    """
    canonical = json.dumps(
        [lead.kind, lead.value, event_type, to_micros(at), dict(properties or {}), seen],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return "d-" + hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()


def record_events(
    connection: Connection,
    book: Playbook,
    version: int,
    events: EventBatch | Sequence[NewEvent],
    now: datetime,
    *,
    before_fold: Callable[[list[int]], None] | None = None,
    watch_types: frozenset[str] = frozenset(),
    lead_ids: Sequence[int] | None = None,
    new_leads: Mapping[int, tuple[float, bool, bool]] | None = None,
) -> RecordReport:
    """Store the new events of a batch and fold them into their leads' state.

    ``before_fold`` sees the ids of the leads that existed before, once their states are
    locked and before anything changes (to compare before and after); events of
    ``watch_types`` that were stored are listed per lead in ``report.arrived``.
    ``lead_ids``, each event's lead, are given by a caller that has found or created every
    lead already (collection's stitching): they are not looked up again. ``new_leads`` are
    those of them the caller created without a score state, with their initial ``(fit,
    qualified, disqualified)``: their states are written here, whole, even with no event.
    """
    batch = events if isinstance(events, EventBatch) else EventBatch.of(events)
    report = RecordReport(received=len(batch))
    if not len(batch) and not new_leads:
        return report
    first = dict(zip(reversed(batch.event_ids), range(len(batch) - 1, -1, -1), strict=True))
    if len(first) < len(batch):  # the same id twice in one batch: the first one counts
        kept = sorted(first.values())
        batch = batch.take(kept)
        if lead_ids is not None:
            lead_ids = [lead_ids[i] for i in kept]
    if lead_ids is not None:
        new_leads = new_leads or {}
        until = initial_evidence_until(book)
        return _record_found(
            connection,
            book,
            version,
            batch,
            np.asarray(lead_ids, dtype=np.int64),
            report,
            before_fold,
            watch_types,
            sorted(set(lead_ids) - new_leads.keys()),
            {lead: (version, *fit, until) for lead, fit in new_leads.items()},
        )
    codes: dict[LeadKey, int] = {}
    lead_codes = np.fromiter(
        (codes.setdefault(key, len(codes)) for key in batch.leads), np.int64, len(batch)
    )
    at_us = np.asarray(batch.at_us, dtype=np.int64)
    first_seen = np.full(len(codes), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_seen, lead_codes, at_us)
    distinct = list(codes)
    found = find_leads(connection, distinct)
    missing = [key for key in distinct if key not in found]
    born = first_seen[[codes[key] for key in missing]].tolist()
    created = create_leads(connection, missing, born, version, now, book, with_states=False)
    report.leads_created = len(created)
    report.created = list(created)
    accounts.place(connection, book, created.values(), now, DEFAULT_ACTOR)
    lead_of_code = np.array(
        [found[key] if key in found else created[key] for key in distinct], dtype=np.int64
    )
    until = initial_evidence_until(book)
    fresh = {lead: (version, *fit, until) for lead, fit in initial_fit(created, book).items()}
    return _record_found(
        connection,
        book,
        version,
        batch,
        lead_of_code[lead_codes],
        report,
        before_fold,
        watch_types,
        sorted(set(found.values())),
        fresh,
    )


def _record_found(
    connection: Connection,
    book: Playbook,
    version: int,
    batch: EventBatch,
    lead_ids: npt.NDArray[np.int64],
    report: RecordReport,
    before_fold: Callable[[list[int]], None] | None,
    watch_types: frozenset[str],
    known: list[int],
    fresh: Mapping[int, tuple[int, float, bool, bool, int | None]],
) -> RecordReport:
    """:func:`record_events` once every event's lead exists: ``known`` are the leads that
    existed before the batch, ``fresh`` the initial states of those it created."""
    at_us = np.asarray(batch.at_us, dtype=np.int64)
    lock_states(connection, known)
    refuse_merged(connection, known)
    if before_fold is not None:
        before_fold(known)
    stored = _insert_new(connection, batch, lead_ids)
    report.stored = int(stored.sum())
    report.duplicates = report.received - report.stored
    if not stored.all():
        keep = np.flatnonzero(stored).tolist()
        batch, lead_ids, at_us = batch.take(keep), lead_ids[stored], at_us[stored]
    report.new_ids = batch.event_ids
    fold_batch(
        connection,
        engagements(book, lead_ids, batch.types, at_us, batch.properties),
        fresh,
        book.accounts,
    )
    if report.stored:
        _record_evidence(connection, book, version, batch, lead_ids)
    report.lead_ids = set(lead_ids.tolist())
    if watch_types:
        for index, kind in enumerate(batch.types):
            if kind in watch_types:
                report.arrived.setdefault(int(lead_ids[index]), []).append(
                    (kind, from_micros(int(at_us[index])))
                )
    return report


def _insert_new(
    connection: Connection, batch: EventBatch, lead_ids: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Insert, skipping ids already stored; says which rows were actually inserted."""
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    row = f"({marker}, {marker}, {marker}, {marker}, {marker})"
    ids = lead_ids.tolist()
    stored = np.ones(len(batch), dtype=np.bool_)
    for start in range(0, len(batch), ROWS_PER_INSERT):
        stop = min(start + ROWS_PER_INSERT, len(batch))
        sql = (
            "INSERT INTO events (event_id, lead_id, type, occurred_at, properties) VALUES "
            + ", ".join([row] * (stop - start))
            + " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        )
        params = tuple(
            chain.from_iterable(
                zip(
                    batch.event_ids[start:stop],
                    ids[start:stop],
                    batch.types[start:stop],
                    batch.at_us[start:stop],
                    batch.properties_json[start:stop],
                    strict=True,
                )
            )
        )
        inserted = connection.exec_driver_sql(sql, params).all()
        if len(inserted) < stop - start:
            new = {r[0] for r in inserted}
            stored[start:stop] = [e in new for e in batch.event_ids[start:stop]]
    return stored


def _record_evidence(
    connection: Connection,
    book: Playbook,
    version: int,
    batch: EventBatch,
    lead_ids: npt.NDArray[np.int64],
) -> None:
    """BANT evidence carried by event properties (a form's "budget" field, say)."""
    if batch.property_names is not None and not (batch.property_names & book.evidence_names.keys()):
        return
    rows = evidence_rows(book, batch.properties_json, batch.at_us, lead_ids.tolist(), batch.types)
    if rows:
        execute_many(
            connection,
            "INSERT INTO evidence (lead_id, kind, value, stated_at, source) VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        refresh_facts(connection, book, version, sorted({row[0] for row in rows}))


def evidence_rows(
    book: Playbook,
    properties_json: Sequence[str | None],
    at_us: Sequence[int],
    lead_ids: Sequence[int],
    types: Sequence[str],
) -> list[tuple[int, str, str, int, str]]:
    """The evidence rows ``(lead_id, kind, value, stated_at µs, source)`` that events'
    properties carry."""
    rows = []
    names = book.evidence_names.keys()
    for index, text in enumerate(properties_json):
        if text is None:
            continue
        properties = json.loads(text)
        if not (properties.keys() & names):
            continue
        at = from_micros(at_us[index])
        for item in evidence_in(properties, at, book, f"event {types[index]}"):
            rows.append(
                (lead_ids[index], item.kind, item.value, to_micros(item.stated_at), item.source)
            )
    return rows


LATEST_TYPES = 200_000
"""Events :func:`latest_type_counts` reads: the newest, by the time index, so that the
Playbook page costs the same with a hundred events or a hundred million."""


def latest_type_counts(connection: Connection, latest: int = LATEST_TYPES) -> dict[str, int]:
    """How many of the ``latest`` newest stored events are of each type."""
    newest = select(Event.type).order_by(Event.occurred_at.desc()).limit(latest).subquery()
    rows = connection.execute(select(newest.c.type, func.count()).group_by(newest.c.type))
    return {str(kind): int(count) for kind, count in rows}
