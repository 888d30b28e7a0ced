"""Confusion-matrix figure (PNG) with matplotlib's Agg renderer, no display needed."""
import os
import tempfile
from pathlib import Path
from typing import Sequence, Union

import numpy as np


def plot_confusion(confusion, classes: Sequence[str], path: Union[str, os.PathLike],
                   title: str = "") -> Path:
    """Write a confusion matrix as a PNG image.

    Cell colours are the row-normalised fractions (each reference row sums to 1, so the
    diagonal shows per-class recall; an empty row stays at 0); each cell is labelled with
    its raw count.  The figure is drawn with the Agg canvas directly (pyplot and the
    global backend are not touched), written to a temporary file in the destination
    directory and renamed onto ``path``, so a reader never sees a partial PNG.

    Args:
        confusion: ``(C, C)`` counts, rows: reference, columns: hypothesis.
        classes: the ``C`` class names, in index order.
        path: destination ``.png`` file; its directory must exist.
        title: figure title (optional).

    Returns:
        ``path`` as a :class:`pathlib.Path`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = np.asarray(confusion, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(classes):
        raise ValueError(f"confusion of shape {counts.shape} does not match {len(classes)} classes")
    totals = counts.sum(axis=1, keepdims=True)
    fraction = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)

    num = len(classes)
    side = max(3.5, 0.6 * num + 2.0)
    figure = Figure(figsize=(side + 1.0, side))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(fraction, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="fraction of reference row")
    axes.set_xticks(range(num))
    axes.set_yticks(range(num))
    axes.set_xticklabels([str(c) for c in classes], rotation=45, ha="right")
    axes.set_yticklabels([str(c) for c in classes])
    axes.set_xlabel("hypothesis")
    axes.set_ylabel("reference")
    if title:
        axes.set_title(title)
    for r in range(num):
        for h in range(num):
            axes.text(h, r, str(int(round(counts[r, h]))), ha="center", va="center",
                      color="white" if fraction[r, h] > 0.5 else "black", fontsize=9)
    figure.tight_layout()

    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            figure.savefig(stream, format="png", dpi=100)
        os.chmod(temporary, 0o644)  # mkstemp makes it owner-only
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path
