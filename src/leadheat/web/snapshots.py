"""The dashboard's whole-history views as snapshots.

Tasks, Recovery, Win-back and Analytics are exact computations over every lead's history
(``engage.lists``, ``analytics.report``): seconds to a minute at 100,000 leads. The
Win-back and Analytics pages show the latest snapshot of each (``view_snapshots``), computed
in the background by :mod:`leadheat.web.refresh` at one instant, with that instant on the
page. The Tasks and Recovery pages read the kept follow-up state live
(:mod:`leadheat.engage.followup`); their snapshots can still be computed here.

A snapshot keeps what the pages show: the first ``LIMIT`` tasks of the team and of each
owner, every lead let go (few), the win-back list's first ``LIMIT`` leads and its
expectation, and the report's summary and drawn charts for one period.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

from matplotlib.figure import Figure

from leadheat.analytics.charts import draw
from leadheat.analytics.report import build_report, report_charts
from leadheat.engage.lists import LostLead, WinbackLead, recover, tasks, winback
from leadheat.engage.tasks import Task, selling_order
from leadheat.scoring.temperature import Temperature
from leadheat.service import Leadheat, LeadheatError
from leadheat.store.snapshots import Snapshot, load_snapshot, prune_snapshots, save_snapshot

LIMIT = 200
"""Rows a page shows (and a snapshot keeps per list)."""
TIMES = frozenset({"due", "last_touch", "hot_from", "hot_until", "last_engaged_at"})
SPANS = frozenset({"overdue_by", "late_by", "age"})
MICROSECOND = timedelta(microseconds=1)
VIEWS = ("tasks", "recovery", "winback", "analytics")
PERIOD = "analytics:"
"""The prefix of the Analytics page's views, one per period a person chose."""
MAX_PERIODS = 6
"""Analytics periods kept (as snapshots) and kept fresh at once. Each snapshot holds the
report's drawn charts (about half a megabyte) and costs a replay of every lead's history
to compute, and anyone signed in can ask for any number of periods: past this, the
period computed longest ago is forgotten (asked for again, it is computed again)."""
Row = TypeVar("Row")


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


def analytics_view(since: str, until: str) -> str:
    """The snapshot name of the report for a period (the form's dates, checked first).

    >>> analytics_view("2026-10-01", "")
    'analytics:2026-10-01:'
    """
    start, end = day(since, "from"), day(until, "to")
    if start is not None and end is not None and start >= end:
        raise LeadheatError(f"from {since} must be before to {until}")
    return f"analytics:{since}:{until}"


def plain(value: object) -> Any:
    """A list row as JSON values: instants in ISO 8601, spans in microseconds (exact).

    >>> plain(timedelta(seconds=1.5)), plain(Temperature.HOT)
    (1500000, 'hot')
    """
    if is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name)) for field in fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value // MICROSECOND
    if isinstance(value, Enum):
        return value.value
    return value


def revive(kind: type[Row], data: dict[str, Any]) -> Row:
    """The row :func:`plain` wrote, as the dataclass it was."""
    values: dict[str, Any] = {}
    for name, value in data.items():
        if value is not None and name in TIMES:
            values[name] = datetime.fromisoformat(value)
        elif value is not None and name in SPANS:
            values[name] = value * MICROSECOND
        elif name == "temperature":
            values[name] = Temperature(value)
        else:
            values[name] = value
    return kind(**values)


def svg_image(figure: Figure) -> str:
    """A matplotlib figure as a ``data:`` URL (an image, so the page's CSP need not allow
    the inline styles matplotlib writes)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def _owner_key(owner: str | None) -> str:
    return str(owner or "").casefold()


def _task_lists(found: Sequence[Task]) -> dict[str, Any]:
    """The team's first tasks and each owner's, in the order that sells
    (:func:`selling_order`), so a page's "overdue only" is the overdue part of the same
    list."""
    ordered = sorted(found, key=selling_order)
    owners: dict[str, list[Any]] = {}
    for task in ordered:
        mine = owners.setdefault(_owner_key(task.owner), [])
        if len(mine) < LIMIT:
            mine.append(plain(task))
    return {"team": [plain(task) for task in ordered[:LIMIT]], "owners": owners}


def compute(lh: Leadheat, name: str, at: datetime) -> Snapshot:
    """The view ``name`` computed at ``at`` by the same library functions the CLI calls."""
    kind, _, period = name.partition(":")
    body: dict[str, Any]
    if kind == "tasks":
        body = _task_lists(tasks(lh, at=at))
    elif kind == "recovery":
        body = {"lost": [plain(lost) for lost in recover(lh, at=at)]}
    elif kind == "winback":
        found = winback(lh, at=at)
        expectation = found.expectation
        body = {
            "older_than": plain(found.older_than),
            "horizon": plain(found.horizon),
            "expectation": {
                "members": expectation.members,
                "rate": expectation.rate,
                "expected": expectation.expected,
                "low": expectation.low,
                "high": expectation.high,
                "sample": expectation.sample,
            },
            "leads": [plain(lead) for lead in found.leads[:LIMIT]],
        }
    elif kind == "analytics":
        since, _, until = period.partition(":")
        report = build_report(lh, since=day(since, "from"), until=day(until, "to") or at)
        charts = [(chart.title, svg_image(draw(chart))) for chart in report_charts(report)]
        body = {"summary": report.as_json(), "charts": charts}
    else:
        raise LeadheatError(f"no dashboard view {name!r} (one of {', '.join(VIEWS)})")
    return Snapshot(name, at, body)


def refresh(lh: Leadheat, name: str, at: datetime | None = None) -> Snapshot:
    """Compute the view at ``at`` (now) and store it as its latest snapshot."""
    snapshot = compute(lh, name, at or lh.clock())
    with lh.transaction() as connection:
        save_snapshot(connection, snapshot)
        if name.startswith(PERIOD):
            prune_snapshots(connection, PERIOD, MAX_PERIODS, kept=name)
    return snapshot


def latest(lh: Leadheat, name: str) -> Snapshot | None:
    """The view's latest snapshot, or ``None`` before the first is computed."""
    with lh.engine.connect() as connection:
        return load_snapshot(connection, name)


def patch_tasks(lh: Leadheat, lead_ids: Sequence[int]) -> None:
    """Replace these leads' tasks in the tasks snapshot with their tasks now, so a touch or
    an outcome logged in the dashboard shows on Tasks at once (the other rows stay as of
    the snapshot's instant). Nothing to do before the first snapshot."""
    fresh = tasks(lh, lead_ids=lead_ids)
    with lh.transaction() as connection:
        snapshot = load_snapshot(connection, "tasks")
        if snapshot is None:
            return
        gone = set(lead_ids)
        kept = [
            revive(Task, row)
            for rows in snapshot.body["owners"].values()
            for row in rows
            if row["lead_id"] not in gone
        ]
        team = [revive(Task, row) for row in snapshot.body["team"] if row["lead_id"] not in gone]
        body = _task_lists([*{task.lead_id: task for task in [*kept, *team, *fresh]}.values()])
        save_snapshot(connection, Snapshot("tasks", snapshot.computed_at, body))


@dataclass(frozen=True)
class WinbackView:
    """The win-back page's numbers, as the snapshot kept them."""

    older_than: timedelta
    horizon: timedelta
    expectation: dict[str, float]
    leads: list[WinbackLead]


def task_rows(snapshot: Snapshot, owner: str | None, overdue: bool) -> list[Task]:
    """The team's tasks (``owner`` None) or one owner's, in the order that sells, overdue
    only if asked."""
    rows = (
        snapshot.body["team"]
        if owner is None
        else snapshot.body["owners"].get(_owner_key(owner), [])
    )
    found = [revive(Task, row) for row in rows]
    return [task for task in found if task.overdue] if overdue else found


def lost_rows(snapshot: Snapshot, owner: str | None) -> list[LostLead]:
    """Leads let go, most recently hot first: the team's, or one owner's."""
    found = [revive(LostLead, row) for row in snapshot.body["lost"]]
    if owner is not None:
        found = [lost for lost in found if _owner_key(lost.owner) == _owner_key(owner)]
    return found[:LIMIT]


def winback_view(snapshot: Snapshot) -> WinbackView:
    body = snapshot.body
    return WinbackView(
        body["older_than"] * MICROSECOND,
        body["horizon"] * MICROSECOND,
        body["expectation"],
        [revive(WinbackLead, row) for row in body["leads"]],
    )
