"""Heat keys of many leads at once, as NumPy arrays: the bulk twins of
:class:`~leadheat.scoring.heat.HeatKey`'s arithmetic, for ranking, re-scoring and imports.

Apart from :mod:`leadheat.scoring.heat` so that what reads one lead (``leadheat show``) does
not load NumPy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

_LOG2_E = 1 / math.log(2)


def normalised_arrays(
    whole: npt.NDArray[np.int64], frac: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Element-wise :meth:`HeatKey.normalised`: keys as arrays of ``whole`` and ``frac``."""
    shift = np.floor(frac)
    whole = whole + shift.astype(np.int64)
    frac = frac - shift
    carry = frac >= 1.0
    return whole + carry, np.where(carry, 0.0, frac)


@dataclass(frozen=True, slots=True)
class LeadSlots:
    """Each event's slot in per-lead arrays of ``size`` entries, and the lead of each slot.

    Lead ids from the store are small dense integers, so the id itself is the slot and no
    sort is needed (a sort of ten million ids costs more than all the arithmetic of a
    re-score). Sparse or negative ids fall back to ``np.unique``'s ranks.

    >>> LeadSlots.of(np.array([3, 1, 3])).size, LeadSlots.of(np.array([-5, 9])).leads.tolist()
    (4, [-5, 9])
    """

    slots: npt.NDArray[np.intp]
    size: int
    leads: npt.NDArray[np.int64] | None
    """The lead id of each slot, or ``None`` when the slot is the id."""

    @staticmethod
    def of(lead_ids: npt.NDArray[np.int64]) -> LeadSlots:
        if len(lead_ids) == 0:
            return LeadSlots(np.zeros(0, dtype=np.intp), 0, None)
        low, high = int(lead_ids.min()), int(lead_ids.max())
        if low >= 0 and high < 4 * len(lead_ids) + 1024:  # small batches: np.unique is cheap
            return LeadSlots(lead_ids.astype(np.intp, copy=False), high + 1, None)
        leads, ranks = np.unique(lead_ids, return_inverse=True)
        return LeadSlots(ranks.astype(np.intp), len(leads), leads.astype(np.int64))

    def lead_ids(self, slots: npt.NDArray[np.intp]) -> npt.NDArray[np.int64]:
        """The leads of these slots."""
        return slots.astype(np.int64) if self.leads is None else self.leads[slots]

    def maximum(self, values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Per-slot maximum of ``values``; ``NONE`` where a slot has no event."""
        top = np.full(self.size, NONE, dtype=np.int64)
        np.maximum.at(top, self.slots, values)
        return top


NONE = np.iinfo(np.int64).min
"""The per-slot maximum of no values."""


def fold_keys(
    lead_ids: npt.NDArray[np.int64],
    at_us: npt.NDArray[np.int64],
    points: npt.NDArray[np.float64],
    half_life_us: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Heat keys of many events at once, one per lead: ``(leads, whole, frac)``, leads
    ascending.

    The bulk twin of folding :meth:`HeatKey.plus` over each lead's events: every lead's
    latest half-life count is factored out, so the sum never overflows and the result equals
    the scalar fold to a few ulps. Linear time: a scatter-max, a gather and a weighted
    ``bincount``, no sort. Each term is ``2^((t − top·h)/h + log2 p)`` with ``t − top·h`` an
    exact integer, so a term loses at most an ulp of its exponent; only terms a thousand
    half-lives older than the lead's latest event, which add nothing, lose more.

    >>> day = 86_400_000_000
    >>> leads, whole, frac = fold_keys(
    ...     np.array([7, 7]), np.array([0, day]), np.array([8.0, 8.0]), day
    ... )
    >>> leads.tolist(), whole.tolist(), round(float(frac[0]), 12)  # 24 = 2^(4 + 0.58…)
    ([7], [4], 0.584962500721)
    """
    index = LeadSlots.of(lead_ids)
    latest_us = index.maximum(at_us)
    top = np.where(latest_us == NONE, 0, latest_us // half_life_us)
    offsets = (at_us - (top * half_life_us)[index.slots]) / half_life_us
    total = np.bincount(index.slots, np.exp2(offsets + np.log2(points)), minlength=index.size)
    seen = np.flatnonzero(latest_us != NONE)
    whole, frac = normalised_arrays(top[seen], np.log2(total[seen]))
    return index.lead_ids(seen), whole, frac


def add_keys(
    whole_a: npt.NDArray[np.int64],
    frac_a: npt.NDArray[np.float64],
    whole_b: npt.NDArray[np.int64],
    frac_b: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Element-wise :meth:`HeatKey.plus` of two arrays of keys."""
    a_high = (whole_a > whole_b) | ((whole_a == whole_b) & (frac_a >= frac_b))
    high_w = np.where(a_high, whole_a, whole_b)
    high_f = np.where(a_high, frac_a, frac_b)
    low_w = np.where(a_high, whole_b, whole_a)
    low_f = np.where(a_high, frac_b, frac_a)
    gap = np.maximum((low_w - high_w).astype(np.float64) + (low_f - high_f), -1100.0)
    return normalised_arrays(high_w, high_f + np.log1p(np.exp2(gap)) * _LOG2_E)
