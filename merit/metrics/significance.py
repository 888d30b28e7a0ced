"""Paired significance tests for comparing two systems on the same utterances.

* :func:`approximate_randomization` -- for corpus-level metrics such as macro-F1 or UAR
  that are not averages of per-utterance scores (Noreen 1989; the test used for F1 in
  NLP, e.g. Yeh 2000, Riezler & Maxwell 2005).
* :func:`wilcoxon_signed_rank` -- for per-utterance scores such as PESQ, STOI or SSNR.
* :func:`significance_mark` -- ``"*"`` for tables.
"""
from typing import Callable, Optional

import numpy as np

#: Relative tolerance when comparing a shuffled difference with the observed one, so
#: that floating-point noise in recomputing an identical value cannot flip the count.
_TIE_RTOL = 1e-12

#: Trials generated at once (bounds memory: chunk × utterances labels per system).
_CHUNK = 1000


def macro_f1_metric(num_classes: int) -> Callable:
    """A macro-F1 metric ``(ref, hyp) -> float`` for :func:`approximate_randomization`.

    ``ref`` holds ``N`` class indices; ``hyp`` holds ``N`` indices (returns a float) or
    a ``(K, N)`` batch of hypotheses (returns ``K`` scores, computed in one pass).  The
    returned callable has ``vectorized = True`` so the randomization test hands it whole
    batches of shuffled hypotheses.  The score equals
    :func:`merit.metrics.classification.macro_f1` of the confusion matrix.
    """

    def metric(ref, hyp):
        r = np.asarray(ref, dtype=np.int64).reshape(-1)
        h = np.asarray(hyp, dtype=np.int64)
        single = h.ndim == 1
        h = np.atleast_2d(h)
        batch = h.shape[0]
        cells = num_classes * num_classes
        index = (r[None, :] * num_classes + h) + (np.arange(batch)[:, None] * cells)
        confusions = np.bincount(index.reshape(-1), minlength=batch * cells)
        confusions = confusions.reshape(batch, num_classes, num_classes).astype(np.float64)
        tp = np.diagonal(confusions, axis1=1, axis2=2)
        denominator = confusions.sum(axis=1) + confusions.sum(axis=2)
        f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
        scores = f1.mean(axis=1)
        return float(scores[0]) if single else scores

    metric.vectorized = True
    return metric


def approximate_randomization(ref, hyp_a, hyp_b, metric: Callable, trials: int = 10000,
                              seed: int = 0, vectorized: Optional[bool] = None) -> float:
    """Two-sided paired approximate randomization test (Noreen 1989).

    Null hypothesis: the two systems are exchangeable, so which of the pair of outputs
    for an utterance came from A and which from B is arbitrary.  Each trial swaps the
    two hypotheses of every utterance independently with probability 0.5 and computes
    ``|metric(ref, a') − metric(ref, b')|``; the p-value is
    ``(#trials with difference >= observed + 1) / (trials + 1)``, so it is never 0
    (the "+1" counts the observed assignment; smallest p = 1/(trials+1)).

    Args:
        ref: references, length ``N`` (any array; passed through to ``metric``).
        hyp_a, hyp_b: the two systems' outputs for the same ``N`` utterances (class
            indices, or any per-utterance values the metric understands).
        metric: ``(ref, hyp) -> float`` on a 1-D ``hyp`` of length ``N``, e.g.
            ``lambda r, h: macro_f1(confusion_matrix(r, h, C))`` or
            :func:`macro_f1_metric`.  If it is vectorized (see below) it is also
            called with a ``(K, N)`` batch and must return ``K`` scores.
        trials: number of random reassignments.
        seed: seed of the ``numpy.random.default_rng`` generator; the same seed
            gives the same p-value.
        vectorized: whether ``metric`` accepts batches; default: its ``vectorized``
            attribute (``False`` when absent, then it is called once per shuffled
            system, 2 × ``trials`` calls).

    Returns:
        p-value in ``(0, 1]``.
    """
    a = np.asarray(hyp_a)
    b = np.asarray(hyp_b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"hyp_a and hyp_b must be 1-D of equal length, "
                         f"got shapes {a.shape} and {b.shape}")
    if len(ref) != a.shape[0]:
        raise ValueError(f"ref has {len(ref)} items, the hypotheses have {a.shape[0]}")
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    if vectorized is None:
        vectorized = bool(getattr(metric, "vectorized", False))

    observed = abs(float(metric(ref, a)) - float(metric(ref, b)))
    threshold = observed - _TIE_RTOL * max(1.0, observed)
    rng = np.random.default_rng(seed)
    at_least = 0
    done = 0
    while done < trials:
        size = min(_CHUNK, trials - done)
        swap = rng.random((size, a.shape[0])) < 0.5
        shuffled_a = np.where(swap, b[None, :], a[None, :])
        shuffled_b = np.where(swap, a[None, :], b[None, :])
        if vectorized:
            difference = np.abs(np.asarray(metric(ref, shuffled_a), dtype=np.float64)
                                - np.asarray(metric(ref, shuffled_b), dtype=np.float64))
        else:
            difference = np.array([abs(float(metric(ref, x)) - float(metric(ref, y)))
                                   for x, y in zip(shuffled_a, shuffled_b)])
        at_least += int(np.count_nonzero(difference >= threshold))
        done += size
    return (at_least + 1) / (trials + 1)


def wilcoxon_signed_rank(scores_a, scores_b) -> float:
    """Two-sided Wilcoxon signed-rank test on paired per-utterance scores.

    Uses :func:`scipy.stats.wilcoxon` (zero differences dropped, ``zero_method="wilcox"``;
    exact distribution for small samples without ties, normal approximation otherwise,
    scipy's ``method="auto"``).  Pairs where either score is NaN (e.g. PESQ of an
    utterance without detected speech) are dropped.  If every remaining difference is
    zero the systems are indistinguishable and the p-value is 1.0 (scipy would fail).

    Args:
        scores_a, scores_b: scores of the two systems, shape ``(N,)``, same utterances.

    Returns:
        p-value in ``[0, 1]``; NaN when no pair is left after dropping NaNs.
    """
    from scipy.stats import wilcoxon

    a = np.asarray(scores_a, dtype=np.float64).reshape(-1)
    b = np.asarray(scores_b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"length mismatch: {a.shape[0]} and {b.shape[0]} scores")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if a.size == 0:
        return float("nan")
    if np.all(a == b):
        return 1.0
    return float(wilcoxon(a, b, alternative="two-sided").pvalue)


def significance_mark(p: float, alpha: float = 0.05) -> str:
    """``"*"`` if ``p < alpha`` else ``""`` (also ``""`` for a NaN p-value)."""
    return "*" if p < alpha else ""
