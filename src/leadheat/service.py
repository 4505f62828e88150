"""The Python API: one object over one database, used by the CLI, the HTTP API and tests.

:class:`Leadheat` is the :class:`~leadheat.core.Core` (database, clock, current playbook,
transactions, finding a lead) with one thin method per capability; each capability lives in
the folder of its domain:

- ``ingest/``: events and analytics calls (:mod:`~leadheat.ingest.recording`), leads
  (:mod:`~leadheat.ingest.leads`), touches, outcomes and evidence
  (:mod:`~leadheat.ingest.history`), merges (:mod:`~leadheat.ingest.merges`);
- reading leads (:mod:`leadheat.reading`); API keys (:mod:`leadheat.access.keys`);
- ``speed/``: reps (:mod:`~leadheat.speed.roster`), SLA clocks (:mod:`~leadheat.speed.sla`);
- the outbox (:mod:`leadheat.delivery.outbox`); people's data and the audit log
  (:mod:`leadheat.privacy`).

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

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from leadheat import reading
from leadheat.access import keys as api_keys
from leadheat.core import Core, utc_now
from leadheat.errors import (
    InputError,
    LeadheatError,
    LeadTakenError,
    NotInitialisedError,
    UnknownLeadError,
)
from leadheat.lookup import LeadView
from leadheat.reading import LeadRow
from leadheat.store.audit import DEFAULT_ACTOR
from leadheat.store.database import DEFAULT_URL

if TYPE_CHECKING:
    from pathlib import Path

    from leadheat.ingest.csv_files import BadRow
    from leadheat.ingest.event_files import EventFileReport
    from leadheat.ingest.leads import LeadImportReport, LeadInput
    from leadheat.ingest.records import EvidenceInput, OutcomeInput, TouchInput
    from leadheat.ingest.segment import Message
    from leadheat.playbook import Unscored
    from leadheat.scoring.temperature import Temperature
    from leadheat.speed.ownership import Assigned, Taken
    from leadheat.speed.roster import Adopted
    from leadheat.store.account_views import AccountRow, AccountView
    from leadheat.store.audit import AuditEntry
    from leadheat.store.clocks import ClockView, RepTimings
    from leadheat.store.events import EventBatch, NewEvent, RecordReport
    from leadheat.store.keys import KeyInfo, Scope
    from leadheat.store.outbox import DeliveryView
    from leadheat.store.privacy import Erasure
    from leadheat.store.reps import Rep
    from leadheat.store.suggestions import Suggestion

# Each capability's module is imported by the method that uses it, so that a process which
# only reads (``leadheat show``) does not load the writers, speed to lead, keys and privacy
# with it (docs/performance.md, "CLI start").


def __getattr__(name: str) -> Any:
    """``LeadInput`` and ``LeadImportReport``, exported from :mod:`leadheat.ingest.leads` on
    first use (that module brings speed to lead with it)."""
    if name in ("LeadInput", "LeadImportReport"):
        from leadheat.ingest import leads as ingest_leads

        return getattr(ingest_leads, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "InputError",
    "LeadImportReport",
    "LeadInput",
    "LeadRow",
    "LeadTakenError",
    "LeadView",
    "Leadheat",
    "LeadheatError",
    "NotInitialisedError",
    "UnknownLeadError",
]


class Leadheat(Core):
    """leadheat over one database (any SQLAlchemy URL; SQLite file by default).

    Time comes from ``clock`` so that tests and time travel need no sleeping. Each method
    hands its work to its capability's module, which documents it in full.
    """

    def __init__(self, url: str = DEFAULT_URL, *, clock: Callable[[], datetime] = utc_now) -> None:
        super().__init__(url, clock=clock)
        self._key_cache = api_keys.key_cache()

    # -- recording ----------------------------------------------------------------------
    def track(
        self,
        lead: str,
        event_type: str,
        at: datetime | None = None,
        properties: Mapping[str, Any] | None = None,
        event_id: str | None = None,
    ) -> RecordReport:
        """Record one event; the lead is created if unknown."""
        from leadheat.ingest import recording

        return recording.track(self, lead, event_type, at, properties, event_id)

    def record_events(
        self, events: EventBatch | Sequence[NewEvent], *, react: bool = True
    ) -> RecordReport:
        """Record a batch of validated events in one transaction (``react=False``: no
        speed-to-lead triggers, for past data)."""
        from leadheat.ingest import recording

        return recording.record_events(self, events, react=react)

    def import_event_file(
        self,
        path: Path,
        *,
        react: bool = False,
        set_aside: Callable[[list[BadRow]], None] | None = None,
        check_types: Callable[[Counter[str]], None] | None = None,
        progress: Callable[[int], None] | None = None,
        columnar: bool = True,
    ) -> EventFileReport:
        """Store a CSV file of events in one transaction, a block at a time: nothing of it
        when a row is bad, unless ``set_aside`` takes the bad rows (``leadheat import
        events``)."""
        from leadheat.ingest import event_files

        return event_files.import_event_file(
            self,
            path,
            react=react,
            set_aside=set_aside,
            check_types=check_types,
            progress=progress,
            columnar=columnar,
        )

    def collect(
        self,
        messages: Sequence[Message],
        field: str = "batch",
        *,
        public: bool = False,
        actor: str = "python",
    ) -> RecordReport:
        """Apply analytics calls (Segment's track, identify, page, screen, group, alias) in
        one transaction; ``public`` for calls that came with a publishable key."""
        from leadheat.ingest import recording

        return recording.collect(self, messages, field, public=public, actor=actor)

    def upsert_leads(
        self, leads: Sequence[LeadInput], *, react: bool = True, actor: str = DEFAULT_ACTOR
    ) -> LeadImportReport:
        """Create or update leads by their keys in one transaction."""
        from leadheat.ingest import leads as ingest_leads

        return ingest_leads.upsert_leads(self, leads, react=react, actor=actor)

    def patch_lead(
        self, lead: str | int, fields: Mapping[str, Any], *, actor: str = DEFAULT_ACTOR
    ) -> int:
        """Change some of a lead's fields; fit and qualification follow."""
        from leadheat.ingest import leads as ingest_leads

        return ingest_leads.patch_lead(self, lead, fields, actor=actor)

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
        from leadheat.ingest import history

        return history.touch(
            self, lead, kind, at, direction=direction, result=result, rep=rep, note=note
        )

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
        from leadheat.ingest import history

        return history.outcome(self, lead, outcome, at, reason, actor=actor)

    def evidence(
        self, lead: str, kind: str, value: str, at: datetime | None = None, source: str = "manual"
    ) -> int:
        """Record a BANT fact (need, budget, timeline, authority) stated at ``at``."""
        from leadheat.ingest import history

        return history.evidence(self, lead, kind, value, at, source)

    def record_touches(self, touches: Sequence[TouchInput]) -> tuple[int, int]:
        """Record many touches in one transaction; returns ``(stored, duplicates)``."""
        from leadheat.ingest import history

        return history.record_touches(self, touches)

    def record_outcomes(
        self, outcomes: Sequence[OutcomeInput], *, actor: str = DEFAULT_ACTOR
    ) -> tuple[int, int]:
        """Record many outcomes in one transaction; returns ``(stored, duplicates)``."""
        from leadheat.ingest import history

        return history.record_outcomes(self, outcomes, actor=actor)

    def record_evidence(
        self, facts: Sequence[EvidenceInput], *, react: bool = True
    ) -> tuple[int, int]:
        """Record many BANT facts in one transaction; returns ``(stored, duplicates)``."""
        from leadheat.ingest import history

        return history.record_evidence(self, facts, react=react)

    # -- merges -------------------------------------------------------------------------
    def merge(self, keep: str | int, absorb: str | int, *, actor: str = DEFAULT_ACTOR) -> int:
        """Merge the lead known as ``absorb`` into ``keep``; their histories become one."""
        from leadheat.ingest import merges

        return merges.merge(self, keep, absorb, actor=actor)

    def suggested_merges(
        self, *, status: str | None = "open", lead: str | int | None = None, limit: int = 100
    ) -> list[Suggestion]:
        """Merges public collection suggested (newest first): the open ones by default."""
        from leadheat.ingest import merges

        return merges.suggested_merges(self, status=status, lead=lead, limit=limit)

    def confirm_merge(self, suggestion_id: int, *, actor: str = DEFAULT_ACTOR) -> int:
        """Carry out an open suggested merge (audited); returns the lead that remains."""
        from leadheat.ingest import merges

        return merges.confirm_merge(self, suggestion_id, actor=actor)

    def dismiss_merge(self, suggestion_id: int, *, actor: str = DEFAULT_ACTOR) -> int:
        """Close an open suggested merge without merging (audited); returns its ``lead_id``."""
        from leadheat.ingest import merges

        return merges.dismiss_merge(self, suggestion_id, actor=actor)

    # -- reading ------------------------------------------------------------------------
    def hot(self, at: datetime | None = None, limit: int | None = None) -> list[LeadRow]:
        """Hot leads not yet won, hottest first, as of ``at`` (default now)."""
        return reading.hot(self, at, limit)

    def what_they_did(self, lead_ids: Sequence[int]) -> dict[int, str]:
        """What each lead did and the evidence it gave, now, in words (Hot now's "why")."""
        return reading.what_they_did(self, lead_ids)

    def leads(
        self,
        temperature: Temperature | str | None = None,
        at: datetime | None = None,
        limit: int | None = None,
    ) -> list[LeadRow]:
        """Leads hottest first, optionally of one temperature, as of ``at``."""
        return reading.leads(self, temperature, at, limit)

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
        """A page of leads with filters, and whether more follow."""
        return reading.browse(
            self,
            temperature=temperature,
            owner=owner,
            status=status,
            order=order,
            at=at,
            limit=limit,
            offset=offset,
        )

    def show(self, lead: str | int, at: datetime | None = None) -> LeadView:
        """A lead's full, explained score as of ``at`` (default now), from its history."""
        return reading.show(self, lead, at)

    def timeline(self, lead: str | int, limit: int = 200) -> list[dict[str, Any]]:
        """Everything that happened to a lead, newest first."""
        return reading.timeline(self, lead, limit)

    # -- accounts -----------------------------------------------------------------------
    def accounts(
        self,
        *,
        temperature: str | None = None,
        owner: str | None = None,
        at: datetime | None = None,
        limit: int | None = 50,
    ) -> list[AccountRow]:
        """Accounts hottest first (of one temperature or owner), as of ``at``."""
        from leadheat import accounts

        return accounts.accounts(self, temperature=temperature, owner=owner, at=at, limit=limit)

    def account(self, account: str, at: datetime | None = None) -> AccountView:
        """One account (by key or domain) as of ``at``: heat, members, coverage, evidence."""
        from leadheat import accounts

        return accounts.account(self, account, at)

    def set_account_owner(
        self, account: str, rep: str | None, *, actor: str = DEFAULT_ACTOR
    ) -> str | None:
        """Make the known rep ``rep`` the account's owner (``None``: nobody); audited."""
        from leadheat import accounts

        return accounts.set_owner(self, account, rep, actor=actor)

    # -- API keys -----------------------------------------------------------------------
    def create_key(
        self,
        name: str,
        scopes: Sequence[Scope | str],
        *,
        public: bool = False,
        origins: Sequence[str] = (),
        actor: str = DEFAULT_ACTOR,
    ) -> tuple[str, KeyInfo]:
        """A new API key; the returned key string is shown once and never stored."""
        return api_keys.create_key(self, name, scopes, public=public, origins=origins, actor=actor)

    def keys(self) -> list[KeyInfo]:
        """Every API key, revoked ones too."""
        return api_keys.list_keys(self)

    def revoke_key(self, prefix_or_name: str, *, actor: str = DEFAULT_ACTOR) -> int:
        """Revoke the active keys with this prefix or name; returns how many."""
        return api_keys.revoke_key(self, self._key_cache, prefix_or_name, actor=actor)

    def verify_key(self, key: str) -> KeyInfo | None:
        """The key's record if it is valid (remembered for a few seconds)."""
        return api_keys.verify_key(self, self._key_cache, key)

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
        """Add a rep who can own leads (or update one)."""
        from leadheat.speed import roster

        return roster.add_rep(
            self, email, name=name, team=team, capacity=capacity, weight=weight, actor=actor
        )

    def reps(self) -> list[tuple[Rep, int]]:
        """Every rep with the number of open hot leads they own now."""
        from leadheat.speed import roster

        return roster.list_reps(self)

    def set_rep_active(self, email: str, active: bool, *, actor: str = DEFAULT_ACTOR) -> Rep:
        """Pause a rep (no new leads; they keep theirs) or resume them."""
        from leadheat.speed import roster

        return roster.set_rep_active(self, email, active, actor=actor)

    def take(self, lead: str | int, rep: str, *, actor: str = DEFAULT_ACTOR) -> Taken:
        """Make ``rep`` the owner of a lead nobody owns and start their SLA clock."""
        from leadheat.speed import roster

        return roster.take(self, lead, rep, actor=actor)

    def assign(self, lead: str | int, rep: str, *, actor: str = DEFAULT_ACTOR) -> Assigned:
        """Make the known rep ``rep`` the owner of a lead (owned or not) and start their clock."""
        from leadheat.speed import roster

        return roster.assign(self, lead, rep, actor=actor)

    def sla_clocks(
        self,
        *,
        lead: str | int | None = None,
        owner: str | None = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> list[ClockView]:
        """SLA clocks, newest first: per lead, per rep, or only those still running."""
        from leadheat.speed import sla

        return sla.sla_clocks(self, lead=lead, owner=owner, open_only=open_only, limit=limit)

    def unscored_types(self) -> list[Unscored]:
        """Event types among the newest stored events (:data:`LATEST_TYPES` of them) that
        the current playbook does not score, most events first, with a "did you mean"."""
        from leadheat.playbook import unscored_types
        from leadheat.store.events import latest_type_counts

        _, book = self.playbook()
        with self.engine.connect() as connection:
            return unscored_types(book, latest_type_counts(connection))

    def assign_many(
        self, leads: Sequence[str | int], rep: str, *, actor: str = DEFAULT_ACTOR
    ) -> list[Assigned]:
        """:meth:`assign` for many leads in one transaction (all of them, or none)."""
        from leadheat.speed import roster

        return roster.assign_many(self, leads, rep, actor=actor)

    def adopt_unowned(self) -> Adopted:
        """Hot leads nobody owns and no clock watches (left so by an import or a playbook
        change) get an owner, a clock and alerts as the ``hot`` trigger gives them."""
        from leadheat.speed import roster

        return roster.adopt_unowned(self)

    def lead_names(self, lead_ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
        """Each lead's key (email, external id or ``id:N``) and name, by id."""
        from leadheat.speed import sla

        return sla.lead_names(self, list(lead_ids))

    def sla_by_rep(self, since: datetime | None = None) -> list[RepTimings]:
        """Per rep: clocks met, missed, breached and running, and the median response."""
        from leadheat.speed import sla

        return sla.sla_by_rep(self, since)

    def escalate(self) -> int:
        """Escalate every SLA clock past its deadline (the worker calls this)."""
        from leadheat.speed import sla

        return sla.escalate(self)

    def claim_deliveries(
        self, lease: timedelta, limit: int = 20, max_attempts: int | None = None
    ) -> list[DeliveryView]:
        """Lease due notifications to the calling worker."""
        from leadheat.delivery import outbox

        return outbox.claim_deliveries(self, lease, limit, max_attempts)

    def deliveries_done(self, delivery_ids: Sequence[int]) -> None:
        """Record these notifications as delivered."""
        from leadheat.delivery import outbox

        outbox.deliveries_done(self, delivery_ids)

    def delivery_failed(self, delivery_id: int, error: str, retry_in: timedelta | None) -> None:
        """Record a failed attempt; retry after ``retry_in``, or give up when ``None``."""
        from leadheat.delivery import outbox

        outbox.delivery_failed(self, delivery_id, error, retry_in)

    def deliveries(
        self, *, status: str | None = None, lead: str | int | None = None, limit: int = 100
    ) -> list[DeliveryView]:
        """Notifications, newest first: what was sent, what is waiting, what failed."""
        from leadheat.delivery import outbox

        return outbox.deliveries(self, status=status, lead=lead, limit=limit)

    def retry_delivery(self, delivery_id: int, *, actor: str = DEFAULT_ACTOR) -> None:
        """Send a failed notification again now."""
        from leadheat.delivery import outbox

        outbox.retry_delivery(self, delivery_id, actor=actor)

    def signing_secret(self) -> str:
        """The database's own webhook signing secret."""
        from leadheat.delivery import outbox

        return outbox.signing_secret(self)

    # -- people's data and the audit log ------------------------------------------------
    def export(self, lead: str | int, *, actor: str = DEFAULT_ACTOR) -> dict[str, Any]:
        """Everything stored about a person, by table; the export itself is audited."""
        from leadheat import privacy

        return privacy.export(self, lead, actor=actor)

    def erase(self, lead: str | int, *, actor: str = DEFAULT_ACTOR) -> Erasure:
        """Remove a person and everything about them in one transaction (audited)."""
        from leadheat import privacy

        return privacy.erase(self, lead, actor=actor)

    def audit_log(self, *, limit: int = 50, action: str | None = None) -> list[AuditEntry]:
        """Who changed what, newest first (optionally only one action, e.g. ``lead.erase``)."""
        from leadheat import privacy

        return privacy.audit_log(self, limit=limit, action=action)
