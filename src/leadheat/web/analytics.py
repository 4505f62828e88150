"""``/analytics``: the report's charts (issue 7's ``build_report``) for a chosen period,
drawn as SVG images on the server, from the period's latest snapshot
(:mod:`leadheat.web.snapshots`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from leadheat.service import LeadheatError
from leadheat.store.users import SessionInfo
from leadheat.web.auth import signed_in
from leadheat.web.followup import snapshot_context
from leadheat.web.render import page
from leadheat.web.snapshots import analytics_view

router = APIRouter(include_in_schema=False)
Session = Depends(signed_in)


@router.get("/analytics")
def analytics(
    request: Request, since: str = "", until: str = "", session: SessionInfo = Session
) -> Response:
    try:
        view = analytics_view(since, until)
    except LeadheatError as error:
        return page(request, "error.html", session, 400, message=str(error))
    shown = snapshot_context(request, view)
    snapshot = shown["snapshot"]
    return page(
        request, "analytics.html", session, active="analytics",
        summary=snapshot.body["summary"] if snapshot else None,
        charts=snapshot.body["charts"] if snapshot else [],
        since=since, until=until, **shown,
    )  # fmt: skip
