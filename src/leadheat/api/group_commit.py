"""Group commit for the collection endpoints: the batches that arrive while one is being
written are written together, in one transaction.

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
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from itertools import groupby

from starlette.concurrency import run_in_threadpool

from leadheat.ingest.segment import Message
from leadheat.service import Leadheat

MOST_MESSAGES = 2_000
"""At most this many messages in one transaction: large enough that eight SDKs' batches of
100 go together, small enough that the write lock is never held for long."""


@dataclass
class _Request:
    messages: Sequence[Message]
    field: str
    public: bool
    actor: str
    answer: asyncio.Future[None] = dataclass_field(repr=False)
    loop: asyncio.AbstractEventLoop = dataclass_field(repr=False)


class GroupCommit:
    """Writes the collection requests of one process, joining those that wait.

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
        self._waiting: list[_Request] = []  # guarded by _lock, as is _writing
        self._writing = False
        self._writer: asyncio.Task[None] | None = None  # held: a loop holds its tasks weakly

    async def collect(
        self, messages: Sequence[Message], field: str, *, public: bool, actor: str
    ) -> None:
        """:meth:`Leadheat.collect`, joined with whatever else is waiting; raises what the
        request's own write would raise."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self._waiting.append(_Request(messages, field, public, actor, answer, loop))
            start, self._writing = not self._writing, True
        if start:  # a task, not a call: the requests ready in this turn of the loop join it
            self._writer = loop.create_task(run_in_threadpool(self._write_waiting))
        await answer

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
                failures = self._write(taken)
            except BaseException as error:  # the thread ends: nobody may wait forever
                with self._lock:
                    taken += self._waiting
                    self._waiting, self._writing = [], False
                for request in taken:
                    _answer(request, error)
                raise
            for request, failure in zip(taken, failures, strict=True):
                _answer(request, failure)

    def _take(self) -> list[_Request]:
        """The waiting requests, in order, up to :attr:`_most` messages (at least one).
        A request whose client went away before its turn is dropped unwritten: it was
        never answered, so the client sends it again. (Its answer is looked at from the
        writing thread: one cancelled a moment later is written, as one cancelled while
        being written always was.)"""
        self._waiting = [request for request in self._waiting if not request.answer.done()]
        count, size = 0, 0
        for request in self._waiting:
            if count and size + len(request.messages) > self._most:
                break
            count += 1
            size += len(request.messages)
        taken, self._waiting = self._waiting[:count], self._waiting[count:]
        return taken

    def _write(self, taken: list[_Request]) -> list[BaseException | None]:
        """Each request's failure (``None`` when stored), in order; runs in a thread."""
        failures: list[BaseException | None] = []
        for _, same in groupby(taken, key=lambda request: (request.public, request.actor)):
            joined = list(same)
            if len(joined) > 1 and self._stored_together(joined):
                failures += [None] * len(joined)
            else:  # each written on its own, so that an error names the request's own field
                failures += [self._stored_alone(request) for request in joined]
        return failures

    def _stored_together(self, joined: list[_Request]) -> bool:
        try:
            self._lh.collect(
                [message for request in joined for message in request.messages],
                "batch",
                public=joined[0].public,
                actor=joined[0].actor,
            )
        except Exception:  # the caller writes each request again on its own
            return False
        return True

    def _stored_alone(self, request: _Request) -> BaseException | None:
        try:
            self._lh.collect(
                request.messages, request.field, public=request.public, actor=request.actor
            )
        except Exception as error:  # the request's own answer
            return error
        return None


def _answer(request: _Request, failure: BaseException | None) -> None:
    """Settle ``request``'s answer on its event loop (from the writing thread)."""

    def settle() -> None:
        if request.answer.done():  # its client went away meanwhile
            return
        if failure is None:
            request.answer.set_result(None)
        else:
            request.answer.set_exception(failure)

    with suppress(RuntimeError):  # the loop has closed: nobody waits for this answer any more
        request.loop.call_soon_threadsafe(settle)
