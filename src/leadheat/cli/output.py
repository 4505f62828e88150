"""Where commands write: data to stdout, messages and errors to stderr, and the two shapes
every listing takes (JSON for scripts, a table for people)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

out = Console(highlight=False, markup=False, soft_wrap=True)  # data may contain [brackets]
err = Console(stderr=True, highlight=False, soft_wrap=True)

Item = dict[str, Any]


def emit(data: Any) -> None:
    """Print ``data`` as JSON (what ``--json`` gives); values JSON lacks, such as dates, as
    their text."""
    out.print_json(json.dumps(data, default=str))


def listing(
    data: Sequence[Item],
    as_json: bool,
    headers: Sequence[str],
    cells: Callable[[Item], Sequence[str]],
) -> None:
    """A list as JSON for scripts, or as a table of ``cells(item)`` under ``headers``."""
    if as_json:
        emit(data)
        return
    table = Table(*headers)
    for item in data:
        table.add_row(*cells(item))
    out.print(table)
