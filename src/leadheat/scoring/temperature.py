"""Temperature (hot / warm / cold) and grade, by the rules of DESIGN §2.

Everything here is a function of a few facts about a lead and ``now``; the store keeps those
facts per lead so that a temperature needs no history, and a full replay of history gives the
same facts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from leadheat.playbook import Playbook
from leadheat.scoring.heat import Heat
from leadheat.scoring.wording import format_number


class Temperature(enum.StrEnum):
    HOT = "hot"
    WARM = "warm"
    COLD = "cold"


@dataclass(frozen=True)
class LeadFacts:
    """What temperature depends on, besides heat; all of it known as of some ``now``."""

    qualified: bool
    fit: float
    disqualified: bool
    """A ``disqualify`` fit rule matched, or the outcome is ``disqualified``."""
    evidence_until: datetime | None
    """Until when the playbook's required evidence is fresh (``None``: it is not)."""
    last_engaged_at: datetime | None
    """The latest event worth points: an interest signal."""
    churned_at: datetime | None
    """The latest expired trial or cancelled subscription."""
    probability: float | None = None
    """The predictive model's stored conversion probability, if a model was trained."""


@dataclass(frozen=True)
class Verdict:
    temperature: Temperature
    reason: str
    previously_engaged: bool


def classify(
    heat: float, facts: LeadFacts, now: datetime, book: Playbook, *, explain: bool = True
) -> Verdict:
    """Hot, warm or cold at ``now``, with the reason in words (``explain=False``: an empty
    reason, for a caller that judges many instants and shows none of them).

    >>> from datetime import UTC, timedelta
    >>> from leadheat.playbook import Playbook
    >>> now = datetime(2024, 6, 1, tzinfo=UTC)
    >>> facts = LeadFacts(True, 12, False, now + timedelta(days=9), now, None)
    >>> classify(25, facts, now, Playbook()).temperature
    <Temperature.HOT: 'hot'>
    >>> classify(25, facts, now + timedelta(days=10), Playbook()).reason
    'not hot: evidence is missing or stale; warm: heat 25 >= 5'
    >>> classify(25, facts, now + timedelta(days=10), Playbook(), explain=False)
    Verdict(temperature=<Temperature.WARM: 'warm'>, reason='', previously_engaged=False)
    """
    rules = book.temperature
    engaged = facts.last_engaged_at
    if engaged is None:
        return Verdict(Temperature.COLD, "no interest shown" if explain else "", False)
    if now - engaged > rules.cold_after:
        said = f"no interest for more than {rules.cold_after.days} days" if explain else ""
        return Verdict(Temperature.COLD, said, True)
    if facts.churned_at is not None and facts.churned_at >= engaged:
        said = "trial expired or cancelled; no interest since" if explain else ""
        return Verdict(Temperature.COLD, said, True)
    missing = []
    if not facts.qualified:
        missing.append("not qualified")
    if heat < rules.hot_heat:
        missing.append(
            f"heat {format_number(heat)} < {format_number(rules.hot_heat)}" if explain else ""
        )
    if facts.evidence_until is None or now >= facts.evidence_until:
        missing.append("evidence is missing or stale")
    floor = rules.hot_min_probability
    if floor is not None and (facts.probability is None or facts.probability < floor):
        shown = "none" if facts.probability is None else f"{facts.probability:.2f}"
        missing.append(f"probability {shown} < {format_number(floor)}" if explain else "")
    if not missing:
        hot = format_number(rules.hot_heat)
        said = f"qualified, heat {format_number(heat)} >= {hot}, fresh evidence" if explain else ""
        return Verdict(Temperature.HOT, said, False)
    why_not_hot = "not hot: " + ", ".join(missing) if explain else ""
    if heat >= rules.warm_heat:
        said = (
            f"{why_not_hot}; warm: heat {format_number(heat)} >= {format_number(rules.warm_heat)}"
            if explain
            else ""
        )
        return Verdict(Temperature.WARM, said, False)
    if now - engaged <= rules.warm_window:
        said = (
            f"{why_not_hot}; warm: interest within {rules.warm_window.days} days" if explain else ""
        )
        return Verdict(Temperature.WARM, said, False)
    said = (
        f"heat {format_number(heat)} < {format_number(rules.warm_heat)}, no recent interest"
        if explain
        else ""
    )
    return Verdict(Temperature.COLD, said, False)


def heat_free(facts: LeadFacts, now: datetime, book: Playbook) -> Temperature | None:
    """The temperature :func:`classify` gives at ``now`` whatever the heat, or ``None`` when
    the heat decides: cold with no interest, none for ``cold_after`` or a churn since; warm
    when the lead cannot be hot (not qualified, no fresh evidence, below the model's floor)
    and its interest is within the warm window. A replay judging many instants skips
    working out the heat at these.

    >>> from datetime import UTC, timedelta
    >>> from leadheat.playbook import Playbook
    >>> now = datetime(2024, 6, 1, tzinfo=UTC)
    >>> heat_free(LeadFacts(True, 12, False, None, now - timedelta(days=2), None), now, Playbook())
    <Temperature.WARM: 'warm'>
    >>> print(heat_free(LeadFacts(True, 12, False, now + timedelta(days=9), now, None), now,
    ...     Playbook()))
    None
    """
    rules = book.temperature
    engaged = facts.last_engaged_at
    if engaged is None or now - engaged > rules.cold_after:
        return Temperature.COLD
    if facts.churned_at is not None and facts.churned_at >= engaged:
        return Temperature.COLD
    floor = rules.hot_min_probability
    never_hot = (
        not facts.qualified
        or facts.evidence_until is None
        or now >= facts.evidence_until
        or (floor is not None and (facts.probability is None or facts.probability < floor))
    )
    if never_hot and now - engaged <= rules.warm_window:
        return Temperature.WARM
    return None


def grade(fit: float, disqualified: bool, heat: float, book: Playbook) -> str:
    """Fit letter (A–D) and engagement digit (1–3): ``A1`` is an ideal, highly engaged lead.

    A disqualified lead is a D whatever its points.

    >>> from leadheat.playbook import Playbook
    >>> book = Playbook()
    >>> grade(25, False, 30, book), grade(0, False, 6, book), grade(25, True, 0, book)
    ('A1', 'D2', 'D3')
    """
    a, b, c = book.grade_thresholds
    if disqualified:
        letter = "D"
    elif fit >= a:
        letter = "A"
    elif fit >= b:
        letter = "B"
    elif fit >= c and fit > 0:
        letter = "C"
    else:
        letter = "D"
    rules = book.temperature
    digit = 1 if heat >= rules.hot_heat else 2 if heat >= rules.warm_heat else 3
    return f"{letter}{digit}"


@dataclass(frozen=True)
class Forecast:
    """When the lead stops being hot, and stops being at least warm, if nothing happens; and
    when a lead that is not hot becomes hot by itself (only a negative signal fading under a
    slower positive one does that), ``None`` if it does not."""

    hot_until: datetime | None
    warm_until: datetime | None
    hot_from: datetime | None = None


def forecast(
    heat: Heat, facts: LeadFacts, verdict: Verdict, now: datetime, book: Playbook
) -> Forecast:
    """Cool-down times: heat first crossing the thresholds downwards (``t + h·log2(H/θ)`` for
    one half-life; every crossing is found when negative signals make heat rise again,
    :meth:`Heat.cools_below`), evidence going stale, the warm window closing and
    ``cold_after`` passing, whichever comes first. ``hot_from``: for a lead not hot now, the
    first instant heat reaches ``hot_heat`` by itself, if the lead is hot then."""
    rules = book.temperature
    hot_from = None
    if verdict.temperature is not Temperature.HOT and facts.last_engaged_at is not None:
        rises = heat.warms_to(rules.hot_heat, now)
        if rises is not None:
            lifted = max(heat.at(rises), rules.hot_heat)  # θ within float noise at the crossing
            if classify(lifted, facts, rises, book, explain=False).temperature is Temperature.HOT:
                hot_from = rises
    if verdict.temperature is Temperature.COLD or facts.last_engaged_at is None:
        return Forecast(None, None, hot_from)
    cold_at = facts.last_engaged_at + rules.cold_after
    warm_by_heat = heat.cools_below(rules.warm_heat, now)
    window_end = facts.last_engaged_at + rules.warm_window
    warm_end = max(window_end, warm_by_heat) if warm_by_heat is not None else window_end
    warm_until = min(cold_at, warm_end)
    hot_until = None
    if verdict.temperature is Temperature.HOT:
        limits = [cold_at]
        hot_by_heat = heat.cools_below(rules.hot_heat, now)
        if hot_by_heat is not None:
            limits.append(hot_by_heat)
        if facts.evidence_until is not None:
            limits.append(facts.evidence_until)
        hot_until = min(limits)
    return Forecast(hot_until, warm_until, hot_from)
