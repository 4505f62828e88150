"""The reps who own leads: added, paused, resumed, counted, and a lead nobody owns taken by
the first person who clicks "Take it".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from leadheat.core import Core
from leadheat.errors import LeadheatError, LeadTakenError, UnknownLeadError
from leadheat.speed.dispatch import Dispatcher
from leadheat.speed.ownership import (
    AlreadyOwnedError,
    Assigned,
    Taken,
    assign_lead,
    take_lead,
)
from leadheat.store import audit, reps
from leadheat.store.audit import DEFAULT_ACTOR, AuditAction
from leadheat.store.ranking import unowned_hot_leads
from leadheat.store.reps import Rep
from leadheat.store.state import lock_states


def add_rep(
    core: Core,
    email: str,
    *,
    name: str | None = None,
    team: str | None = None,
    capacity: int | None = None,
    weight: float = 1.0,
    actor: str = DEFAULT_ACTOR,
) -> Rep:
    """Add a rep who can own leads (or update one); new reps join round robin level
    with the others."""
    _, book = core.playbook()
    team = team or book.speed.default_team
    if book.speed.teams and team not in book.speed.teams and team != book.speed.default_team:
        raise LeadheatError(
            f"team {team!r} is not in the playbook's [speed.teams] "
            f"({', '.join(sorted(book.speed.teams))})"
        )
    now = core.clock()
    with core.transaction() as connection:
        try:
            rep = reps.add_rep(
                connection, email, now, name=name, team=team, capacity=capacity, weight=weight
            )
        except ValueError as error:
            raise LeadheatError(str(error)) from None
        audit.record(
            connection,
            now,
            actor,
            AuditAction.REP_ADD,
            rep.email,
            {"team": rep.team, "capacity": rep.capacity, "weight": rep.weight},
        )
    return rep


def list_reps(core: Core) -> list[tuple[Rep, int]]:
    """Every rep with the number of open hot leads they own now."""
    _, book = core.playbook()
    with core.engine.connect() as connection:
        found = reps.list_reps(connection)
        counts = reps.open_hot_counts(connection, book, core.clock(), [rep.email for rep in found])
    return [(rep, counts.get(rep.email, 0)) for rep in found]


def set_rep_active(core: Core, email: str, active: bool, *, actor: str = DEFAULT_ACTOR) -> Rep:
    """Pause a rep (no new leads; they keep theirs) or resume them."""
    with core.transaction() as connection:
        try:
            rep = reps.set_active(connection, email, active)
        except reps.UnknownRepError as error:
            raise UnknownLeadError(str(error)) from None
        action = AuditAction.REP_RESUME if active else AuditAction.REP_PAUSE
        audit.record(connection, core.clock(), actor, action, rep.email)
    return rep


def take(core: Core, lead: str | int, rep: str, *, actor: str = DEFAULT_ACTOR) -> Taken:
    """Make ``rep`` (an email) the owner of a lead nobody owns and start their SLA clock.

    This is "Take it" on the dashboard: a hot lead that found no owner (no reps yet, or
    none with room) waits for the first person to take it. The owner is set only if
    there is still none, in one transaction with the audit record (as ``actor``'s) and
    the clock, so a second take raises :class:`LeadTakenError` naming the first taker and
    changes nothing. Someone who is not a rep yet becomes one, paused: they own what they
    take, and round robin gives them nothing until ``leadheat reps resume``.
    """
    _, book = core.playbook()
    now = core.clock()

    def apply(connection: Connection) -> Taken:
        lead_id = core.find_lead(connection, lead)
        try:
            return take_lead(connection, book, now, lead_id, rep, actor)
        except AlreadyOwnedError as error:
            raise LeadTakenError(error.lead_id, error.owner) from None
        except ValueError as error:  # not an email address
            raise LeadheatError(str(error)) from None

    return core.write(apply)


def assign(core: Core, lead: str | int, rep: str, *, actor: str = DEFAULT_ACTOR) -> Assigned:
    """Make the known rep ``rep`` (an email) the owner of a lead, owned or not, audited as
    ``actor``'s from the old owner to the new, with the SLA clock a take would give them.

    This is ``leadheat assign`` and the lead page's "Assign": a hot lead an import or a
    playbook change left unowned, or one a rep hands over. An email that is no rep's raises
    :class:`LeadheatError` naming it and ``leadheat reps add``; nothing changes then.
    """
    _, book = core.playbook()
    now = core.clock()

    def apply(connection: Connection) -> Assigned:
        lead_id = core.find_lead(connection, lead)
        try:
            return assign_lead(connection, book, now, lead_id, rep, actor)
        except reps.UnknownRepError as error:
            raise LeadheatError(str(error)) from None

    return core.write(apply)


MAX_BULK = 500
"""Leads one bulk assign may hand over: a few pages of Lists."""


def assign_many(
    core: Core, leads: Sequence[str | int], rep: str, *, actor: str = DEFAULT_ACTOR
) -> list[Assigned]:
    """:func:`assign` for many leads at once (Lists' bulk "Assign"), in one transaction:
    each one audited from its old owner to ``rep`` and its clock following as for a single
    assign, or, when a lead or the rep is unknown, none of them."""
    if not leads:
        raise LeadheatError("choose at least one lead to assign")
    if len(leads) > MAX_BULK:
        raise LeadheatError(f"{len(leads)} leads chosen; assign at most {MAX_BULK} at once")
    _, book = core.playbook()
    now = core.clock()

    def apply(connection: Connection) -> list[Assigned]:
        ids = list(dict.fromkeys(core.find_lead(connection, lead) for lead in leads))
        lock_states(connection, sorted(ids))  # every lead before the reps, as writes lock
        try:
            return [assign_lead(connection, book, now, lead_id, rep, actor) for lead_id in ids]
        except reps.UnknownRepError as error:
            raise LeadheatError(str(error)) from None

    return core.write(apply)


ADOPT_LIMIT = 500
"""Hot leads nobody owns handled per call: the top of the heat index, as Hot now shows them."""


@dataclass(frozen=True)
class Adopted:
    """What :func:`adopt_unowned` did: each hot lead it found unowned, with its new owner
    (``None``: no rep could take it, so it waits for "Take it"), and the alerts queued."""

    leads: tuple[tuple[int, str | None], ...]
    alerts: int

    @property
    def assigned(self) -> int:
        return sum(1 for _, owner in self.leads if owner is not None)

    @property
    def waiting(self) -> int:
        return sum(1 for _, owner in self.leads if owner is None)


def adopt_unowned(core: Core) -> Adopted:
    """Give the hot leads nobody owns, and that no SLA clock watches, what the ``hot``
    trigger gives a lead a live event makes hot: an owner by the playbook's owner rules and
    round robin (audited as ``speed-to-lead``'s), the clock, and the alerts, the manager's
    included. An import (``--no-triggers``, its default) or a playbook change makes leads
    hot without firing a trigger; without this they would wait unowned, on nobody's Mine.
    A lead no rep has room for stays unowned at the top of everyone's Hot now, and its
    manager is alerted all the same. Nothing happens while speed to lead is off."""
    version, book = core.playbook()
    now = core.clock()
    if not book.speed.enabled:
        return Adopted((), 0)

    def apply(connection: Connection) -> Adopted:
        found = [r.lead_id for r in unowned_hot_leads(connection, book, now, ADOPT_LIMIT)]
        if not found:
            return Adopted((), 0)
        lock_states(connection, sorted(found))
        dispatcher = Dispatcher(connection, book, now)
        leads = dispatcher.adopt(found)
        return Adopted(tuple(leads), dispatcher.notices)

    adopted = core.write(apply, version)
    if adopted.alerts:
        core.outbox_ready.set()
    return adopted
