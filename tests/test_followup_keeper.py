"""The follow-up keeper (``engage/keeper.py``): stale leads computed from a snapshot, outside
the write lock (``followup.refresh_apart``), stored only where no write came meanwhile; and
the process ``leadheat serve`` runs it in."""

from __future__ import annotations

import base64
import os
import random
import signal
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from conftest import NOW, Clock, free_port, serve
from leadheat.engage import followup
from leadheat.engage.followup import keep_current, refresh, refresh_apart
from leadheat.engage.lists import replayed_tasks, tasks
from leadheat.identity import LeadKey
from leadheat.playbook import Playbook
from leadheat.service import Leadheat
from leadheat.store.events import NewEvent
from leadheat.store.models import FollowupStale
from test_followup_state import PLAYBOOK, latest_fact, populate

D = timedelta(days=1)


def _marks(lh: Leadheat) -> dict[int, int]:
    with lh.engine.connect() as connection:
        rows = connection.execute(select(FollowupStale.lead_id, FollowupStale.marks)).all()
    return dict(rows)


def _kept(lh: Leadheat) -> dict[str, list[tuple[Any, ...]]]:
    """The kept state's rows, table by table."""
    with lh.engine.connect() as connection:
        return {
            table: sorted(tuple(row) for row in connection.execute(text(f"SELECT * FROM {table}")))
            for table in ("followup_leads", "followup_phases")
        }


def _event(lh: Leadheat, lead: str, kind: str, minutes: int) -> None:
    lh.record_events(
        [
            NewEvent(
                LeadKey("email", lead),
                kind,
                NOW - timedelta(hours=1) + timedelta(minutes=minutes),
                f"k-{lead}-{minutes}",
            )
        ]
    )


def _between(monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], None]) -> None:
    """Run ``meanwhile`` after ``refresh_apart`` has computed from its snapshot and before it
    stores: the writes a server makes while the keeper computes."""
    computed = followup._states
    pending = [meanwhile]  # once: ``meanwhile`` may compute states itself

    def states(connection: Any, book: Playbook, lead_ids: Sequence[int]) -> Any:
        found = computed(connection, book, lead_ids)
        while pending:
            pending.pop()()
        return found

    monkeypatch.setattr(followup, "_states", states)


def test_refresh_apart_stores_what_refresh_stores(lh: Leadheat, clock: Clock) -> None:
    """Computed outside the write transaction, the same rows as inside it, and the answers
    equal the replay's."""
    lh.apply_playbook(PLAYBOOK % ("false", "2d"))
    populate(lh, random.Random(31), 40)
    assert refresh_apart(lh, most=15) == 15  # at most ``most`` a pass
    assert len(_marks(lh)) == 25
    while refresh_apart(lh):
        pass
    assert _marks(lh) == {}
    apart = _kept(lh)
    with lh.engine.begin() as connection:
        connection.execute(text("DELETE FROM followup_leads"))
        connection.execute(text("DELETE FROM followup_phases"))
        connection.execute(
            text("INSERT INTO followup_stale (lead_id, marks) SELECT id, 0 FROM leads")
        )
    with lh.transaction() as connection:
        _, book = lh.playbook_in(connection)
        assert refresh(connection, book) == 40
    assert _kept(lh) == apart
    at = latest_fact(lh) + 2 * D
    assert tasks(lh, at=at) == replayed_tasks(lh, at=at)


def _count_writes(lh: Leadheat) -> Callable[[], int]:
    """Rows inserted into and deleted from the kept state from now on, counted by triggers."""
    with lh.engine.begin() as connection:
        connection.execute(text("CREATE TABLE written (n INTEGER NOT NULL)"))
        connection.execute(text("INSERT INTO written VALUES (0)"))
        for table in ("followup_leads", "followup_phases"):
            for what in ("INSERT", "DELETE"):
                connection.execute(
                    text(
                        f"CREATE TRIGGER count_{what}_{table} AFTER {what} ON {table} "
                        "BEGIN UPDATE written SET n = n + 1; END"
                    )
                )

    def written() -> int:
        with lh.engine.connect() as connection:
            return int(connection.execute(text("SELECT n FROM written")).scalar_one())

    return written


def test_a_recompute_rewrites_only_the_rows_that_changed(lh: Leadheat, clock: Clock) -> None:
    """A write that leaves a lead's follow-up as it was (an ``identify`` with the traits it
    had) writes none of its rows again, and an event rewrites its own lead's rows only: the
    keeper holds the write lock, which the server's writes wait for, only for what changed.
    The rows equal what a recompute from nothing stores."""
    if lh.engine.dialect.name != "sqlite":
        pytest.skip("the count is kept by SQLite triggers")
    lh.apply_playbook(PLAYBOOK % ("false", "2d"))
    populate(lh, random.Random(7), 30)
    while refresh_apart(lh):
        pass
    written = _count_writes(lh)
    before = _kept(lh)
    with lh.engine.begin() as connection:  # marks every lead; changes nothing
        connection.execute(text("UPDATE lead_states SET events_count = events_count"))
    assert len(_marks(lh)) == 30
    while refresh_apart(lh):
        pass
    assert (written(), _marks(lh), _kept(lh)) == (0, {}, before)
    lh.record_events([NewEvent(LeadKey("email", "f3@example.com"), "demo", NOW, "k-late-demo")])
    while refresh_apart(lh):
        pass
    after = _kept(lh)
    with lh.engine.connect() as connection:
        lead = connection.execute(
            text("SELECT id FROM leads WHERE email = 'f3@example.com'")
        ).scalar_one()
    changed = {table: set(before[table]) ^ set(after[table]) for table in before}
    assert changed["followup_leads"] and changed["followup_phases"]
    assert all(row[0] == lead for rows in changed.values() for row in rows)
    assert written() == sum(len(rows) for rows in changed.values())
    with lh.engine.begin() as connection:
        connection.execute(text("DELETE FROM followup_leads"))
        connection.execute(text("DELETE FROM followup_phases"))
        connection.execute(
            text("INSERT INTO followup_stale (lead_id, marks) SELECT id, 0 FROM leads")
        )
    while refresh_apart(lh):
        pass
    assert _kept(lh) == after


def test_a_read_recomputes_what_was_stale_when_it_began(
    lh: Leadheat, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lead a write marks while a read recomputes is left to the keeper: the read answers
    as of its start and does not chase what steady ingestion keeps marking."""
    lh.apply_playbook(PLAYBOOK % ("false", "2d"))
    populate(lh, random.Random(5), 20)
    assert len(_marks(lh)) == 20
    computed = followup.refresh
    writes: list[int] = []

    def refresh_then_a_write(connection: Any, book: Playbook, *args: Any, **kwargs: Any) -> int:
        found = computed(connection, book, *args, **kwargs)
        if len(writes) < 3:  # a server's write right after each pass marks a lead again
            connection.execute(
                text(
                    "UPDATE lead_states SET events_count = events_count "
                    "WHERE lead_id = (SELECT min(lead_id) FROM lead_states)"
                )
            )
            writes.append(1)
        return found

    monkeypatch.setattr(followup, "refresh", refresh_then_a_write)
    assert keep_current(lh) == 20
    assert len(_marks(lh)) == 1  # the lead written meanwhile, for the keeper


def test_a_write_while_the_keeper_computes_keeps_its_lead_stale(
    lh: Leadheat, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lead written between the snapshot and the store is not given the state computed
    before the write: it stays marked, and the next pass computes it with the write."""
    lh.apply_playbook(PLAYBOOK % ("false", "2d"))
    populate(lh, random.Random(32), 10)
    while refresh_apart(lh):
        pass
    before = _kept(lh)
    _event(lh, "f3@example.com", "demo", 10)
    _event(lh, "f4@example.com", "demo", 10)
    f3 = lh.lead_id("f3@example.com")
    _between(monkeypatch, lambda: _event(lh, "f3@example.com", "demo", 20))
    assert refresh_apart(lh) == 1  # f4 only
    assert set(_marks(lh)) == {f3}
    assert [row for row in _kept(lh)["followup_leads"] if row[0] == f3] == [
        row for row in before["followup_leads"] if row[0] == f3
    ]
    monkeypatch.undo()
    assert refresh_apart(lh) == 1
    assert _marks(lh) == {}
    at = latest_fact(lh) + D
    assert tasks(lh, at=at) == replayed_tasks(lh, at=at)


def test_a_lead_computed_elsewhere_then_written_again_is_not_stored_from_the_old_snapshot(
    lh: Leadheat, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Meanwhile a read computes the lead in its own transaction (its mark goes), then a
    write marks it again. With 0011's marks (always 0 on SQLite) the new mark looked like
    the one the keeper had read, and the keeper stored the state from before the write;
    with a number drawn at each marking (0012) the lead stays stale."""
    lh.apply_playbook(PLAYBOOK % ("false", "2d"))
    populate(lh, random.Random(33), 6)
    while refresh_apart(lh):
        pass
    _event(lh, "f2@example.com", "visit", 5)
    f2 = lh.lead_id("f2@example.com")
    read = _marks(lh)[f2]

    def elsewhere() -> None:
        assert keep_current(lh) == 1
        _event(lh, "f2@example.com", "demo", 30)

    _between(monkeypatch, elsewhere)
    assert refresh_apart(lh) == 0
    assert _marks(lh)[f2] != read
    monkeypatch.undo()
    assert refresh_apart(lh) == 1
    at = latest_fact(lh) + D
    assert tasks(lh, at=at) == replayed_tasks(lh, at=at)


def test_leads_written_all_the_time_do_not_hold_up_the_others(
    lh: Leadheat, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two leads written during every pass stay stale, and the others are computed anyway:
    each pass takes the leads marked longest ago, and those two were just marked again."""
    lh.apply_playbook(PLAYBOOK % ("false", "2d"))
    populate(lh, random.Random(35), 6)
    while refresh_apart(lh):
        pass
    busy = [f"f{n}@example.com" for n in range(2)]
    for n in range(6):
        _event(lh, f"f{n}@example.com", "visit", 1)
    busy_ids = {lh.lead_id(email) for email in busy}
    minute = iter(range(2, 1000))
    computed = followup._states

    def states(connection: Any, book: Playbook, lead_ids: Sequence[int]) -> Any:
        found = computed(connection, book, lead_ids)
        at = next(minute)
        for email in busy:  # a write to each busy lead while every pass computes
            _event(lh, email, "visit", at)
        return found

    monkeypatch.setattr(followup, "_states", states)
    stored = sum(refresh_apart(lh, most=2) for _ in range(4))
    assert stored == 4
    assert set(_marks(lh)) == busy_ids


def test_each_marking_draws_a_new_number(lh: Leadheat, clock: Clock) -> None:
    """Marks grow with each write to an already marked lead, and after a refresh a lead
    marked again never shows a number it showed before."""
    populate(lh, random.Random(34), 3)
    first = _marks(lh)
    _event(lh, "f1@example.com", "demo", 1)
    f1 = lh.lead_id("f1@example.com")
    second = _marks(lh)
    assert second[f1] > first[f1]
    keep_current(lh)
    _event(lh, "f1@example.com", "demo", 2)
    assert _marks(lh)[f1] > second[f1]
    lh.add_rep("ann@team.example")  # a rep's team marks the rep's leads (a trigger on reps)
    owned = [lead for lead, marks in _marks(lh).items() if lead != f1]
    assert all(_marks(lh)[lead] > second[f1] for lead in owned)


def _children(pid: int) -> list[int]:
    """The live (not zombie) child processes of ``pid``, read from ``/proc``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text(encoding="ascii", errors="replace").rsplit(") ", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if fields[1] == str(pid) and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _stale(path: Path) -> int:
    import sqlite3

    with sqlite3.connect(path) as connection:
        (count,) = connection.execute("SELECT count(*) FROM followup_stale").fetchone()
    return int(count)


def _wait(condition: Callable[[], bool], within: float = 20) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_serve_keeps_the_state_in_a_process_that_ends_with_the_server(tmp_path: Path) -> None:
    """``leadheat serve`` (worker off, so only the keeper can refresh): leads posted over
    HTTP are computed with no read asking for them; a keeper killed is started again; and
    when the server is killed outright its keeper ends too."""
    path = tmp_path / "kept.db"
    url = f"sqlite:///{path}"
    lh = Leadheat(url)
    lh.init()
    key, _ = lh.create_key("keeper test", ["ingest"])
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    port = free_port()
    server = serve(url, port, tmp_path / "server.log")
    try:
        assert _wait(lambda: len(_children(server.pid)) >= 1)
        (keeper,) = _children(server.pid)  # `leadheat keeper`, and nothing else
        batch = [
            {"type": "track", "userId": f"p{n}", "event": "demo", "messageId": f"m{n}"}
            for n in range(5)
        ]
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/batch", json={"batch": batch}, headers=auth, timeout=10
        )
        assert answer.status_code == 200, answer.text
        assert _wait(lambda: _stale(path) == 0), (tmp_path / "server.log").read_text()
        os.kill(keeper, signal.SIGKILL)  # a keeper that dies is started again
        assert _wait(lambda: [pid for pid in _children(server.pid) if pid != keeper] != [])
        (keeper,) = [pid for pid in _children(server.pid) if pid != keeper]
        batch = [{**message, "messageId": f"again-{n}"} for n, message in enumerate(batch)]
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/batch", json={"batch": batch}, headers=auth, timeout=10
        )
        assert answer.status_code == 200, answer.text
        assert _wait(lambda: _stale(path) == 0), (tmp_path / "server.log").read_text()
        import sqlite3

        with sqlite3.connect(path) as connection:
            (kept,) = connection.execute("SELECT count(*) FROM followup_leads").fetchone()
        assert kept == 5
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        assert _wait(lambda: not os.path.exists(f"/proc/{keeper}") or _zombie(keeper), 10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
    log = (tmp_path / "server.log").read_text()
    assert "follow-up refresh failed" not in log
    assert log.count("the follow-up keeper ended") == 1


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().split(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return True
