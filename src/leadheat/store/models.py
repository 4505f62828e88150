"""Tables. Instants are stored as integer microseconds since the epoch (UTC): exact,
compact, fast to compare and the same on SQLite and PostgreSQL; the ORM hands out aware
``datetime`` objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from leadheat.times import from_micros, to_micros


class JsonDict(TypeDecorator[Any]):
    """JSON: ``JSONB`` on PostgreSQL, ``JSON`` elsewhere.

    The PostgreSQL type is chosen when a dialect asks, not named at import (as
    ``JSON().with_variant(JSONB(), "postgresql")`` would): importing the PostgreSQL dialect
    costs a command on SQLite (``leadheat show``) tens of milliseconds for nothing."""

    impl = JSON
    cache_ok = True
    should_evaluate_none = True  # as JSON's: a None given is stored as JSON null

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


class Instant(TypeDecorator[datetime]):
    """An aware UTC ``datetime`` stored as BIGINT microseconds since the epoch."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> int | None:
        return None if value is None else to_micros(value)

    def process_result_value(self, value: int | None, dialect: Dialect) -> datetime | None:
        return None if value is None else from_micros(value)


class Base(DeclarativeBase):
    pass


class PlaybookVersion(Base):
    __tablename__ = "playbook_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    applied_at: Mapped[datetime] = mapped_column(Instant)


class Lead(Base):
    __tablename__ = "leads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # shown, not searched: leads are found through their identities
    email: Mapped[str | None] = mapped_column(String(320))
    external_id: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    country: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str | None] = mapped_column(String(200))
    campaign: Mapped[str | None] = mapped_column(String(200))
    owner: Mapped[str | None] = mapped_column(String(200), index=True)
    """The rep who works this lead: set by hand, the API or assignment (``[speed]``)."""
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonDict(), default=dict)
    created_at: Mapped[datetime] = mapped_column(Instant)
    """When the lead first showed up: its first event, or the CRM's date on import."""
    updated_at: Mapped[datetime] = mapped_column(Instant)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"), index=True)
    """The lead this one was merged into (indexed: an erasure finds the merged ones by it)."""
    public_fields: Mapped[list[str] | None] = mapped_column(JsonDict())
    """The fields that public collection (a publishable key in a web page) set last: public
    collection may fill an empty field or change one of these, never a field a trusted source
    (import, a secret key, the dashboard, the CLI) set. ``None`` when there are none."""


class Identity(Base):
    """A way to recognise a lead: a normalised email, an external id or an anonymous id."""

    __tablename__ = "identities"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[str] = mapped_column(String(320), primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"))
    type: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime] = mapped_column(Instant)
    properties: Mapped[dict[str, Any] | None] = mapped_column(JsonDict())

    __table_args__ = (
        Index("ix_events_lead_time", "lead_id", "occurred_at"),
        Index("ix_events_time", "occurred_at"),
    )


class Touch(Base):
    """A contact by the team: the first one stops the speed-to-lead clock."""

    __tablename__ = "touches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    kind: Mapped[str] = mapped_column(String(50))
    occurred_at: Mapped[datetime] = mapped_column(Instant, index=True)
    """Indexed: the follow-up state answers only from the latest touch on."""
    direction: Mapped[str] = mapped_column(String(10), default="outbound")
    result: Mapped[str | None] = mapped_column(String(200))
    rep: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)


class Outcome(Base):
    __tablename__ = "outcomes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(Instant, index=True)
    reason: Mapped[str | None] = mapped_column(Text)


class EvidenceRow(Base):
    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(Text)
    stated_at: Mapped[datetime] = mapped_column(Instant, index=True)
    source: Mapped[str] = mapped_column(String(200))


class LeadState(Base):
    """What temperature needs besides heat, kept current per lead so lists need no history."""

    __tablename__ = "lead_states"

    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), primary_key=True)
    playbook_version: Mapped[int] = mapped_column(ForeignKey("playbook_versions.version"))
    fit: Mapped[float] = mapped_column(Float, default=0.0)
    qualified: Mapped[bool] = mapped_column(Boolean, default=False)
    disqualified: Mapped[bool] = mapped_column(Boolean, default=False)
    evidence_until: Mapped[datetime | None] = mapped_column(Instant)
    last_engaged_at: Mapped[datetime | None] = mapped_column(Instant, index=True)
    churned_at: Mapped[datetime | None] = mapped_column(Instant)
    status: Mapped[str] = mapped_column(String(20), default="open")
    events_count: Mapped[int] = mapped_column(Integer, default=0)
    probability: Mapped[float | None] = mapped_column(Float)
    """The predictive model's conversion probability, as of ``probability_at``."""
    probability_at: Mapped[datetime | None] = mapped_column(Instant)

    __table_args__ = (
        Index("ix_lead_states_fit", "fit", "lead_id"),
        Index("ix_lead_states_probability", "probability", "lead_id"),
    )


class HeatKeyRow(Base):
    """One forward-decay key per lead and half-life; the rank index answers "hottest now"."""

    __tablename__ = "heat_keys"

    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), primary_key=True)
    half_life_us: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    whole: Mapped[int] = mapped_column(BigInteger)
    frac: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_heat_keys_rank", "half_life_us", "whole", "frac", "lead_id"),)


class Account(Base):
    """A company: the buying group its leads form. Its heat is the sum of its members'."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(320), unique=True)
    """How leads name it: a company domain (``acme.com``) or a Segment ``groupId``."""
    domain: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(200))
    owner: Mapped[str | None] = mapped_column(String(320), index=True)
    """The rep who works the account: new leads of the account go to them first."""
    traits: Mapped[dict[str, Any]] = mapped_column(JsonDict(), default=dict)
    created_at: Mapped[datetime] = mapped_column(Instant)
    updated_at: Mapped[datetime] = mapped_column(Instant)
    hot_until: Mapped[datetime | None] = mapped_column(Instant, index=True)
    """When the account's heat falls to ``[accounts] hot_heat`` with no new events: it is hot
    exactly while now is before this (kept with its heat keys, so "hot now" is a range scan)."""
    warm_until: Mapped[datetime | None] = mapped_column(Instant, index=True)
    """The same for ``warm_heat``."""


class AccountMember(Base):
    """A lead's account now: at most one (the lead is the key). ``since`` is when it moved
    in, ``None`` when the account has been its own from the start."""

    __tablename__ = "account_members"

    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    since: Mapped[datetime | None] = mapped_column(Instant, index=True)
    source: Mapped[str] = mapped_column(String(30))
    """What placed it: ``account``, ``company_domain``, ``group`` or ``email``."""


class AccountPastMember(Base):
    """A membership that ended (the lead moved to another account or to none), kept so that
    an account's heat at a past instant sums the members it had then."""

    __tablename__ = "account_past_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    since: Mapped[datetime | None] = mapped_column(Instant)
    until: Mapped[datetime] = mapped_column(Instant, index=True)


class AccountHeatKey(Base):
    """An account's forward-decay key per half-life: the log-sum of its members' keys."""

    __tablename__ = "account_heat_keys"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    half_life_us: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    whole: Mapped[int] = mapped_column(BigInteger)
    frac: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index("ix_account_heat_keys_rank", "half_life_us", "whole", "frac", "account_id"),
    )


class ApiKey(Base):
    """A key for machines: only a hash of its secret is kept; the key is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(100))
    """Comma-separated: ``ingest``, ``read``, ``admin``."""
    created_at: Mapped[datetime] = mapped_column(Instant)
    revoked_at: Mapped[datetime | None] = mapped_column(Instant)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    """A publishable key, meant to be embedded in a web page: it only collects, and what it
    may do to a lead is limited (see SECURITY.md)."""
    origins: Mapped[list[str] | None] = mapped_column(JsonDict())
    """The web origins (``https://www.acme.com``) a public key is accepted from."""


class SuggestedMerge(Base):
    """Two leads that public collection says are one person, when merging them on that word
    alone is not safe (both already have an email or external id): kept for a person or a
    secret key to confirm or dismiss."""

    __tablename__ = "suggested_merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    """The lead that would be merged away."""
    into_lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    """The lead that would remain."""
    reason: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(200))
    """Who suggested it, as in the audit log (``api:<key prefix>``)."""
    created_at: Mapped[datetime] = mapped_column(Instant)
    status: Mapped[str] = mapped_column(String(20), default="open")
    """``open``, ``confirmed`` (merged) or ``dismissed``."""
    resolved_at: Mapped[datetime | None] = mapped_column(Instant)
    resolved_by: Mapped[str | None] = mapped_column(String(200))


class Rep(Base):
    """A sales rep who can own leads; round robin remembers how many each got."""

    __tablename__ = "reps"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    team: Mapped[str] = mapped_column(String(100), default="default")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    capacity: Mapped[int | None] = mapped_column(Integer)
    """Most open hot leads at once; ``None`` for no limit."""
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    assigned: Mapped[int] = mapped_column(Integer, default=0)
    last_assigned_at: Mapped[datetime | None] = mapped_column(Instant)
    created_at: Mapped[datetime] = mapped_column(Instant)


class SlaClock(Base):
    """The time a rep has to touch a lead: from a trigger to the first touch.

    One clock per trigger that started it; the first touch at or after the start stops every
    open clock of the lead. Timings stay for analytics (``response_us`` is working time).
    """

    __tablename__ = "sla_clocks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"))
    trigger: Mapped[str] = mapped_column(String(30))
    owner: Mapped[str | None] = mapped_column(String(320), index=True)
    team: Mapped[str] = mapped_column(String(100))
    business_hours: Mapped[bool] = mapped_column(Boolean)
    started_at: Mapped[datetime] = mapped_column(Instant)
    deadline: Mapped[datetime] = mapped_column(Instant)
    stopped_at: Mapped[datetime | None] = mapped_column(Instant)
    response_us: Mapped[int | None] = mapped_column(BigInteger)
    """Working time from start to the first touch, in microseconds."""
    touched_by: Mapped[str | None] = mapped_column(String(200))
    breached_at: Mapped[datetime | None] = mapped_column(Instant)

    __table_args__ = (
        Index("ix_sla_clocks_lead", "lead_id", "stopped_at"),
        Index("ix_sla_clocks_due", "stopped_at", "breached_at", "deadline"),
    )


class Delivery(Base):
    """The outbox: one notification to one channel, written in the transaction that caused
    it and sent by a worker, again and again with backoff until the receiver says yes."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    """The idempotency key receivers see; the same on every attempt."""
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"), index=True)
    clock_id: Mapped[int | None] = mapped_column(ForeignKey("sla_clocks.id"), index=True)
    trigger: Mapped[str] = mapped_column(String(30))
    channel: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(Text)
    """URL, or comma-separated email addresses."""
    secret_env: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDict())
    status: Mapped[str] = mapped_column(String(20), default="pending")
    """``pending`` (waiting or retrying), ``delivered`` or ``failed`` (gave up)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(Instant)
    leased_until: Mapped[datetime | None] = mapped_column(Instant)
    """A worker is sending it until then; after that another worker may."""
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Instant)
    delivered_at: Mapped[datetime | None] = mapped_column(Instant)

    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),)


class PredictionModel(Base):
    """A trained conversion model: versioned, with how it was trained and how it scored."""

    __tablename__ = "prediction_models"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    trained_at: Mapped[datetime] = mapped_column(Instant)
    horizon_us: Mapped[int] = mapped_column(BigInteger)
    playbook_version: Mapped[int] = mapped_column(ForeignKey("playbook_versions.version"))
    rows: Mapped[int] = mapped_column(Integer)
    positives: Mapped[int] = mapped_column(Integer)
    censored: Mapped[int] = mapped_column(Integer)
    event_types: Mapped[list[str]] = mapped_column(JsonDict())
    evaluation: Mapped[dict[str, Any]] = mapped_column(JsonDict())
    document: Mapped[str] = mapped_column(Text)
    """The model file (:meth:`leadheat.predict.model.TabularModel.to_json`), as JSON text."""


class AuditRecord(Base):
    """Who changed what, and when: written in the transaction that made the change.

    Holds no personal data of leads (no email, name or external id; a lead is its internal
    number), so that it outlives an erasure and can say that the erasure happened.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(Instant, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    """``cli``, ``api:<key prefix>`` or ``python`` (the library called directly)."""
    action: Mapped[str] = mapped_column(String(50))
    subject: Mapped[str] = mapped_column(String(320))
    """What was acted on: ``lead:17``, ``playbook:3``, ``key:3f9a0c1d``, a rep's email."""
    detail: Mapped[dict[str, Any]] = mapped_column(JsonDict(), default=dict)


class Secret(Base):
    """Secrets this database generated for itself (the default webhook signing secret)."""

    __tablename__ = "secrets"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(Instant)


class ViewSnapshot(Base):
    """A dashboard view over every lead's history (tasks, recovery, win-back, analytics),
    computed in the background and kept here so that every server process shows the same one
    (``leadheat.web.snapshots``)."""

    __tablename__ = "view_snapshots"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(Instant)
    body: Mapped[str] = mapped_column(Text)
    """The view as JSON."""


class User(Base):
    """Someone who signs in to the dashboard: a rep or a manager (API keys are for machines).

    Only a scrypt hash of the password is kept (see :mod:`leadheat.web.passwords`).
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    """``rep`` or ``manager`` (managers may also apply playbooks)."""
    password_hash: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(Instant)


class WebSession(Base):
    """A signed-in browser: the cookie holds a random token, the table only its SHA-256, so
    a copy of the database opens no one's session. Expired rows are refused and swept."""

    __tablename__ = "sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    """Sent back by every state-changing form; a page from another site cannot read it."""
    created_at: Mapped[datetime] = mapped_column(Instant)
    expires_at: Mapped[datetime] = mapped_column(Instant, index=True)


class Enrollment(Base):
    """A lead in a nurture sequence: the next step to send and when, or why it stopped."""

    __tablename__ = "enrollments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"))
    sequence: Mapped[str] = mapped_column(String(100))
    step: Mapped[int] = mapped_column(Integer, default=0)
    """The index of the next step to send (the number sent so far)."""
    status: Mapped[str] = mapped_column(String(20), default="active")
    """``active``, ``finished`` (every step sent) or ``stopped`` (see ``stop_reason``)."""
    enrolled_at: Mapped[datetime] = mapped_column(Instant)
    next_at: Mapped[datetime | None] = mapped_column(Instant)
    stopped_at: Mapped[datetime | None] = mapped_column(Instant)
    stop_reason: Mapped[str | None] = mapped_column(String(50))
    enrolled_by: Mapped[str] = mapped_column(String(200))
    """``playbook`` (an enrol rule) or the actor who enrolled by hand."""

    __table_args__ = (
        Index("ux_enrollments_lead_sequence", "lead_id", "sequence", unique=True),
        Index("ix_enrollments_due", "status", "next_at"),
    )


class Unsubscribe(Base):
    """An address that asked for no more nurture mail: honoured by every send."""

    __tablename__ = "unsubscribes"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    """Lower-cased address."""
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"), index=True)
    at: Mapped[datetime] = mapped_column(Instant)
    source: Mapped[str] = mapped_column(String(50))
    """``link`` (the mail's page), ``one-click`` (List-Unsubscribe-Post), ``cli`` or ``api``."""


__all__ = [
    "Account",
    "AccountHeatKey",
    "AccountMember",
    "AccountPastMember",
    "ApiKey",
    "AuditRecord",
    "Base",
    "Delivery",
    "Enrollment",
    "Event",
    "EvidenceRow",
    "HeatKeyRow",
    "Identity",
    "Instant",
    "Lead",
    "LeadState",
    "Outcome",
    "PlaybookVersion",
    "PredictionModel",
    "Rep",
    "Secret",
    "SlaClock",
    "SuggestedMerge",
    "Touch",
    "Unsubscribe",
    "User",
    "ViewSnapshot",
    "WebSession",
]


class FollowupLead(Base):
    """A lead's follow-up state as of its latest fact (``leadheat.engage.followup``): what
    Recovery reads, kept current by the triggers that mark a written lead stale
    (:class:`FollowupStale`) and the refresh that replays only those leads."""

    __tablename__ = "followup_leads"

    lead_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(Instant)
    last_touch: Mapped[datetime | None] = mapped_column(Instant)
    last_event_at: Mapped[datetime | None] = mapped_column(Instant)
    is_open: Mapped[bool] = mapped_column(Boolean)
    lost_start: Mapped[datetime | None] = mapped_column(Instant)
    """Where the lead's last hot spell began (``None``: never hot)."""
    lost_end: Mapped[datetime | None] = mapped_column(Instant)
    """Where it ends: in the past, or its forecast ``hot_until`` while it is hot."""

    __table_args__ = (Index("ix_followup_leads_lost", "lost_end", "lead_id"),)


class FollowupPhase(Base):
    """One spell of a lead's temperature from its latest fact on (the current one and the
    cooling its forecast foresees), with the follow-up task the cadence gives it then."""

    __tablename__ = "followup_phases"

    lead_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    starts: Mapped[datetime] = mapped_column(Instant, primary_key=True)
    ends: Mapped[datetime] = mapped_column(Instant)
    temperature: Mapped[str] = mapped_column(String(8))
    owner: Mapped[str | None] = mapped_column(String(200))
    since: Mapped[datetime] = mapped_column(Instant)
    rose: Mapped[bool] = mapped_column(Boolean)
    due: Mapped[datetime] = mapped_column(Instant)
    first_contact: Mapped[bool] = mapped_column(Boolean)
    """Hot and never contacted: first in the order that sells, overdue or not."""

    __table_args__ = (
        Index("ix_followup_phases_due", "due", "lead_id"),
        Index("ix_followup_phases_kind", "temperature", "first_contact", "due", "lead_id"),
    )


class FollowupStale(Base):
    """Leads written since their follow-up state was computed, marked by triggers on the
    tables that state is made of (migration 0011) whatever the writer."""

    __tablename__ = "followup_stale"

    lead_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    marks: Mapped[int] = mapped_column(BigInteger, default=0, index=True)
    """A number drawn afresh at each marking (migration 0012: SQLite's ``followup_clock``,
    PostgreSQL's sequence ``followup_marks``), never the same twice for a lead; the keeper
    takes the lowest first."""
