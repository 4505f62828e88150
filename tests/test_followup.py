"""Follow-up tasks from cadences, with a fixed clock: created, completed by a touch,
re-planned by a temperature change, and overdue in working time across nights and weekends.

The playbook: any lead qualifies; a ``demo`` (40 points) makes a lead hot for exactly seven
days (half-life 7d, hot at 20), then warm until its 30-day warm window closes; a ``visit``
(6 points) makes it warm. The default team works Mon–Fri 09:00–17:00 UTC. NOW is Sunday
2026-11-01 12:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from conftest import NOW, Cli, Clock, LiveServer
from leadheat.engage.lists import tasks
from leadheat.identity import parse_lead_key
from leadheat.service import Leadheat, LeadInput
from receivers import MailBox

PLAYBOOK = """
[fit]
qualified_at = 0
[signals.demo]
points = 40
[signals.visit]
points = 6
[temperature]
hot_requires = []
[speed]
enabled = false
"""
H = timedelta(hours=1)
D = timedelta(days=1)


def at(day: int, hour: float) -> datetime:
    """A time in November 2026 (the 1st is a Sunday)."""
    return datetime(2026, 11, day, tzinfo=UTC) + timedelta(hours=hour)


def task_of(lh: Leadheat, lead: str, when: datetime) -> object:
    (found,) = [task for task in tasks(lh, at=when) if task.lead == lead]
    return found


@pytest.fixture
def book(lh: Leadheat) -> Leadheat:
    lh.apply_playbook(PLAYBOOK)
    return lh


def test_a_hot_lead_nobody_called_is_due_when_it_turned_hot_in_business_hours(
    book: Leadheat, clock: Clock
) -> None:
    book.track("ana@example.com", "demo", at(1, 10))  # Sunday 10:00
    task = task_of(book, "ana@example.com", NOW)
    assert task.temperature.value == "hot"
    assert task.due == at(2, 9)  # the team's next opening: Monday 09:00
    assert not task.overdue and "never contacted" in task.reason
    assert not task_of(book, "ana@example.com", at(1, 23.99)).overdue
    monday = task_of(book, "ana@example.com", at(2, 9.5))
    assert monday.overdue and monday.overdue_by == timedelta(minutes=30)


def test_a_touch_completes_the_task_and_plans_the_next_which_cooling_replans(
    book: Leadheat, clock: Clock
) -> None:
    book.track("ana@example.com", "demo", at(1, 10))
    clock.now = at(2, 10)
    book.touch("ana@example.com", "call", rep="anna@team.example")
    after_touch = task_of(book, "ana@example.com", at(3, 12))
    assert (after_touch.temperature.value, after_touch.due) == ("hot", at(9, 10))
    assert after_touch.last_touch == at(2, 10) and not after_touch.overdue
    # on the 8th at 10:00 the demo is seven days old: warm, and the warm cadence is 14 days
    cooled = task_of(book, "ana@example.com", at(9, 12))
    assert (cooled.temperature.value, cooled.due) == ("warm", at(16, 10))
    assert not cooled.overdue
    # after the warm window (30 days) it is cold: a nurture touch 30 days after the call
    cold = task_of(book, "ana@example.com", at(2, 0) + 31 * D)
    assert (cold.temperature.value, cold.due) == ("cold", at(2, 10) + 30 * D)
    # a second touch completes that task too
    clock.now = at(2, 10) + 31 * D
    book.touch("ana@example.com", "email")
    again = task_of(book, "ana@example.com", clock.now + H)
    # 30 days after Thursday 3 December is Saturday 2 January: due when the team opens
    assert again.due == datetime(2027, 1, 4, 9, tzinfo=UTC) and again.last_touch == clock.now


def test_heating_up_brings_the_follow_up_forward_but_not_before_the_rise(
    book: Leadheat, clock: Clock
) -> None:
    for lead in ("bo@example.com", "cy@example.com"):
        book.track(lead, "visit", at(1, 10))
    clock.now = at(2, 10)
    for lead in ("bo@example.com", "cy@example.com"):
        book.touch(lead, "call")
    warm = task_of(book, "bo@example.com", at(3, 12))
    assert (warm.temperature.value, warm.due) == ("warm", at(16, 10))
    # Bo asks for a demo on Thursday the 5th: hot, so due 7 days after the touch, not 14
    clock.now = at(5, 11)
    book.track("bo@example.com", "demo", at(5, 11))
    hot = task_of(book, "bo@example.com", at(5, 12))
    assert (hot.temperature.value, hot.due) == ("hot", at(9, 10))
    # Cy asks on Thursday the 12th, after the hot cadence had run out: due at the rise
    clock.now = at(12, 11)
    book.track("cy@example.com", "demo", at(12, 11))
    rose = task_of(book, "cy@example.com", at(12, 11.5))
    assert (rose.temperature.value, rose.due) == ("hot", at(12, 11))
    assert rose.overdue and rose.overdue_by == timedelta(minutes=30)
    assert "turned hot" in rose.reason
    # before the rise, the same lead at the same instant of the past was warm and not due
    past = task_of(book, "cy@example.com", at(12, 10.5))
    assert (past.temperature.value, past.due) == ("warm", at(16, 10))


def test_overdue_counts_working_time_across_the_night_and_the_weekend(
    book: Leadheat, clock: Clock
) -> None:
    clock.now = datetime(2026, 10, 24, tzinfo=UTC)  # a Saturday
    book.track("dee@example.com", "visit", clock.now - 12 * H)
    book.touch("dee@example.com", "call", datetime(2026, 10, 23, 16, tzinfo=UTC))  # Fri 16:00
    due = datetime(2026, 11, 6, 16, tzinfo=UTC)  # Friday, 14 days later, warm
    assert task_of(book, "dee@example.com", due).due == due
    assert not task_of(book, "dee@example.com", due).overdue
    assert task_of(book, "dee@example.com", due + 2 * H).overdue_by == H  # 16:00–17:00
    assert task_of(book, "dee@example.com", due + 1 * D).overdue_by == H  # Saturday
    assert task_of(book, "dee@example.com", at(9, 10)).overdue_by == 2 * H  # Monday 10:00


def test_business_day_cadences_and_outcomes(book: Leadheat, clock: Clock) -> None:
    book.apply_playbook(PLAYBOOK + '[cadence.cold]\nevery = "2 business days"\n')
    clock.now = datetime(2026, 10, 30, 16, tzinfo=UTC)  # Friday 16:00
    book.track("eve@example.com", "page_view")  # no points: cold, never contacted
    task = task_of(book, "eve@example.com", clock.now)
    assert (task.temperature.value, task.due) == ("cold", at(3, 16))  # Tuesday 16:00
    book.outcome("eve@example.com", "lost")
    assert [t for t in tasks(book, at=clock.now + H) if t.lead == "eve@example.com"] == []


def test_the_cli_and_the_api_list_tasks_per_owner(
    book: Leadheat, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    book.track("ana@example.com", "demo", at(1, 10))
    book.track("bo@example.com", "visit", at(1, 10))
    book.patch_lead("ana@example.com", {"owner": "anna@team.example"})
    cli = Cli(book.url, capsys)
    listed = cli.json("tasks", "--at", "2026-11-02T09:30:00Z")
    assert [item["lead"] for item in listed] == ["ana@example.com", "bo@example.com"]
    for item in listed:
        assert {"lead", "due", "reason", "owner", "next_step", "overdue"} <= item.keys()
    assert listed[0]["owner"] == "anna@team.example" and listed[0]["overdue"] is True
    mine = cli.json(
        "tasks", "--owner", "anna@team.example", "--overdue", "--at", "2026-11-02T09:30:00Z"
    )
    assert [item["lead"] for item in mine] == ["ana@example.com"]
    server = LiveServer(book)
    try:
        response = httpx.get(
            f"{server.url}/api/v1/tasks",
            params={"owner": "anna@team.example", "at": "2026-11-02T09:30:00Z"},
            headers={"Authorization": f"Bearer {server.read_key}"},
        )
        assert response.status_code == 200, response.text
        assert response.json() == mine
        bad = httpx.get(
            f"{server.url}/api/v1/tasks",
            params={"at": "yesterday"},
            headers={"Authorization": f"Bearer {server.read_key}"},
        )
        assert bad.status_code in (400, 422) and "at" in bad.text
    finally:
        server.stop()


def test_each_rep_gets_one_digest_per_working_day_when_the_day_starts(
    book: Leadheat, clock: Clock, smtp_server: tuple[str, MailBox]
) -> None:
    from leadheat.delivery.worker import Worker
    from leadheat.settings import Settings

    book.add_rep("anna@team.example", name="Anna")
    book.add_rep("otto@team.example", name="Otto")  # owns nothing: no mail
    book.track("ana@example.com", "demo", at(1, 10))
    book.track("bo@example.com", "visit", at(1, 10))
    book.patch_lead("ana@example.com", {"owner": "anna@team.example"})
    book.patch_lead("bo@example.com", {"owner": "anna@team.example"})
    smtp_url, box = smtp_server
    worker = Worker(book, Settings(database_url=book.url, smtp_url=smtp_url))
    try:
        assert worker.run_once().nurtured == 0  # Sunday: no working day
        clock.now = at(2, 8.5)
        assert worker.run_once().nurtured == 0  # Monday, before the team's day starts
        clock.now = at(2, 9.25)
        assert worker.run_once().nurtured == 1
        (mail,) = box.wait_for(1)
        assert mail["To"] == "anna@team.example"
        assert mail["Subject"] == "Your follow-ups for 2026-11-02"
        text = mail.get_payload(decode=True).decode()
        # Ana (hot, never called) is due at 09:00 and overdue; Bo (warm) is due today too
        assert "OVERDUE Mon 09:00 UTC  ana@example.com  (hot)" in text
        assert "bo@example.com  (warm)" in text and "2 follow-ups today, 2 overdue" in text
        clock.now = at(2, 15)
        assert worker.run_once().nurtured == 0  # once a day
        clock.now = at(3, 9.5)
        worker.run_once()
        assert len(box.wait_for(2)) == 2  # and again on Tuesday
    finally:
        worker.close()


def selling_day(book: Leadheat, clock: Clock) -> None:
    """Wednesday 2026-11-04 15:00: two hot leads nobody has called (Olga since Tuesday, Nina
    since this morning), a hot one called a week ago (Hank), a warm one overdue since
    Tuesday 11:00 (Wendy), a cold one overdue since Monday (Carl), a student who asked for a
    demo (Stu) and a won lead (Wally)."""
    book.apply_playbook(
        PLAYBOOK + '[[fit.rules]]\nfield = "title"\nmatches = "(?i)student"\ndisqualify = true\n'
    )
    clock.now = datetime(2026, 10, 1, 10, tzinfo=UTC)  # Thursday
    book.track("carl@example.com", "page_view")  # cold, never contacted: due Nov 2 09:00
    clock.now = datetime(2026, 10, 27, 11, tzinfo=UTC)
    book.track("hank@example.com", "demo", clock.now - H)
    book.touch("hank@example.com", "call", rep="anna@team.example")  # hot: due Nov 3 11:00
    book.track("wendy@example.com", "visit", datetime(2026, 10, 20, 10, tzinfo=UTC))
    book.touch("wendy@example.com", "call", datetime(2026, 10, 20, 11, tzinfo=UTC))
    clock.now = at(4, 15)  # Wednesday 15:00
    book.track("hank@example.com", "demo", at(2, 10))  # still hot
    book.track("olga@example.com", "demo", at(3, 10))  # hot, waiting since Tuesday
    book.track("nina@example.com", "demo", at(4, 10))  # hot, waiting since this morning
    book.upsert_leads([LeadInput([parse_lead_key("stu@example.com")], {"title": "Student"})])
    book.track("stu@example.com", "demo", at(4, 11))
    book.track("wally@example.com", "demo", at(4, 9))
    book.outcome("wally@example.com", "won")


def test_tasks_come_in_the_order_that_sells_with_none_for_the_disqualified(
    book: Leadheat, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hot leads nobody has called first (the longest waiting first), then overdue tasks
    hottest first, then the rest; overdue in calendar time with the working time beside it;
    no task for a student (disqualified by fit) or a lead with an outcome."""
    selling_day(book, clock)
    found = tasks(book, at=clock.now)
    assert [(t.lead.partition("@")[0], t.temperature.value) for t in found] == [
        ("olga", "hot"),
        ("nina", "hot"),
        ("hank", "hot"),
        ("wendy", "warm"),
        ("carl", "cold"),
    ]
    wendy = found[3]  # due Tuesday 11:00: 28 hours ago, 12 of them working hours
    assert (wendy.late_by, wendy.overdue_by) == (28 * H, 12 * H)

    listed = Cli(book.url, capsys).json("tasks", "--at", "2026-11-04T15:00:00Z")
    assert [item["lead"] for item in listed] == [task.lead for task in found]
    keys = {"lead", "due", "reason", "owner", "next_step", "overdue", "overdue_seconds"}
    assert keys | {"temperature", "last_touch", "cadence"} <= listed[3].keys()
    assert listed[3]["overdue_seconds"] == 12 * 3600
    assert listed[3]["overdue_calendar_seconds"] == 28 * 3600
    assert [item["never_contacted"] for item in listed] == [True, True, False, False, True]
