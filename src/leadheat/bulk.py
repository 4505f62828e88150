"""Working on millions of rows at once.

Bulk paths allocate millions of small objects (tuples, strings) that never form reference
cycles. CPython's cycle collector, triggered by every 700 net allocations, would scan them
all over and over: on a million-event import that was several seconds of pure overhead.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Hold off cycle collection for the duration; restore the previous setting after.

    >>> with paused_gc():
    ...     gc.isenabled()
    False
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
