"""The lists that keep leads from going cold by neglect: follow-up tasks, lost hot leads,
and win-back lists with the conversion the team's own history predicts for them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update

from leadheat.engage.expect import Expectation, age_bucket, expect, marks
from leadheat.engage.followup import indexed_tasks, lead_label, lost_candidates
from leadheat.engage.followup import text_of as _text
from leadheat.engage.spells import RANK, spells
from leadheat.engage.tasks import Task, plan, selling_order
from leadheat.playbook import Playbook
from leadheat.scoring.lead import score_history, status_at
from leadheat.scoring.temperature import Temperature
from leadheat.speed.calendar import BusinessCalendar
from leadheat.store.models import Lead
from leadheat.store.reps import list_reps
from leadheat.store.state import refresh_facts
from leadheat.store.training import Lived, load_everything

if TYPE_CHECKING:
    from leadheat.service import Leadheat


def _open_at(lived: Sequence[Lived], at: datetime) -> list[Lived]:
    return [
        lead
        for lead in lived
        if lead.created_at <= at and status_at(lead.history.outcomes, at) == "open"
    ]


def _load(
    lh: Leadheat, owner: str | None = None, lead_ids: Sequence[int] | None = None
) -> tuple[Playbook, list[Lived], dict[str, str]]:
    """The playbook, the leads' histories (only one owner's, or only ``lead_ids``, if given)
    and reps' teams."""
    _, book = lh.playbook()
    with lh.engine.connect() as connection:
        ids = list(lead_ids) if lead_ids is not None else None
        if owner is not None:
            ids = list(
                connection.execute(
                    select(Lead.id).where(func.lower(Lead.owner) == owner.casefold())
                ).scalars()
            )
            if lead_ids is not None:
                wanted = set(lead_ids)
                ids = [lead_id for lead_id in ids if lead_id in wanted]
        lived = load_everything(connection, ids)
        teams = {rep.email.casefold(): rep.team for rep in list_reps(connection)}
    return book, lived, teams


def tasks(
    lh: Leadheat,
    *,
    at: datetime | None = None,
    owner: str | None = None,
    overdue: bool = False,
    limit: int | None = None,
    lead_ids: Sequence[int] | None = None,
) -> list[Task]:
    """Every open lead's next follow-up at ``at`` (now), in the order that sells
    (:func:`selling_order`: hot leads never contacted first); none for a lead its fit
    disqualifies or one with an outcome. Only the leads in ``lead_ids`` when given (the
    dashboard patches its snapshot with one lead's task).

    From the kept follow-up state (:mod:`leadheat.engage.followup`), with the few leads that
    have a fact or touch after ``at`` replayed; by replaying every lead's history when many
    do (time travel)."""
    at = at or lh.clock()
    if lead_ids is None:
        kept = indexed_tasks(lh, at, owner=owner, overdue=overdue, limit=limit)
        if kept is not None:
            if not kept.late:
                return kept.found
            late = replayed_tasks(lh, at=at, overdue=overdue, lead_ids=kept.late)
            found = sorted([*kept.found, *late], key=selling_order)
            return found[:limit] if limit is not None else found
    return replayed_tasks(lh, at=at, owner=owner, overdue=overdue, limit=limit, lead_ids=lead_ids)


def replayed_tasks(
    lh: Leadheat,
    *,
    at: datetime,
    owner: str | None = None,
    overdue: bool = False,
    limit: int | None = None,
    lead_ids: Sequence[int] | None = None,
) -> list[Task]:
    """:func:`tasks` by replaying every lead's history: exact at any instant."""
    book, lived, teams = _load(lh, owner, lead_ids)
    cadence = book.cadence
    found = []
    for lead in _open_at(lived, at):
        attributes = dict(lead.history.attributes)
        lead_owner = _text(attributes, "owner")
        touches = [t for t in lead.touches if t <= at]
        last_touch = touches[-1] if touches else None
        start = max(last_touch or lead.created_at, lead.created_at)
        score = score_history(lead.history, book, at)
        if score.fit.disqualified_by:  # a student, an intern: nothing to follow up
            continue
        temperature = score.temperature
        rule = cadence.rule(temperature.value)
        if not rule.enabled:
            continue
        since, rose = at, False
        if temperature is not Temperature.COLD:  # a cold task never looks at when it cooled
            found_spells = spells(lead.history, book, min(start, at), at)
            current = found_spells[-1]
            previous = found_spells[-2] if len(found_spells) > 1 else None
            since = current.start
            rose = previous is None or RANK[previous.temperature] < RANK[current.temperature]
        team = teams.get(lead_owner.casefold()) if lead_owner else None
        task = plan(
            lead_id=lead.lead_id,
            lead=lead_label(attributes, lead.lead_id),
            name=_text(attributes, "name"),
            owner=lead_owner,
            temperature=temperature,
            since=since,
            rose=rose,
            created_at=lead.created_at,
            last_touch=last_touch,
            rule=rule,
            calendar=BusinessCalendar.of(book.speed.team(team)),
            business_hours=cadence.business_hours,
            at=at,
        )
        if overdue and not task.overdue:
            continue
        found.append(task)
    found.sort(key=selling_order)
    return found[:limit] if limit is not None else found


@dataclass(frozen=True)
class LostLead:
    """A lead that was hot lately and was let go: no outcome, no touch since."""

    lead_id: int
    lead: str
    name: str | None
    owner: str | None
    hot_from: datetime
    hot_until: datetime
    temperature: Temperature
    heat_then: float
    heat_now: float
    reason: str
    """Why it is no longer hot, in the scoring's words."""


def recover(
    lh: Leadheat,
    *,
    at: datetime | None = None,
    within: timedelta | None = None,
    owner: str | None = None,
    limit: int | None = None,
) -> list[LostLead]:
    """Leads hot within ``within`` of ``at`` but not now, with no outcome and no touch since
    they turned hot; most recently hot first.

    The leads come from the kept follow-up state (:mod:`leadheat.engage.followup`), and only
    those, with the few that have a fact or touch after ``at``, are replayed; every lead is
    replayed when many have (time travel)."""
    at = at or lh.clock()
    _, book = lh.playbook()
    window = within if within is not None else book.recover.within
    kept = lost_candidates(lh, at, window, owner=owner, limit=limit)
    if kept is not None:
        ids = [*kept.found, *kept.late]
        if not ids:
            return []
        book, lived, _ = _load(lh, lead_ids=ids)
    else:
        book, lived, _ = _load(lh, owner)
    return _lost(lived, book, at, window, limit)


def replayed_recover(
    lh: Leadheat,
    *,
    at: datetime,
    within: timedelta | None = None,
    owner: str | None = None,
    limit: int | None = None,
) -> list[LostLead]:
    """:func:`recover` by replaying every lead's history: exact at any instant."""
    book, lived, _ = _load(lh, owner)
    window = within if within is not None else book.recover.within
    return _lost(lived, book, at, window, limit)


def _lost(
    lived: Sequence[Lived], book: Playbook, at: datetime, window: timedelta, limit: int | None
) -> list[LostLead]:
    start = at - window
    found = []
    for lead in _open_at(lived, at):
        attributes = dict(lead.history.attributes)
        if not any(
            event.at >= start - book.temperature.cold_after for event in lead.history.events
        ):
            continue
        timeline = spells(lead.history, book, start, at)
        hot = [spell for spell in timeline if spell.temperature is Temperature.HOT]
        if not hot or timeline[-1].temperature is Temperature.HOT:
            continue
        last = hot[-1]
        if any(last.start <= touch <= at for touch in lead.touches):
            continue
        now = score_history(lead.history, book, at)
        then = last.score  # a hot spell starts at a scored instant: its score is the heat then
        found.append(
            LostLead(
                lead.lead_id,
                lead_label(attributes, lead.lead_id),
                _text(attributes, "name"),
                _text(attributes, "owner"),
                last.start,
                last.end,
                now.temperature,
                then.heat,
                now.heat,
                now.reason,
            )
        )
    found.sort(key=lambda lost: (-lost.hot_until.timestamp(), lost.lead_id))
    return found[:limit] if limit is not None else found


@dataclass(frozen=True)
class WinbackLead:
    lead_id: int
    lead: str
    name: str | None
    owner: str | None
    why: str
    """``trial expired``, ``cancelled`` or ``old list``."""
    age: timedelta
    age_bucket: str
    last_engaged_at: datetime | None


@dataclass(frozen=True)
class WinbackList:
    at: datetime
    older_than: timedelta
    horizon: timedelta
    leads: list[WinbackLead]
    expectation: Expectation


def winback(
    lh: Leadheat,
    *,
    at: datetime | None = None,
    older_than: timedelta | None = None,
    churned: bool = True,
    horizon: timedelta | None = None,
) -> WinbackList:
    """Cold leads that were engaged before — expired trials, cancelled customers (their
    last churn event after their last interest) and leads on the list longer than
    ``older_than`` — with the conversion rate past leads like them reached."""
    at = at or lh.clock()
    book, lived, _ = _load(lh)
    oldest = older_than if older_than is not None else book.winback.older_than
    span = horizon if horizon is not None else book.winback.horizon
    churn_types = set(book.temperature.churn_events)
    members = []
    for lead in _open_at(lived, at):
        score = score_history(lead.history, book, at)
        if score.temperature is not Temperature.COLD or score.last_engaged_at is None:
            continue
        attributes = dict(lead.history.attributes)
        age = at - lead.created_at
        churn = [e for e in lead.history.events if e.type in churn_types and e.at <= at]
        why = None
        if churned and churn and churn[-1].at >= score.last_engaged_at:
            why = "trial expired" if "trial" in churn[-1].type else "cancelled"
        elif age >= oldest:
            why = "old list"
        if why is None:
            continue
        members.append(
            WinbackLead(
                lead.lead_id,
                lead_label(attributes, lead.lead_id),
                _text(attributes, "name"),
                _text(attributes, "owner"),
                why,
                age,
                age_bucket(age),
                score.last_engaged_at,
            )
        )
    rates = marks(lived, book, span, at)
    expectation = expect([("cold", member.age_bucket) for member in members], rates)
    members.sort(key=lambda member: (-member.age, member.lead_id))
    return WinbackList(at, oldest, span, members, expectation)


def mark_winback(lh: Leadheat, found: WinbackList) -> int:
    """Tag the list's leads ``previously_engaged`` (with the list's date), in one
    transaction, so that lists, exports and fit rules can tell them from never-engaged cold
    leads. Returns leads marked."""
    ids = [lead.lead_id for lead in found.leads]
    if not ids:
        return 0
    day = found.at.date().isoformat()
    now = lh.clock()
    with lh.transaction() as connection:
        version, book = lh.playbook_in(connection)
        rows = connection.execute(
            select(Lead.id, Lead.attributes, Lead.public_fields).where(Lead.id.in_(ids))
        )
        marks = {"previously_engaged": True, "winback_list": day}
        for lead_id, attributes, by_public in list(rows):
            merged = {**(attributes or {}), **marks}
            public = sorted(set(by_public or ()) - marks.keys()) or None  # the team's now
            connection.execute(
                update(Lead)
                .where(Lead.id == lead_id)
                .values(attributes=merged, updated_at=now, public_fields=public)
            )
        refresh_facts(connection, book, version, ids)
    return len(ids)
