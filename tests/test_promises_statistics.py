"""README promises about the numbers in a run's rows, checked one call above the statistics
functions (where a statistic is wired to its row): levels by the interval's width against
scipy, designs asymmetric enough that a transposed or mis-grouped axis gives another answer."""


import numpy as np
import pytest
from scipy import optimize
from scipy import stats as sps

from initbench import stats, summary
from initbench.results import RunResult
from initbench.spec import Spec
from initbench.summary_rows import SUMMARY_COLUMNS

# One comparison (b minus a): Holm over one comparison is the raw p.
# p = 0.041: significant at 5%, not at 3%.
DIFFS = np.array([0.010, -0.004, 0.022, 0.003, 0.015, -0.008]) + 0.0065
BASE = np.array([0.80, 0.84, 0.78, 0.83, 0.81, 0.86])


def result_from_finals(a, b, **spec_changes):
    """A two-initializer run (a = baseline) whose final test accuracies are `a` and `b`."""
    n = len(a)
    spec = Spec(inits=("xavier", "he_normal"), seeds=tuple(range(n)), dataset="digits",
                epochs=1, hidden=(4,)).replace(**spec_changes)
    final = np.stack([a, b])
    acc = np.stack([np.full_like(final, 0.1), final], axis=-1)
    loss = 1.0 - acc
    return RunResult(spec, {"train_loss": loss, "test_loss": loss, "test_accuracy": acc})


def row_of(result, margin=None, init="he_normal"):
    return {r.init: r for r in summary.summarize_run(result, margin=margin)}[init]


def t_half(d, level):
    return sps.t.ppf(0.5 + level / 2, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)


def test_reference_design_is_significant_at_5_but_not_at_3_percent():
    p = sps.ttest_1samp(DIFFS, 0).pvalue
    assert 0.03 < p < 0.05


@pytest.mark.parametrize("auto, level", [(False, 0.95), (True, 0.97)])
def test_paired_intervals_and_verdict_are_at_the_runs_level(auto, level):
    """`--seeds auto`: verdicts at 3%, the Δ and d_z intervals under "[97% CI]" at 97%;
    otherwise 95% and 5%."""
    changes = {"precision": 0.5} if auto else {}
    row = row_of(result_from_finals(BASE, BASE + DIFFS, **changes))
    assert row.family.level == level
    width = row.versus.pair.diff_ci_high - row.versus.pair.diff_ci_low
    assert width == pytest.approx(2 * t_half(DIFFS, level), rel=1e-9)
    loss_width = row.versus.loss.ci_high - row.versus.loss.ci_low  # loss = 1 - accuracy here
    assert loss_width == pytest.approx(2 * t_half(DIFFS, level), rel=1e-9)
    assert row.versus.pair.p_value == pytest.approx(sps.ttest_1samp(DIFFS, 0).pvalue, rel=1e-9)
    assert row.verdict == (stats.VERDICT_UNCLEAR if auto else stats.VERDICT_BETTER)
    # d_z interval: invert the noncentral t (scipy) at the same level.
    n = DIFFS.size
    t_obs = DIFFS.mean() / DIFFS.std(ddof=1) * np.sqrt(n)
    tail = (1 - level) / 2

    def bound(q):
        nc = optimize.brentq(lambda nc: sps.nct.cdf(t_obs, n - 1, nc) - q, -50, 50)
        return nc / np.sqrt(n)

    assert row.versus.pair.d_z_ci_low == pytest.approx(bound(1 - tail), rel=1e-5)
    assert row.versus.pair.d_z_ci_high == pytest.approx(bound(tail), rel=1e-5)
    pair = summary.compare_family(result_from_finals(BASE, BASE + DIFFS, **changes))[0]
    assert pair.ci_level == level
    assert pair.diff_ci_high - pair.diff_ci_low == pytest.approx(2 * t_half(-DIFFS, level))


EQ = DIFFS - DIFFS.mean() + 0.001  # a small difference, same spread


@pytest.mark.parametrize("auto", [False, True])
@pytest.mark.parametrize("num_inits", [2, 3])
def test_equivalence_is_the_bonferroni_interval_inside_the_margin(auto, num_inits):
    """`equivalent` exactly when the interval shown beside it, at 1 - alpha/m (alpha 5%, 3%
    under --seeds auto; m comparisons in the family), lies inside +/- M (the margin rule,
    not the 90%/94% TOST): a margin 1% wider than that interval's far end is
    equivalent, one 1% narrower is not."""
    changes = {"precision": 0.5} if auto else {}
    level = 1 - (0.03 if auto else 0.05) / (num_inits - 1)
    far = EQ.mean() + t_half(EQ, level)
    finals = [BASE] + [BASE + EQ] * (num_inits - 1)
    inits = ("xavier", "he_normal", "lecun_normal")[:num_inits]
    for margin, equivalent in ((far * 1.01, True), (far * 0.99, False)):
        result = result_from_finals(BASE, BASE + EQ, **changes)
        if num_inits == 3:
            spec = result.spec.replace(inits=inits)
            acc = np.stack([np.stack([np.full_like(f, 0.1), f], axis=-1) for f in finals])
            result = RunResult(spec, {"train_loss": 1 - acc, "test_loss": 1 - acc,
                                      "test_accuracy": acc})
        row = row_of(result, margin=margin)
        assert (row.verdict == stats.VERDICT_EQUIVALENT) == equivalent, (margin, row.verdict)
        if equivalent:
            assert row.versus.pair.diff_ci_high == pytest.approx(far, rel=1e-9)


def _two_way_shares(y):
    """Reference: ANOVA estimates of a [W, K] table via scipy-free sums (by hand)."""
    w, k = y.shape
    g = y.mean()
    r, c = y.mean(1), y.mean(0)
    ms_w = k * ((r - g) ** 2).sum() / (w - 1)
    ms_k = w * ((c - g) ** 2).sum() / (k - 1)
    ms_e = ((y - r[:, None] - c[None, :] + g) ** 2).sum() / ((w - 1) * (k - 1))
    parts = np.array([max((ms_w - ms_e) / k, 0), max((ms_k - ms_e) / w, 0), ms_e])
    return parts / parts.sum()


# 3 weight seeds x 2 data orders, slots seed-major: [w0d0, w0d1, w1d0, w1d1, w2d0, w2d1].
# The weights move accuracy most, the data order a little, one residual wiggle.
TABLE = np.array([[0.90, 0.87], [0.80, 0.78], [0.70, 0.69]])
LOSS_TABLE = np.array([[0.30, 0.50], [0.40, 0.41], [0.60, 0.62]])


def data_seeds_result():
    spec = Spec(inits=("xavier", "he_normal"), seeds=(0, 1, 2), dataset="digits", epochs=1,
                hidden=(4,), data_seeds=2)
    acc_final = np.stack([TABLE.ravel(), TABLE.ravel()[::-1].copy()])
    loss_final = np.stack([LOSS_TABLE.ravel(), LOSS_TABLE.ravel()[::-1].copy()])
    acc = np.stack([np.full_like(acc_final, 0.1), acc_final], axis=-1)
    loss = np.stack([np.full_like(loss_final, 2.0), loss_final], axis=-1)
    return RunResult(spec, {"train_loss": loss, "test_loss": loss, "test_accuracy": acc})


def test_variance_shares_are_weights_data_rest_in_that_order():
    row = row_of(data_seeds_result(), init="xavier")
    want = _two_way_shares(TABLE)
    assert len(set(np.round(want, 6))) == 3  # the three shares differ: an order swap shows
    got = [row.variance.weight_share, row.variance.data_share, row.variance.residual_share]
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_loss_and_accuracy_statistics_are_over_weight_seeds():
    """Under --data-seeds every statistic is over weight seeds, each the mean of its K data
    orders (so the sd and CI are of 3 numbers, not 6)."""
    row = row_of(data_seeds_result(), init="xavier")
    for prefix, table in (("test_accuracy", TABLE), ("test_loss", LOSS_TABLE)):
        units = table.mean(axis=1)
        columns = summary.flatten(row)
        assert columns[f"{prefix}_mean"] == pytest.approx(units.mean())
        assert columns[f"{prefix}_std"] == pytest.approx(units.std(ddof=1))
    other = row_of(data_seeds_result(), init="he_normal")
    loss_units = LOSS_TABLE.ravel()[::-1].reshape(3, 2).mean(1) - LOSS_TABLE.mean(1)
    assert other.versus.loss.mean_diff == pytest.approx(loss_units.mean())
    half = other.versus.loss.ci_high - other.versus.loss.mean_diff
    assert half == pytest.approx(t_half(loss_units, 0.95))


def test_best_lr_is_the_highest_mean_validation_accuracy_not_the_last_seed():
    """3 rates x 3 seeds where the last seed prefers another rate than the mean does."""
    spec = Spec(inits=("xavier", "he_normal"), seeds=(0, 1, 2), dataset="digits", epochs=1,
                hidden=(4,), lr=(0.001, 0.01, 0.1))
    val = np.array([[0.70, 0.72, 0.95],    # lr 0.001: mean 0.79, best last seed
                    [0.90, 0.91, 0.80],    # lr 0.01:  mean 0.87 (the choice)
                    [0.92, 0.93, 0.70]])   # lr 0.1:   mean 0.85, best median, first seed
    assert np.argmax(val.mean(1)) != np.argmax(val[:, -1])
    assert np.argmax(val.mean(1)) != np.argmax(np.median(val, 1))
    assert np.argmax(val.mean(1)) != np.argmax(val[:, 0])
    finals = np.stack([val, val[::-1]])  # he_normal: the mean prefers the middle rate too
    vals = np.stack([np.full_like(finals, 0.1), finals], axis=-1)  # [init, lr, seed, epoch]
    loss = 1 - vals
    result = RunResult(spec, {"train_loss": loss, "test_loss": loss, "test_accuracy": vals,
                              "val_accuracy": vals})
    rows = summary.summarize_lrs(result).rows
    assert {r.init: r.lr for r in rows} == {"xavier": 0.01, "he_normal": 0.01}
    assert {r.init: r.val_accuracy_mean for r in rows} == pytest.approx(
        {"xavier": 0.87, "he_normal": 0.87})


def test_summary_row_columns_by_hand():
    """The other summary.csv numbers of one row, by hand on 3 seeds x 4 epochs: loss at
    epoch 0, best epoch, epochs to --target (as the fraction summaries hold; the option's
    percent is converted by `options.target_fraction`) and how many reached it, area under
    the test loss curve, the IQM, the final train loss; lr, val_accuracy_mean among the
    last columns."""
    spec = Spec(inits=("xavier", "he_normal"), seeds=(0, 1, 2), dataset="digits", epochs=3,
                hidden=(4,))
    acc = np.array([[[0.10, 0.50, 0.90, 0.80],     # best epoch 2, reaches 0.85 at 2
                     [0.10, 0.86, 0.70, 0.88],     # best epoch 3, reaches at 1
                     [0.10, 0.40, 0.60, 0.70]],    # best epoch 3, never reaches
                    [[0.10, 0.20, 0.30, 0.40]] * 3])
    test_loss = np.array([[[2.3, 1.0, 0.5, 0.4], [2.2, 0.9, 0.8, 0.6], [2.4, 1.2, 1.0, 0.9]],
                          [[2.0, 1.5, 1.2, 1.1]] * 3])
    train_loss = test_loss + 0.05
    result = RunResult(spec, {"train_loss": train_loss, "test_loss": test_loss,
                              "test_accuracy": acc})
    typed = {r.init: r for r in summary.summarize_run(result, target=0.85)}["xavier"]
    row = summary.flatten(typed)  # summary.csv's row
    assert row["epoch0_test_loss_mean"] == pytest.approx(np.mean([2.3, 2.2, 2.4]))
    assert row["epoch0_train_loss_mean"] == pytest.approx(np.mean([2.35, 2.25, 2.45]))
    assert row["train_loss_mean"] == pytest.approx(np.mean([0.45, 0.65, 0.95]))
    assert row["best_epoch_mean"] == pytest.approx(np.mean([2, 3, 3]))
    assert row["epochs_to_target_mean"] == pytest.approx(np.mean([2, 1]))
    assert row["target"] == 0.85 and row["reached_target"] == 2
    aucs = [np.trapezoid(c) if hasattr(np, "trapezoid") else np.trapz(c) for c in test_loss[0]]
    assert row["test_loss_auc_mean"] == pytest.approx(np.mean(aucs))
    assert row["test_accuracy_iqm"] == pytest.approx(sps.trim_mean([0.80, 0.88, 0.70], 0.25))
    assert row["test_accuracy_median"] == pytest.approx(0.80)
    assert row["seeds"] == 3 and row["diverged"] == 0
    assert {"lr", "val_accuracy_mean"} <= set(SUMMARY_COLUMNS[-4:])  # among the last


def test_tuned_csv_gives_the_chosen_rate_and_its_validation_score():
    spec = Spec(inits=("xavier", "he_normal"), seeds=(0, 1, 2), dataset="digits", epochs=1,
                hidden=(4,), lr=(0.001, 0.01))
    val = np.array([[[0.70, 0.80, np.nan], [0.60, 0.60, 0.60]],   # lr 0.001: (0.7+0.8+0)/3
                    [[0.50, 0.50, 0.50], [0.90, 0.92, 0.94]]])
    vals = np.stack([np.full_like(val, 0.1), val], axis=-1)
    loss = 1 - vals
    result = RunResult(spec, {"train_loss": loss, "test_loss": loss, "test_accuracy": vals,
                              "val_accuracy": vals})
    csv_rows = {r["init"]: r for r in summary.tuned_rows_csv(summary.summarize_lrs(result))}
    # A diverged seed counts as 0 validation accuracy: xavier's 0.001 scores 0.5 < 0.6.
    assert csv_rows["xavier"]["best_lr"] == 0.01
    assert csv_rows["xavier"]["val_score"] == pytest.approx(0.6)
    assert csv_rows["he_normal"]["best_lr"] == 0.01
    assert csv_rows["he_normal"]["val_score"] == pytest.approx(0.92)
    assert list(csv_rows["xavier"])[:2] == ["best_lr", "val_score"]


def test_target_is_typed_in_percent():
    from initbench.commands import options
    from initbench.errors import InitbenchError

    assert options.target_fraction(85) == pytest.approx(0.85)
    with pytest.raises(InitbenchError, match="percent"):
        options.target_fraction(0.85)  # the old fraction form is refused, not guessed
