"""Conditions on a lead attribute or an event property, as the playbook writes them.

One vocabulary serves fit rules (``field = "title"``) and signal rules
(``property = "url"``): equals, one_of, range, regex match, present.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leadheat.scoring.patterns import Pattern
from leadheat.scoring.wording import describe_pattern, format_number

PLACEHOLDERS = frozenset({"", "select", "n/a", "na", "none", "null", "-", "unknown", "nan"})
"""Values that mean "not answered": a spreadsheet's ``Select`` is no job title."""


def is_present(value: Any) -> bool:
    """Whether an attribute value says something, rather than being blank or a placeholder.

    >>> is_present("Select"), is_present(" CTO "), is_present(0), is_present(float("nan"))
    (False, True, True, False)
    """
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    if isinstance(value, str):
        return value.strip().casefold() not in PLACEHOLDERS
    return not (isinstance(value, list | dict) and not value)


def as_number(value: Any) -> float | None:
    """A finite number from an int, a float or a numeric string, else ``None``.

    >>> as_number("1,200"), as_number(" 42 "), as_number("lots")
    (1200.0, 42.0, None)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().replace(",", ""))
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _same(value: Any, expected: Any) -> bool:
    left, right = as_number(value), as_number(expected)
    if left is not None and right is not None:
        return left == right
    return str(value).strip().casefold() == str(expected).strip().casefold()


@dataclass(frozen=True)
class Condition:
    """One test on one named value; exactly one of the tests is set (the playbook checks it)."""

    name: str
    equals: Any = None
    one_of: tuple[Any, ...] | None = None
    range: tuple[float, float] | None = None
    matches: Pattern | None = None
    present: bool | None = None
    label: str | None = None
    """What the team calls the rule ("Senior title"): shown instead of the test itself."""

    def holds(self, values: Mapping[str, Any]) -> bool:
        """Whether the named value in ``values`` passes the test.

        >>> Condition("title", matches=Pattern("(?i)vp")).holds({"title": "VP Sales"})
        True
        >>> Condition("size", range=(10, 500)).holds({"size": "1,000"})
        False

        A placeholder passes no test, except one that names it: a team that writes
        ``one_of = ["unknown"]`` means the literal value (a CRM's "unknown" origin is a
        channel of its own), while ``present`` and the other tests still take it as missing.

        >>> unknown = {"origin": "unknown"}
        >>> Condition("origin", one_of=("Unknown", "referral")).holds(unknown)
        True
        >>> anything = Condition("origin", matches=Pattern(""))
        >>> Condition("origin", equals="paid").holds(unknown), anything.holds(unknown)
        (False, False)
        """
        value = values.get(self.name)
        if self.present is not None:
            return is_present(value) == self.present
        if self.equals is not None or self.one_of is not None:
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return False
            options = (self.equals,) if self.one_of is None else self.one_of
            return any(_same(value, option) for option in options)
        if not is_present(value):
            return False
        if self.range is not None:
            number = as_number(value)
            return number is not None and self.range[0] <= number <= self.range[1]
        if self.matches is not None:
            return self.matches.search(str(value))
        return False

    def describe(self) -> str:
        """The rule as a person would say it, for explanations: its ``label`` when it has
        one, else the test in words (numbers as people write them, a pattern by the words it
        looks for, never the regular expression).

        >>> Condition("past_purchases", range=(1, 1000000)).describe()
        'past_purchases from 1 to 1,000,000'
        >>> Condition("title", matches=Pattern("(?i)cto|vp"), label="Senior title").describe()
        'Senior title'
        >>> Condition("title", matches=Pattern("(?i)cto|vp")).describe()
        'title mentions cto or vp'
        >>> Condition("country", one_of=("DE", "AT", "CH")).describe()
        'country is one of DE, AT or CH'
        """
        return self._description

    @functools.cached_property
    def _description(self) -> str:
        """What :meth:`describe` says, worked out once per condition: every fit score
        describes its rules (the follow-up state recomputes each lead an event reaches), and
        the words cost more than the tests."""
        if self.label:
            return self.label
        if self.present is not None:
            return f"{self.name} {'is given' if self.present else 'is missing'}"
        if self.equals is not None:
            return f"{self.name} is {_said(self.equals)}"
        if self.one_of is not None:
            options = [_said(option) for option in self.one_of]
            if len(options) == 1:
                return f"{self.name} is {options[0]}"
            return f"{self.name} is one of {', '.join(options[:-1])} or {options[-1]}"
        if self.range is not None:
            low, high = (format_number(bound) for bound in self.range)
            return f"{self.name} from {low} to {high}"
        assert self.matches is not None
        return describe_pattern(self.name, self.matches.pattern)


def _said(value: Any) -> str:
    """A value a rule names, as written: numbers as people write them, text as it is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value)
    return str(value)
