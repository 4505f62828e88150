"""Where commands write: data to stdout, messages and errors to stderr, and the two shapes
every listing takes (JSON for scripts, a table for people)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console, ConsoleDimensions
from rich.table import Table

UNWRAPPED = 1000
"""Columns a table may take when the output is not a terminal (a log, a pipe, a file)."""


class _Console(Console):
    """Rich's console, but not cut to 80 columns when writing to a log or a pipe: a terminal
    has a width to fit, a file does not, and a table squeezed to 80 columns there wraps each
    reason over many lines. ``COLUMNS``, when set, still decides."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self.is_terminal or "COLUMNS" in os.environ:
            return size
        return ConsoleDimensions(UNWRAPPED, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


out = _Console(highlight=False, markup=False, emoji=False, soft_wrap=True)  # data: [x], :x: as is
err = _Console(stderr=True, highlight=False, soft_wrap=True)

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
