"""The command line, end to end on a real database: contracts, imports and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from conftest import NOW, Cli
from leadheat.times import isoformat

RECENT = isoformat(NOW - timedelta(days=1))


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    runner = Cli(db_url, capsys)
    assert runner("init")[0] == 0
    return runner


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding) if encoding else text)  # type: ignore[arg-type]
    return path


def test_show_json_has_the_contract_keys(cli: Cli) -> None:
    assert cli("track", "ana@example.com", "trial_signup", "--at", RECENT)[0] == 0
    data = cli.json("show", "ana@example.com")
    assert isinstance(data, dict)
    for key in (
        "lead",
        "heat",
        "fit",
        "qualified",
        "temperature",
        "grade",
        "evidence",
        "explanation",
        "hot_until",
        "warm_until",
    ):
        assert key in data, key
    assert data["lead"]["email"] == "ana@example.com"
    assert data["temperature"] in ("hot", "warm", "cold")
    assert data["explanation"]["heat"][0]["type"] == "trial_signup"


def test_import_events_then_again_adds_nothing(cli: Cli, tmp_path: Path) -> None:
    day = NOW - timedelta(days=2)
    rows = "\n".join(
        f"lead{i % 3}@example.com,page_view,{isoformat(day + timedelta(minutes=i))},/p{i}"
        for i in range(10)
    )
    events = write(tmp_path / "events.csv", "lead,type,timestamp,url\n" + rows + "\n")
    code, out, _ = cli("import", "events", str(events))
    assert code == 0 and "rows read 10, stored 10, duplicates 0" in out
    code, out, _ = cli("import", "events", str(events))
    assert code == 0 and "rows read 10, stored 0, duplicates 10" in out
    listed = cli.json("leads")
    assert isinstance(listed, list) and len(listed) == 3


@pytest.mark.parametrize(
    ("content", "encoding", "expected"),
    [
        (
            "lead,type,timestamp\na@example.com,page_view,{ok}\nb@example.com,page_view,31/02/2024\n",
            "utf-8",
            "line 3, column \"timestamp\": '31/02/2024' is not a date",
        ),
        (
            "lead,type,timestamp\na@example.com,page_view,{ok}\n,page_view,{ok}\n",
            "utf-8",
            'line 3, column "lead": empty lead reference',
        ),
        (
            'lead,type,timestamp\na@example.com,page_view,{ok}\n"b@example.com,page_view,{ok}\n',
            "utf-8",
            "line 3: broken CSV quoting",
        ),
        (
            "lead,type,timestamp,city\na@example.com,page_view,{ok},Z\xfcrich\n",
            "latin-1",
            'line 2, column "city": not valid UTF-8',
        ),
        (
            "lead,type,timestamp\na@example.com,page_view,{ok}\nb@example.com,page_view,2099-01-01T00:00:00Z\n",
            "utf-8",
            "line 3, column \"timestamp\": '2099-01-01T00:00:00Z' is in the future",
        ),
        (
            "lead,type,timestamp\na@example.com,page_view,{ok},extra\n",
            "utf-8",
            "line 2: expected 3 fields, found 4",
        ),
        (
            "lead,type\na@example.com,page_view\n",
            "utf-8",
            'line 1, column "timestamp": required column is missing',
        ),
    ],
    ids=["bad-date", "no-lead", "quoting", "not-utf8", "future", "width", "no-column"],
)
def test_a_bad_row_stops_the_import_and_stores_nothing(
    cli: Cli, tmp_path: Path, content: str, encoding: str, expected: str
) -> None:
    path = write(tmp_path / "events.csv", content.replace("{ok}", RECENT or ""), encoding)
    code, _, err = cli("import", "events", str(path))
    assert code == 1
    assert expected in " ".join(err.split()), err
    assert "nothing was imported" in err or "required column" in err
    assert cli.json("leads") == []


def test_skip_bad_stores_good_rows_and_writes_the_bad_ones(cli: Cli, tmp_path: Path) -> None:
    path = write(
        tmp_path / "events.csv",
        f"lead,type,timestamp\na@example.com,form_submit,{RECENT}\nb@example.com,page_view,yesterday\n",
    )
    bad = tmp_path / "bad.csv"
    code, out, _ = cli("import", "events", str(path), "--skip-bad", str(bad))
    assert code == 0 and "stored 1" in out and "bad 1" in out
    assert "line" in bad.read_text() and "yesterday" in bad.read_text()
    assert [row["email"] for row in cli.json("leads")] == ["a@example.com"]  # type: ignore[index,union-attr]


def test_touches_and_outcomes_need_known_leads(cli: Cli, tmp_path: Path) -> None:
    cli("track", "a@example.com", "form_submit", "--at", RECENT)
    touches = write(
        tmp_path / "touches.csv",
        f"lead,kind,timestamp,rep\na@example.com,call,{RECENT},sam\nnobody@example.com,call,{RECENT},sam\n",
    )
    code, _, err = cli("import", "touches", str(touches))
    assert code == 1 and 'line 3, column "lead": no lead known as' in err
    assert cli.json("show", "a@example.com")["touches"] == []  # type: ignore[index]
    outcomes = write(
        tmp_path / "outcomes.csv", f"lead,outcome,timestamp\na@example.com,won,{RECENT}\n"
    )
    assert cli("import", "outcomes", str(outcomes))[0] == 0
    assert cli.json("show", "a@example.com")["status"] == "won"  # type: ignore[index]


def test_import_leads_with_a_column_map(cli: Cli, tmp_path: Path) -> None:
    path = write(
        tmp_path / "leads.csv",
        "Customer,Job Title,Employees,Signed up\n"
        "C-1,VP Marketing,120,2025-03-01T09:00:00Z\nC-2,Student,,2025-04-01T09:00:00Z\n",
    )
    code, out, err = cli(
        "import",
        "leads",
        str(path),
        "--map",
        "Customer=external_id",
        "--map",
        "Job Title=title",
        "--map",
        "Signed up=created_at",
    )
    assert code == 0, err
    assert "created 2" in out
    shown = cli.json("show", "C-1")
    assert shown["lead"]["title"] == "VP Marketing"  # type: ignore[index]
    assert shown["lead"]["attributes"]["employees"] == "120"  # type: ignore[index]
    assert shown["lead"]["created_at"] == "2025-03-01T09:00:00Z"  # type: ignore[index]
    assert shown["explanation"]["fit"]["disqualified_by"] == []  # type: ignore[index]
    assert cli.json("show", "C-2")["explanation"]["fit"]["disqualified_by"]  # type: ignore[index]
    code, _, err = cli("import", "leads", str(path), "--map", "Nope=external_id")
    assert code == 1 and '"Nope": --map names a column the file does not have' in err


def test_playbook_check_names_key_and_line_and_apply_makes_a_version(
    cli: Cli, tmp_path: Path
) -> None:
    bad = write(
        tmp_path / "bad.toml", '[decay]\nhalf_life = "7d"\n\n[temperature]\nhot_heat = "hot"\n'
    )
    code, _, err = cli("playbook", "check", str(bad))
    assert code == 1 and "line 5, temperature.hot_heat" in err
    good = write(
        tmp_path / "good.toml", '[decay]\nhalf_life = "3d"\n[signals.page_view]\npoints = 2\n'
    )
    assert cli("playbook", "check", str(good))[0] == 0
    assert cli("playbook", "apply", str(good))[0] == 0
    assert cli.json("playbook", "show")["version"] == 2  # type: ignore[index]
    assert cli.json("playbook", "show")["playbook"]["decay"]["half_life"] == "3d"  # type: ignore[index]
    assert [v["version"] for v in cli.json("playbook", "history")] == [1, 2]  # type: ignore[index]


def test_playbook_check_refuses_a_pattern_that_cannot_run_in_linear_time(
    cli: Cli, tmp_path: Path
) -> None:
    source = (
        "[fit]\nqualified_at = 5\n\n"
        "[[fit.rules]]\nfield = 'title'\nmatches = '(?i)vp'\npoints = 5\n\n"
        "[[fit.rules]]\nfield = 'name'\nmatches = '^(\\w+) \\1$'\npoints = 1\n"
    )
    book = write(tmp_path / "echo.toml", source)
    for command in ("check", "apply"):
        code, _, err = cli("playbook", command, str(book))
        assert code == 1
        assert "line 11, fit.rules.1.matches: '^(\\\\w+) \\\\1$' cannot run in linear time" in err
        assert "backreferences" in err
    assert cli.json("playbook", "show")["version"] == 1  # type: ignore[index]


def test_time_travel_and_lists_from_the_cli(cli: Cli) -> None:
    cli("track", "vp@example.com", "trial_signup", "--at", RECENT)
    cli("track", "vp@example.com", "demo_request", "--at", RECENT)
    for kind in ("need", "budget", "timeline"):
        assert cli("evidence", "vp@example.com", kind, "yes", "--at", RECENT)[0] == 0
    code, _, err = cli("evidence", "vp@example.com", "mood", "good")
    assert code == 1 and "must be one of" in err
    earlier = isoformat(NOW - timedelta(days=3))
    assert cli.json("show", "vp@example.com", "--at", earlier)["heat"] == 0  # type: ignore[index]
    assert cli.json("leads", "--at", earlier) == []  # it did not exist yet
    later = isoformat(NOW - timedelta(hours=20))
    warm = cli.json("leads", "--temperature", "warm", "--at", later)
    assert [row["email"] for row in warm] == ["vp@example.com"]  # type: ignore[index,union-attr]
    code, _, err = cli("leads", "--temperature", "tepid")
    assert code == 1 and "hot, warm or cold" in err


def test_rescore_in_process_rebuilds_scores_lost_from_the_database(cli: Cli, db_url: str) -> None:
    """``leadheat rescore`` (the local engine) replays every lead's stored history: scores
    wiped behind leadheat's back (as after loading tables directly) come back exactly."""
    cli("track", "vp@example.com", "trial_signup", "--at", RECENT)
    cli("track", "vp@example.com", "demo_request", "--at", RECENT)
    cli("track", "reader@example.com", "page_view", "--at", RECENT)
    at = isoformat(NOW)
    before = cli.json("leads", "--at", at)
    assert {row["temperature"] for row in before} == {"warm"}  # type: ignore[union-attr,index]
    engine = create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM heat_keys"))
        connection.execute(
            text("UPDATE lead_states SET fit = 0, events_count = 0, last_engaged_at = NULL")
        )
    engine.dispose()
    wiped = cli.json("leads", "--at", at)
    assert {row["temperature"] for row in wiped} == {"cold"}  # type: ignore[union-attr,index]
    code, out, err = cli("rescore")
    assert code == 0 and "re-scored 2 leads from 3 events in process" in out, err
    assert cli.json("leads", "--at", at) == before
    code, _, err = cli("rescore", "--output", "x.parquet")
    assert code == 1 and "need --engine spark" in err
    code, _, err = cli("rescore", "--engine", "gpu")
    assert code == 1 and "--engine must be local or spark" in err


def test_the_installed_command_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    command = [sys.executable, "-m", "leadheat", "--db", url]
    assert subprocess.run([*command, "init"], check=False).returncode == 0
    done = subprocess.run([*command, "hot", "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and json.loads(done.stdout) == []
    done = subprocess.run(
        [*command, "show", "who@example.com"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1 and "no lead known as 'who@example.com'" in done.stderr


def test_grade_letter_is_the_same_in_lists_and_show(cli: Cli) -> None:
    cli("track", "student@example.com", "trial_signup", "--at", RECENT)
    cli("track", "dq@example.com", "trial_signup", "--at", RECENT)
    cli("outcome", "dq@example.com", "disqualified", "--at", RECENT)
    lh_rows = {row["email"]: row for row in cli.json("leads")}  # type: ignore[union-attr,index]
    for email in ("student@example.com", "dq@example.com"):
        assert lh_rows[email]["grade"] == cli.json("show", email)["grade"]  # type: ignore[index]
    assert lh_rows["dq@example.com"]["grade"].startswith("D")


def test_reimporting_touches_and_outcomes_adds_nothing(cli: Cli, tmp_path: Path) -> None:
    cli("track", "a@example.com", "form_submit", "--at", RECENT)
    touches = write(
        tmp_path / "t.csv", f"lead,kind,timestamp,rep\na@example.com,call,{RECENT},sam\n"
    )
    assert "stored 1, duplicates 0" in cli("import", "touches", str(touches))[1]
    assert "stored 0, duplicates 1" in cli("import", "touches", str(touches))[1]
    outcomes = write(tmp_path / "o.csv", f"lead,outcome,timestamp\na@example.com,lost,{RECENT}\n")
    assert "stored 1, duplicates 0" in cli("import", "outcomes", str(outcomes))[1]
    assert "stored 0, duplicates 1" in cli("import", "outcomes", str(outcomes))[1]
    assert len(cli.json("show", "a@example.com")["touches"]) == 1  # type: ignore[index,arg-type]


def test_playbook_show_output_is_a_loadable_playbook(cli: Cli, tmp_path: Path) -> None:
    code, out, _ = cli("playbook", "show")
    assert code == 0
    saved = write(tmp_path / "mine.toml", out)
    assert cli("playbook", "check", str(saved))[0] == 0
    assert "(?i)founder|owner|chief|\\\\bc[etmo]o\\\\b" in out  # brackets survive


def test_columns_of_fixed_files_are_renamed_not_mapped(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", f"email,type,timestamp\na@example.com,page_view,{RECENT}\n")
    code, _, err = cli("import", "events", str(path))
    assert code == 1 and 'rename a column to "lead"' in err and "--map" not in err


def test_a_missing_database_is_not_created_by_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nothing.db"
    code, _, err = Cli(f"sqlite:///{path}", capsys)("hot")
    assert code == 1 and "run `leadheat init` first" in err
    assert not path.exists()


def test_keys_are_created_shown_once_listed_and_revoked(cli: Cli) -> None:
    created = cli.json("keys", "create", "website", "--scope", "ingest")
    assert isinstance(created, dict) and created["key"].startswith("lh_")
    listed = cli.json("keys", "list")
    assert [(k["name"], k["scopes"], k["revoked_at"]) for k in listed] == [  # type: ignore[index,union-attr]
        ("website", ["ingest"], None)
    ]
    assert created["key"] not in json.dumps(listed)
    assert cli("keys", "revoke", created["prefix"])[0] == 0
    assert cli.json("keys", "list")[0]["revoked_at"] is not None  # type: ignore[index]
    code, _, err = cli("keys", "create", "x", "--scope", "everything")
    assert code == 1 and "ingest, read, admin" in err


def test_serve_answers_http(tmp_path: Path) -> None:
    import socket
    import time

    import httpx

    url = f"sqlite:///{tmp_path / 'served.db'}"
    command = [sys.executable, "-m", "leadheat", "--db", url]
    subprocess.run([*command, "init"], check=True, capture_output=True)
    key = subprocess.run(
        [*command, "keys", "create", "t", "--scope", "read"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [*command, "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/hot",
                    headers={"Authorization": f"Bearer {key}"},
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "leadheat serve did not answer"
                time.sleep(0.2)
        assert (answer.status_code, answer.json()) == (200, [])
        docs = httpx.get(f"http://127.0.0.1:{port}/openapi.json")
        assert "/v1/batch" in docs.json()["paths"]
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=20)
    assert f"at http://localhost:{port}" in output
