"""Classification metrics from a confusion matrix (rows: reference, columns: hypothesis)."""
from typing import Any, Dict, Sequence

import numpy as np

from merit.metrics.metric import Metric


def _value(result):
    """A float for one confusion matrix, the array for a stack of them."""
    return float(result) if np.ndim(result) == 0 else result


def per_class_f1(confusion) -> np.ndarray:
    """F1 per class; a class with no reference and no hypothesis scores 0."""
    c = np.asarray(confusion, dtype=np.float64)
    tp = np.diagonal(c, axis1=-2, axis2=-1)
    denominator = c.sum(axis=-2) + c.sum(axis=-1)  # (tp + fp) + (tp + fn)
    return np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)


def per_class_recall(confusion) -> np.ndarray:
    """Recall per class; a class with no reference utterance scores 0."""
    c = np.asarray(confusion, dtype=np.float64)
    support = c.sum(axis=-1)  # tp + fn
    return np.divide(np.diagonal(c, axis1=-2, axis2=-1), support, out=np.zeros_like(support),
                     where=support > 0)


# Each metric below takes one (C, C) confusion matrix and returns a float, or a
# (..., C, C) stack and returns an array (the randomization test scores thousands at once).

def macro_f1(confusion):
    """Unweighted mean of the per-class F1 scores."""
    return _value(per_class_f1(confusion).mean(axis=-1))


def uar(confusion):
    """Unweighted average recall over the classes with at least one reference (0 if none)."""
    c = np.asarray(confusion, dtype=np.float64)
    present = c.sum(axis=-1) > 0
    count = present.sum(axis=-1)
    total = np.where(present, per_class_recall(c), 0.0).sum(axis=-1)
    return _value(np.divide(total, count, out=np.zeros_like(total), where=count > 0))


def accuracy(confusion):
    """Trace over total (0 for an empty matrix)."""
    c = np.asarray(confusion, dtype=np.float64)
    total = c.sum(axis=(-2, -1))
    trace = np.trace(c, axis1=-2, axis2=-1)
    return _value(np.divide(trace, total, out=np.zeros_like(total), where=total > 0))


#: The metrics above, which score a whole stack of confusion matrices in one call.
STACKABLE = (macro_f1, uar, accuracy)


SER_METRICS = (
    Metric("macro_f1", "SER macro-F1", macro_f1, digits=3, in_tables=True),
    Metric("micro_f1", "micro-F1", accuracy, digits=3, in_results=False),
    Metric("uar", "UAR", uar, digits=3),
    Metric("accuracy", "accuracy", accuracy, digits=3),
)
"""The SER metrics of a set, in the order of ``scores.json``; each a function of the
confusion matrix (micro-F1 equals accuracy for single-label data)."""


def confusion_matrix(ref: Sequence[int], hyp: Sequence[int], num_classes: int) -> np.ndarray:
    """Count matrix of integer labels.

    Args:
        ref: reference class indices, length ``N``, each in ``[0, num_classes)``.
        hyp: hypothesis class indices, length ``N``, each in ``[0, num_classes)``.
        num_classes: ``C``.

    Returns:
        ``(C, C)`` int64 array; ``confusion[r, h]`` counts utterances of reference class
        ``r`` predicted as ``h`` (rows: reference, columns: hypothesis).

    Raises:
        ValueError: different lengths, or a label outside ``[0, num_classes)``.
    """
    r = np.asarray(ref, dtype=np.int64).reshape(-1)
    h = np.asarray(hyp, dtype=np.int64).reshape(-1)
    if r.shape[0] != h.shape[0]:
        raise ValueError(f"length mismatch: ref has {r.shape[0]} labels, hyp has {h.shape[0]}")
    for name, labels in (("ref", r), ("hyp", h)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{name} has labels outside [0, {num_classes}): "
                             f"min {labels.min()}, max {labels.max()}")
    counts = np.bincount(r * num_classes + h, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def _check_confusion(confusion, classes) -> np.ndarray:
    c = np.asarray(confusion)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"confusion must be a square (C, C) matrix, got shape {c.shape}")
    if len(classes) != c.shape[0]:
        raise ValueError(f"{len(classes)} class names for a {c.shape[0]}-class confusion")
    return c


def classification_scores(confusion, classes: Sequence[str]) -> Dict[str, Any]:
    """Single-label classification scores from a confusion matrix.

    Args:
        confusion: ``(C, C)`` counts, rows: reference, columns: hypothesis.
        classes: the ``C`` class names, in index order.

    Returns:
        A JSON-serialisable dict:

        * ``macro_f1`` (primary): unweighted mean of the per-class F1 over **all** ``C``
          classes, as :func:`macro_f1` (the training criterion); a class absent from
          both reference and hypothesis counts as F1 = 0.
        * ``micro_f1``: pooled F1; for single-label data it equals ``accuracy``.
        * ``uar``: unweighted average recall, the mean per-class recall over the classes
          with at least one reference utterance (0.0 if there are none).
        * ``accuracy``: trace / total (0.0 for an empty matrix).
        * ``per_class``: ``{name: {"precision", "recall", "f1", "support"}}``; precision
          is 0.0 for a class never predicted and recall 0.0 for a class never in the
          reference (never NaN); ``support`` is the number of reference utterances.
        * ``confusion``: the matrix as a list of lists of ints.
        * ``classes``: the class names as a list.
    """
    c = _check_confusion(confusion, classes).astype(np.float64)
    tp = np.diag(c)
    predicted = c.sum(axis=0)  # tp + fp
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall, f1, support = per_class_recall(c), per_class_f1(c), c.sum(axis=1)
    return {
        **{metric.name: metric.compute(c) for metric in SER_METRICS},
        "per_class": {
            str(name): {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(classes)
        },
        "confusion": np.asarray(confusion).astype(np.int64).tolist(),
        "classes": [str(name) for name in classes],
    }


def format_confusion(confusion, classes: Sequence[str]) -> str:
    """The confusion matrix as a plain-text table (rows: reference, columns: hypothesis).

    Each row ends with its support (reference count) and recall in percent.
    """
    c = _check_confusion(confusion, classes).astype(np.int64)
    names = [str(name) for name in classes]
    corner = "ref \\ hyp"
    first = max([len(corner)] + [len(n) for n in names])
    width = max([len(n) for n in names] + [len(str(int(c.max()))) if c.size else 1] + [5])
    header = corner.ljust(first) + "".join(" " + n.rjust(width) for n in names)
    header += " " + "total".rjust(6) + " " + "recall".rjust(7)
    lines = [header, "-" * len(header)]
    for i, name in enumerate(names):
        row_total = int(c[i].sum())
        recall = f"{100.0 * c[i, i] / row_total:6.1f}%" if row_total else "     -"
        lines.append(name.ljust(first) + "".join(" " + str(int(v)).rjust(width) for v in c[i])
                     + " " + str(row_total).rjust(6) + " " + recall.rjust(7))
    return "\n".join(lines)
