"""Numbers and patterns as people write them: ``1,000,000`` rather than ``1e+06``, and
"title mentions ceo, cto or vp" rather than ``(?i)\\bc[et]o\\b|vp``. Every place that names
a playbook rule to a person (why a lead is hot, the lead page, ``leadheat show``, the API's
explanation) says it this way, unless the rule has a ``label`` of its own.
"""

from __future__ import annotations

import itertools
import math
import re

SHOWN_WORDS = 6
"""Alternatives a pattern's description names before counting the rest."""
_FLAGS = re.compile(r"^\(\?[aiLmsux]+\)")
_ANCHORS = re.compile(r"\\b|\\B|\^|\$|\\A|\\Z")
_CLASS = re.compile(r"\[([A-Za-z0-9]+)\]")
_ESCAPED = re.compile(r"\\([^A-Za-z0-9])")
_SPECIAL = set(".*+?{}()[]|\\")


def format_number(value: float) -> str:
    """A number as a person writes it: whole numbers with thousands separators, others to
    three significant figures, never in exponent notation.

    >>> format_number(1000000), format_number(20.0), format_number(62.4321), format_number(0.5)
    ('1,000,000', '20', '62.4', '0.5')
    >>> format_number(-1234.5), format_number(0.0001234), format_number(float("inf"))
    ('-1,234', '0.000123', 'inf')
    """
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e18:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    text = f"{value:.3g}"
    if "e" in text:
        digits = max(0, 2 - math.floor(math.log10(abs(value))))
        text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text


def _alternatives(pattern: str) -> list[str]:
    """The top-level ``|`` branches of a pattern (those inside brackets or groups stay)."""
    parts, depth, current, escaped, in_class = [], 0, "", False, False
    for char in pattern:
        if escaped:
            current += char
            escaped = False
            continue
        if char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    parts.append(current)
    return parts


def _words(branch: str) -> list[str] | None:
    """The literal texts one branch matches (``c[eo]o`` is ``ceo`` and ``coo``), or ``None``
    when it is more than words and small letter sets."""
    text = _ANCHORS.sub("", branch)
    text = text.replace("\\s+", " ").replace("\\s", " ").replace("\\d", "#")
    group = re.fullmatch(r"\(\?:(.*)\)", text)
    if group is not None and "(" not in group.group(1):
        inner = [_words(part) for part in _alternatives(group.group(1))]
        if any(found is None for found in inner):
            return None
        return [word for found in inner for word in found or []]
    pieces: list[list[str]] = []
    position = 0
    for found in _CLASS.finditer(text):
        pieces.append([text[position : found.start()]])
        pieces.append(list(found.group(1)))
        position = found.end()
    pieces.append([text[position:]])
    words = ["".join(choice) for choice in itertools.product(*pieces)]
    if len(words) > 8:
        return None
    plain = [_ESCAPED.sub(r"\1", word) for word in words]
    if any(_SPECIAL & set(_ESCAPED.sub("", word)) for word in words):
        return None
    return [word.strip() for word in plain if word.strip()]


def describe_pattern(name: str, pattern: str) -> str:
    """A ``matches`` test in words: the texts it looks for when it is a list of words (the
    usual playbook pattern), else that it matches a pattern, never the expression itself.

    >>> describe_pattern("title", r"(?i)founder|\\bc[et]o\\b|vice president|vp")
    'title mentions founder, ceo, cto, vice president or vp'
    >>> describe_pattern("url", "(?i)/pricing|/plans")
    'url mentions /pricing or /plans'
    >>> describe_pattern("title", r"(?i)\\bstudent\\b")
    'title mentions student'
    >>> describe_pattern("title", "a|b|c|d|e|f|g|h")
    'title mentions a, b, c, d, e, f or 2 more'
    >>> describe_pattern("email", r"^[^@]+@(gmail|yahoo)\\.com$")
    'email matches a text pattern'
    """
    body = _FLAGS.sub("", pattern)
    found: list[str] = []
    for branch in _alternatives(body):
        words = _words(branch)
        if words is None:
            return f"{name} matches a text pattern"
        found.extend(word for word in words if word not in found)
    if not found:
        return f"{name} matches a text pattern"
    shown = found[:SHOWN_WORDS]
    rest = len(found) - len(shown)
    if rest:
        return f"{name} mentions {', '.join(shown)} or {rest} more"
    if len(shown) == 1:
        return f"{name} mentions {shown[0]}"
    return f"{name} mentions {', '.join(shown[:-1])} or {shown[-1]}"
