"""Reading leads: ranked lists and pages of them, one lead's explained score as of any instant,
and its timeline. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from leadheat.core import Core
from leadheat.errors import LeadheatError
from leadheat.lookup import LeadView, find_lead, lead_view
from leadheat.playbook import Playbook
from leadheat.scoring.lead import score_history, what_it_did
from leadheat.scoring.temperature import Temperature, grade
from leadheat.store.database import reader_of
from leadheat.store.history import load_histories, load_history, load_touches
from leadheat.store.models import Lead

if TYPE_CHECKING:
    from leadheat.store.ranking import Ranked

# The ranking (NumPy) is imported by the lists that rank: showing one lead loads neither.

PAGE_SCAN = 200
ORDERS = ("heat", "fit", "probability")


@dataclass(frozen=True)
class LeadRow:
    """One line of a list of leads."""

    lead_id: int
    email: str | None
    external_id: str | None
    name: str | None
    company: str | None
    owner: str | None
    heat: float
    fit: float
    qualified: bool
    temperature: Temperature
    grade: str
    status: str
    reason: str
    last_engaged_at: datetime | None
    probability: float | None = None


def hot(core: Core, at: datetime | None = None, limit: int | None = None) -> list[LeadRow]:
    """Hot leads not yet won, hottest first, as of ``at`` (default now)."""
    from leadheat.store.ranking import hot_leads

    _, book = core.playbook()
    now = at or core.clock()
    with core.engine.connect() as connection:
        return _rows(connection, book, hot_leads(connection, book, now, limit))


def what_they_did(core: Core, lead_ids: Sequence[int]) -> dict[int, str]:
    """What each lead did and the evidence it gave, now, in words ("demo request 2h 0m ago;
    evidence: budget 40k"): the "why" a rep reads, as Hot now and the alerts say it, rather
    than the threshold the lead passed. Leads that did nothing scored get no entry."""
    if not lead_ids:
        return {}
    _, book = core.playbook()
    now = core.clock()
    with core.engine.connect() as connection:
        histories = load_histories(reader_of(connection), list(lead_ids))
    said = {lead_id: what_it_did(score_history(h, book, now)) for lead_id, h in histories.items()}
    return {lead_id: text for lead_id, text in said.items() if text}


def leads(
    core: Core,
    temperature: Temperature | str | None = None,
    at: datetime | None = None,
    limit: int | None = None,
) -> list[LeadRow]:
    """Leads hottest first, optionally of one temperature, as of ``at``."""
    from leadheat.store.ranking import list_leads

    _, book = core.playbook()
    now = at or core.clock()
    wanted = Temperature(temperature) if temperature is not None else None
    with core.engine.connect() as connection:
        ranked = list_leads(connection, book, now, limit, wanted)
        return _rows(connection, book, ranked)


def _rows(connection: Connection, book: Playbook, ranked: Sequence[Ranked]) -> list[LeadRow]:
    ids = [r.lead_id for r in ranked]
    leads = (
        {
            row["id"]: row
            for row in connection.execute(select(Lead).where(Lead.id.in_(ids))).mappings()
        }
        if ids
        else {}
    )
    rows = []
    for item in ranked:
        lead = leads[item.lead_id]
        rows.append(
            LeadRow(
                lead_id=item.lead_id,
                email=lead["email"],
                external_id=lead["external_id"],
                name=lead["name"],
                company=lead["company"],
                owner=lead["owner"],
                heat=item.heat,
                fit=item.facts.fit,
                qualified=item.facts.qualified,
                temperature=item.verdict.temperature,
                grade=grade(item.facts.fit, item.facts.disqualified, item.heat, book),
                status=item.status,
                reason=item.verdict.reason,
                last_engaged_at=item.facts.last_engaged_at,
                probability=item.facts.probability,
            )
        )
    return rows


def browse(
    core: Core,
    *,
    temperature: Temperature | str | None = None,
    owner: str | None = None,
    status: str | None = None,
    order: str = "heat",
    at: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[LeadRow], bool]:
    """A page of leads, hottest (or best-fitting) first, with filters; and whether more
    follow. Pages of one ``at`` are a consistent snapshot of that instant."""
    from leadheat.store.ranking import iter_leads

    if order not in ORDERS:
        raise LeadheatError(f"order {order!r} must be one of {', '.join(ORDERS)}")
    _, book = core.playbook()
    now = at or core.clock()
    wanted = Temperature(temperature) if temperature is not None else None
    page: list[LeadRow] = []
    skipped = 0
    with core.engine.connect() as connection:
        pending: list[Ranked] = []
        for item in iter_leads(connection, book, now, order, wanted):
            if status is not None and item.status != status:
                continue
            pending.append(item)
            if len(pending) < PAGE_SCAN:
                continue
            skipped = _take(connection, book, pending, owner, offset, skipped, page)
            pending = []
            if len(page) > limit:
                break
        else:
            skipped = _take(connection, book, pending, owner, offset, skipped, page)
    return page[:limit], len(page) > limit


def _take(
    connection: Connection,
    book: Playbook,
    ranked: Sequence[Ranked],
    owner: str | None,
    offset: int,
    skipped: int,
    page: list[LeadRow],
) -> int:
    for row in _rows(connection, book, ranked):
        if owner is not None and row.owner != owner:
            continue
        if skipped < offset:
            skipped += 1
        else:
            page.append(row)
    return skipped


def show(core: Core, lead: str | int, at: datetime | None = None) -> LeadView:
    """A lead's full, explained score as of ``at`` (default now), from its history."""
    book = core.playbook()
    with core.engine.connect() as connection:
        return lead_view(reader_of(connection), lead, book, at or core.clock(), past=at is not None)


def timeline(core: Core, lead: str | int, limit: int = 200) -> list[dict[str, Any]]:
    """Everything that happened to a lead, newest first: events, touches, outcomes and
    evidence, each with its kind and time."""
    with core.engine.connect() as connection:
        reader = reader_of(connection)
        lead_id = find_lead(reader, lead)
        history = load_history(reader, lead_id)
        touches = load_touches(reader, lead_id)
    items: list[dict[str, Any]] = [
        {
            "kind": "event",
            "at": e.at,
            "type": e.type,
            "id": e.event_id,
            "properties": dict(e.properties),
        }
        for e in history.events
    ]
    items += [
        {
            "kind": "touch",
            "at": t.at,
            "type": t.kind,
            "direction": t.direction,
            "result": t.result,
            "rep": t.rep,
        }
        for t in touches
    ]
    items += [
        {"kind": "outcome", "at": o.at, "type": o.outcome, "reason": o.reason}
        for o in history.outcomes
    ]
    items += [
        {
            "kind": "evidence",
            "at": e.stated_at,
            "type": e.kind,
            "value": e.value,
            "source": e.source,
        }
        for e in history.evidence
    ]
    items.sort(key=lambda item: item["at"], reverse=True)
    return items[:limit]
