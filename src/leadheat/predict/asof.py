"""Training examples from a lead's own history, each as of its *decision time*: what the team
knew when it decided to call (the first touch), never anything later.

A model that sees an event from after the decision learns the outcome, not the lead: a
"purchase" that is the sale itself, a heat spike from the sales call. So the feature builder
takes only what it is given and *refuses* a history that holds anything after the decision
time (:class:`LeakageError`); the loader cuts history there, and a test shuffles timestamps to
prove the refusal.

Labels: won within ``horizon`` after the decision is 1; lost, disqualified, won later, or no
win once the horizon has passed, is 0; an open lead whose horizon has not passed is
*censored* (``None``): it may still convert, so it is no negative.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from leadheat.playbook import EVIDENCE_KINDS, Playbook
from leadheat.scoring.evidence import EvidenceState, assess
from leadheat.scoring.fit import score_fit
from leadheat.scoring.lead import LeadHistory, OutcomeRecord

HALF_LIVES = (timedelta(days=1), timedelta(days=7), timedelta(days=30))
"""Heat is given to the model at several half-lives: it learns which decay predicts."""
DAY = timedelta(days=1)
LEFT_OUT = frozenset({"email", "external_id", "name", "owner", "anonymous_id", "phone"})
"""Attributes that name a person or are set by the team after contact: no signal, or a leak."""


class LeakageError(ValueError):
    """History from after the decision time reached the feature builder."""


@dataclass(frozen=True)
class Example:
    """One lead as a training row."""

    lead_id: int
    decided_at: datetime
    label: int | None
    """1 won within the horizon, 0 not, ``None`` censored."""
    features: dict[str, str | None]


def decision_time(
    created_at: datetime,
    first_touch: datetime | None,
    outcomes: Sequence[OutcomeRecord],
) -> datetime:
    """When the team decided: the first touch; for a lead closed untouched, just before its
    outcome; for an open, untouched lead, when it arrived.

    >>> from datetime import UTC
    >>> t = datetime(2026, 1, 5, tzinfo=UTC)
    >>> decision_time(t, t + DAY, [OutcomeRecord("won", t + 9 * DAY)]) == t + DAY
    True
    """
    closed = min((o.at for o in outcomes), default=None)
    if first_touch is not None and (closed is None or first_touch <= closed):
        return first_touch
    if closed is not None:
        return closed - timedelta(microseconds=1)
    return created_at


def label(
    outcomes: Sequence[OutcomeRecord], decided_at: datetime, horizon: timedelta, now: datetime
) -> int | None:
    """1, 0 or ``None`` (censored), by the rules above.

    >>> from datetime import UTC
    >>> t = datetime(2026, 1, 5, tzinfo=UTC)
    >>> won = [OutcomeRecord("won", t + 10 * DAY)]
    >>> label(won, t, 90 * DAY, t + 200 * DAY), label(won, t, 5 * DAY, t + 200 * DAY)
    (1, 0)
    >>> label([], t, 90 * DAY, t + 30 * DAY) is None, label([], t, 90 * DAY, t + 91 * DAY)
    (True, 0)
    """
    for outcome in sorted(outcomes, key=lambda o: o.at):
        if outcome.outcome == "won":
            return 1 if outcome.at <= decided_at + horizon else 0
        return 0
    return 0 if now >= decided_at + horizon else None


def _days(span: timedelta) -> str:
    return f"{span / DAY:.6g}"


def features_as_of(
    history: LeadHistory,
    created_at: datetime,
    touches: Iterable[datetime],
    at: datetime,
    book: Playbook,
    event_types: Sequence[str],
) -> dict[str, str | None]:
    """The lead as the team saw it at ``at``: profile, fit, heat per signal at several
    half-lives, counts, recency, age, how fast it was first touched, fresh evidence.

    ``event_types`` fixes the per-signal columns (the same for every row of a model).
    Raises :class:`LeakageError` if anything in the history happened after ``at``.
    """
    touched = sorted(touches)
    late = [e.type for e in history.events if e.at > at]
    late += [f"evidence {e.kind}" for e in history.evidence if e.stated_at > at]
    late += [f"outcome {o.outcome}" for o in history.outcomes if o.at > at]
    late += ["touch" for t in touched if t > at]
    if late:
        raise LeakageError(
            f"{len(late)} record(s) after the decision time {at.isoformat()} "
            f"(first: {late[0]}): features may only use what was known then"
        )
    row: dict[str, str | None] = {
        f"attr:{name}": None if value is None else str(value)
        for name, value in history.attributes.items()
        if name not in LEFT_OUT and not isinstance(value, dict | list)
    }
    row["fit"] = f"{score_fit(history.attributes, book.fit.rules, book.fit.qualified_at).points:g}"
    row["age_days"] = _days(at - created_at)
    row["events"] = str(len(history.events))
    last = max((e.at for e in history.events), default=None)
    row["days_since_last_event"] = None if last is None else _days(at - last)
    row["first_touch_hours"] = (
        None if not touched else f"{(touched[0] - created_at) / timedelta(hours=1):.6g}"
    )
    row["touches"] = str(len(touched))
    counts: Counter[str] = Counter(e.type for e in history.events)
    for half_life in HALF_LIVES:
        total = 0.0
        for event in history.events:
            points = book.points_for(event.type, event.properties)
            total += points * math.exp2(-((at - event.at) / half_life))
        row[f"heat_{_days(half_life)}d"] = f"{total:.6g}"
    for kind in event_types:
        row[f"count:{kind}"] = str(counts.get(kind, 0))
        heat = sum(
            math.exp2(-((at - e.at) / timedelta(days=7))) for e in history.events if e.type == kind
        )
        row[f"recent:{kind}"] = f"{heat:.6g}"
    statuses = assess(history.evidence, EVIDENCE_KINDS, at, book.evidence.ttl)
    for kind in EVIDENCE_KINDS:
        status = statuses.get(kind)
        row[f"evidence:{kind}"] = (
            None if status is None else str(status.state is EvidenceState.FRESH).lower()
        )
    return row


def cut(history: LeadHistory, at: datetime) -> LeadHistory:
    """The history known at ``at``: what the loader hands the feature builder."""
    return LeadHistory(
        attributes=history.attributes,
        events=[e for e in history.events if e.at <= at],
        evidence=[e for e in history.evidence if e.stated_at <= at],
        outcomes=[o for o in history.outcomes if o.at <= at],
    )


def common_types(histories: Iterable[LeadHistory], most: int = 30) -> list[str]:
    """The event types worth a column: the most frequent ones."""
    counts: Counter[str] = Counter(e.type for h in histories for e in h.events)
    return [kind for kind, _ in counts.most_common(most)]
