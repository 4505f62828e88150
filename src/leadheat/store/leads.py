"""Finding, creating and merging leads by their identities."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from leadheat.identity import IdentityKind, LeadKey
from leadheat.playbook import Playbook
from leadheat.scoring.evidence import required_fresh_until
from leadheat.scoring.fit import fit_summary
from leadheat.store.audit import DEFAULT_ACTOR
from leadheat.store.driver import CHUNK, execute_many, select_in, select_tuples_in
from leadheat.store.fields import COMMON_FIELDS, lead_attributes
from leadheat.store.models import (
    Event,
    EvidenceRow,
    HeatKeyRow,
    Identity,
    Lead,
    LeadState,
    Outcome,
    Touch,
)
from leadheat.store.reader import json_value
from leadheat.store.suggestions import follow_merge
from leadheat.times import from_micros, to_micros

PUBLIC_FORBIDDEN = frozenset({"owner", "status"})
"""Fields public collection (a publishable key in a web page) may never set, even on a new
lead: who works a lead, and where it stands, are the team's to say."""


def find_leads(connection: Connection, keys: Iterable[LeadKey]) -> dict[LeadKey, int]:
    """Lead ids for the keys that are known (merged leads' keys point to the survivor)."""
    by_kind: dict[str, list[str]] = {}
    for key in dict.fromkeys(keys):
        by_kind.setdefault(key.kind, []).append(key.value)
    found: dict[LeadKey, int] = {}
    for kind, values in by_kind.items():
        if connection.dialect.name == "sqlite" and len(values) > CHUNK:
            # one query for a whole import's keys, handed over as one JSON array
            rows = connection.exec_driver_sql(
                "SELECT value, lead_id FROM identities WHERE kind = ? "
                "AND value IN (SELECT value FROM json_each(?))",
                (kind, json.dumps(values)),
            ).all()
        else:
            rows = select_in(
                connection,
                "SELECT value, lead_id FROM identities WHERE kind = ? AND value IN",
                values,
                kind,
            )
        for value, lead_id in rows:
            found[LeadKey(cast(IdentityKind, kind), value)] = lead_id
    return found


_LEAD_COLUMNS = tuple(column.name for column in Lead.__table__.columns)


def lead_rows(connection: Connection, lead_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """These leads' rows by id, as ``select(Lead)`` maps them (JSON decoded, instants as
    datetimes), read as plain tuples: a reaction that fires for every lead of a batch read
    them through result rows at more than the query's cost."""
    sql = f"SELECT {', '.join(_LEAD_COLUMNS)} FROM leads WHERE id IN"
    rows = {}
    for values in select_tuples_in(connection, sql, lead_ids):
        row = dict(zip(_LEAD_COLUMNS, values, strict=True))
        for name in ("attributes", "public_fields"):
            row[name] = json_value(row[name])
        for name in ("created_at", "updated_at"):
            row[name] = from_micros(row[name])
        rows[row["id"]] = row
    return rows


def create_leads(
    connection: Connection,
    keys: Sequence[LeadKey],
    created_us: Sequence[int],
    playbook_version: int,
    now: datetime,
    book: Playbook,
    *,
    with_states: bool = True,
) -> dict[LeadKey, int]:
    """New leads, one per key (born at the matching ``created_us``), with their identities.

    Their score states are created too unless ``with_states`` is false, for callers that
    write complete states themselves (see :func:`initial_fit`).
    """
    if not keys:
        return {}
    # In key order: two PostgreSQL writers creating overlapping new leads then take the
    # identities' unique-key locks in the same order, so one waits for the other (and finds
    # its lead on retry) instead of each waiting for the other: a deadlock.
    order = sorted(range(len(keys)), key=lambda k: (keys[k].kind, keys[k].value))
    keys = [keys[k] for k in order]
    created_us = [created_us[k] for k in order]
    updated = to_micros(now)
    if connection.dialect.name == "sqlite":
        # One writer at a time: ids can be handed out here, which lets the insert be a
        # plain executemany (SQLite would return ordered ids one statement per row).
        first = int(
            connection.exec_driver_sql("SELECT COALESCE(MAX(id), 0) + 1 FROM leads").scalar() or 1
        )
        ids = dict(zip(keys, range(first, first + len(keys)), strict=True))
        execute_many(
            connection,
            "INSERT INTO leads (id, email, external_id, attributes, created_at, updated_at) "
            "VALUES (?, ?, ?, '{}', ?, ?)",
            [
                (
                    lead_id,
                    key.value if key.kind == "email" else None,
                    key.value if key.kind == "external" else None,
                    born,
                    updated,
                )
                for (key, lead_id), born in zip(ids.items(), created_us, strict=True)
            ],
        )
    else:
        returned = connection.execute(
            insert(Lead).returning(Lead.id, sort_by_parameter_order=True),
            [
                {
                    "attributes": {},
                    "created_at": from_micros(born),
                    "updated_at": now,
                    "email": key.value if key.kind == "email" else None,
                    "external_id": key.value if key.kind == "external" else None,
                }
                for key, born in zip(keys, created_us, strict=True)
            ],
        )
        ids = dict(zip(keys, returned.scalars(), strict=True))
    execute_many(
        connection,
        "INSERT INTO identities (kind, value, lead_id) VALUES (?, ?, ?)",
        [(key.kind, key.value, lead_id) for key, lead_id in ids.items()],
    )
    if with_states:
        fits = initial_fit(ids, book)
        until = initial_evidence_until(book)
        execute_many(
            connection,
            "INSERT INTO lead_states (lead_id, playbook_version, fit, qualified, disqualified, "
            "evidence_until, status, events_count) VALUES (?, ?, ?, ?, ?, ?, 'open', 0)",
            [(lead_id, playbook_version, *fits[lead_id], until) for lead_id in ids.values()],
        )
    return ids


def initial_evidence_until(book: Playbook) -> int | None:
    """A new lead's evidence freshness (µs): it has no evidence, which blocks "hot" unless
    the playbook requires none (then never)."""
    until = required_fresh_until((), book.temperature.hot_requires, book.evidence.ttl)
    return None if until is None else to_micros(until)


def initial_fit(ids: Mapping[LeadKey, int], book: Playbook) -> dict[int, tuple[float, bool, bool]]:
    """``(fit, qualified, disqualified)`` of new leads known only by a key (a rule may look at
    the email), scored once for all when no rule does."""
    rules, bar = book.fit.rules, book.fit.qualified_at
    by_key = {rule.field for rule in rules} & {"email", "external_id"}
    blank = fit_summary({}, rules, bar)
    fits = {}
    for key, lead_id in ids.items():
        column = "email" if key.kind == "email" else "external_id"
        fits[lead_id] = fit_summary({column: key.value}, rules, bar) if column in by_key else blank
    return fits


class LeadConflictError(ValueError):
    """One input row names two leads that are different people in the store."""


@dataclass
class _Target:
    lead_id: int | None
    keys: list[LeadKey] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None


@dataclass(frozen=True)
class LeadUpsert:
    keys: Sequence[LeadKey]
    fields: Mapping[str, Any]
    created_at: datetime | None = None


def upsert_leads(
    connection: Connection,
    items: Sequence[LeadUpsert],
    version: int,
    now: datetime,
    book: Playbook,
    *,
    public: bool = False,
    refused: dict[int, set[str]] | None = None,
    actor: str = DEFAULT_ACTOR,
) -> tuple[list[int], int]:
    """Create or update many leads at once; returns each item's lead id and how many were new.

    Rows naming the same person (by any key) update one lead, later rows winning; a row whose
    keys name two different stored leads is refused (merge them first).

    ``public``: the fields come from public collection, which may only fill a field that is
    empty or that public collection set before (:attr:`Lead.public_fields`), and never
    :data:`PUBLIC_FORBIDDEN`; the fields it may not set are left as they are and, when
    ``refused`` is given, added to it by lead id. Any other write is trusted: the fields it
    sets are the team's from then on.
    """
    found = find_leads(connection, [key for item in items for key in item.keys])
    targets: list[_Target] = []
    by_key: dict[LeadKey, int] = {}
    by_lead: dict[int, int] = {}
    for key, lead_id in found.items():
        if lead_id not in by_lead:
            by_lead[lead_id] = len(targets)
            targets.append(_Target(lead_id))
        by_key[key] = by_lead[lead_id]
    chosen: list[int] = []
    for item in items:
        hits = {by_key[key] for key in item.keys if key in by_key}
        if len(hits) > 1:
            raise LeadConflictError(
                "keys " + ", ".join(str(k) for k in item.keys) + " name different leads; "
                "merge them first (`leadheat merge`)"
            )
        index = hits.pop() if hits else len(targets)
        if index == len(targets):
            targets.append(_Target(None))
        target = targets[index]
        for key in item.keys:
            if key not in by_key:
                by_key[key] = index
                target.keys.append(key)
        target.values.update(
            (name, value)
            for name, value in item.fields.items()
            if value is not None and value != ""
        )
        if item.created_at is not None and (
            target.created_at is None or item.created_at < target.created_at
        ):
            target.created_at = item.created_at
        chosen.append(index)
    fresh = [t for t in targets if t.lead_id is None]
    firsts = [t.keys[0] for t in fresh]
    created = create_leads(
        connection, firsts, [to_micros(t.created_at or now) for t in fresh], version, now, book
    )
    for target in fresh:
        target.lead_id = created[target.keys[0]]
        target.keys = target.keys[1:]
    _write_values(connection, targets, now, public, refused)
    extra = [
        {"kind": key.kind, "value": key.value, "lead_id": t.lead_id}
        for t in targets
        for key in t.keys
    ]
    if extra:
        connection.execute(insert(Identity), extra)
    from leadheat.store import accounts  # NumPy with it: not on the read path (leadheat show)

    accounts.place(connection, book, [t.lead_id for t in targets if t.lead_id], now, actor)
    ids = [targets[index].lead_id for index in chosen]
    return [i for i in ids if i is not None], len(fresh)


def _write_values(
    connection: Connection,
    targets: Sequence[_Target],
    now: datetime,
    public: bool = False,
    refused: dict[int, set[str]] | None = None,
) -> None:
    """Apply each target's fields: common ones to columns, the rest merged into ``attributes``
    (public ones only where :func:`public_may_set` allows)."""
    touched = [t for t in targets if t.values or t.keys or t.created_at is not None]
    if not touched:
        return
    ids = [t.lead_id for t in touched if t.lead_id is not None]
    rows = {}
    for start in range(0, len(ids), CHUNK):
        for row in connection.execute(
            select(Lead).where(Lead.id.in_(ids[start : start + CHUNK]))
        ).mappings():
            rows[row["id"]] = row
    updates = []
    for target in touched:
        assert target.lead_id is not None
        row = rows[target.lead_id]
        given = {k: v for k, v in target.values.items() if k not in ("email", "external_id")}
        by_public = set(row["public_fields"] or ())
        if public:
            denied = {name for name in given if not public_may_set(row, name)}
            stored = lead_attributes(row)
            changes = {name for name in denied if given[name] != stored.get(name)}
            if changes and refused is not None:
                refused.setdefault(target.lead_id, set()).update(changes)
            given = {k: v for k, v in given.items() if k not in denied}
            by_public |= given.keys()
        else:
            by_public -= given.keys()
        common, extra = split_attributes(given)
        common.pop("email", None)
        common.pop("external_id", None)
        values = {name: row[name] for name in COMMON_FIELDS}
        values.update(common)
        for key in target.keys:
            column = {"email": "email", "external": "external_id"}.get(key.kind)
            if column and values[column] is None:
                values[column] = key.value
        created = row["created_at"]
        if target.created_at is not None and target.created_at < created:
            created = target.created_at
        updates.append(
            {
                **{f"b_{name}": value for name, value in values.items()},
                "b_id": target.lead_id,
                "b_attributes": {**(row["attributes"] or {}), **extra},
                "b_created_at": created,
                "b_updated_at": now,
                "b_public_fields": sorted(by_public) or None,
            }
        )
    connection.execute(
        update(Lead)
        .where(Lead.id == bindparam("b_id"))
        .values(
            {
                name: bindparam(f"b_{name}")
                for name in (
                    *COMMON_FIELDS,
                    "attributes",
                    "created_at",
                    "updated_at",
                    "public_fields",
                )
            }
        ),
        updates,
    )


def public_may_set(row: Mapping[Any, Any], name: str) -> bool:
    """Whether public collection may set field ``name`` of the lead ``row``: a field empty so
    far, or one public collection set last; never owner or status.

    >>> row = {"title": "CTO", "name": None, "owner": None, "attributes": {"plan": "pro"},
    ...        "public_fields": ["plan"]}
    >>> [public_may_set(row, f) for f in ("title", "name", "plan", "city", "owner")]
    [False, True, True, True, False]
    """
    if name in PUBLIC_FORBIDDEN:
        return False
    current = row[name] if name in COMMON_FIELDS else (row["attributes"] or {}).get(name)
    return current is None or current == "" or name in (row["public_fields"] or ())


def split_attributes(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Common columns and the rest (which go to the JSON ``attributes``)."""
    common = {k: v for k, v in values.items() if k in COMMON_FIELDS}
    rest = {k: v for k, v in values.items() if k not in COMMON_FIELDS}
    return common, rest


def merge_leads(connection: Connection, keep: int, absorb: int, now: datetime) -> None:
    """Fold lead ``absorb`` into ``keep``: identities, events, touches, outcomes and evidence
    move; attributes ``keep`` lacks are filled from ``absorb``, and so are those only public
    collection set on ``keep`` where ``absorb`` has the team's own (a trusted value is never
    lost to a web page's). Suggested merges follow. The caller re-scores ``keep``.
    """
    if keep == absorb:
        return
    from leadheat.store.state import lock_states  # NumPy with it: not on the read path

    # a write to either lead that holds its lock commits first, and its rows move too
    lock_states(connection, sorted((keep, absorb)))
    for model in (Identity, Event, Touch, Outcome, EvidenceRow):
        connection.execute(update(model).where(model.lead_id == absorb).values(lead_id=keep))
    rows = {
        row.id: row._mapping
        for row in connection.execute(select(Lead).where(Lead.id.in_([keep, absorb])))
    }
    kept, absorbed = rows[keep], rows[absorb]
    kept_public = set(kept["public_fields"] or ())
    absorbed_trusted = {
        name
        for name, value in lead_attributes(absorbed).items()
        if name not in (absorbed["public_fields"] or ()) and value not in (None, "")
    }
    yields = kept_public & absorbed_trusted  # kept's public value gives way to a trusted one
    filled = {
        f: absorbed[f]
        for f in COMMON_FIELDS
        if absorbed[f] is not None and (kept[f] is None or f in yields)
    }
    kept_attributes = kept["attributes"] or {}
    taken = {
        name
        for name in (absorbed["attributes"] or {})
        if name not in kept_attributes or name in yields
    }
    attributes = {
        **kept_attributes,
        **{name: (absorbed["attributes"] or {})[name] for name in taken},
    }
    kept_public -= yields
    born = min(kept["created_at"], absorbed["created_at"])
    # a field keeps its trust: public collection's own stay public, whichever lead they came from
    by_public = kept_public | (set(absorbed["public_fields"] or ()) & (filled.keys() | taken))
    connection.execute(
        update(Lead)
        .where(Lead.id == keep)
        .values(
            **filled,
            attributes=attributes,
            created_at=born,
            updated_at=now,
            public_fields=sorted(by_public) or None,
        )
    )
    connection.execute(delete(HeatKeyRow).where(HeatKeyRow.lead_id == absorb))
    connection.execute(delete(LeadState).where(LeadState.lead_id == absorb))
    connection.execute(
        update(Lead).where(Lead.id == absorb).values(merged_into_id=keep, updated_at=now)
    )
    connection.execute(
        update(Lead).where(Lead.merged_into_id == absorb).values(merged_into_id=keep)
    )
    follow_merge(connection, keep, absorb, now)
    # the absorbed lead is no one now: its account loses it (the re-score recomputes it)
    from leadheat.store import accounts

    connection.info.setdefault(accounts.STALE, set()).update(
        accounts.leave(connection, [absorb], now)
    )
