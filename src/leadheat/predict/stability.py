"""How a feature's values spread over buckets, and how far two spreads are apart: the
population stability index (PSI), ``Σ (a − e) · ln(a / e)`` over the buckets. By the usual
reading, under 0.1 is stable and over 0.25 a real move.

A trained model keeps its training rows' spread (:func:`spread`) so that :mod:`.drift` can
compare a later window with it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from leadheat.predict.features import Encoder, Matrix
from leadheat.predict.table import Kind

Vector = npt.NDArray[np.float64]

BINS = 10
"""Numbers are bucketed by the training rows' deciles."""
FLOOR = 1e-4
"""The smallest share a bucket counts as: an empty bucket would make PSI infinite."""


def buckets(kind: str, edges: list[float], values: Vector, size: int) -> npt.NDArray[np.int_]:
    """Bucket per value; the last bucket is missing."""
    missing = np.isnan(values)
    if kind == Kind.NUMBER.value:
        found = np.searchsorted(np.asarray(edges), np.nan_to_num(values), side="right")
    else:
        found = np.clip(np.nan_to_num(values).astype(np.int_), 0, size - 2)
    return np.where(missing, size - 1, found).astype(np.int_)


def _size(kind: str, edges: list[float], categories: int) -> int:
    if kind == Kind.NUMBER.value:
        return len(edges) + 2
    if kind == Kind.FLAG.value:
        return 3
    return categories + 2  # known categories, other, missing


def spread(encoder: Encoder, matrix: Matrix) -> dict[str, Any]:
    """Per feature: bucket edges (deciles of numbers) and the training rows' share per bucket.

    >>> from leadheat.predict.table import parse_table
    >>> table = parse_table(["n"] + [str(k % 20) for k in range(40)])
    >>> encoder = Encoder.fit(table)
    >>> ref = spread(encoder, encoder.transform(table))["n"]
    >>> len(ref["edges"]), ref["shares"]
    (9, [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.0])
    """
    result: dict[str, Any] = {}
    for k, feature in enumerate(encoder.features):
        values = matrix[:, k]
        present = values[~np.isnan(values)]
        edges: list[float] = []
        if feature.kind is Kind.NUMBER and len(present):
            quantiles = np.linspace(0, 1, BINS + 1)[1:-1]
            edges = np.unique(np.quantile(present, quantiles)).tolist()
        size = _size(feature.kind.value, edges, len(feature.categories))
        counts = np.bincount(buckets(feature.kind.value, edges, values, size), minlength=size)
        result[feature.name] = {
            "kind": feature.kind.value,
            "edges": edges,
            "shares": (counts / max(1, len(values))).tolist(),
        }
    return result


def psi(expected: Vector, actual: Vector) -> float:
    """Population stability index between two bucket shares (see the module docstring).

    >>> round(psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])), 6)
    0.0
    >>> round(psi(np.array([0.5, 0.5]), np.array([0.9, 0.1])), 3)
    0.879
    """
    e, a = np.maximum(expected, FLOOR), np.maximum(actual, FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))
