"""Which changes call for a rep now: a lead turning hot or warm, a new qualified lead, a
trial sign-up, a form or a reply from a lead someone owns.

Temperature only rises when something is written (heat and evidence only decay with time),
so comparing each touched lead's verdict just before and just after a write finds every
transition, once, without scanning anything on a timer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from leadheat.playbook import TRIGGER_NAMES, Speed, TriggerName, TriggerRule
from leadheat.scoring.temperature import Temperature


@dataclass(frozen=True)
class Standing:
    """What the triggers need to know about a lead at one instant."""

    temperature: Temperature
    qualified: bool
    status: str


@dataclass(frozen=True)
class LeadChange:
    """One lead touched by a write: before and after, and what arrived."""

    lead_id: int
    before: Standing | None
    """``None`` for a lead the write created."""
    after: Standing
    created_at: datetime
    owner: str | None
    """The owner before the write."""
    arrived: Sequence[tuple[str, datetime]] = ()
    """Events stored by this write, as ``(type, occurred_at)``, for event triggers."""


@dataclass(frozen=True)
class Fired:
    """A trigger that fired for a lead, with the others that fired at the same time."""

    lead_id: int
    rule: TriggerRule
    also: tuple[str, ...]


def fired(
    change: LeadChange,
    speed: Speed,
    now: datetime,
    rules: Sequence[TriggerRule] | None = None,
) -> list[TriggerRule]:
    """Every enabled trigger this change fires, in the playbook's order of names.

    ``rules`` are ``speed``'s rules in that order, when the caller judges many changes
    (looked up once, not once per lead).

    >>> from datetime import UTC
    >>> now = datetime(2026, 11, 2, 10, tzinfo=UTC)
    >>> warm = Standing(Temperature.WARM, True, "open")
    >>> hot = Standing(Temperature.HOT, True, "open")
    >>> change = LeadChange(7, warm, hot, now, None, [("trial_signup", now)])
    >>> [rule.name for rule in fired(change, Speed(), now)]
    ['hot', 'trial_signup']
    """
    if change.after.status != "open":
        return []
    before = change.before
    was = before.temperature if before is not None else Temperature.COLD
    recent = now - speed.recent
    types = {kind for kind, at in change.arrived if at >= recent}
    found = []
    for rule in rules if rules is not None else [speed.trigger(n) for n in TRIGGER_NAMES]:
        if not rule.enabled:
            continue
        name = rule.name
        if name == "hot":
            hit = change.after.temperature is Temperature.HOT and was is not Temperature.HOT
        elif name == "warm":
            hit = change.after.temperature is Temperature.WARM and was is Temperature.COLD
        elif name == "new_qualified":
            hit = (
                change.after.qualified
                and (before is None or not before.qualified)
                and change.created_at >= recent
            )
        elif name in ("form_submit", "reply"):
            hit = change.owner is not None and bool(types.intersection(rule.events))
        else:
            hit = bool(types.intersection(rule.events))
        if hit:
            found.append(rule)
    return found


def most_urgent(
    lead_id: int, rules: Sequence[TriggerRule], spans: Mapping[TriggerName, timedelta]
) -> Fired | None:
    """One alert per lead and write: the trigger with the shortest SLA speaks for all.

    A trial sign-up that makes a new, qualified lead hot is one call to make, not three.
    """
    if not rules:
        return None
    order = {name: index for index, name in enumerate(TRIGGER_NAMES)}
    first = min(rules, key=lambda rule: (spans[rule.name], order[rule.name]))
    return Fired(lead_id, first, tuple(rule.name for rule in rules if rule is not first))
