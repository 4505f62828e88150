"""Options that many commands share, so that ``--at``, ``--json`` and ``--limit`` read and
behave the same everywhere."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from leadheat.times import parse_instant

AtOption = Annotated[
    str | None,
    typer.Option("--at", help="A past or present time (ISO 8601 with offset, or epoch seconds)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
LimitOption = Annotated[int | None, typer.Option("--limit", min=1, help="At most N leads.")]


def instant(text: str | None) -> datetime | None:
    """The time an option such as ``--at`` names, or None (now) when it was not given.

    >>> instant("2024-06-01T09:30:00+02:00")
    datetime.datetime(2024, 6, 1, 7, 30, tzinfo=datetime.timezone.utc)
    >>> instant(None) is None
    True
    """
    return None if text is None else parse_instant(text)
