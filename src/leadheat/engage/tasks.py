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
  and overdue time is counted in working time (beside the calendar time people read);
* a lead disqualified by its fit (a student, an intern) gets none: there is nothing to sell.

Tasks are listed in the order that sells (:func:`selling_order`): hot leads nobody has
contacted yet first, longest waiting first; then overdue tasks by temperature; then the rest
by when they are due.
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
    late_by: timedelta = timedelta(0)
    """Calendar time since ``due`` (zero when not overdue): "3d 2h overdue" as a person
    counts it, where ``overdue_by`` may say 14h of working time. (A default, so that a
    dashboard snapshot stored before it existed still reads.)"""

    @property
    def never_contacted(self) -> bool:
        return self.last_touch is None


_HOTTEST_FIRST = {Temperature.HOT: 0, Temperature.WARM: 1, Temperature.COLD: 2}


def selling_order(task: Task) -> tuple[int, int, datetime, int]:
    """The sort key of the order that sells: a hot lead nobody has contacted yet first (the
    longest waiting first), then overdue tasks hottest first (most overdue first within a
    temperature), then the rest by when they are due.

    >>> from datetime import UTC
    >>> def task(temp, due, touched=None, overdue=True):
    ...     return Task(1, "x", None, None, temp, datetime(2026, 1, due, tzinfo=UTC), overdue,
    ...                 timedelta(0), "", "", touched, "1d")
    >>> found = [task(Temperature.COLD, 1), task(Temperature.WARM, 2),
    ...          task(Temperature.HOT, 9, datetime(2026, 1, 1, tzinfo=UTC)),
    ...          task(Temperature.HOT, 5), task(Temperature.HOT, 3),
    ...          task(Temperature.HOT, 20, overdue=False)]
    >>> [(t.temperature.value, t.due.day) for t in sorted(found, key=selling_order)]
    [('hot', 3), ('hot', 5), ('hot', 20), ('hot', 9), ('warm', 2), ('cold', 1)]
    """
    if task.temperature is Temperature.HOT and task.never_contacted:
        return (0, 0, task.due, task.lead_id)
    if task.overdue:
        return (1, _HOTTEST_FIRST[task.temperature], task.due, task.lead_id)
    return (2, 0, task.due, task.lead_id)


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
    due = due_of(
        temperature=temperature,
        since=since,
        rose=rose,
        created_at=created_at,
        last_touch=last_touch,
        rule=rule,
        calendar=calendar,
        business_hours=business_hours,
    )
    if last_touch is None:
        if temperature is Temperature.COLD:
            reason = f"cold and never contacted: a nurture touch every {rule.every}"
        else:
            reason = f"{word} since {_when(since)} and never contacted"
    elif _rose_after(temperature, since, rose, last_touch, rule, calendar, business_hours):
        reason = f"turned {word} {_when(since)}, {_ago(since, last_touch)} after the last touch"
    else:
        reason = f"{word}; last touch {_when(last_touch)}; follow up every {rule.every}"
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
        at - due if overdue else timedelta(0),
    )


def due_of(
    *,
    temperature: Temperature,
    since: datetime,
    rose: bool,
    created_at: datetime,
    last_touch: datetime | None,
    rule: CadenceRule,
    calendar: BusinessCalendar,
    business_hours: bool,
) -> datetime:
    """When the task :func:`plan` gives is due (which does not depend on when it is asked)."""
    if last_touch is None:
        if temperature is Temperature.COLD:
            return _later(created_at, rule.every, calendar, business_hours)
        return calendar.add(since, timedelta(0)) if business_hours else since
    due = _later(last_touch, rule.every, calendar, business_hours)
    if rose and since > last_touch and due < since:  # heated up after the cadence ran out
        return calendar.add(since, timedelta(0)) if business_hours else since
    return due


def _rose_after(
    temperature: Temperature,
    since: datetime,
    rose: bool,
    last_touch: datetime,
    rule: CadenceRule,
    calendar: BusinessCalendar,
    business_hours: bool,
) -> bool:
    """Whether the lead turned hotter after its last touch, later than one cadence after it:
    then it is due when it turned."""
    return (
        rose
        and since > last_touch
        and _later(last_touch, rule.every, calendar, business_hours) < since
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
