"""Paired tests, Holm, TOST, effect sizes and robust statistics: tiny arrays with
hand-computed answers, SciPy references, and the simulated error rates pinned (fixed RNG
seeds; bounds a few standard errors wide)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from initbench import simulations, stats

NAN = float("nan")


# --- paired t test ------------------------------------------------------------------------


def test_paired_t_test_matches_scipy_and_hand():
    d = [0.2, -0.1, 0.2, 0.5]  # mean .2, sd sqrt(.18/3), t = .2 / (sd / 2)
    r = stats.paired_t_test(d)
    assert (r.n, r.mean) == (4, pytest.approx(0.2))
    assert r.t == pytest.approx(0.2 / (math.sqrt(0.06) / 2))
    ref = scipy.stats.ttest_1samp(d, 0.0)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-12)


def test_paired_t_test_agrees_with_t_ci():
    rng = np.random.default_rng(1)
    for d in rng.normal(0.3, 1.0, size=(50, 6)):
        lo, hi = stats.t_ci(d)
        assert (stats.paired_t_test(d).p_value < 0.05) == (lo > 0 or hi < 0)


def test_paired_t_test_rows_nan_and_degenerate():
    d = np.array([[1.0, 2.0, 3.0], [1.0, NAN, 3.0], [0.0, 0.0, 0.0], [2.0, 2.0, 2.0],
                  [5.0, NAN, NAN]])
    r = stats.paired_t_test(d)
    np.testing.assert_array_equal(r.n, [3, 2, 3, 3, 1])
    assert r.p_value[0] == pytest.approx(scipy.stats.ttest_1samp([1, 2, 3], 0).pvalue)
    assert r.p_value[1] == pytest.approx(scipy.stats.ttest_1samp([1, 3], 0).pvalue)
    assert (r.p_value[2], r.p_value[3]) == (1.0, 0.0)  # sd 0: no difference / certain one
    assert math.isnan(r.p_value[4])


def test_paired_differences():
    d = stats.paired_differences([1.0, NAN, 3.0, 4.0], [0.5, 1.0, np.inf, 1.0])
    np.testing.assert_array_equal(d, [0.5, NAN, NAN, 3.0])
    with pytest.raises(ValueError, match="shape"):
        stats.paired_differences([1.0], [1.0, 2.0])


# --- Holm -------------------------------------------------------------------------------


def test_holm_hand_computed():
    # sorted .005 .01 .03 .04 -> x4 .02, x3 .03, x2 .06, x1 .04 -> running max .02 .03 .06 .06
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    # capped at 1 and monotone in the sorted order
    np.testing.assert_allclose(stats.holm([0.5, 0.2, 0.9]), [1.0, 0.6, 1.0])
    assert stats.holm([0.03]) == pytest.approx([0.03])  # one test: unchanged


def test_holm_ties_nan_and_rows():
    np.testing.assert_allclose(stats.holm([0.01, 0.01]), [0.02, 0.02])
    out = stats.holm([[0.01, NAN, 0.03], [0.2, 0.5, 0.9]])  # NaN is not in the family: m = 2
    np.testing.assert_allclose(out, [[0.02, NAN, 0.03], [0.6, 1.0, 1.0]])
    with pytest.raises(ValueError, match="0, 1"):
        stats.holm([0.5, 1.5])


def test_holm_is_never_below_raw_and_never_above_bonferroni():
    p = np.random.default_rng(2).uniform(size=(200, 7))
    adj = stats.holm(p)
    assert np.all(adj >= p - 1e-15) and np.all(adj <= np.minimum(7 * p, 1) + 1e-15)
    order = np.argsort(p, axis=-1)
    assert np.all(np.diff(np.take_along_axis(adj, order, -1), axis=-1) >= 0)


# --- TOST ---------------------------------------------------------------------------------


def test_tost_hand_computed_and_ci_rule():
    d = [0.3, 0.5, -0.1, 0.9, 0.2]  # mean .36, sd .371484, se .166133, t(.95, 4) = 2.131847
    r = stats.tost(d, margin=1.0)
    se = 0.37148351242013417 / math.sqrt(5)
    half = scipy.stats.t.ppf(0.95, 4) * se
    assert (r.ci_low, r.ci_high) == (pytest.approx(0.36 - half), pytest.approx(0.36 + half))
    p_upper = scipy.stats.t.cdf((0.36 - 1.0) / se, 4)  # the binding side
    assert r.p_value == pytest.approx(p_upper) and r.equivalent
    assert not stats.tost(d, margin=0.7).equivalent  # ci_high .714 > .7
    assert stats.tost(d, margin=0.72).equivalent


def test_tost_equivalent_iff_90_ci_inside_margin():
    rng = np.random.default_rng(3)
    d = rng.normal(0.1, 0.5, size=(300, 8))
    r = stats.tost(d, 0.4)
    lo, hi = np.array([stats.t_ci(row, 0.90) for row in d]).T
    np.testing.assert_allclose((r.ci_low, r.ci_high), (lo, hi), rtol=1e-10)
    np.testing.assert_array_equal(r.equivalent, (lo > -0.4) & (hi < 0.4))


def test_tost_degenerate_and_bad_input():
    assert stats.tost([0.1, 0.1, 0.1], 0.5).equivalent
    assert not stats.tost([0.6, 0.6, 0.6], 0.5).equivalent
    r = stats.tost([0.1], 0.5)
    assert math.isnan(r.p_value) and not r.equivalent
    with pytest.raises(ValueError, match="margin"):
        stats.tost([0.1, 0.2], 0.0)


# --- effect size ----------------------------------------------------------------------------


def test_effect_size_ci_inverts_noncentral_t():
    from scipy.optimize import brentq

    d = np.array([0.3, 0.5, -0.1, 0.9, 0.2])
    r = stats.effect_size(d)
    assert r.d_z == pytest.approx(0.36 / 0.37148351242013417)
    t, df, n = r.d_z * math.sqrt(5), 4, 5
    low = brentq(lambda nc: scipy.stats.nct.sf(t, df, nc) - 0.025, -20, 20) / math.sqrt(n)
    high = brentq(lambda nc: scipy.stats.nct.cdf(t, df, nc) - 0.025, -20, 20) / math.sqrt(n)
    # nctdtrinc solves to ~1e-7; enough for a CI printed to 2 decimals
    assert (r.ci_low, r.ci_high) == (pytest.approx(low, abs=1e-6), pytest.approx(high, abs=1e-6))
    assert r.ci_low < 0 < r.d_z < r.ci_high  # p = .096: the CI contains 0, like the t CI


def test_effect_size_coverage():
    rng = np.random.default_rng(4)
    d = rng.normal(0.5, 1.0, size=(20_000, 6))  # true d_z = 0.5; measured 94.8%
    r = stats.effect_size(d)
    covered = np.mean((r.ci_low <= 0.5) & (r.ci_high >= 0.5))
    assert 0.94 <= covered <= 0.96  # exact under normality; se of the rate 0.15%


def test_effect_size_undefined():
    assert math.isnan(stats.effect_size([1.0, 1.0, 1.0]).d_z)
    assert math.isnan(stats.effect_size([1.0]).ci_low)


# --- verdicts and pairs -----------------------------------------------------------------------


def test_paired_verdict():
    assert stats.paired_verdict(0.2, 0.01, 5) == "better"
    assert stats.paired_verdict(-0.2, 0.01, 5) == "worse"
    assert stats.paired_verdict(-0.2, 0.01, 5, higher_is_better=False) == "better"
    assert stats.paired_verdict(0.2, 0.06, 5) == "no clear difference"
    assert stats.paired_verdict(0.2, 0.01, 5, equivalent=True) == "equivalent"
    assert stats.paired_verdict(0.2, 0.01, 2) == "no verdict (n<3)"
    assert stats.paired_verdict(0.2, NAN, 5) == "no clear difference"


def test_comparison_pairs():
    assert stats.comparison_pairs(3, 1) == [(0, 1), (2, 1)]
    assert stats.comparison_pairs(4, pairs="all") == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3),
                                                      (2, 3)]
    assert len(stats.comparison_pairs(10, pairs="all")) == 45
    with pytest.raises(ValueError, match="pairs"):
        stats.comparison_pairs(3, pairs="some")


# --- robust summaries, divergence -------------------------------------------------------------


@pytest.mark.parametrize("x", [[3.0], [1.0, 9.0, 2.0], [5.0, 1.0, 3.0, 2.0, 4.0, 100.0],
                               list(range(10)), [0.9, 0.1, 0.5, 0.7, 0.3]])
def test_interquartile_mean_is_trim_mean_025(x):
    assert stats.interquartile_mean(x) == pytest.approx(scipy.stats.trim_mean(x, 0.25))


def test_interquartile_mean_and_median_hand():
    assert stats.interquartile_mean([5.0, 1.0, 3.0, 2.0, 4.0, 100.0]) == 3.5  # drop 1 and 100
    assert stats.interquartile_mean([1.0, 2.0, 30.0]) == 11.0  # n < 4: the mean
    assert stats.interquartile_mean([1.0, NAN, 2.0, 3.0, 4.0, 50.0]) == 3.0  # finite only
    assert math.isnan(stats.interquartile_mean([NAN]))
    assert stats.median([3.0, NAN, 1.0, 2.0]) == 2.0 and math.isnan(stats.median([NAN]))


@pytest.mark.parametrize("k,n", [(0, 5), (1, 5), (5, 5), (2, 10), (0, 1), (7, 30)])
def test_binomial_ci_matches_scipy_exact(k, n):
    ref = scipy.stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    np.testing.assert_allclose(stats.binomial_ci(k, n), (ref.low, ref.high), atol=1e-12)


def test_binomial_ci_hand_and_bad_input():
    assert stats.binomial_ci(0, 5) == (0.0, pytest.approx(1 - 0.025 ** (1 / 5)))  # 0.5218
    assert all(math.isnan(v) for v in stats.binomial_ci(0, 0))
    with pytest.raises(ValueError):
        stats.binomial_ci(6, 5)


def test_divergence_rate():
    rate, lo, hi = stats.divergence_rate([0.9, NAN, 0.8, np.inf, 0.7])
    assert rate == 0.4 and (lo, hi) == stats.binomial_ci(2, 5)


# --- variance components ----------------------------------------------------------------------


def test_variance_components_hand_computed():
    # rows (weight seeds) 1 2 | 3 4 | 8 9: row means 1.5 3.5 8.5, col means 4 5, grand 4.5
    # MS_W = 2 * (9 + 1 + 16) / 2 = 26; MS_K = 3 * (.25 + .25) / 1 = 1.5; residuals all 0
    v = stats.variance_components([[1.0, 2.0], [3.0, 4.0], [8.0, 9.0]])
    assert (v.weight, v.data, v.residual) == (13.0, 0.5, 0.0)
    assert (v.weight_share, v.data_share) == (13 / 13.5, 0.5 / 13.5)
    # residual only: interaction, MS_W = MS_K = 0, MS_E = 1 -> negatives truncated at 0
    v = stats.variance_components([[1.0, -1.0], [-1.0, 1.0]])
    assert (v.weight, v.data, v.residual, v.residual_share) == (0.0, 0.0, 4.0, 1.0)


def test_variance_components_drops_rows_and_needs_two():
    v = stats.variance_components([[1.0, 2.0], [NAN, 4.0], [3.0, 4.0], [8.0, 9.0]])
    assert v.num_weight_seeds == 3 and v.weight == 13.0  # the NaN row is dropped
    assert math.isnan(stats.variance_components([[1.0, 2.0]]).weight)
    with pytest.raises(ValueError, match="num_weight_seeds"):
        stats.variance_components([1.0, 2.0])


def test_variance_components_recovers_known_components():
    # sd 1.0 / 0.5 / 0.3: variances 1, .25, .09; 8 weight x 6 data seeds, 2000 designs.
    w, k, r = simulations.variance_components_mean(1.0, 0.5, 0.3, 8, 6, num_runs=2000, seed=7)
    assert w == pytest.approx(1.0, abs=0.04)
    assert k == pytest.approx(0.25, abs=0.025)
    assert r == pytest.approx(0.09, abs=0.004)


# --- critical-difference groups ---------------------------------------------------------------


def _sep(n, pairs):
    s = np.zeros((n, n), bool)
    for i, j in pairs:
        s[i, j] = s[j, i] = True
    return s


def test_rank_groups():
    # rank order 0 1 2 3; 0|2, 0|3, 1|3 separated -> overlapping bars
    assert stats.rank_groups([4, 3, 2, 1], _sep(4, [(0, 2), (0, 3), (1, 3)])) == [
        (0, 1), (1, 2), (2, 3)]
    assert stats.rank_groups([4, 3, 2, 1], _sep(4, [])) == [(0, 1, 2, 3)]
    everything = [(i, j) for i in range(3) for j in range(i + 1, 3)]
    assert stats.rank_groups([1, 2, 3], _sep(3, everything)) == []
    # ranks come from the means (index 2 is best), ties by index, NaN never grouped
    assert stats.rank_groups([1.0, NAN, 3.0, 1.0], _sep(4, [(2, 0)])) == [(0, 3)]
    # a group needs every pair inseparable, not just neighbours: 0-1, 1-2 fine, 0|2
    assert stats.rank_groups([3, 2, 1], _sep(3, [(0, 2)])) == [(0, 1), (1, 2)]
    with pytest.raises(ValueError, match="symmetric"):
        stats.rank_groups([1, 2], [[False, True], [False, False]])
