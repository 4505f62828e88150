"""The queue a rep works from: hot leads, hottest first, with the clock that is running on
each and when each will cool if nothing happens."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select, union_all

from leadheat.playbook import Playbook
from leadheat.scoring.heat import Heat
from leadheat.scoring.lead import score_history, what_it_did
from leadheat.scoring.temperature import Temperature, forecast, grade
from leadheat.service import Leadheat
from leadheat.store.database import reader_of
from leadheat.store.history import load_histories
from leadheat.store.models import HeatKeyRow, Lead, SlaClock, Touch
from leadheat.store.ranking import (
    Ranked,
    heat_at_least,
    hot_leads,
    judge_leads,
    unowned_hot_leads,
)


@dataclass(frozen=True)
class QueueItem:
    """One hot lead as the queue shows it."""

    lead_id: int
    label: str
    company: str | None
    owner: str | None
    heat: float
    grade: str
    reason: str
    """The temperature's rule ("qualified, heat 62.4 >= 20, fresh evidence")."""
    did: str
    """What the lead did and the evidence it gave (:func:`what_it_did`): the "why" a rep reads."""
    hot_until: datetime | None
    sla_deadline: datetime | None
    """The earliest deadline of the lead's running SLA clocks; ``None`` when none runs."""
    last_touch: datetime | None
    """The team's latest touch; ``None``: never touched."""
    status: str
    """``open`` or the outcome (``lost``: a lead let go can still be hot)."""
    probability: float | None

    @property
    def clock(self) -> str:
        """The SLA column's state: ``closed`` (an outcome), ``running``, ``touched`` (no
        clock runs and the team has been in touch) or ``never`` (no clock runs and nobody has
        ever touched the lead: the one a rep must not read as handled)."""
        if self.status != "open":
            return "closed"
        if self.sla_deadline is not None:
            return "running"
        return "touched" if self.last_touch is not None else "never"


def _heats(connection: Connection, ids: Sequence[int]) -> dict[int, Heat]:
    heats: dict[int, Heat] = defaultdict(Heat)
    rows = connection.execute(
        select(
            HeatKeyRow.lead_id, HeatKeyRow.half_life_us, HeatKeyRow.whole, HeatKeyRow.frac
        ).where(HeatKeyRow.lead_id.in_(ids))
    )
    for lead_id, span_us, whole, frac in rows:
        heats[lead_id].set_row(span_us, whole, frac)
    return heats


def _deadlines(connection: Connection, ids: Sequence[int]) -> dict[int, datetime]:
    rows = connection.execute(
        select(SlaClock.lead_id, func.min(SlaClock.deadline))
        .where(SlaClock.lead_id.in_(ids), SlaClock.stopped_at.is_(None))
        .group_by(SlaClock.lead_id)
    )
    return dict(rows.all())


def _last_touches(connection: Connection, ids: Sequence[int], now: datetime) -> dict[int, datetime]:
    rows = connection.execute(
        select(Touch.lead_id, func.max(Touch.occurred_at))
        .where(Touch.lead_id.in_(ids), Touch.occurred_at <= now)
        .group_by(Touch.lead_id)
    )
    return dict(rows.all())


def _items(
    connection: Connection, book: Playbook, now: datetime, ranked: Sequence[Ranked]
) -> list[QueueItem]:
    ids = [r.lead_id for r in ranked]
    if not ids:
        return []
    leads = {
        row.id: row
        for row in connection.execute(
            select(
                Lead.id, Lead.email, Lead.name, Lead.external_id, Lead.company, Lead.owner
            ).where(Lead.id.in_(ids))
        )
    }
    heats = _heats(connection, ids)
    deadlines = _deadlines(connection, ids)
    touched = _last_touches(connection, ids, now)
    histories = load_histories(reader_of(connection), ids)
    items = []
    for r in ranked:
        lead = leads[r.lead_id]
        score = score_history(histories[r.lead_id], book, now, r.facts.probability)
        items.append(
            QueueItem(
                lead_id=r.lead_id,
                label=lead.name or lead.email or lead.external_id or f"lead {r.lead_id}",
                company=lead.company,
                owner=lead.owner,
                heat=r.heat,
                grade=grade(r.facts.fit, r.facts.disqualified, r.heat, book),
                reason=r.verdict.reason,
                did=what_it_did(score),
                hot_until=forecast(heats[r.lead_id], r.facts, r.verdict, now, book).hot_until,
                sla_deadline=deadlines.get(r.lead_id),
                last_touch=touched.get(r.lead_id),
                status=r.status,
                probability=r.facts.probability,
            )
        )
    return items


def _owned_hot(connection: Connection, book: Playbook, now: datetime, owner: str) -> list[Ranked]:
    """``owner``'s hot leads not yet won, hottest first: only their leads hot enough by the
    heat index are judged, however many leads the team has."""
    candidates = union_all(*heat_at_least(book, book.temperature.hot_heat, now)).subquery()
    ids = [
        row[0]
        for row in connection.execute(
            select(Lead.id).where(
                func.lower(Lead.owner) == owner.casefold(),
                Lead.id.in_(select(candidates.c[0])),
            )
        )
    ]
    judged = [
        r
        for r in judge_leads(connection, book, now, ids).values()
        if r.verdict.temperature is Temperature.HOT and r.status != "won"
    ]
    return sorted(judged, key=lambda r: (-r.heat, r.lead_id))


def hot_queue(
    lh: Leadheat, owner: str | None = None, limit: int = 50, at: datetime | None = None
) -> list[QueueItem]:
    """Hot leads not yet won, hottest first; only ``owner``'s when given (a rep's "mine")."""
    _, book = lh.playbook()
    now = at or lh.clock()
    with lh.engine.connect() as connection:
        if owner is None:
            ranked = hot_leads(connection, book, now, limit)
        else:
            ranked = _owned_hot(connection, book, now, owner)[:limit]
        return _items(connection, book, now, ranked)


def unowned_queue(lh: Leadheat, limit: int = 50, at: datetime | None = None) -> list[QueueItem]:
    """Hot leads not yet won that nobody owns, hottest first: what everyone's Hot now shows
    on top, so that a lead no rep could be given (none yet, or none with room) is taken by
    someone instead of being on no one's screen."""
    _, book = lh.playbook()
    now = at or lh.clock()
    with lh.engine.connect() as connection:
        return _items(connection, book, now, unowned_hot_leads(connection, book, now, limit))
