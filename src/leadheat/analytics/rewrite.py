"""Write learned points and half-lives into the team's own playbook text.

The playbook stays the team's file: comments, order and every other section are kept; only
the ``points`` and ``half_life`` lines of the ``[signals.*]`` tables that changed are
rewritten, each with a comment giving the old value and the evidence, and signals the
current playbook lacks are added at the end. The result is parsed back and compared with what
was meant, so a playbook written in a shape this editor does not understand is an error,
never a silently different file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from leadheat.playbook import parse_playbook

_HEADER = re.compile(r"^\s*\[\s*signals\s*\.\s*(\"[^\"]+\"|'[^']+'|[A-Za-z0-9_-]+)\s*\]")
_RULES = re.compile(r"^\s*\[\[\s*signals\s*\.\s*(\"[^\"]+\"|'[^']+'|[A-Za-z0-9_-]+)\s*\.\s*rules")
_TABLE = re.compile(r"^\s*\[")
_KEY = re.compile(r"^(\s*)(points|half_life)\s*=")


class RewriteError(ValueError):
    """The playbook could not be edited in place (say which signal)."""


@dataclass(frozen=True)
class Change:
    """New values for one signal; ``comment`` goes on its points line."""

    name: str
    points: float
    half_life: timedelta
    comment: str
    rule_factor: float | None = None
    """Rule points are multiplied by this (their ratio to the signal's points is kept)."""


def number(value: float) -> str:
    """Three significant digits, as TOML reads them back.

    >>> number(4.2345), number(-0.000123), number(1200.0), number(0.0)
    ('4.23', '-0.000123', '1200', '0')
    """
    if value == 0:
        return "0"
    text = f"{value:.3g}"
    if "e" in text:
        text = f"{float(text):f}".rstrip("0").rstrip(".")
    return text


def duration(span: timedelta) -> str:
    """A half-life as a playbook writes it: whole days from 20 days up, tenths of a day from
    one day (a rounded 3.4 days would be 12 % off), else hours.

    >>> day = timedelta(days=1)
    >>> duration(24.4 * day), duration(3.44 * day), duration(timedelta(hours=7.2))
    ('24d', '3.4d', '7h')
    """
    days = span / timedelta(days=1)
    if days >= 20:
        return f"{round(days)}d"
    if days >= 1:
        return f"{round(days, 1):g}d"
    return f"{max(round(span / timedelta(hours=1)), 1)}h"


def _unquote(name: str) -> str:
    return name[1:-1] if name[:1] in "\"'" else name


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f'"{name}"'


def rewrite(source: str, changes: list[Change], kept: dict[str, str]) -> str:
    """``source`` with ``changes`` written in; ``kept`` (signal → why) get a note on their
    table's header line."""
    lines = source.splitlines()
    wanted = {c.name: c for c in changes}
    done: set[str] = set()
    out: list[str] = []
    current: str | None = None
    in_rules = False
    wrote_points = wrote_half_life = False

    def close() -> None:
        """At the end of a ``[signals.X]`` table: add the lines it did not have."""
        if current is None or current not in wanted or in_rules:
            return
        change = wanted[current]
        at = len(out)
        while at > 0 and (not out[at - 1].strip() or out[at - 1].lstrip().startswith("#")):
            at -= 1
        extra = []
        if not wrote_points:
            extra.append(f"points = {number(change.points)}  # {change.comment}")
        if not wrote_half_life:
            extra.append(f'half_life = "{duration(change.half_life)}"')
        out[at:at] = extra

    for original in lines:
        line = original
        header = _HEADER.match(line)
        rules = _RULES.match(line)
        if header or rules or _TABLE.match(line):
            if not in_rules:
                close()
            if header:
                current = _unquote(header.group(1))
                in_rules = False
                wrote_points = wrote_half_life = False
                if current in wanted:
                    done.add(current)
                if current in kept:
                    line = f"{line.split('#')[0].rstrip()}  # kept: {kept[current]}"
            elif rules:
                name = _unquote(rules.group(1))
                in_rules = True
                if name != current:
                    current = name
            else:
                current = None
                in_rules = False
            out.append(line)
            continue
        key = _KEY.match(line)
        if current in wanted and key:
            change = wanted[current]
            indent, which = key.group(1), key.group(2)
            if in_rules:
                if which == "points" and change.rule_factor is not None:
                    old = float(line.split("=", 1)[1].split("#")[0].strip())
                    line = f"{indent}points = {number(old * change.rule_factor)}"
            elif which == "points":
                line = f"{indent}points = {number(change.points)}  # {change.comment}"
                wrote_points = True
            else:
                line = f'{indent}half_life = "{duration(change.half_life)}"'
                wrote_half_life = True
        out.append(line)
    if not in_rules:
        close()
    added = [c for c in changes if c.name not in done]
    if added:
        out.append("")
        out.append("# Signals learned from the history that this playbook did not score yet")
        for change in added:
            out.append(f"[signals.{_key(change.name)}]")
            out.append(f"points = {number(change.points)}  # {change.comment}")
            out.append(f'half_life = "{duration(change.half_life)}"')
    text = "\n".join(out) + "\n"
    _verify(text, changes)
    return text


def _verify(text: str, changes: list[Change]) -> None:
    book = parse_playbook(text, "suggested")
    for change in changes:
        signal = book.signals.get(change.name)
        if (
            signal is None
            or number(signal.points) != number(change.points)
            or book.half_life_for(change.name) != _parsed(duration(change.half_life))
        ):
            raise RewriteError(
                f"[signals.{change.name}]: could not write its points and half_life in place "
                "(write the table as [signals.NAME] with points = … lines)"
            )


def _parsed(text: str) -> timedelta:
    from leadheat.times import parse_duration

    return parse_duration(text)
