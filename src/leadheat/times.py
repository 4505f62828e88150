"""Durations and instants as the team writes them, normalised to aware UTC at the edge.

Inside leadheat every instant is a timezone-aware UTC ``datetime`` and every span a
``timedelta``: both are exact integers of microseconds, so differences of instants never
lose precision, which the decay arithmetic relies on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""The landmark of forward decay and of stored timestamps."""

MIN_INSTANT = EPOCH
MAX_INSTANT = datetime(2100, 12, 31, 23, 59, 59, tzinfo=UTC)
MAX_SPAN = MAX_INSTANT - MIN_INSTANT
"""The longest duration: from the first instant leadheat holds to the last. A longer one is
a typo, and adding it to an instant (a half-life to a timestamp, say) would overflow."""

_UNITS = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


_MIN_SECONDS = (MIN_INSTANT - EPOCH).total_seconds()
_MAX_SECONDS = (MAX_INSTANT - EPOCH).total_seconds()


class TimeFormatError(ValueError):
    """A duration or timestamp that cannot be read; the message says what to write instead."""


def parse_duration(text: str) -> timedelta:
    """Read a span written as a number and a unit: seconds, minutes, hours, days or weeks.

    >>> parse_duration("7d")
    datetime.timedelta(days=7)
    >>> parse_duration("90s")
    datetime.timedelta(seconds=90)
    >>> parse_duration("1.5h")
    datetime.timedelta(seconds=5400)

    Spans longer than 1970-2100 are refused, like instants outside it, rather than
    overflowing ``timedelta`` (which stops at 999,999,999 days) with an ``OverflowError``:

    >>> parse_duration("99999999999w")
    Traceback (most recent call last):
    ...
    leadheat.times.TimeFormatError: '99999999999w' is longer than 1970-2100 (47846 days)
    """
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise TimeFormatError(
            f'{text!r} is not a duration (write a number and a unit s, m, h, d or w, e.g. "7d")'
        )
    try:
        span = float(match.group(1)) * _UNITS[match.group(2)]
    except OverflowError:  # past timedelta.max, or a number float reads as infinity
        span = timedelta.max
    if span > MAX_SPAN:
        raise TimeFormatError(f"{text!r} is longer than 1970-2100 ({MAX_SPAN.days} days)")
    if span <= timedelta(0):
        raise TimeFormatError(f"{text!r} must be longer than zero")
    return span


def format_duration(span: timedelta) -> str:
    """Write a span in the largest unit that divides it exactly.

    >>> format_duration(timedelta(days=14))
    '2w'
    >>> format_duration(timedelta(seconds=90))
    '90s'
    """
    for unit in ("w", "d", "h", "m", "s"):
        count, rest = divmod(span, _UNITS[unit])
        if not rest:
            return f"{count}{unit}"
    return f"{span.total_seconds()}s"


def human_span(span: timedelta) -> str:
    """A span in the two largest units a person needs, the one format every page and list
    uses (``24m 2s``, not ``24:02`` beside ``1h 1m``).

    >>> human_span(timedelta(days=2, hours=5, minutes=7)), human_span(timedelta(seconds=1442))
    ('2d 5h', '24m 2s')
    >>> human_span(timedelta(hours=3, minutes=2)), human_span(timedelta(seconds=-5))
    ('3h 2m', '0s')
    """
    seconds = max(0, int(span.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def relative(at: datetime | None, now: datetime) -> str:
    """``in 3h 2m`` or ``2d 5h ago``; empty for no time.

    >>> now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    >>> relative(now + timedelta(hours=3), now), relative(now - timedelta(days=2), now)
    ('in 3h 0m', '2d 0h ago')
    """
    if at is None:
        return ""
    return f"in {human_span(at - now)}" if at > now else f"{human_span(now - at)} ago"


def parse_instant(text: str) -> datetime:
    """Read an ISO 8601 timestamp with an offset, or epoch seconds, as aware UTC.

    Naive timestamps are refused rather than guessed: an hour's error in a lead's history
    changes its heat.

    >>> parse_instant("2024-02-29T10:00:00+01:00")
    datetime.datetime(2024, 2, 29, 9, 0, tzinfo=datetime.timezone.utc)
    >>> parse_instant("1700000000")
    datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.timezone.utc)
    >>> parse_instant("-90000000000")
    Traceback (most recent call last):
    ...
    leadheat.times.TimeFormatError: '-90000000000' is outside 1970-2100
    """
    raw = text.strip() if isinstance(text, str) else ""
    if not raw:
        raise TimeFormatError("empty timestamp (use ISO 8601, e.g. 2024-02-29T10:00:00Z)")
    if ":" not in raw and _looks_numeric(raw):  # no number has a colon; most dates do
        seconds = float(raw)
        # datetime stops at year 1, about -6.2e10 seconds: checked before the sum overflows
        if not math.isfinite(seconds) or not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
            raise TimeFormatError(f"{text!r} is outside 1970-2100")
        instant = EPOCH + timedelta(microseconds=round(seconds * 1_000_000))
    else:
        try:
            instant = datetime.fromisoformat(raw)
        except ValueError:
            raise TimeFormatError(
                f"{text!r} is not a date (use ISO 8601, e.g. 2024-02-29T10:00:00Z)"
            ) from None
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise TimeFormatError(
                f"{text!r} has no UTC offset (add one, e.g. 2024-02-29T10:00:00Z or +02:00)"
            )
        instant = as_utc(instant, text)
    return check_range(instant, text)


def as_utc(instant: datetime, shown: object = None) -> datetime:
    """``instant`` in UTC; one whose UTC time falls outside what ``datetime`` holds (year 1
    at +01:00, say) is refused like any other time outside 1970-2100.

    >>> as_utc(datetime.fromisoformat("2024-01-01T01:00:00+01:00"))
    datetime.datetime(2024, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    try:
        return instant.astimezone(UTC)
    except OverflowError:
        raise TimeFormatError(
            f"{shown if shown is not None else instant.isoformat()!r} is outside 1970-2100"
        ) from None


def check_range(instant: datetime, shown: object = None) -> datetime:
    """Refuse instants outside 1970–2100, the range the score keys are proven exact for."""
    if not MIN_INSTANT <= instant <= MAX_INSTANT:
        raise TimeFormatError(
            f"{shown if shown is not None else instant.isoformat()!r} is outside 1970-2100"
        )
    return instant


def _looks_numeric(raw: str) -> bool:
    try:
        float(raw)
    except ValueError:
        return False
    return True


def to_micros(instant: datetime) -> int:
    """Microseconds since the epoch, exactly (from the difference's days, seconds and
    microseconds, integers all: a quarter of the time of dividing two timedeltas, and every
    stored instant goes through here).

    >>> to_micros(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))
    1000000
    >>> to_micros(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
    -1
    """
    since = instant - EPOCH
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


def from_micros(micros: int) -> datetime:
    """The aware UTC instant ``micros`` microseconds after the epoch."""
    return EPOCH + timedelta(microseconds=int(micros))


def instants(micros: Sequence[int]) -> list[datetime]:
    """:func:`from_micros` of many Python ints, without a call per item (a report makes two
    million).

    >>> instants([0, 1_000_000])[1] == from_micros(1_000_000)
    True
    """
    return [EPOCH + timedelta(0, 0, value) for value in micros]


def isoformat(instant: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, or ``None``; the one way instants leave leadheat."""
    if instant is None:
        return None
    text = instant.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")
