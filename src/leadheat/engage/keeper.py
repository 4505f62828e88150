"""The follow-up keeper: a process beside ``leadheat serve`` that keeps the follow-up state
current while requests come in.

Every write marks its leads stale (:mod:`leadheat.engage.followup`), and each stale lead is
recomputed from its history. In the server's own worker thread that recompute took about a
third of the one core a Python process can use (under ``bench/ingest_http.py``, py-spy),
time the requests then waited for. In a process of its own it runs on another core, and
it computes outside the write lock (:func:`~leadheat.engage.followup.refresh_apart`), so
the server's writes do not wait for it either. Reads stay exact without it: Tasks and
Recovery recompute whatever is still stale before they read.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from typing import TYPE_CHECKING

from leadheat.engage.followup import refresh_apart
from leadheat.heap import settle_heap

if TYPE_CHECKING:
    from leadheat.service import Leadheat

log = logging.getLogger("leadheat.keeper")

POLL = 0.05
"""Seconds between looks for stale leads when none was left (a look is one index read)."""
NICENESS = 10
"""How much lower than its server's a keeper's CPU priority is: on a machine whose cores the
server fills, requests go first and the keeper takes what they leave (the state it is
behind by is recomputed by the reads that need it)."""
PARENT_ENV = "LEADHEAT_KEEPER_PARENT"
"""Set by ``leadheat serve`` for the keeper it starts: the server's process id, so that a
keeper whose server is gone (killed outright) ends too."""


def keep(
    lh: Leadheat, stop: threading.Event, poll: float = POLL, parent: int | None = None
) -> None:
    """Refresh stale leads until ``stop`` is set, or until process ``parent`` (when given)
    is no longer this one's parent."""
    settle_heap()  # the same short-lived allocations as the server's, batch after batch
    if parent is not None:
        os.nice(NICENESS)
    while not stop.is_set() and (parent is None or os.getppid() == parent):
        try:
            done = refresh_apart(lh)
        except Exception:  # a database hiccup must not end the keeper: log, wait, go on
            log.exception("follow-up refresh failed; retrying")
            done = 0
        if not done:
            stop.wait(poll)


def _spawn(url: str) -> subprocess.Popen[bytes]:
    """``leadheat keeper`` for the database at ``url`` (the URL goes by the environment: a
    password in it stays out of ``ps``)."""
    environment = {**os.environ, "LEADHEAT_DATABASE_URL": url, PARENT_ENV: str(os.getpid())}
    return subprocess.Popen([sys.executable, "-m", "leadheat", "keeper"], env=environment)


RESTART_AFTER = 1.0
"""Seconds before a keeper that ended is started again (a keeper that cannot start at all
is then tried once a second, not in a tight loop)."""


class Keeper:
    """A keeper process beside this one, started again whenever it ends (killed, out of
    memory) until :meth:`stop`: without it the answers stay right, but every read of Tasks
    would recompute what piled up meanwhile."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.process = _spawn(url)
        self.restarts = 0
        self._watch = threading.Thread(target=self._watching, name="keeper-watch", daemon=True)
        self._watch.start()

    def _watching(self) -> None:
        while True:
            code = self.process.wait()
            if self._stopping.wait(RESTART_AFTER):
                return
            log.warning("the follow-up keeper ended (exit status %s); starting another", code)
            with self._lock:
                if self._stopping.is_set():
                    return
                self.process = _spawn(self._url)
                self.restarts += 1

    def stop(self) -> None:
        """End the keeper (it would end on its own once this process is gone; a server that
        stops cleanly does not leave it the ``poll`` to notice)."""
        with self._lock:
            self._stopping.set()
            process = self.process
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._watch.join(timeout=10)
