"""The analytics report: every breakdown, the funnel, SLA per rep and heat over time, as data
(``--json``, the API) or as an HTML page with charts (``leadheat report --out DIR``)."""

from __future__ import annotations

import html
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadheat.analytics import breakdowns
from leadheat.analytics.accounts import account_breakdowns
from leadheat.analytics.charts import (
    Chart,
    funnel_chart,
    heat_chart,
    overdue_chart,
    rates_chart,
    save,
    trend_chart,
)
from leadheat.analytics.columns import decision_rows, load_columns, snapshots_at
from leadheat.analytics.decisions import DEFAULT_HORIZON, Decided, enrolled
from leadheat.analytics.pipeline import (
    FollowUps,
    RepSla,
    Snapshot,
    Stage,
    funnel,
    overdue_by_owner,
    sla_by_rep,
    trend_instants,
)
from leadheat.analytics.rates import SMALL_GROUP, Rate
from leadheat.analytics.team import period
from leadheat.bulk import paused_gc
from leadheat.engage.followup import owner_tallies
from leadheat.engage.lists import replayed_tasks
from leadheat.times import format_duration, isoformat

if TYPE_CHECKING:
    from leadheat.service import Leadheat

BREAKDOWNS = {
    "by_temperature": ("Conversion by temperature at the first touch", "temperature"),
    "by_grade": ("Conversion by grade at the first touch", "grade"),
    "by_first_touch_delay": ("Conversion by time to the first touch", "time to first touch"),
    "by_lead_age": ("Conversion by lead age at the first touch", "lead age"),
    "decay_curve": ("Conversion of leads still open, by age", "lead age"),
    "by_source": ("Conversion by source", "source"),
    "by_campaign": ("Conversion by campaign", "campaign"),
    "by_rep": ("Conversion by rep", "rep"),
    "by_sequence": ("Conversion by nurture sequence", "sequence"),
    "by_account_temperature": (
        "Conversion by the temperature of the lead's account at the first touch",
        "account temperature",
    ),
    "by_coverage": (
        "Conversion by people engaged at the lead's account at the first touch",
        "account coverage",
    ),
}
"""Every breakdown: its key in the JSON, its chart title, its axis."""
TREND_POINTS = 8


@dataclass(frozen=True)
class Report:
    since: datetime | None
    until: datetime
    horizon: timedelta
    decisions: list[Decided]
    breakdowns: dict[str, list[Rate]]
    funnel: list[Stage]
    sla: list[RepSla]
    overdue: list[FollowUps]
    heat_now: Snapshot
    heat_trend: list[Snapshot]

    def as_json(self) -> dict[str, Any]:
        return {
            "since": isoformat(self.since),
            "until": isoformat(self.until),
            "horizon": format_duration(self.horizon),
            "leads": len(self.decisions),
            "censored": sum(r.label is None for r in self.decisions),
            "won": sum(r.label == 1 for r in self.decisions),
            "small_group": SMALL_GROUP,
            **{key: [r.as_json() for r in rows] for key, rows in self.breakdowns.items()},
            "funnel": [s.as_json() for s in self.funnel],
            "sla": [r.as_json() for r in self.sla],
            "overdue": [r.as_json() for r in self.overdue],
            "heat_now": self.heat_now.as_json(),
            "heat_trend": [s.as_json() for s in self.heat_trend],
        }


def build_report(
    lh: Leadheat,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    horizon: timedelta = DEFAULT_HORIZON,
) -> Report:
    """The report over the leads that arrived in ``[since, until)``, with only what was known
    at ``until`` (default now)."""
    now = period(lh, since, until)
    _, book = lh.playbook()
    overdue = follow_ups(lh, now)
    with paused_gc():  # a million leads' rows and arrays, no cycles among them
        with lh.engine.connect() as connection:
            columns = load_columns(connection, book, now)
            rows = decision_rows(columns, book, horizon, since)
            sequences = enrolled(connection, now)
            start = since or min((r.created_at for r in rows), default=now - timedelta(days=28))
            sla = sla_by_rep(connection, now, since)
            by_account = account_breakdowns(connection, book, rows, columns)
        trend = snapshots_at(columns, book, since, trend_instants(start, now, TREND_POINTS))
        tables = {
            "by_temperature": breakdowns.by_temperature(rows),
            "by_grade": breakdowns.by_grade(rows),
            "by_first_touch_delay": breakdowns.by_first_touch_delay(rows),
            "by_lead_age": breakdowns.by_lead_age(rows),
            "decay_curve": breakdowns.decay_curve(rows, now),
            "by_source": breakdowns.by_source(rows),
            "by_campaign": breakdowns.by_campaign(rows),
            "by_rep": breakdowns.by_rep(rows),
            "by_sequence": breakdowns.by_sequence(rows, sequences),
            **by_account,
        }
        return Report(
            since, now, horizon, rows, tables, funnel(rows), sla, overdue, trend[-1], trend
        )


def follow_ups(lh: Leadheat, now: datetime) -> list[FollowUps]:
    """The follow-ups table: per owner, from the kept follow-up state (one ``GROUP BY``) with
    the few leads that have a fact or touch after ``now`` replayed, else from every task
    replayed."""
    tallies = owner_tallies(lh, now)
    if tallies is None:  # too many leads with later facts: the replay, not tasks() asking again
        return overdue_by_owner(replayed_tasks(lh, at=now))
    rows = {
        tally.owner or "(nobody)": FollowUps(
            tally.owner or "(nobody)",
            tally.tasks,
            tally.overdue,
            None if tally.longest_overdue is None else tally.longest_overdue.total_seconds(),
        )
        for tally in tallies.found
    }
    if tallies.late:
        for late in overdue_by_owner(replayed_tasks(lh, at=now, lead_ids=tallies.late)):
            kept = rows.get(late.owner)
            rows[late.owner] = late if kept is None else _joined(kept, late)
    return sorted(rows.values(), key=lambda r: (-r.overdue, -r.tasks, r.owner))


def _joined(one: FollowUps, other: FollowUps) -> FollowUps:
    """One owner's follow-ups counted in two parts."""
    longest = [
        s for s in (one.longest_overdue_seconds, other.longest_overdue_seconds) if s is not None
    ]
    return FollowUps(
        one.owner, one.tasks + other.tasks, one.overdue + other.overdue, max(longest, default=None)
    )


def report_charts(report: Report) -> list[Chart]:
    """Every chart of the report, in page order."""
    charts = [
        rates_chart(key, title, report.breakdowns[key], axis)
        for key, (title, axis) in BREAKDOWNS.items()
    ]
    charts.append(funnel_chart(report.funnel))
    charts.append(
        rates_chart("sla", "SLA clocks met, per rep", [r.compliance for r in report.sla], "rep")
    )
    charts.append(overdue_chart(report.overdue))
    charts.append(heat_chart(report.heat_now))
    charts.append(trend_chart(report.heat_trend))
    return charts


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _rates_table(rows: list[Rate]) -> str:
    body = "".join(
        f"<tr{' class=small' if r.small else ''}><td>{html.escape(r.bucket)}</td>"
        f"<td>{r.leads:,}</td><td>{r.won:,}</td><td>{_percent(r.rate)}</td>"
        f"<td>{_percent(r.low)} – {_percent(r.high)}</td>"
        f"<td>{'small group' if r.small else ''}</td></tr>"
        for r in rows
    )
    return (
        "<table><tr><th>bucket</th><th>leads</th><th>won</th><th>rate</th>"
        f"<th>95 % interval</th><th></th></tr>{body}</table>"
    )


def render_html(report: Report, images: dict[str, str]) -> str:
    """The report page; ``images`` maps a chart name to its file name beside the page."""
    data = report.as_json()
    parts = [
        "<!doctype html><html><head><meta charset=utf-8><title>leadheat report</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:2px 8px;text-align:right}td:first-child{text-align:left}"
        "tr.small{color:#777;font-style:italic}img{max-width:100%}</style></head><body>",
        "<h1>leadheat report</h1>",
        f"<p>Leads that arrived {html.escape(data['since'] or 'at any time')} to "
        f"{html.escape(data['until'])}: {data['leads']:,} leads, {data['won']:,} won within "
        f"{data['horizon']} of the first touch, {data['censored']:,} still open inside that "
        "horizon (censored: left out of rates). Intervals are Wilson 95 %; groups of fewer "
        f"than {SMALL_GROUP} leads are marked <i>small group</i>.</p>",
    ]

    def image(name: str) -> str:
        file = images.get(name)
        return f'<img src="{html.escape(file)}" alt="{html.escape(name)}">' if file else ""

    for key, (title, _) in BREAKDOWNS.items():
        parts += [
            f"<h2>{html.escape(title)}</h2>",
            image(key),
            _rates_table(report.breakdowns[key]),
        ]
    parts += ["<h2>Funnel</h2>", image("funnel"), "<table><tr><th>stage</th><th>leads</th>"]
    parts[-1] += "<th>of previous</th><th>median days from previous</th></tr>"
    for stage in report.funnel:
        days = stage.median_days_from_previous
        parts.append(
            f"<tr><td>{stage.stage}</td><td>{stage.leads:,}</td><td>{_percent(stage.share)}</td>"
            f"<td>{'–' if days is None else f'{days:.1f}'}</td></tr>"
        )
    parts += ["</table>", "<h2>SLA per rep</h2>", image("sla")]
    parts.append(_rates_table([r.compliance for r in report.sla]))
    parts += ["<h2>Follow-ups</h2>", image("overdue"), "<table><tr><th>owner</th>"]
    parts[-1] += "<th>tasks</th><th>overdue</th><th>longest overdue (working hours)</th></tr>"
    for owner in report.overdue:
        late = owner.longest_overdue_seconds
        hours = "–" if late is None else f"{late / 3600:.1f}"
        parts.append(
            f"<tr><td>{html.escape(owner.owner)}</td><td>{owner.tasks:,}</td>"
            f"<td>{owner.overdue:,}</td><td>{hours}</td></tr>"
        )
    parts.append("</table>")
    parts += ["<h2>Heat now</h2>", image("heat_now"), "<h2>Trend</h2>", image("temperature_trend")]
    parts.append("<h2>The numbers</h2><pre>")
    parts.append(html.escape(json.dumps(data, indent=1)))
    parts.append("</pre></body></html>")
    return "\n".join(parts)


def write_report(report: Report, folder: Path, fmt: str = "png") -> Path:
    """``folder/index.html`` with its charts and ``report.json``; returns the page's path.

    Everything is written to a temporary folder beside ``folder`` first and moved in at the
    end, so a failure (a full disk, a bad format) leaves no half-written report.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".leadheat-report-") as name:
        staging = Path(name)
        images = {chart.name: save(chart, staging, fmt).name for chart in report_charts(report)}
        (staging / "report.json").write_text(json.dumps(report.as_json(), indent=1) + "\n")
        (staging / "index.html").write_text(render_html(report, images), encoding="utf-8")
        for done in sorted(staging.iterdir()):
            os.replace(done, folder / done.name)
    return folder / "index.html"
