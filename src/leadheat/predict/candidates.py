"""Which family of model to keep: the one that did best on the latest rows it did not learn
from, in time order (the future the model will be used in), never on a random split.

Three families are fitted on the earlier rows: gradient-boosted ``trees``, a regularised
``linear`` model (:mod:`~leadheat.predict.linear`) and their ``blend`` (the mean of the two
log-odds). Each is scored on the held-out latest rows by ROC-AUC, and by Brier score after the
calibration it would get (fitted on the earlier half of those rows, scored on the later half:
:func:`~leadheat.predict.calibration.check_calibration`). The winner ranks best; a simpler
family within :data:`TOLERANCE` of it wins instead, because on a difference that small the
simpler model is the safer bet on leads that change (and with few outcomes, within
:data:`FEW_TOLERANCE`: a few dozen outcomes cannot tell models apart more finely).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

FAMILIES = ("linear", "blend", "trees")
"""Simplest first: the order ties are broken in."""
TOLERANCE = 0.002
FEW_TOLERANCE = 0.02


@dataclass(frozen=True)
class Candidate:
    """One family's result on the held-out latest rows."""

    family: str
    roc_auc: float
    brier: float

    def __str__(self) -> str:
        """One line for people.

        >>> print(Candidate("linear", 0.8123, 0.0912))
        linear: ROC-AUC 0.812, Brier 0.0912
        """
        return f"{self.family}: ROC-AUC {self.roc_auc:.3f}, Brier {self.brier:.4f}"


def choose(candidates: Sequence[Candidate], few_outcomes: bool = False) -> tuple[Candidate, str]:
    """The winner and why it won (see the module docstring).

    >>> trees, linear = Candidate("trees", 0.80, 0.09), Candidate("linear", 0.75, 0.10)
    >>> choose([trees, linear])
    (Candidate(family='trees', roc_auc=0.8, brier=0.09), 'best held-out ROC-AUC (0.800)')
    >>> winner, why = choose([Candidate("trees", 0.801, 0.09), Candidate("linear", 0.800, 0.09)])
    >>> winner.family, why
    ('linear', 'within 0.002 of the best held-out ROC-AUC (trees, 0.801) and simpler')
    """
    best = max(candidates, key=lambda c: (c.roc_auc, -c.brier))
    tolerance = FEW_TOLERANCE if few_outcomes else TOLERANCE
    for family in FAMILIES:
        for candidate in candidates:
            if candidate.family == family and candidate.roc_auc >= best.roc_auc - tolerance:
                if candidate is best:
                    return best, f"best held-out ROC-AUC ({best.roc_auc:.3f})"
                return candidate, (
                    f"within {tolerance:g} of the best held-out ROC-AUC "
                    f"({best.family}, {best.roc_auc:.3f}) and simpler"
                    + (" (few outcomes)" if few_outcomes else "")
                )
    return best, f"best held-out ROC-AUC ({best.roc_auc:.3f})"
