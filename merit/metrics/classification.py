"""Classification metrics from a confusion matrix (rows: reference, columns: hypothesis)."""
import numpy as np


def per_class_f1(confusion) -> np.ndarray:
    """F1 per class; a class with no reference and no hypothesis scores 0."""
    c = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(c)
    denominator = c.sum(axis=0) + c.sum(axis=1)  # (tp + fp) + (tp + fn)
    return np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)


def macro_f1(confusion) -> float:
    """Unweighted mean of the per-class F1 scores."""
    return float(per_class_f1(confusion).mean())
