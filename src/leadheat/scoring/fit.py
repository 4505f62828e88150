"""Fit: how well a lead matches the ideal customer. It does not decay."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from leadheat.playbook import FitRule
from leadheat.scoring.conditions import is_present


@dataclass(frozen=True)
class RuleCheck:
    """One fit rule and whether the lead's attributes pass it."""

    rule: str
    points: float
    matched: bool
    disqualify: bool
    field: str
    missing: bool
    label: str | None = None
    """The rule's own name in the playbook, if it has one."""


@dataclass(frozen=True)
class FitResult:
    """Points, qualification and the rules behind them."""

    points: float
    qualified: bool
    disqualified_by: tuple[str, ...]
    checks: tuple[RuleCheck, ...]
    completeness: float
    """Share of the fields the rules look at that the lead has (1.0 when no rule looks)."""


def score_fit(
    attributes: Mapping[str, Any], rules: Sequence[FitRule], qualified_at: float
) -> FitResult:
    """Sum the points of matching rules; any matching ``disqualify`` rule disqualifies.

    Missing attributes score nothing and lower ``completeness``.

    >>> from leadheat.playbook import FitRule
    >>> rules = [FitRule(field="title", matches="(?i)vp", points=10),
    ...          FitRule(field="company_size", range=(10, 500), points=5)]
    >>> result = score_fit({"title": "VP Sales"}, rules, qualified_at=10)
    >>> result.points, result.qualified, result.completeness
    (10.0, True, 0.5)
    """
    checks = []
    for rule in rules:
        matched = rule.condition.holds(attributes)
        checks.append(
            RuleCheck(
                rule=rule.condition.describe(),
                points=float(rule.points),
                matched=matched,
                disqualify=rule.disqualify,
                field=rule.field,
                missing=not is_present(attributes.get(rule.field)),
                label=rule.label,
            )
        )
    points = float(sum(c.points for c in checks if c.matched and not c.disqualify))
    disqualified_by = tuple(c.rule for c in checks if c.matched and c.disqualify)
    fields = {c.field for c in checks}
    present = {c.field for c in checks if not c.missing}
    completeness = len(present) / len(fields) if fields else 1.0
    return FitResult(
        points=points,
        qualified=points >= qualified_at and not disqualified_by,
        disqualified_by=disqualified_by,
        checks=tuple(checks),
        completeness=completeness,
    )


def fit_summary(
    attributes: Mapping[str, Any], rules: Sequence[FitRule], qualified_at: float
) -> tuple[float, bool, bool]:
    """``(points, qualified, disqualified)`` as :func:`score_fit` finds them, without the
    explanation: what bulk paths store for every lead.

    >>> from leadheat.playbook import FitRule
    >>> rules = [FitRule(field="title", matches="(?i)vp", points=10),
    ...          FitRule(field="title", matches="(?i)intern", disqualify=True)]
    >>> fit_summary({"title": "VP Sales"}, rules, 10)
    (10.0, True, False)
    >>> fit_summary({"title": "VP intern"}, rules, 10)
    (10.0, False, True)
    """
    points = 0.0
    disqualified = False
    for rule in rules:
        if rule.condition.holds(attributes):
            if rule.disqualify:
                disqualified = True
            else:
                points += rule.points
    return points, points >= qualified_at and not disqualified, disqualified


def fit_scorer(
    rules: Sequence[FitRule], qualified_at: float
) -> Callable[[Mapping[str, Any]], FitResult]:
    """:func:`score_fit` for many leads, once per distinct set of values the rules read:
    the leads a batch of events creates have no attributes yet, and all share one result.

    >>> from leadheat.playbook import FitRule
    >>> fit_of = fit_scorer([FitRule(field="title", matches="(?i)vp", points=10)], 10)
    >>> fit_of({"title": "VP", "city": "Oslo"}) is fit_of({"title": "VP"})
    True
    >>> fit_of({"title": ["a", "list"]}).points  # values that cannot be a key are scored
    0.0

    Values are told apart by type too: ``1 == 1.0 == True``, but a rule may read them
    differently (``"1"``, ``"1.0"``, ``"True"`` as text).
    """
    fields = tuple(dict.fromkeys(rule.field for rule in rules))
    known: dict[tuple[Any, ...], FitResult] = {}

    def fit_of(attributes: Mapping[str, Any]) -> FitResult:
        key = tuple((type(value), value) for value in map(attributes.get, fields))
        try:
            found = known.get(key)
        except TypeError:  # a list or a document: not a key
            return score_fit(attributes, rules, qualified_at)
        if found is None:
            found = known[key] = score_fit(attributes, rules, qualified_at)
        return found

    return fit_of
