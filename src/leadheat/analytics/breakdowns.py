"""Conversion rate by one property of the lead at its decision time.

Each breakdown is a list of :class:`~leadheat.analytics.rates.Rate` rows in a fixed order (the
buckets of a scale in scale order, categories largest first), censored leads left out. Empty
buckets of a scale are kept, so a chart's axis never silently skips one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from leadheat.analytics.decisions import Decided
from leadheat.analytics.rates import Rate, rate

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)

Scale = Sequence[tuple[str, timedelta | None]]
"""Buckets as ``(label, upper bound)``, the last one open-ended (``None``)."""

RESPONSE_BUCKETS: Scale = (
    ("< 5 min", 5 * MINUTE),
    ("5–30 min", 30 * MINUTE),
    ("30–60 min", 60 * MINUTE),
    ("1–24 h", DAY),
    ("> 1 day", None),
)
"""Time to the first touch, in the buckets of the speed-to-lead studies."""
AGE_BUCKETS: Scale = (
    ("< 1 day", DAY),
    ("1–7 days", 7 * DAY),
    ("7–30 days", 30 * DAY),
    ("1–3 months", 90 * DAY),
    ("3–6 months", 182 * DAY),
    ("6–12 months", 365 * DAY),
    ("> 1 year", None),
)
"""Lead age: wide enough at the old end to ask whether a 6–12-month-old lead is worth a call."""
DECAY_BUCKETS: Scale = (*AGE_BUCKETS[:-1], ("1–2 years", 730 * DAY))
"""The decay curve's buckets: each must end, for a lead to be watched through it."""
TEMPERATURES = ("hot", "warm", "cold")
NOT_TOUCHED = "not touched"
UNKNOWN = "(none)"


def bucket_of(span: timedelta, scale: Scale) -> str:
    """The label of the bucket ``span`` falls in (lower bounds inclusive).

    >>> bucket_of(timedelta(minutes=5), RESPONSE_BUCKETS)
    '5–30 min'
    >>> bucket_of(timedelta(days=400), AGE_BUCKETS)
    '> 1 year'
    """
    for name, upper in scale:
        if upper is None or span < upper:
            return name
    raise ValueError("a scale ends with an open bucket")


def _known(rows: Sequence[Decided]) -> list[Decided]:
    return [row for row in rows if row.label is not None]


def by_key(
    rows: Sequence[Decided], key: Callable[[Decided], str], order: Sequence[str] = ()
) -> list[Rate]:
    """Rates per value of ``key``: the values of ``order`` first (even when empty), then the
    others, largest group first."""
    known = _known(rows)
    leads: Counter[str] = Counter(key(row) for row in known)
    won: Counter[str] = Counter(key(row) for row in known if row.label == 1)
    rest = sorted((k for k in leads if k not in order), key=lambda k: (-leads[k], k))
    return [rate(name, won[name], leads[name]) for name in [*order, *rest]]


def by_temperature(rows: Sequence[Decided]) -> list[Rate]:
    """Hot, warm and cold at the first touch: does the playbook's "hot" convert?"""
    return by_key(rows, lambda r: r.temperature, TEMPERATURES)


def by_grade(rows: Sequence[Decided]) -> list[Rate]:
    """Fit letter × engagement digit at the first touch, A1 first."""
    return by_key(rows, lambda r: r.grade, [f"{a}{d}" for a in "ABCD" for d in "123"])


def by_first_touch_delay(rows: Sequence[Decided]) -> list[Rate]:
    """Speed to lead: time from the lead asking for attention to the first touch."""
    return by_key(
        rows,
        lambda r: NOT_TOUCHED if r.response is None else bucket_of(r.response, RESPONSE_BUCKETS),
        [name for name, _ in RESPONSE_BUCKETS],
    )


def by_lead_age(rows: Sequence[Decided]) -> list[Rate]:
    """Lead age at the first contact: an old lead that wakes up, against a fresh one."""
    return by_key(rows, lambda r: bucket_of(r.age, AGE_BUCKETS), [n for n, _ in AGE_BUCKETS])


def by_source(rows: Sequence[Decided]) -> list[Rate]:
    return by_key(rows, lambda r: r.source or UNKNOWN)


def by_campaign(rows: Sequence[Decided]) -> list[Rate]:
    return by_key(rows, lambda r: r.campaign or UNKNOWN)


def by_rep(rows: Sequence[Decided]) -> list[Rate]:
    return by_key(rows, lambda r: r.rep or UNKNOWN)


def by_sequence(rows: Sequence[Decided], sequences: Mapping[int, Sequence[str]]) -> list[Rate]:
    """Per nurture sequence, the leads ever enrolled in it (a lead in two counts in both),
    and ``(none)`` for leads never enrolled; largest first.

    >>> from datetime import UTC
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> a = Decided(1, t, t, True, None, "warm", "D2", 5.0, None, None, None, 1, None, t, t)
    >>> b = Decided(2, t, t, True, None, "cold", "D3", 0.0, None, None, None, 0, None, None, None)
    >>> [(r.bucket, r.won, r.leads) for r in by_sequence([a, b], {1: ["shoes", "winback"]})]
    [('(none)', 0, 1), ('shoes', 1, 1), ('winback', 1, 1)]
    """
    known = _known(rows)
    leads: Counter[str] = Counter()
    won: Counter[str] = Counter()
    for row in known:
        for name in sequences.get(row.lead_id) or [UNKNOWN]:
            leads[name] += 1
            won[name] += row.label == 1
    return [
        rate(name, won[name], leads[name]) for name in sorted(leads, key=lambda k: (-leads[k], k))
    ]


def decay_curve(rows: Sequence[Decided], now: datetime, scale: Scale = DECAY_BUCKETS) -> list[Rate]:
    """Of the leads still open when they reached the start of an age bucket, the share won
    before its end: how conversion fades as a lead ages (a life table).

    Only leads watched through the whole bucket count in it (its end is before ``now``), won
    or not: counting a lead won early in a bucket that has not ended while leaving out those
    not won yet would inflate the rate.

    >>> from datetime import UTC
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> def lead(won_after):
    ...     won = None if won_after is None else t + won_after
    ...     return Decided(1, t, t, True, None, "warm", "D2", 5.0, None, None, None,
    ...                    None, None, won, won)
    >>> rows = [lead(timedelta(hours=3)), lead(timedelta(days=40)), lead(None)]
    >>> [(r.bucket, r.won, r.leads) for r in decay_curve(rows, t + timedelta(days=60))][:4]
    [('< 1 day', 1, 3), ('1–7 days', 0, 2), ('7–30 days', 0, 2), ('1–3 months', 0, 0)]
    """
    result = []
    lower = timedelta(0)
    for name, upper in scale:
        if upper is None:
            raise ValueError("a decay curve needs buckets with an end")
        leads = won = 0
        for row in rows:
            start, end = row.created_at + lower, row.created_at + upper
            if end > now or (row.closed_at is not None and row.closed_at < start):
                continue
            leads += 1
            won += row.won_at is not None and row.won_at == row.closed_at and row.won_at < end
        result.append(rate(name, won, leads))
        lower = upper
    return result
