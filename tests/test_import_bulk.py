"""``leadheat import events`` read column by column, a block at a time: the same stored state
as the row-by-row reader and ``record_events`` give, on SQLite and PostgreSQL; nothing stored
when a row anywhere in the file is bad; the same bad rows, lines and messages."""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from conftest import DEMO_MAKES_HOT, NOW, Clock
from leadheat.identity import parse_lead_key
from leadheat.ingest import columnar
from leadheat.ingest.columnar import NotColumnar, event_chunks
from leadheat.ingest.csv_files import CsvImportError, parse_events
from leadheat.service import Leadheat, LeadheatError, LeadInput

PLAYBOOK = (
    DEMO_MAKES_HOT
    + """
[signals.purchase]
points = 30
half_life = "30d"
[signals.email_click]
points = 3
[[signals.page_view.rules]]
property = "page"
matches = "pricing"
points = 6
[speed.teams.default]
manager = "boss@example.com"
[[speed.alerts]]
channel = "webhook"
url = "https://hooks.example.com/hooks"
"""
)
HEADER = ["id", "lead", "type", "timestamp", "page", "budget"]


def _rows() -> list[list[str]]:
    """Every shape a column check may vouch for or hand to the row reader."""
    day = timedelta(days=1)
    rows = []
    for n in range(120):
        at = NOW - day * (n % 40) - timedelta(minutes=7 * n)
        lead = [
            f"crm-{n % 17}",
            f"Person{n % 5}@Example.com",
            f"p{n % 3}@example.com",
            f"anon:v{n % 4}",
            f" spaced-{n % 2} ",
        ][n % 5]
        stamp = [
            at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00"),
            at.strftime("%Y-%m-%d %H:%M:%S+00:00"),
            str(int(at.timestamp())),
            (at + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00"),
        ][n % 5]
        kind = ["page_view", "demo_request", "purchase", "Email Click", "webinar", "page_view"][
            n % 6
        ]
        page = ["/pricing", "", "/docs", "/prêt", "/a\\b"][n % 5]
        budget = "" if n % 11 else "50k"
        event_id = "" if n % 4 == 0 else f"e-{n % 100}"  # blank: derived; e-0… twice
        rows.append([event_id, lead, kind, stamp, page, budget])
    rows.append(["", "crm-1", "page_view", rows[3][3], "/docs", ""])  # identical rows: two events
    rows.append(["", "crm-1", "page_view", rows[3][3], "/docs", ""])
    rows.append(["late", "crm-2", "subscription_cancelled", "2025-12-01T00:00:00Z", "", ""])
    return rows


def _write(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of a few rows: every file spans many, as a big one does."""
    monkeypatch.setattr(columnar, "BLOCK_BYTES", 700)


def _new(url: str, clock: Clock) -> Leadheat:
    lh = Leadheat(url, clock=clock)
    lh.init(PLAYBOOK)
    # a lead known before the import, with a state, a key and evidence of its own
    lh.upsert_leads([LeadInput([parse_lead_key("crm-3")], {"title": "CTO"})])
    lh.track("crm-3", "demo_request", NOW - timedelta(days=3), event_id="before-1")
    return lh


def snapshot(lh: Leadheat) -> dict[str, Any]:
    """The stored state, by lead identity (ids may differ): leads, states, heat now,
    events and evidence."""
    with lh.engine.connect() as connection:

        def rows(sql: str) -> list[Any]:
            return list(connection.execute(text(sql)).all())

        name = dict(
            rows("SELECT lead_id, min(kind || ':' || value) FROM identities GROUP BY lead_id")
        )
        leads = {
            name[lead]: (email, external, created)
            for lead, email, external, created in rows(
                "SELECT id, email, external_id, created_at FROM leads"
            )
        }
        states = {
            name[row[0]]: tuple(row[1:])
            for row in rows(
                "SELECT lead_id, fit, qualified, disqualified, evidence_until, status, "
                "last_engaged_at, churned_at, events_count FROM lead_states"
            )
        }
        now_us = int(NOW.timestamp() * 1_000_000)
        heat: dict[str, float] = {}
        for lead, span, whole, frac in rows(
            "SELECT lead_id, half_life_us, whole, frac FROM heat_keys"
        ):
            heat[name[lead]] = heat.get(name[lead], 0.0) + 2.0 ** (whole + frac - now_us / span)
        events = sorted(
            (row[0], name[row[1]], row[2], row[3], json.dumps(_json(row[4]), sort_keys=True))
            for row in rows("SELECT event_id, lead_id, type, occurred_at, properties FROM events")
        )
        evidence = sorted(
            (name[row[0]], *row[1:])
            for row in rows("SELECT lead_id, kind, value, stated_at, source FROM evidence")
        )
    return {"leads": leads, "states": states, "heat": heat, "events": events, "evidence": evidence}


def _json(value: Any) -> Any:
    """A JSON column as Python (SQLite hands over its text, PostgreSQL the value)."""
    return json.loads(value) if isinstance(value, str) else value


def _same(fast: dict[str, Any], slow: dict[str, Any]) -> None:
    for part in ("leads", "states", "events", "evidence"):
        assert fast[part] == slow[part], part
    assert fast["heat"].keys() == slow["heat"].keys()
    for lead, heat in slow["heat"].items():
        assert math.isclose(fast["heat"][lead], heat, rel_tol=1e-9), lead


def test_columns_give_the_state_rows_give(
    db_url: str, clock: Clock, tmp_path: Path, small_blocks: None
) -> None:
    path = _write(tmp_path / "events.csv", _rows())
    fast = _new(db_url, clock)
    report = fast.import_event_file(path)
    assert report.columnar and not report.bad
    reference = _new(f"sqlite:///{tmp_path / 'rows.db'}", clock)
    _, book = reference.playbook()
    parsed = parse_events(path, NOW, book.ingest.future_tolerance)
    assert not parsed.bad
    expected = reference.record_events(parsed.batch, react=False)
    assert (report.stored.stored, report.stored.duplicates, report.stored.leads_created) == (
        expected.stored,
        expected.duplicates,
        expected.leads_created,
    )
    assert report.read == parsed.read and report.types == {
        kind: parsed.batch.types.count(kind) for kind in set(parsed.batch.types)
    }
    _same(snapshot(fast), snapshot(reference))
    # the same file again adds nothing and changes nothing
    before = snapshot(fast)
    again = fast.import_event_file(path)
    assert again.stored.stored == 0 and again.stored.duplicates == report.read
    _same(snapshot(fast), before)
    fast.close()
    reference.close()


def test_a_quoted_file_is_read_row_by_row_to_the_same_state(
    db_url: str, clock: Clock, tmp_path: Path
) -> None:
    rows = _rows()
    plain = _write(tmp_path / "plain.csv", rows)
    quoted = tmp_path / "quoted.csv"
    with quoted.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL).writerows([HEADER, *rows])
    by_rows = _new(db_url, clock)
    report = by_rows.import_event_file(quoted)
    assert not report.columnar
    by_columns = _new(f"sqlite:///{tmp_path / 'columns.db'}", clock)
    assert by_columns.import_event_file(plain).columnar
    _same(snapshot(by_rows), snapshot(by_columns))
    by_rows.close()
    by_columns.close()


@pytest.mark.parametrize("where", [0, 60, 121])
def test_a_bad_row_anywhere_stores_nothing(
    db_url: str, clock: Clock, tmp_path: Path, small_blocks: None, where: int
) -> None:
    rows = _rows()
    rows.insert(where, ["x-1", "crm-1", "page_view", "31/02/2024", "", ""])
    path = _write(tmp_path / "events.csv", rows)
    lh = _new(db_url, clock)
    before = snapshot(lh)
    with pytest.raises(CsvImportError) as refused:
        lh.import_event_file(path)
    assert f'line {where + 2}, column "timestamp": ' in str(refused.value)
    assert "is not a date" in str(refused.value)
    _same(snapshot(lh), before)
    # set aside, the good rows are stored
    aside: list[Any] = []
    report = lh.import_event_file(path, set_aside=aside.extend)
    assert [bad.line for bad in aside] == [where + 2]
    assert report.stored.stored > 0
    lh.close()


def test_refused_types_store_nothing(
    db_url: str, clock: Clock, tmp_path: Path, small_blocks: None
) -> None:
    path = _write(tmp_path / "events.csv", _rows())
    lh = _new(db_url, clock)
    before = snapshot(lh)

    def strict(types: Any) -> None:
        if "webinar" in types:
            raise LeadheatError(f"webinar: {types['webinar']} events")

    with pytest.raises(LeadheatError, match="webinar: 20 events"):
        lh.import_event_file(path, check_types=strict)
    _same(snapshot(lh), before)
    lh.close()


def test_speed_to_lead_reacts_to_an_import_as_to_a_batch(
    db_url: str, clock: Clock, tmp_path: Path, small_blocks: None
) -> None:
    """With ``react``, a lead the file makes hot is alerted once, as recording the same
    events as one batch does."""
    rows = [
        [f"h-{n}", "cto@example.com", "page_view" if n < 9 else "demo_request", stamp, "", ""]
        for n, stamp in enumerate(
            (NOW - timedelta(minutes=30 - n)).strftime("%Y-%m-%dT%H:%M:%SZ") for n in range(10)
        )
    ]
    rows += [[f"c-{n}", f"crm-{n}", "page_view", rows[0][3], "", ""] for n in range(30)]
    path = _write(tmp_path / "events.csv", rows)
    fast = _new(db_url, clock)
    fast.upsert_leads([LeadInput([parse_lead_key("cto@example.com")], {"title": "CTO"})])
    fast.import_event_file(path, react=True)
    reference = _new(f"sqlite:///{tmp_path / 'rows.db'}", clock)
    reference.upsert_leads([LeadInput([parse_lead_key("cto@example.com")], {"title": "CTO"})])
    _, book = reference.playbook()
    reference.record_events(parse_events(path, NOW, book.ingest.future_tolerance).batch)

    def alerts(lh: Leadheat) -> list[tuple[str, str, str]]:
        return sorted(
            (d.trigger, d.channel, str(d.payload["lead"]["email"])) for d in lh.deliveries()
        )

    assert alerts(fast) == alerts(reference) and ("hot", "webhook", "cto@example.com") in alerts(
        fast
    )
    fast.close()
    reference.close()


def accounts_snapshot(lh: Leadheat) -> dict[str, Any]:
    """Accounts, their members (by identity) and their heat now, as stored."""
    with lh.engine.connect() as connection:

        def rows(sql: str) -> list[Any]:
            return list(connection.execute(text(sql)).all())

        name = dict(
            rows("SELECT lead_id, min(kind || ':' || value) FROM identities GROUP BY lead_id")
        )
        key = dict(rows("SELECT id, key FROM accounts"))
        now_us = int(NOW.timestamp() * 1_000_000)
        heat: dict[tuple[str, int], float] = {}
        for account, span, whole, frac in rows(
            "SELECT account_id, half_life_us, whole, frac FROM account_heat_keys"
        ):
            heat[(key[account], span)] = 2.0 ** (whole + frac - now_us / span)
        return {
            "accounts": sorted(
                (*row[:3], _json(row[3]))
                for row in rows("SELECT key, domain, name, traits FROM accounts")
            ),
            "members": sorted(
                (name[lead], key[account], since, source)
                for lead, account, since, source in rows(
                    "SELECT lead_id, account_id, since, source FROM account_members"
                )
            ),
            "past": rows("SELECT lead_id FROM account_past_members"),
            "heat": heat,
        }


def test_a_file_places_new_leads_in_accounts_as_a_batch_does(
    db_url: str, clock: Clock, tmp_path: Path, small_blocks: None
) -> None:
    """New leads with emails at company domains join their accounts and add their heat to
    the accounts' keys exactly as recording the same events does; free mail and external
    ids join none."""
    leads = [
        *(f"p{n}@acme{n % 3}.io" for n in range(9)),
        "solo@gmail.com",
        "crm-77",
        "anon:v9",
    ]
    rows = [
        [
            f"a-{n}",
            leads[n % len(leads)],
            ["page_view", "demo_request", "purchase", "email_click"][n % 4],
            (NOW - timedelta(hours=5 * n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "/pricing" if n % 3 else "",
            "",
        ]
        for n in range(60)
    ]
    path = _write(tmp_path / "events.csv", rows)
    fast = _new(db_url, clock)
    report = fast.import_event_file(path)
    assert report.columnar and report.stored.leads_created == len(leads)
    reference = _new(f"sqlite:///{tmp_path / 'rows.db'}", clock)
    _, book = reference.playbook()
    reference.record_events(parse_events(path, NOW, book.ingest.future_tolerance).batch)
    placed, expected = accounts_snapshot(fast), accounts_snapshot(reference)
    for part in ("accounts", "members", "past"):
        assert placed[part] == expected[part], part
    assert [member[0] for member in placed["members"]] == sorted(
        f"email:{lead}" for lead in leads if "acme" in lead
    )
    assert placed["heat"].keys() == expected["heat"].keys()
    assert {account for account, _ in placed["heat"]} == {f"acme{n}.io" for n in range(3)}
    for key, heat in expected["heat"].items():
        assert math.isclose(placed["heat"][key], heat, rel_tol=1e-9), key
    fast.close()
    reference.close()


# -- the reader alone: whatever the file, the same events and bad rows as the row reader --
CELLS = st.sampled_from(
    [
        "",
        " ",
        "a",
        "crm-1",
        "A@B.co",
        "a@b.co",
        "x@y",
        "anon:",
        "anon:v1",
        "page_view",
        "Demo Request",
        "__",
        "2026-01-01T00:00:00Z",
        "2025-02-30T00:00:00Z",
        "2025-06-01 10:00:00.5+02:00",
        "2025-06-01T10:00:00",
        "1760000000",
        "2099-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "é",
        'q"uote',
        "\\",
        "x" * 201,
        "tab\tend",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(CELLS, min_size=5, max_size=5), max_size=12),
    with_id=st.booleans(),
    block=st.sampled_from([64, 200, 1 << 20]),
)
def test_columns_read_what_rows_read(
    tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]], with_id: bool, block: int
) -> None:
    header = ["lead", "type", "timestamp", "page"] + (["id"] if with_id else [])
    path = tmp_path_factory.mktemp("fuzz") / "events.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(header) + "\n")
        for row in rows:
            handle.write(",".join(row[: len(header)]) + "\n")
    tolerance = timedelta(minutes=5)
    parsed = parse_events(path, NOW, tolerance)
    try:
        chunks = list(event_chunks(path, NOW, tolerance, None, block))
    except NotColumnar:
        return  # read row by row, by the row reader itself
    events = [
        (c.columns.leads[lead], c.columns.types[kind], at, event_id, said)
        for c in chunks
        for lead, kind, at, event_id, said in zip(
            c.columns.lead_codes.tolist(),
            c.columns.type_codes.tolist(),
            c.columns.at_us.tolist(),
            c.columns.event_ids,
            c.columns.properties_json,
            strict=True,
        )
    ]
    batch = parsed.batch
    assert events == list(
        zip(
            batch.leads,
            batch.types,
            batch.at_us,
            batch.event_ids,
            batch.properties_json,
            strict=True,
        )
    )
    assert [(b.line, b.column, b.message) for c in chunks for b in c.bad] == [
        (b.line, b.column, b.message) for b in parsed.bad
    ]
    assert sum(c.read for c in chunks) == parsed.read
