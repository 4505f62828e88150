"""``/analytics``: the report's charts (issue 7's ``build_report``) for a chosen period,
drawn as SVG images on the server."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from matplotlib.figure import Figure

from leadheat.analytics.charts import draw
from leadheat.analytics.report import build_report, report_charts
from leadheat.service import Leadheat, LeadheatError
from leadheat.store.users import SessionInfo
from leadheat.web.auth import signed_in
from leadheat.web.render import page

router = APIRouter(include_in_schema=False)
Session = Depends(signed_in)


def day(text: str, field: str) -> datetime | None:
    """A date from a form's date field, as midnight UTC; empty means "not given".

    >>> day("2026-11-01", "since"), day("", "since")
    (datetime.datetime(2026, 11, 1, 0, 0, tzinfo=datetime.timezone.utc), None)
    """
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise LeadheatError(f"{field} {text!r} is not a date (use YYYY-MM-DD)") from None


def svg_image(figure: Figure) -> str:
    """A matplotlib figure as a ``data:`` URL (an image, so the page's CSP need not allow
    the inline styles matplotlib writes)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


@router.get("/analytics")
def analytics(
    request: Request, since: str = "", until: str = "", session: SessionInfo = Session
) -> Response:
    lh: Leadheat = request.app.state.lh
    try:
        report = build_report(lh, since=day(since, "from"), until=day(until, "to"))
    except (LeadheatError, ValueError) as error:
        return page(request, "error.html", session, 400, message=str(error))
    charts = [(chart.title, svg_image(draw(chart))) for chart in report_charts(report)]
    return page(
        request, "analytics.html", session, active="analytics",
        summary=report.as_json(), charts=charts, since=since, until=until,
    )  # fmt: skip
