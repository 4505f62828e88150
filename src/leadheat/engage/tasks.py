"""Follow-up tasks: when the owner should next get in touch with a lead, and why.

A task is not stored: it is what the playbook's cadence says about the lead's history, so
it is exact at any instant (``--at``), a touch completes it by being recorded, and a change
of temperature re-plans it without a job having to notice. The rules:

* never touched: a hot or warm lead is due when it turned hot or warm (first contact); a
  cold one gets a nurture touch one cold cadence after it arrived;
* touched: due one cadence (of the temperature now) after the last touch; a lead that
  turned hotter since that touch is due on the hotter cadence, but never before the moment
  it turned (heating up brings the follow-up forward, not into the past before the rise);
* the due instant falls in the owner's team hours when ``[cadence] business_hours`` is on,
  and overdue time is counted in working time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from leadheat.playbook import CadenceRule
from leadheat.scoring.temperature import Temperature
from leadheat.speed.calendar import BusinessCalendar, working_span
from leadheat.times import format_duration


@dataclass(frozen=True)
class Task:
    """One follow-up the owner owes a lead."""

    lead_id: int
    lead: str
    name: str | None
    owner: str | None
    temperature: Temperature
    due: datetime
    overdue: bool
    overdue_by: timedelta
    """Working time since ``due`` (zero when not overdue)."""
    reason: str
    next_step: str
    last_touch: datetime | None
    cadence: str


def _later(start: datetime, every: str, calendar: BusinessCalendar, hours: bool) -> datetime:
    span, working = working_span(every, calendar)
    if working:
        return calendar.add(start, span)
    due = start + span
    return calendar.add(due, timedelta(0)) if hours else due


def plan(
    *,
    lead_id: int,
    lead: str,
    name: str | None,
    owner: str | None,
    temperature: Temperature,
    since: datetime,
    rose: bool,
    created_at: datetime,
    last_touch: datetime | None,
    rule: CadenceRule,
    calendar: BusinessCalendar,
    business_hours: bool,
    at: datetime,
) -> Task:
    """The task of one lead at ``at``; ``since`` is when it took its temperature and
    ``rose`` whether it got there by heating up."""
    word = temperature.value
    if last_touch is None:
        if temperature is Temperature.COLD:
            due = _later(created_at, rule.every, calendar, business_hours)
            reason = f"cold and never contacted: a nurture touch every {rule.every}"
        else:
            due = calendar.add(since, timedelta(0)) if business_hours else since
            reason = f"{word} since {_when(since)} and never contacted"
    else:
        due = _later(last_touch, rule.every, calendar, business_hours)
        reason = f"{word}; last touch {_when(last_touch)}; follow up every {rule.every}"
        if rose and since > last_touch and due < since:
            due = calendar.add(since, timedelta(0)) if business_hours else since
            reason = f"turned {word} {_when(since)}, {_ago(since, last_touch)} after the last touch"
    overdue = at > due
    counted = calendar if business_hours else None
    late = (counted.between(due, at) if counted else at - due) if overdue else timedelta(0)
    return Task(
        lead_id,
        lead,
        name,
        owner,
        temperature,
        due,
        overdue,
        late,
        reason,
        rule.next_step,
        last_touch,
        rule.every,
    )


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _ago(later: datetime, earlier: datetime) -> str:
    """A span for people: whole days, or hours, or minutes.

    >>> _ago(datetime(2026, 1, 11, 5), datetime(2026, 1, 1))
    '10d'
    """
    span = max(later - earlier, timedelta(0))
    for unit in (timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)):
        if span >= unit:
            return format_duration(span // unit * unit)
    return "0m"
