"""The Python API: one object over one database, used by the CLI, the HTTP API and tests.

>>> from datetime import UTC, datetime, timedelta
>>> lh = Leadheat("sqlite://", clock=lambda: datetime(2024, 6, 1, tzinfo=UTC))
>>> lh.init()
1
>>> lh.track("ana@example.com", "trial_signup").stored
1
>>> round(lh.show("ana@example.com").score.heat, 6)
15.0
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import DBAPIError

from leadheat.bulk import paused_gc
from leadheat.identity import LeadKey, parse_lead_key
from leadheat.ingest.records import EvidenceInput, OutcomeInput, TouchInput
from leadheat.ingest.segment import Message
from leadheat.playbook import EVIDENCE_KINDS, Playbook, default_playbook_text, parse_playbook
from leadheat.scoring.lead import OUTCOMES, LeadScore, evidence_in, score_history
from leadheat.scoring.temperature import Temperature, grade
from leadheat.speed.clocks import stop_clocks
from leadheat.speed.dispatch import Dispatcher
from leadheat.speed.ownership import AlreadyOwnedError, Taken, take_lead
from leadheat.speed.watch import Watch
from leadheat.store import audit, nurture, outbox, playbooks, reps, suggestions
from leadheat.store.audit import DEFAULT_ACTOR, AuditAction, AuditEntry, lead_subject
from leadheat.store.clocks import (
    ClockView,
    RepTimings,
    due_clocks,
    list_clocks,
    timings_by_rep,
)
from leadheat.store.database import (
    DEFAULT_URL,
    hold_playbook_lock,
    hold_start_lock,
    is_initialised,
    make_engine,
    migrate,
    writer,
)
from leadheat.store.driver import chunked
from leadheat.store.events import (
    EventBatch,
    NewEvent,
    RecordReport,
    derived_event_id,
    record_events,
)
from leadheat.store.history import TouchRecord, load_history, load_lead, load_touches
from leadheat.store.keys import (
    KeyInfo,
    Scope,
    VerifiedKeys,
    create_key,
    list_keys,
    revoke_key,
    verify_key,
    well_formed,
)
from leadheat.store.leads import (
    LeadConflictError,
    LeadUpsert,
    find_leads,
    lead_attributes,
    merge_leads,
    upsert_leads,
)
from leadheat.store.models import COMMON_FIELDS, EvidenceRow, Lead, LeadState, Outcome, Touch
from leadheat.store.outbox import DELIVERY_STATUSES, DeliveryView, signing_secret
from leadheat.store.privacy import Erasure, erase_person, export_person, person_lead_ids
from leadheat.store.ranking import Ranked, hot_leads, iter_leads, list_leads
from leadheat.store.reps import Rep
from leadheat.store.state import rebuild, refresh_facts
from leadheat.store.stitching import stitch
from leadheat.store.suggestions import Suggestion
from leadheat.times import as_utc, check_range, from_micros, isoformat, to_micros

if TYPE_CHECKING:
    from leadheat.delivery.egress import Egress

KEY_CACHE_SECONDS = 5.0
"""How long a verified key is trusted without asking the database: a revocation (from
another process too) takes effect within this."""
KEY_CACHE_SIZE = 1024
"""How many verified keys are remembered (by hash), the least recently used forgotten first."""
RACE_RETRIES = 5
PLAYBOOK_RECHECK_SECONDS = 1.0
"""How long a process answers reads by the playbook version it last saw before asking the
database again: a version applied elsewhere (the CLI, another server) shows within this.
Writes that score ask in their own transaction every time."""
REPLANS = 5
T = TypeVar("T")
P = ParamSpec("P")
PAGE_SCAN = 200
ORDERS = ("heat", "fit", "probability")


def utc_now() -> datetime:
    return datetime.now(UTC)


def _on_current_playbook(
    method: Callable[Concatenate[Leadheat, P], T],
) -> Callable[Concatenate[Leadheat, P], T]:
    """Run a write that scores again, from the start, when its transaction finds a newer
    playbook than the one it read first (:class:`PlaybookMovedError`): its checks, its scores and
    its alerts then all follow the version the transaction commits under. What runs before
    the transaction only reads, so running it again is safe."""

    @functools.wraps(method)
    def run(self: Leadheat, /, *args: P.args, **kwargs: P.kwargs) -> T:
        for _ in range(REPLANS - 1):
            try:
                return method(self, *args, **kwargs)
            except PlaybookMovedError:
                continue
        return method(self, *args, **kwargs)

    return run


def _owners(connection: Connection, lead_ids: Sequence[int]) -> dict[int, str | None]:
    """The owner of each of these leads (for auditing changes)."""
    return {
        row.id: row.owner
        for part in chunked(lead_ids)
        for row in connection.execute(select(Lead.id, Lead.owner).where(Lead.id.in_(part)))
    }


def _audit_owners(
    connection: Connection,
    now: datetime,
    actor: str,
    before: Mapping[int, str | None],
    lead_ids: Sequence[int],
) -> None:
    """Audit each owner that changed since ``before`` (read by :func:`_owners`)."""
    after = _owners(connection, sorted(set(lead_ids)))
    audit.record_many(
        connection,
        now,
        actor,
        [
            (AuditAction.OWNER, lead_subject(lead), {"from": before.get(lead), "to": to})
            for lead, to in sorted(after.items())
            if to != before.get(lead)
        ],
    )


class LeadheatError(ValueError):
    """A request leadheat cannot carry out; the message says why and what to do."""


class PlaybookMovedError(Exception):
    """Raised inside a write transaction that meets a newer playbook than the one it was
    planned with; :func:`_on_current_playbook` runs the write again by the new one."""


class InputError(LeadheatError):
    """Bad input at a known place: ``field`` names it (``batch[3].timestamp``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _check_outbound(source: str, egress: Egress | None) -> None:
    """Refuse a playbook whose alerts call where the operator does not allow."""
    # imported here: the delivery modules import the package, which imports this module
    from leadheat.delivery.egress import Egress

    (egress or Egress.from_environment()).check_playbook(parse_playbook(source), source)


class UnknownLeadError(LeadheatError):
    pass


class NotInitialisedError(LeadheatError):
    pass


class LeadTakenError(LeadheatError):
    """The lead someone tried to take has an owner already: ``owner`` names them."""

    def __init__(self, lead_id: int, owner: str) -> None:
        super().__init__(f"{owner} owns lead {lead_id} already: nothing was changed")
        self.lead_id = lead_id
        self.owner = owner


@dataclass(frozen=True)
class LeadInput:
    """A lead as an import or an API call gives it: keys, fields, optional CRM dates."""

    keys: Sequence[LeadKey]
    fields: Mapping[str, Any]
    created_at: datetime | None = None


@dataclass
class LeadImportReport:
    received: int = 0
    created: int = 0
    updated: int = 0
    lead_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class LeadRow:
    """One line of a list of leads."""

    lead_id: int
    email: str | None
    external_id: str | None
    name: str | None
    company: str | None
    owner: str | None
    heat: float
    fit: float
    qualified: bool
    temperature: Temperature
    grade: str
    status: str
    reason: str
    last_engaged_at: datetime | None
    probability: float | None = None


@dataclass(frozen=True)
class LeadView:
    """A lead with its full score at one instant and the history behind it."""

    lead: Mapping[str, Any]
    score: LeadScore
    touches: Sequence[TouchRecord]
    playbook_version: int
    probability_at: datetime | None = None
    """When the model's probability (``score.probability``) was computed."""


class Leadheat:
    """leadheat over one database (any SQLAlchemy URL; SQLite file by default).

    Time comes from ``clock`` so that tests and time travel need no sleeping.
    """

    def __init__(self, url: str = DEFAULT_URL, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.url = url
        self.clock = clock
        self.engine: Engine = make_engine(url)
        self._writer = writer(self.engine)
        self._book: tuple[int, Playbook] | None = None
        self._book_checked = -float("inf")
        """When (``time.monotonic``) ``_book`` was last known to be the current version."""
        self._key_cache = VerifiedKeys(KEY_CACHE_SIZE, KEY_CACHE_SECONDS)
        self.outbox_ready = threading.Event()
        """Set when a write put notifications in the outbox: wakes an in-process worker."""

    def close(self) -> None:
        """Release the database connections (the object is unusable afterwards)."""
        self.engine.dispose()

    def __enter__(self) -> Leadheat:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- set-up and playbook ------------------------------------------------------------
    def init(self, playbook_source: str | None = None) -> int:
        """Create or upgrade the schema; store a first playbook if there is none.

        Returns the current playbook version.
        """
        if playbook_source is not None:
            _check_outbound(playbook_source, None)
        migrate(self.engine)
        with self._writer.begin() as connection:
            hold_start_lock(connection)  # processes starting together store one first playbook
            current = playbooks.current_playbook(connection)
            if current is None:
                source = playbook_source if playbook_source is not None else default_playbook_text()
                version = playbooks.add_version(connection, source, self.clock())
            elif playbook_source is not None:
                raise LeadheatError(
                    "this database already has a playbook; use `leadheat playbook apply FILE`"
                )
            else:
                version = current.version
            signing_secret(connection, self.clock())
        self._book_checked = -float("inf")
        return version

    def playbook(self) -> tuple[int, Playbook]:
        """The current playbook and its version.

        The version is asked of the database at most every :data:`PLAYBOOK_RECHECK_SECONDS`
        (one look at an index), so a playbook applied by another process (``leadheat
        playbook apply``, another server) is the one this process shows and scores by within
        about a second; each version is parsed once.
        """
        book = self._book
        if book is not None and time.monotonic() - self._book_checked < PLAYBOOK_RECHECK_SECONDS:
            return book
        if book is None:
            url = self.engine.url
            file = url.database if url.get_backend_name() == "sqlite" else None
            if file not in (None, "", ":memory:") and not Path(str(file)).exists():
                raise NotInitialisedError(f"no database at {file}: run `leadheat init` first")
            if not is_initialised(self.engine):
                raise NotInitialisedError("the database is not initialised: run `leadheat init`")
        with self.engine.connect() as connection:
            return self._current_book(connection)

    def _current_book(self, connection: Connection) -> tuple[int, Playbook]:
        """The playbook current in ``connection``'s transaction, parsed only if its version
        is not the one this process holds. A transaction whose snapshot predates the version
        another thread already holds gets its own (older) one, and the held one stays."""
        checked = time.monotonic()
        version = playbooks.current_version(connection)
        book = self._book
        if book is not None and book[0] == version:
            self._book_checked = checked
            return book
        current = playbooks.current_playbook(connection)
        if current is None:
            raise NotInitialisedError("the database has no playbook: run `leadheat init`")
        found = (current.version, current.playbook)
        if book is None or found[0] > book[0]:
            self._book = found
            self._book_checked = checked
        return found

    def playbook_in(self, connection: Connection) -> tuple[int, Playbook]:
        """The playbook current in this write transaction, for a module that scores in one
        of its own (:meth:`transaction`): it holds the playbook lock (shared), so the version
        cannot change before the transaction ends."""
        hold_playbook_lock(connection, exclusive=False)
        return self._current_book(connection)

    def _hold_playbook(self, connection: Connection, version: int) -> None:
        """In a write transaction that scores by ``version``: hold the playbook lock (shared)
        and raise :class:`PlaybookMovedError` if a newer version was applied since the write read
        it, so that no lead is scored by a version older than the one just applied."""
        hold_playbook_lock(connection, exclusive=False)
        if self._current_book(connection)[0] != version:
            raise PlaybookMovedError(version)

    @contextmanager
    def _scoring(self, version: int) -> Iterator[Connection]:
        """A write transaction that scores by ``version`` (see :meth:`_hold_playbook`)."""
        with self._writer.begin() as connection:
            self._hold_playbook(connection, version)
            yield connection

    def playbook_source(self) -> str:
        with self.engine.connect() as connection:
            current = playbooks.current_playbook(connection)
        if current is None:
            raise NotInitialisedError("the database has no playbook: run `leadheat init`")
        return current.source

    def playbook_history(self) -> list[tuple[int, str, datetime, str]]:
        with self.engine.connect() as connection:
            return playbooks.history(connection)

    def apply_playbook(
        self, source: str, *, actor: str = DEFAULT_ACTOR, egress: Egress | None = None
    ) -> int:
        """Store ``source`` as the next playbook version and re-score every lead by it.

        Its alerts must call only where the operator allows (``egress``; by default the
        limits the environment sets): see :mod:`leadheat.delivery.egress`.
        """
        _check_outbound(source, egress)
        book = parse_playbook(source)
        now = self.clock()
        with self._writer.begin() as connection:
            hold_playbook_lock(connection, exclusive=True)
            version = playbooks.add_version(connection, source, now)
            rebuild(connection, book, version)
            audit.record(
                connection,
                now,
                actor,
                AuditAction.PLAYBOOK_APPLY,
                f"playbook:{version}",
                {"version": version},
            )
        self._book = (version, book)
        self._book_checked = time.monotonic()
        return version

    # -- writing ------------------------------------------------------------------------
    def _write(self, work: Callable[[Connection], T], version: int | None = None) -> T:
        """Run ``work`` in one write transaction, again if it lost a race; one that scores
        names the playbook ``version`` it scores by (see :meth:`_hold_playbook`).

        Two PostgreSQL transactions creating the same new lead at once both pass the "is it
        known?" check; the second then hits the identity's unique key. Its transaction is
        rolled back whole and retried, and then finds the lead the first one created. A
        deadlock or serialization failure is retried the same way (new leads' identities go
        in in key order, so writers should not deadlock on them). (SQLite takes the write
        lock before reading, so it never races.)
        """
        for attempt in range(RACE_RETRIES):
            try:
                with self._writer.begin() as connection:
                    if version is not None:
                        self._hold_playbook(connection, version)
                    return work(connection)
            except DBAPIError as error:
                if attempt == RACE_RETRIES - 1 or not _lost_race(error):
                    raise
                time.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

    def _watched(
        self,
        book: Playbook,
        now: datetime,
        work: Callable[[Connection, Watch], T],
        react: bool = True,
        *,
        version: int,
    ) -> T:
        """:meth:`_write` with speed to lead: ``work`` tells the watch which leads it is about
        to change and which it changed; the triggers they fire are handled in the same
        transaction, and an in-process worker is woken once it commits."""
        watch: Watch | None = None

        def run(connection: Connection) -> T:
            nonlocal watch
            watch = Watch(connection, book, now, enabled=react)
            result = work(connection, watch)
            watch.react()
            return result

        result = self._write(run, version)
        if watch is not None and watch.queued:
            self.outbox_ready.set()
        return result

    def _checked_at(self, at: datetime | None, book: Playbook) -> datetime:
        now = self.clock()
        if at is None:
            return now
        if at.tzinfo is None:
            raise LeadheatError(f"{at.isoformat()} has no UTC offset")
        at = check_range(as_utc(at))
        if at > now + book.ingest.future_tolerance:
            raise LeadheatError(
                f"{at.isoformat()} is in the future (more than "
                f"{book.ingest.future_tolerance} ahead of now, {now.isoformat()})"
            )
        oldest = book.ingest.oldest(now)
        if oldest is not None and at < oldest:
            raise LeadheatError(
                f"{at.isoformat()} is older than the playbook's [ingest] max_age allows "
                f"(before {oldest.isoformat()})"
            )
        return at

    def track(
        self,
        lead: str,
        event_type: str,
        at: datetime | None = None,
        properties: Mapping[str, Any] | None = None,
        event_id: str | None = None,
    ) -> RecordReport:
        """Record one event; the lead is created if unknown."""
        key = parse_lead_key(lead)
        _, book = self.playbook()
        when = self._checked_at(at, book)
        props = dict(properties) if properties else None
        event = NewEvent(
            key,
            _event_type(event_type),
            when,
            event_id or derived_event_id(key, event_type, when, props, 0),
            props,
        )
        return self.record_events([event])

    @_on_current_playbook
    def record_events(
        self, events: EventBatch | Sequence[NewEvent], *, react: bool = True
    ) -> RecordReport:
        """Record a batch of validated events in one transaction.

        ``react=False`` records history without firing speed-to-lead triggers (imports of
        past data: nobody should be paged for a lead that was hot last year).
        """
        version, book = self.playbook()
        now = self.clock()
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
            report = record_events(
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
            return self._watched(book, now, apply, react, version=version)

    @_on_current_playbook
    def collect(
        self,
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
        version, book = self.playbook()
        now = self.clock()
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

        def apply(connection: Connection, watch: Watch) -> RecordReport:
            identities = [self._message_keys(connection, message) for message in messages]
            suggested: list[tuple[int, int, str]] = []
            lead_ids = stitch(
                connection,
                book,
                version,
                identities,
                [to_micros(message.at) for message in messages],
                now,
                public=public,
                suggested=suggested,
            )
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
            events = [
                NewEvent(
                    keys[0], message.event_type, message.at, message.message_id, message.properties
                )
                for message, keys in zip(messages, identities, strict=True)
                if message.event_type is not None
            ]
            if watch.enabled:
                watch.look(find_leads(connection, [keys[0] for keys in identities]).values())
            report = record_events(
                connection,
                book,
                version,
                events,
                now,
                watch_types=book.speed.watched_events if watch.enabled else frozenset(),
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
                    before = _owners(connection, sorted(set(known.values())))
                ids, _ = upsert_leads(
                    connection,
                    [LeadUpsert([keys[0]], message.traits, None) for message, keys in with_traits],
                    version,
                    now,
                    book,
                    public=public,
                    refused=refused,
                )
                if owners_given:
                    _audit_owners(connection, now, actor, before, ids)
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
            return self._watched(book, now, apply, version=version)

    @staticmethod
    def _message_keys(connection: Connection, message: Message) -> list[LeadKey]:
        keys = message.identity.keys()
        if message.previous_id is not None:  # alias: the id the person had before
            before = [
                LeadKey("external", message.previous_id),
                LeadKey("anonymous", message.previous_id),
            ]
            known = find_leads(connection, before)
            keys.append(next((k for k in before if k in known), before[1]))
        return keys

    @_on_current_playbook
    def upsert_leads(
        self, leads: Sequence[LeadInput], *, react: bool = True, actor: str = DEFAULT_ACTOR
    ) -> LeadImportReport:
        """Create or update leads by their keys in one transaction.

        Attributes named in the playbook's ``[evidence]`` become BANT evidence stated at the
        lead's ``created_at`` (or now). A new qualified lead fires the ``new_qualified``
        trigger unless ``react=False``. Owners set or changed are audited as ``actor``'s.
        """
        version, book = self.playbook()
        now = self.clock()
        owners_given = any("owner" in item.fields for item in leads)

        def apply(connection: Connection, watch: Watch) -> tuple[list[int], int]:
            known = find_leads(connection, [k for item in leads for k in item.keys])
            if watch.enabled:
                watch.look(known.values())
            before = _owners(connection, sorted(set(known.values()))) if owners_given else {}
            try:
                ids, created = upsert_leads(
                    connection,
                    [LeadUpsert(item.keys, item.fields, item.created_at) for item in leads],
                    version,
                    now,
                    book,
                )
            except LeadConflictError as error:
                raise LeadheatError(str(error)) from None
            evidence_rows = [
                {
                    "lead_id": lead_id,
                    "kind": item.kind,
                    "value": item.value,
                    "stated_at": item.stated_at,
                    "source": item.source,
                }
                for lead, lead_id in zip(leads, ids, strict=True)
                for item in evidence_in(lead.fields, lead.created_at or now, book, "lead import")
            ]
            if evidence_rows:
                connection.execute(insert(EvidenceRow), evidence_rows)
            refresh_facts(connection, book, version, ids)
            if owners_given:
                _audit_owners(connection, now, actor, before, ids)
            watch.changed(ids)
            return ids, created

        ids, created = self._watched(book, now, apply, react, version=version)
        distinct = len(set(ids))
        return LeadImportReport(len(leads), created, distinct - created, ids)

    def _lead_id(self, connection: Connection, lead: str | int) -> int:
        """The id of the lead named by an email, external id, ``anon:…`` or ``id:N``."""
        if isinstance(lead, str) and lead.startswith("id:") and lead[3:].isdigit():
            lead = int(lead[3:])
        if isinstance(lead, int):
            row = connection.execute(
                select(Lead.id, Lead.merged_into_id).where(Lead.id == lead)
            ).first()
            if row is None:
                raise UnknownLeadError(f"no lead with id {lead}")
            return int(row.merged_into_id or row.id)
        key = parse_lead_key(lead)
        found = find_leads(connection, [key])
        if key not in found:
            raise UnknownLeadError(f"no lead known as {lead!r}")
        return found[key]

    def touch(
        self,
        lead: str,
        kind: str,
        at: datetime | None = None,
        *,
        direction: str = "outbound",
        result: str | None = None,
        rep: str | None = None,
        note: str | None = None,
    ) -> int:
        """Record a contact by the team; returns the lead's id."""
        _, book = self.playbook()
        when = self._checked_at(at, book)
        if direction not in ("inbound", "outbound"):
            raise LeadheatError(f"direction {direction!r} must be inbound or outbound")
        with self._writer.begin() as connection:
            lead_id = self._lead_id(connection, lead)
            connection.execute(
                insert(Touch).values(
                    lead_id=lead_id,
                    kind=_event_type(kind),
                    occurred_at=when,
                    direction=direction,
                    result=result,
                    rep=rep,
                    note=note,
                )
            )
            stop_clocks(connection, book, [(lead_id, when, rep)])
            nurture.stop_many(connection, [(lead_id, when)], "touch")
        return lead_id

    @_on_current_playbook
    def outcome(
        self,
        lead: str,
        outcome: str,
        at: datetime | None = None,
        reason: str | None = None,
        *,
        actor: str = DEFAULT_ACTOR,
    ) -> int:
        """Record won, lost or disqualified."""
        version, book = self.playbook()
        when = self._checked_at(at, book)
        if outcome not in OUTCOMES:
            raise LeadheatError(f"outcome {outcome!r} must be one of {', '.join(OUTCOMES)}")
        with self._scoring(version) as connection:
            lead_id = self._lead_id(connection, lead)
            connection.execute(
                insert(Outcome).values(
                    lead_id=lead_id, outcome=outcome, occurred_at=when, reason=reason
                )
            )
            refresh_facts(connection, book, version, [lead_id])
            stop_clocks(connection, book, [(lead_id, when, f"outcome: {outcome}")])
            nurture.stop_many(connection, [(lead_id, when)], "outcome")
            audit.record(
                connection,
                self.clock(),
                actor,
                AuditAction.OUTCOME,
                lead_subject(lead_id),
                {"outcome": outcome},
            )
        return lead_id

    @_on_current_playbook
    def evidence(
        self, lead: str, kind: str, value: str, at: datetime | None = None, source: str = "manual"
    ) -> int:
        """Record a BANT fact (need, budget, timeline, authority) stated at ``at``."""
        version, book = self.playbook()
        when = self._checked_at(at, book)
        if kind not in EVIDENCE_KINDS:
            raise LeadheatError(
                f"evidence kind {kind!r} must be one of {', '.join(EVIDENCE_KINDS)}"
            )

        def apply(connection: Connection, watch: Watch) -> int:
            lead_id = self._lead_id(connection, lead)
            watch.look([lead_id])
            connection.execute(
                insert(EvidenceRow).values(
                    lead_id=lead_id, kind=kind, value=value, stated_at=when, source=source
                )
            )
            refresh_facts(connection, book, version, [lead_id])
            watch.changed([lead_id])
            return lead_id

        return self._watched(book, self.clock(), apply, version=version)

    def transaction(self) -> AbstractContextManager[Connection]:
        """One write transaction, for modules built on the service (the predictive model)."""
        return self._writer.begin()

    def lead_id(self, lead: str | int) -> int:
        """The id of the lead a reference (email, external id, ``anon:…``, ``id:N``) names."""
        with self.engine.connect() as connection:
            return self._lead_id(connection, lead)

    def known_leads(self, keys: Sequence[LeadKey]) -> dict[LeadKey, int]:
        """Which of these keys name a lead already."""
        with self.engine.connect() as connection:
            return find_leads(connection, keys)

    def record_touches(self, touches: Sequence[TouchInput]) -> tuple[int, int]:
        """Record many touches in one transaction; every lead must exist.

        A touch already stored (same lead, kind, time, direction and rep) is a duplicate, so
        re-importing a CRM export adds nothing. Returns ``(stored, duplicates)``.
        """
        _, book = self.playbook()
        with self._writer.begin() as connection:
            ids = self._require(connection, [t.lead for t in touches])
            stored = _store_unseen(
                connection,
                Touch,
                ("lead_id", "kind", "occurred_at", "direction", "rep"),
                [
                    {
                        "lead_id": ids[t.lead],
                        "kind": t.kind,
                        "occurred_at": t.at,
                        "direction": t.direction,
                        "result": t.result,
                        "rep": t.rep,
                        "note": t.note,
                    }
                    for t in touches
                ],
            )
            stop_clocks(
                connection, book, [(r["lead_id"], r["occurred_at"], r["rep"]) for r in stored]
            )
            nurture.stop_many(
                connection, [(r["lead_id"], r["occurred_at"]) for r in stored], "touch"
            )
        return len(stored), len(touches) - len(stored)

    @_on_current_playbook
    def record_outcomes(
        self, outcomes: Sequence[OutcomeInput], *, actor: str = DEFAULT_ACTOR
    ) -> tuple[int, int]:
        """Record many outcomes in one transaction; every lead must exist.

        The same outcome of the same lead at the same time is stored once. Returns
        ``(stored, duplicates)``.
        """
        version, book = self.playbook()
        with self._scoring(version) as connection:
            ids = self._require(connection, [o.lead for o in outcomes])
            stored = _store_unseen(
                connection,
                Outcome,
                ("lead_id", "outcome", "occurred_at"),
                [
                    {
                        "lead_id": ids[o.lead],
                        "outcome": o.outcome,
                        "occurred_at": o.at,
                        "reason": o.reason,
                    }
                    for o in outcomes
                ],
            )
            refresh_facts(connection, book, version, sorted({r["lead_id"] for r in stored}))
            stop_clocks(
                connection,
                book,
                [(r["lead_id"], r["occurred_at"], f"outcome: {r['outcome']}") for r in stored],
            )
            nurture.stop_many(
                connection, [(r["lead_id"], r["occurred_at"]) for r in stored], "outcome"
            )
            audit.record_many(
                connection,
                self.clock(),
                actor,
                [
                    (
                        AuditAction.OUTCOME,
                        lead_subject(r["lead_id"]),
                        {"outcome": r["outcome"]},
                    )
                    for r in stored
                ],
            )
        return len(stored), len(outcomes) - len(stored)

    @_on_current_playbook
    def record_evidence(
        self, facts: Sequence[EvidenceInput], *, react: bool = True
    ) -> tuple[int, int]:
        """Record many BANT facts in one transaction; every lead must exist.

        A fact already stored (same lead, kind, value and time) is a duplicate. Returns
        ``(stored, duplicates)``.
        """
        version, book = self.playbook()
        for fact in facts:
            if fact.kind not in EVIDENCE_KINDS:
                raise LeadheatError(
                    f"evidence kind {fact.kind!r} must be one of {', '.join(EVIDENCE_KINDS)}"
                )

        def apply(connection: Connection, watch: Watch) -> tuple[int, int]:
            ids = self._require(connection, [f.lead for f in facts])
            watch.look(ids.values())
            stored = _store_unseen(
                connection,
                EvidenceRow,
                ("lead_id", "kind", "value", "stated_at"),
                [
                    {
                        "lead_id": ids[f.lead],
                        "kind": f.kind,
                        "value": f.value,
                        "stated_at": f.at,
                        "source": f.source,
                    }
                    for f in facts
                ],
            )
            changed = sorted({r["lead_id"] for r in stored})
            refresh_facts(connection, book, version, changed)
            watch.changed(changed)
            return len(stored), len(facts) - len(stored)

        return self._watched(book, self.clock(), apply, react, version=version)

    def _require(self, connection: Connection, keys: Sequence[LeadKey]) -> dict[LeadKey, int]:
        ids = find_leads(connection, keys)
        unknown = [str(k) for k in dict.fromkeys(keys) if k not in ids]
        if unknown:
            raise UnknownLeadError(
                f"no lead known as {', '.join(repr(u) for u in unknown[:5])}"
                + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            )
        return ids

    @_on_current_playbook
    def merge(self, keep: str | int, absorb: str | int, *, actor: str = DEFAULT_ACTOR) -> int:
        """Merge the lead known as ``absorb`` into ``keep``; their histories become one."""
        version, book = self.playbook()
        now = self.clock()
        with self._scoring(version) as connection:
            keep_id = self._lead_id(connection, keep)
            absorb_id = self._lead_id(connection, absorb)
            _merge(connection, book, version, keep_id, absorb_id, now, actor)
        return keep_id

    def suggested_merges(
        self, *, status: str | None = "open", lead: str | int | None = None, limit: int = 100
    ) -> list[Suggestion]:
        """Merges public collection suggested (newest first): the open ones by default,
        ``status=None`` for all; ``lead`` for those naming one lead."""
        if status is not None and status not in suggestions.STATUSES:
            raise LeadheatError(
                f"status {status!r} must be one of {', '.join(suggestions.STATUSES)}"
            )
        with self.engine.connect() as connection:
            lead_id = self._lead_id(connection, lead) if lead is not None else None
            return suggestions.list_suggestions(
                connection, status=status, lead_id=lead_id, limit=limit
            )

    @_on_current_playbook
    def confirm_merge(self, suggestion_id: int, *, actor: str = DEFAULT_ACTOR) -> int:
        """Carry out an open suggested merge (audited); returns the lead that remains."""
        version, book = self.playbook()
        now = self.clock()
        with self._scoring(version) as connection:
            found = self._open_suggestion(connection, suggestion_id)
            keep = self._lead_id(connection, found.into_lead_id)
            absorb = self._lead_id(connection, found.lead_id)
            suggestions.resolve(connection, suggestion_id, "confirmed", actor, now)
            audit.record(
                connection,
                now,
                actor,
                AuditAction.MERGE_CONFIRM,
                f"merge:{suggestion_id}",
                {"lead": absorb, "into": keep},
            )
            _merge(connection, book, version, keep, absorb, now, actor)
        return keep

    def dismiss_merge(self, suggestion_id: int, *, actor: str = DEFAULT_ACTOR) -> int:
        """Close an open suggested merge without merging (audited): they are two people.
        Returns the suggestion's ``lead_id``."""
        now = self.clock()
        with self._writer.begin() as connection:
            found = self._open_suggestion(connection, suggestion_id)
            suggestions.resolve(connection, suggestion_id, "dismissed", actor, now)
            audit.record(
                connection,
                now,
                actor,
                AuditAction.MERGE_DISMISS,
                f"merge:{suggestion_id}",
                {"lead": found.lead_id, "into": found.into_lead_id},
            )
        return found.lead_id

    @staticmethod
    def _open_suggestion(connection: Connection, suggestion_id: int) -> Suggestion:
        found = suggestions.find_suggestion(connection, suggestion_id)
        if found is None:
            raise UnknownLeadError(f"no suggested merge with id {suggestion_id}")
        if found.status != "open":
            raise LeadheatError(
                f"suggested merge {suggestion_id} is already {found.status} "
                f"(by {found.resolved_by})"
            )
        return found

    # -- reading ------------------------------------------------------------------------
    def hot(self, at: datetime | None = None, limit: int | None = None) -> list[LeadRow]:
        """Hot leads not yet won, hottest first, as of ``at`` (default now)."""
        _, book = self.playbook()
        now = at or self.clock()
        with self.engine.connect() as connection:
            return self._rows(connection, book, hot_leads(connection, book, now, limit))

    def leads(
        self,
        temperature: Temperature | str | None = None,
        at: datetime | None = None,
        limit: int | None = None,
    ) -> list[LeadRow]:
        """Leads hottest first, optionally of one temperature, as of ``at``."""
        _, book = self.playbook()
        now = at or self.clock()
        wanted = Temperature(temperature) if temperature is not None else None
        with self.engine.connect() as connection:
            ranked = list_leads(connection, book, now, limit, wanted)
            return self._rows(connection, book, ranked)

    def _rows(
        self, connection: Connection, book: Playbook, ranked: Sequence[Ranked]
    ) -> list[LeadRow]:
        ids = [r.lead_id for r in ranked]
        leads = (
            {
                row["id"]: row
                for row in connection.execute(select(Lead).where(Lead.id.in_(ids))).mappings()
            }
            if ids
            else {}
        )
        rows = []
        for item in ranked:
            lead = leads[item.lead_id]
            rows.append(
                LeadRow(
                    lead_id=item.lead_id,
                    email=lead["email"],
                    external_id=lead["external_id"],
                    name=lead["name"],
                    company=lead["company"],
                    owner=lead["owner"],
                    heat=item.heat,
                    fit=item.facts.fit,
                    qualified=item.facts.qualified,
                    temperature=item.verdict.temperature,
                    grade=grade(item.facts.fit, item.facts.disqualified, item.heat, book),
                    status=item.status,
                    reason=item.verdict.reason,
                    last_engaged_at=item.facts.last_engaged_at,
                    probability=item.facts.probability,
                )
            )
        return rows

    def browse(
        self,
        *,
        temperature: Temperature | str | None = None,
        owner: str | None = None,
        status: str | None = None,
        order: str = "heat",
        at: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[LeadRow], bool]:
        """A page of leads, hottest (or best-fitting) first, with filters; and whether more
        follow. Pages of one ``at`` are a consistent snapshot of that instant."""
        if order not in ORDERS:
            raise LeadheatError(f"order {order!r} must be one of {', '.join(ORDERS)}")
        _, book = self.playbook()
        now = at or self.clock()
        wanted = Temperature(temperature) if temperature is not None else None
        page: list[LeadRow] = []
        skipped = 0
        with self.engine.connect() as connection:
            pending: list[Ranked] = []
            for item in iter_leads(connection, book, now, order, wanted):
                if status is not None and item.status != status:
                    continue
                pending.append(item)
                if len(pending) < PAGE_SCAN:
                    continue
                skipped = self._take(connection, book, pending, owner, offset, skipped, page)
                pending = []
                if len(page) > limit:
                    break
            else:
                skipped = self._take(connection, book, pending, owner, offset, skipped, page)
        return page[:limit], len(page) > limit

    def _take(
        self,
        connection: Connection,
        book: Playbook,
        ranked: Sequence[Ranked],
        owner: str | None,
        offset: int,
        skipped: int,
        page: list[LeadRow],
    ) -> int:
        for row in self._rows(connection, book, ranked):
            if owner is not None and row.owner != owner:
                continue
            if skipped < offset:
                skipped += 1
            else:
                page.append(row)
        return skipped

    @_on_current_playbook
    def patch_lead(
        self, lead: str | int, fields: Mapping[str, Any], *, actor: str = DEFAULT_ACTOR
    ) -> int:
        """Change some of a lead's fields; ``attributes`` merge into the stored ones, and a
        ``None`` value clears an attribute. Fit and qualification follow."""
        version, book = self.playbook()
        now = self.clock()

        def apply(connection: Connection, watch: Watch) -> int:
            lead_id = self._lead_id(connection, lead)
            watch.look([lead_id])
            row = load_lead(connection, lead_id)
            common = {k: v for k, v in fields.items() if k in COMMON_FIELDS}
            for name in ("email", "external_id"):
                common.pop(name, None)
            attributes = dict(row["attributes"] or {})
            given = dict(fields.get("attributes") or {})
            for name, value in given.items():
                if value is None:
                    attributes.pop(name, None)
                else:
                    attributes[name] = value
            by_public = set(row["public_fields"] or ()) - common.keys() - given.keys()
            connection.execute(
                update(Lead)
                .where(Lead.id == lead_id)
                .values(
                    **common,
                    attributes=attributes,
                    updated_at=now,
                    public_fields=sorted(by_public) or None,
                )
            )
            if "owner" in common and common["owner"] != row["owner"]:
                audit.record(
                    connection,
                    now,
                    actor,
                    AuditAction.OWNER,
                    lead_subject(lead_id),
                    {"from": row["owner"], "to": common["owner"]},
                )
            refresh_facts(connection, book, version, [lead_id])
            watch.changed([lead_id])
            return lead_id

        return self._watched(book, now, apply, version=version)

    def timeline(self, lead: str | int, limit: int = 200) -> list[dict[str, Any]]:
        """Everything that happened to a lead, newest first: events, touches, outcomes and
        evidence, each with its kind and time."""
        with self.engine.connect() as connection:
            lead_id = self._lead_id(connection, lead)
            history = load_history(connection, lead_id)
            touches = load_touches(connection, lead_id)
        items: list[dict[str, Any]] = [
            {
                "kind": "event",
                "at": e.at,
                "type": e.type,
                "id": e.event_id,
                "properties": dict(e.properties),
            }
            for e in history.events
        ]
        items += [
            {
                "kind": "touch",
                "at": t.at,
                "type": t.kind,
                "direction": t.direction,
                "result": t.result,
                "rep": t.rep,
            }
            for t in touches
        ]
        items += [
            {"kind": "outcome", "at": o.at, "type": o.outcome, "reason": o.reason}
            for o in history.outcomes
        ]
        items += [
            {
                "kind": "evidence",
                "at": e.stated_at,
                "type": e.kind,
                "value": e.value,
                "source": e.source,
            }
            for e in history.evidence
        ]
        items.sort(key=lambda item: item["at"], reverse=True)
        return items[:limit]

    def create_key(
        self,
        name: str,
        scopes: Sequence[Scope | str],
        *,
        public: bool = False,
        origins: Sequence[str] = (),
        actor: str = DEFAULT_ACTOR,
    ) -> tuple[str, KeyInfo]:
        """A new API key; the returned key string is shown once and never stored.

        ``public`` makes a publishable key for web pages (``ingest`` alone), accepted from
        browsers only on ``origins`` (``https://www.acme.com``); see SECURITY.md.
        """
        self.playbook()
        try:
            wanted = frozenset(Scope(s) for s in scopes)
        except ValueError:
            raise LeadheatError(
                f"scopes {list(scopes)!r} must be among ingest, read, admin"
            ) from None
        now = self.clock()
        with self._writer.begin() as connection:
            try:
                key, info = create_key(
                    connection, name, wanted, now, public=public, origins=origins
                )
            except ValueError as error:
                raise LeadheatError(str(error)) from None
            details: dict[str, Any] = {"name": name, "scopes": sorted(info.scopes)}
            if info.public:
                details.update(public=True, origins=list(info.origins))
            audit.record(
                connection, now, actor, AuditAction.KEY_CREATE, f"key:{info.prefix}", details
            )
        return key, info

    def keys(self) -> list[KeyInfo]:
        with self.engine.connect() as connection:
            return list_keys(connection)

    def revoke_key(self, prefix_or_name: str, *, actor: str = DEFAULT_ACTOR) -> int:
        """Revoke the active keys with this prefix or name; returns how many."""
        now = self.clock()
        with self._writer.begin() as connection:
            revoked = [
                k
                for k in list_keys(connection)
                if k.revoked_at is None and prefix_or_name in (k.prefix, k.name)
            ]
            count = revoke_key(connection, prefix_or_name, now)
            audit.record_many(
                connection,
                now,
                actor,
                [(AuditAction.KEY_REVOKE, f"key:{k.prefix}", {"name": k.name}) for k in revoked],
            )
        self._key_cache.clear()
        return count

    def verify_key(self, key: str) -> KeyInfo | None:
        """The key's record if it is valid; remembered for a few seconds so that busy
        collection endpoints do not query for every request (revocations apply within
        :data:`KEY_CACHE_SECONDS`). A key that does not have a key's shape is refused
        before any lookup, and none is remembered by its text (only by its hash)."""
        if not well_formed(key):
            return None
        known, cached = self._key_cache.get(key)
        if known:
            return cached
        with self.engine.connect() as connection:
            info = verify_key(connection, key)
        self._key_cache.put(key, info)
        return info

    # -- speed to lead: reps, clocks, the outbox -----------------------------------------
    def add_rep(
        self,
        email: str,
        *,
        name: str | None = None,
        team: str | None = None,
        capacity: int | None = None,
        weight: float = 1.0,
        actor: str = DEFAULT_ACTOR,
    ) -> Rep:
        """Add a rep who can own leads (or update one); new reps join round robin level
        with the others."""
        _, book = self.playbook()
        team = team or book.speed.default_team
        if book.speed.teams and team not in book.speed.teams and team != book.speed.default_team:
            raise LeadheatError(
                f"team {team!r} is not in the playbook's [speed.teams] "
                f"({', '.join(sorted(book.speed.teams))})"
            )
        now = self.clock()
        with self._writer.begin() as connection:
            try:
                rep = reps.add_rep(
                    connection, email, now, name=name, team=team, capacity=capacity, weight=weight
                )
            except ValueError as error:
                raise LeadheatError(str(error)) from None
            audit.record(
                connection,
                now,
                actor,
                AuditAction.REP_ADD,
                rep.email,
                {"team": rep.team, "capacity": rep.capacity, "weight": rep.weight},
            )
        return rep

    def reps(self) -> list[tuple[Rep, int]]:
        """Every rep with the number of open hot leads they own now."""
        _, book = self.playbook()
        with self.engine.connect() as connection:
            found = reps.list_reps(connection)
            counts = reps.open_hot_counts(
                connection, book, self.clock(), [rep.email for rep in found]
            )
        return [(rep, counts.get(rep.email, 0)) for rep in found]

    def set_rep_active(self, email: str, active: bool, *, actor: str = DEFAULT_ACTOR) -> Rep:
        """Pause a rep (no new leads; they keep theirs) or resume them."""
        with self._writer.begin() as connection:
            try:
                rep = reps.set_active(connection, email, active)
            except reps.UnknownRepError as error:
                raise UnknownLeadError(str(error)) from None
            action = AuditAction.REP_RESUME if active else AuditAction.REP_PAUSE
            audit.record(connection, self.clock(), actor, action, rep.email)
        return rep

    def take(self, lead: str | int, rep: str, *, actor: str = DEFAULT_ACTOR) -> Taken:
        """Make ``rep`` (an email) the owner of a lead nobody owns and start their SLA clock.

        This is "Take it" on the dashboard: a hot lead that found no owner (no reps yet, or
        none with room) waits for the first person to take it. The owner is set only if
        there is still none, in one transaction with the audit record (as ``actor``'s) and
        the clock, so a second take raises :class:`LeadTakenError` naming the first taker and
        changes nothing. Someone who is not a rep yet becomes one, paused: they own what they
        take, and round robin gives them nothing until ``leadheat reps resume``.
        """
        _, book = self.playbook()
        now = self.clock()

        def apply(connection: Connection) -> Taken:
            lead_id = self._lead_id(connection, lead)
            try:
                return take_lead(connection, book, now, lead_id, rep, actor)
            except AlreadyOwnedError as error:
                raise LeadTakenError(error.lead_id, error.owner) from None
            except ValueError as error:  # not an email address
                raise LeadheatError(str(error)) from None

        return self._write(apply)

    def sla_clocks(
        self,
        *,
        lead: str | int | None = None,
        owner: str | None = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> list[ClockView]:
        """SLA clocks, newest first: per lead, per rep, or only those still running."""
        with self.engine.connect() as connection:
            lead_id = self._lead_id(connection, lead) if lead is not None else None
            return list_clocks(
                connection, lead_id=lead_id, owner=owner, open_only=open_only, limit=limit
            )

    def sla_by_rep(self, since: datetime | None = None) -> list[RepTimings]:
        """Per rep: clocks met, missed, breached and running, and the median response."""
        with self.engine.connect() as connection:
            return timings_by_rep(connection, self.clock(), since)

    @_on_current_playbook
    def escalate(self) -> int:
        """Escalate every SLA clock past its deadline (the worker calls this)."""
        version, book = self.playbook()
        now = self.clock()
        with self.engine.connect() as connection:  # a read first: most passes find nothing
            if not due_clocks(connection, now, 1, lock=False):
                return 0
        count, queued = self._write(lambda c: _escalate(c, book, now), version)
        if queued:
            self.outbox_ready.set()
        return count

    def claim_deliveries(
        self, lease: timedelta, limit: int = 20, max_attempts: int | None = None
    ) -> list[DeliveryView]:
        """Lease due notifications to the calling worker (giving up on those that have had
        ``max_attempts`` already)."""
        now = self.clock()
        with self.engine.connect() as connection:  # a read first: most passes find nothing
            if not outbox.any_due(connection, now):
                return []
        with self._writer.begin() as connection:
            return outbox.claim(connection, self.clock(), lease, limit, max_attempts)

    def deliveries_done(self, delivery_ids: Sequence[int]) -> None:
        """Record these notifications as delivered."""
        if delivery_ids:
            with self._writer.begin() as connection:
                outbox.delivered(connection, delivery_ids, self.clock())

    def delivery_failed(self, delivery_id: int, error: str, retry_in: timedelta | None) -> None:
        """Record a failed attempt; retry after ``retry_in``, or give up when ``None``."""
        now = self.clock()
        with self._writer.begin() as connection:
            outbox.failed(
                connection, delivery_id, error, now + retry_in if retry_in is not None else None
            )

    def deliveries(
        self, *, status: str | None = None, lead: str | int | None = None, limit: int = 100
    ) -> list[DeliveryView]:
        """Notifications, newest first: what was sent, what is waiting, what failed."""
        if status is not None and status not in DELIVERY_STATUSES:
            raise LeadheatError(f"status {status!r} must be one of {', '.join(DELIVERY_STATUSES)}")
        with self.engine.connect() as connection:
            lead_id = self._lead_id(connection, lead) if lead is not None else None
            return outbox.list_deliveries(connection, status=status, lead_id=lead_id, limit=limit)

    def retry_delivery(self, delivery_id: int, *, actor: str = DEFAULT_ACTOR) -> None:
        """Send a failed notification again now."""
        now = self.clock()
        with self._writer.begin() as connection:
            if not outbox.retry(connection, delivery_id, now):
                raise LeadheatError(f"no undelivered notification with id {delivery_id}")
            audit.record(
                connection, now, actor, AuditAction.DELIVERY_RETRY, f"delivery:{delivery_id}"
            )
        self.outbox_ready.set()

    def signing_secret(self) -> str:
        """The database's own webhook signing secret (used when ``LEADHEAT_WEBHOOK_SECRET``
        and the alert's ``secret_env`` are unset)."""
        with self._writer.begin() as connection:
            return outbox.signing_secret(connection, self.clock())

    def show(self, lead: str | int, at: datetime | None = None) -> LeadView:
        """A lead's full, explained score as of ``at`` (default now), from its history."""
        version, book = self.playbook()
        now = at or self.clock()
        with self.engine.connect() as connection:
            lead_id = self._lead_id(connection, lead)
            row = load_lead(connection, lead_id)
            if row["merged_into_id"] is not None:
                lead_id = row["merged_into_id"]
                row = load_lead(connection, lead_id)
            history = load_history(connection, lead_id)
            touches = [t for t in load_touches(connection, lead_id) if t.at <= now]
            stored = connection.execute(
                select(LeadState.probability, LeadState.probability_at).where(
                    LeadState.lead_id == lead_id
                )
            ).first()
        probability, probability_at = stored if stored is not None else (None, None)
        if at is not None:  # the stored probability is today's: no answer for the past
            probability, probability_at = None, None
        score = score_history(history, book, now, probability)
        return LeadView(
            {**row, "attributes": lead_attributes(row)}, score, touches, version, probability_at
        )

    # -- people's data and the audit log ------------------------------------------------
    def export(self, lead: str | int, *, actor: str = DEFAULT_ACTOR) -> dict[str, Any]:
        """Everything stored about a person (the lead, the leads merged into it and every
        row that references them), by table; the export itself is audited."""
        now = self.clock()
        with self._writer.begin() as connection:
            lead_id = self._lead_id(connection, lead)
            lead_ids = person_lead_ids(connection, lead_id)
            tables = export_person(connection, lead_ids)
            audit.record(
                connection,
                now,
                actor,
                AuditAction.LEAD_EXPORT,
                lead_subject(lead_id),
                {"rows": {name: len(rows) for name, rows in tables.items()}},
            )
        return {
            "lead": lead_id,
            "lead_ids": lead_ids,
            "exported_at": isoformat(now),
            "tables": tables,
        }

    def erase(self, lead: str | int, *, actor: str = DEFAULT_ACTOR) -> Erasure:
        """Remove a person and everything about them in one transaction: the lead, the
        leads merged into it, their identities (so no key finds them again), history, state,
        SLA clocks and notifications. What remains is an audit record with the internal
        number and the count of rows removed per table: no personal data."""
        now = self.clock()
        with self._writer.begin() as connection:
            lead_id = self._lead_id(connection, lead)
            erased = erase_person(connection, lead_id)
            audit.record(
                connection,
                now,
                actor,
                AuditAction.LEAD_ERASE,
                lead_subject(lead_id),
                {"lead_ids": list(erased.lead_ids), "removed": dict(erased.removed)},
            )
        return erased

    def audit_log(self, *, limit: int = 50, action: str | None = None) -> list[AuditEntry]:
        """Who changed what, newest first (optionally only one action, e.g. ``lead.erase``)."""
        if action is not None and action not in set(AuditAction):
            raise LeadheatError(
                f"action {action!r} must be one of {', '.join(a.value for a in AuditAction)}"
            )
        with self.engine.connect() as connection:
            return audit.entries(connection, limit=limit, action=action)


def _merge(
    connection: Connection,
    book: Playbook,
    version: int,
    keep: int,
    absorb: int,
    now: datetime,
    actor: str,
) -> None:
    """Merge two leads by hand (audited: a merge moves a person's whole history)."""
    if keep == absorb:
        return
    merge_leads(connection, keep, absorb, now)
    rebuild(connection, book, version, [keep])
    audit.record(
        connection, now, actor, AuditAction.LEAD_MERGE, lead_subject(keep), {"absorbed": absorb}
    )


def _escalate(connection: Connection, book: Playbook, now: datetime) -> tuple[int, int]:
    dispatcher = Dispatcher(connection, book, now)
    return dispatcher.escalate(), dispatcher.notices


def _lost_race(error: DBAPIError) -> bool:
    """A race with another transaction that running again settles (PostgreSQL): a unique key
    it took first (``unique_violation``), or a deadlock or serialization failure, after which
    PostgreSQL has already rolled this transaction back."""
    return getattr(error.orig, "sqlstate", None) in {"23505", "40P01", "40001"}


def _store_unseen(
    connection: Connection,
    model: type[Touch] | type[Outcome] | type[EvidenceRow],
    identity: tuple[str, ...],
    rows: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Insert the rows whose ``identity`` columns match no stored row (nor an earlier row);
    return those. Records without ids become idempotent by what they say."""
    leads = sorted({row["lead_id"] for row in rows})
    seen = {
        tuple(getattr(stored, name) for name in identity)
        for chunk in chunked(leads)
        for stored in connection.execute(select(model).where(model.lead_id.in_(chunk)))
    }
    fresh = []
    for row in rows:
        key = tuple(row[name] for name in identity)
        if key not in seen:
            seen.add(key)
            fresh.append(row)
    if fresh:
        connection.execute(insert(model), fresh)
    return fresh


def _event_type(text: str) -> str:
    name = text.strip()
    if not name or len(name) > 100:
        raise LeadheatError(f"event type {text!r} must be 1 to 100 characters")
    return name
