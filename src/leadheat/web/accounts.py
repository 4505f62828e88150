"""The Accounts page (hot accounts now, hottest first, refreshed live like Hot now) and one
account's page: members with their heat, the account's heat over time with its thresholds,
coverage, and a timeline across members."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from leadheat.accounts import account, accounts
from leadheat.errors import UnknownAccountError
from leadheat.scoring.heat import Engagement, replay_heat
from leadheat.service import Leadheat
from leadheat.store.database import reader_of
from leadheat.store.history import load_histories
from leadheat.store.users import SessionInfo
from leadheat.web.auth import signed_in
from leadheat.web.chart import Threshold, heat_chart
from leadheat.web.render import page

router = APIRouter(include_in_schema=False)
Session = Depends(signed_in)
LIMIT = 50
CHART_POINTS = 120
TIMELINE = 60


def _lh(request: Request) -> Leadheat:
    lh: Leadheat = request.app.state.lh
    return lh


def _rows_context(request: Request) -> dict[str, Any]:
    lh = _lh(request)
    now = lh.clock()
    _, book = lh.playbook()
    return {
        "rows": accounts(lh, temperature="hot", at=now, limit=LIMIT),
        "now": now,
        "hot_heat": book.accounts.hot_heat,
    }


@router.get("/accounts")
def accounts_page(request: Request, session: SessionInfo = Session) -> Response:
    return page(request, "accounts.html", session, active="accounts", **_rows_context(request))


@router.get("/accounts/rows")
def accounts_rows(request: Request, session: SessionInfo = Session) -> Response:
    """The hot accounts' rows alone: what htmx fetches every second."""
    return page(request, "_account_rows.html", session, **_rows_context(request))


def _series(
    lh: Leadheat, lead_ids: list[int], now: datetime, span: timedelta = timedelta(days=30)
) -> list[tuple[datetime, float]]:
    """The account's heat (its members' now, summed) at evenly spaced instants over the last
    ``span``, plus each event's instant, so that every jump is drawn."""
    _, book = lh.playbook()
    with lh.engine.connect() as connection:
        histories = load_histories(reader_of(connection), lead_ids)
    engagements = [
        Engagement(e.at, points, book.half_life_for(e.type))
        for history in histories.values()
        for e in history.events
        if e.at <= now and (points := book.points_for(e.type, e.properties)) > 0
    ]
    if not engagements:
        return []
    start = max(now - span, min(e.at for e in engagements) - timedelta(hours=1))
    step = (now - start) / CHART_POINTS
    instants = {start + step * i for i in range(CHART_POINTS + 1)}
    instants |= {e.at for e in engagements if e.at >= start}
    return [(at, replay_heat(engagements, at)) for at in sorted(instants)]


@router.get("/accounts/{key}")
def account_page(request: Request, key: str, session: SessionInfo = Session) -> Response:
    lh = _lh(request)
    now = lh.clock()
    try:
        view = account(lh, key, now)
    except UnknownAccountError:
        return page(request, "error.html", session, 404, message=f"No account {key}.")
    _, book = lh.playbook()
    members = [m.lead_id for m in view.members]
    chart = heat_chart(
        _series(lh, members, now),
        [
            Threshold("hot", book.accounts.hot_heat, "hot"),
            Threshold("warm", book.accounts.warm_heat, "warm"),
        ],
        "Account heat over the last 30 days, with the hot and warm thresholds",
    )
    labels = {m.lead_id: m.email or m.name or f"lead {m.lead_id}" for m in view.members}
    timeline: list[dict[str, Any]] = []
    for lead in members:
        for item in lh.timeline(f"id:{lead}", limit=TIMELINE):
            timeline.append({**item, "lead_id": lead, "label": labels[lead]})
    timeline.sort(key=lambda item: item["at"], reverse=True)
    return page(
        request,
        "account.html",
        session,
        active="accounts",
        view=view,
        row=view.row,
        coverage=view.coverage,
        chart=chart,
        timeline=timeline[:TIMELINE],
        labels=labels,
        now=now,
        rules=book.accounts,
    )
