"""Hostile input survived (issue 9): every way data gets in, fed generated garbage.

CSV files (the parsers and ``leadheat import``), playbooks (the parser and ``leadheat
playbook apply``), durations and instants, and Segment bodies over HTTP. Whatever comes in,
the answer is a value, or a clear error of the path's own type that names the place (line
and column, key and line, field), and the store is exactly as it was: no partial write, no
other exception, no 5xx.

Set ``LEADHEAT_FUZZ_REPORT`` to a file name to get, as JSON, how many cases each check
tried and how they ended (the reliability table in the docs); nothing is printed.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import struct
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from typer.testing import CliRunner

from conftest import BACKENDS, NOW, LiveServer
from leadheat.cli import ERRORS, app
from leadheat.identity import LeadKey
from leadheat.ingest.csv_files import (
    BadRow,
    CsvImportError,
    Parsed,
    ParsedEvents,
    parse_events,
    parse_leads,
    parse_outcomes,
    parse_touches,
)
from leadheat.playbook import PlaybookError, parse_playbook
from leadheat.service import Leadheat, LeadheatError, LeadInput
from leadheat.times import (
    MAX_INSTANT,
    MAX_SPAN,
    MIN_INSTANT,
    TimeFormatError,
    isoformat,
    parse_duration,
    parse_instant,
)
from leadheat.views import view_json

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
STORE = ("leads", "events", "identities", "touches", "outcomes", "evidence")
"""The tables a bad input must leave exactly as they were."""
TOLERANCE = timedelta(minutes=5)

# -- the reliability table ------------------------------------------------------------------
CASES: defaultdict[str, Counter[str]] = defaultdict(Counter)


def tried(check: str, outcome: str) -> None:
    """Count one generated case of ``check`` and how it ended (``refused``, ``accepted``).

    Cases a check tried on each backend add up, as do hypothesis's replays of a failure."""
    CASES[check][outcome] += 1


@pytest.fixture(scope="module", autouse=True)
def fuzz_report() -> Iterator[None]:
    """Write the case counts to ``$LEADHEAT_FUZZ_REPORT`` when the module is done."""
    yield
    target = os.environ.get("LEADHEAT_FUZZ_REPORT")
    if not target:
        return
    checks = {
        name: {"tried": sum(outcomes.values()), **dict(sorted(outcomes.items()))}
        for name, outcomes in sorted(CASES.items())
    }
    report = {
        "backends": BACKENDS,
        "checks": checks,
        "total": sum(c["tried"] for c in checks.values()),
    }
    Path(target).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def store_counts(lh: Leadheat) -> dict[str, int]:
    with lh.engine.connect() as connection:
        return {
            table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in STORE
        }


# -- durations and instants -----------------------------------------------------------------
NUMBER_TEXT = st.one_of(
    st.integers(min_value=0, max_value=10**400).map(str),
    st.floats(min_value=0, allow_nan=False, allow_infinity=False).map(lambda f: f"{f:f}"),
    st.from_regex(r"[0-9]{1,40}\.[0-9]{1,40}", fullmatch=True),
)
DURATION_TEXT = st.one_of(
    st.text(max_size=30),
    st.builds(
        lambda space, number, unit, end: f"{space}{number}{space}{unit}{end}",
        st.sampled_from(["", " ", "\t"]),
        NUMBER_TEXT,
        st.sampled_from([*"smhdwxy", "", "ms", "D"]),
        st.sampled_from(["", " ", "\n", "x"]),
    ),
)
OFFSETS = st.builds(
    timezone,
    st.timedeltas(
        min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
    ),
)
INSTANT_TEXT = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
    st.floats().map(repr),
    st.datetimes(timezones=OFFSETS).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),  # naive: refused
    st.sampled_from(
        [
            "31/02/2024",
            "2024-02-31T10:00:00Z",
            "2024-02-29T24:00:00Z",
            "100000000000000000000",
            "1e20",
            "-1e20",
            "9999-12-31T23:59:59-01:00",
            "0001-01-01T00:00:00+01:00",
            "2100-12-31T23:59:59.000001Z",
            "1969-12-31T23:59:59.999999Z",
            "nan",
            "inf",
            "1_700_000_000",
            "١٧٠٠٠٠٠٠٠٠",
        ]
    ),
)


@settings(FUZZ, max_examples=300)
@given(DURATION_TEXT)
@example("99999999999w")  # found: OverflowError from timedelta
@example("9" * 400 + "d")  # found: OverflowError (float reads it as infinity)
def test_a_duration_is_a_span_in_range_or_a_time_format_error(written: str) -> None:
    try:
        span = parse_duration(written)
    except TimeFormatError as error:
        refusal = str(error)
    else:
        assert timedelta(0) < span <= MAX_SPAN
        tried("times: parse_duration", "accepted")
        return
    assert refusal.startswith(repr(written)[:20])
    tried("times: parse_duration", "refused")


@settings(FUZZ, max_examples=300)
@given(INSTANT_TEXT)
@example("-90000000000")  # found: OverflowError, before the year 1
def test_an_instant_is_utc_in_1970_to_2100_or_a_time_format_error(written: str) -> None:
    try:
        instant = parse_instant(written)
    except TimeFormatError as error:
        refusal = str(error)
    else:
        assert instant.utcoffset() == timedelta(0)
        assert MIN_INSTANT <= instant <= MAX_INSTANT
        tried("times: parse_instant", "accepted")
        return
    assert refusal
    tried("times: parse_instant", "refused")


# -- CSV files ------------------------------------------------------------------------------
PARSERS: dict[str, Callable[[Path], Parsed[Any] | ParsedEvents]] = {
    "events": lambda path: parse_events(path, NOW, TOLERANCE),
    "leads": lambda path: parse_leads(path, {}),
    "touches": lambda path: parse_touches(path, NOW, TOLERANCE),
    "outcomes": lambda path: parse_outcomes(path, NOW, TOLERANCE),
}
HEADERS = {
    "events": ["lead", "type", "timestamp"],
    "leads": ["email", "external_id", "created_at"],
    "touches": ["lead", "kind", "timestamp"],
    "outcomes": ["lead", "outcome", "timestamp"],
}
OPTIONAL = {
    "events": ["page", "url", "id"],
    "leads": ["name", "title", "company", "country", "plan"],
    "touches": ["direction", "result", "rep", "note"],
    "outcomes": ["reason"],
}
HOSTILE_CELLS: list[bytes] = [
    b"",
    b" ",
    b"\x00",
    b"a\x00b",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b'"',
    b'"unclosed',
    b'a"b',
    b'"quoted, with comma"',
    b'"with ""escaped"" quotes"',
    b'"multi\nline"',
    b"\xef\xbb\xbf",
    b"x" * 200_000,
    b"y" * 5_000,
    b"31/02/2024",
    b"2024-02-31T10:00:00Z",
    b"100000000000000000000",
    b"1e400",
    b"9999-12-31T23:59:59-01:00",
    b"0001-01-01T00:00:00+01:00",
    b"2199-01-01T00:00:00Z",
    b"1969-12-31T23:59:59Z",
    b"2024-01-01T10:00:00",
    b"true",
    b"-1",
    b"NaN",
    b"anon:",
    b"@",
    b"a@b",
    b"maybe",
    b"sideways",
]
VALID_CELLS: dict[str, st.SearchStrategy[bytes]] = {
    "lead": st.sampled_from([b"ana@example.com", b"42", b"anon:v1", b"Bo@Example.COM"]),
    "email": st.sampled_from([b"ana@example.com", b"Bo@Example.COM", b""]),
    "external_id": st.sampled_from([b"crm-1", b"", b"0042"]),
    "type": st.sampled_from([b"page_view", b"form_submit", b"Trial Started"]),
    "kind": st.sampled_from([b"call", b"email"]),
    "outcome": st.sampled_from([b"won", b"lost", b"disqualified", b"WON"]),
    "timestamp": st.sampled_from(
        [b"2026-10-01T10:00:00Z", b"1790000000", b"2025-01-01T00:00:00+02:00"]
    ),
    "created_at": st.sampled_from([b"2024-01-01T00:00:00Z", b""]),
    "direction": st.sampled_from([b"inbound", b"outbound", b""]),
}
ANY_CELL = st.one_of(
    st.sampled_from(HOSTILE_CELLS),
    st.binary(max_size=12),
    st.text(max_size=12).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


def cell(column: str) -> st.SearchStrategy[bytes]:
    valid = VALID_CELLS.get(column, st.sampled_from([b"", b"x", b"/pricing", b"VP Sales"]))
    return st.one_of(valid, valid, ANY_CELL)


@st.composite
def hostile_csv(draw: st.DrawFn, kind: str) -> tuple[bytes, list[str]]:
    """A file of the kind's columns (in any order, with extras), valid and hostile cells,
    ragged rows, any line ending, maybe a BOM."""
    extra = draw(st.lists(st.sampled_from(OPTIONAL[kind]), unique=True, max_size=2))
    columns = draw(st.permutations([*HEADERS[kind], *extra]))
    newline = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    lines = [b",".join(c.encode() for c in columns)]
    for _ in range(draw(st.integers(0, 6))):
        cells = [draw(cell(column)) for column in columns]
        ragged = draw(st.sampled_from([0, 0, 0, 0, -1, 1]))
        cells = cells[:ragged] if ragged < 0 else cells + [b"extra"] * ragged
        lines.append(b",".join(cells))
    data = newline.join(lines) + draw(st.sampled_from([b"", newline]))
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data, columns


def check_parsed(kind: str, data: bytes, path: Path) -> str:
    """Parse ``path`` as ``kind``; check every problem is placed; say how it ended."""
    breaks = len(re.findall(rb"\r\n|\r|\n", data)) + 1
    refusal: CsvImportError | None
    try:
        parsed = PARSERS[kind](path)
    except CsvImportError as error:
        refusal = error
    else:
        refusal = None
    if refusal is not None:
        assert refusal.problems and "nothing was imported" in str(refusal)
        for problem in refusal.problems:
            assert str(problem).startswith(f"line {problem.line}")
            assert 1 <= problem.line <= breaks
        return "refused"
    good = len(parsed.lines)
    assert good + len(parsed.bad) == parsed.read
    for problem in parsed.bad:
        assert isinstance(problem, BadRow) and problem.message
        assert str(problem).startswith(f"line {problem.line}")
        assert 2 <= problem.line <= breaks, (problem, breaks)
    return "refused" if parsed.bad else "accepted"


@FUZZ
@given(
    kind=st.sampled_from(sorted(PARSERS)),
    data=st.one_of(
        st.binary(max_size=400),
        st.builds(
            bytes.__add__,
            st.sampled_from([b"lead,type,timestamp\n", b"email\n"]),
            st.binary(max_size=400),
        ),
    ),
)
def test_random_bytes_are_parsed_or_refused_line_by_line(
    tmp_path: Path, kind: str, data: bytes
) -> None:
    path = tmp_path / "random.csv"
    path.write_bytes(data)
    tried("csv: parsers, random bytes", check_parsed(kind, data, path))


@FUZZ
@given(st.data())
def test_hostile_cells_are_named_by_line_and_column(tmp_path: Path, data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(sorted(PARSERS)))
    content, columns = data.draw(hostile_csv(kind))
    path = tmp_path / "hostile.csv"
    path.write_bytes(content)
    outcome = check_parsed(kind, content, path)
    if outcome == "refused":
        try:
            bad = PARSERS[kind](path).bad
        except CsvImportError as error:
            bad = error.problems
        for problem in bad:
            if problem.line > 1 and problem.column is not None:
                assert problem.column in {*columns, "email"}, problem
    tried("csv: parsers, hostile files", outcome)


# One bad row among good ones, through the command line.
Cells = dict[str, bytes]
BAD_ROWS: dict[str, list[tuple[Cells, str | None]]] = {
    "events": [
        ({"timestamp": b"31/02/2024"}, "timestamp"),
        ({"timestamp": b"2024-02-31T10:00:00Z"}, "timestamp"),
        ({"timestamp": b"100000000000000000000"}, "timestamp"),
        ({"timestamp": b"1e400"}, "timestamp"),
        ({"timestamp": b"9999-12-31T23:59:59-01:00"}, "timestamp"),
        ({"timestamp": b"2024-01-01T10:00:00"}, "timestamp"),
        ({"timestamp": b"2199-01-01T00:00:00Z"}, "timestamp"),
        ({"timestamp": b"true"}, "timestamp"),
        ({"lead": b""}, "lead"),
        ({"lead": b"a@b"}, "lead"),
        ({"lead": b"anon:"}, "lead"),
        ({"lead": b"x" * 201}, "lead"),
        ({"lead": b"y" * 320 + b"@example.com"}, "lead"),
        ({"lead": b"nul\x00@example.com"}, "lead"),
        ({"type": b""}, "type"),
        ({"type": b"t" * 101}, "type"),
        ({"type": b"page\x00view"}, "type"),
        ({"page": b"\xff\xfe"}, "page"),
        ({"page": b"\x00"}, "page"),
    ],
    "touches": [
        ({"timestamp": b"31/02/2024"}, "timestamp"),
        ({"timestamp": b"-1e20"}, "timestamp"),
        ({"kind": b"k" * 51}, "kind"),
        ({"kind": b""}, "kind"),
        ({"direction": b"sideways"}, "direction"),
        ({"result": b"r" * 201}, "result"),
        ({"rep": b"\xc3\x28"}, "rep"),
        ({"lead": b"nobody@example.com"}, "lead"),
        ({"lead": b"x" * 201}, "lead"),
    ],
    "outcomes": [
        ({"outcome": b"maybe"}, "outcome"),
        ({"outcome": b"42"}, "outcome"),
        ({"timestamp": b"0001-01-01T00:00:00+01:00"}, "timestamp"),
        ({"reason": b"\x00"}, "reason"),
        ({"lead": b"nobody@example.com"}, "lead"),
    ],
    "leads": [
        ({"email": b"not an email"}, "email"),
        ({"email": b"e" * 320 + b"@example.com"}, "email"),
        ({"email": b"", "external_id": b""}, "email"),
        ({"external_id": b"z" * 201}, "external_id"),
        ({"created_at": b"31/02/2024"}, "created_at"),
        ({"created_at": b"1e400"}, "created_at"),
        ({"name": b"n" * 201}, "name"),
        ({"country": b"c" * 101}, "country"),
        ({"plan": b"pro\x00"}, "plan"),
        ({"title": b"\xed\xa0\x80"}, "title"),
    ],
}
"""Per file kind: cells that make a row bad, and the column the error must name."""
COLUMNS = {
    "events": ["lead", "type", "timestamp", "page"],
    "touches": ["lead", "kind", "timestamp", "direction", "result", "rep"],
    "outcomes": ["lead", "outcome", "timestamp", "reason"],
    "leads": ["email", "external_id", "created_at", "name", "title", "country", "plan"],
}
SHAPE_PROBLEMS: list[tuple[str, bytes | None]] = [
    ("ragged: one field short", None),
    ("ragged: one field more", b"surplus"),
    ("a field over 128 KiB", b"h" * 200_000),
]
KNOWN = [f"known{i}@example.com" for i in range(3)]
"""Leads that exist before touches and outcomes are imported for them."""


def good_row(kind: str, serial: int, index: int) -> Cells:
    """A valid row, unlike any other this test writes (so none is a duplicate)."""
    at = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=serial * 100 + index)
    stamp = at.isoformat().encode()
    lead = KNOWN[index % len(KNOWN)].encode()
    if kind == "events":
        return {
            "lead": f"ev{serial}-{index}@example.com".encode(),
            "type": b"page_view",
            "timestamp": stamp,
            "page": b"/pricing",
        }
    if kind == "touches":
        return {
            "lead": lead,
            "kind": b"call",
            "timestamp": stamp,
            "direction": b"outbound",
            "result": b"reached",
            "rep": b"ann",
        }
    if kind == "outcomes":
        return {"lead": lead, "outcome": b"lost", "timestamp": stamp, "reason": b"budget"}
    return {
        "email": f"ld{serial}-{index}@example.com".encode(),
        "external_id": b"",
        "created_at": stamp,
        "name": b"Ana",
        "title": b"VP Sales",
        "country": b"FR",
        "plan": b"pro",
    }


def csv_line(cells: list[bytes]) -> bytes:
    quoted = [
        b'"' + value.replace(b'"', b'""') + b'"'
        if any(mark in value for mark in (b",", b'"', b"\n", b"\r"))
        else value
        for value in cells
    ]
    return b",".join(quoted)


def invoke(lh: Leadheat, *args: str) -> Any:
    return CliRunner().invoke(app, ["--db", lh.url, *args])


SERIAL = iter(range(1, 1_000_000))


@settings(FUZZ, max_examples=60)
@given(
    kind=st.sampled_from(sorted(COLUMNS)),
    goods=st.integers(1, 6),
    position=st.integers(0, 6),
    problem=st.data(),
    newline=st.sampled_from([b"\n", b"\r\n"]),
    bom=st.booleans(),
    skip_bad=st.booleans(),
)
def test_one_bad_row_among_good_ones_stores_nothing_unless_skip_bad(
    lh: Leadheat,
    tmp_path: Path,
    kind: str,
    goods: int,
    position: int,
    problem: st.DataObject,
    newline: bytes,
    bom: bool,
    skip_bad: bool,
) -> None:
    """``leadheat import`` exits 1 naming line and column and stores nothing; with
    ``--skip-bad`` it stores exactly the good rows and sets the bad one aside."""
    if not lh.known_leads([LeadKey("email", KNOWN[0])]):
        lh.upsert_leads([LeadInput([LeadKey("email", email)], {}) for email in KNOWN])
    serial = next(SERIAL)
    columns = COLUMNS[kind]
    rows = [[good_row(kind, serial, i)[c] for c in columns] for i in range(goods)]
    bad = good_row(kind, serial, goods)
    choice = problem.draw(st.integers(0, len(BAD_ROWS[kind]) + len(SHAPE_PROBLEMS) - 1))
    if choice < len(BAD_ROWS[kind]):
        change, column = BAD_ROWS[kind][choice]
        bad_cells = [{**bad, **change}[c] for c in columns]
        line = csv_line(bad_cells)
        expected = f'column "{column}"'
    else:
        what, extra = SHAPE_PROBLEMS[choice - len(BAD_ROWS[kind])]
        cells = [bad[c] for c in columns]
        if what.startswith("a field"):
            cells[-1] = extra or b""
        elif extra is None:
            cells = cells[:-1]
        else:
            cells.append(extra)
        line = b",".join(cells)
        expected = ""
    position = min(position, goods)
    lines = [csv_line([c.encode() for c in columns]), *(csv_line(r) for r in rows)]
    lines.insert(position + 1, line)
    bad_line = position + 2
    path = tmp_path / f"{kind}.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + newline.join(lines) + newline)
    set_aside = tmp_path / "bad.csv"
    set_aside.unlink(missing_ok=True)
    before = store_counts(lh)

    result = invoke(
        lh, "import", kind, str(path), *(["--skip-bad", str(set_aside)] if skip_bad else [])
    )

    after = store_counts(lh)
    if not skip_bad:
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, CsvImportError), repr(result.exception)
        message = str(result.exception)
        assert f"line {bad_line}" in message and expected in message, message
        assert len(result.exception.problems) == 1, message
        assert after == before
        tried("csv: cli, one bad row", "refused")
        return
    assert result.exit_code == 0, (result.output, result.exception)
    assert after[kind] - before[kind] == goods, (after, before)  # tables are named so
    written = set_aside.read_text("utf-8").splitlines()
    assert len(written) == 2 and written[1].startswith(f"{bad_line},"), written
    tried("csv: cli, one bad row", "set aside")


@settings(FUZZ, max_examples=40)
@given(
    kind=st.sampled_from(sorted(COLUMNS)),
    data=st.binary(max_size=300),
)
def test_the_import_command_survives_random_bytes(
    lh: Leadheat, tmp_path: Path, kind: str, data: bytes
) -> None:
    header = ",".join(HEADERS[kind]).encode() + b"\n"
    path = tmp_path / "random.csv"
    path.write_bytes(header + data)
    before = store_counts(lh)
    result = invoke(lh, "import", kind, str(path))
    if result.exit_code == 0:
        tried("csv: cli, random bytes", "accepted")
        return
    assert result.exit_code == 1 and isinstance(result.exception, ERRORS), repr(result.exception)
    assert "line " in str(result.exception)
    assert store_counts(lh) == before
    tried("csv: cli, random bytes", "refused")


# -- playbooks ------------------------------------------------------------------------------
NUMBERS = st.one_of(
    st.integers(0, 50),
    st.floats(0, 100),
    st.integers(-5, 50),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),
    st.sampled_from([0, -1, 1e308, -1e308, 1e-320, 2**63 - 1, 1e6, -1e6, 1e6 + 1, 0.001]),
)
DURATIONS = st.one_of(
    st.sampled_from(["7d", "90s", "1.5h", "30d", "1w", "3653d", "6835w", "1 business day"]),
    st.sampled_from(
        ["0s", "-1d", "7", "d", "1e3d", "99999999999w", "9" * 400 + "d", "0 business days"]
    ),
    st.sampled_from(["2 weeks", "", "47847d"]),
    st.text(max_size=12),
)
REGEXES = st.one_of(
    st.sampled_from(["/pricing", "(?i)vp|head", "^a.*b$", "(?P<a>x)"]),
    st.sampled_from(["(", "a{99999999999}", "(" * 2000 + ")" * 2000, "(?<=a+)b", "[z-a]"]),
    st.sampled_from(["\\", "(?P<x", "\\N{nope}", "(?P<a>)(?P<a>)"]),
    st.text(max_size=20),
)
WORDS = st.one_of(
    st.sampled_from(["title", "page_view", "url", "pro", "mon", "hot", "emea"]),
    st.text(max_size=10),
)
SCALARS = st.one_of(st.booleans(), NUMBERS, WORDS, st.dates())
ANY_TOML = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(WORDS, inner, max_size=3),
    max_leaves=6,
)
CONDITION = {
    "matches": REGEXES,
    "equals": SCALARS,
    "one_of": st.lists(SCALARS, max_size=3),
    "range": st.lists(NUMBERS, min_size=0, max_size=3),
    "present": st.booleans(),
}
TABLES: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "decay": {"half_life": DURATIONS},
    "signals.page_view": {"points": NUMBERS, "half_life": DURATIONS},
    "signals.trial_signup": {"points": NUMBERS},
    "[signals.page_view.rules]": {"property": WORDS, "points": NUMBERS, **CONDITION},
    "fit": {"qualified_at": NUMBERS},
    "[fit.rules]": {"field": WORDS, "points": NUMBERS, "disqualify": st.booleans(), **CONDITION},
    "evidence": {
        "ttl": DURATIONS,
        "need": st.lists(WORDS, max_size=2),
        "budget": st.lists(WORDS, max_size=2),
    },
    "temperature": {
        "hot_heat": NUMBERS,
        "warm_heat": NUMBERS,
        "warm_window": DURATIONS,
        "cold_after": DURATIONS,
        "hot_requires": st.lists(
            st.sampled_from(["need", "budget", "timeline", "authority", "luck"]), max_size=3
        ),
        "churn_events": st.lists(WORDS, max_size=2),
        "hot_min_probability": NUMBERS,
    },
    "grade": {"a": NUMBERS, "b": NUMBERS, "c": NUMBERS},
    "ingest": {"future_tolerance": DURATIONS},
    "speed": {
        "enabled": st.booleans(),
        "recent": DURATIONS,
        "default_team": WORDS,
        "reassign_on_breach": st.booleans(),
    },
    "speed.teams.emea": {
        "timezone": st.one_of(
            st.sampled_from(
                ["Europe/Berlin", "Europe", "Etc", "../x", "", "a" * 300, "posixrules"]
            ),
            st.text(max_size=10),
        ),
        "days": st.lists(st.sampled_from(["mon", "fri", "sun", "funday"]), max_size=3),
        "hours": st.one_of(
            st.sampled_from(["09:00-17:00", "17:00-09:00", "00:00-24:00", "25:00-26:00", "9-5"]),
            st.text(max_size=11),
        ),
        "holidays": st.lists(st.one_of(st.dates(), WORDS), max_size=2),
        "manager": WORDS,
    },
    "speed.triggers.hot": {
        "enabled": st.booleans(),
        "sla": DURATIONS,
        "business_hours": st.booleans(),
        "events": st.lists(WORDS, max_size=2),
        "action": WORDS,
    },
    "[speed.owners]": {
        "field": WORDS,
        "reps": st.lists(WORDS, max_size=2),
        "team": WORDS,
        **CONDITION,
    },
    "[speed.alerts]": {
        "channel": st.sampled_from(["webhook", "slack", "email", "pigeon"]),
        "url": st.sampled_from(["https://hooks.example/x", "ftp://x", "http://", ""]),
        "to": st.one_of(WORDS, st.lists(WORDS, max_size=2)),
        "triggers": st.lists(st.sampled_from(["hot", "sla_breach", "never"]), max_size=2),
    },
}


NEEDED = {
    "signals.page_view.rules": ["property", "points"],
    "fit.rules": ["field"],
    "speed.owners": ["field", "reps"],
    "speed.alerts": ["channel", "url", "to"],
}
"""The keys an entry of each array of tables cannot do without."""


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_value(key)


def toml_value(value: Any) -> str:
    """``value`` written as TOML (``nan`` and ``inf`` included, as TOML allows)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):  # a TOML basic string: JSON's escapes, bar surrogate pairs
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


@st.composite
def hostile_playbooks(draw: st.DrawFn) -> str:
    """Playbook tables with their real keys (and unknown ones), each value of the right
    kind or of any kind: negative, huge, nan, bad regexes, bad durations."""
    lines: list[str] = []
    for table in draw(st.lists(st.sampled_from(sorted(TABLES)), min_size=1, max_size=4)):
        array = table.startswith("[")
        name = table.strip("[]")
        lines.append(f"[[{name}]]" if array else f"[{name}]")
        keys = TABLES[table]
        chosen = draw(st.lists(st.sampled_from(sorted(keys)), unique=True, max_size=4))
        if array and draw(st.integers(0, 4)):  # mostly with the keys an entry needs
            needed = NEEDED.get(name, [])
            conditions = [key for key in chosen if key in CONDITION][:1] or (
                [draw(st.sampled_from(sorted(CONDITION)))] if "matches" in keys else []
            )
            others = [key for key in chosen if key not in CONDITION and key not in needed]
            chosen = [*needed, *conditions, *others]
        for key in chosen:
            value = draw(ANY_TOML if draw(st.integers(0, 5)) == 0 else keys[key])
            lines.append(f"{toml_key(key)} = {toml_value(value)}")
        if draw(st.integers(0, 19)) == 0:
            lines.append(f"{toml_key(draw(WORDS))} = {toml_value(draw(SCALARS))}")
    return "\n".join(lines) + "\n"


def check_playbook(source: str) -> PlaybookError | None:
    """Parse ``source``: a playbook, or a PlaybookError whose every problem says where."""
    try:
        parse_playbook(source)
    except PlaybookError as error:
        refusal = error
    else:
        return None
    assert refusal.problems
    lines = max(1, len(source.splitlines()))
    for problem in refusal.problems:
        assert problem.message
        assert problem.key or problem.line is not None, problem
        if problem.line is not None:
            assert 1 <= problem.line <= lines, (problem, lines)
    return refusal


@settings(FUZZ, max_examples=200)
@given(st.text(max_size=200))
def test_random_text_is_a_playbook_or_a_located_playbook_error(source: str) -> None:
    error = check_playbook(source)
    tried("playbook: random text", "accepted" if error is None else "refused")


@settings(FUZZ, max_examples=150)
@given(hostile_playbooks())
def test_hostile_playbooks_are_refused_by_key_and_line_or_applied(
    lh: Leadheat, source: str
) -> None:
    """A playbook the parser accepts is one the store can apply and score leads by."""
    if not lh.known_leads([LeadKey("email", "fit@example.com")]):
        lh.upsert_leads(
            [
                LeadInput(
                    [LeadKey("email", "fit@example.com")],
                    {"title": "VP Sales", "company_size": 120},
                )
            ]
        )
        lh.track("fit@example.com", "page_view", NOW - timedelta(hours=2), {"url": "/pricing"})
        lh.track("fit@example.com", "trial_signup", NOW - timedelta(days=3))
    error = check_playbook(source)
    if error is not None:
        for problem in error.problems:
            if problem.key:  # a value the schema refused: the line it sits on is found too
                assert problem.line is not None, (problem, source)
        tried("playbook: hostile tables", "refused")
        return
    lh.apply_playbook(source)
    view = lh.show("fit@example.com")
    json.dumps(view_json(view, parse_playbook(source).fit.qualified_at), allow_nan=False)
    lh.hot()
    tried("playbook: hostile tables", "accepted")


@settings(FUZZ, max_examples=40)
@given(st.one_of(hostile_playbooks().map(str.encode), st.binary(max_size=200)))
def test_applying_a_bad_playbook_file_keeps_the_current_version(
    lh: Leadheat, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "playbook.toml"
    path.write_bytes(content)
    try:  # read as the CLI reads it: a text file, so a lone CR is a line break
        parse_playbook(path.read_text("utf-8"))
    except (PlaybookError, UnicodeDecodeError):
        pass
    else:
        assume(False)  # only bad files here
    version, _ = lh.playbook()
    history = lh.playbook_history()

    result = invoke(lh, "playbook", "apply", str(path))

    assert result.exit_code == 1
    assert isinstance(result.exception, PlaybookError | LeadheatError), repr(result.exception)
    if isinstance(result.exception, PlaybookError):
        assert all(p.key or p.line is not None for p in result.exception.problems)
    else:
        assert "not valid UTF-8 at byte" in str(result.exception)
    assert lh.playbook_history() == history
    assert history[-1][0] == version
    tried("playbook: cli apply of a bad file", "refused")


# -- Segment bodies over HTTP ---------------------------------------------------------------
CALLS = ("track", "identify", "page", "group", "alias")


def recent() -> str:
    text_ = isoformat(datetime.now(UTC) - timedelta(minutes=1))
    assert text_ is not None
    return text_


def message(call: str, serial: int) -> dict[str, Any]:
    """A valid message of each call, as analytics.js would send it."""
    base: dict[str, Any] = {
        "userId": f"fz-{serial}",
        "anonymousId": f"anon-{serial}",
        "messageId": f"fz-{call}-{serial}",
        "timestamp": recent(),
        "context": {
            "page": {"url": "https://shop.example/p"},
            "userAgent": "Mozilla/5.0",
            "traits": {"plan": "pro"},
        },
    }
    if call == "track":
        return {**base, "event": "Product Viewed", "properties": {"sku": "G-32", "price": 18.99}}
    if call == "identify":
        return {
            **base,
            "traits": {
                "email": f"fz{serial}@example.com",
                "name": "Fz",
                "company": {"name": "Initech", "employee_count": 120},
            },
        }
    if call == "page":
        return {**base, "name": "Pricing", "properties": {"url": "https://shop.example/pricing"}}
    if call == "group":
        return {**base, "groupId": "g-1", "traits": {"name": "Initech", "employees": 120}}
    return {**base, "previousId": f"old-{serial}"}


MUTABLE = [
    "type", "userId", "anonymousId", "previousId", "groupId", "messageId", "event", "name",
    "category", "timestamp", "originalTimestamp", "sentAt", "context", "context.traits",
    "context.traits.email", "context.page", "context.userAgent", "properties",
    "properties.email", "traits", "traits.email", "traits.company", "traits.address",
    "traits.employees", "traits.name", "integrations",
]  # fmt: skip
"""Every field of a Segment message that leadheat reads (and one it ignores)."""
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**40), max_value=10**40),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
        st.sampled_from(
            [
                "",
                " ",
                "2199-01-01T00:00:00Z",
                "1970-01-01T00:00:00Z",
                "31/02/2024",
                "a@b",
                "x" * 300,
            ]
        ),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def put(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``data`` with ``path`` (dotted) set to ``value``, or removed for ``...``."""
    copy: dict[str, Any] = json.loads(json.dumps(data))
    *parents, last = path.split(".")
    target = copy
    for part in parents:
        if not isinstance(target.get(part), dict):
            target[part] = {}
        target = target[part]
    if value is ...:
        target.pop(last, None)
    else:
        target[last] = value
    return copy


@pytest.fixture
def ingest(live_server: LiveServer) -> Iterator[httpx.Client]:
    """A client that posts as the SDKs do: the write key as HTTP Basic user name."""
    with httpx.Client(
        base_url=live_server.url, auth=(live_server.ingest_key, ""), timeout=60
    ) as client:
        yield client


def refused(answer: httpx.Response, before: dict[str, int], server: LiveServer) -> dict[str, Any]:
    """Check a 4xx with the one error shape, and a store left as it was."""
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    body: dict[str, Any] = answer.json()
    assert isinstance(body, dict) and body["error"], body
    assert store_counts(server.lh) == before
    return body


@settings(FUZZ, max_examples=150)
@given(
    call=st.sampled_from(CALLS),
    field=st.sampled_from(MUTABLE),
    value=st.one_of(JSON_VALUES, st.just(...)),
    batched=st.booleans(),
)
def test_wrong_types_in_any_field_are_refused_by_name_or_taken(
    live_server: LiveServer, ingest: httpx.Client, call: str, field: str, value: Any, batched: bool
) -> None:
    """In a batch, between two good messages: a refusal stores neither of them."""
    serial = next(SERIAL)
    mutated = put(message(call, serial), field, value)
    if batched:
        good = [
            {**message("track", serial), "type": "track", "messageId": f"fz-good-{serial}-{i}"}
            for i in (1, 2)
        ]
        body, path = (
            {"batch": [good[0], {**mutated, "type": mutated.get("type", call)}, good[1]]},
            "/v1/batch",
        )
        if field == "type":
            body["batch"][1] = mutated
    else:
        body, path = mutated, f"/v1/{call}"
    before = store_counts(live_server.lh)
    answer = ingest.post(
        path, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    if answer.status_code == 200:
        assert answer.json() == {"success": True}
        tried("segment: wrong types", "accepted")
        return
    error = refused(answer, before, live_server)
    assert answer.status_code == 400, answer.text
    place = error["field"]
    root = field.split(".", maxsplit=1)[0]
    assert place == "body" or root in place, (field, error)
    if batched:
        assert place == "body" or place.startswith("batch[1]"), error
    tried("segment: wrong types", "refused")


@settings(FUZZ, max_examples=100)
@given(
    path=st.sampled_from(["/v1/batch", "/v1/track", "/v1/identify"]),
    body=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
        JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    ),
)
def test_bodies_that_are_not_a_message_are_refused(
    live_server: LiveServer, ingest: httpx.Client, path: str, body: bytes
) -> None:
    """Random bytes, invalid UTF-8, text that is not JSON, JSON that is not a message."""
    before = store_counts(live_server.lh)
    answer = ingest.post(path, content=body)
    if answer.status_code == 200:  # JSON that happens to be a message (``{"batch": []}``)
        assert isinstance(json.loads(body), dict)
        tried("segment: not a message", "accepted")
        return
    error = refused(answer, before, live_server)
    assert answer.status_code == 400 and error["field"], error
    tried("segment: not a message", "refused")


BAD_UTF8 = [
    b"\xff",
    b"\xfe\xff",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xf0\x28\x8c\xbc",
    b"\xc0\xaf",
    b"\xe2\x82",
]


@settings(FUZZ, max_examples=50)
@given(
    call=st.sampled_from(CALLS),
    field=st.sampled_from(
        ["userId", "properties.note", "context.userAgent", "traits.name", "event"]
    ),
    junk=st.one_of(st.sampled_from(BAD_UTF8), st.binary(min_size=1, max_size=6)),
)
def test_invalid_utf8_in_a_message_is_refused(
    live_server: LiveServer, ingest: httpx.Client, call: str, field: str, junk: bytes
) -> None:
    assume(b"\x00" not in junk)  # refused as NUL first, also a 400 naming the body
    try:
        (b"a" + junk + b"b").decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        assume(False)
    body = json.dumps(
        put(message(call, next(SERIAL)), field, "a\u2603MARK\u2603b"), ensure_ascii=False
    )
    raw = body.encode().replace("\u2603MARK\u2603".encode(), junk)
    before = store_counts(live_server.lh)
    error = refused(ingest.post(f"/v1/{call}", content=raw), before, live_server)
    assert error["field"] == "body" and "not JSON" in error["error"], error
    tried("segment: invalid UTF-8", "refused")


NOT_JSON_NUMBERS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e999",
    "1" * 309,
    "-" + "9" * 400,
    "1" * 5000,
]


@settings(FUZZ, max_examples=60)
@given(
    call=st.sampled_from(CALLS),
    field=st.sampled_from(
        [
            "properties.price",
            "traits.employees",
            "context.traits.score",
            "userId",
            "timestamp",
            "properties.deep.list",
        ]
    ),
    token=st.sampled_from(NOT_JSON_NUMBERS),
    batched=st.booleans(),
)
def test_nan_infinity_and_numbers_beyond_a_double_are_refused(
    live_server: LiveServer, ingest: httpx.Client, call: str, field: str, token: str, batched: bool
) -> None:
    """Python reads them; PostgreSQL's jsonb and JSON itself do not (nor does scoring)."""
    data = put(message(call, next(SERIAL)), field, "\u2603NUMBER\u2603")
    body = {"batch": [{**data, "type": call}]} if batched else data
    raw = json.dumps(body).replace('"\\u2603NUMBER\\u2603"', token).encode()
    before = store_counts(live_server.lh)
    answer = ingest.post("/v1/batch" if batched else f"/v1/{call}", content=raw)
    error = refused(answer, before, live_server)
    assert answer.status_code == 400 and error["field"] == "body", error
    tried("segment: NaN, Infinity, huge numbers", "refused")


@settings(FUZZ, max_examples=60)
@given(
    call=st.sampled_from(CALLS),
    where=st.sampled_from(["", "properties", "context", "context.page", "traits"]),
    value=JSON_VALUES.filter(lambda value: "\\u0000" not in json.dumps(value)),
)
def test_a_key_given_twice_is_refused(
    live_server: LiveServer, ingest: httpx.Client, call: str, where: str, value: Any
) -> None:
    """Which of two values wins differs between JSON parsers: neither is guessed."""
    data = message(call, next(SERIAL))
    target = data
    for part in filter(None, where.split(".")):
        target = target.setdefault(part, {})
    if not target:
        target["plan"] = "pro"
    twice = sorted(target)[0]
    target["\u2603TWICE\u2603"] = value
    raw = json.dumps(data).replace('"\\u2603TWICE\\u2603"', json.dumps(twice)).encode()
    before = store_counts(live_server.lh)
    error = refused(ingest.post(f"/v1/{call}", content=raw), before, live_server)
    assert error["field"] == "body" and "twice" in error["error"], error
    tried("segment: duplicate keys", "refused")


@pytest.mark.parametrize("depth", [33, 100, 990, 1_000, 10_000])
@pytest.mark.parametrize("shape", ["list", "object"])
@pytest.mark.parametrize("where", ["body", "properties"])
def test_deep_nesting_is_refused(
    live_server: LiveServer, ingest: httpx.Client, depth: int, shape: str, where: str
) -> None:
    """Up to the JSON reader's own limit (about 1,000 levels) a deep body was stored, and the
    lead's timeline then failed with a 500: the API's encoder stops at 255 levels."""
    opening, closing = (b"[", b"]") if shape == "list" else (b'{"a":', b"}")
    nested = opening * depth + b"1" + closing * depth
    if where == "body":
        raw = nested
    else:
        track = json.dumps(
            {**message("track", next(SERIAL)), "type": "track", "properties": "\u2603"}
        )
        raw = b'{"batch": [' + track.encode().replace(b'"\\u2603"', nested) + b"]}"
    before = store_counts(live_server.lh)
    answer = ingest.post("/v1/batch", content=raw)
    error = refused(answer, before, live_server)
    assert answer.status_code == 400, error
    if where == "properties" and depth < 990:
        assert error["field"].startswith("batch[0].properties"), error
    tried("segment: deep nesting", "refused")


@pytest.mark.parametrize("megabytes", [1, 5])
@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("path", ["/v1/batch", "/v1/track"])
def test_huge_strings_are_refused_before_they_are_read(
    live_server: LiveServer, ingest: httpx.Client, megabytes: int, chunked: bool, path: str
) -> None:
    data = {**message("track", next(SERIAL)), "properties": {"blob": "x" * (megabytes << 20)}}
    raw = json.dumps(
        {"batch": [{**data, "type": "track"}]} if path == "/v1/batch" else data
    ).encode()
    content: Any = iter([raw[i : i + 65536] for i in range(0, len(raw), 65536)]) if chunked else raw
    before = store_counts(live_server.lh)
    started = time.monotonic()
    answer = ingest.post(path, content=content)
    assert answer.status_code == 413, answer.text[:300]
    refused(answer, before, live_server)
    assert time.monotonic() - started < 10
    tried("segment: huge bodies", "refused")


@settings(FUZZ, max_examples=100)
@given(
    call=st.sampled_from(CALLS),
    damage=st.sampled_from(["truncate", "flip", "append", "header"]),
    at=st.floats(0, 1, exclude_max=True),
    byte=st.integers(1, 255),
)
def test_corrupt_gzip_is_refused(
    live_server: LiveServer, ingest: httpx.Client, call: str, damage: str, at: float, byte: int
) -> None:
    """A cut, flipped or padded gzip body is refused; a flip gzip cannot notice (the
    header's flags, timestamp, XFL and OS bytes, or an unused padding bit of the last deflate
    byte) is the message as sent, and only then may it be accepted."""
    sent = json.dumps(message(call, next(SERIAL))).encode()
    packed = bytearray(gzip.compress(sent))
    place = int(at * len(packed)) if damage != "header" else int(at * 10)
    if damage == "truncate":
        packed = packed[:place]
    elif damage == "append":
        packed += bytes([byte]) * (1 + place % 7)
    else:
        packed[place] ^= byte
    before = store_counts(live_server.lh)
    answer = ingest.post(f"/v1/{call}", content=bytes(packed), headers={"Content-Encoding": "gzip"})
    if answer.status_code == 200:
        assert damage in ("flip", "header"), (damage, place, byte)
        assert gzip.decompress(bytes(packed)) == sent, (damage, place, byte)
        tried("segment: corrupt gzip", "accepted")
        return
    error = refused(answer, before, live_server)
    assert answer.status_code == 400 and error["field"] == "body", error
    tried("segment: corrupt gzip", "refused")


def gzip_of_zeros(size: int) -> bytes:
    """A valid gzip stream of ``size`` zero bytes (a multiple of 1 MiB), built in a fraction
    of a second: one fully flushed deflate block of 1 MiB of zeros, repeated."""
    chunk = bytes(1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    end = deflate.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(size >> 20):
        crc = zlib.crc32(chunk, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + block * (size >> 20) + end + struct.pack("<II", crc, size & 0xFFFFFFFF)


def peak_rss() -> int:
    """This process's peak resident memory in bytes since the last :func:`reset_peak_rss`."""
    status = Path("/proc/self/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert found is not None
    return int(found.group(1)) * 1024


def reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pytest.skip("cannot reset the peak RSS here (/proc/self/clear_refs)")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize(
    ("inflated", "chunked"),
    [(1 << 30, False), (1 << 30, True), (400 << 20, False)],
    ids=["1GiB-declared", "1GiB-chunked", "400MiB-within-the-limit"],
)
def test_a_gzip_bomb_is_refused_without_inflating_it(
    live_server: LiveServer, ingest: httpx.Client, inflated: int, chunked: bool
) -> None:
    """The server runs in this process: its memory is what is measured."""
    bomb = gzip_of_zeros(inflated)
    content: Any = (
        iter([bomb[i : i + 65536] for i in range(0, len(bomb), 65536)]) if chunked else bomb
    )
    before = store_counts(live_server.lh)
    reset_peak_rss()
    baseline = peak_rss()
    started = time.monotonic()
    answer = ingest.post("/v1/batch", content=content, headers={"Content-Encoding": "gzip"})
    elapsed = time.monotonic() - started
    grown = peak_rss() - baseline
    assert answer.status_code == 413, answer.text[:300]
    refused(answer, before, live_server)
    assert elapsed < 5, elapsed
    assert grown < 200 << 20, f"the peak RSS grew by {grown >> 20} MiB"
    tried("segment: gzip bomb", "refused")
