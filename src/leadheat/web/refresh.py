"""Keeps the dashboard's snapshots fresh in the background.

A thread of the web app recomputes each view a page has shown in the last ten minutes once
its snapshot is a minute old (or at once when someone presses "Refresh"), resting after each
computation as long as it took, so that it takes at most half of a core however many leads
there are (with 100,000, a view is then a few minutes old). The computation runs in a
separate process (over the same database) so that it holds neither the server's
GIL nor its requests back; an in-memory SQLite database, which another process cannot open,
is computed in the thread itself.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime

from leadheat.service import Leadheat
from leadheat.store.database import in_memory
from leadheat.web.snapshots import MAX_PERIODS, PERIOD, patch_tasks, refresh

EVERY = 60.0
"""Seconds between two snapshots of a view people are looking at."""
IDLE = 600.0
"""Seconds after the last page view of a view when it stops being refreshed."""
log = logging.getLogger(__name__)


def _refresh_elsewhere(url: str, name: str, at: datetime) -> None:
    """In the child process: compute the view at ``at`` and store it."""
    lh = Leadheat(url, clock=lambda: at)
    try:
        refresh(lh, name, at)
    finally:
        lh.close()


class Refresher:
    """The background refresh of one app's snapshots (``app.state.refresher``)."""

    def __init__(self, lh: Leadheat, every: float = EVERY) -> None:
        self.lh = lh
        self.every = every
        self._lock = threading.Lock()
        self._wanted: dict[str, float] = {}
        self._done: dict[str, float] = {}
        self._forced: set[str] = set()
        self._failed: dict[str, str] = {}
        self._running: str | None = None
        self._touched: set[int] = set()
        self._rest_until = -math.inf
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ProcessPoolExecutor | None = None

    def want(self, name: str, *, now: bool = False) -> None:
        """A page showed the view: keep it fresh while people look; ``now`` asks for a new
        snapshot at once."""
        with self._lock:
            self._wanted.pop(name, None)
            self._wanted[name] = time.monotonic()  # the most recently wanted last
            if now:
                self._forced.add(name)
                self._failed.pop(name, None)
            periods = [view for view in self._wanted if view.startswith(PERIOD)]
            for forgotten in periods[: max(0, len(periods) - MAX_PERIODS)]:
                self._forget(forgotten)
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="leadheat-snapshots", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def _forget(self, name: str) -> None:
        """Stop keeping ``name`` fresh (the caller holds the lock): an analytics period
        beyond ``MAX_PERIODS``, so a person asking for many periods queues a few at most."""
        self._wanted.pop(name, None)
        self._forced.discard(name)
        self._done.pop(name, None)
        self._failed.pop(name, None)

    def pending(self, name: str) -> bool:
        """Whether a new snapshot of the view is being computed or waits its turn."""
        with self._lock:
            return name == self._running or name in self._forced

    def failure(self, name: str) -> str | None:
        """Why the view's last computation failed, if it did."""
        with self._lock:
            return self._failed.get(name)

    def touched(self, lead_ids: Sequence[int]) -> None:
        """Leads just touched (or closed) in the dashboard, after their tasks were patched:
        a tasks snapshot being computed now may have read them before, so they are patched
        again once it is stored."""
        with self._lock:
            if self._running == "tasks":
                self._touched.update(lead_ids)

    def close(self) -> None:
        """Stop refreshing; a computation under way is abandoned (its process ended), so a
        server stops at once rather than after a minute of replaying history."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            # the executor offers no public way to end a worker busy with a task
            for process in list((pool._processes or {}).values()):
                process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)

    def _next(self) -> str | None:
        with self._lock:
            if self._forced:
                return sorted(self._forced)[0]
            clock = time.monotonic()
            stalest = sorted(self._wanted, key=lambda name: self._done.get(name, -math.inf))
            for name in stalest:
                if name in self._failed or clock - self._wanted[name] > IDLE:
                    continue
                if clock < self._rest_until and name in self._done:  # a first one waits not
                    continue
                if clock - self._done.get(name, -math.inf) >= self.every:
                    return name
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            name = self._next()
            if name is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            with self._lock:
                self._running = name
                self._forced.discard(name)
                self._touched.clear()
            started = time.monotonic()
            try:
                self._compute(name)
                with self._lock:
                    again = sorted(self._touched)
                if again:
                    patch_tasks(self.lh, again)
            except Exception as error:  # a failed view must not stop the others
                if self._stop.is_set():
                    return
                log.exception("the dashboard view %s could not be computed", name)
                with self._lock:
                    self._failed[name] = str(error) or type(error).__name__
            finally:
                with self._lock:
                    self._running = None
                    self._done[name] = time.monotonic()
                    self._rest_until = 2 * self._done[name] - started

    def _compute(self, name: str) -> None:
        at = self.lh.clock()
        if in_memory(self.lh.url):
            refresh(self.lh, name, at)
            return
        with self._lock:
            if self._stop.is_set():
                return
            if self._pool is None:
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
            pool = self._pool
        try:
            pool.submit(_refresh_elsewhere, self.lh.url, name, at).result()
        except BrokenProcessPool:  # its process died (or close() ended it): a new one next
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            raise
