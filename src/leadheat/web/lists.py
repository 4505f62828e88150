"""``/lists``: every lead with filters and search; ``/lists.csv``: the same rows to download."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from leadheat.service import Leadheat, LeadheatError
from leadheat.store.users import SessionInfo
from leadheat.web.auth import check_csrf, form_lists, signed_in
from leadheat.web.listing import ListFilter, count_of, csv_lines, matching, page_of
from leadheat.web.render import page
from leadheat.web.signin import safe_next
from leadheat.web.snapshots import patch_tasks

router = APIRouter(include_in_schema=False)
PAGE = 50
MAX_OFFSET = 100_000
"""The deepest page: each page ranks every lead before it, and a filter or the CSV export
reaches the rest."""
MAX_TEXT = 200
"""Characters of a filter or a search: longer than any email, name or company worth finding,
and short enough that the database's ``LIKE`` never gives up on the pattern."""


def _text(request: Request, name: str) -> str:
    """A filter parameter, refused (naming it) when it is longer than any value could be.

    The refusal is a ``ValueError`` the page turns into a 400 error page.
    """
    value = request.query_params.get(name, "").strip()
    if len(value) > MAX_TEXT:
        raise ValueError(f"{name} is {len(value)} characters long; at most {MAX_TEXT}")
    return value


def _filter(request: Request) -> ListFilter:
    return ListFilter(
        temperature=_text(request, "temperature"),
        owner=_text(request, "owner"),
        source=_text(request, "source"),
        grade=_text(request, "grade"),
        search=_text(request, "q"),
    )


def _offset(text: str) -> int:
    """The ``offset`` parameter: a whole number from 0 to ``MAX_OFFSET``.

    >>> _offset("50"), _offset("")
    (50, 0)
    >>> _offset("99999999999999999999")
    Traceback (most recent call last):
    ...
    ValueError: offset must be a whole number from 0 to 100000, not '99999999999999999999'
    """
    text = text.strip() or "0"
    if not text.isdigit() or len(text) > len(str(MAX_OFFSET)) or int(text) > MAX_OFFSET:
        raise ValueError(f"offset must be a whole number from 0 to {MAX_OFFSET}, not {text[:40]!r}")
    return int(text)


@router.get("/lists")
def lists(request: Request, session: SessionInfo = Depends(signed_in)) -> Response:  # noqa: B008
    lh: Leadheat = request.app.state.lh
    try:
        wanted = _filter(request)
        offset = _offset(request.query_params.get("offset", ""))
    except ValueError as error:
        return page(request, "error.html", session, 400, message=str(error))
    rows, more = page_of(lh, wanted, PAGE, offset)
    total = count_of(lh, wanted)
    if total is None and not more and (rows or offset == 0):  # the last page: all judged
        total = offset + len(rows)
    more = more and offset + PAGE <= MAX_OFFSET
    query = {k: v for k, v in request.query_params.items() if k not in ("offset", "done") and v}
    return page(
        request,
        "lists.html",
        session,
        active="lists",
        wanted=wanted,
        rows=rows,
        more=more,
        total=total,
        offset=offset,
        page_size=PAGE,
        query=query,
        now=lh.clock(),
        reps=[rep.email for rep, _ in lh.reps()] if session.account.is_manager else [],
        message=request.query_params.get("done", ""),
    )


@router.post("/lists/assign")
async def assign_selected(request: Request, session: SessionInfo = Depends(signed_in)) -> Response:  # noqa: B008
    """A manager's bulk "Assign": the leads ticked in Lists go to one known rep, each as the
    lead page's Assign gives it (audited from and to, the SLA clock following), all in one
    transaction; a lead or rep that is unknown changes nothing. Reps take, not hand out."""
    lh: Leadheat = request.app.state.lh
    form = await form_lists(request)
    check_csrf(request, session, {k: v[0] for k, v in form.items()})
    if not session.account.is_manager:
        return page(request, "error.html", session, 403, message="Only managers may assign.")
    chosen = form.get("lead", [])
    rep = (form.get("rep") or [""])[0]
    bad = [value for value in chosen if not value.isdigit() or len(value) > 18]
    if bad:
        message = f"lead {bad[0][:40]!r} is not a lead id"
        return page(request, "error.html", session, 400, message=message)
    back = safe_next((form.get("back") or ["/lists"])[0])
    back = back if back.startswith("/lists") else "/lists"  # back to the page it came from
    separator = "&" if "?" in back else "?"
    if not chosen:  # the button pressed before ticking: say so on the same page
        said = "Tick the leads to assign first: nothing was changed."
        return RedirectResponse(f"{back}{separator}{urlencode({'done': said})}", 303)
    email = session.account.email
    try:
        done = lh.assign_many([int(value) for value in chosen], rep, actor=f"web:{email}")
    except LeadheatError as error:
        return page(request, "error.html", session, 400, message=str(error))
    ids = [item.lead_id for item in done]
    patch_tasks(lh, ids)
    request.app.state.refresher.touched(ids)
    changed = sum(1 for item in done if item.changed)
    clocks = sum(1 for item in done if item.clock_id is not None)
    said = f"Assigned {changed} lead{'' if changed == 1 else 's'} to {done[0].rep.email}"
    if changed < len(done):
        said += f" ({len(done) - changed} already theirs)"
    if clocks:
        said += f"; {clocks} SLA clock{'' if clocks == 1 else 's'} running for them"
    return RedirectResponse(f"{back}{separator}{urlencode({'done': said + '.'})}", 303)


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
