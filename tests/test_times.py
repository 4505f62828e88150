"""Instants as stored: integer microseconds since the epoch, exactly, both ways."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from leadheat.times import EPOCH, MAX_INSTANT, from_micros, to_micros

OLDEST = to_micros(EPOCH.replace(year=1900))  # older than any date a CRM exports


@given(st.integers(OLDEST, to_micros(MAX_INSTANT)))
def test_an_instant_is_its_microseconds_since_the_epoch_both_ways(micros: int) -> None:
    instant = from_micros(micros)
    assert to_micros(instant) == micros == (instant - EPOCH) // timedelta(microseconds=1)
