"""Templates and the small formatting helpers they use (times as people read them)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from leadheat.store.users import SessionInfo

HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""Only the dashboard's own script (htmx) and stylesheet run: injected markup cannot."""


def span(delta: timedelta) -> str:
    """A span in the two largest units a person needs.

    >>> span(timedelta(days=2, hours=5, minutes=7)), span(timedelta(minutes=4, seconds=32))
    ('2d 5h', '4:32')
    >>> span(timedelta(hours=3, minutes=2)), span(timedelta(seconds=-5))
    ('3h 2m', '0:00')
    """
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}:{secs:02d}"


def relative(at: datetime | None, now: datetime) -> str:
    """``in 3h 2m`` or ``2d 5h ago``; empty for no time.

    >>> from datetime import UTC
    >>> now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    >>> relative(now + timedelta(hours=3), now), relative(now - timedelta(days=2), now)
    ('in 3h 0m', '2d 0h ago')
    """
    if at is None:
        return ""
    return f"in {span(at - now)}" if at >= now else f"{span(now - at)} ago"


def stamp(at: datetime | None) -> str:
    """A UTC time to the minute, for tables (``2026-11-01 12:00``)."""
    return "" if at is None else at.strftime("%Y-%m-%d %H:%M")


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["stamp"] = stamp
templates.env.globals["relative"] = relative
templates.env.globals["span"] = span


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
