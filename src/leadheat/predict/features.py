"""Columns to a numeric matrix, learnt once on the training rows and replayed at prediction.

The :class:`Encoder` decides per column, from the training rows alone, whether it is a
number, a flag or a category, which categories are common enough to learn from, and which
columns carry nothing a model can use (a constant, or an identifier such as a lead number that
is different on every row). Prediction files are then read the same way, so a category never
seen in training, or one too rare to trust, becomes ``other`` instead of an error or a silent
shift of codes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from leadheat.predict.table import FALSE_WORDS, TRUE_WORDS, Kind, Table, TableError, infer_kind
from leadheat.scoring.conditions import as_number

Matrix = npt.NDArray[np.float64]

MIN_CATEGORY_ROWS = 10
"""A category seen on fewer training rows joins ``other``: too few to estimate a rate from."""
MIN_ROWS_FOR_IDENTIFIERS = 50
"""Below this many rows, all-distinct values are as likely chance as an identifier."""
OTHER = "other"


@dataclass(frozen=True)
class Feature:
    """One column the model reads: its kind and, for a category, the values it knows.

    A category's code is its index in ``categories``; ``len(categories)`` means ``other``
    (rare or unseen); a missing value is NaN, which LightGBM treats as its own branch.
    """

    name: str
    kind: Kind
    categories: tuple[str, ...] = ()

    def encode(self, values: Sequence[str | None], source: str, lines: Sequence[int]) -> Matrix:
        """This column's values as floats (NaN for missing)."""
        column = np.full(len(values), math.nan)
        if self.kind is Kind.CATEGORY:
            codes = {c.casefold(): k for k, c in enumerate(self.categories)}
            other = len(self.categories)
            for i, value in enumerate(values):
                if value is not None:
                    column[i] = codes.get(value.casefold(), other)
            return column
        for i, value in enumerate(values):
            if value is None:
                continue
            number = _flag(value) if self.kind is Kind.FLAG else as_number(value)
            if number is None:
                expected = "yes or no" if self.kind is Kind.FLAG else "a number"
                raise TableError(
                    f'{source}: line {lines[i]}, column "{self.name}": {value!r} is not '
                    f"{expected} (it was in the training file)"
                )
            column[i] = number
        return column

    def describe(self, code: float) -> str:
        """An encoded value as a person reads it, for explanations.

        >>> Feature("origin", Kind.CATEGORY, ("API", "Form")).describe(1.0)
        'Form'
        >>> Feature("visits", Kind.NUMBER).describe(float("nan"))
        'missing'
        """
        if math.isnan(code):
            return "missing"
        if self.kind is Kind.CATEGORY:
            k = int(code)
            return self.categories[k] if k < len(self.categories) else OTHER
        if self.kind is Kind.FLAG:
            return "yes" if code else "no"
        return f"{code:g}"


def _flag(value: str) -> float | None:
    word = value.casefold()
    if word in TRUE_WORDS:
        return 1.0
    if word in FALSE_WORDS:
        return 0.0
    return None


def _is_identifier(values: Sequence[str | None], kind: Kind) -> bool:
    present = [v for v in values if v is not None]
    if len(present) < MIN_ROWS_FOR_IDENTIFIERS or len(set(present)) != len(present):
        return False
    if kind is Kind.CATEGORY:
        return True
    numbers = [as_number(v) for v in present]
    return kind is Kind.NUMBER and all(n is not None and n.is_integer() for n in numbers)


@dataclass(frozen=True)
class Encoder:
    """What a model reads from a table, fitted on training rows (see the module docstring).

    >>> from leadheat.predict.table import parse_table
    >>> train = parse_table(["source,visits,email ok"] + ["Google,3,yes"] * 10 + ["Chat,,no"])
    >>> encoder = Encoder.fit(train)
    >>> [(f.name, f.kind.value, f.categories) for f in encoder.features]
    [('source', 'category', ('Google',)), ('visits', 'number', ()), ('email ok', 'flag', ())]
    >>> encoder.transform(parse_table(["visits,source,email ok", "7,Bing,No"])).tolist()
    [[1.0, 7.0, 0.0]]
    """

    features: tuple[Feature, ...]
    dropped: tuple[tuple[str, str], ...] = ()
    """``(column, why)`` for each column the encoder leaves out."""

    @classmethod
    def fit(cls, table: Table, exclude: Iterable[str] = ()) -> Encoder:
        """Learn kinds, categories and unusable columns from the training rows.

        ``exclude`` names columns that are not features (the outcome); they are neither
        features nor reported as dropped.
        """
        skip = set(exclude)
        features: list[Feature] = []
        dropped: list[tuple[str, str]] = []
        for name in table.names:
            if name in skip:
                continue
            values = table.columns[name]
            kind = infer_kind(values)
            states = {v.casefold() if v is not None else None for v in values}
            if len(states) <= 1:
                dropped.append((name, "constant: one value on every row"))
            elif _is_identifier(values, kind):
                dropped.append((name, "identifier: a different value on every row"))
            elif kind is Kind.CATEGORY:
                counts = Counter(v.casefold() for v in values if v is not None)
                spelling: dict[str, str] = {}
                for v in values:
                    if v is not None:
                        spelling.setdefault(v.casefold(), v)
                common = sorted(
                    (c for c, n in counts.items() if n >= MIN_CATEGORY_ROWS),
                    key=lambda c: (-counts[c], c),
                )
                features.append(Feature(name, kind, tuple(spelling[c] for c in common)))
            else:
                features.append(Feature(name, kind))
        return cls(tuple(features), tuple(dropped))

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def categorical(self) -> list[int]:
        """Column indices of the categories, for LightGBM's ``categorical_feature``."""
        return [k for k, f in enumerate(self.features) if f.kind is Kind.CATEGORY]

    def transform(self, table: Table) -> Matrix:
        """The matrix for ``table``'s rows, one column per feature, in feature order.

        Extra columns are ignored; a feature column missing from the file is an error, since
        predicting without it would quietly predict something else.
        """
        matrix = np.empty((len(table), len(self.features)))
        for k, feature in enumerate(self.features):
            if feature.name not in table.columns:
                raise TableError(
                    f'{table.source}: no column "{feature.name}", which the model was trained '
                    "on (add it, even empty)"
                )
            matrix[:, k] = feature.encode(table.columns[feature.name], table.source, table.lines)
        return matrix

    def to_json(self) -> dict[str, Any]:
        """Plain data for the model file."""
        return {
            "features": [
                {"name": f.name, "kind": f.kind.value, "categories": list(f.categories)}
                for f in self.features
            ],
            "dropped": [list(pair) for pair in self.dropped],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Encoder:
        """The encoder :meth:`to_json` wrote."""
        return cls(
            features=tuple(
                Feature(f["name"], Kind(f["kind"]), tuple(f["categories"]))
                for f in data["features"]
            ),
            dropped=tuple((name, why) for name, why in data["dropped"]),
        )
