"""Follow-up pages over issue 5's lists: my tasks (and what is overdue), hot leads let go
(recovery) and engaged-before leads worth another try (win-back).

Tasks and Recovery are live: they read the follow-up state kept per lead
(:mod:`leadheat.engage.followup`), an index read at any size. Win-back (whose expected
conversion replays every lead's history) shows the latest snapshot of its list
(:mod:`leadheat.web.snapshots`), computed in the background, with the instant it was
computed; ``POST /refresh`` asks for a newer one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from leadheat.engage.lists import recover, tasks
from leadheat.service import Leadheat, LeadheatError
from leadheat.store.users import SessionInfo
from leadheat.web.auth import check_csrf, form_of, signed_in
from leadheat.web.refresh import Refresher
from leadheat.web.render import page
from leadheat.web.signin import safe_next
from leadheat.web.snapshots import (
    LIMIT,
    VIEWS,
    analytics_view,
    latest,
    winback_view,
)

router = APIRouter(include_in_schema=False)
Session = Depends(signed_in)


def _owner(session: SessionInfo, scope: str) -> str | None:
    return None if scope == "team" else session.account.email


def snapshot_context(request: Request, view: str) -> dict[str, Any]:
    """What ``_snapshot.html`` needs: the view's latest snapshot, whether a newer one is
    being computed, and where the page is (to poll it and to come back after "Refresh")."""
    lh: Leadheat = request.app.state.lh
    refresher: Refresher = request.app.state.refresher
    refresher.want(view)
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return {
        "snapshot": latest(lh, view),
        "pending": refresher.pending(view),
        "failure": refresher.failure(view),
        "view": view,
        "back": back,
        "clock": lh.clock(),
    }


@router.get("/tasks")
def my_tasks(
    request: Request, scope: str = "mine", overdue: bool = False, session: SessionInfo = Session
) -> Response:
    lh: Leadheat = request.app.state.lh
    now = lh.clock()
    found = tasks(lh, at=now, owner=_owner(session, scope), overdue=overdue, limit=LIMIT)
    return page(
        request, "tasks.html", session, active="tasks",
        tasks=found, scope=scope, overdue=overdue, now=now, live=True, clock=now,
    )  # fmt: skip


@router.get("/recovery")
def recovery(request: Request, scope: str = "team", session: SessionInfo = Session) -> Response:
    lh: Leadheat = request.app.state.lh
    now = lh.clock()
    found = recover(lh, at=now, owner=_owner(session, scope), limit=LIMIT)
    return page(
        request, "recovery.html", session, active="recovery", lost=found, scope=scope,
        live=True, clock=now,
    )  # fmt: skip


@router.get("/winback")
def win_back(request: Request, session: SessionInfo = Session) -> Response:
    shown = snapshot_context(request, "winback")
    snapshot = shown["snapshot"]
    found = winback_view(snapshot) if snapshot else None
    return page(
        request, "winback.html", session, active="winback", found=found, now=shown["clock"], **shown
    )


@router.post("/refresh")
async def refresh_view(request: Request, session: SessionInfo = Session) -> Response:
    """Ask for a new snapshot of a view now, then back to its page (which shows the current
    one, marked as being refreshed, until the new one is ready)."""
    form = await form_of(request)
    check_csrf(request, session, form)
    view = form.get("view", "")
    kind, _, period = view.partition(":")
    try:
        if kind not in VIEWS or (kind == "analytics") != bool(period):
            raise ValueError(f"view {view!r} is not one of {', '.join(VIEWS)}")
        if kind == "analytics":
            analytics_view(*period.split(":", 1))
    except (LeadheatError, ValueError, TypeError) as error:
        return page(request, "error.html", session, 400, message=str(error))
    request.app.state.refresher.want(view, now=True)
    return RedirectResponse(safe_next(form.get("back")), status_code=303)
