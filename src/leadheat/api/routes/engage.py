"""REST API for staying in touch: follow-up tasks, lost hot leads, win-back lists, nurture
enrolments — and the public unsubscribe page every nurture mail links to."""

from __future__ import annotations

from datetime import timedelta
from html import escape
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from leadheat.api.hygiene import no_nul
from leadheat.api.routes.leads import ERRORS, Admin, Reader, Service, _at, _duration
from leadheat.api.security import actor
from leadheat.engage import nurture
from leadheat.engage.lists import mark_winback, recover, tasks, winback
from leadheat.engage.views import enrollment_json, lost_json, task_json, winback_json
from leadheat.service import InputError
from leadheat.store.nurture import list_enrollments

router = APIRouter(prefix="/api/v1", responses=ERRORS, dependencies=[Depends(no_nul)])
public = APIRouter(include_in_schema=False)
Owner = Annotated[str | None, Query(max_length=320, description="Only this rep's leads.")]
At = Annotated[str | None, Query(description="As of this time (ISO 8601 with offset).")]
Limit = Annotated[int | None, Query(ge=1, le=100_000, description="At most N.")]


class TaskOut(BaseModel):
    lead: str
    lead_id: int
    name: str | None
    owner: str | None
    due: str
    overdue: bool
    overdue_seconds: int = Field(description="Working time past due (the cadence's hours).")
    overdue_calendar_seconds: int = Field(description="Calendar time past due.")
    never_contacted: bool = Field(description="Nobody on the team has touched the lead yet.")
    temperature: str
    reason: str
    next_step: str
    last_touch: str | None
    cadence: str


class LostOut(BaseModel):
    lead: str
    lead_id: int
    name: str | None
    owner: str | None
    hot_from: str
    hot_until: str
    temperature: str
    heat_then: float
    heat_now: float
    reason: str


class WinbackOut(BaseModel):
    at: str
    older_than: str
    horizon: str
    expected: dict[str, Any]
    leads: list[dict[str, Any]]
    marked: int = 0


class EnrollIn(BaseModel):
    sequence: str = Field(min_length=1, max_length=100)


class EnrollmentOut(BaseModel):
    id: int
    lead_id: int
    sequence: str
    sent: int
    status: str
    enrolled_at: str
    next_at: str | None
    stopped_at: str | None
    stop_reason: str | None
    enrolled_by: str


class UnsubscribeIn(BaseModel):
    email: str = Field(min_length=3, max_length=320)


def _span(text: str | None, field: str) -> timedelta | None:
    return None if text is None else _duration(text, field)


@router.get(
    "/tasks",
    response_model=list[TaskOut],
    summary="Follow-up tasks in the order that sells (hot never-contacted first)",
)
def list_tasks(
    lh: Service,
    _key: Reader,
    owner: Owner = None,
    overdue: Annotated[bool, Query(description="Only tasks past due.")] = False,
    at: At = None,
    limit: Limit = None,
) -> list[dict[str, Any]]:
    found = tasks(lh, at=_at(at), owner=owner, overdue=overdue, limit=limit)
    return [task_json(task) for task in found]


@router.get("/recover", response_model=list[LostOut], summary="Lost hot leads")
def list_lost(
    lh: Service,
    _key: Reader,
    within: Annotated[str | None, Query(description='Hot within this span ("30d").')] = None,
    owner: Owner = None,
    at: At = None,
    limit: Limit = None,
) -> list[dict[str, Any]]:
    found = recover(lh, at=_at(at), within=_span(within, "within"), owner=owner, limit=limit)
    return [lost_json(lost) for lost in found]


def _winback(
    lh: Service,
    older_than: Annotated[str | None, Query(description='On the list longer ("180d").')] = None,
    churned: Annotated[bool, Query(description="Include expired trials, cancellations.")] = True,
    horizon: Annotated[str | None, Query(description='Conversion within ("90d").')] = None,
    at: At = None,
) -> Any:
    return winback(
        lh,
        at=_at(at),
        older_than=_span(older_than, "older_than"),
        churned=churned,
        horizon=_span(horizon, "horizon"),
    )


@router.get("/winback", response_model=WinbackOut, summary="Win-back list and its expectation")
def get_winback(_key: Reader, found: Annotated[Any, Depends(_winback)]) -> dict[str, Any]:
    return winback_json(found)


@router.post("/winback", response_model=WinbackOut, summary="Build and mark a win-back list")
def post_winback(
    lh: Service, _key: Admin, found: Annotated[Any, Depends(_winback)]
) -> dict[str, Any]:
    return {**winback_json(found), "marked": mark_winback(lh, found)}


@router.get(
    "/enrollments", response_model=list[EnrollmentOut], summary="Nurture sequence enrolments"
)
def get_enrollments(
    lh: Service,
    _key: Reader,
    lead: Annotated[str | None, Query(max_length=320)] = None,
    sequence: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[Literal["active", "finished", "stopped"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    lead_id = lh.lead_id(lead) if lead else None
    with lh.engine.connect() as connection:
        rows = list_enrollments(
            connection, lead_id=lead_id, sequence=sequence, status=status, limit=limit
        )
    return [enrollment_json(row) for row in rows]


@router.post(
    "/leads/{lead}/enrollments", response_model=EnrollmentOut, summary="Enrol a lead by hand"
)
def post_enrollment(lead: str, body: EnrollIn, lh: Service, key: Admin) -> dict[str, Any]:
    try:
        enrollment = nurture.enroll(lh, lead, body.sequence, actor=actor(key))
    except nurture.SequenceError as error:
        raise InputError("sequence", str(error)) from None
    with lh.engine.connect() as connection:
        rows = list_enrollments(connection, lead_id=lh.lead_id(lead))
    return enrollment_json(next(row for row in rows if row.id == enrollment))


@router.delete("/leads/{lead}/enrollments/{sequence}", summary="Take a lead out of a sequence")
def delete_enrollment(
    lead: str,
    sequence: Annotated[str, Path(max_length=100)],
    lh: Service,
    key: Admin,
) -> dict[str, Any]:
    return {"stopped": nurture.stop(lh, lead, sequence, actor=actor(key))}


@router.post("/unsubscribes", summary="Stop nurture mail to an address")
def post_unsubscribe(body: UnsubscribeIn, lh: Service, _key: Admin) -> dict[str, Any]:
    return {"email": body.email, "new": nurture.unsubscribe(lh, body.email, source="api")}


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;
color:#1a1a1a}}h1{{font-size:1.4rem}}</style></head>
<body><main><h1>{title}</h1><p>{text}</p></main></body></html>"""


def _page(title: str, text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=escape(title), text=text), status_code=status)


@public.get("/u/{token}")
def unsubscribe_page(token: Annotated[str, Path(max_length=600)], request: Request) -> Any:
    """The link in every nurture mail: a page that asks to confirm, and changes nothing.

    Mail scanners and link previews open every link in a mail, so a ``GET`` that
    unsubscribed would unsubscribe people who never clicked; the button posts back here.
    """
    email = nurture.unsubscribe_address(request.app.state.lh, token)
    if email is None:
        return _page("Link not valid", "This unsubscribe link is damaged or not ours.", 404)
    return _page(
        "Unsubscribe?",
        f"Stop these mails to <strong>{escape(email)}</strong>?</p>"
        f'<form method="post" action="/u/{escape(token)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form><p>',
    )


@public.post("/u/{token}")
def unsubscribe_one_click(
    token: Annotated[str, Path(max_length=600)],
    request: Request,
) -> Any:
    """Unsubscribe: the confirm page's button, or a mail program's RFC 8058 one-click
    ``POST`` of ``List-Unsubscribe=One-Click``."""
    email = nurture.unsubscribe_by_token(request.app.state.lh, token, source="link")
    if email is None:
        return _page("Link not valid", "This unsubscribe link is damaged or not ours.", 404)
    return _page(
        "You are unsubscribed",
        f"<strong>{escape(email)}</strong> will get no more of these mails.",
    )
