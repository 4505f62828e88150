"""Reacting to a write, inside its transaction: which triggers fired, who owns the lead,
when the SLA clock runs out, and which notifications go into the outbox.

Because all of it commits with the change (or not at all), a lead that turned hot always
has its clock and its alerts, and a rolled-back write leaves no alert behind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from leadheat.playbook import TRIGGER_NAMES, Alert, Playbook, Speed, TriggerRule
from leadheat.scoring.lead import LeadHistory, one_line_reason, score_history
from leadheat.scoring.temperature import Temperature
from leadheat.speed.accounts import account_owners
from leadheat.speed.assignment import choose, eligible
from leadheat.speed.calendar import BusinessCalendar, deadline, sla_span
from leadheat.speed.triggers import Fired, LeadChange, Standing, fired, most_urgent
from leadheat.store import audit
from leadheat.store.audit import AuditAction, lead_subject
from leadheat.store.clocks import (
    ClockStart,
    ClockView,
    due_clocks,
    mark_breached,
    new_clock,
    start_clocks,
)
from leadheat.store.database import reader_of
from leadheat.store.driver import select_tuples_in
from leadheat.store.fields import lead_attributes
from leadheat.store.history import load_histories
from leadheat.store.leads import lead_rows
from leadheat.store.models import Lead, SlaClock, User
from leadheat.store.outbox import enqueue
from leadheat.store.ranking import judge_leads
from leadheat.store.reps import Rep, list_reps, open_hot_counts, record_assignment
from leadheat.store.state import lock_states
from leadheat.times import format_duration, from_micros, isoformat

Arrivals = Mapping[int, Sequence[tuple[str, datetime]]]


def standings(
    connection: Connection, book: Playbook, now: datetime, lead_ids: Iterable[int]
) -> dict[int, Standing]:
    """Each lead's temperature, qualification and status now (leads with no state yet are
    left out: they did not exist before the write). No reason in words: no trigger reads it,
    and wording it was a fifth of judging the leads."""
    return {
        lead_id: Standing(item.verdict.temperature, item.facts.qualified, item.status)
        for lead_id, item in judge_leads(
            connection, book, now, list(lead_ids), explain=False
        ).items()
    }


class Dispatcher:
    """One reaction: compares standings, assigns, starts clocks, fills the outbox."""

    def __init__(self, connection: Connection, book: Playbook, now: datetime) -> None:
        self.connection = connection
        self.book = book
        self.now = now
        self.notices = 0
        self._reps: list[Rep] | None = None
        self._open_hot: Counter[str] | None = None
        self._users: set[str] | None = None
        self._account_owners: dict[int, tuple[str, str] | None] = {}

    # -- reps ---------------------------------------------------------------------------
    def reps(self) -> list[Rep]:
        if self._reps is None:
            self._reps = list_reps(self.connection, lock=True)
        return self._reps

    def open_hot(self) -> Counter[str]:
        """Open hot leads of the reps that have a capacity (the only ones it matters for:
        counting costs a look at each of their hot leads)."""
        if self._open_hot is None:
            limited = [rep.email for rep in self.reps() if rep.capacity is not None]
            self._open_hot = open_hot_counts(self.connection, self.book, self.now, limited)
        return self._open_hot

    def _rep(self, email: str | None) -> Rep | None:
        if email is None:
            return None
        return next((r for r in self.reps() if r.email.casefold() == email.casefold()), None)

    def known(self, email: str) -> bool:
        """Whether ``email`` is someone of the team: a rep or a dashboard user. Alerts for
        an owner go only to them; a lead's owner field alone (an import, an API client) does
        not make an address someone who may read about the lead."""
        if self._rep(email) is not None:
            return True
        if self._users is None:
            self._users = {
                found.casefold() for found in self.connection.execute(select(User.email)).scalars()
            }
        return email.casefold() in self._users

    def assign(
        self, lead_id: int, attributes: Mapping[str, Any], hot: bool, exclude: str | None = None
    ) -> tuple[Rep | None, str]:
        """Choose and record an owner for the lead; ``(None, why)`` when nobody can take it.

        A lead of an account someone owns goes to that owner (if an active rep) before any
        owner rule or round robin: one company, one rep."""
        owned = self._account_owner(lead_id)
        rep = self._rep(owned[1]) if owned is not None else None
        if owned is not None and rep is not None and rep.active and rep.email != exclude:
            why = f"owner of account {owned[0]}"
        else:
            candidates, why = eligible(self.book.speed.owners, attributes, self.reps())
            if exclude is not None:
                candidates = [rep for rep in candidates if rep.email != exclude]
            rep = choose(candidates, self.open_hot())
        if rep is None:
            return None, f"{why}: no active rep with room"
        previous = self.connection.execute(
            select(Lead.owner).where(Lead.id == lead_id)
        ).scalar_one_or_none()
        self.connection.execute(
            update(Lead).where(Lead.id == lead_id).values(owner=rep.email, updated_at=self.now)
        )
        record_assignment(self.connection, rep.email, self.now)
        audit.record(
            self.connection,
            self.now,
            "speed-to-lead",
            AuditAction.OWNER,
            lead_subject(lead_id),
            {"from": previous, "to": rep.email, "why": why},
        )
        self._reps = [
            replace(r, assigned=r.assigned + 1, last_assigned_at=self.now)
            if r.email == rep.email
            else r
            for r in self.reps()
        ]
        if hot:
            self.open_hot()[rep.email] += 1
        return rep, why

    # -- reacting to a write ------------------------------------------------------------
    def react(
        self, before: Mapping[int, Standing], lead_ids: Iterable[int], arrived: Arrivals
    ) -> int:
        """Fire the triggers of every lead the write touched; returns notifications queued."""
        speed = self.book.speed
        if not speed.enabled:
            return 0
        lead_ids = list(lead_ids)
        self._owned_accounts(before, lead_ids)
        after = standings(self.connection, self.book, self.now, lead_ids)
        candidates = [
            lead_id
            for lead_id, standing in after.items()
            if standing.status == "open"
            and (
                standing.temperature is not Temperature.COLD
                or standing.qualified
                or lead_id in arrived
            )
        ]
        if not candidates:
            return 0
        # who they are and who owns them: what the triggers ask of every candidate (the
        # whole row, attributes and all, is read for those a trigger fires for)
        known = {
            lead_id: (from_micros(created_us), owner)
            for lead_id, created_us, owner in select_tuples_in(
                self.connection, "SELECT id, created_at, owner FROM leads WHERE id IN", candidates
            )
        }
        spans = {
            name: sla_span(speed.trigger(name), BusinessCalendar.of(speed.team(None)))
            for name in TRIGGER_NAMES
        }
        rules = [speed.trigger(name) for name in TRIGGER_NAMES]
        chosen: dict[int, Fired] = {}
        for lead_id in sorted(candidates):
            created_at, owner = known[lead_id]
            change = LeadChange(
                lead_id,
                before.get(lead_id),
                after[lead_id],
                created_at,
                owner,
                arrived.get(lead_id, ()),
            )
            urgent = most_urgent(lead_id, fired(change, speed, self.now, rules), spans)
            if urgent is not None:
                chosen[lead_id] = urgent
        if not chosen:
            return 0
        rows = lead_rows(self.connection, sorted(chosen))
        queued = self._fire_all(chosen, rows, after)
        self.notices += queued
        return queued

    def _owned_accounts(self, before: Mapping[int, Standing], lead_ids: Sequence[int]) -> None:
        """New leads nobody owns, of an account someone does, go to the account's owner."""
        fresh = [lead for lead in lead_ids if lead not in before]
        if not fresh:
            return
        unowned = {
            row[0]
            for row in self.connection.execute(
                select(Lead.id).where(Lead.id.in_(fresh), Lead.owner.is_(None))
            )
        }
        self._know_account_owners(unowned)
        for lead in sorted(unowned):
            owned = self._account_owner(lead)
            rep = self._rep(owned[1]) if owned is not None else None
            if rep is not None and rep.active:
                self.assign(lead, {}, False)

    def _know_account_owners(self, lead_ids: Iterable[int]) -> None:
        """Read the account owners of these leads in one query (a write's new leads are
        looked up twice, before the triggers and when assigned; one query each was a
        tenth of a batch's reaction)."""
        unknown = [lead for lead in lead_ids if lead not in self._account_owners]
        if unknown:
            found = account_owners(self.connection, unknown)
            self._account_owners.update((lead, found.get(lead)) for lead in unknown)

    def _account_owner(self, lead_id: int) -> tuple[str, str] | None:
        """``(account key, owner)`` of the lead's account when someone owns it; account
        owners do not change within one reaction."""
        self._know_account_owners([lead_id])
        return self._account_owners[lead_id]

    def _fire_all(
        self,
        chosen: Mapping[int, Fired],
        rows: Mapping[int, Mapping[Any, Any]],
        after: Mapping[int, Standing],
    ) -> int:
        """Each chosen trigger: an owner (assigned in lead order, as reps take turns), one
        clock per lead (started together), and the alerts that want it, whose payload
        scores the lead from its history (read only for leads that have an alert to send)."""
        speed = self.book.speed
        owners: dict[int, tuple[Rep | None, str | None, str]] = {}
        starts: list[ClockStart] = []
        dues: dict[tuple[str, str | None], datetime] = {}
        self._know_account_owners(lead for lead in chosen if rows[lead]["owner"] is None)
        for lead_id, urgent in chosen.items():
            row = rows[lead_id]
            owner = self._rep(row["owner"])
            owner_email = row["owner"]
            assignment = "kept the lead's owner"
            if owner_email is None:
                owner, assignment = self.assign(
                    lead_id, lead_attributes(row), after[lead_id].temperature is Temperature.HOT
                )
                owner_email = owner.email if owner is not None else None
            owners[lead_id] = (owner, owner_email, assignment)
            team_name = owner.team if owner is not None else speed.default_team
            due = dues.get((urgent.rule.name, team_name))
            if due is None:  # the same for every lead of a write with this rule and team
                due, _ = deadline(urgent.rule, speed.team(team_name), self.now)
                dues[urgent.rule.name, team_name] = due
            starts.append(
                ClockStart(
                    lead_id,
                    urgent.rule.name,
                    owner_email,
                    team_name,
                    urgent.rule.business_hours,
                    self.now,
                    due,
                )
            )
        clocks = start_clocks(self.connection, starts)
        alerted = [
            lead_id
            for lead_id, urgent in chosen.items()
            if any(alert.wants(urgent.rule.name) for alert in speed.alerts)
        ]
        histories = load_histories(reader_of(self.connection), alerted, rows) if alerted else {}
        queued = 0
        for (lead_id, urgent), (clock_id, due) in zip(chosen.items(), clocks, strict=True):
            if lead_id not in histories:
                continue  # no alert wants this trigger: the clock is all it starts
            owner, owner_email, assignment = owners[lead_id]
            history = histories[lead_id]
            if owner_email is not None and rows[lead_id]["owner"] is None:
                # assigned just now: the history was read with the lead's row from before
                history = replace(history, attributes={**history.attributes, "owner": owner_email})
            queued += self._fire(
                urgent, rows[lead_id], history, owner, owner_email, assignment, clock_id, due
            )
        return queued

    def adopt(self, lead_ids: Sequence[int]) -> list[tuple[int, str | None]]:
        """Hot leads nobody owns and no clock watches, left so by a write that fired no
        trigger (an import, a playbook change): each is handled as the ``hot`` trigger
        would handle a live event, owner by the owner rules and round robin, clock and
        alerts (the team's manager is told even when no rep has room). Returns each lead
        with its new owner (``None``: still nobody's, waiting for "Take it")."""
        speed = self.book.speed
        if not speed.enabled or not lead_ids:
            return []
        after = standings(self.connection, self.book, self.now, lead_ids)
        rows = {
            row["id"]: row
            for row in self.connection.execute(
                select(Lead).where(Lead.id.in_(list(lead_ids)), Lead.owner.is_(None))
            ).mappings()
        }
        running = set(
            self.connection.execute(
                select(SlaClock.lead_id).where(
                    SlaClock.lead_id.in_(list(rows)), SlaClock.stopped_at.is_(None)
                )
            ).scalars()
        )
        chosen = [
            lead_id
            for lead_id in sorted(rows)
            if lead_id not in running
            and lead_id in after
            and after[lead_id].status == "open"
            and after[lead_id].temperature is Temperature.HOT
        ]
        adopted = []
        for lead_id in chosen:  # one at a time: reps take turns in lead order
            fire = Fired(lead_id, speed.trigger("hot"), ())
            self.notices += self._fire_all({lead_id: fire}, rows, after)
            owner = self.connection.execute(
                select(Lead.owner).where(Lead.id == lead_id)
            ).scalar_one()
            adopted.append((lead_id, owner))
        return adopted

    def _fire(
        self,
        chosen: Fired,
        row: Mapping[Any, Any],
        history: LeadHistory,
        owner: Rep | None,
        owner_email: str | None,
        assignment: str,
        clock_id: int,
        due: datetime,
    ) -> int:
        rule = chosen.rule
        speed = self.book.speed
        team_name = owner.team if owner is not None else speed.default_team
        team = speed.team(team_name)
        score = score_history(history, self.book, self.now)
        payload: dict[str, Any] = {
            "trigger": rule.name,
            "also": list(chosen.also),
            "at": isoformat(self.now),
            "lead": {
                **_who(row),
                "temperature": score.temperature.value,
                "grade": score.grade,
                "heat": round(score.heat, 3),
                "fit": score.fit.points,
                "hot_until": isoformat(score.hot_until) if score.hot_until else None,
                "pulled_down": [
                    {"type": s.type, "heat": round(s.heat, 3)} for s in score.pulled_down
                ],
            },
            "owner": _owner(owner, owner_email),
            "assignment": assignment,
            "manager": team.manager,
            "team": team_name,
            "why": f"{score.reason}. {one_line_reason(score)}",
            "action": rule.action,
            "sla": rule.sla,
            "deadline": isoformat(due),
            "business_hours": rule.business_hours,
        }
        return self._queue(rule.name, row["id"], clock_id, payload)

    def _queue(self, trigger: str, lead_id: int, clock_id: int, payload: dict[str, Any]) -> int:
        queued = 0
        owner = (payload.get("owner") or {}).get("email")
        owner_known = owner is not None and self.known(owner)
        for alert in self.book.speed.alerts:
            if not alert.wants(trigger):
                continue
            target = _target(alert, payload, owner_known)
            if not target:
                continue
            enqueue(
                self.connection,
                lead_id=lead_id,
                clock_id=clock_id,
                trigger=trigger,
                channel=alert.channel,
                target=target,
                secret_env=alert.secret_env if alert.channel == "webhook" else None,
                payload=payload,
                now=self.now,
            )
            queued += 1
        return queued

    # -- the clock running out ----------------------------------------------------------
    def escalate(self, limit: int = 100) -> int:
        """Mark clocks past their deadline as breached, tell the owner's manager (and
        reassign, if the playbook says so). Returns clocks escalated."""
        clocks = due_clocks(self.connection, self.now, limit)
        # lead states before reps, as every write does, so that no two transactions wait
        # for each other in a circle
        lock_states(self.connection, sorted({clock.lead_id for clock in clocks}))
        for clock in clocks:
            mark_breached(self.connection, clock.id, self.now)
            self.notices += self._breach(clock)
        return len(clocks)

    def _breach(self, clock: ClockView) -> int:
        speed = self.book.speed
        row = self.connection.execute(select(Lead).where(Lead.id == clock.lead_id)).mappings().one()
        team = speed.team(clock.team)
        rule = _rule(speed, clock.trigger)
        reassigned = None
        if speed.reassign_on_breach and speed.enabled:
            rep, _ = self.assign(clock.lead_id, lead_attributes(row), False, exclude=clock.owner)
            if rep is not None:
                reassigned = rep.email
                due, _ = deadline(rule, speed.team(rep.team), self.now)
                new_clock(
                    self.connection,
                    clock.lead_id,
                    clock.trigger,
                    rep.email,
                    rep.team,
                    rule.business_hours,
                    self.now,
                    due,
                )
        overdue = self.now - clock.deadline
        payload: dict[str, Any] = {
            "trigger": "sla_breach",
            "also": [],
            "at": isoformat(self.now),
            "lead": _who(row),
            "owner": _owner(self._rep(clock.owner), clock.owner),
            "manager": team.manager,
            "team": clock.team,
            "why": f"no touch within the {clock.trigger} SLA",
            "action": "Call the lead now, or reassign it.",
            "sla": rule.sla,
            "deadline": isoformat(clock.deadline),
            "breach": {
                "trigger": clock.trigger,
                "started_at": isoformat(clock.started_at),
                "deadline": isoformat(clock.deadline),
                "overdue_by": format_duration(max(timedelta(seconds=overdue // _SECOND), _SECOND)),
                "reassigned_to": reassigned,
            },
        }
        return self._queue("sla_breach", clock.lead_id, clock.id, payload)


_SECOND = timedelta(seconds=1)


def _rule(speed: Speed, name: str) -> TriggerRule:
    """The trigger a stored clock was started by (``hot`` if the name is no longer known)."""
    return speed.trigger(next((known for known in TRIGGER_NAMES if known == name), "hot"))


def _who(row: Mapping[Any, Any]) -> dict[str, Any]:
    """Who the lead is, as every alert names them."""
    return {name: row[name] for name in ("id", "email", "name", "title", "company")}


def _owner(rep: Rep | None, email: str | None) -> dict[str, Any] | None:
    if email is None:
        return None
    return {"email": email, "name": rep.name if rep is not None else None}


def _target(alert: Alert, payload: Mapping[str, Any], owner_known: bool) -> str:
    """Where an alert goes: its URL, or its e-mail addresses with ``owner`` and ``manager``
    filled in. ``owner`` is the owner only when they are ``owner_known`` (a rep or a dashboard
    user), and the team's manager otherwise: an address in a lead's owner field is not
    someone to mail the lead's details to."""
    if alert.channel != "email":
        return str(alert.url)
    owner = payload.get("owner") or {}
    addresses = []
    for to in alert.to:
        if to == "owner":
            address = (owner.get("email") if owner_known else None) or payload.get("manager")
        elif to == "manager":
            address = payload.get("manager")
        else:
            address = to
        if address and address not in addresses:
            addresses.append(address)
    return ", ".join(addresses)
