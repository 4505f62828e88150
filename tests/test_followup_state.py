"""The follow-up state kept per lead (``engage/followup.py``) answers Tasks and Recovery
exactly as replaying every lead's history does, at random instants after the latest fact,
through every kind of write: imports of leads and events, evidence, touches, outcomes, a
playbook applied (re-score), a rep's team changing, merges and an erasure."""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import NOW, Clock
from leadheat.analytics.pipeline import overdue_by_owner
from leadheat.analytics.report import follow_ups
from leadheat.engage.followup import indexed_tasks, keep_current, lost_candidates
from leadheat.engage.lists import recover, replayed_recover, replayed_tasks, tasks
from leadheat.identity import LeadKey
from leadheat.ingest.records import TouchInput
from leadheat.service import Leadheat, LeadInput
from leadheat.store.events import NewEvent
from leadheat.store.models import FollowupPhase, FollowupStale

PLAYBOOK = """
[fit]
qualified_at = 5
[[fit.rules]]
field = "title"
matches = "(?i)vp|head"
points = 10
[[fit.rules]]
field = "title"
matches = "(?i)student"
disqualify = true
[signals.demo]
points = 40
[signals.visit]
points = 6
[temperature]
hot_requires = ["budget"]
churn_events = ["trial_expired"]
[speed]
enabled = false
[speed.teams.emea]
timezone = "Europe/Paris"
[cadence]
business_hours = %s
[cadence.hot]
every = "1d"
[cadence.warm]
every = "%s"
[cadence.cold]
every = "1 business day"
"""
D = timedelta(days=1)
REPS = ["ann@team.example", "Bob@Team.example", "cy@team.example"]


def populate(lh: Leadheat, rng: random.Random, leads: int, start: int = 0) -> None:
    titles = ["VP Sales", "Head of Ops", "Analyst", "Student", ""]
    lh.upsert_leads(
        [
            LeadInput(
                [LeadKey("email", f"f{i}@example.com")],
                {"title": rng.choice(titles), "owner": rng.choice([*REPS, None])},
                NOW - timedelta(days=rng.randrange(20, 90)),
            )
            for i in range(start, start + leads)
        ]
    )
    events = []
    for n in range(leads * 6):
        lead = LeadKey("email", f"f{start + rng.randrange(leads)}@example.com")
        at = NOW - timedelta(minutes=rng.randrange(0, 60 * 24 * 60))
        kind = rng.choice(["demo", "demo", "visit", "visit", "newsletter", "trial_expired"])
        events.append(NewEvent(lead, kind, at, f"s{start}-{n}"))
    lh.record_events(events)
    for i in range(start, start + leads, 3):
        lh.evidence(f"f{i}@example.com", "budget", "yes", NOW - rng.randrange(1, 40) * D)


def touch_some(lh: Leadheat, rng: random.Random, leads: int, latest: datetime) -> None:
    lh.record_touches(
        [
            TouchInput(
                LeadKey("email", f"f{rng.randrange(leads)}@example.com"),
                "call",
                latest - timedelta(hours=rng.randrange(0, 24 * 60)),
            )
            for _ in range(leads)
        ]
    )


def assert_kept_equals_replay(lh: Leadheat, rng: random.Random, base: datetime) -> None:
    """At random instants after ``base`` (the latest fact), every way of asking."""
    for _ in range(4):
        at = base + timedelta(minutes=rng.randrange(1, 60 * 24 * 70))
        kept = indexed_tasks(lh, at)
        assert kept is not None and kept.late == []  # the kept state answers, not the replay
        assert lost_candidates(lh, at, 30 * D) is not None
        assert_every_way_equals_replay(lh, at)


def assert_every_way_equals_replay(lh: Leadheat, at: datetime) -> None:
    """Tasks, the report's table and Recovery at ``at`` equal replaying every lead."""
    truth = replayed_tasks(lh, at=at)
    assert tasks(lh, at=at) == truth
    assert tasks(lh, at=at, limit=7) == truth[:7]
    overdue = [task for task in truth if task.overdue]
    assert tasks(lh, at=at, overdue=True, limit=5) == overdue[:5]
    assert tasks(lh, at=at, owner="bob@team.example") == replayed_tasks(
        lh, at=at, owner="bob@team.example"
    )
    assert follow_ups(lh, at) == overdue_by_owner(truth)  # the report's table
    for within in (None, 2 * D, 9 * D, 30 * D):
        lost = replayed_recover(lh, at=at, within=within)
        assert recover(lh, at=at, within=within) == lost
        assert recover(lh, at=at, within=within, limit=2) == lost[:2]
    assert recover(lh, at=at, owner="ANN@team.example") == replayed_recover(
        lh, at=at, owner="ANN@team.example"
    )


def team_with_history(lh: Leadheat, rng: random.Random) -> None:
    """Two reps (one in another team's hours), 40 leads with events, evidence and touches."""
    lh.apply_playbook(PLAYBOOK % ("false", "2d"))
    lh.add_rep("ann@team.example")
    lh.add_rep("bob@team.example", team="emea")
    populate(lh, rng, 40)
    touch_some(lh, rng, 40, NOW)


def latest_fact(lh: Leadheat) -> datetime:
    from leadheat.store.database import reader_of
    from leadheat.store.history import latest_fact_at
    from leadheat.store.models import Touch

    with lh.engine.connect() as connection:
        touched = connection.execute(select(func.max(Touch.occurred_at))).scalar()
        found = latest_fact_at(reader_of(connection))
    assert found is not None
    return max(found, touched or found)


def test_kept_state_equals_the_replay_through_every_kind_of_write(
    lh: Leadheat, clock: Clock
) -> None:
    rng = random.Random(21)
    team_with_history(lh, rng)
    lh.outcome("f1@example.com", "won", NOW - 2 * D)
    lh.outcome("f2@example.com", "lost", NOW - D)
    seen = {task.temperature.value for task in replayed_tasks(lh, at=NOW + D)}
    assert seen == {"hot", "warm", "cold"}
    assert recover(lh, at=NOW + 8 * D)  # some hot leads were let go
    assert_kept_equals_replay(lh, rng, latest_fact(lh))
    # a second import, new touches and evidence after the first reads
    clock.now = NOW + 5 * D
    populate(lh, rng, 10, start=40)
    lh.track("f3@example.com", "demo", NOW + 5 * D)
    lh.evidence("f3@example.com", "budget", "yes", NOW + 5 * D)
    touch_some(lh, rng, 50, NOW + 5 * D)
    assert_kept_equals_replay(lh, rng, latest_fact(lh))
    # business hours on re-plans every due time; a rep moves to another team
    lh.apply_playbook(PLAYBOOK % ("true", "3d"))
    lh.add_rep("ann@team.example", team="emea")
    assert_kept_equals_replay(lh, rng, latest_fact(lh))
    # merges and an erasure
    lh.merge("f4@example.com", "f5@example.com")
    lh.merge("f6@example.com", "f7@example.com")
    lh.erase("f8@example.com")
    lh.outcome("f9@example.com", "disqualified", latest_fact(lh))
    lh.patch_lead("f10@example.com", {"owner": "cy@team.example"})
    assert_kept_equals_replay(lh, rng, latest_fact(lh))


def test_a_read_replays_only_the_leads_with_facts_after_it(lh: Leadheat, clock: Clock) -> None:
    """Live traffic stores events stamped a moment after a read begins. The kept state still
    answers for every other lead; only the leads with a fact or touch after the read's instant
    are replayed, and every way of asking equals replaying every lead."""
    rng = random.Random(22)
    team_with_history(lh, rng)
    at = latest_fact(lh)
    for _ in range(4):
        at += timedelta(minutes=rng.randrange(1, 60 * 24 * 9))
        later = at + timedelta(seconds=rng.randrange(1, 3600))
        clock.now = later
        leads = [f"f{n}@example.com" for n in rng.sample(range(40), 5)]
        lh.track(leads[0], "demo", later)
        lh.track(leads[1], "visit", later)
        lh.evidence(leads[2], "budget", "yes", later)
        lh.touch(leads[3], "call", later)
        lh.outcome(leads[4], "won", later)
        kept = indexed_tasks(lh, at)
        assert kept is not None
        assert kept.late == sorted(lh.lead_id(lead) for lead in leads)
        assert_every_way_equals_replay(lh, at)


def test_a_read_far_in_the_past_replays_every_lead(
    lh: Leadheat, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leadheat.engage import followup

    lh.apply_playbook(PLAYBOOK % ("false", "2d"))
    populate(lh, random.Random(23), 40)
    at = NOW - 30 * D
    with lh.engine.connect() as connection:
        late = followup.late_leads(connection, at)
    assert late is not None and 20 < len(late) <= 40
    monkeypatch.setattr(followup, "REPLAY_MOST", 20)
    assert indexed_tasks(lh, at) is None  # too many leads to replay one by one
    assert_every_way_equals_replay(lh, at)


def test_writes_mark_leads_stale_and_reads_recompute_only_those(lh: Leadheat, clock: Clock) -> None:
    lh.apply_playbook(PLAYBOOK % ("false", "2d"))
    populate(lh, random.Random(3), 12)
    keep_current(lh)
    with lh.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(FollowupStale)).scalar() == 0
    lh.track("f0@example.com", "demo", NOW)
    lh.touch("f1@example.com", "call", NOW)
    assert keep_current(lh) == 2
    # the demo made f0 hot now; its forecast cools it later without any write
    hot = [t for t in tasks(lh, at=NOW + timedelta(hours=1)) if t.lead == "f0@example.com"]
    assert hot[0].temperature.value == "hot"
    with lh.engine.connect() as connection:
        ends = connection.execute(
            select(FollowupPhase.ends).where(
                FollowupPhase.lead_id == lh.lead_id("f0@example.com"),
                FollowupPhase.temperature == "hot",
            )
        ).scalar_one()
    later = [t for t in tasks(lh, at=ends + timedelta(seconds=1)) if t.lead == "f0@example.com"]
    assert later[0].temperature.value != "hot"
    assert keep_current(lh) == 0


def test_the_worker_computes_stale_leads_in_the_background(lh: Leadheat) -> None:
    """After a bulk import the worker's passes compute the state a bounded share at a time,
    so the first person to open Tasks does not wait for every lead."""
    from leadheat.delivery.worker import Worker
    from leadheat.settings import Settings

    lh.apply_playbook(PLAYBOOK % ("false", "2d"))
    populate(lh, random.Random(4), 30)
    worker = Worker(lh, Settings(database_url=lh.url))
    try:
        first = worker.run_once()
        assert first.followups == 30 and first.busy
        assert worker.run_once().followups == 0
    finally:
        worker.close()
    assert keep_current(lh) == 0


def test_upgrading_a_database_backfills_every_lead_on_first_use(lh: Leadheat, clock: Clock) -> None:
    """Migration 0011 on a database with leads (down to 0009 and up again): every lead is
    marked stale, and the first read computes them, equal to the replay."""
    from alembic import command
    from alembic.config import Config

    from leadheat.store.database import MIGRATIONS

    lh.apply_playbook(PLAYBOOK % ("false", "2d"))
    populate(lh, random.Random(5), 20)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    for step in (command.downgrade, command.upgrade):
        with lh.engine.begin() as connection:
            config.attributes["connection"] = connection
            step(config, "0009" if step is command.downgrade else "head")
    with lh.engine.connect() as connection:
        marked = connection.execute(select(func.count()).select_from(FollowupStale)).scalar()
    assert marked == 20
    at = latest_fact(lh) + 3 * D
    assert tasks(lh, at=at) == replayed_tasks(lh, at=at)
    assert keep_current(lh) == 0


@pytest.mark.parametrize("aside_at", [1, 10**9])
def test_a_file_import_marks_the_leads_its_writes_mark(
    lh: Leadheat, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aside_at: int
) -> None:
    """A big file import marks its leads stale in one statement instead of a trigger per row
    (SQLite), a small one by the triggers: either way exactly the leads it created or
    changed, the kept state equals the replay, and the triggers mark again after it, and
    after a file refused."""
    from leadheat.ingest import columnar
    from leadheat.ingest.csv_files import CsvImportError
    from leadheat.store import event_import

    monkeypatch.setattr(event_import, "TRIGGERS_ASIDE_AT", aside_at)

    lh.apply_playbook(PLAYBOOK % ("false", "2d"))
    rng = random.Random(9)
    populate(lh, rng, 20)
    touch_some(lh, rng, 20, NOW)
    keep_current(lh)
    named = [f"f{rng.randrange(30)}@example.com" for _ in range(150)]  # f20… are new
    path = tmp_path / "events.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "lead", "type", "timestamp"])
        for n, lead in enumerate(named):
            at = NOW + timedelta(minutes=rng.randrange(1, 60 * 24 * 3))
            kind = rng.choice(["demo", "visit", "newsletter", "trial_expired"])
            writer.writerow([f"file-{n}", lead, kind, at.strftime("%Y-%m-%dT%H:%M:%SZ")])
    clock.now = NOW + 4 * D
    report = lh.import_event_file(path)
    created = {lead for lead in named if int(lead[1:].split("@")[0]) >= 20}
    assert report.columnar and report.stored.leads_created == len(created)
    with lh.engine.connect() as connection:
        stale = set(connection.execute(select(FollowupStale.lead_id)).scalars())
    assert stale == {lh.lead_id(lead) for lead in named}
    assert_kept_equals_replay(lh, rng, latest_fact(lh))
    keep_current(lh)
    lh.touch("f1@example.com", "call", latest_fact(lh))
    assert keep_current(lh) == 1
    # refused at its last row, after blocks before it were stored (and rolled back)
    monkeypatch.setattr(columnar, "BLOCK_BYTES", 700)
    bad = tmp_path / "bad.csv"
    bad.write_text(path.read_text().replace("file-", "again-") + "x-1,f2@example.com,demo,soon\n")
    with pytest.raises(CsvImportError):
        lh.import_event_file(bad)
    lh.track("f2@example.com", "visit", latest_fact(lh))
    assert keep_current(lh) == 1
    assert_kept_equals_replay(lh, rng, latest_fact(lh))
