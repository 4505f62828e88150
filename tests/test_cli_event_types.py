"""Event types: one snake_case rule on every ingest path (a CSV's "Demo Request" is the
playbook's ``demo_request``, as on the Segment routes), and ``import events`` says which types
the playbook does not score, or refuses them with ``--strict-types``. On SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from conftest import NOW, Cli
from leadheat.times import isoformat

DAY = NOW - timedelta(days=1)


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    runner = Cli(db_url, capsys)
    assert runner("init")[0] == 0
    return runner


def _events(tmp_path: Path, *types: str) -> Path:
    rows = "".join(
        f"ana@x.com,{kind},{isoformat(DAY + timedelta(minutes=i))}\n"
        for i, kind in enumerate(types)
    )
    path = tmp_path / "events.csv"
    path.write_text("lead,type,timestamp\n" + rows)
    return path


def _heat_types(cli: Cli, lead: str = "ana@x.com") -> set[str]:
    shown = cli.json("show", lead)
    assert isinstance(shown, dict)
    return {item["type"] for item in shown["explanation"]["heat"]}


def test_a_csv_type_is_stored_in_snake_case_and_scored(cli: Cli, tmp_path: Path) -> None:
    code, out, err = cli("import", "events", str(_events(tmp_path, "Demo Request", "page-view")))
    assert code == 0, err
    assert _heat_types(cli) == {"demo_request", "page_view"}
    assert "does not score" not in out  # both are the playbook's


def test_track_stores_the_same_snake_case_type(cli: Cli) -> None:
    assert cli("track", "bo@x.com", "Demo Request", "--at", isoformat(DAY))[0] == 0
    assert _heat_types(cli, "bo@x.com") == {"demo_request"}


def test_import_events_lists_unscored_types_with_counts_and_near_misses(
    cli: Cli, tmp_path: Path
) -> None:
    path = _events(
        tmp_path, "demo_requets", "demo_requets", "pricing-page-visit", "page_view", "Demo Request"
    )
    code, out, err = cli("import", "events", str(path))
    assert code == 0, err
    assert "stored 5" in out  # stored all the same, at 0 points
    lines = out.splitlines()
    at = lines.index("event types the playbook does not score (stored at 0 points):")
    assert [line.strip() for line in lines[at + 1 :]] == [
        "demo_requets: 2 events (did you mean demo_request?)",
        "pricing_page_visit: 1 event",
    ]


def test_strict_types_refuses_the_file_and_stores_nothing(cli: Cli, tmp_path: Path) -> None:
    path = _events(tmp_path, "page_view", "demo_requets")
    code, out, err = cli("import", "events", str(path), "--strict-types")
    assert code == 1 and out == ""
    assert "--strict-types" in err and "demo_requets: 1 event (did you mean demo_request?)" in err
    assert cli.json("leads") == []  # nothing stored, not even the scored row
    good = _events(tmp_path, "page_view", "Demo Request")
    code, out, err = cli("import", "events", str(good), "--strict-types")
    assert code == 0 and "stored 2" in out, err
