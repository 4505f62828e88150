"""Watching a write for speed-to-lead triggers: the standing of the leads it is about to
change, taken under their row locks, and the leads it changed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Connection

from leadheat.playbook import Playbook
from leadheat.scoring.temperature import Temperature
from leadheat.speed.accounts import announce, turned_hot
from leadheat.speed.dispatch import Dispatcher, standings
from leadheat.speed.triggers import Standing
from leadheat.store.accounts import take_before
from leadheat.store.state import lock_states


class Watch:
    """Before and after of one write transaction. Disabled, it records nothing."""

    def __init__(self, connection: Connection, book: Playbook, now: datetime, enabled: bool):
        self.connection = connection
        self.book = book
        self.now = now
        self.enabled = enabled and book.speed.enabled
        self.before: dict[int, Standing] = {}
        self.touched: set[int] = set()
        self.arrived: dict[int, list[tuple[str, datetime]]] = {}
        self.queued = 0
        take_before(connection)  # what an earlier write on this connection left behind

    def look(self, lead_ids: Iterable[int]) -> None:
        """Lock these leads' states and remember how they stand, before changing them.

        The lock makes the before-and-after comparison exact on PostgreSQL: a concurrent
        write to the same lead waits, so one transition is seen by one transaction only.
        """
        if not self.enabled:
            return
        fresh = sorted(set(lead_ids) - self.before.keys())
        lock_states(self.connection, fresh)
        self.look_locked(fresh)

    def created(self, qualified: Mapping[int, bool]) -> None:
        """Leads this write created, each with whether its fit qualifies it: they stand
        cold (no interest yet) and open, which is known without reading their states."""
        if not self.enabled:
            return
        for lead, is_qualified in qualified.items():
            self.before.setdefault(lead, Standing(Temperature.COLD, is_qualified, "open"))

    def look_locked(self, lead_ids: Sequence[int]) -> None:
        """:meth:`look` for leads whose states the caller has locked already."""
        fresh = [lead for lead in lead_ids if lead not in self.before]
        self.before.update(standings(self.connection, self.book, self.now, fresh))

    def changed(
        self,
        lead_ids: Iterable[int],
        arrived: Mapping[int, Sequence[tuple[str, datetime]]] | None = None,
    ) -> None:
        """These leads were changed; ``arrived`` lists new events of the watched types."""
        if not self.enabled:
            return
        self.touched.update(lead_ids)
        for lead_id, items in (arrived or {}).items():
            self.arrived.setdefault(lead_id, []).extend(items)

    def react(self) -> int:
        """Fire the triggers of the changed leads, then of the accounts that turned hot;
        returns notifications queued."""
        hotter = turned_hot(self.connection, take_before(self.connection), self.now)
        if not self.enabled or not (self.touched or hotter):
            return 0
        dispatcher = Dispatcher(self.connection, self.book, self.now)
        self.queued = dispatcher.react(self.before, sorted(self.touched), self.arrived)
        for account in hotter:
            self.queued += announce(dispatcher, account)
        return self.queued
