"""Follow-up pages over issue 5's lists: my tasks (and what is overdue), hot leads let go
(recovery) and engaged-before leads worth another try (win-back)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from leadheat.engage.lists import recover, tasks, winback
from leadheat.service import Leadheat
from leadheat.store.users import SessionInfo
from leadheat.web.auth import signed_in
from leadheat.web.render import page

router = APIRouter(include_in_schema=False)
Session = Depends(signed_in)
LIMIT = 200


def _lh(request: Request) -> Leadheat:
    lh: Leadheat = request.app.state.lh
    return lh


def _owner(session: SessionInfo, scope: str) -> str | None:
    return None if scope == "team" else session.account.email


@router.get("/tasks")
def my_tasks(
    request: Request, scope: str = "mine", overdue: bool = False, session: SessionInfo = Session
) -> Response:
    lh = _lh(request)
    found = tasks(lh, owner=_owner(session, scope), overdue=overdue, limit=LIMIT)
    return page(
        request, "tasks.html", session, active="tasks",
        tasks=found, scope=scope, overdue=overdue, now=lh.clock(),
    )  # fmt: skip


@router.get("/recovery")
def recovery(request: Request, scope: str = "team", session: SessionInfo = Session) -> Response:
    lh = _lh(request)
    found = recover(lh, owner=_owner(session, scope), limit=LIMIT)
    return page(
        request, "recovery.html", session, active="recovery",
        lost=found, scope=scope, now=lh.clock(),
    )  # fmt: skip


@router.get("/winback")
def win_back(request: Request, session: SessionInfo = Session) -> Response:
    lh = _lh(request)
    found = winback(lh)
    return page(
        request, "winback.html", session, active="winback",
        found=found, leads=found.leads[:LIMIT], now=lh.clock(),
    )  # fmt: skip
