"""Request and response bodies, one model per direction (``LeadIn``, ``LeadPatch``, …) so the
API never leaks internal columns and its OpenAPI schema says exactly what is accepted."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, model_validator

from leadheat.times import as_utc, check_range, parse_instant

Text = Field(default=None, max_length=200)


def _instant(value: Any) -> datetime:
    """ISO 8601 with an offset, or epoch seconds, between 1970 and 2100, as aware UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{value.isoformat()!r} has no UTC offset")
        return check_range(as_utc(value))
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return parse_instant(str(value))
    raise ValueError("a time must be an ISO 8601 string with an offset, or epoch seconds")


Instant = Annotated[
    datetime,
    PlainValidator(_instant),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A time the API accepts: refused with the field's name unless it is one leadheat can hold."""


class LeadFields(BaseModel):
    """The fields a client may set on a lead, shared by :class:`LeadIn` and :class:`LeadPatch`.

    Unknown fields are not refused: they are kept as attributes.
    """

    model_config = ConfigDict(extra="allow")

    def extra_attributes(self) -> dict[str, Any]:
        """Fields the schema does not name, to be stored as attributes."""
        return dict(self.model_extra or {})

    name: str | None = Text
    title: str | None = Text
    company: str | None = Text
    country: str | None = Field(default=None, max_length=100)
    source: str | None = Text
    campaign: str | None = Text
    owner: str | None = Text


class LeadIn(LeadFields):
    """A lead to create or update, found by any of its keys."""

    email: str | None = Field(default=None, max_length=320)
    external_id: str | None = Text
    anonymous_id: str | None = Text
    attributes: dict[str, Any] = Field(default_factory=dict)
    created_at: Instant | None = Field(
        default=None, description="When the lead first showed up (e.g. the CRM's date)."
    )

    @model_validator(mode="after")
    def _has_key(self) -> LeadIn:
        if not (self.email or self.external_id or self.anonymous_id):
            raise ValueError("give at least one of email, external_id, anonymous_id")
        return self


class LeadPatch(LeadFields):
    """Fields to change; ``attributes`` merge (a ``null`` value removes one)."""

    attributes: dict[str, Any] | None = None


class EventIn(BaseModel):
    """An event; ``id`` makes re-delivery harmless (derived from the content when absent).

    Unknown fields are not refused: they are kept as event properties.
    """

    model_config = ConfigDict(extra="allow")

    id: str | None = Field(default=None, min_length=1, max_length=200)
    lead: str = Field(
        min_length=1,
        max_length=320,
        description="Email, external id or `anon:<anonymous id>`; unknown leads are created.",
    )
    type: str = Field(min_length=1, max_length=100, examples=["form_submit"])
    timestamp: Instant | None = Field(default=None, description="Default: now.")
    properties: dict[str, Any] | None = None


class TouchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=50, examples=["call"])
    timestamp: Instant | None = None
    direction: Literal["inbound", "outbound"] = "outbound"
    result: str | None = Text
    rep: str | None = Text
    note: str | None = Field(default=None, max_length=5000)


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["won", "lost", "disqualified"]
    timestamp: Instant | None = None
    reason: str | None = Field(default=None, max_length=2000)


class EvidenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["need", "budget", "timeline", "authority"]
    value: str = Field(min_length=1, max_length=2000)
    timestamp: Instant | None = Field(default=None, description="When it was stated.")


class PlaybookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(max_length=200_000, description="The playbook as TOML text.")


class RecordOut(BaseModel):
    stored: int
    duplicates: int
    leads_created: int


class DoneOut(BaseModel):
    ok: bool = True
    lead: int


class LeadRowOut(BaseModel):
    """One lead in a list."""

    id: int
    email: str | None
    external_id: str | None
    name: str | None
    company: str | None
    owner: str | None
    heat: float
    fit: float
    qualified: bool
    temperature: Literal["hot", "warm", "cold"]
    grade: str
    status: str
    reason: str
    last_engaged_at: str | None
    probability: float | None = None


class LeadPage(BaseModel):
    items: list[LeadRowOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class LeadOut(BaseModel):
    """A lead's full score at one instant, explained (the CLI's `show --json`)."""

    model_config = ConfigDict(extra="allow")

    lead: dict[str, Any]
    at: str
    heat: float
    fit: float
    qualified: bool
    temperature: Literal["hot", "warm", "cold"]
    grade: str
    status: str
    evidence: dict[str, Any]
    explanation: dict[str, Any]
    hot_until: str | None
    warm_until: str | None
    hot_from: str | None = Field(
        default=None,
        description="Not hot now, but hot by itself then, as a negative signal fades.",
    )
    probability: float | None = None
    probability_at: str | None = None


class TimelineItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: Literal["event", "touch", "outcome", "evidence"]
    at: str
    type: str


class PlaybookOut(BaseModel):
    version: int
    source: str
    playbook: dict[str, Any]


class SuccessOut(BaseModel):
    """What every collection endpoint answers: SDKs retry anything else."""

    success: bool = True


class RetryOut(BaseModel):
    ok: bool = True
    id: int


class RepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320, examples=["anna@example.com"])
    name: str | None = Text
    team: str | None = Field(default=None, max_length=100)
    capacity: int | None = Field(default=None, ge=0, le=1_000_000)
    weight: float = Field(default=1.0, gt=0, le=1000)


class RepOut(BaseModel):
    email: str
    name: str | None
    team: str
    active: bool
    capacity: int | None
    weight: float
    assigned: int
    last_assigned_at: str | None
    open_hot: int | None = None


class DeliveryLead(BaseModel):
    id: int | None
    email: str | None


class DeliveryOut(BaseModel):
    id: int
    key: str
    trigger: str
    channel: str
    target: str
    lead: DeliveryLead
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: str
    last_error: str | None
    created_at: str
    delivered_at: str | None
    payload: dict[str, Any]


class ClockOut(BaseModel):
    id: int
    lead: int
    trigger: str
    owner: str | None
    team: str
    started_at: str
    deadline: str
    stopped_at: str | None
    response_seconds: float | None
    touched_by: str | None
    breached_at: str | None
    state: Literal["running", "met", "missed", "breached"]


class ErasedOut(BaseModel):
    """What an erasure removed."""

    ok: bool = True
    lead: int = Field(description="The internal number of the lead erased.")
    lead_ids: list[int] = Field(description="It and the leads that had been merged into it.")
    removed: dict[str, int] = Field(description="Rows removed, per table.")


class ExportOut(BaseModel):
    """Everything stored about a person."""

    lead: int
    lead_ids: list[int]
    exported_at: str
    tables: dict[str, list[dict[str, Any]]] = Field(
        description="Every row about the person, per table (each table, even when empty)."
    )


class SuggestionOut(BaseModel):
    """A suggested merge: public collection named two known leads as one person."""

    id: int
    lead_id: int = Field(description="The lead that would be merged away.")
    into_lead_id: int = Field(description="The lead that would remain.")
    reason: str
    source: str = Field(description="Who suggested it, as the audit log names them.")
    created_at: str
    status: str = Field(description="`open`, `confirmed` (merged) or `dismissed`.")
    resolved_at: str | None
    resolved_by: str | None


class AuditOut(BaseModel):
    """One audit record: never personal data of a lead (leads are `lead:<number>`)."""

    id: int
    at: str
    actor: str = Field(description="`cli`, `api:<key prefix>` or `python`.")
    action: str
    subject: str
    detail: dict[str, Any]
