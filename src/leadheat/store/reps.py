"""Reps: who can own leads, who is paused, and how many leads round robin gave each."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from leadheat.identity import LeadKeyError, normalise_email
from leadheat.playbook import Playbook
from leadheat.scoring.temperature import Temperature
from leadheat.store.models import Lead, LeadState
from leadheat.store.models import Rep as RepRow
from leadheat.store.ranking import judge_leads


class UnknownRepError(ValueError):
    pass


@dataclass(frozen=True)
class Rep:
    """A sales rep as stored, and as assignment (``speed/assignment.py``) sees them."""

    email: str
    name: str | None
    team: str
    active: bool
    capacity: int | None
    """Most open hot leads at once (``None``: no limit)."""
    weight: float
    assigned: int
    """Leads assigned so far (the round robin's memory)."""
    last_assigned_at: datetime | None


def _rep(row: Any) -> Rep:
    return Rep(
        email=row.email,
        name=row.name,
        team=row.team,
        active=row.active,
        capacity=row.capacity,
        weight=row.weight,
        assigned=row.assigned,
        last_assigned_at=row.last_assigned_at,
    )


def list_reps(connection: Connection, *, lock: bool = False) -> list[Rep]:
    """Every rep, by email; ``lock`` takes their row locks (PostgreSQL) so that two
    concurrent assignments cannot both pick the same "next" rep."""
    query = select(RepRow).order_by(RepRow.email)
    if lock and connection.dialect.name != "sqlite":
        query = query.with_for_update()
    return [_rep(row) for row in connection.execute(query)]


def _level(reps: Sequence[Rep], weight: float) -> int:
    """The assignment count that puts a (re)joining rep level with the busiest-per-weight
    active rep's rivals, so that they do not receive every new lead until they catch up."""
    active = [rep for rep in reps if rep.active and rep.weight > 0]
    if not active:
        return 0
    return int(min(rep.assigned / rep.weight for rep in active) * weight)


def add_rep(
    connection: Connection,
    email: str,
    now: datetime,
    *,
    name: str | None = None,
    team: str = "default",
    capacity: int | None = None,
    weight: float = 1.0,
) -> Rep:
    """Add a rep, or update the name, team, capacity and weight of one already there."""
    email = email.strip()
    try:  # one address: alerts go to it
        normalise_email(email)
    except LeadKeyError:
        raise ValueError(f"{email!r} is not an email address") from None
    if capacity is not None and capacity < 0:
        raise ValueError(f"capacity {capacity} must be 0 or more")
    if not weight > 0:
        raise ValueError(f"weight {weight} must be above 0")
    known = {rep.email.casefold(): rep for rep in list_reps(connection, lock=True)}
    existing = known.get(email.casefold())
    values = {"name": name, "team": team, "capacity": capacity, "weight": weight}
    if existing is not None:
        connection.execute(update(RepRow).where(RepRow.email == existing.email).values(**values))
        email = existing.email
    else:
        connection.execute(
            insert(RepRow).values(
                email=email,
                active=True,
                assigned=_level(list(known.values()), weight),
                created_at=now,
                **values,
            )
        )
    return next(rep for rep in list_reps(connection) if rep.email == email)


def set_active(connection: Connection, email: str, active: bool) -> Rep:
    """Pause (no new leads) or resume a rep; a resumed rep rejoins level with the others."""
    reps = list_reps(connection, lock=True)
    found = next((rep for rep in reps if rep.email.casefold() == email.strip().casefold()), None)
    if found is None:
        raise UnknownRepError(f"no rep {email!r} (add one with `leadheat reps add EMAIL`)")
    values: dict[str, object] = {"active": active}
    if active and not found.active:
        others = [rep for rep in reps if rep.email != found.email]
        values["assigned"] = max(found.assigned, _level(others, found.weight))
    connection.execute(update(RepRow).where(RepRow.email == found.email).values(**values))
    return next(rep for rep in list_reps(connection) if rep.email == found.email)


def record_assignment(connection: Connection, email: str, now: datetime) -> None:
    connection.execute(
        update(RepRow)
        .where(RepRow.email == email)
        .values(assigned=RepRow.assigned + 1, last_assigned_at=now)
    )


def open_hot_counts(
    connection: Connection, book: Playbook, now: datetime, emails: Sequence[str]
) -> Counter[str]:
    """How many open hot leads each of these reps owns now.

    Only leads that could be hot are judged: open, qualified, with evidence still fresh.
    """
    if not emails:
        return Counter()
    rows = connection.execute(
        select(Lead.id, Lead.owner)
        .join(LeadState, LeadState.lead_id == Lead.id)
        .where(
            Lead.owner.in_(list(emails)),
            LeadState.status == "open",
            LeadState.qualified.is_(True),
            LeadState.evidence_until > now,
        )
    ).all()
    owners = {int(lead_id): str(owner) for lead_id, owner in rows}
    judged = judge_leads(connection, book, now, list(owners))
    return Counter(
        owners[lead_id]
        for lead_id, item in judged.items()
        if item.verdict.temperature is Temperature.HOT
    )
