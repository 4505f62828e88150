"""Working on millions of rows at once.

Bulk paths allocate millions of small objects (tuples, strings) that never form reference
cycles. CPython's cycle collector, triggered by every 700 net allocations, would scan them
all over and over: on a million-event import that was several seconds of pure overhead.
"""

from __future__ import annotations

import gc
import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


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


def read_ahead(items: Iterable[T]) -> Iterator[T]:
    """The same items in the same order, the next one produced by a thread while the caller
    works on the current one (one item ahead, so memory holds two at most).

    A file import reads and checks a block (Arrow's parser, which releases the GIL) while
    SQLite stores the one before (which releases it while it writes): on two cores the two
    overlap. An error raised producing an item is raised here, where that item was due;
    when the caller stops early the thread stops at its next item.

    >>> list(read_ahead(range(5)))
    [0, 1, 2, 3, 4]
    >>> def failing():
    ...     yield 1
    ...     raise ValueError("line 2: bad")
    >>> ahead = read_ahead(failing())
    >>> next(ahead)
    1
    >>> next(ahead)
    Traceback (most recent call last):
    ...
    ValueError: line 2: bad
    """
    handoff: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=1)
    stopped = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stopped.is_set():
                    try:
                        handoff.put((True, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stopped.is_set():
                    return
            handoff.put((False, None))
        except BaseException as error:  # handed to the caller, raised there
            handoff.put((False, error))

    producer = threading.Thread(target=produce, name="leadheat-read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            more, item = handoff.get()
            if not more:
                if isinstance(item, BaseException):
                    raise item
                return
            yield item  # type: ignore[misc]
    finally:
        stopped.set()
        producer.join()
