"""Real data through the real import path: X Education leads and the CDNOW purchase stream."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from leadheat.cli import main
from leadheat.service import Leadheat
from leadheat.store.models import Event, Lead

pytestmark = pytest.mark.shared_data

X_EDUCATION_PLAYBOOK = """
[fit]
qualified_at = 10
[[fit.rules]]
field = "what_is_your_current_occupation"
equals = "Working Professional"
points = 10
[[fit.rules]]
field = "totalvisits"
range = [5, 1000]
points = 5
[[fit.rules]]
field = "country"
present = true
points = 2
[[fit.rules]]
field = "what_is_your_current_occupation"
equals = "Student"
disqualify = true
"""


def run(*args: str) -> None:
    """``leadheat ARGS`` in-process; it must succeed."""
    code: object = 0
    try:
        main(list(args))
    except SystemExit as done:
        code = done.code
    assert code in (0, None), f"leadheat {' '.join(args)} exited {code}"


def test_x_education_leads_import_with_a_column_map(
    shared_data: Path, tmp_path: Path, db_url: str
) -> None:
    url = db_url
    playbook = tmp_path / "playbook.toml"
    playbook.write_text(X_EDUCATION_PLAYBOOK)
    run("--db", url, "init", "--playbook", str(playbook))
    source = shared_data / "x_education_leads" / "Leads.csv"
    run(
        "--db",
        url,
        "import",
        "leads",
        str(source),
        "--map",
        "Prospect ID=external_id",
        "--map",
        "Lead Source=source",
    )
    lh = Leadheat(url)
    with lh.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Lead)).scalar() == 9240
    # Scores worked out by hand from the rows of Leads.csv:
    cases = {
        # Unemployed, 0 visits, no country: nothing matches; 2 of 3 fields given
        "7927b2df-8bba-4d29-b9a2-b6e0beafe620": (0.0, False, False, 2 / 3),
        # Unemployed, 5 visits, India: 5 + 2
        "2a272436-5132-4136-86fa-dcc88c88f482": (7.0, False, False, 1.0),
        # Student, 2 visits, India: 2 points but disqualified
        "8cc8c611-a219-4f35-ad23-fdfd2656bd8a": (2.0, False, True, 1.0),
        # Working Professional, 5 visits, India: 10 + 5 + 2, qualified
        "e60a54bc-0816-430e-a99a-019a8b5a27e5": (17.0, True, False, 1.0),
    }
    for prospect, (fit, qualified, disqualified, completeness) in cases.items():
        score = lh.show(prospect).score
        assert score.fit.points == fit, prospect
        assert score.qualified is qualified, prospect
        assert bool(score.fit.disqualified_by) is disqualified, prospect
        assert math.isclose(score.fit.completeness, completeness), prospect
    assert lh.show("2a272436-5132-4136-86fa-dcc88c88f482").lead["source"] == "Organic Search"
    run("--db", url, "import", "leads", str(source), "--map", "Prospect ID=external_id")
    with lh.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Lead)).scalar() == 9240
    lh.engine.dispose()


def cdnow_as_csv(shared_data: Path, target: Path) -> int:
    """The whitespace-separated CDNOW master file as an events CSV (no ids: they are derived)."""
    rows = 0
    with (
        (shared_data / "cdnow_lifetimes" / "CDNOW_master.txt").open() as source,
        target.open("w", newline="") as out,
    ):
        writer = csv.writer(out)
        writer.writerow(["lead", "type", "timestamp", "cds", "dollars"])
        for line in source:
            parts = line.split()
            if not parts or not parts[0].isdigit():
                continue
            customer, day, cds, dollars = parts
            stamp = f"{day[:4]}-{day[4:6]}-{day[6:]}T00:00:00Z"
            writer.writerow([customer, "purchase", stamp, cds, dollars])
            rows += 1
    return rows


def test_cdnow_purchase_stream_imports_as_events(
    shared_data: Path, tmp_path: Path, db_url: str
) -> None:
    url = db_url
    events = tmp_path / "cdnow.csv"
    assert cdnow_as_csv(shared_data, events) == 69_659
    run("--db", url, "init")
    run("--db", url, "import", "events", str(events))
    run("--db", url, "import", "events", str(events))  # again: derived ids make it a no-op
    lh = Leadheat(url)
    with lh.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Event)).scalar() == 69_659
        assert connection.execute(select(func.count()).select_from(Lead)).scalar() == 23_570
        created = connection.execute(select(Lead.created_at).where(Lead.external_id == "00003"))
        assert created.scalar_one() == datetime(1997, 1, 2, tzinfo=UTC)
    # Default playbook: a purchase is worth 10 points, half-life 7 days.
    # 00002 bought twice on 1997-01-12: 10 + 10 at that midnight.
    assert math.isclose(lh.show("00002", datetime(1997, 1, 12, tzinfo=UTC)).score.heat, 20.0)
    # 00003 on 1997-04-09: purchases 97, 10 and 7 days earlier (later ones not yet made).
    expected = 10 * 2 ** (-97 / 7) + 10 * 2 ** (-10 / 7) + 10 * 2 ** (-7 / 7)
    at = datetime(1997, 4, 9, tzinfo=UTC)
    assert math.isclose(lh.show("00003", at).score.heat, expected, rel_tol=1e-12)
    listed = {row.external_id: row.heat for row in lh.leads(at=at, limit=30_000)}
    assert math.isclose(listed["00003"], expected, rel_tol=1e-12)
    # 00001 bought once, on 1997-01-01: 98 days (14 half-lives) before.
    assert math.isclose(listed["00001"], 10 * 2 ** (-98 / 7), rel_tol=1e-12)
    # Today all of it is more than 180 days old: cold, whatever it was.
    assert lh.hot() == []
    assert {row.temperature.value for row in lh.leads(limit=50)} == {"cold"}
    lh.engine.dispose()
