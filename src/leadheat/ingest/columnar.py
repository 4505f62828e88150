"""Events files read a block at a time by Arrow's CSV parser and checked column by column.

The row-by-row reader (:func:`~leadheat.ingest.csv_files.parse_events`) spends about two
microseconds of Python per row. Here a block of the file (:data:`BLOCK_BYTES`) is parsed by
Arrow's multithreaded C++ reader, and each check is an operation over a whole column: lead
references and event types are read once per distinct value, timestamps of the usual ISO
8601 shape are converted by Arrow, properties become their JSON text by string kernels.

Exactly the same events come out as from the row reader, and the same bad rows with the same
line, column and message, because whatever a column check does not vouch for goes through
the row reader's own code (:class:`~leadheat.ingest.csv_files.EventRows`): an unusual
timestamp, a property with a quote or a non-ASCII letter, a row without an id (its id is
derived row by row). A file whose layout Arrow and Python's ``csv`` module might read
differently (quoted fields, blank lines, NUL characters, bytes that are not UTF-8, rows of
the wrong width, lone carriage returns, a field beyond ``csv.field_size_limit()``) raises
:class:`NotColumnar`: the caller reads it row by row instead.

pyarrow is imported when a file is read, not with this module: commands that import no
file do not pay for it.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from leadheat.identity import MAX_EMAIL_CHARS, MAX_ID_CHARS, LeadKey
from leadheat.ingest.csv_files import (
    EVENT_COLUMNS,
    BadRow,
    EventRows,
    RowError,
    header_fields,
)
from leadheat.store.event_import import EventColumns
from leadheat.times import MAX_INSTANT, MIN_INSTANT, to_micros

if TYPE_CHECKING:
    import pyarrow as pa

BLOCK_BYTES = 8 << 20
"""Bytes of the file parsed at a time: the chunk that bounds memory (about 140,000 rows of a
typical export). Larger blocks cost memory and save nothing: a million events took the same
CPU time in 4, 8 and 16 MB blocks."""

ISO_INSTANT = (
    r"^(19|20|21)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    r"(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
"""Timestamps Arrow converts exactly as ``datetime.fromisoformat`` does (any other goes to
the row reader, which also explains the bad ones)."""
PLAIN_ID = r"^[!-~](.*[!-~])?$"
"""Event ids that ``str.strip`` leaves as they are."""
PLAIN_TEXT = r"^[ !#-\[\]-~]*$"
"""Property values that JSON writes between quotes as they are (printable ASCII but ``"``
and ``\\``)."""
LEAD_CACHE = 1_000_000
"""Distinct lead references remembered across blocks (a few hundred bytes each) before the
memory is let go: a lead whose events spread over the file is read once."""


class NotColumnar(Exception):  # noqa: N818 - a reason to read the file another way, not an error
    """The file must be read row by row; the message says why."""


@dataclass
class EventChunk:
    """A block's events as columns, its bad rows, and how far into the file it ends."""

    columns: EventColumns
    bad: list[BadRow] = field(default_factory=list)
    read: int = 0
    """Rows read, good and bad."""
    types: Counter[str] = field(default_factory=Counter)
    """Good rows per event type."""
    done: int = 0
    """Bytes of the file read so far."""


def event_chunks(
    path: Path,
    now: datetime,
    tolerance: timedelta,
    oldest: datetime | None = None,
    block_bytes: int | None = None,
) -> Iterator[EventChunk]:
    """The events of ``path``, a block at a time, in file order.

    Raises :class:`NotColumnar` (possibly after some chunks) when the file must be read row
    by row, and :class:`~leadheat.ingest.csv_files.CsvImportError` for a header that cannot
    be read, as the row reader does.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    block_bytes = block_bytes or BLOCK_BYTES
    with path.open("rb") as handle:
        head = handle.readline()
        _check_layout(head)
        try:
            text = head.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise NotColumnar("the header is not UTF-8") from None
        header = next(csv.reader([text]), None)
        if not header:
            raise NotColumnar("the file is empty")
        names, fields = header_fields(path, header, EVENT_COLUMNS, None)
        rows = EventRows(fields, now, tolerance, oldest)
        line, done, rest = 2, len(head), b""
        while True:
            block = handle.read(block_bytes)
            data = rest + block
            if block:
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    rest = data
                    continue
                data, rest = data[:cut], data[cut:]
            if not data:
                return
            done += len(data)
            _check_layout(data)
            chunk = _chunk(data, line, len(names), rows)
            chunk.done = done
            line += chunk.read
            if len(rows.lead_keys) > LEAD_CACHE:
                rows.lead_keys.clear()
            yield chunk


def _check_layout(data: bytes) -> None:
    """Refuse what Arrow and the ``csv`` module may read differently, or number differently."""
    if b"\x00" in data:
        raise NotColumnar("a NUL character")
    if b'"' in data:
        raise NotColumnar("quoted fields")
    if data.startswith((b"\n", b"\r\n")) or b"\n\n" in data or b"\n\r\n" in data:
        raise NotColumnar("blank lines")
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        raise NotColumnar("carriage returns that end no line")


def _chunk(data: bytes, first_line: int, width: int, rows: EventRows) -> EventChunk:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    names = [f"c{i}" for i in range(width)]
    try:
        table = pa_csv.read_csv(
            io.BytesIO(data),
            read_options=pa_csv.ReadOptions(column_names=names, block_size=1 << 22),
            parse_options=pa_csv.ParseOptions(
                quote_char=False, newlines_in_values=False, ignore_empty_lines=False
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as error:  # a row of the wrong width, bytes that are not UTF-8
        raise NotColumnar(str(error)) from None
    count = table.num_rows
    if count != data.count(b"\n") + (not data.endswith(b"\n")):
        raise NotColumnar("rows and lines differ")
    columns = [table.column(i).combine_chunks() for i in range(width)]
    limit = csv.field_size_limit()
    for column in columns:
        if count and pc.max(pc.binary_length(column)).as_py() > limit:
            raise NotColumnar("a field longer than csv.field_size_limit()")
    need = np.zeros(count, dtype=np.bool_)  # rows the row reader must read

    keys: dict[LeadKey, int] = {}
    lead_codes, bad_lead = _distinct(
        columns[rows.at_lead],
        rows.lead,
        keys,
        lambda texts, values: _plain_leads(texts, values, rows.lead_keys),
    )
    type_names: dict[str, int] = {}
    type_codes, bad_type = _distinct(columns[rows.at_type], rows.event_type, type_names)
    need |= bad_lead | bad_type

    at_us = np.zeros(count, dtype=np.int64)
    stamps = columns[rows.at_time]
    shaped = _mask(pc.match_substring_regex(stamps, ISO_INSTANT))
    try:
        micros = pc.cast(
            pc.cast(stamps.filter(pa.array(shaped)), pa.timestamp("us", "UTC")), pa.int64()
        )
        at_us[shaped] = micros.to_numpy(zero_copy_only=False)
        low = max(rows.earliest_us, to_micros(MIN_INSTANT))
        high = min(rows.latest_us, to_micros(MAX_INSTANT))
        need |= ~shaped | (at_us < low) | (at_us > high)
    except pa.ArrowInvalid:  # a date that does not exist (February 30th): the row reader says so
        need[:] = True

    if rows.at_id is None:
        need[:] = True  # ids derived row by row, in file order
        event_ids: list[Any] = [None] * count
    else:
        ids = columns[rows.at_id]
        plain = pc.and_(
            pc.match_substring_regex(ids, PLAIN_ID), pc.less_equal(pc.utf8_length(ids), 200)
        )
        need |= ~_mask(plain)
        event_ids = ids.to_pylist()

    properties: list[str | None] = _properties(
        [columns[i] for i, _ in rows.extra], rows.keys, need, pa, pc
    )

    bad: list[BadRow] = []
    drop = np.zeros(count, dtype=np.bool_)
    lead_list = list(keys)
    type_list = list(type_names)
    redo = np.flatnonzero(need)
    if len(redo):
        taken = pa.array(redo)
        values_of = [column.take(taken).to_pylist() for column in columns]
        for index, values in zip(redo.tolist(), zip(*values_of, strict=True), strict=True):
            try:
                lead, kind, moment, event_id, said = rows.read(values)
            except RowError as problem:
                bad.append(BadRow(first_line + index, problem.column, str(problem), list(values)))
                drop[index] = True
                continue
            if lead not in keys:
                keys[lead] = len(lead_list)
                lead_list.append(lead)
            if kind not in type_names:
                type_names[kind] = len(type_list)
                type_list.append(kind)
            lead_codes[index] = keys[lead]
            type_codes[index] = type_names[kind]
            at_us[index] = moment
            event_ids[index] = event_id
            properties[index] = said
    result = EventColumns(
        lead_list,
        lead_codes,
        type_list,
        type_codes,
        at_us,
        event_ids,
        properties,
        rows.property_names,
    )
    if bad:
        result = result.take(~drop)
    counts = np.bincount(result.type_codes, minlength=len(type_list)).tolist()
    types = Counter({name: n for name, n in zip(type_list, counts, strict=True) if n})
    return EventChunk(result, bad, count, types)


def _mask(array: Any) -> npt.NDArray[np.bool_]:
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.bool_)


def _distinct(
    column: pa.Array,
    read: Any,
    codes: dict[Any, int],
    plain: Any = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Each row's code into the distinct values ``read`` makes of the column's texts (two
    texts may name one value), and which rows ``read`` refused. ``plain`` may read many
    distinct texts at once: it gives a value or ``None`` (for ``read``) per text."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(column)
    texts = encoded.dictionary.to_pylist()
    code_of_text = np.zeros(len(texts), dtype=np.int64)
    refused = np.zeros(len(texts), dtype=np.bool_)
    values = plain(encoded.dictionary, texts) if plain is not None else [None] * len(texts)
    setdefault = codes.setdefault
    for index, (text, known) in enumerate(zip(texts, values, strict=True)):
        value = known
        if value is None:
            try:
                value = read(text)
            except RowError:
                refused[index] = True
                continue
        code_of_text[index] = setdefault(value, len(codes))
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    return code_of_text[indices], refused[indices]


PLAIN_EXTERNAL = r"^[!-?A-~]([ !-?A-~]*[!-?A-~])?$"
"""External ids ``parse_lead_key`` keeps as they are: printable ASCII without ``@``, no space
at either end."""
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
PLAIN_EMAIL = rf"^{_ATOM}(\.{_ATOM})*@{_LABEL}(\.{_LABEL})+$"
"""Emails ``normalise_email`` keeps as they are: lower-case ASCII, one address."""


def _plain_leads(
    dictionary: pa.Array, texts: list[str], known: dict[str, LeadKey]
) -> list[LeadKey | None]:
    """The lead keys of lead references that need no Python to read, or that an earlier
    block read (``known``, which learns the new ones); ``None`` for others."""
    import pyarrow.compute as pc

    remembered = [known.get(text) for text in texts]
    missing = [index for index, key in enumerate(remembered) if key is None]
    if len(missing) < len(texts):
        if not missing:
            return remembered
        found = _plain_leads(dictionary.take(missing), [texts[i] for i in missing], {})
        for index, key in zip(missing, found, strict=True):
            remembered[index] = key
            if key is not None:
                known[texts[index]] = key
        return remembered

    length = pc.utf8_length(dictionary)
    external = _mask(
        pc.and_(
            pc.and_(
                pc.match_substring_regex(dictionary, PLAIN_EXTERNAL),
                pc.less_equal(length, MAX_ID_CHARS),
            ),
            pc.invert(pc.starts_with(dictionary, "anon:")),
        )
    ).tolist()
    email = _mask(
        pc.and_(
            pc.match_substring_regex(dictionary, PLAIN_EMAIL),
            pc.less_equal(length, MAX_EMAIL_CHARS),
        )
    ).tolist()
    keys = [
        LeadKey("external", text) if is_external else LeadKey("email", text) if is_email else None
        for text, is_external, is_email in zip(texts, external, email, strict=True)
    ]
    if known is not None:
        known.update((text, key) for text, key in zip(texts, keys, strict=True) if key is not None)
    return keys


def _properties(
    columns: Sequence[pa.Array], keys: Sequence[str], need: npt.NDArray[np.bool_], pa: Any, pc: Any
) -> list[str | None]:
    """Each row's properties as the JSON text the row reader writes: the non-empty columns,
    in order. Rows with a value JSON must escape are marked in ``need``."""
    if not columns:
        return [None] * len(need)
    pieces = []
    for column, key in zip(columns, keys, strict=True):
        need |= ~_mask(pc.match_substring_regex(column, PLAIN_TEXT))
        quoted = pc.binary_join_element_wise("," + key + '"', column, '"', "")
        # empty strings, not nulls: a join that skips nulls dropped whole rows (pyarrow 26)
        pieces.append(pc.if_else(pc.equal(column, ""), "", quoted))
    joined = pc.binary_join_element_wise(*pieces, "") if len(pieces) > 1 else pieces[0]
    whole = pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(joined, 1), "}", "")
    empty = pc.equal(joined, "")
    result: list[str | None] = pc.if_else(empty, pa.scalar(None, pa.string()), whole).to_pylist()
    return result
