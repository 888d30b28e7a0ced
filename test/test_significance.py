"""Paired significance tests."""
import itertools

import numpy as np
import pytest

from merit.metrics.classification import accuracy, confusion_matrix, macro_f1, uar
from merit.metrics.significance import (approximate_randomization, confusion_metric, holm,
                                        significance_mark, wilcoxon_over_seeds,
                                        wilcoxon_signed_rank)

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
    metric = confusion_metric(macro_f1, C)
    assert approximate_randomization(ref, a, a.copy(), metric, trials=2000) == 1.0
    assert wilcoxon_signed_rank((a == ref).astype(float), (a == ref).astype(float)) == 1.0
    assert approximate_randomization(ref, a, a, plain_macro_f1, trials=200) > 0.9


def test_clearly_better_system_is_significant():
    ref, a, b = systems(300, 0.9, 0.4)
    p_ar = approximate_randomization(ref, a, b, confusion_metric(macro_f1, C), trials=2000)
    assert p_ar < 0.05
    assert p_ar == pytest.approx(1 / 2001)  # no shuffle comes near a 50-point gap
    p_w = wilcoxon_signed_rank((a == ref).astype(float), (b == ref).astype(float))
    assert p_w < 0.05
    assert significance_mark(p_ar) == "*" and significance_mark(p_w) == "*"


def test_vectorized_and_plain_metric_agree():
    ref, a, b = systems(120, 0.6, 0.5, seed=2)
    fast = confusion_metric(macro_f1, C)
    assert fast(ref, a) == pytest.approx(plain_macro_f1(ref, a))
    batch = np.stack([a, b])
    expected = [plain_macro_f1(ref, a), plain_macro_f1(ref, b)]
    assert fast(ref, batch).tolist() == pytest.approx(expected)
    p_fast = approximate_randomization(ref, a, b, fast, trials=300, seed=3)
    p_plain = approximate_randomization(ref, a, b, plain_macro_f1, trials=300, seed=3)
    assert p_fast == p_plain  # same swaps, same scores


@pytest.mark.parametrize("compute", [macro_f1, uar, accuracy])
def test_confusion_metric_stacks_agree_with_the_plain_functions(compute):
    ref, a, b = systems(90, 0.6, 0.3, seed=5)
    b[:30] = 3  # class 3 over-predicted
    ref = np.where(ref == 2, 1, ref)  # class 2 never referenced
    batch = np.stack([a, b, ref])
    expected = [compute(confusion_matrix(ref, h, C)) for h in batch]
    assert confusion_metric(compute, C)(ref, batch).tolist() == pytest.approx(expected)
    # a function without a stack version is called per matrix, with the same result
    plain = confusion_metric(lambda confusion: compute(confusion), C)
    assert plain(ref, batch).tolist() == pytest.approx(expected)
    assert plain(ref, a) == pytest.approx(expected[0])


def seeds_disagree(n=150):
    """Three seeds: in seed 1 A is right on 90 % and B on 40 %; in seeds 2 and 3 A is
    right on 30 % and B on 90 %.  Returns ref, a, b (concatenated) and the seed of each."""
    parts = [systems(n, 0.9, 0.4, seed=11), systems(n, 0.3, 0.9, seed=12),
             systems(n, 0.3, 0.9, seed=13)]
    ref, a, b = (np.concatenate(x) for x in zip(*parts))
    return ref, a, b, np.repeat([1, 2, 3], n)


def test_randomization_over_seeds_gives_the_all_seed_verdict():
    ref, a, b, seeds = seeds_disagree()
    metric = confusion_metric(macro_f1, C)
    first = seeds == 1
    # seed 1 alone: A better, significantly
    assert metric(ref[first], a[first]) > metric(ref[first], b[first]) + 0.3
    assert approximate_randomization(ref[first], a[first], b[first], metric,
                                     trials=2000) < 0.01
    # all seeds: the statistic is the mean over seeds, where B is better, significantly
    means = [np.mean([metric(ref[seeds == k], h[seeds == k]) for k in (1, 2, 3)])
             for h in (a, b)]
    assert means[1] > means[0] + 0.2
    assert approximate_randomization(ref, a, b, metric, trials=2000, groups=seeds) \
        == pytest.approx(1 / 2001)
    # pooling the seeds into one set is another statistic (not the mean over seeds)
    one_group = approximate_randomization(ref, a, b, metric, trials=300, groups=seeds * 0)
    assert one_group == approximate_randomization(ref, a, b, metric, trials=300)


def test_randomization_over_seeds_of_identical_systems_is_not_significant():
    ref, a, _, seeds = seeds_disagree()
    metric = confusion_metric(macro_f1, C)
    assert approximate_randomization(ref, a, a.copy(), metric, trials=500, groups=seeds) == 1.0
    with pytest.raises(ValueError, match="groups"):
        approximate_randomization(ref, a, a, metric, groups=seeds[1:])


def test_seed_makes_p_reproducible():
    ref, a, b = systems(200, 0.55, 0.5, seed=4)
    metric = confusion_metric(macro_f1, C)
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
    assert approximate_randomization(ref, a, b, confusion_metric(macro_f1, C), trials=20000) \
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


def test_wilcoxon_over_seeds_gives_the_all_seed_verdict():
    # 8 utterances; seed 1: A beats B by 1.0 … 1.7 on every utterance; seeds 2 and 3:
    # B beats A by 2.0 … 2.7.  Averaged over seeds A − B = (d1 − 2·d2)/3 < 0 on every
    # utterance, with distinct sizes: exact two-sided p = 2/256 in B's direction.
    b = np.tile(np.linspace(5.0, 12.0, 8), (3, 1))
    a = b + np.array([1.0, -2.0, -2.0])[:, None] + np.linspace(0, 0.7, 8) * [[1], [-1], [-1]]
    assert wilcoxon_signed_rank(a[0], b[0]) == pytest.approx(2 / 256)  # seed 1: A better
    assert np.all(a[0] > b[0]) and np.mean(a) < np.mean(b)
    assert wilcoxon_over_seeds(a, b) == pytest.approx(2 / 256)
    # the test is on the per-utterance means over seeds, not on the 24 pooled pairs
    assert wilcoxon_over_seeds(a, b) == wilcoxon_signed_rank(a.mean(axis=0), b.mean(axis=0))
    # one run is the plain test
    assert wilcoxon_over_seeds(a[0], b[0]) == wilcoxon_signed_rank(a[0], b[0])


def test_wilcoxon_over_seeds_averages_what_both_have():
    a = np.array([[1.0, 2.0, np.nan, 4.0, np.nan],
                  [3.0, np.nan, 5.0, 6.0, np.nan]])
    b = np.array([[0.0, 0.5, 1.0, np.nan, np.nan],
                  [1.0, 1.0, 2.0, 2.0, np.nan]])
    # pairs per utterance: both seeds; seed 1; seed 2; seed 2; none (dropped)
    expected = wilcoxon_signed_rank([2.0, 2.0, 5.0, 6.0], [0.5, 0.5, 2.0, 2.0])
    assert wilcoxon_over_seeds(a, b) == expected
    assert np.isnan(wilcoxon_over_seeds(a[:, 4:], b[:, 4:]))
    with pytest.raises(ValueError, match="shape"):
        wilcoxon_over_seeds(a, b[:1])


def test_holm_hand_computed():
    # m = 5 (the NaN is no test).  Sorted: 0.005, 0.01, 0.03, 0.04, 0.5 scaled by
    # 5, 4, 3, 2, 1: 0.025, 0.04, 0.09, 0.08, 0.5; monotone: 0.08 -> 0.09.
    p = [0.01, 0.04, 0.03, 0.005, np.nan, 0.5]
    np.testing.assert_allclose(holm(p), [0.04, 0.09, 0.09, 0.025, np.nan, 0.5])
    # 0.01, 0.55, 0.6 scaled by 3, 2, 1: 0.03, 1.1, 0.6 -> monotone 1.1, 1.1 -> clipped 1
    np.testing.assert_allclose(holm([0.01, 0.6, 0.55]), [0.03, 1.0, 1.0])
    # ties keep their order; a single test is unchanged
    np.testing.assert_allclose(holm([0.02, 0.02]), [0.04, 0.04])
    np.testing.assert_allclose(holm([0.3]), [0.3])
    assert holm([]).shape == (0,) and np.isnan(holm([np.nan, np.nan])).all()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.5, 1.5])
    with pytest.raises(ValueError, match="1-D"):
        holm([[0.1]])
