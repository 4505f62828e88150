"""Events in: one tracked event, a batch of validated events, or analytics calls (Segment's
track, identify, page, screen, group, alias) that also stitch identities and set traits. Each
batch is one transaction that scores by the current playbook and reacts (speed to lead) in it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, insert

from leadheat.bulk import paused_gc
from leadheat.core import Core, on_current_playbook
from leadheat.errors import InputError, LeadheatError
from leadheat.identity import LeadKey, parse_lead_key
from leadheat.ingest.leads import audit_owners, owners
from leadheat.ingest.segment import Identity, Message, snake_case
from leadheat.scoring.lead import evidence_in
from leadheat.speed.watch import Watch
from leadheat.store import audit, suggestions
from leadheat.store.audit import AuditAction, lead_subject
from leadheat.store.events import (
    EventBatch,
    NewEvent,
    RecordReport,
    derived_event_id,
    property_names,
    stored_properties,
)
from leadheat.store.events import record_events as record_rows
from leadheat.store.leads import LeadUpsert, find_leads, upsert_leads
from leadheat.store.models import EvidenceRow
from leadheat.store.state import refresh_facts
from leadheat.store.stitching import stitch
from leadheat.times import from_micros, isoformat, to_micros


def track(
    core: Core,
    lead: str,
    event_type: str,
    at: datetime | None = None,
    properties: Mapping[str, Any] | None = None,
    event_id: str | None = None,
) -> RecordReport:
    """Record one event; the lead is created if unknown."""
    key = parse_lead_key(lead)
    _, book = core.playbook()
    when = core.checked_at(at, book)
    props = dict(properties) if properties else None
    kind = valid_event_type(event_type)
    event = NewEvent(
        key,
        kind,
        when,
        event_id or derived_event_id(key, kind, when, props, 0),
        props,
    )
    return record_events(core, [event])


@on_current_playbook
def record_events(
    core: Core, events: EventBatch | Sequence[NewEvent], *, react: bool = True
) -> RecordReport:
    """Record a batch of validated events in one transaction.

    ``react=False`` records history without firing speed-to-lead triggers (imports of
    past data: nobody should be paged for a lead that was hot last year).
    """
    version, book = core.playbook()
    now = core.clock()
    batch = events if isinstance(events, EventBatch) else EventBatch.of(events)
    limit = to_micros(now + book.ingest.future_tolerance)
    oldest = book.ingest.oldest(now)
    floor = to_micros(oldest) if oldest is not None else None
    for index, micros in enumerate(batch.at_us):
        if micros > limit:
            raise LeadheatError(
                f"event {batch.event_ids[index]}: {isoformat(from_micros(micros))} is more "
                f"than {book.ingest.future_tolerance} in the future"
            )
        if floor is not None and micros < floor:
            raise LeadheatError(
                f"event {batch.event_ids[index]}: {isoformat(from_micros(micros))} is older "
                f"than the playbook's [ingest] max_age ({book.ingest.max_age}) allows"
            )

    def apply(connection: Connection, watch: Watch) -> RecordReport:
        report = record_rows(
            connection,
            book,
            version,
            batch,
            now,
            before_fold=watch.look_locked if watch.enabled else None,
            watch_types=book.speed.watched_events if watch.enabled else frozenset(),
        )
        watch.changed(report.lead_ids, report.arrived)
        return report

    with paused_gc():
        return core.write_watched(book, now, apply, react, version=version)


@on_current_playbook
def collect(
    core: Core,
    messages: Sequence[Message],
    field: str = "batch",
    *,
    public: bool = False,
    actor: str = "python",
) -> RecordReport:
    """Apply analytics calls (Segment's track, identify, page, screen, group, alias) in
    one transaction: stitch identities, store events once per message id, set traits.

    Nothing is stored when one message is refused; the error names it. ``public`` says
    the calls came with a publishable key (a web page's snippet, which anyone can read);
    ``actor`` is who the audit log names.

    Public calls add events and evidence and join anonymous visitors to leads, but may
    only fill lead fields that are empty or that public calls set before, never
    ``owner`` or ``status``; the fields they may not change are left as they are and
    audited (``collect.refused``). Two leads that both have an email or external id are
    not merged on their word: the pair becomes a suggested merge (``merge.suggest``)
    and each message's events stay on the lead its own first key names.
    """
    version, book = core.playbook()
    now = core.clock()
    limit = now + book.ingest.future_tolerance
    oldest = book.ingest.oldest(now)
    for index, message in enumerate(messages):
        place = f"{field}[{index}].timestamp" if field else "timestamp"
        if message.at > limit:
            raise InputError(
                place,
                f"{isoformat(message.at)} is more than {book.ingest.future_tolerance} "
                f"ahead of the server's clock ({isoformat(now)})",
            )
        if oldest is not None and message.at < oldest:
            raise InputError(
                place,
                f"{isoformat(message.at)} is older than the playbook's [ingest] max_age "
                f"({book.ingest.max_age}) allows",
            )

    owners_given = not public and any("owner" in message.traits for message in messages)
    at_us = [to_micros(message.at) for message in messages]

    def apply(connection: Connection, watch: Watch) -> RecordReport:
        identities = _message_keys(connection, messages)
        suggested: list[tuple[int, int, str]] = []
        stitched = stitch(
            connection,
            book,
            version,
            identities,
            at_us,
            now,
            public=public,
            suggested=suggested,
        )
        lead_ids = stitched.leads
        if suggested:
            created = suggestions.suggest(connection, suggested, actor, now)
            audit.record_many(
                connection,
                now,
                actor,
                [
                    (
                        AuditAction.MERGE_SUGGEST,
                        lead_subject(lead),
                        {"suggestion": number, "into": into},
                    )
                    for number, lead, into in created
                ],
            )
        watch.created({lead: fit[1] for lead, fit in stitched.created.items()})
        if watch.enabled:
            watch.look(lead for lead in stitched.first if lead)
        report = record_rows(
            connection,
            book,
            version,
            _event_batch(messages, identities, at_us),
            now,
            watch_types=book.speed.watched_events if watch.enabled else frozenset(),
            lead_ids=[
                lead
                for message, lead in zip(messages, stitched.first, strict=True)
                if message.event_type is not None
            ],
            new_leads=stitched.created,
        )
        watch.changed(report.lead_ids, report.arrived)
        with_traits = [
            (message, keys)
            for message, keys in zip(messages, identities, strict=True)
            if message.traits
        ]
        refused: dict[int, set[str]] = {}
        for message, lead_id in zip(messages, lead_ids, strict=True):
            if message.dropped:  # an invalid email trait, left out
                refused.setdefault(lead_id, set()).add("email")
        if with_traits:
            before: dict[int, str | None] = {}
            if owners_given:  # a trusted call may set owners: audited as any owner change
                known = find_leads(connection, [keys[0] for _, keys in with_traits])
                before = owners(connection, sorted(set(known.values())))
            ids, _ = upsert_leads(
                connection,
                [LeadUpsert([keys[0]], message.traits, None) for message, keys in with_traits],
                version,
                now,
                book,
                public=public,
                refused=refused,
                actor=actor,
            )
            if owners_given:
                audit_owners(connection, now, actor, before, ids)
            evidence = [
                {
                    "lead_id": lead_id,
                    "kind": item.kind,
                    "value": item.value,
                    "stated_at": item.stated_at,
                    "source": item.source,
                }
                for (message, _), lead_id in zip(with_traits, ids, strict=True)
                for item in evidence_in(message.traits, message.at, book, message.call)
            ]
            if evidence:
                connection.execute(insert(EvidenceRow), evidence)
            refresh_facts(connection, book, version, sorted(set(ids)))
            watch.changed(ids)
        audit.record_many(
            connection,
            now,
            actor,
            [
                (AuditAction.COLLECT_REFUSED, lead_subject(lead), {"fields": sorted(names)})
                for lead, names in sorted(refused.items())
            ],
        )
        return report

    with paused_gc():
        return core.write_watched(book, now, apply, version=version)


def _event_batch(
    messages: Sequence[Message], identities: Sequence[Sequence[LeadKey]], at_us: Sequence[int]
) -> EventBatch:
    """The messages' events (those of the calls that are events), column by column, each on
    its first key; built straight from the messages, not by way of a :class:`NewEvent` each."""
    chosen = [index for index, message in enumerate(messages) if message.event_type is not None]
    properties = [messages[index].properties for index in chosen]
    return EventBatch(
        leads=[identities[index][0] for index in chosen],
        types=[cast(str, messages[index].event_type) for index in chosen],
        at_us=[at_us[index] for index in chosen],
        event_ids=[messages[index].message_id for index in chosen],
        properties_json=[stored_properties(given) for given in properties],
        property_names=property_names(properties),
    )


def _message_keys(connection: Connection, messages: Sequence[Message]) -> list[list[LeadKey]]:
    """The keys each message names its person by; an alias adds the id they had before (as
    the lead it already names, or as an anonymous visitor). A batch names the same few
    people many times: the keys of one identity are worked out once."""
    of_identity: dict[Identity, list[LeadKey]] = {}
    identities = []
    for message in messages:
        keys = of_identity.get(message.identity)
        if keys is None:
            keys = of_identity[message.identity] = message.identity.keys()
        if message.previous_id is not None:  # alias: the id the person had before
            before = [
                LeadKey("external", message.previous_id),
                LeadKey("anonymous", message.previous_id),
            ]
            known = find_leads(connection, before)
            keys = [*keys, next((k for k in before if k in known), before[1])]
        identities.append(keys)
    return identities


def valid_event_type(text: str) -> str:
    """An event type as stored: its snake_case form, as the Segment-compatible routes store
    a track call's name, so that ``"Demo Request"``, ``"demo-request"`` and ``"demoRequest"``
    sent by any path are the one type the playbook scores as ``demo_request``; 1 to 100
    characters.

    >>> valid_event_type("  demo_request "), valid_event_type("Demo Request")
    ('demo_request', 'demo_request')
    """
    name = snake_case(text)
    if not name or len(name) > 100:
        raise LeadheatError(
            f"event type {text!r} must have 1 to 100 letters, digits or underscores"
        )
    return name
