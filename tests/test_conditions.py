"""Conditions on lead attributes as a playbook writes them: placeholders count as missing,
except for a rule that names one (a CRM whose lead origin is literally "unknown")."""

from __future__ import annotations

from leadheat.playbook import parse_playbook
from leadheat.scoring.fit import score_fit

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
    assert select.disqualified_by == ("title = 'Select'",)
    assert select.points == 100.0

    blank = score_fit({"origin": "", "title": None}, fit.rules, fit.qualified_at)
    assert (blank.points, blank.disqualified_by) == (1.0, ())
