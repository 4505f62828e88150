"""Playbook ``matches`` patterns, run by a linear-time engine.

A pattern runs on lead values anyone can send (a title, a URL), and Python's backtracking
``re`` takes time exponential in the value for patterns as ordinary as ``^(\\w+\\s?)*$``: a
27-character title held the interpreter for 8.6 s, health checks included. RE2 (Google's
engine) runs every pattern in time linear in the value, so no value can freeze the server; the
price is that it cannot run what needs backtracking (backreferences, lookahead and
lookbehind), and a pattern that needs it is refused when the playbook is read.

A pattern must also be valid Python syntax, the language the playbook documents; the two
agree on what the shipped and documented patterns mean (``(?i)``, ``|``, ``\\b``, classes),
except that RE2's ``\\w``, ``\\d``, ``\\s`` and ``\\b`` know ASCII only.
"""

from __future__ import annotations

import re
from typing import Any

import re2
from re2 import _re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the refusal is reported as a PatternError, not on stderr
_OPTIONS.never_capture = True  # only "found or not" is asked: no group spans to build
_UNANCHORED = _re2.RE2.Anchor.UNANCHORED


class PatternError(ValueError):
    """A pattern that is not a regular expression, or one RE2 cannot run in linear time."""


class Pattern:
    """A compiled playbook pattern: ``search`` says whether it occurs anywhere in a text.

    >>> vp = Pattern("(?i)vp|vice president")
    >>> vp.search("VP Sales"), vp.search("Engineer")
    (True, False)
    >>> Pattern("(?i)^(\\\\w+\\\\s?)*$").search("a" * 5000 + "!")  # at once, not in centuries
    False
    >>> Pattern("(a)\\\\1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    leadheat.scoring.patterns.PatternError: '(a)\\\\1' cannot run in linear time (...): ...
    """

    __slots__ = ("_engine", "pattern")

    def __init__(self, pattern: str) -> None:
        try:
            re.compile(pattern)
        except (re.error, OverflowError, RecursionError) as error:  # a{99999999999}, ((((…
            raise PatternError(f"{pattern!r} is not a regular expression: {error}") from None
        engine = _re2.RE2(pattern.encode("utf-8", "surrogatepass"), _OPTIONS)
        if not engine.ok():
            reason = engine.error().decode("utf-8", "replace")
            raise PatternError(
                f"{pattern!r} cannot run in linear time ({reason}): backreferences, "
                "lookahead, lookbehind, atomic groups and possessive repeats are not supported"
            )
        self.pattern = pattern
        self._engine = engine

    def search(self, text: str) -> bool:
        """Whether the pattern occurs anywhere in ``text``, in time linear in its length."""
        encoded = text.encode("utf-8", "surrogatepass")
        span: tuple[int, int] = self._engine.Match(_UNANCHORED, encoded, 0, len(encoded))[0]
        return span[0] != -1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pattern) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)

    def __repr__(self) -> str:
        return f"Pattern({self.pattern!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Pattern, (self.pattern,))
