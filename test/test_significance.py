"""Paired significance tests."""
import itertools

import numpy as np
import pytest

from merit.metrics.classification import confusion_matrix, macro_f1
from merit.metrics.significance import (approximate_randomization, macro_f1_metric,
                                        significance_mark, wilcoxon_signed_rank)

C = 4


def systems(n, right_a, right_b, seed=0):
    """References and two systems, A right on right_a·n utterances and B on right_b·n."""
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, C, n)
    wrong = (ref + rng.integers(1, C, n)) % C  # a wrong label for every utterance
    a = np.where(rng.permutation(n) < round(right_a * n), ref, wrong)
    b = np.where(rng.permutation(n) < round(right_b * n), ref, wrong)
    return ref, a, b


def plain_macro_f1(ref, hyp):
    return macro_f1(confusion_matrix(ref, hyp, C))


def test_identical_systems_are_not_significant():
    ref, a, _ = systems(200, 0.6, 0.6)
    assert approximate_randomization(ref, a, a.copy(), macro_f1_metric(C), trials=2000) == 1.0
    assert wilcoxon_signed_rank((a == ref).astype(float), (a == ref).astype(float)) == 1.0
    assert approximate_randomization(ref, a, a, plain_macro_f1, trials=200) > 0.9


def test_clearly_better_system_is_significant():
    ref, a, b = systems(300, 0.9, 0.4)
    p_ar = approximate_randomization(ref, a, b, macro_f1_metric(C), trials=2000)
    assert p_ar < 0.05
    assert p_ar == pytest.approx(1 / 2001)  # no shuffle comes near a 50-point gap
    p_w = wilcoxon_signed_rank((a == ref).astype(float), (b == ref).astype(float))
    assert p_w < 0.05
    assert significance_mark(p_ar) == "*" and significance_mark(p_w) == "*"


def test_vectorized_and_plain_metric_agree():
    ref, a, b = systems(120, 0.6, 0.5, seed=2)
    fast = macro_f1_metric(C)
    assert fast(ref, a) == pytest.approx(plain_macro_f1(ref, a))
    batch = np.stack([a, b])
    expected = [plain_macro_f1(ref, a), plain_macro_f1(ref, b)]
    assert fast(ref, batch).tolist() == pytest.approx(expected)
    p_fast = approximate_randomization(ref, a, b, fast, trials=300, seed=3)
    p_plain = approximate_randomization(ref, a, b, plain_macro_f1, trials=300, seed=3)
    assert p_fast == p_plain  # same swaps, same scores


def test_seed_makes_p_reproducible():
    ref, a, b = systems(200, 0.55, 0.5, seed=4)
    metric = macro_f1_metric(C)
    p1 = approximate_randomization(ref, a, b, metric, trials=3000, seed=7)
    p2 = approximate_randomization(ref, a, b, metric, trials=3000, seed=7)
    p3 = approximate_randomization(ref, a, b, metric, trials=3000, seed=8)
    assert p1 == p2
    assert 0.01 < p1 < 0.99 and p1 != p3  # a borderline case, so seeds differ a little
    assert p3 == pytest.approx(p1, abs=0.05)


def exact_permutation_p(ref, a, b):
    """Two-sided p of the full permutation test: the share of all 2^N swap patterns
    whose |macro-F1(a') - macro-F1(b')| reaches the observed one (ties counted)."""
    observed = abs(plain_macro_f1(ref, a) - plain_macro_f1(ref, b))
    at_least = 0
    for swap in itertools.product((False, True), repeat=len(ref)):
        shuffled_a, shuffled_b = np.where(swap, b, a), np.where(swap, a, b)
        difference = abs(plain_macro_f1(ref, shuffled_a) - plain_macro_f1(ref, shuffled_b))
        at_least += difference >= observed - 1e-9
    return at_least / 2 ** len(ref)


def test_randomization_matches_exact_two_sided_permutation_p():
    # 12 utterances, A right on 9 and B on 6; they differ on 9.  Exact two-sided
    # p = 1264/4096 = 0.309; a one-sided count (a' - b' >= observed) gives half, 0.154.
    ref = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    a = np.array([0, 0, 0, 1, 1, 2, 0, 2, 2, 2, 3, 3])
    b = np.array([0, 2, 1, 2, 1, 1, 2, 0, 1, 3, 3, 1])
    exact = exact_permutation_p(ref, a, b)
    assert exact == 1264 / 4096
    # the standard error is 0.0033 at 20000 trials and 0.0065 at 5000
    assert approximate_randomization(ref, a, b, macro_f1_metric(C), trials=20000) \
        == pytest.approx(exact, abs=0.03)
    assert approximate_randomization(ref, a, b, plain_macro_f1, trials=5000) \
        == pytest.approx(exact, abs=0.03)


def test_wilcoxon_hand_checked():
    # differences a - b = 1, 2, 3, 4, 5: all positive, ranks 1..5, W- = 0.
    # Exact null: each of the 2^5 = 32 sign patterns is equally likely, and only
    # the all-positive one has W- = 0 -> one-sided 1/32, two-sided p = 2/32 = 0.0625.
    b = np.array([10.0, 10.0, 10.0, 10.0, 10.0])
    assert wilcoxon_signed_rank(b + [1, 2, 3, 4, 5], b) == pytest.approx(0.0625)
    # differences 1, -2, 3, 4, 5: W- = 2.  Sign patterns with W- <= 2: negative set
    # {}, {1}, {2} -> 3/32 one-sided, two-sided p = 6/32 = 0.1875.
    assert wilcoxon_signed_rank(b + [1, -2, 3, 4, 5], b) == pytest.approx(0.1875)
    # a NaN pair (the 6th) is dropped pairwise; so is a zero difference (scipy's "wilcox")
    assert wilcoxon_signed_rank([11, 12, 13, 14, 15, np.nan], [10, 10, 10, 10, 10, 10]) \
        == pytest.approx(0.0625)
    assert np.isnan(wilcoxon_signed_rank([np.nan], [1.0]))


def test_significance_mark():
    assert significance_mark(0.049) == "*"
    assert significance_mark(0.05) == ""
    assert significance_mark(0.02, alpha=0.01) == ""
    assert significance_mark(float("nan")) == ""
