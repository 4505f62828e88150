"""``/playbook``: the team's shared definition of "hot" for everyone to read, its history,
and (managers only) checking and applying an edited version."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from leadheat.analytics.charts import comparison_chart, draw
from leadheat.analytics.decisions import TooLongError
from leadheat.analytics.team import backtest_within
from leadheat.playbook import PlaybookError, parse_playbook, signal_name_notes
from leadheat.service import Leadheat
from leadheat.speed.masking import mask_urls_in
from leadheat.store.events import LATEST_TYPES
from leadheat.store.users import SessionInfo
from leadheat.web.auth import check_csrf, form_of, signed_in
from leadheat.web.render import page
from leadheat.web.snapshots import svg_image

router = APIRouter(include_in_schema=False)


def _show(
    request: Request,
    session: SessionInfo,
    *,
    draft: str | None = None,
    problems: list[str] | None = None,
    message: str = "",
    status: int = 200,
    **extra: Any,
) -> Response:
    lh: Leadheat = request.app.state.lh
    source = lh.playbook_source()
    if not session.account.is_manager:  # reps read what "hot" means, not where alerts go
        source = mask_urls_in(source)
    return page(
        request,
        "playbook.html",
        session,
        status,
        active="playbook",
        source=source,
        draft=source if draft is None else draft,
        history=lh.playbook_history(),
        unscored=lh.unscored_types(),
        latest_types=LATEST_TYPES,
        problems=problems or [],
        message=message or request.query_params.get("done", ""),
        **extra,
    )


async def _backtest(request: Request, session: SessionInfo, draft: str) -> Response:
    """The edited playbook replayed over the past beside the current one (issue 7's
    backtest): each lead as of its first touch, against whether it was won. It runs on a
    worker thread within ``LEADHEAT_BACKTEST_TIMEOUT``; past it, the page says so (503)."""
    lh: Leadheat = request.app.state.lh
    try:
        result = await backtest_within(
            request.app.state.backtest_timeout, lh, parse_playbook(draft, "edited")
        )
    except TooLongError as error:
        return _show(request, session, draft=draft, problems=[str(error)], status=503)
    return _show(
        request, session, draft=draft,
        backtest=result.as_json(), chart=svg_image(draw(comparison_chart(result))),
        message="Backtest of the edited playbook (not applied yet).",
    )  # fmt: skip


@router.get("/playbook")
def playbook(request: Request, session: SessionInfo = Depends(signed_in)) -> Response:  # noqa: B008
    return _show(request, session)


def _problems(request: Request, source: str) -> list[str]:
    try:
        request.app.state.egress.check_playbook(parse_playbook(source), source)
    except PlaybookError as error:
        return [str(problem) for problem in error.problems]
    return []


@router.post("/playbook")
async def apply(request: Request, session: SessionInfo = Depends(signed_in)) -> Response:  # noqa: B008
    """Check the edited playbook; apply it when asked to (managers only, 403 for reps)."""
    form = await form_of(request)
    check_csrf(request, session, form)
    draft = form.get("source", "")
    if not session.account.is_manager:
        return _show(
            request, session, draft=draft, status=403,
            message="Only managers may apply a playbook.",
        )  # fmt: skip
    if form.get("action") == "suggest":
        job = _start(request)
        return RedirectResponse(f"/playbook/suggestion/{job}", status_code=303)
    problems = _problems(request, draft)
    if not problems and form.get("action") == "backtest":
        return await _backtest(request, session, draft)
    if problems or form.get("action") != "apply":
        note = "" if problems else "The edited playbook is valid (not applied yet)."
        if not problems and (hints := signal_name_notes(draft)):
            note += " Note: " + "; ".join(hints)
        return _show(request, session, draft=draft, problems=problems, message=note,
                     status=422 if problems else 200)  # fmt: skip
    lh: Leadheat = request.app.state.lh
    version = lh.apply_playbook(
        draft, actor=f"web:{session.account.email}", egress=request.app.state.egress
    )
    done = f"Applied version {version}."
    adopted = lh.adopt_unowned()  # hot leads it left with nobody on them, as an import does
    if adopted.leads:
        done += f" Hot leads nobody owned: {adopted.assigned} assigned"
        if adopted.waiting:
            done += f", {adopted.waiting} waiting in Hot now for someone to take"
        done += "."
    return RedirectResponse(f"/playbook?{urlencode({'done': done})}", status_code=303)


@dataclass
class Suggesting:
    """A "Suggest from our history" job: it runs on its own thread (a fit takes seconds to
    minutes), stopped at ``LEADHEAT_BACKTEST_TIMEOUT``; the page polls it."""

    started: float = field(default_factory=time.monotonic)
    result: dict[str, Any] | None = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


MAX_JOBS = 20


def _jobs(request: Request) -> dict[str, Suggesting]:
    state = request.app.state
    if not hasattr(state, "suggestions"):
        state.suggestions = {}
    jobs: dict[str, Suggesting] = state.suggestions
    return jobs


def _start(request: Request) -> str:
    from leadheat.analytics.proposal import from_store

    lh: Leadheat = request.app.state.lh
    timeout: float = request.app.state.backtest_timeout
    jobs = _jobs(request)
    while len(jobs) >= MAX_JOBS:  # the oldest go first
        jobs.pop(next(iter(jobs)))
    name = uuid.uuid4().hex
    job = jobs[name] = Suggesting()

    def run() -> None:
        try:
            found = from_store(lh, resamples=20, deadline=time.monotonic() + timeout)
            job.result = found.as_json() | {"source": found.source}
        except TooLongError:
            job.error = (
                f"the suggestion took longer than its limit of {timeout:g} s "
                "(LEADHEAT_BACKTEST_TIMEOUT)"
            )
        except Exception as error:  # shown on the page: nothing to learn from, and why
            job.error = str(error)
        finally:
            job.done.set()

    threading.Thread(target=run, name=f"suggest-{name[:8]}", daemon=True).start()
    return name


@router.get("/playbook/suggestion/{job}")
def suggestion(
    request: Request,
    job: str,
    session: SessionInfo = Depends(signed_in),  # noqa: B008
) -> Response:
    """The suggestion's progress, then its table, forecast, backtest and diff, with the
    suggested playbook in the editor ready to check, backtest or apply."""
    if not session.account.is_manager:
        return _show(request, session, status=403, message="Only managers may apply a playbook.")
    found = _jobs(request).get(job)
    if found is None:
        return _show(request, session, status=404, problems=["No such suggestion (start again)."])
    if not found.done.is_set():
        return _show(request, session, suggesting=job, message="Learning from your history…")
    if found.error is not None:
        return _show(request, session, status=422, problems=[found.error])
    assert found.result is not None
    return _show(
        request, session, draft=found.result["source"], suggestion=found.result,
        message="Suggested from your history (not applied yet): review, then Apply.",
    )  # fmt: skip
