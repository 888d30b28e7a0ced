"""Paired significance tests for comparing two systems on the same utterances, and the
correction for testing many comparisons at once.

* :func:`approximate_randomization` -- for corpus-level metrics such as macro-F1 or UAR
  that are not averages of per-utterance scores (Noreen 1989; the test used for F1 in
  NLP, e.g. Yeh 2000, Riezler & Maxwell 2005), optionally over several runs (seeds) at
  once; :func:`confusion_metric` makes such a metric from a confusion-matrix function.
* :func:`wilcoxon_signed_rank` -- for per-utterance scores such as PESQ, STOI or SSNR;
  :func:`wilcoxon_over_seeds` for several runs (seeds) of each system.
* :func:`holm` -- Holm–Bonferroni adjusted p-values of a family of tests.
* :func:`significance_mark` -- ``"*"`` for tables.
"""
from typing import Callable, Optional

import numpy as np

from merit.metrics.classification import STACKABLE

#: Relative tolerance when comparing a shuffled difference with the observed one, so
#: that floating-point noise in recomputing an identical value cannot flip the count.
_TIE_RTOL = 1e-12

#: Trials generated at once (bounds memory: chunk × utterances labels per system).
_CHUNK = 1000


def confusion_metric(compute: Callable, num_classes: int) -> Callable:
    """A metric ``(ref, hyp) -> float`` for :func:`approximate_randomization` from a
    confusion-matrix function such as ``Metric.compute`` of ``SER_METRICS``.

    ``ref`` holds ``N`` class indices; ``hyp`` holds ``N`` indices (returns a float) or
    a ``(K, N)`` batch of hypotheses (returns ``K`` scores: the ``K`` confusion matrices
    are counted in one pass).  The returned callable has ``vectorized = True`` so the
    randomization test hands it whole batches of shuffled hypotheses.

    Args:
        compute: ``confusion (C, C) -> float``, rows the reference, columns the
            hypothesis.  ``macro_f1``, ``uar`` and ``accuracy`` are scored on the
            whole stack at once; any other function once per matrix (slower).
        num_classes: ``C``; labels are ``0 … C−1``.
    """
    stackable = compute in STACKABLE

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
        if stackable:
            scores = compute(confusions)
        else:
            scores = np.array([float(compute(c)) for c in confusions])
        return float(scores[0]) if single else scores

    metric.vectorized = True
    return metric


def approximate_randomization(ref, hyp_a, hyp_b, metric: Callable, trials: int = 10000,
                              seed: int = 0, vectorized: Optional[bool] = None,
                              groups=None) -> float:
    """Two-sided paired approximate randomization test (Noreen 1989).

    Null hypothesis: the two systems are exchangeable, so which of the pair of outputs
    for an utterance came from A and which from B is arbitrary.  Each trial swaps the
    two hypotheses of every utterance independently with probability 0.5 and computes
    ``|metric(ref, a') − metric(ref, b')|``; the p-value is
    ``(#trials with difference >= observed + 1) / (trials + 1)``, so it is never 0
    (the "+1" counts the observed assignment; smallest p = 1/(trials+1)).

    With ``groups`` (several runs of each system, e.g. seed k of A paired with seed k
    of B, their utterances concatenated) the statistic is the difference of the means
    over the groups, ``|mean_g metric(ref_g, a'_g) − mean_g metric(ref_g, b'_g)|``, and
    each (utterance, group) item is swapped independently.

    Args:
        ref: references, length ``N`` (any array; passed through to ``metric``).
        hyp_a, hyp_b: the two systems' outputs for the same ``N`` utterances (class
            indices, or any per-utterance values the metric understands).
        metric: ``(ref, hyp) -> float`` on a 1-D ``hyp`` of length ``N``, e.g.
            ``lambda r, h: macro_f1(confusion_matrix(r, h, C))`` or
            :func:`confusion_metric`.  If it is vectorized (see below) it is also
            called with a ``(K, N)`` batch and must return ``K`` scores.
        trials: number of random reassignments.
        seed: seed of the ``numpy.random.default_rng`` generator; the same seed
            gives the same p-value.
        vectorized: whether ``metric`` accepts batches; default: its ``vectorized``
            attribute (``False`` when absent, then it is called once per shuffled
            system and group, 2 × groups × ``trials`` calls).
        groups: optional, length ``N``: the group (run) of each item; default one group.

    Returns:
        p-value in ``(0, 1]``.
    """
    a = np.asarray(hyp_a)
    b = np.asarray(hyp_b)
    ref = np.asarray(ref)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"hyp_a and hyp_b must be 1-D of equal length, "
                         f"got shapes {a.shape} and {b.shape}")
    if len(ref) != a.shape[0]:
        raise ValueError(f"ref has {len(ref)} items, the hypotheses have {a.shape[0]}")
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    if groups is None:
        members = [np.arange(a.shape[0])]
    else:
        groups = np.asarray(groups)
        if groups.shape != a.shape:
            raise ValueError(f"groups has shape {groups.shape}, the hypotheses {a.shape}")
        members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    if vectorized is None:
        vectorized = bool(getattr(metric, "vectorized", False))

    def score(hyps: np.ndarray) -> np.ndarray:
        """The metric of each row of a ``(K, N)`` batch, averaged over the groups."""
        if vectorized:
            per_group = [np.asarray(metric(ref[i], hyps[:, i]), dtype=np.float64)
                         for i in members]
        else:
            per_group = [np.array([float(metric(ref[i], row[i])) for row in hyps])
                         for i in members]
        return np.mean(per_group, axis=0)

    observed = abs(float(score(a[None, :])[0]) - float(score(b[None, :])[0]))
    threshold = observed - _TIE_RTOL * max(1.0, observed)
    rng = np.random.default_rng(seed)
    at_least = 0
    done = 0
    while done < trials:
        size = min(_CHUNK, trials - done)
        swap = rng.integers(0, 2, (size, a.shape[0]), dtype=bool)
        shuffled_a = np.where(swap, b[None, :], a[None, :])
        shuffled_b = np.where(swap, a[None, :], b[None, :])
        difference = np.abs(score(shuffled_a) - score(shuffled_b))
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


def wilcoxon_over_seeds(scores_a, scores_b) -> float:
    """Two-sided Wilcoxon signed-rank test over utterances of several paired runs.

    Row ``k`` of each array holds run ``k`` of its system (seed k of A paired with seed
    k of B); columns are utterances; NaN marks a missing score.  Each utterance's
    scores are averaged over the runs where both systems have one, and
    :func:`wilcoxon_signed_rank` compares the two averages over the utterances: an
    utterance is one sample however many runs score it (the runs' scores of one
    utterance are not independent samples), and the mean of the differences is the
    difference of the systems' means over runs.

    Args:
        scores_a, scores_b: shape ``(runs, N)`` (or ``(N,)`` for one run), same order.

    Returns:
        p-value in ``[0, 1]``; NaN when no utterance has a pair of scores.
    """
    a = np.atleast_2d(np.asarray(scores_a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(scores_b, dtype=np.float64))
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} and {b.shape}")
    both = ~(np.isnan(a) | np.isnan(b))
    count = both.sum(axis=0)
    nan = np.full(a.shape[1], np.nan)
    mean_a = np.divide(np.where(both, a, 0).sum(axis=0), count, out=nan.copy(), where=count > 0)
    mean_b = np.divide(np.where(both, b, 0).sum(axis=0), count, out=nan.copy(), where=count > 0)
    return wilcoxon_signed_rank(mean_a, mean_b)


def holm(p_values) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values of a family of ``m`` tests (Holm 1979).

    With the p-values sorted ascending, ``p(1) <= … <= p(m)``, the adjusted value of
    the ``i``-th is ``min(1, max_{j <= i} (m − j + 1) · p(j))``: scaled by the number of
    hypotheses not yet rejected, made monotone so that a smaller p never gets a larger
    adjusted value, and clipped at 1.  Rejecting where the adjusted p is below alpha
    controls the family-wise error rate at alpha.  NaN entries (tests not made) are not
    counted in ``m`` and stay NaN.

    Args:
        p_values: 1-D, values in ``[0, 1]`` or NaN.

    Returns:
        the adjusted p-values, in the input order.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D, got shape {p.shape}")
    made = ~np.isnan(p)
    if np.any((p[made] < 0) | (p[made] > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {p[made].min()} … {p[made].max()}")
    order = np.argsort(p[made], kind="stable")
    m = order.size
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[made][order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    out = np.full(p.shape, np.nan)
    out[made] = adjusted
    return out


def significance_mark(p: float, alpha: float = 0.05) -> str:
    """``"*"`` if ``p < alpha`` else ``""`` (also ``""`` for a NaN p-value)."""
    return "*" if p < alpha else ""
