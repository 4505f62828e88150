"""Bulk helpers: reading ahead in a thread never loses, reorders or strands work."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import pytest

from leadheat.bulk import read_ahead


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "leadheat-read-ahead"]


def test_a_caller_that_stops_early_stops_the_reader() -> None:
    produced: list[int] = []

    def endless() -> Iterator[int]:
        for n in itertools.count():
            produced.append(n)
            yield n

    ahead = read_ahead(endless())
    assert [next(ahead), next(ahead)] == [0, 1]
    ahead.close()  # what a failing import does to the blocks it no longer wants
    assert not _reader_threads()
    assert len(produced) <= 4  # the two taken, one handed over, at most one more


def test_an_error_arrives_where_its_item_was_due_after_the_items_before_it() -> None:
    def failing() -> Iterator[int]:
        yield from range(3)
        raise ValueError('line 4, column "at": not a date')

    taken: list[int] = []
    with pytest.raises(ValueError, match="line 4"):
        taken.extend(read_ahead(failing()))  # keeps what came before the error
    assert taken == [0, 1, 2]
    assert not _reader_threads()
