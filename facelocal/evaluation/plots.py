"""Curves as PNG files: WIDER FACE precision-recall (one curve per setting, like the paper's Fig. 5) and the
landmark cumulative error distribution (Fig. 7b). matplotlib (the ``eval`` extra) is imported only here."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facelocal.evaluation.widerface import WiderFaceResult


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, out: str | Path) -> Path:
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    _pyplot().close(figure)
    return Path(out)


def plot_pr_curves(result: WiderFaceResult, out: str | Path, label: str = "facelocal") -> Path:
    """One panel per setting: precision against recall, the legend giving the AP."""
    plt = _pyplot()
    settings = list(result.settings)
    figure, axes = plt.subplots(1, len(settings), figsize=(5 * len(settings), 4.5), squeeze=False)
    for ax, setting in zip(axes[0], settings, strict=True):
        r = result.settings[setting]
        ax.plot(r.recall, r.precision, label=f"{label} {r.ap:.3f}")
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1.01),
            xlabel="Recall",
            ylabel="Precision",
            title=f"{setting.capitalize()} ({r.faces} faces)",
        )
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left")
    return _save(figure, out)


def plot_ced(thresholds: np.ndarray, fractions: np.ndarray, out: str | Path, label: str = "facelocal") -> Path:
    """The cumulative error distribution: fraction of faces against normalised mean error."""
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot(thresholds, fractions, label=label)
    ax.axvline(0.1, color="grey", linestyle=":", label="failure threshold 10%")
    ax.set(xlim=(0, thresholds[-1]), ylim=(0, 1), xlabel="Normalised mean error", ylabel="Fraction of faces")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(figure, out)
