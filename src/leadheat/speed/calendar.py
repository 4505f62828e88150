"""Business time: SLA clocks that run only while the team works.

A 5-minute SLA that starts on Friday at 16:58 in a 09:00–17:00 team ends on Monday at
09:03; a lead that turns hot at 03:00 is due at 09:05. Days are taken in the team's own time
zone (daylight-saving shifts included), so "09:00" is nine o'clock where the reps sit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property, lru_cache
from zoneinfo import ZoneInfo

from leadheat.playbook import Team, TriggerRule
from leadheat.times import parse_duration

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ONE_DAY = timedelta(days=1)
SEARCH_DAYS = 3 * 366
"""How far ahead an open hour is looked for before a calendar is declared closed for good."""


class ClosedCalendarError(ValueError):
    """A calendar with no working hours in the next few years: no deadline can be set."""


@dataclass(frozen=True)
class BusinessCalendar:
    """When a team works: weekdays, daily hours and holidays, in its time zone.

    >>> from leadheat.playbook import Team
    >>> cal = BusinessCalendar.of(Team())  # Mon–Fri 09:00–17:00 UTC
    >>> friday = datetime(2026, 11, 20, 16, 58, tzinfo=UTC)
    >>> cal.add(friday, timedelta(minutes=5)).isoformat()
    '2026-11-23T09:03:00+00:00'
    >>> cal.between(friday, datetime(2026, 11, 23, 9, 3, tzinfo=UTC))
    datetime.timedelta(seconds=300)
    """

    zone: ZoneInfo
    weekdays: frozenset[int]
    opens: time
    closes: time | None
    """``None`` when the day ends at 24:00."""
    holidays: frozenset[date]

    @staticmethod
    def of(team: Team) -> BusinessCalendar:
        start, end = team.hours.split("-")
        return BusinessCalendar(
            zone=ZoneInfo(team.timezone),
            weekdays=frozenset(_DAYS.index(day) for day in team.days),
            opens=time.fromisoformat(start),
            closes=None if end == "24:00" else time.fromisoformat(end),
            holidays=frozenset(team.holidays),
        )

    @property
    def always_open(self) -> bool:
        return (
            len(self.weekdays) == 7
            and self.opens == time(0)
            and self.closes is None
            and not self.holidays
        )

    @property
    def day_length(self) -> timedelta:
        """The working time of one ordinary business day."""
        opens = datetime.combine(date(2000, 1, 1), self.opens)
        closes = (
            datetime.combine(date(2000, 1, 2), time(0))
            if self.closes is None
            else datetime.combine(date(2000, 1, 1), self.closes)
        )
        return closes - opens

    @cached_property
    def _days(self) -> dict[date, tuple[datetime, datetime] | None]:
        """Each local day's working span in UTC (``None``: closed), as :meth:`_open_spans`
        has met them: a refresh of a thousand leads due on the same few days works each day
        out once (the calendar is frozen, so a day's span never changes)."""
        return {}

    def _day_span(self, day: date) -> tuple[datetime, datetime] | None:
        """The working span of one local day, in UTC, ``None`` when it is not worked."""
        if day in self._days:
            return self._days[day]
        span = None
        if day.weekday() in self.weekdays and day not in self.holidays:
            opens = datetime.combine(day, self.opens, self.zone).astimezone(UTC)
            closes = (
                datetime.combine(day + timedelta(days=1), time(0), self.zone)
                if self.closes is None
                else datetime.combine(day, self.closes, self.zone)
            ).astimezone(UTC)
            span = (opens, closes)
        self._days[day] = span
        return span

    def _open_spans(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working spans, in UTC, that end after ``start``, in order."""
        day = start.astimezone(self.zone).date() - _ONE_DAY
        for _ in range(SEARCH_DAYS):
            span = self._day_span(day)
            if span is not None and span[1] > start:
                yield max(span[0], start), span[1]
            day += _ONE_DAY
        raise ClosedCalendarError(f"no working hours within {SEARCH_DAYS} days of {start}")

    def add(self, start: datetime, span: timedelta) -> datetime:
        """The instant when ``span`` of working time has passed since ``start``."""
        if self.always_open:
            return start + span
        left = span
        for opens, closes in self._open_spans(start):
            if opens + left <= closes:
                return opens + left
            left -= closes - opens
        raise AssertionError("unreachable")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Working time from ``start`` to ``end`` (zero if ``end`` is not later).

        Long spans (a follow-up overdue for months) add whole local days from a per-year
        table of running totals instead of walking every day; the parts before the first
        and after the last local midnight are walked, so the pieces tile exactly, time-zone
        shifts included.

        >>> from leadheat.playbook import Team
        >>> cal = BusinessCalendar.of(Team(timezone="Europe/Berlin", holidays=[date(2026, 12, 25)]))
        >>> start = datetime(2026, 3, 2, 10, tzinfo=UTC)
        >>> end = datetime(2027, 2, 1, 9, tzinfo=UTC)
        >>> cal.between(start, end) == cal._walk(start, end)
        True
        """
        if end <= start:
            return timedelta(0)
        if self.always_open:
            return end - start
        first = start.astimezone(self.zone).date() + timedelta(days=1)
        last = end.astimezone(self.zone).date()
        if (last - first).days < 8:
            return self._walk(start, end)
        return (
            self._walk(start, self._midnight(first))
            + self._whole_days(first, last)
            + self._walk(self._midnight(last), end)
        )

    def _midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(0), self.zone).astimezone(UTC)

    def _whole_days(self, first: date, last: date) -> timedelta:
        """Working time of the local days ``first`` up to (not including) ``last``."""
        total = timedelta(0)
        day = first
        while day < last:
            year_end = date(day.year + 1, 1, 1)
            stop = min(last, year_end)
            running = _running_totals(self, day.year)
            start_of_year = date(day.year, 1, 1)
            total += running[(stop - start_of_year).days] - running[(day - start_of_year).days]
            day = stop
        return total

    def _walk(self, start: datetime, end: datetime) -> timedelta:
        """:meth:`between` by walking the working spans one by one."""
        if end <= start:
            return timedelta(0)
        total = timedelta(0)
        for opens, closes in self._open_spans(start):
            if opens >= end:
                break
            total += min(closes, end) - opens
        return total

    def is_open(self, at: datetime) -> bool:
        return self.between(at, at + timedelta(microseconds=1)) > timedelta(0)


@lru_cache(maxsize=256)
def _running_totals(calendar: BusinessCalendar, year: int) -> tuple[timedelta, ...]:
    """Working time of a calendar year's local days, as running totals from 1 January:
    entry ``i`` is the time in the year's first ``i`` days."""
    totals = [timedelta(0)]
    day = date(year, 1, 1)
    while day.year == year:
        following = day + timedelta(days=1)
        span = calendar._walk(calendar._midnight(day), calendar._midnight(following))
        totals.append(totals[-1] + span)
        day = following
    return tuple(totals)


ALWAYS = BusinessCalendar(ZoneInfo("UTC"), frozenset(range(7)), time(0), None, frozenset())
"""The wall clock: for triggers that ignore business hours."""


def working_span(text: str, calendar: BusinessCalendar) -> tuple[timedelta, bool]:
    """A span as the playbook writes SLAs and cadences, as ``(span, counted in working
    time)``: ``"2 business days"`` is two of this team's working days; ``"7d"`` is seven
    calendar days.

    >>> from leadheat.playbook import Team
    >>> working_span("2 business days", BusinessCalendar.of(Team()))
    (datetime.timedelta(seconds=57600), True)
    """
    words = text.split()
    if len(words) >= 2 and words[1] == "business":
        return int(words[0]) * calendar.day_length, True
    return _calendar_span(text), False


_calendar_span = lru_cache(maxsize=64)(parse_duration)
"""A cadence's calendar span, read once per text (each lead's due time asks for it)."""


def sla_span(rule: TriggerRule, calendar: BusinessCalendar) -> timedelta:
    """An SLA as working time: ``"1 business day"`` is one day's hours of this team.

    >>> from leadheat.playbook import Team, Speed
    >>> sla_span(Speed().trigger("warm"), BusinessCalendar.of(Team()))
    datetime.timedelta(seconds=28800)
    """
    return working_span(rule.sla, calendar)[0]


def deadline(rule: TriggerRule, team: Team, start: datetime) -> tuple[datetime, BusinessCalendar]:
    """When a rep must have touched a lead that fired ``rule`` at ``start``."""
    calendar = BusinessCalendar.of(team) if rule.business_hours else ALWAYS
    return calendar.add(start, sla_span(rule, BusinessCalendar.of(team))), calendar
