"""REST API for leads: lists, one lead, its timeline and explanation, and what happens to it
(events, touches, outcomes, evidence)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from leadheat.api.errors import ErrorOut
from leadheat.api.hygiene import message_list, no_nul, one_message
from leadheat.api.schemas import (
    DoneOut,
    EventIn,
    EvidenceIn,
    LeadIn,
    LeadOut,
    LeadPage,
    LeadPatch,
    LeadRowOut,
    OutcomeIn,
    RecordOut,
    TimelineItem,
    TouchIn,
)
from leadheat.api.security import actor, event_commit_of, leadheat, require
from leadheat.errors import LeadheatError
from leadheat.identity import LeadKey, LeadKeyError, normalise_email, parse_lead_key
from leadheat.ingest.recording import valid_event_type
from leadheat.service import InputError, Leadheat, LeadInput
from leadheat.store.events import NewEvent, derived_event_id
from leadheat.store.keys import KeyInfo, Scope
from leadheat.times import isoformat, parse_duration, parse_instant
from leadheat.views import row_json, view_json

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in (
        (400, "bad input; `field` names it"),
        (401, "no API key, or an unknown or revoked one"),
        (403, "the key lacks the scope this needs"),
        (404, "no such lead"),
        (422, "the body or a parameter does not validate; `field` names it"),
    )
}
TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {
        "model": ErrorOut,
        "description": "over the ingest limits (32 KB a record or event, "
        "500 KB a list of events); `field` names it",
    }
}

router = APIRouter(prefix="/api/v1", responses=ERRORS, dependencies=[Depends(no_nul)])
Service = Annotated[Leadheat, Depends(leadheat)]
Reader = Annotated[KeyInfo, Depends(require(Scope.READ))]
Ingester = Annotated[KeyInfo, Depends(require(Scope.INGEST))]
Admin = Annotated[KeyInfo, Depends(require(Scope.ADMIN))]
At = Annotated[
    str | None,
    Query(description="Time travel: the values as of this time (ISO 8601 with offset)."),
]


def _at(text: str | None, field: str = "at") -> Any:
    if text is None:
        return None
    try:
        return parse_instant(text)
    except ValueError as error:
        raise InputError(field, str(error)) from None


def _duration(text: str, field: str) -> timedelta:
    """A duration parameter; a 400 naming ``field`` when it is not one."""
    try:
        return parse_duration(text)
    except ValueError as error:
        raise InputError(field, str(error)) from None


MAX_CURSOR_OFFSET = 10**9
"""More leads than any database here holds: a cursor past it was not given out."""


def _cursor(text: str | None) -> tuple[str | None, int]:
    """The instant and position a ``next_cursor`` carries; a 400 naming ``cursor`` for one
    this API did not give out (a position below 0 or past any lead included)."""
    if text is None:
        return None, 0
    try:
        data = json.loads(base64.urlsafe_b64decode(text.encode()))
        at, offset = data["at"], data["offset"]
        if not isinstance(at, str) or type(offset) is not int:
            raise TypeError
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InputError("cursor", "not a cursor this API gave out") from None
    if not 0 <= offset <= MAX_CURSOR_OFFSET:
        raise InputError("cursor", "not a cursor this API gave out (its position is out of range)")
    return at, offset


@router.get("/leads", response_model=LeadPage, summary="List leads, hottest first")
def list_leads(
    lh: Service,
    _key: Reader,
    temperature: Literal["hot", "warm", "cold"] | None = None,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    status: Literal["open", "won", "lost", "disqualified"] | None = None,
    order: Literal["heat", "fit", "probability"] = "heat",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    at: At = None,
) -> dict[str, Any]:
    """Pages of one query are a snapshot of one instant: the cursor carries it."""
    snapshot, offset = _cursor(cursor)
    when = _at(snapshot or at) or lh.clock()
    rows, more = lh.browse(
        temperature=temperature,
        owner=owner,
        status=status,
        order=order,
        at=when,
        limit=limit,
        offset=offset,
    )
    following = None
    if more:
        token = json.dumps({"at": isoformat(when), "offset": offset + len(rows)})
        following = base64.urlsafe_b64encode(token.encode()).decode()
    return {"items": [row_json(r) for r in rows], "next_cursor": following}


@router.get("/hot", response_model=list[LeadRowOut], summary="Hot leads to call now")
def hot(
    lh: Service, _key: Reader, limit: Annotated[int, Query(ge=1, le=500)] = 50, at: At = None
) -> list[dict[str, Any]]:
    return [row_json(r) for r in lh.hot(_at(at), limit)]


@router.post(
    "/leads",
    response_model=DoneOut,
    summary="Create or update a lead by its keys",
    dependencies=[Depends(one_message)],
    responses=TOO_LARGE,
)
def upsert_lead(body: LeadIn, lh: Service, key: Ingester) -> dict[str, Any]:
    keys: list[LeadKey] = []
    try:
        if body.email:
            keys.append(LeadKey("email", normalise_email(body.email)))
    except LeadKeyError as error:
        raise InputError("email", str(error)) from None
    if body.external_id:
        keys.append(LeadKey("external", body.external_id))
    if body.anonymous_id:
        keys.append(LeadKey("anonymous", body.anonymous_id))
    named = {"email", "external_id", "anonymous_id", "attributes", "created_at"}
    extra = body.extra_attributes()
    fields = body.model_dump(exclude=named | extra.keys(), exclude_none=True)
    fields.update({**extra, **body.attributes})
    report = lh.upsert_leads([LeadInput(keys, fields, body.created_at)], actor=actor(key))
    return {"ok": True, "lead": report.lead_ids[0]}


@router.get("/leads/{lead}", response_model=LeadOut, summary="One lead, scored and explained")
def get_lead(lead: str, lh: Service, _key: Reader, at: At = None) -> dict[str, Any]:
    """``lead``: an email, an external id, ``anon:<id>`` or ``id:<number>``."""
    _, book = lh.playbook()
    return view_json(lh.show(lead, _at(at)), book.fit.qualified_at)


@router.patch(
    "/leads/{lead}",
    response_model=DoneOut,
    summary="Change a lead's fields",
    dependencies=[Depends(one_message)],
    responses=TOO_LARGE,
)
def patch_lead(lead: str, body: LeadPatch, lh: Service, key: Admin) -> dict[str, Any]:
    extra = body.extra_attributes()
    fields = body.model_dump(exclude_unset=True, exclude=set(extra))
    if extra:
        fields["attributes"] = {**extra, **(fields.get("attributes") or {})}
    return {"ok": True, "lead": lh.patch_lead(lead, fields, actor=actor(key))}


@router.get(
    "/leads/{lead}/timeline",
    response_model=list[TimelineItem],
    summary="What happened, newest first",
)
def timeline(
    lead: str, lh: Service, _key: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[dict[str, Any]]:
    return [{**item, "at": isoformat(item["at"])} for item in lh.timeline(lead, limit)]


@router.get("/leads/{lead}/explanation", summary="Why the lead has its temperature")
def explanation(lead: str, lh: Service, _key: Reader, at: At = None) -> dict[str, Any]:
    _, book = lh.playbook()
    shown = view_json(lh.show(lead, _at(at)), book.fit.qualified_at)
    explained: dict[str, Any] = shown["explanation"]
    return explained


@router.post(
    "/events",
    response_model=RecordOut,
    summary="Record one event or a list",
    dependencies=[Depends(message_list)],
    responses=TOO_LARGE,
)
async def add_events(
    body: EventIn | list[EventIn], request: Request, lh: Service, _key: Ingester
) -> dict[str, Any]:
    """Idempotent on ``id``: sending the same event twice stores it once. Requests that
    arrive while one is written are recorded together (:mod:`leadheat.api.group_commit`)."""
    items = body if isinstance(body, list) else [body]
    if len(items) > 1000:
        raise InputError("body", f"{len(items)} events; send at most 1000 per request")
    _, book = lh.playbook()
    now = lh.clock()
    events = []
    for index, item in enumerate(items):
        where = f"[{index}]." if isinstance(body, list) else ""
        try:
            key = parse_lead_key(item.lead)
        except LeadKeyError as error:
            raise InputError(f"{where}lead", str(error)) from None
        at = item.timestamp or now
        if at > now + book.ingest.future_tolerance:
            raise InputError(f"{where}timestamp", f"{isoformat(at)} is in the future")
        properties = {**(item.model_extra or {}), **(item.properties or {})} or None
        try:
            kind = valid_event_type(item.type)
        except LeadheatError as error:
            raise InputError(f"{where}type", str(error)) from None
        event_id = item.id or derived_event_id(key, kind, at, properties, 0)
        events.append(NewEvent(key, kind, at, event_id, properties))
    report = await event_commit_of(request).record(events)
    return {
        "stored": report.stored,
        "duplicates": report.duplicates,
        "leads_created": report.leads_created,
    }


@router.post(
    "/leads/{lead}/touches",
    response_model=DoneOut,
    summary="Record a contact",
    dependencies=[Depends(one_message)],
    responses=TOO_LARGE,
)
def add_touch(lead: str, body: TouchIn, lh: Service, _key: Admin) -> dict[str, Any]:
    lead_id = lh.touch(
        lead,
        body.kind,
        body.timestamp,
        direction=body.direction,
        result=body.result,
        rep=body.rep,
        note=body.note,
    )
    return {"ok": True, "lead": lead_id}


@router.post(
    "/leads/{lead}/outcomes",
    response_model=DoneOut,
    summary="Record won/lost",
    dependencies=[Depends(one_message)],
    responses=TOO_LARGE,
)
def add_outcome(lead: str, body: OutcomeIn, lh: Service, key: Admin) -> dict[str, Any]:
    lead_id = lh.outcome(lead, body.outcome, body.timestamp, body.reason, actor=actor(key))
    return {"ok": True, "lead": lead_id}


@router.post(
    "/leads/{lead}/evidence",
    response_model=DoneOut,
    summary="Record BANT evidence",
    dependencies=[Depends(one_message)],
    responses=TOO_LARGE,
)
def add_evidence(lead: str, body: EvidenceIn, lh: Service, _key: Admin) -> dict[str, Any]:
    lead_id = lh.evidence(lead, body.kind, body.value, body.timestamp, source="api")
    return {"ok": True, "lead": lead_id}
