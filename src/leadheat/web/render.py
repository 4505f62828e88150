"""Templates and the small formatting helpers they use (times as people read them, in
:mod:`leadheat.times`'s one format)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from leadheat.scoring.lead import what_it_did
from leadheat.scoring.wording import format_number
from leadheat.store.users import SessionInfo
from leadheat.times import human_span, relative

HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""Only the dashboard's own script (htmx) and stylesheet run: injected markup cannot."""


def stamp(at: datetime | None) -> str:
    """A UTC time to the minute, for tables (``2026-11-01 12:00``)."""
    return "" if at is None else at.strftime("%Y-%m-%d %H:%M")


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["stamp"] = stamp
templates.env.filters["number"] = format_number
templates.env.globals["relative"] = relative
templates.env.globals["span"] = human_span
templates.env.globals["what_it_did"] = what_it_did


def page(
    request: Request,
    name: str,
    session: SessionInfo | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A rendered template with the signed-in account and the CSRF token its forms need."""
    response = templates.TemplateResponse(
        request,
        name,
        {
            "account": session.account if session else None,
            "csrf": session.csrf_token if session else "",
            **context,
        },
        status_code=status_code,
    )
    response.headers["content-security-policy"] = CSP
    # forms then carry their real Origin (``no-referrer`` makes it "null"); nothing leaks
    # to other sites
    response.headers["referrer-policy"] = "same-origin"
    return response
