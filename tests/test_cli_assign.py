"""``leadheat assign LEAD REP``: a lead given to a known rep by hand, audited, with the SLA
clock running for the new owner; an unknown rep refused by name. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import DEMO_MAKES_HOT, Cli

PLAYBOOK = DEMO_MAKES_HOT + "[speed.triggers.hot]\nbusiness_hours = false\n"
"""Hot at once, and the ``hot`` trigger's clock runs around the clock."""
RITA = "rita@example.com"
SAM = "sam@example.com"


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Cli:
    """A new install with the playbook and a hot CTO nobody owns (there are no reps yet)."""
    runner = Cli(db_url, capsys)
    assert runner("init")[0] == 0
    book = tmp_path / "playbook.toml"
    book.write_text(PLAYBOOK)
    assert runner("playbook", "apply", str(book))[0] == 0
    leads = tmp_path / "leads.csv"
    leads.write_text("email,title\nana@x.com,CTO\n")
    assert runner("import", "leads", str(leads))[0] == 0
    assert runner("track", "ana@x.com", "demo_request")[0] == 0
    return runner


def _show(cli: Cli) -> dict[str, object]:
    shown = cli.json("show", "ana@x.com")
    assert isinstance(shown, dict)
    return shown


def _open_clocks(cli: Cli) -> list[dict[str, object]]:
    clocks = cli.json("sla", "--open")
    assert isinstance(clocks, list)
    return clocks


def _owner_records(cli: Cli) -> list[dict[str, object]]:
    records = cli.json("audit", "--action", "lead.owner")
    assert isinstance(records, list)
    return records


def test_assign_sets_the_owner_audited_with_their_clock(cli: Cli) -> None:
    (waiting,) = _open_clocks(cli)
    assert waiting["owner"] is None  # hot with nobody to own it
    assert cli("reps", "add", RITA)[0] == 0
    code, out, err = cli("assign", "ana@x.com", RITA)
    assert code == 0, err
    lead = _show(cli)["lead"]
    assert isinstance(lead, dict) and lead["owner"] == RITA
    assert f"nobody -> {RITA}" in out
    (record,) = _owner_records(cli)
    assert record["actor"] == "cli" and record["subject"] == f"lead:{lead['id']}"
    assert record["detail"] == {"from": None, "to": RITA, "why": "assigned"}
    (mine,) = _open_clocks(cli)
    # the clock that ran since the lead turned hot is hers now, deadline and all
    assert (mine["id"], mine["owner"], mine["state"]) == (waiting["id"], RITA, "running")
    assert mine["deadline"] == waiting["deadline"] and str(mine["deadline"]) in out


def test_assign_replaces_an_owner_and_the_clock_follows(cli: Cli) -> None:
    for rep in (RITA, SAM):
        assert cli("reps", "add", rep)[0] == 0
    assert cli("assign", "ana@x.com", RITA)[0] == 0
    code, out, err = cli("assign", "ana@x.com", "Sam@Example.com")  # any case
    assert code == 0, err
    assert f"{RITA} -> {SAM}" in out
    lead = _show(cli)["lead"]
    assert isinstance(lead, dict) and lead["owner"] == SAM
    latest = _owner_records(cli)[0]
    assert latest["detail"] == {"from": RITA, "to": SAM, "why": "assigned"}
    ((clock,),) = [_open_clocks(cli)]
    assert clock["owner"] == SAM and clock["state"] == "running"
    # assigning a lead to its owner changes nothing, and says so
    for same in (SAM, SAM.upper()):
        code, out, _ = cli("assign", "ana@x.com", same)
        assert code == 0 and "already" in out
    assert len(_owner_records(cli)) == 2


def test_assign_to_an_unknown_rep_is_refused_by_name(cli: Cli) -> None:
    code, out, err = cli("assign", "ana@x.com", "nobody@example.com")
    assert code == 1 and out == ""
    assert "nobody@example.com" in err and "leadheat reps add" in err
    lead = _show(cli)["lead"]
    assert isinstance(lead, dict) and lead["owner"] is None
    assert _owner_records(cli) == []
    assert cli("reps", "list", "--json")[1].strip() == "[]"  # no rep was made up
