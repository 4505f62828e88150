"""Conditions on lead attributes as a playbook writes them: placeholders count as missing,
except for a rule that names one (a CRM whose lead origin is literally "unknown"); patterns
run in time linear in the value, whatever the pattern."""

from __future__ import annotations

import re
import time

import pytest

from leadheat.playbook import parse_playbook
from leadheat.scoring.fit import score_fit
from leadheat.scoring.patterns import Pattern, PatternError

PLAYBOOK = """
[fit]
qualified_at = 10

[[fit.rules]]
field = "origin"
one_of = ["unknown", "referral"]
points = 10

[[fit.rules]]
field = "origin"
present = false
points = 1

[[fit.rules]]
field = "origin"
matches = "(?i)unknown|paid"
points = 100

[[fit.rules]]
field = "title"
equals = "Select"
disqualify = true
"""


def test_a_rule_that_names_a_placeholder_matches_it_and_no_other_rule_does() -> None:
    fit = parse_playbook(PLAYBOOK).fit
    unknown = score_fit({"origin": " Unknown ", "title": "CTO"}, fit.rules, fit.qualified_at)
    # one_of names it (10) and it still counts as not given (1); the regex never sees it
    assert (unknown.points, unknown.qualified) == (11.0, True)
    assert [c.matched for c in unknown.checks] == [True, True, False, False]
    assert unknown.completeness == 0.5  # origin is still a missing field

    select = score_fit({"origin": "paid", "title": "select"}, fit.rules, fit.qualified_at)
    assert select.disqualified_by == ("title is Select",)
    assert select.points == 100.0

    blank = score_fit({"origin": "", "title": None}, fit.rules, fit.qualified_at)
    assert (blank.points, blank.disqualified_by) == (1.0, ())


CATASTROPHIC = r"(?i)^(\w+\s?)*$"
"""Exponential for a backtracking engine: 27 characters of title took Python's ``re`` 8.6 s."""


def test_no_title_can_freeze_a_fit_rule() -> None:
    rule = f"[[fit.rules]]\nfield = 'title'\nmatches = '{CATASTROPHIC}'\npoints = 5\n"
    fit = parse_playbook(rule).fit
    assert isinstance(fit.rules[0].condition.matches, Pattern)  # RE2, linear in the value
    started = time.monotonic()
    for title in ("a" * 200 + "!", "word " * 40_000 + "!", "Head of Sales"):
        score_fit({"title": title}, fit.rules, fit.qualified_at)
    assert time.monotonic() - started < 2  # generous: each search takes microseconds
    assert score_fit({"title": "Head of Sales"}, fit.rules, 0).points == 5.0
    assert score_fit({"title": "a" * 200 + "!"}, fit.rules, 0).points == 0.0


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("(?i)founder|owner|chief|\\bc[etmo]o\\b|head|vp", "Acting CTO", True),
        ("(?i)founder|owner|chief|\\bc[etmo]o\\b|head|vp", "Director", False),
        ("(?i)\\bstudent\\b|\\bintern\\b", "Internal Audit", False),
        ("(?i)/pricing|/plans|/demo", "https://x.io/PLANS?a=1", True),
        ("^([4-9]|[1-9][0-9]+)$", "12", True),
        ("(?P<site>shop)\\.", "www.shop.example", True),
        ("(?i)münchen", "MÜNCHEN", True),
        ("", "anything", True),
    ],
)
def test_patterns_mean_what_they_meant_under_python_re(
    pattern: str, value: str, expected: bool
) -> None:
    assert Pattern(pattern).search(value) is expected
    assert (re.search(pattern, value) is not None) is expected


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(\\w)\\1", "cannot run in linear time"),
        ("vp(?!ic)", "cannot run in linear time"),
        ("(?<=head of )sales", "cannot run in linear time"),
        ("a{99999999999}", "is not a regular expression"),
        ("(", "is not a regular expression"),
    ],
)
def test_a_pattern_the_engine_cannot_run_is_refused(pattern: str, reason: str) -> None:
    with pytest.raises(PatternError, match=reason):
        Pattern(pattern)
