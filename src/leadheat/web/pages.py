"""Hot now (the rep's queue, refreshed live by htmx) and the lead page with its actions."""

from __future__ import annotations

from datetime import timedelta
from html import escape
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from leadheat.accounts import lead_account
from leadheat.engage.nurture import enroll
from leadheat.playbook import EVIDENCE_KINDS
from leadheat.scoring.lead import OUTCOMES
from leadheat.service import Leadheat, LeadheatError, LeadTakenError, UnknownLeadError
from leadheat.store.users import SessionInfo
from leadheat.web.auth import check_csrf, form_of, signed_in
from leadheat.web.chart import Threshold, heat_chart
from leadheat.web.leadpage import lead_page
from leadheat.web.queue import hot_queue, unowned_queue
from leadheat.web.render import page, stamp
from leadheat.web.signin import safe_next
from leadheat.web.snapshots import patch_tasks

router = APIRouter(include_in_schema=False)
Session = Depends(signed_in)
TOUCH_KINDS = ("call", "email", "sms", "meeting")
SCOPES = ("mine", "team")
LIMIT = 50
"""Rows of each part of Hot now."""
_TAKE_MESSAGES = {
    "take": "The lead is yours now: its SLA clock runs for you.",
    "take-as-rep": "The lead is yours now: its SLA clock runs for you. You are a rep now, "
    "paused: round robin gives you no new leads until someone runs leadheat reps resume.",
}


def _lh(request: Request) -> Leadheat:
    lh: Leadheat = request.app.state.lh
    return lh


def _scope(value: str | None, session: SessionInfo) -> str:
    """The view asked for; without one, a manager sees the team and a rep their own."""
    if value is None:
        return "team" if session.account.is_manager else "mine"
    if value not in SCOPES:
        raise HTTPException(400, f"scope {value!r} must be mine or team")
    return value


def _queue_context(request: Request, session: SessionInfo, scope: str) -> dict[str, Any]:
    """Hot now's rows: the hot leads nobody owns on top, in both views, then the view's own
    (the team's, less those already on top)."""
    lh = _lh(request)
    now = lh.clock()  # one instant for the ranking and the countdowns drawn from it
    unowned = unowned_queue(lh, LIMIT, at=now)
    if scope == "mine":
        items = hot_queue(lh, session.account.email, LIMIT, at=now)
    else:
        everyone = hot_queue(lh, None, LIMIT + len(unowned), at=now)
        items = [item for item in everyone if item.owner is not None][:LIMIT]
    return {"unowned": unowned, "items": items, "now": now, "scope": scope}


@router.get("/")
def hot_now(request: Request, scope: str | None = None, session: SessionInfo = Session) -> Response:
    return page(
        request,
        "hot.html",
        session,
        active="hot",
        message=_TAKE_MESSAGES.get(request.query_params.get("done", ""), ""),
        **_queue_context(request, session, _scope(scope, session)),
    )


@router.get("/hot/rows")
def hot_rows(
    request: Request, scope: str | None = None, session: SessionInfo = Session
) -> Response:
    """The queue's rows alone: what htmx fetches every second."""
    return page(
        request,
        "_hot_rows.html",
        session,
        **_queue_context(request, session, _scope(scope, session)),
    )


@router.get("/leads/{lead_id}")
def lead(request: Request, lead_id: int, session: SessionInfo = Session) -> Response:
    lh = _lh(request)
    try:
        data = lead_page(lh, f"id:{lead_id}")
    except UnknownLeadError:
        return page(request, "error.html", session, 404, message=f"No lead {lead_id}.")
    chart = heat_chart(
        data.series,
        [Threshold("hot", data.hot_heat, "hot"), Threshold("warm", data.warm_heat, "warm")],
        "Heat over the last 30 days, with the hot and warm thresholds",
    )
    return page(
        request,
        "lead.html",
        session,
        active="",
        data=data,
        score=data.view.score,
        lead=data.view.lead,
        chart=chart,
        now=lh.clock(),
        touch_kinds=TOUCH_KINDS,
        outcomes=OUTCOMES,
        evidence_kinds=EVIDENCE_KINDS,
        sequences=sorted(lh.playbook()[1].sequences),
        reps=[rep.email for rep, _ in lh.reps()] if session.account.is_manager else [],
        message=request.query_params.get("done", ""),
        company_account=lead_account(lh, int(data.view.lead["id"])),
    )


def _done(request: Request, form: dict[str, str], lead_id: int, what: str) -> Response:
    """After an action: htmx gets 204 and a ``queue-changed`` event, a plain form the page."""
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Trigger": "queue-changed"})
    back = safe_next(form.get("back")) if form.get("back") else f"/leads/{lead_id}"
    separator = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{separator}done={what}", status_code=303)


def _tasks_changed(request: Request, lead_id: int) -> None:
    """A touch or an outcome changes the lead's task: the Tasks snapshot gets it now."""
    patch_tasks(_lh(request), [lead_id])
    request.app.state.refresher.touched([lead_id])


async def _action(request: Request, session: SessionInfo) -> dict[str, str]:
    form = await form_of(request)
    check_csrf(request, session, form)
    return form


def _failed(request: Request, session: SessionInfo, error: Exception) -> Response:
    return page(request, "error.html", session, 400, message=str(error))


@router.post("/leads/{lead_id}/touch")
async def touch(request: Request, lead_id: int, session: SessionInfo = Session) -> Response:
    form = await _action(request, session)
    kind = form.get("kind", "call")
    if kind not in TOUCH_KINDS:
        problem = f"touch kind {kind!r} is not one of {', '.join(TOUCH_KINDS)}"
        return _failed(request, session, LeadheatError(problem))
    try:
        _lh(request).touch(
            f"id:{lead_id}",
            kind,
            direction=form.get("direction", "outbound"),
            result=form.get("result") or None,
            rep=session.account.email,
            note=form.get("note") or None,
        )
    except LeadheatError as error:
        return _failed(request, session, error)
    _tasks_changed(request, lead_id)
    if request.headers.get("hx-request"):  # Hot now's one-click "Log call": say what it did
        return _flash(request, _touched(_lh(request), lead_id, kind, session.account.email))
    return _done(request, form, lead_id, "touch")


def _touched(lh: Leadheat, lead_id: int, kind: str, rep: str) -> str:
    """What a one-click touch recorded, in one sentence: the kind, the lead, when, and what
    became of the SLA clock it stopped."""
    now = lh.clock()
    key, name = lh.lead_names([lead_id]).get(lead_id, (f"lead {lead_id}", None))
    what = {"email": "an email", "sms": "an SMS", "meeting": "a meeting"}.get(kind, f"a {kind}")
    said = f"Logged {what} with {name or key} at {stamp(now)} UTC."
    latest = next(iter(lh.sla_clocks(lead=f"id:{lead_id}", limit=1)), None)
    stopped = latest.stopped_at if latest is not None else None
    recent = stopped is not None and now - stopped < timedelta(minutes=1)
    if latest is not None and recent and latest.touched_by == rep:
        said += f" SLA {latest.state(now)}: the clock stopped."
    return said


def _flash(request: Request, message: str) -> Response:
    """The status line an htmx action swaps in above the queue, and the queue refreshed."""
    body = f'<p class="notice" id="flash" role="status">{escape(message)}</p>'
    return HTMLResponse(body, headers={"HX-Trigger": "queue-changed"})


@router.post("/leads/{lead_id}/outcome")
async def outcome(request: Request, lead_id: int, session: SessionInfo = Session) -> Response:
    form = await _action(request, session)
    try:
        _lh(request).outcome(
            f"id:{lead_id}",
            form.get("outcome", ""),
            reason=form.get("reason") or None,
            actor=f"web:{session.account.email}",
        )
    except LeadheatError as error:
        return _failed(request, session, error)
    _tasks_changed(request, lead_id)
    return _done(request, form, lead_id, "outcome")


@router.post("/leads/{lead_id}/sequence")
async def sequence(request: Request, lead_id: int, session: SessionInfo = Session) -> Response:
    """Enrol the lead in one of the playbook's nurture sequences (issue 5)."""
    form = await _action(request, session)
    try:
        name, actor = form.get("sequence", ""), f"web:{session.account.email}"
        enroll(_lh(request), f"id:{lead_id}", name, actor=actor)
    except LeadheatError as error:
        return _failed(request, session, error)
    return _done(request, form, lead_id, "enrolment")


@router.post("/leads/{lead_id}/evidence")
async def evidence(request: Request, lead_id: int, session: SessionInfo = Session) -> Response:
    form = await _action(request, session)
    try:
        _lh(request).evidence(
            f"id:{lead_id}",
            form.get("kind", ""),
            form.get("value", ""),
            source=f"web:{session.account.email}",
        )
    except LeadheatError as error:
        return _failed(request, session, error)
    return _done(request, form, lead_id, "evidence")


@router.post("/leads/{lead_id}/assign")
async def assign(request: Request, lead_id: int, session: SessionInfo = Session) -> Response:
    """A manager's "Assign": a known rep owns the lead, owned or not, audited as theirs, with
    the SLA clock a take would start. Reps take leads; they do not hand out others'."""
    form = await _action(request, session)
    email = session.account.email
    if not session.account.is_manager:
        return page(request, "error.html", session, 403, message="Only managers may assign.")
    try:
        _lh(request).assign(f"id:{lead_id}", form.get("rep", ""), actor=f"web:{email}")
    except LeadheatError as error:
        return _failed(request, session, error)
    _tasks_changed(request, lead_id)
    return _done(request, form, lead_id, "assignment")


@router.post("/leads/{lead_id}/take")
async def take(request: Request, lead_id: int, session: SessionInfo = Session) -> Response:
    """The one-click "Take it": the signed-in person owns a lead nobody owned. Someone
    faster gets a 409 page that names them; nothing is overwritten."""
    form = await _action(request, session)
    email = session.account.email
    try:
        taken = _lh(request).take(f"id:{lead_id}", email, actor=f"web:{email}")
    except LeadTakenError as error:
        return page(request, "error.html", session, 409, message=str(error))
    except LeadheatError as error:
        return _failed(request, session, error)
    _tasks_changed(request, lead_id)
    return _done(request, form, lead_id, "take-as-rep" if taken.joined else "take")
