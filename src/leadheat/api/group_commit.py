"""Group commit for the collection endpoints and ``POST /api/v1/events``: the requests that
arrive while one is being written are written together, in one transaction.

Why: a write's cost is mostly per transaction, not per event (the statements, the commit,
judging the touched leads before and after for speed to lead, the follow-up marks). Eight
SDKs posting at once would otherwise queue for SQLite's one writer and pay that cost eight
times; written together they pay it once. Nothing waits on purpose: the first batch is
written at once, and what arrived meanwhile goes in the next transaction.

Each request still gets its own answer. Requests are joined only when they act for the same
key and publicness (the audit log names the actor; public calls have narrower rights), in
the order they arrived. When a joined write fails, each of its requests is written again on
its own, so an error names the request's own field (``batch[3].timestamp``) and one bad
batch never refuses its neighbours.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from itertools import groupby
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

from leadheat.ingest.segment import Message
from leadheat.service import Leadheat
from leadheat.store.events import NewEvent, RecordReport

MOST_MESSAGES = 2_000
"""At most this many messages in one transaction: large enough that eight SDKs' batches of
100 go together, small enough that the write lock is never held for long."""

P = TypeVar("P")
R = TypeVar("R")


@dataclass
class _Request(Generic[P, R]):
    payload: P
    size: int
    group: Hashable
    answer: asyncio.Future[R] = dataclass_field(repr=False)
    loop: asyncio.AbstractEventLoop = dataclass_field(repr=False)


class _Joiner(Generic[P, R]):
    """Writes the requests of one process, joining those that wait (``_write`` says how).

    The writes run in one thread at a time, one transaction at a time, on PostgreSQL too:
    two at a time were not measurably faster here, and one writes a visitor's calls (a
    ``track``, then the ``identify`` that joins its anonymous lead to a known one) in the
    order they came. That thread takes the next transaction's requests itself as soon as one
    commits: handed back to the event loop between transactions, the next write began only
    when the loop was done with what it was doing (reading another batch), and the writer
    stood idle a fifth of the time under load (``bench/ingest_http.py``).
    """

    def __init__(self, lh: Leadheat, most: int = MOST_MESSAGES) -> None:
        self._lh = lh
        self._most = most
        self._lock = threading.Lock()
        self._waiting: list[_Request[P, R]] = []  # guarded by _lock, as is _writing
        self._writing = False
        self._writer: asyncio.Task[None] | None = None  # held: a loop holds its tasks weakly

    async def _submit(self, payload: P, size: int, group: Hashable) -> R:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[R] = loop.create_future()
        with self._lock:
            self._waiting.append(_Request(payload, size, group, answer, loop))
            start, self._writing = not self._writing, True
        if start:  # a task, not a call: the requests ready in this turn of the loop join it
            self._writer = loop.create_task(run_in_threadpool(self._write_waiting))
        return await answer

    def _write_waiting(self) -> None:
        """Write what waits, transaction after transaction, until nothing does; runs in a
        thread, and answers each request on its own event loop."""
        while True:
            with self._lock:
                taken = self._take()
                if not taken:
                    self._writing = False
                    return
            try:
                outcomes = self._write(taken)
            except BaseException as error:  # the thread ends: nobody may wait forever
                with self._lock:
                    taken += self._waiting
                    self._waiting, self._writing = [], False
                for request in taken:
                    _answer(request, error)
                raise
            for request, outcome in zip(taken, outcomes, strict=True):
                _answer(request, outcome)

    def _take(self) -> list[_Request[P, R]]:
        """The waiting requests, in order, up to :attr:`_most` messages (at least one).
        A request whose client went away before its turn is dropped unwritten: it was
        never answered, so the client sends it again. (Its answer is looked at from the
        writing thread: one cancelled a moment later is written, as one cancelled while
        being written always was.)"""
        self._waiting = [request for request in self._waiting if not request.answer.done()]
        count, size = 0, 0
        for request in self._waiting:
            if count and size + request.size > self._most:
                break
            count += 1
            size += request.size
        taken, self._waiting = self._waiting[:count], self._waiting[count:]
        return taken

    def _write(self, taken: list[_Request[P, R]]) -> list[R | Exception]:
        """Each request's answer or failure, in order; runs in a thread. Requests of one
        group are joined; when a joined write fails, each is written again on its own, so
        that an error names the request's own field."""
        outcomes: list[R | Exception] = []
        for _, same in groupby(taken, key=lambda request: request.group):
            joined = [request.payload for request in same]
            together = self._together(joined) if len(joined) > 1 else None
            if together is not None:
                outcomes += together
            else:
                outcomes += [self._alone(payload) for payload in joined]
        return outcomes

    def _together(self, joined: list[P]) -> list[R] | None:
        """Each request's answer from one transaction, ``None`` when it failed."""
        raise NotImplementedError

    def _alone(self, payload: P) -> R | Exception:
        raise NotImplementedError


@dataclass(frozen=True)
class _Calls:
    messages: Sequence[Message]
    field: str
    public: bool
    actor: str


class GroupCommit(_Joiner[_Calls, None]):
    """The collection endpoints' analytics calls. Requests are joined only when they act
    for the same key and publicness (the audit log names the actor; public calls have
    narrower rights), in the order they arrived."""

    async def collect(
        self, messages: Sequence[Message], field: str, *, public: bool, actor: str
    ) -> None:
        """:meth:`Leadheat.collect`, joined with whatever else is waiting; raises what the
        request's own write would raise."""
        calls = _Calls(messages, field, public, actor)
        await self._submit(calls, len(messages), (public, actor))

    def _together(self, joined: list[_Calls]) -> list[None] | None:
        try:
            self._lh.collect(
                [message for calls in joined for message in calls.messages],
                "batch",
                public=joined[0].public,
                actor=joined[0].actor,
            )
        except Exception:  # the caller writes each request again on its own
            return None
        return [None] * len(joined)

    def _alone(self, payload: _Calls) -> Exception | None:
        try:
            self._lh.collect(
                payload.messages, payload.field, public=payload.public, actor=payload.actor
            )
        except Exception as error:  # the request's own answer
            return error
        return None


class EventCommit(_Joiner[Sequence[NewEvent], RecordReport]):
    """``POST /api/v1/events``: the events of the requests that wait, recorded in one
    transaction, each request answered with its own counts.

    A single event's write cost 2.7-3.1 ms here, nearly all of it per transaction (the
    statements, judging the lead for speed to lead, the follow-up mark), so a server taking
    200 single events a second was busy most of the time and a request arriving behind a
    few others waited for each of them (``bench/ingest_http.py``'s p99).

    Each request's counts are what writing the requests one after another in arrival order
    would have given: an event id stored by the joined write counts for the first request
    that sent it, a lead created for the first request that named it.
    """

    async def record(self, events: Sequence[NewEvent]) -> RecordReport:
        """:meth:`Leadheat.record_events`, joined with whatever else is waiting."""
        return await self._submit(events, len(events), None)

    def _together(self, joined: list[Sequence[NewEvent]]) -> list[RecordReport] | None:
        try:
            whole = self._lh.record_events([event for events in joined for event in events])
        except Exception:  # the caller writes each request again on its own
            return None
        new_ids, created = set(whole.new_ids), set(whole.created)
        reports = []
        for events in joined:
            stored = 0
            for event in events:  # the first to send an id stored it
                if event.event_id in new_ids:
                    new_ids.discard(event.event_id)
                    stored += 1
            named = {event.lead for event in events} & created
            created -= named
            reports.append(
                RecordReport(
                    received=len(events),
                    stored=stored,
                    duplicates=len(events) - stored,
                    leads_created=len(named),
                )
            )
        return reports

    def _alone(self, payload: Sequence[NewEvent]) -> RecordReport | Exception:
        try:
            return self._lh.record_events(payload)
        except Exception as error:  # the request's own answer
            return error


def _answer(request: _Request[P, R], outcome: R | BaseException) -> None:
    """Settle ``request``'s answer on its event loop (from the writing thread)."""

    def settle() -> None:
        if request.answer.done():  # its client went away meanwhile
            return
        if isinstance(outcome, BaseException):
            request.answer.set_exception(outcome)
        else:
            request.answer.set_result(outcome)

    with suppress(RuntimeError):  # the loop has closed: nobody waits for this answer any more
        request.loop.call_soon_threadsafe(settle)
