"""CSV files in: leads, events, touches and outcomes, validated row by row.

A file is read whole before anything is stored. Every problem is reported as
``line N, column C: what is wrong`` (lines as an editor numbers them, the header is line 1);
the caller stores nothing when there is one, unless it was asked to set bad rows aside.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any, Generic, TextIO, TypeVar

from sqlalchemy import FromClause, String

from leadheat.bulk import paused_gc
from leadheat.identity import (
    MAX_ID_CHARS,
    LeadKey,
    LeadKeyError,
    normalise_email,
    parse_lead_key,
)
from leadheat.ingest import segment
from leadheat.ingest.records import OutcomeInput, TouchInput
from leadheat.store.events import EventBatch, derived_event_id
from leadheat.store.fields import COMMON_FIELDS
from leadheat.store.models import Lead, Touch
from leadheat.times import (
    EPOCH,
    MAX_INSTANT,
    TimeFormatError,
    from_micros,
    parse_instant,
    to_micros,
)

MAX_MICROS = to_micros(MAX_INSTANT)


def _width(table: FromClause, column: str) -> int:
    """The characters a string column holds."""
    kind = table.c[column].type
    if not isinstance(kind, String) or kind.length is None:
        raise TypeError(f"{column} is not a string column of fixed width")
    return kind.length


FIELD_WIDTHS = {name: _width(Lead.__table__, name) for name in COMMON_FIELDS}
"""The characters each lead field's column holds: a longer value is a bad row here, where it
can be named, not a failed transaction in PostgreSQL (SQLite would store it whole)."""

Row = TypeVar("Row")
Progress = Callable[[int], None]
"""Called with the number of characters read so far, for progress bars."""


@dataclass(frozen=True)
class BadRow:
    """A row that cannot be imported, where it is and why."""

    line: int
    column: str | None
    message: str
    values: Sequence[str] = ()

    def __str__(self) -> str:
        where = f"line {self.line}" + (f', column "{self.column}"' if self.column else "")
        return f"{where}: {self.message}"


class CsvImportError(ValueError):
    """A file with bad rows; nothing of it was stored."""

    def __init__(self, path: Path, problems: Sequence[BadRow], shown: int = 10) -> None:
        self.problems = list(problems)
        lines = [str(p) for p in self.problems[:shown]]
        more = len(self.problems) - shown
        if more > 0:
            lines.append(f"... and {more} more bad rows")
        super().__init__(f"{path}: " + "\n  ".join(["nothing was imported:", *lines]))


@dataclass
class Parsed(Generic[Row]):
    """The good rows of a file, with the line each came from, and the bad ones."""

    rows: list[Row] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)
    read: int = 0


@dataclass(frozen=True)
class LeadRecord:
    keys: tuple[LeadKey, ...]
    fields: dict[str, Any]
    created_at: datetime | None


class RowError(ValueError):
    def __init__(self, column: str | None, message: str) -> None:
        self.column = column
        super().__init__(message)


def snake_case(name: str) -> str:
    """Column names as field names: ``"Lead Source"`` → ``"lead_source"``.

    >>> snake_case("Total Time Spent on Website"), snake_case("E-mail")
    ('total_time_spent_on_website', 'e_mail')
    """
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def parse_mapping(items: Sequence[str]) -> dict[str, str]:
    """``["CSV column=field", …]`` as a dict, refusing malformed entries."""
    mapping = {}
    for item in items:
        column, sep, target = item.partition("=")
        if not sep or not column.strip() or not target.strip():
            raise ValueError(f'--map {item!r} must look like "CSV column=field"')
        mapping[column.strip()] = target.strip()
    return mapping


def _counted(lines: Iterable[str], progress: Progress) -> Iterator[str]:
    """The lines, reporting the characters read so far every 50,000 lines."""
    done = 0
    for number, text in enumerate(lines, start=1):
        done += len(text)
        if number % 50_000 == 0:
            progress(done)
        yield text
    progress(done)


def _table(
    path: Path,
    required: Sequence[str],
    mapping: Mapping[str, str] | None,
    parsed: Parsed[Any] | ParsedEvents,
    progress: Progress | None,
) -> Iterator[tuple[int, dict[str, str], list[str]]]:
    """Rows as ``{field: text}`` after the header and the column map are applied."""
    fields, rows = _columns(path, required, mapping, parsed, progress)
    for line, values in rows:
        yield line, dict(zip(fields, values, strict=False)), values


def _columns(
    path: Path,
    required: Sequence[str],
    mapping: Mapping[str, str] | None,
    parsed: Parsed[Any] | ParsedEvents,
    progress: Progress | None,
) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The field name of each column, and the well-formed rows as ``(line, values)``.

    ``mapping`` is ``None`` for files that take no ``--map`` (their columns have fixed names).
    Unreadable rows, rows of the wrong width and rows with bytes that are not UTF-8 (or
    with a NUL character) go to ``parsed.bad``.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    clean = _is_clean(path)
    # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark, which would otherwise
    # stick to the first column's name (and a --map naming that column would not find it)
    handle = path.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        lines: Iterable[str] = handle if progress is None else _counted(handle, progress)
        reader = csv.reader(lines, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise CsvImportError(
                path, [BadRow(1, None, "the file is empty (a header row is needed)")]
            ) from None
        except csv.Error as error:
            raise CsvImportError(path, [BadRow(1, None, _csv_problem(error))]) from None
        names, fields = header_fields(path, header, required, mapping)
    except BaseException:
        handle.close()
        raise
    return fields, _rows(handle, reader, names, clean, parsed)


def header_fields(
    path: Path, header: Sequence[str], required: Sequence[str], mapping: Mapping[str, str] | None
) -> tuple[list[str], list[str]]:
    """The column names of a header row and the field each column names, refusing a header
    that cannot be read (``mapping`` is ``None`` for files that take no ``--map``)."""
    hint = 'map one with --map "COLUMN={}"' if mapping is not None else 'rename a column to "{}"'
    mapping = mapping or {}
    names = [h.strip() for h in header]
    for index, name in enumerate(names):
        problem = _text_problem(name)
        if problem is not None:
            raise CsvImportError(path, [BadRow(1, f"#{index + 1}", f"header {problem}")])
    missing_map = [column for column in mapping if column not in names]
    if missing_map:
        raise CsvImportError(
            path,
            [
                BadRow(
                    1,
                    column,
                    f"--map names a column the file does not have (it has: {', '.join(names)})",
                )
                for column in missing_map
            ],
        )
    fields = [mapping.get(name, snake_case(name)) for name in names]
    _refuse_twice_named(path, names, fields)
    absent = [name for name in required if name not in fields]
    if absent:
        raise CsvImportError(
            path,
            [
                BadRow(
                    1,
                    name,
                    f"required column is missing (columns are: {', '.join(names)}); "
                    + hint.format(name),
                )
                for name in absent
            ],
        )
    return names, fields


def _rows(
    handle: TextIO,
    reader: Any,
    names: list[str],
    clean: bool,
    parsed: Parsed[Any] | ParsedEvents,
) -> Iterator[tuple[int, list[str]]]:
    """Checked records as ``(first line, values)``; the file closes when they run out."""
    width = len(names)
    done = reader.line_num  # the last line of the previous record
    with handle:
        while True:
            try:
                for values in reader:
                    line, done = done + 1, reader.line_num
                    if not values:  # a blank line
                        continue
                    parsed.read += 1
                    if len(values) != width:
                        parsed.bad.append(
                            BadRow(
                                line, None, f"expected {width} fields, found {len(values)}", values
                            )
                        )
                        continue
                    if not clean:
                        bad = next(
                            (
                                (names[i], problem)
                                for i, v in enumerate(values)
                                if (problem := _text_problem(v)) is not None
                            ),
                            None,
                        )
                        if bad is not None:
                            parsed.bad.append(BadRow(line, bad[0], bad[1], values))
                            continue
                    yield line, values
                return
            except csv.Error as error:
                parsed.read += 1
                parsed.bad.append(BadRow(done + 1, None, _csv_problem(error)))
                done = reader.line_num


def _csv_problem(error: csv.Error) -> str:
    """What the csv module's complaint means for the person who saved the file: a field over
    its size limit is not bad quoting when the field has no quote at all.

    >>> _csv_problem(csv.Error("field larger than field limit (131072)"))
    'a field is longer than 131072 characters (or a quote opened in it is never closed)'
    """
    if str(error).startswith("field larger than field limit"):
        return (
            f"a field is longer than {csv.field_size_limit()} characters "
            "(or a quote opened in it is never closed)"
        )
    return f"broken CSV quoting ({error})"


def _is_clean(path: Path) -> bool:
    """Whether the whole file decodes as UTF-8 and holds no NUL: then no value needs checking
    on its own."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                if b"\x00" in block:
                    return False
                decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _text_problem(text: str) -> str | None:
    """What makes a value unstorable, or ``None``: bytes that are not UTF-8, or the NUL
    character, which PostgreSQL's text and jsonb cannot hold (SQLite can: refusing it on
    every backend keeps a file's import the same everywhere).

    >>> _text_problem("ok"), _text_problem("a" + chr(0))
    (None, 'contains the NUL character (U+0000), which no text column can hold')
    """
    if "\x00" in text:
        return "contains the NUL character (U+0000), which no text column can hold"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid UTF-8 (save the file as UTF-8)"
    return None


def _refuse_twice_named(path: Path, names: Sequence[str], fields: Sequence[str]) -> None:
    """Refuse two columns that name the same field (``email,email``, or ``Page URL`` and
    ``page_url``): one would silently win over the other, row after row."""
    first: dict[str, str] = {}
    problems = []
    for name, target in zip(names, fields, strict=True):
        if not target:
            continue
        if target in first:
            problems.append(
                BadRow(
                    1,
                    name,
                    f'names the same field "{target}" as column "{first[target]}" '
                    "(rename or remove one)",
                )
            )
        else:
            first[target] = name
    if problems:
        raise CsvImportError(path, problems)


def _instant(
    row: Mapping[str, str],
    column: str,
    now: datetime,
    tolerance: timedelta,
    oldest: datetime | None = None,
) -> datetime:
    try:
        instant = parse_instant(row[column])
    except TimeFormatError as error:
        raise RowError(column, str(error)) from None
    if instant > now + tolerance:
        raise RowError(
            column,
            f"{row[column]!r} is in the future (more than {tolerance} after now, "
            f"{now.isoformat()}); check the time zone",
        )
    if oldest is not None and instant < oldest:
        raise RowError(
            column,
            f"{row[column]!r} is older than the playbook's [ingest] max_age allows (before "
            f"{oldest.isoformat()}); check the clock that wrote it, or raise max_age",
        )
    return instant


def _lead(row: Mapping[str, str], column: str = "lead") -> LeadKey:
    try:
        return parse_lead_key(row[column])
    except LeadKeyError as error:
        raise RowError(column, str(error)) from None


def _text(row: Mapping[str, str], column: str, width: int = 100) -> str:
    value = row[column].strip()
    if not value:
        raise RowError(column, "is empty")
    if len(value) > width:
        raise RowError(column, f"is longer than {width} characters")
    return value


def _event_type(text: str) -> str:
    """A row's event type as every ingest path stores it: snake_case, as the Segment routes
    store a track call's name (``"Demo Request"`` → ``demo_request``)."""
    name = segment.snake_case(_text({"type": text}, "type"))
    if not name:
        raise RowError("type", "has no letters or digits")
    return name


def _optional(row: Mapping[str, str], column: str, width: int | None = None) -> str | None:
    value = row.get(column, "").strip()
    if width is not None and len(value) > width:
        raise RowError(column, f"is longer than {width} characters")
    return value or None


@dataclass
class ParsedEvents:
    """The good events of a file as one column-wise batch, and the bad rows."""

    batch: EventBatch = field(default_factory=EventBatch)
    lines: list[int] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)
    read: int = 0


_ONE_MICRO = timedelta(microseconds=1)
_TOUCH_KIND_WIDTH = _width(Touch.__table__, "kind")
_TOUCH_WIDTH = _width(Touch.__table__, "result")  # and rep's


def parse_events(
    path: Path,
    now: datetime,
    tolerance: timedelta,
    progress: Progress | None = None,
    oldest: datetime | None = None,
) -> ParsedEvents:
    """Events: ``lead``, ``type``, ``timestamp``, optional ``id``; other columns are
    properties. Rows without an id get a derived one, so importing a file twice adds nothing.

    Built for files of millions of rows: columns are read by position, lead references and
    event types are checked once per distinct value, and timestamps take a fast path for
    ISO 8601 (anything else goes through the full parser, which explains its errors).
    """
    with paused_gc():
        return _parse_events(path, now, tolerance, progress, oldest)


def _parse_events(
    path: Path,
    now: datetime,
    tolerance: timedelta,
    progress: Progress | None,
    oldest: datetime | None,
) -> ParsedEvents:
    parsed = ParsedEvents()
    fields, rows = _columns(path, EVENT_COLUMNS, None, parsed, progress)
    reader = EventRows(fields, now, tolerance, oldest)
    parsed.batch.property_names = reader.property_names
    batch = parsed.batch
    read = reader.read
    for line, values in rows:
        try:
            lead, event_type, micros, event_id, properties = read(values)
        except RowError as problem:
            parsed.bad.append(BadRow(line, problem.column, str(problem), values))
            continue
        batch.leads.append(lead)
        batch.types.append(event_type)
        batch.at_us.append(micros)
        batch.event_ids.append(event_id)
        batch.properties_json.append(properties)
        parsed.lines.append(line)
    return parsed


EVENT_COLUMNS = ("lead", "type", "timestamp")
"""The columns every events file has."""
EVENT_RESERVED = frozenset({"lead", "type", "timestamp", "id"})
"""The columns of an events file that are not properties."""

EventRow = tuple[LeadKey, str, int, str, str | None]
"""An event as a file row gives it: lead, type, instant (µs), id, properties as JSON."""


class EventRows:
    """Reads the rows of one events file, whose columns are ``fields``, in file order.

    Columns are read by position, lead references and event types are checked once per
    distinct value, and timestamps take a fast path for ISO 8601 (anything else goes through
    the full parser, which explains its errors). Rows without an id get a derived one, the
    n-th identical row of the file its own (:func:`derived_event_id`), so rows must come in
    file order.
    """

    def __init__(
        self,
        fields: Sequence[str],
        now: datetime,
        tolerance: timedelta,
        oldest: datetime | None = None,
    ) -> None:
        self.now, self.tolerance, self.oldest = now, tolerance, oldest
        self.at_lead = fields.index("lead")
        self.at_type = fields.index("type")
        self.at_time = fields.index("timestamp")
        self.at_id = fields.index("id") if "id" in fields else None
        self.extra = [
            (i, name) for i, name in enumerate(fields) if name not in EVENT_RESERVED and name
        ]
        encode = json.encoder.encode_basestring_ascii  # what json.dumps uses
        self.keys = [encode(name) + ":" for _, name in self.extra]
        self.pick = itemgetter(*[i for i, _ in self.extra]) if self.extra else None
        self.full = "{" + ",".join(key.replace("%", "%%") + "%s" for key in self.keys) + "}"
        self.property_names = frozenset(name for _, name in self.extra)
        self.latest_us = to_micros(now + tolerance)
        self.earliest_us = to_micros(oldest) if oldest is not None else 0
        self.lead_keys: dict[str, LeadKey] = {}
        self.types: dict[str, str] = {}
        self.seen: dict[tuple[object, ...], int] = {}

    def lead(self, text: str) -> LeadKey:
        """The lead a ``lead`` value names (remembered per distinct value)."""
        lead = self.lead_keys.get(text)
        if lead is None:
            lead = self.lead_keys[text] = _lead({"lead": text})
        return lead

    def event_type(self, text: str) -> str:
        """The type a ``type`` value names (remembered per distinct value)."""
        event_type = self.types.get(text)
        if event_type is None:
            event_type = self.types[text] = _event_type(text)
        return event_type

    def read(self, values: Sequence[str]) -> EventRow:
        """One row's event; raises :class:`RowError` naming the column that is wrong."""
        lead = self.lead(values[self.at_lead])
        event_type = self.event_type(values[self.at_type])
        stamp = values[self.at_time]
        now, tolerance, oldest = self.now, self.tolerance, self.oldest
        try:
            moment = datetime.fromisoformat(stamp)
            if moment.tzinfo is None:
                raise ValueError(stamp)
            micros = (moment - EPOCH) // _ONE_MICRO
        except ValueError:
            micros = to_micros(_instant({"timestamp": stamp}, "timestamp", now, tolerance, oldest))
        if not self.earliest_us <= micros <= self.latest_us or micros > MAX_MICROS:
            # says what is wrong
            _instant({"timestamp": stamp}, "timestamp", now, tolerance, oldest)
        properties = None
        pick, keys, encode = self.pick, self.keys, json.encoder.encode_basestring_ascii
        if pick is not None:
            picked = pick(values)
            chosen = picked if isinstance(picked, tuple) else (picked,)
            if all(chosen):
                properties = self.full % tuple(map(encode, chosen))
            elif any(chosen):
                properties = (
                    "{"
                    + ",".join(k + encode(v) for k, v in zip(keys, chosen, strict=True) if v)
                    + "}"
                )
        event_id = values[self.at_id].strip() if self.at_id is not None else ""
        if not event_id:
            signature = (lead, event_type, micros, properties)
            count = self.seen.get(signature, 0)
            self.seen[signature] = count + 1
            event_id = derived_event_id(
                lead,
                event_type,
                from_micros(micros),
                {name: values[i] for i, name in self.extra if values[i]},
                count,
            )
        elif len(event_id) > 200:
            raise RowError("id", "is longer than 200 characters")
        return lead, event_type, micros, event_id, properties


def parse_leads(
    path: Path, mapping: Mapping[str, str], progress: Progress | None = None
) -> Parsed[LeadRecord]:
    """Leads: an ``email`` or ``external_id`` column (after ``--map``), optional
    ``created_at`` (the CRM's date); every other column becomes an attribute."""
    parsed: Parsed[LeadRecord] = Parsed()
    rows = _table(path, (), mapping, parsed, progress)
    for line, row, values in rows:
        if "email" not in row and "external_id" not in row:
            raise CsvImportError(
                path,
                [
                    BadRow(
                        1,
                        None,
                        'no key column: name one "email" or "external_id", or map one '
                        'with --map "COLUMN=email" / --map "COLUMN=external_id"',
                    )
                ],
            )
        try:
            keys = []
            if row.get("email", "").strip():
                try:
                    keys.append(LeadKey("email", normalise_email(row["email"])))
                except LeadKeyError as error:
                    raise RowError("email", str(error)) from None
            if row.get("external_id", "").strip():
                keys.append(LeadKey("external", _optional(row, "external_id", MAX_ID_CHARS) or ""))
            if not keys:
                raise RowError("email", "the lead has neither an email nor an external id")
            created = None
            if row.get("created_at", "").strip():
                try:
                    created = parse_instant(row["created_at"])
                except TimeFormatError as error:
                    raise RowError("created_at", str(error)) from None
            fields = {
                k: v.strip()
                for k, v in row.items()
                if k not in ("email", "external_id", "created_at") and k and v.strip() != ""
            }
            for name, width in FIELD_WIDTHS.items():
                if len(fields.get(name, "")) > width:
                    raise RowError(name, f"is longer than {width} characters")
        except RowError as problem:
            parsed.bad.append(BadRow(line, problem.column, str(problem), values))
            continue
        parsed.rows.append(LeadRecord(tuple(keys), fields, created))
        parsed.lines.append(line)
    return parsed


def parse_touches(
    path: Path,
    now: datetime,
    tolerance: timedelta,
    progress: Progress | None = None,
    oldest: datetime | None = None,
) -> Parsed[TouchInput]:
    """Touches: ``lead``, ``kind``, ``timestamp``, optional ``direction``, ``result``,
    ``rep``, ``note``."""
    parsed: Parsed[TouchInput] = Parsed()
    for line, row, values in _table(path, ("lead", "kind", "timestamp"), None, parsed, progress):
        try:
            direction = (_optional(row, "direction") or "outbound").lower()
            if direction not in ("inbound", "outbound"):
                raise RowError("direction", f"{direction!r} must be inbound or outbound")
            touch = TouchInput(
                _lead(row),
                _text(row, "kind", _TOUCH_KIND_WIDTH),
                _instant(row, "timestamp", now, tolerance, oldest),
                direction,
                _optional(row, "result", _TOUCH_WIDTH),
                _optional(row, "rep", _TOUCH_WIDTH),
                _optional(row, "note"),
            )
        except RowError as problem:
            parsed.bad.append(BadRow(line, problem.column, str(problem), values))
            continue
        parsed.rows.append(touch)
        parsed.lines.append(line)
    return parsed


def parse_outcomes(
    path: Path,
    now: datetime,
    tolerance: timedelta,
    progress: Progress | None = None,
    oldest: datetime | None = None,
) -> Parsed[OutcomeInput]:
    """Outcomes: ``lead``, ``outcome`` (won, lost, disqualified), ``timestamp``, optional
    ``reason``."""
    parsed: Parsed[OutcomeInput] = Parsed()
    for line, row, values in _table(path, ("lead", "outcome", "timestamp"), None, parsed, progress):
        try:
            outcome = row["outcome"].strip().lower()
            if outcome not in ("won", "lost", "disqualified"):
                raise RowError("outcome", f"{row['outcome']!r} must be won, lost or disqualified")
            item = OutcomeInput(
                _lead(row),
                outcome,
                _instant(row, "timestamp", now, tolerance, oldest),
                _optional(row, "reason"),
            )
        except RowError as problem:
            parsed.bad.append(BadRow(line, problem.column, str(problem), values))
            continue
        parsed.rows.append(item)
        parsed.lines.append(line)
    return parsed


def write_bad_rows(path: Path, bad: Sequence[BadRow]) -> None:
    """Set bad rows aside with their reasons, for ``--skip-bad FILE``."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "column", "error", "values"])
        for row in bad:
            safe = [v.encode("utf-8", "replace").decode("utf-8") for v in row.values]
            writer.writerow([row.line, row.column or "", row.message, "|".join(safe)])
