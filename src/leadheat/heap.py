"""The garbage collector's settings for the processes that run for good (the server, the
follow-up keeper)."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Tune the garbage collector for a server process, once it has started.

    What the process holds by then (its modules, the app, the playbook) lives as long as
    it does, yet every full collection walked all of it: about 0.1 s each, several in
    an 8-second run of ``bench/ingest_http.py``, pauses that every request in flight waits
    out. Frozen, it is left out of every collection. And a batch request allocates
    thousands of objects, so the young generation's default threshold (700) ran several
    collections per request; at 20,000 it runs about one.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])


YOUNG_THRESHOLD = 20_000
"""Allocations between collections of the young generation in a server process."""
