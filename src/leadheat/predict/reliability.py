"""Reliability plots: predicted probability against how often leads really converted.

A probability is only worth showing to a sales team if, of the leads it calls 30 %, about
30 % convert. The plot shows it at a glance for several models at once: each model's points
(one per tenth of the rows, by predicted probability) should lie on the diagonal. Drawn with
matplotlib's object API on the Agg canvas, so nothing touches pyplot's global state or needs a
display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from leadheat.predict.metrics import reliability_curve


@dataclass(frozen=True)
class Curve:
    """One model's predictions and the outcomes they are judged against."""

    label: str
    probabilities: npt.NDArray[np.float64]
    outcomes: npt.NDArray[np.int_]
    calibration_error: float


def save_reliability_plot(
    path: Path, title: str, panels: Mapping[str, Sequence[Curve]], bins: int = 10
) -> None:
    """Write a PNG with one panel per entry of ``panels`` (e.g. per split), one line per model,
    the expected calibration error in each line's label.

    >>> import tempfile
    >>> rng = np.random.default_rng(1)
    >>> p = rng.random(500)
    >>> curve = Curve("fair coin", p, (rng.random(500) < p).astype(int), 0.02)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     target = Path(folder) / "plot.png"
    ...     save_reliability_plot(target, "demo", {"all rows": [curve]})
    ...     target.read_bytes()[:4]
    b'\\x89PNG'
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5 * len(panels), 5.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, curves) in zip(axes, panels.items(), strict=True):
        ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfect")
        for curve in curves:
            predicted, observed = reliability_curve(curve.probabilities, curve.outcomes, bins)
            ax.plot(
                predicted,
                observed,
                marker="o",
                markersize=4,
                label=f"{curve.label} (ECE {curve.calibration_error:.3f})",
            )
        ax.set(
            title=name,
            xlabel="predicted probability (mean per tenth of rows)",
            ylabel="observed conversion rate",
            xlim=(0, 1),
            ylim=(0, 1),
            aspect="equal",
        )
        ax.legend(loc="upper left", fontsize="small")
    figure.suptitle(title)
    figure.savefig(path, format="png", dpi=110)
