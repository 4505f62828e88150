"""``/lists``: every lead with filters and search; ``/lists.csv``: the same rows to download."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from leadheat.service import Leadheat
from leadheat.store.users import SessionInfo
from leadheat.web.auth import signed_in
from leadheat.web.listing import ListFilter, count_of, csv_lines, matching, page_of
from leadheat.web.render import page

router = APIRouter(include_in_schema=False)
PAGE = 50


def _filter(request: Request) -> ListFilter:
    query = request.query_params
    return ListFilter(
        temperature=query.get("temperature", "").strip(),
        owner=query.get("owner", "").strip(),
        source=query.get("source", "").strip(),
        grade=query.get("grade", "").strip(),
        search=query.get("q", "").strip(),
    )


@router.get("/lists")
def lists(request: Request, offset: int = 0, session: SessionInfo = Depends(signed_in)) -> Response:  # noqa: B008
    lh: Leadheat = request.app.state.lh
    try:
        wanted = _filter(request)
    except ValueError as error:
        return page(request, "error.html", session, 400, message=str(error))
    rows, more = page_of(lh, wanted, PAGE, max(0, offset))
    total = count_of(lh, wanted)
    if total is None and not more and (rows or offset <= 0):  # the last page: all judged
        total = max(0, offset) + len(rows)
    query = {k: v for k, v in request.query_params.items() if k != "offset" and v}
    return page(
        request,
        "lists.html",
        session,
        active="lists",
        wanted=wanted,
        rows=rows,
        more=more,
        total=total,
        offset=max(0, offset),
        page_size=PAGE,
        query=query,
        now=lh.clock(),
    )


@router.get("/lists.csv")
def lists_csv(request: Request, session: SessionInfo = Depends(signed_in)) -> Response:  # noqa: B008
    lh: Leadheat = request.app.state.lh
    try:
        wanted = _filter(request)
    except ValueError as error:
        return page(request, "error.html", session, 400, message=str(error))
    return StreamingResponse(
        csv_lines(matching(lh, wanted)),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="leads.csv"'},
    )
