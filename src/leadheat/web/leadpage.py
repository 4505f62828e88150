"""Everything the lead page shows, gathered in one place so that a test can call it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from leadheat.predict.alarm import DriftAlarm, current_alarm
from leadheat.predict.model import Explanation
from leadheat.scoring.heat import Engagement, replay_heat
from leadheat.service import Leadheat, LeadView
from leadheat.speed.masking import mask_url
from leadheat.store.clocks import ClockView
from leadheat.store.database import reader_of
from leadheat.store.history import load_history
from leadheat.store.models import Lead, Touch
from leadheat.store.nurture import list_enrollments
from leadheat.store.outbox import DeliveryView

NOTE_ATTRIBUTES = ("notes", "preferences", "concerns")
"""Lead attributes shown as notes (set them with ``PATCH /api/v1/leads/…`` or an import)."""
CHART_POINTS = 120


@dataclass(frozen=True)
class Note:
    at: datetime | None
    author: str | None
    text: str


@dataclass(frozen=True)
class MergeHint:
    """An open suggested merge naming the lead: the other lead, and which one would stay."""

    suggestion_id: int
    other_id: int
    other_label: str
    stays: bool
    """Whether this page's lead is the one that would remain."""
    reason: str
    source: str
    created_at: datetime


@dataclass(frozen=True)
class LeadPage:
    lead_id: int
    view: LeadView
    hot_heat: float
    warm_heat: float
    qualified_at: float
    series: list[tuple[datetime, float]]
    clocks: list[ClockView]
    timeline: list[dict[str, Any]]
    notes: list[Note]
    explanation: tuple[int, Explanation] | None
    """(model version, why) when a model has been trained."""
    drift_alarm: DriftAlarm | None
    """The model's latest drift check, when it sounded the alarm (shown by the probability)."""
    merges: list[MergeHint]
    """Open suggested merges with another lead, for a person to decide."""


def heat_series(
    lh: Leadheat, lead_id: int, now: datetime, span: timedelta = timedelta(days=30)
) -> list[tuple[datetime, float]]:
    """Heat at evenly spaced instants from ``span`` before ``now`` (or the first event, if
    later) to ``now``, plus each event's own instant, so that every jump is drawn."""
    _, book = lh.playbook()
    with lh.engine.connect() as connection:
        history = load_history(reader_of(connection), lead_id)
    engagements = [
        Engagement(e.at, book.points_for(e.type, e.properties), book.half_life_for(e.type))
        for e in history.events
        if e.at <= now
    ]
    engagements = [e for e in engagements if e.points != 0]
    if not engagements:
        return []
    start = max(now - span, min(e.at for e in engagements) - timedelta(hours=1))
    step = (now - start) / CHART_POINTS
    instants = {start + step * i for i in range(CHART_POINTS + 1)}
    instants |= {e.at for e in engagements if e.at >= start}
    return [(at, replay_heat(engagements, at)) for at in sorted(instants)]


def notes(lh: Leadheat, lead_id: int, attributes: dict[str, Any]) -> list[Note]:
    """Notes left with touches, newest first, after the lead's own note attributes."""
    found = [
        Note(None, name, str(attributes[name])) for name in NOTE_ATTRIBUTES if attributes.get(name)
    ]
    with lh.engine.connect() as connection:
        rows = connection.execute(
            select(Touch.occurred_at, Touch.rep, Touch.note)
            .where(Touch.lead_id == lead_id, Touch.note.is_not(None))
            .order_by(Touch.occurred_at.desc())
            .limit(50)
        )
        found += [Note(at, rep, note) for at, rep, note in rows if note]
    return found


def _where(sent: DeliveryView) -> str:
    """Where a notification went, as every rep may see it: a URL's secrets masked."""
    return sent.target if sent.channel == "email" else mask_url(sent.target)


def timeline(lh: Leadheat, lead_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """What happened to the lead, newest first: its events, touches, outcomes and evidence,
    the mail and alerts sent about it (nurture steps, speed-to-lead), and its enrolments."""
    items = lh.timeline(lead_id, limit=limit)
    items += [
        {
            "kind": "email" if sent.channel == "email" else "alert",
            "at": sent.created_at,
            "type": sent.trigger,
            "detail": f"{sent.channel} to {_where(sent)}: {sent.status}",
        }
        for sent in lh.deliveries(lead=lead_id, limit=limit)
    ]
    with lh.engine.connect() as connection:
        items += [
            {
                "kind": "sequence",
                "at": enrolment.enrolled_at,
                "type": enrolment.sequence,
                "detail": f"enrolled by {enrolment.enrolled_by}, {enrolment.status}"
                + (f" ({enrolment.stop_reason})" if enrolment.stop_reason else ""),
            }
            for enrolment in list_enrollments(connection, lead_id=lead_id, limit=limit)
        ]
    items.sort(key=lambda item: item["at"], reverse=True)
    return items[:limit]


def merge_hints(lh: Leadheat, lead_id: int) -> list[MergeHint]:
    """The open suggested merges naming the lead, each with the other lead's name."""
    found = lh.suggested_merges(lead=lead_id)
    others = {s.into_lead_id if s.lead_id == lead_id else s.lead_id for s in found}
    with lh.engine.connect() as connection:
        labels = {
            row.id: row.name or row.email or row.external_id or f"Lead {row.id}"
            for row in connection.execute(
                select(Lead.id, Lead.name, Lead.email, Lead.external_id).where(
                    Lead.id.in_(sorted(others))
                )
            )
        }
    hints = []
    for item in found:
        stays = item.into_lead_id == lead_id
        other = item.lead_id if stays else item.into_lead_id
        hints.append(
            MergeHint(
                item.id,
                other,
                labels.get(other, f"Lead {other}"),
                stays,
                item.reason,
                item.source,
                item.created_at,
            )
        )
    return hints


def lead_page(lh: Leadheat, lead: str | int) -> LeadPage:
    """The lead's explained score now, its heat over the last 30 days, clocks, timeline,
    notes and (when a model exists) the predicted probability with its factors."""
    view = lh.show(lead)
    lead_id = int(view.lead["id"])
    _, book = lh.playbook()
    now = view.score.at
    explanation = None
    drift_alarm = None
    if view.score.probability is not None:
        from leadheat.predict import team

        explanation = team.explain(lh, lead_id)
        if explanation is not None:
            drift_alarm = current_alarm(lh, explanation[0])
    return LeadPage(
        lead_id=lead_id,
        view=view,
        hot_heat=book.temperature.hot_heat,
        warm_heat=book.temperature.warm_heat,
        qualified_at=book.fit.qualified_at,
        series=heat_series(lh, lead_id, now),
        clocks=lh.sla_clocks(lead=lead_id, limit=10),
        timeline=timeline(lh, lead_id),
        notes=notes(lh, lead_id, dict(view.lead.get("attributes") or {})),
        explanation=explanation,
        drift_alarm=drift_alarm,
        merges=merge_hints(lh, lead_id),
    )
