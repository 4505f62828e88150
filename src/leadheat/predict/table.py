"""A CSV file as typed columns: what a team exports from its CRM or spreadsheet, read as is.

Exports are messy in the same few ways everywhere: a spreadsheet writes ``Select`` for "not
answered", an empty trailing column, ``Yes``/``No`` for flags, ``0`` for ``0.0``. Reading
them here, once, means the model and every baseline see the same cleaned values, and nobody
has to fix a file by hand before training.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from leadheat.scoring.conditions import PLACEHOLDERS, as_number

MISSING = PLACEHOLDERS | {"?", "n.a.", "#n/a", "missing", "not provided"}
"""Cell values (case-insensitive, trimmed) that mean "no value": a form's ``Select``, ``N/A``…"""

TRUE_WORDS = frozenset({"yes", "true", "y", "t"})
FALSE_WORDS = frozenset({"no", "false", "n", "f"})
POSITIVE_WORDS = TRUE_WORDS | {"1", "1.0", "won", "converted", "positive"}
NEGATIVE_WORDS = FALSE_WORDS | {"0", "0.0", "lost", "not converted", "negative"}


class TableError(ValueError):
    """A file or column that cannot be used; the message names the file, line and column."""


class Kind(StrEnum):
    """How a column's values are read: the model treats each kind differently."""

    NUMBER = "number"
    FLAG = "flag"
    CATEGORY = "category"


def clean(value: str) -> str | None:
    """A cell's value, or ``None`` when it is blank or a placeholder.

    >>> clean(" Select "), clean("N/A"), clean("-"), clean(" Mumbai ")
    (None, None, None, 'Mumbai')
    """
    value = value.strip()
    return None if value.casefold() in MISSING else value


@dataclass(frozen=True)
class Table:
    """Rows of a CSV file, column by column, placeholders already ``None``.

    ``lines`` holds the file line of each row (the header is line 1), so any later complaint
    about a value can say where it is.
    """

    source: str
    names: tuple[str, ...]
    columns: Mapping[str, Sequence[str | None]]
    lines: Sequence[int]

    def __len__(self) -> int:
        return len(self.lines)

    def column(self, name: str) -> Sequence[str | None]:
        """The values of one column; a clear error when the file has no such column."""
        if name not in self.columns:
            shown = ", ".join(f'"{n}"' for n in self.names[:12])
            more = " …" if len(self.names) > 12 else ""
            raise TableError(f'{self.source}: no column "{name}" (columns: {shown}{more})')
        return self.columns[name]

    def row(self, index: int) -> dict[str, str | None]:
        """One row as ``{column: value}``, the shape playbook rules read."""
        return {name: self.columns[name][index] for name in self.names}

    def take(self, indices: Sequence[int]) -> Table:
        """The rows at ``indices``, in that order: how splits and subsamples are made."""
        return Table(
            source=self.source,
            names=self.names,
            columns={n: [values[i] for i in indices] for n, values in self.columns.items()},
            lines=[self.lines[i] for i in indices],
        )

    def without(self, names: Iterable[str]) -> Table:
        """The table less some columns, each of which must exist (a typo is an error)."""
        gone = set(names)
        for name in gone:
            self.column(name)
        kept = tuple(n for n in self.names if n not in gone)
        return Table(self.source, kept, {n: self.columns[n] for n in kept}, self.lines)


def _records(
    text: Iterable[str], source: str
) -> tuple[int, list[str], list[tuple[int, list[str]]]]:
    """The header's line, the header, and ``(line, fields)`` of each data row; blank lines
    are skipped, a row of another width than the header is refused."""
    reader = csv.reader(text)
    rows: list[tuple[int, list[str]]] = []
    try:
        for fields in reader:
            if fields and (len(fields) > 1 or fields[0].strip()):
                rows.append((reader.line_num, fields))
    except csv.Error as error:
        raise TableError(f"{source}: line {reader.line_num}: not CSV ({error})") from None
    if not rows:
        raise TableError(f"{source}: the file is empty (it needs a header line)")
    (header_line, header), *data = rows
    for line, fields in data:
        if len(fields) != len(header):
            raise TableError(
                f"{source}: line {line}: {len(fields)} fields, the header has {len(header)}"
            )
    return header_line, header, data


def parse_table(text: Iterable[str], source: str = "<text>") -> Table:
    """Read CSV text (lines, or an open file) into a :class:`Table`.

    A header cell left empty names the column ``column N``; such a column with no value at
    all (what a spreadsheet leaves after a trailing comma) is left out.

    >>> table = parse_table(["id,origin,visits,", "1,Select,3,", "2,API,,"])
    >>> table.names
    ('id', 'origin', 'visits')
    >>> table.column("origin"), table.column("visits"), table.lines
    ([None, 'API'], ['3', None], [2, 3])
    """
    header_line, header, rows = _records(text, source)
    names = [cell.strip() or f"column {k}" for k, cell in enumerate(header, start=1)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise TableError(f'{source}: line {header_line}: column "{repeated[0]}" appears twice')
    cells: list[list[str | None]] = [
        [clean(fields[k]) for _, fields in rows] for k in range(len(names))
    ]
    kept = [
        k
        for k, name in enumerate(names)
        if header[k].strip() or any(v is not None for v in cells[k])
    ]
    return Table(
        source=source,
        names=tuple(names[k] for k in kept),
        columns={names[k]: cells[k] for k in kept},
        lines=[line for line, _ in rows],
    )


def _text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise TableError(f"{path}: cannot read the file ({error.strerror or error})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise TableError(f"{path}: line {line}: not UTF-8 text (save the file as UTF-8)") from None


def read_table(path: Path) -> Table:
    """Read a CSV file (UTF-8, with or without a byte-order mark) into a :class:`Table`."""
    return parse_table(io.StringIO(_text(path), newline=""), str(path))


def append_column(source: Path, target: Path, name: str, values: Sequence[str]) -> None:
    """Write ``source`` to ``target`` with one more column at the end: the same rows in the
    same order, every cell as the file had it (placeholders included), so the result can go
    back to the system it came from.
    """
    _, header, rows = _records(io.StringIO(_text(source), newline=""), str(source))
    if name in (cell.strip() for cell in header):
        raise TableError(f'{source}: already has a column "{name}" (rename or drop it)')
    if len(rows) != len(values):
        raise ValueError(f"{len(values)} values for {len(rows)} rows of {source}")
    with target.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*header, name])
        writer.writerows([*fields, value] for (_, fields), value in zip(rows, values, strict=True))


def infer_kind(values: Iterable[str | None]) -> Kind:
    """Flags when every value is yes/no-like, numbers when every value is a number, else
    categories. Missing values do not vote.

    >>> infer_kind(["Yes", None, "no"]), infer_kind(["1,200", "0"]), infer_kind(["3", "API"])
    (<Kind.FLAG: 'flag'>, <Kind.NUMBER: 'number'>, <Kind.CATEGORY: 'category'>)
    """
    present = {v.casefold() for v in values if v is not None}
    if present and present <= TRUE_WORDS | FALSE_WORDS:
        return Kind.FLAG
    if all(as_number(v) is not None for v in present):
        return Kind.NUMBER
    return Kind.CATEGORY


def binary_target(table: Table, name: str) -> tuple[list[int], str]:
    """The outcome column as 0/1 and the value read as 1 (the positive outcome).

    Accepts any two values of which one reads as positive (``1``, ``yes``, ``true``, ``won``,
    ``converted``) or the other as negative; every row needs one, since a row without an
    outcome teaches nothing.

    >>> binary_target(parse_table(["deal,x", "Won,1", "Lost,2", "won,3"]), "deal")
    ([1, 0, 1], 'Won')
    """
    values = table.column(name)
    for line, value in zip(table.lines, values, strict=True):
        if value is None:
            raise TableError(
                f'{table.source}: line {line}, column "{name}": no outcome '
                "(every training row needs one, e.g. 0/1 or yes/no)"
            )
    labels: dict[str, str] = {}
    for value in values:
        assert value is not None
        labels.setdefault(value.casefold(), value)
    if len(labels) != 2:
        shown = ", ".join(repr(v) for v in list(labels.values())[:5])
        raise TableError(
            f'{table.source}: column "{name}" is not a yes/no outcome: it has {len(labels)} '
            f"different values ({shown}); use two, e.g. 0/1"
        )
    first, second = labels
    if first in POSITIVE_WORDS or second in NEGATIVE_WORDS:
        positive = first
    elif second in POSITIVE_WORDS or first in NEGATIVE_WORDS:
        positive = second
    else:
        raise TableError(
            f'{table.source}: column "{name}": cannot tell which of {labels[first]!r} and '
            f"{labels[second]!r} is the positive outcome (use 0/1, yes/no or won/lost)"
        )
    return [int(v is not None and v.casefold() == positive) for v in values], labels[positive]
