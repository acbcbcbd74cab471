"""Tests for initbench.stats: tiny arrays with hand-computed answers."""

from __future__ import annotations

import dataclasses
import inspect
import math

import numpy as np
import pytest
import scipy.stats

from initbench import stats

NAN = float("nan")


def numpy_bootstrap(x, level=0.95):
    """The documented recipe, written out directly."""
    x = np.asarray(x, dtype=float)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(x), size=(10_000, len(x)))
    means = x[idx].mean(axis=1)
    tail = 100 * (1 - level) / 2
    return tuple(np.percentile(means, [tail, 100 - tail]))


def test_constants():
    assert stats.CI_LEVEL == 0.95
    assert stats.BOOTSTRAP_RESAMPLES == 10_000
    assert stats.BOOTSTRAP_SEED == 0
    assert stats.CI_METHOD == "Student t over seeds"
    assert stats.PAIRED_CI_METHOD == "Student t over per-seed paired differences"
    assert set(stats.VERDICTS) == {"better", "worse", "no clear difference", "no verdict (n<3)"}


def test_summarize_exact():
    s = stats.summarize([1.0, 2.0, 3.0, 4.0])
    assert (s.n, s.n_diverged) == (4, 0)
    assert s.mean == 2.5
    assert s.std == pytest.approx(math.sqrt(5 / 3))  # squared deviations 2.25+0.25+0.25+2.25 = 5
    assert s.sem == pytest.approx(math.sqrt(5 / 3) / 2)
    assert (s.min, s.max, s.median) == (1.0, 4.0, 2.5)
    # Student t: 2.5 +/- t_{0.975, 3} * sem, t_{0.975, 3} = 3.182446305284263 (tables)
    half = 3.182446305284263 * math.sqrt(5 / 3) / 2
    assert (s.ci_low, s.ci_high) == pytest.approx((2.5 - half, 2.5 + half), rel=1e-12)


def test_summarize_drops_and_counts_nonfinite():
    s = stats.summarize([2.0, NAN, 4.0, np.inf])
    assert (s.n, s.n_diverged) == (2, 2)
    assert (s.mean, s.min, s.max, s.median) == (3.0, 2.0, 4.0, 3.0)
    assert s.std == pytest.approx(math.sqrt(2))
    assert (s.ci_low, s.ci_high) == stats.t_ci([2.0, 4.0])


def test_summarize_one_and_none():
    s = stats.summarize([NAN, 5.0])
    assert (s.n, s.n_diverged, s.mean, s.median) == (1, 1, 5.0, 5.0)
    assert all(math.isnan(v) for v in (s.std, s.sem, s.ci_low, s.ci_high))
    s = stats.summarize([NAN, NAN])
    assert (s.n, s.n_diverged) == (0, 2)
    assert math.isnan(s.mean) and math.isnan(s.ci_low)


def test_summarize_many_rows_independent():
    out = stats.summarize_many([[1.0, 2.0, 3.0], [NAN, NAN, NAN]])
    assert out[0] == stats.summarize([1.0, 2.0, 3.0])  # a diverged row changes nothing else
    assert (out[1].n, out[1].n_diverged) == (0, 3)


def test_bootstrap_ci_matches_numpy_recipe_and_is_deterministic():
    x = [0.1, 0.4, 0.35, 0.8, 0.55]
    ci = stats.bootstrap_ci(x)
    assert ci == numpy_bootstrap(x)
    assert ci == stats.bootstrap_ci(x)
    assert ci[0] <= np.mean(x) <= ci[1]
    assert stats.bootstrap_ci(x, level=0.5) == numpy_bootstrap(x, level=0.5)


@pytest.mark.skipif(
    "rng" not in inspect.signature(scipy.stats.bootstrap).parameters, reason="SciPy < 1.15"
)
def test_bootstrap_ci_matches_scipy():
    x = np.array([0.1, 0.4, 0.35, 0.8, 0.55])
    ref = scipy.stats.bootstrap(
        (x,), np.mean, n_resamples=10_000, method="percentile", rng=np.random.default_rng(0)
    ).confidence_interval
    np.testing.assert_allclose(stats.bootstrap_ci(x), (ref.low, ref.high), rtol=0, atol=1e-12)


def test_bootstrap_ci_narrows_with_more_data():
    small = [0.0, 1.0, 0.0, 1.0]
    large = small * 16
    lo_s, hi_s = stats.bootstrap_ci(small)
    lo_l, hi_l = stats.bootstrap_ci(large)
    assert hi_l - lo_l < hi_s - lo_s


def test_bootstrap_ci_degenerate():
    assert stats.bootstrap_ci([0.1, 0.1, 0.1]) == (0.1, 0.1)
    assert all(math.isnan(v) for v in stats.bootstrap_ci([3.0]))
    assert all(math.isnan(v) for v in stats.bootstrap_ci([3.0, NAN]))
    assert stats.bootstrap_ci([1.0, NAN, 3.0]) == stats.bootstrap_ci([1.0, 3.0])


def test_bootstrap_ci_rejects_bad_input():
    with pytest.raises(ValueError, match="level"):
        stats.bootstrap_ci([1.0, 2.0], level=95)
    with pytest.raises(ValueError, match="num_seeds"):
        stats.bootstrap_ci([[1.0, 2.0]])


def test_compare_paired_clearly_better():
    base = [0.50, 0.60, 0.70, 0.55, 0.65]
    p = stats.compare_paired([b + 0.1 for b in base], base)
    assert p.verdict == "better"
    assert p.n == 5 and p.p_better == 1.0
    assert p.mean_diff == pytest.approx(0.1)
    assert 0 < p.ci_low <= p.mean_diff <= p.ci_high


def test_compare_paired_clearly_worse_and_noisy():
    base = [0.50, 0.60, 0.70, 0.55, 0.65]
    worse = stats.compare_paired([b - 0.1 for b in base], base)
    assert worse.verdict == "worse" and worse.ci_high < 0 and worse.p_better == 0.0
    noisy = stats.compare_paired([0.6, 0.5, 0.8, 0.45, 0.7], base)  # diffs +.1 -.1 +.1 -.1 +.05
    assert noisy.verdict == "no clear difference"
    assert noisy.ci_low < 0 < noisy.ci_high
    assert noisy.p_better == 3 / 5


def test_compare_paired_ci_is_student_t_of_differences():
    x, y = [0.3, 0.5, 0.4, 0.9], [0.1, 0.6, 0.2, 0.4]
    p = stats.compare_paired(x, y)
    ref = scipy.stats.ttest_1samp(np.subtract(x, y), 0.0).confidence_interval(0.95)
    np.testing.assert_allclose((p.ci_low, p.ci_high), (ref.low, ref.high), rtol=1e-12)
    # By hand: d = .2 -.1 .2 .5, mean .2, sd sqrt(.18 / 3), t(0.975, 3) = 3.182446
    half = 3.182446305284263 * math.sqrt(0.18 / 3) / 2
    np.testing.assert_allclose((p.ci_low, p.ci_high), (0.2 - half, 0.2 + half), rtol=1e-9)


@pytest.mark.parametrize("n", [3, 5, 10])
def test_verdicts_claim_a_difference_in_about_5_percent_of_null_comparisons(n):
    """No true difference: per-seed differences drawn around 0. A 95% CI must claim
    'better' or 'worse' about 5% of the time; the percentile bootstrap would not."""
    rng = np.random.default_rng(123)
    trials = 2000
    diffs = rng.normal(0.0, 0.01, size=(trials, n))
    claimed = sum(stats.compare_paired(d, np.zeros(n)).verdict != "no clear difference"
                  for d in diffs)
    assert 0.035 <= claimed / trials <= 0.065
    bootstrap_claims = sum(
        not (lo <= 0 <= hi) for lo, hi in (stats.bootstrap_ci(d) for d in diffs[:400]))
    if n <= 5:  # why verdicts do not use the bootstrap: far more false claims at few seeds
        assert bootstrap_claims / 400 > 0.09


def test_compare_paired_too_few_seeds():
    p = stats.compare_paired([0.9, 0.8, NAN], [0.1, 0.2, 0.3])
    assert p.verdict == "no verdict (n<3)"
    assert p.n == 2 and p.mean_diff == pytest.approx(0.7) and p.p_better == 1.0
    assert math.isnan(p.ci_low) and math.isnan(p.ci_high)
    empty = stats.compare_paired([NAN], [1.0])
    assert empty.n == 0 and empty.verdict == "no verdict (n<3)" and math.isnan(empty.p_better)


def test_compare_paired_ties_and_nan_pairs():
    # seeds: better, tie, worse, tie, (baseline diverged) -> (1 + 0.5 + 0 + 0.5) / 4
    p = stats.compare_paired([2.0, 1.0, 0.0, 3.0, 5.0], [1.0, 1.0, 1.0, 3.0, NAN])
    assert p.n == 4 and p.p_better == 0.5


def test_compare_paired_all_tied_is_unclear():
    p = stats.compare_paired([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (p.ci_low, p.ci_high, p.p_better, p.verdict) == (0.0, 0.0, 0.5, "no clear difference")


def test_compare_paired_losses_flip():
    base = [1.0, 1.2, 0.9, 1.1]
    lower = [b - 0.3 for b in base]
    p = stats.compare_paired(lower, base, higher_is_better=False)
    assert p.verdict == "better" and p.p_better == 1.0 and p.mean_diff == pytest.approx(-0.3)
    assert stats.compare_paired(base, lower, higher_is_better=False).verdict == "worse"
    assert stats.compare_paired(lower, base).verdict == "worse"


def test_compare_paired_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        stats.compare_paired([1.0, 2.0, 3.0], [1.0, 2.0])


def test_epochs_to_target():
    curves = np.array(
        [
            [0.95, 0.96, 0.97],  # hit before training
            [0.10, 0.50, 0.92],  # hit at epoch 2
            [0.10, 0.20, 0.30],  # never
            [0.10, NAN, 0.95],  # diverged epoch never counts, hit at 2
        ]
    )
    np.testing.assert_array_equal(stats.epochs_to_target(curves, 0.9), [0.0, 2.0, NAN, 2.0])
    np.testing.assert_array_equal(stats.epochs_to_target(curves, 0.5)[:2], [0.0, 1.0])


def test_epochs_to_target_init_axis():
    curves = np.array([[[0.1, 0.9]], [[0.9, 0.9]]])  # [num_inits=2, num_seeds=1, epochs=2]
    np.testing.assert_array_equal(stats.epochs_to_target(curves, 0.9), [[1.0], [0.0]])


def test_area_under_curve():
    curves = np.array([[0.0, 1.0, 1.0], [0.2, 0.4, 0.6], [0.0, NAN, 1.0]])
    # 0.5 + 1.0 = 1.5;  0.3 + 0.5 = 0.8;  NaN
    np.testing.assert_allclose(stats.area_under_curve(curves), [1.5, 0.8, NAN])


def test_best_epoch():
    curves = np.array([[0.1, 0.9, 0.5], [0.3, 0.3, 0.2], [0.1, NAN, 0.4], [NAN, NAN, NAN]])
    np.testing.assert_array_equal(stats.best_epoch(curves), [1.0, 0.0, 2.0, NAN])


def test_first_diverged_epoch():
    loss = np.array([[1.0, 0.5, 0.2], [1.0, np.inf, NAN], [1.0, 0.5, 0.3]])
    acc = np.array([[0.1, 0.5, 0.8], [0.1, 0.5, 0.8], [0.1, 0.5, NAN]])
    np.testing.assert_array_equal(stats.first_diverged_epoch(loss), [-1, 1, -1])
    np.testing.assert_array_equal(stats.first_diverged_epoch(loss, acc), [-1, 1, 2])
    with pytest.raises(ValueError):
        stats.first_diverged_epoch()
    with pytest.raises(ValueError, match="shape"):
        stats.first_diverged_epoch(loss, acc[:, :2])


def test_mask_diverged():
    acc = np.array([[0.1, 0.5, 0.8], [0.1, 0.5, 0.8], [0.1, 0.5, 0.8]])
    masked = stats.mask_diverged(acc, np.array([-1, 1, 0]))
    np.testing.assert_array_equal(masked, [[0.1, 0.5, 0.8], [0.1, NAN, NAN], [NAN, NAN, NAN]])
    assert not np.isnan(acc).any()  # a copy; the input is untouched
    with pytest.raises(ValueError, match="first_diverged"):
        stats.mask_diverged(acc, np.array([-1, 1]))


def test_dataclasses_frozen():
    s = stats.summarize([1.0, 2.0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.mean = 0.0  # type: ignore[misc]
