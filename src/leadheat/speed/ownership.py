"""Taking a lead nobody owns: the owner, the audit record and the SLA clock in one write.

A hot lead finds no owner when there are no reps yet or none with room; it then waits at the
top of everyone's Hot now until someone takes it. Two people may click "Take it" at once:
the owner is set only where there is none, so the second one learns who was first instead
of overwriting them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update

from leadheat.playbook import TRIGGER_NAMES, Playbook, TriggerName
from leadheat.scoring.temperature import Temperature
from leadheat.speed.calendar import deadline
from leadheat.store import audit
from leadheat.store.audit import AuditAction, lead_subject
from leadheat.store.clocks import list_clocks, new_clock
from leadheat.store.models import Lead, SlaClock
from leadheat.store.ranking import judge_leads
from leadheat.store.reps import (
    Rep,
    UnknownRepError,
    add_rep,
    list_reps,
    record_assignment,
    set_active,
)
from leadheat.store.state import lock_states


class AlreadyOwnedError(ValueError):
    """The lead has an owner (someone took it first, or it was assigned meanwhile)."""

    def __init__(self, lead_id: int, owner: str) -> None:
        super().__init__(f"lead {lead_id} is already owned by {owner}")
        self.lead_id = lead_id
        self.owner = owner


@dataclass(frozen=True)
class Taken:
    """What a take did: who owns the lead now, and the clock that runs for them."""

    lead_id: int
    rep: Rep
    joined: bool
    """Whether the taker became a rep by taking (added paused: see :func:`take_lead`)."""
    clock_id: int | None
    deadline: datetime | None
    """When the new owner must have touched the lead; ``None`` when no clock runs."""


def _taker(connection: Connection, email: str, now: datetime, book: Playbook) -> tuple[Rep, bool]:
    """The rep who takes, by email in any case; someone who is not a rep yet (a manager on a
    new install) is added to the default team, paused, so that owning what they take does
    not enrol them in round robin. Returns the rep and whether they were added."""
    found = next(
        (
            rep
            for rep in list_reps(connection, lock=True)
            if rep.email.casefold() == email.casefold()
        ),
        None,
    )
    if found is not None:
        return found, False
    added = add_rep(connection, email, now, team=book.speed.default_team)
    return set_active(connection, added.email, False), True


def take_lead(
    connection: Connection, book: Playbook, now: datetime, lead_id: int, email: str, actor: str
) -> Taken:
    """Make ``email``'s rep the owner of a lead nobody owns, in the caller's transaction.

    The lead's state is locked first and the reps second, as every write does; the owner is
    then set by ``UPDATE … WHERE owner IS NULL``, so of two takes at once the second finds
    the owner the first set (on PostgreSQL it waits for the first to commit) and raises
    :class:`AlreadyOwnedError`, which the caller lets roll the transaction back.

    The clock: one running on the lead (since it turned hot with nobody to own it) becomes
    the taker's, and its deadline stays, because the lead has waited since then. When the
    lead's clock is already late, the taker gets a new one from now under the same trigger
    (the late one stays, as after a reassignment on breach: the lead did wait too long); a
    hot lead with no clock gets a ``hot`` one. A lead neither hot nor waiting gets none, and
    none starts while the playbook turns speed to lead off.
    """
    lock_states(connection, [lead_id])
    rep, joined = _taker(connection, email, now, book)
    changed = connection.execute(
        update(Lead)
        .where(Lead.id == lead_id, Lead.owner.is_(None))
        .values(owner=rep.email, updated_at=now)
    ).rowcount
    if changed != 1:
        owner = connection.execute(select(Lead.owner).where(Lead.id == lead_id)).scalar_one()
        raise AlreadyOwnedError(lead_id, str(owner))
    record_assignment(connection, rep.email, now)
    audit.record(
        connection,
        now,
        actor,
        AuditAction.OWNER,
        lead_subject(lead_id),
        {"from": None, "to": rep.email, "why": "taken"},
    )
    if joined:
        audit.record(
            connection,
            now,
            actor,
            AuditAction.REP_ADD,
            rep.email,
            {"team": rep.team, "active": False, "why": f"took {lead_subject(lead_id)}"},
        )
    clock_id, due = _clock_for(connection, book, now, lead_id, rep)
    return Taken(lead_id, rep, joined, clock_id, due)


@dataclass(frozen=True)
class Assigned:
    """What an assign did: the owner before and now, and the clock that runs for the new one."""

    lead_id: int
    previous: str | None
    rep: Rep
    clock_id: int | None
    deadline: datetime | None
    """When the owner must have touched the lead; ``None`` when no clock runs."""

    @property
    def changed(self) -> bool:
        """Whether the owner changed: assigning a lead to its owner, in any case (a CRM may
        spell ``Rita@Example.com``), changes nothing."""
        return self.previous is None or self.previous.casefold() != self.rep.email.casefold()


def assign_lead(
    connection: Connection, book: Playbook, now: datetime, lead_id: int, email: str, actor: str
) -> Assigned:
    """Make the known rep ``email`` the owner of a lead, whoever owns it now, in the caller's
    transaction: the owner, the audit record (from and to) and the clock as a take sets them.

    Unlike a take, an assign may replace an owner, and it never adds a rep: a mistyped email
    would otherwise own the lead unseen, so an unknown one raises :class:`UnknownRepError`
    saying how to add it. The clock follows :func:`take_lead`'s rule: the running one passes
    to the new owner with its deadline (the lead has waited since it started), a late one
    leaves a new one from now, and a hot lead with none gets a ``hot`` one.
    """
    lock_states(connection, [lead_id])
    rep = next(
        (
            known
            for known in list_reps(connection, lock=True)
            if known.email.casefold() == email.casefold()
        ),
        None,
    )
    if rep is None:
        raise UnknownRepError(f"no rep {email!r} (add one with `leadheat reps add {email}`)")
    previous = connection.execute(select(Lead.owner).where(Lead.id == lead_id)).scalar_one()
    if previous is not None and previous.casefold() == rep.email.casefold():  # theirs already
        running = next(
            iter(list_clocks(connection, lead_id=lead_id, open_only=True, limit=1)), None
        )
        if running is None or (running.owner or "").casefold() != rep.email.casefold():
            return Assigned(lead_id, previous, rep, None, None)
        return Assigned(lead_id, previous, rep, running.id, running.deadline)
    connection.execute(
        update(Lead).where(Lead.id == lead_id).values(owner=rep.email, updated_at=now)
    )
    record_assignment(connection, rep.email, now)
    audit.record(
        connection,
        now,
        actor,
        AuditAction.OWNER,
        lead_subject(lead_id),
        {"from": previous, "to": rep.email, "why": "assigned"},
    )
    clock_id, due = _clock_for(connection, book, now, lead_id, rep)
    return Assigned(lead_id, previous, rep, clock_id, due)


def _clock_for(
    connection: Connection, book: Playbook, now: datetime, lead_id: int, rep: Rep
) -> tuple[int | None, datetime | None]:
    speed = book.speed
    if not speed.enabled:
        return None, None
    latest = next(iter(list_clocks(connection, lead_id=lead_id, open_only=True, limit=1)), None)
    if latest is not None and latest.breached_at is None:
        connection.execute(
            update(SlaClock).where(SlaClock.id == latest.id).values(owner=rep.email, team=rep.team)
        )
        return latest.id, latest.deadline
    if latest is None:
        judged = judge_leads(connection, book, now, [lead_id]).get(lead_id)
        if judged is None or judged.verdict.temperature is not Temperature.HOT:
            return None, None
    rule = speed.trigger(_trigger(latest.trigger if latest is not None else "hot"))
    due, _ = deadline(rule, speed.team(rep.team), now)
    clock_id = new_clock(
        connection, lead_id, rule.name, rep.email, rep.team, rule.business_hours, now, due
    )
    return clock_id, due


def _trigger(name: str) -> TriggerName:
    """A stored clock's trigger (``hot`` if the name is no longer known)."""
    return next((known for known in TRIGGER_NAMES if known == name), "hot")
