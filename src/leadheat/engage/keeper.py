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
import multiprocessing
import os
import threading
from multiprocessing.process import BaseProcess

from leadheat.engage.followup import refresh_apart

log = logging.getLogger("leadheat.keeper")

POLL = 0.05
"""Seconds between looks for stale leads when none was left (a look is one index read)."""


def keep(url: str, stop: threading.Event, poll: float = POLL) -> None:
    """Refresh stale leads of the database at ``url`` until ``stop`` is set, or until the
    process that started this one is gone (a server killed outright leaves no keeper)."""
    from leadheat.heap import settle_heap
    from leadheat.service import Leadheat

    lh = Leadheat(url)
    settle_heap()  # the same short-lived allocations as the server's, batch after batch
    parent = os.getppid()
    while not stop.is_set() and os.getppid() == parent:
        try:
            done = refresh_apart(lh)
        except Exception:  # a database hiccup must not end the keeper: log, wait, go on
            log.exception("follow-up refresh failed; retrying")
            done = 0
        if not done:
            stop.wait(poll)


def _run(url: str) -> None:
    """The keeper process's body: :func:`keep` until the process is terminated."""
    keep(url, threading.Event())


def in_memory(url: str) -> bool:
    """Whether ``url`` names an in-memory SQLite database, which no other process can open."""
    from sqlalchemy import make_url

    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def start(url: str) -> BaseProcess:
    """Start a keeper for the database at ``url`` in a process of its own (spawned: a fork
    of a server would carry its threads' locks along); it ends with the process that
    started it."""
    process = multiprocessing.get_context("spawn").Process(
        target=_run, args=(url,), name="leadheat-followup", daemon=True
    )
    process.start()
    return process
