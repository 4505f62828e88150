"""Group commit: collection requests that wait for the writer are written together, and
each still gets its own answer."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event, func, select

from conftest import Clock, LiveServer
from leadheat.api.group_commit import EventCommit, GroupCommit
from leadheat.errors import InputError, LeadheatError
from leadheat.identity import LeadKey
from leadheat.ingest.segment import Message, parse_batch
from leadheat.service import Leadheat
from leadheat.store.events import NewEvent, RecordReport
from leadheat.store.models import Event, Lead


def _batch(number: int, at: datetime, size: int = 10) -> list[dict[str, object]]:
    return [
        {
            "type": "track",
            "event": "Product Viewed",
            "userId": f"visitor-{number}-{index % 3}",
            "timestamp": (at - timedelta(minutes=size - index)).isoformat(),
            "messageId": f"m-{number}-{index}",
        }
        for index in range(size)
    ]


def _messages(number: int, at: datetime, size: int = 10) -> list[Message]:
    return parse_batch({"batch": _batch(number, at, size)}, at)


def _events(lh: Leadheat) -> int:
    with lh.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(Event)).scalar_one())


def _commits(lh: Leadheat) -> list[int]:
    """A list that grows by one at every commit on the engine."""
    seen: list[int] = []
    event.listen(lh.engine, "commit", lambda connection: seen.append(1))
    return seen


async def _all(
    writer: GroupCommit, batches: Sequence[list[Message]], actors: Sequence[str]
) -> list[BaseException | None]:
    answers = await asyncio.gather(
        *(
            writer.collect(messages, "batch", public=False, actor=actor)
            for messages, actor in zip(batches, actors, strict=True)
        ),
        return_exceptions=True,
    )
    return [answer if isinstance(answer, BaseException) else None for answer in answers]


def test_waiting_requests_are_written_in_one_transaction(lh: Leadheat, clock: Clock) -> None:
    now = clock.now
    batches = [_messages(number, now) for number in range(6)]
    commits = _commits(lh)
    failures = asyncio.run(_all(GroupCommit(lh), batches, ["api:key"] * 6))
    assert failures == [None] * 6
    assert _events(lh) == 60
    assert len(commits) == 1


def test_a_refused_request_is_answered_alone_and_its_neighbours_are_stored(
    lh: Leadheat, clock: Clock
) -> None:
    now = clock.now
    batches = [_messages(number, now) for number in range(5)]
    bad = _batch(2, now)
    bad[3]["timestamp"] = (now + timedelta(days=3)).isoformat()  # past the future tolerance
    batches[2] = parse_batch({"batch": bad}, now)
    failures = asyncio.run(_all(GroupCommit(lh), batches, ["api:key"] * 5))
    assert [failure is None for failure in failures] == [True, True, False, True, True]
    refused = failures[2]
    assert isinstance(refused, InputError)
    assert refused.field == "batch[3].timestamp"  # the request's own place, not the joined one's
    assert _events(lh) == 40
    with lh.engine.connect() as connection:
        stored = set(connection.execute(select(Event.event_id)).scalars())
    assert not any(event_id.startswith("m-2-") for event_id in stored)


def test_the_writer_goes_on_while_the_event_loop_is_busy(lh: Leadheat, clock: Clock) -> None:
    """Requests that came in while a write was under way are written next by the writing
    thread itself, not when the event loop (under load, busy reading other requests) gets
    round to starting the next write."""
    now = clock.now
    first, *later = [_messages(number, now) for number in range(3)]
    commits = _commits(lh)
    writing = threading.Event()

    def slow_first(connection: object) -> None:
        if not writing.is_set():
            writing.set()
            time.sleep(0.3)  # the others arrive meanwhile

    event.listen(lh.engine, "commit", slow_first)

    async def run() -> int:
        writer = GroupCommit(lh)
        answers = [asyncio.ensure_future(writer.collect(first, "b", public=False, actor="k"))]
        while not writing.is_set():
            await asyncio.sleep(0.005)
        answers += [
            asyncio.ensure_future(writer.collect(messages, "b", public=False, actor="k"))
            for messages in later
        ]
        await asyncio.sleep(0)  # they queue
        deadline = time.monotonic() + 10
        while len(commits) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # the loop is busy: it does not come back to the writer
        written = len(commits)
        await asyncio.gather(*answers)
        return written

    assert asyncio.run(run()) == 2  # the first request, then the two that waited, together
    assert _events(lh) == 30


def test_requests_of_different_keys_are_not_joined(lh: Leadheat, clock: Clock) -> None:
    now = clock.now
    batches = [_messages(number, now) for number in range(4)]
    commits = _commits(lh)
    failures = asyncio.run(_all(GroupCommit(lh), batches, ["api:a", "api:a", "api:b", "api:a"]))
    assert failures == [None] * 4
    assert _events(lh) == 40
    assert len(commits) == 3  # a, a | b | a: in the order they came


def test_no_transaction_passes_the_limit(lh: Leadheat, clock: Clock) -> None:
    now = clock.now
    batches = [_messages(number, now) for number in range(5)]
    commits = _commits(lh)
    failures = asyncio.run(_all(GroupCommit(lh, most=20), batches, ["api:key"] * 5))
    assert failures == [None] * 5
    assert _events(lh) == 50
    assert len(commits) == 3  # 20 + 20 + 10 messages


def test_concurrent_batches_over_http_each_get_their_own_answer(
    live_server: LiveServer,
) -> None:
    """Twelve SDKs post at once to the real server; one batch has a bad message."""
    now = live_server.lh.clock()
    auth = "Basic " + base64.b64encode(f"{live_server.ingest_key}:".encode()).decode()
    bodies = [{"batch": _batch(number, now, 20)} for number in range(12)]
    bodies[7]["batch"][11]["timestamp"] = (now + timedelta(days=3)).isoformat()  # type: ignore[index]

    async def post_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post("/v1/batch", json=body, headers={"Authorization": auth})
                    for body in bodies
                )
            )

    answers = asyncio.run(post_all())
    assert [answer.status_code for answer in answers] == [200] * 7 + [400] + [200] * 4
    assert answers[7].json()["field"] == "batch[11].timestamp"
    assert all(answer.json() == {"success": True} for i, answer in enumerate(answers) if i != 7)
    assert _events(live_server.lh) == 11 * 20
    with live_server.lh.engine.connect() as connection:
        leads = connection.execute(select(func.count()).select_from(Lead)).scalar_one()
    assert leads == 11 * 3


@pytest.mark.parametrize("size", [1, 3])
def test_one_request_alone_is_written_as_before(lh: Leadheat, clock: Clock, size: int) -> None:
    now = clock.now
    batches = [_messages(number, now) for number in range(size)]
    failures = asyncio.run(_all(GroupCommit(lh), batches, ["api:key"] * size))
    assert failures == [None] * size
    assert _events(lh) == 10 * size


# -- POST /api/v1/events -------------------------------------------------------------------
def _event(lead: str, number: int, at: datetime) -> NewEvent:
    return NewEvent(LeadKey("email", lead), "page_view", at, f"e-{number}")


def _counts(reports: Sequence[RecordReport | BaseException]) -> list[object]:
    return [
        report
        if isinstance(report, BaseException)
        else (report.stored, report.duplicates, report.leads_created)
        for report in reports
    ]


async def _recorded(
    writer: EventCommit, requests: Sequence[list[NewEvent]]
) -> list[RecordReport | BaseException]:
    return await asyncio.gather(
        *(writer.record(events) for events in requests), return_exceptions=True
    )


def test_waiting_event_requests_are_recorded_together_each_with_its_own_counts(
    lh: Leadheat, clock: Clock, tmp_path: Path
) -> None:
    """Each request's counts are those writing the requests one after another would give:
    an event id sent twice counts for the first request, a new lead for the first that
    names it."""
    at = clock.now - timedelta(minutes=5)
    requests = [
        [_event("known@example.com", 1, at), _event("new-a@example.com", 2, at)],
        [_event("new-a@example.com", 2, at), _event("new-a@example.com", 3, at)],
        [_event("new-b@example.com", 4, at), _event("new-b@example.com", 4, at)],
        [_event("known@example.com", 1, at)],
        [_event("known@example.com", 0, at - timedelta(hours=1))],  # stored before
    ]
    one_by_one = Leadheat(f"sqlite:///{tmp_path / 'one-by-one.db'}", clock=clock)
    one_by_one.init()
    for instance in (lh, one_by_one):
        instance.record_events(requests[-1])
    expected = _counts([one_by_one.record_events(events) for events in requests])
    assert expected == [(2, 0, 1), (1, 1, 0), (1, 1, 1), (0, 1, 0), (0, 1, 0)]
    commits = _commits(lh)
    assert _counts(asyncio.run(_recorded(EventCommit(lh), requests))) == expected
    assert len(commits) == 1
    assert _events(lh) == _events(one_by_one) == 5
    one_by_one.engine.dispose()


def test_a_refused_event_request_is_answered_alone(lh: Leadheat, clock: Clock) -> None:
    at = clock.now - timedelta(minutes=5)
    requests = [[_event(f"r{n}@example.com", n, at)] for n in range(4)]
    requests[1] = [_event("late@example.com", 9, clock.now + timedelta(days=3))]
    answers = asyncio.run(_recorded(EventCommit(lh), requests))
    assert isinstance(answers[1], LeadheatError) and "in the future" in str(answers[1])
    assert _counts([answers[0], answers[2], answers[3]]) == [(1, 0, 1)] * 3
    assert _events(lh) == 3


def test_concurrent_single_events_over_http_each_get_their_own_counts(
    live_server: LiveServer,
) -> None:
    """Twenty clients post one event each at once, some the same event, to the real server."""
    at = (live_server.lh.clock() - timedelta(minutes=1)).isoformat()
    bodies = [
        {"id": f"ev-{n % 15}", "lead": f"reader-{n % 15}@example.com", "type": "page_view",
         "timestamp": at}
        for n in range(20)
    ]  # fmt: skip
    headers = {"Authorization": f"Bearer {live_server.ingest_key}"}

    async def post_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as client:
            return await asyncio.gather(
                *(client.post("/api/v1/events", json=body, headers=headers) for body in bodies)
            )

    answers = asyncio.run(post_all())
    assert [answer.status_code for answer in answers] == [200] * 20
    counts = [answer.json() for answer in answers]
    assert sum(count["stored"] for count in counts) == 15
    assert sum(count["duplicates"] for count in counts) == 5
    assert sum(count["leads_created"] for count in counts) == 15
    for n in range(15):  # each event stored once, by the first or the second of its senders
        pair = [counts[n], *([counts[n + 15]] if n + 15 < 20 else [])]
        assert sorted(count["stored"] for count in pair) == [0] * (len(pair) - 1) + [1]
        assert sum(count["leads_created"] for count in pair) == 1
    assert _events(live_server.lh) == 15
