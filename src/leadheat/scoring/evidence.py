"""BANT evidence (need, budget, timeline, authority) and when it goes stale.

A budget someone stated five months ago is a rumour: evidence is fresh for the playbook's
``ttl`` after it was stated, and a timeline whose date has passed is stale at once.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from leadheat.scoring.conditions import is_present

NEGATIVE = frozenset({"no", "false", "0", "none", "no budget", "not yet"})
"""Values that record the *absence* of the fact, e.g. ``budget = "no"``."""


class EvidenceState(enum.StrEnum):
    FRESH = "fresh"
    STALE = "stale"
    DENIED = "denied"
    MISSING = "missing"


@dataclass(frozen=True)
class EvidenceItem:
    """One stated fact: what kind, what was said, when, and where it came from."""

    kind: str
    value: str
    stated_at: datetime
    source: str = "manual"


@dataclass(frozen=True)
class EvidenceStatus:
    """The latest word on one kind of evidence, as of some ``now``."""

    kind: str
    state: EvidenceState
    value: str | None = None
    stated_at: datetime | None = None
    fresh_until: datetime | None = None
    source: str | None = None


def affirms(value: Any) -> bool:
    """Whether a value states the fact rather than its absence.

    >>> affirms("50k EUR"), affirms("no"), affirms("Select")
    (True, False, False)
    """
    return is_present(value) and str(value).strip().casefold() not in NEGATIVE


def fresh_until(item: EvidenceItem, ttl: timedelta) -> datetime | None:
    """The instant this item stops counting, or ``None`` if it never affirmed anything.

    >>> stated = datetime(2024, 1, 1, tzinfo=UTC)
    >>> fresh_until(EvidenceItem("timeline", "2024-02-01", stated), timedelta(days=90))
    datetime.datetime(2024, 2, 2, 0, 0, tzinfo=datetime.timezone.utc)
    """
    if not affirms(item.value):
        return None
    until = item.stated_at + ttl
    if item.kind == "timeline":
        deadline = _as_deadline(item.value)
        if deadline is not None:
            until = min(until, deadline)
    return until


def _as_deadline(value: str) -> datetime | None:
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if len(text) <= 10:  # a bare date counts until that day is over
        return datetime.combine(date.fromisoformat(text[:10]), time(), UTC) + timedelta(days=1)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def assess(
    items: Iterable[EvidenceItem], kinds: Sequence[str], now: datetime, ttl: timedelta
) -> dict[str, EvidenceStatus]:
    """The status of each kind at ``now``: the latest item stated by then decides."""
    latest: dict[str, EvidenceItem] = {}
    for item in items:
        if item.stated_at <= now and (
            item.kind not in latest or item.stated_at >= latest[item.kind].stated_at
        ):
            latest[item.kind] = item
    statuses = {}
    for kind in kinds:
        said = latest.get(kind)
        if said is None:
            statuses[kind] = EvidenceStatus(kind, EvidenceState.MISSING)
            continue
        until = fresh_until(said, ttl)
        if until is None:
            state = EvidenceState.DENIED
        else:
            state = EvidenceState.FRESH if now < until else EvidenceState.STALE
        statuses[kind] = EvidenceStatus(kind, state, said.value, said.stated_at, until, said.source)
    return statuses


def required_fresh_until(
    items: Iterable[EvidenceItem], required: Sequence[str], ttl: timedelta
) -> datetime | None:
    """Until when every required kind is fresh, judged by the latest item of each kind.

    What the store keeps per lead, so "hot now" needs no evidence rows: the evidence test at
    any later ``now`` is ``now < required_fresh_until``. ``None`` when a kind is missing or
    denied. With nothing required, evidence never blocks (far future).
    """
    latest: dict[str, EvidenceItem] = {}
    for item in items:
        if item.kind not in latest or item.stated_at >= latest[item.kind].stated_at:
            latest[item.kind] = item
    bound = datetime(2100, 12, 31, 23, 59, 59, tzinfo=UTC)
    for kind in required:
        said = latest.get(kind)
        until = fresh_until(said, ttl) if said is not None else None
        if until is None:
            return None
        bound = min(bound, until)
    return bound
