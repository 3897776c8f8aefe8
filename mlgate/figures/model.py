"""The model-gate figure: a confusion matrix, drawn with the one setup of :mod:`mlgate.figures.style`."""

from __future__ import annotations

from collections.abc import Sequence

from mlgate.figures.style import figure, png


def confusion_matrix(confusion: Sequence[Sequence[int]], class_names: Sequence[str] | None = None) -> bytes:
    """Row-normalised colours, raw counts written in the cells when there are at most 20 classes."""
    import numpy as np

    counts = np.asarray(confusion, dtype=np.int64)
    n = counts.shape[0]
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    names = list(class_names) if class_names else [str(i) for i in range(n)]
    with figure(5.2, width_in=6.0) as fig:
        ax = fig.add_subplot()
        image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        fig.colorbar(image, ax=ax, label="share of true class")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title("Confusion matrix")
        if n <= 20:
            ax.set_xticks(range(n), names, fontsize=9)
            ax.set_yticks(range(n), names, fontsize=9)
            for i in range(n):
                for j in range(n):
                    if counts[i, j]:
                        ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                                color="white" if shares[i, j] > 0.5 else "black")
        fig.tight_layout()
        return png(fig)
