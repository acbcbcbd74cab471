"""What a run's summary is: typed parts, the rows they make, and the one flattening into
summary.csv's columns.

A `SummaryRow` is built from the statistics that already exist as records
(`stats.Summary`, `stats.Paired`, `stats.VarianceComponents`, the family's `PairRow`) and
a few small ones here; `flatten` writes it as summary.csv's row, the only place the column
names are declared (`SUMMARY_COLUMNS`, in the order docs/files.md lists them; columns are
only ever added at the end). `summary.summarize_all` computes a `RunSummary` from a
`RunResult` and leaves the result as it was.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from initbench import stats
from initbench.results import RunResult

CORRECTION = "holm"
BASELINE_VERDICT = "baseline"  # the verdict column of the baseline's own row


@dataclass(frozen=True)
class PairRow:
    """One comparison of a run's family: final test accuracy of `a` minus `b`, seed by seed
    (fractions). `seeds` counts the seeds where both are finite. `ci_level` is the family's
    level (0.95, 0.97 for `--seeds auto` and merged runs); `p_value_holm` is Holm-adjusted
    over every comparison of the family. `diff_ci_low`/`diff_ci_high` is the interval that
    decided the verdict: the Student t interval at `diff_ci_level` = 1 - (1 - ci_level) /
    `holm_divisor`, the level of the Holm step that tested it (`stats.holm_divisors`). The
    verdict ("a is better/worse than b", equivalent, no clear difference) is read off that
    interval (`stats.interval_verdict`). The d_z CI is at `diff_ci_level` too. Its fields
    are pairs.csv's columns, in order."""

    a: str
    b: str
    seeds: int
    diff_mean: float
    diff_ci_low: float
    diff_ci_high: float
    diff_sd: float
    p_value: float
    p_value_holm: float
    d_z: float
    d_z_ci_low: float
    d_z_ci_high: float
    verdict: str
    ci_level: float
    correction: str
    equivalence_margin: float | None
    diff_ci_level: float = float("nan")
    holm_divisor: float = float("nan")

    def toward(self, name: str) -> PairRow:
        """This comparison read as `name` minus the other (the family lists each pair once,
        in index order): differences, intervals and d_z change sign, better and worse swap."""
        flip = -1.0 if self.a != name else 1.0
        d_z_low, d_z_high = sorted((flip * self.d_z_ci_low, flip * self.d_z_ci_high))
        low, high = sorted((flip * self.diff_ci_low, flip * self.diff_ci_high))
        verdict = self.verdict
        if flip < 0 and verdict in (stats.VERDICT_BETTER, stats.VERDICT_WORSE):
            verdict = ({stats.VERDICT_BETTER: stats.VERDICT_WORSE,
                        stats.VERDICT_WORSE: stats.VERDICT_BETTER}[verdict])
        other = self.b if flip > 0 else self.a
        return dataclasses.replace(self, a=name, b=other, diff_mean=flip * self.diff_mean,
                                   diff_ci_low=low, diff_ci_high=high, d_z=flip * self.d_z,
                                   d_z_ci_low=d_z_low, d_z_ci_high=d_z_high, verdict=verdict)


PAIR_COLUMNS = [f.name for f in dataclasses.fields(PairRow)]


@dataclass(frozen=True)
class Family:
    """How a table's verdicts were made; the same on every row of it. `level` is the one
    level of the table: the per-initializer CIs and the family level of the verdicts (0.95;
    0.97 for `--seeds auto`; 1 - 0.05/L for a merge of L runs with different seeds).
    `pairs` is the comparison family ("baseline" or "all"), `equivalence_margin` the TOST
    margin (a fraction; None without `--equivalence-margin`)."""

    baseline: str
    pairs: str
    level: float
    equivalence_margin: float | None
    correction: str = CORRECTION
    ci_method: str = stats.CI_METHOD
    paired_ci_method: str = stats.PAIRED_CI_METHOD
    bootstrap_resamples: int = 0  # the CI is a t interval: no resampling


@dataclass(frozen=True)
class CurveMeans:
    """Means over seeds (finite values only) of numbers read off one initializer's curves:
    the final train loss, the losses before training (epoch 0), the epoch of the highest
    test accuracy and the area under the test-loss curve (nats x epochs)."""

    train_loss: float
    epoch0_test_loss: float
    epoch0_train_loss: float
    best_epoch: float
    test_loss_auc: float


@dataclass(frozen=True)
class TargetReach:
    """`--target` (a test accuracy, a fraction): the mean first epoch reaching it over the
    seeds that did (NaN when none did) and how many did."""

    target: float
    epochs_mean: float
    reached: int


@dataclass(frozen=True)
class DivergenceRate:
    """The share of (seed, data order) slots that diverged, with its exact 95% CI."""

    rate: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class SeedRule:
    """How the seeds were chosen ("fixed" or "auto") and why `--seeds auto` stopped."""

    rule: str
    stop_reason: str | None = None


@dataclass(frozen=True)
class VersusBaseline:
    """An initializer against the baseline on the same seeds, final epoch.

    `pair` is the family's comparison (`PairRow`) read as this initializer minus the
    baseline: the interval that decided the verdict, the verdict, p-values, d_z, the sd of
    the differences. `accuracy` is `stats.compare_paired` of final test accuracy, read for
    its mean difference and P(better) (its own interval is uncorrected; `pair`'s decides).
    `loss` is the same for the final test loss, with its verdict. `mde_80` is the difference
    detectable with 80% power with these seeds by the verdict's test."""

    pair: PairRow
    accuracy: stats.Paired
    loss: stats.Paired
    mde_80: float


@dataclass(frozen=True)
class SummaryRow:
    """One initializer of a run: its final-epoch statistics over seeds and its paired
    comparison with the baseline, as typed parts; `flatten` gives summary.csv's row.

    Accuracies are fractions. `accuracy` (final test accuracy) and `loss` (final test loss)
    are over weight seeds: under `--data-seeds K > 1` each the mean of its K data orders
    (`summary.seed_units`); `seeds` counts the weight seeds. `accuracy`'s CI is the Student
    t interval at the table's level, clipped to [0, 1]. `iqm` is the interquartile mean of
    final accuracy. `versus` is None for the baseline's own row; `reach` is None without a
    target; `variance` (the shares of the variance of final accuracy due to the weight
    seed, the data order and the rest) is None unless K > 1. `lr` is the row's learning
    rate (its chosen one for a tuned row) and `val_accuracy_mean` its mean final validation
    accuracy, where there is a validation split."""

    rank: int
    dataset: str
    init: str
    seeds: int
    accuracy: stats.Summary
    loss: stats.Summary
    iqm: float
    divergence: DivergenceRate
    curves: CurveMeans
    reach: TargetReach | None
    family: Family
    versus: VersusBaseline | None
    seed_rule: SeedRule
    variance: stats.VarianceComponents | None
    lr: float | None = None
    val_accuracy_mean: float | None = None

    @property
    def diverged(self) -> int:
        """Weight seeds whose final accuracy is not finite (left out of the statistics)."""
        return self.accuracy.n_diverged

    @property
    def all_diverged(self) -> bool:
        return self.diverged == self.seeds

    @property
    def verdict(self) -> str:
        """The accuracy verdict against the baseline ("baseline" on the baseline's row)."""
        return BASELINE_VERDICT if self.versus is None else self.versus.pair.verdict

    @property
    def loss_verdict(self) -> str:
        return BASELINE_VERDICT if self.versus is None else self.versus.loss.verdict


@dataclass(frozen=True)
class RunSummary:
    """What a run's tables, figures and files say, computed once (`summary.summarize_all`)
    from `result`, which it leaves as it was.

    `rows`: one per initializer, ranked (best mean final test accuracy first); for a grid of
    several rates, each initializer at its chosen rate against the baseline at its own
    (`tuned`, the [init, seed, epoch] result of those cells). `per_rate`: for several rates,
    one row per (initializer, rate), each rate summarized alone; empty otherwise."""

    result: RunResult
    rows: tuple[SummaryRow, ...]
    per_rate: tuple[SummaryRow, ...] = ()
    tuned: RunResult | None = None

    @property
    def view(self) -> RunResult:
        """What tables and figures show: the tuned cells of a multi-rate run, else the run."""
        return self.tuned if self.tuned is not None else self.result

    def csv_rows(self) -> list[dict]:
        """summary.csv's rows: one per (initializer, rate) with several rates, else `rows`."""
        return [flatten(row) for row in (self.per_rate or self.rows)]


# summary.csv's columns, in order, each with where its value lives in a `SummaryRow` (a
# dotted path; None when a part on the way is None, e.g. a difference on the baseline's
# row). The first block is the first release's; later columns were appended.
_ACC_STATS = ("mean", "std", "sem", "min", "max", "median", "ci_low", "ci_high")
_LOSS_STATS = ("mean", "std", "ci_low", "ci_high")
COLUMN_SOURCES: dict[str, str] = {
    "rank": "rank", "dataset": "dataset", "init": "init", "seeds": "seeds",
    "diverged": "diverged",
    **{f"test_accuracy_{k}": f"accuracy.{k}" for k in _ACC_STATS},
    **{f"test_loss_{k}": f"loss.{k}" for k in _LOSS_STATS},
    "train_loss_mean": "curves.train_loss",
    "epoch0_test_loss_mean": "curves.epoch0_test_loss",
    "epoch0_train_loss_mean": "curves.epoch0_train_loss",
    "best_epoch_mean": "curves.best_epoch",
    "target": "reach.target", "epochs_to_target_mean": "reach.epochs_mean",
    "reached_target": "reach.reached",
    "test_loss_auc_mean": "curves.test_loss_auc",
    "baseline": "family.baseline",
    "accuracy_diff_mean": "versus.accuracy.mean_diff",
    "accuracy_diff_ci_low": "versus.pair.diff_ci_low",
    "accuracy_diff_ci_high": "versus.pair.diff_ci_high",
    "p_better": "versus.accuracy.p_better",
    "verdict": "verdict",
    "loss_diff_mean": "versus.loss.mean_diff",
    "loss_diff_ci_low": "versus.loss.ci_low", "loss_diff_ci_high": "versus.loss.ci_high",
    "loss_verdict": "loss_verdict",
    "ci_method": "family.ci_method", "ci_level": "family.level",
    "bootstrap_resamples": "family.bootstrap_resamples",
    "paired_ci_method": "family.paired_ci_method",
    # appended after the first release
    "test_accuracy_iqm": "iqm",
    "diverged_rate": "divergence.rate", "diverged_rate_ci_low": "divergence.ci_low",
    "diverged_rate_ci_high": "divergence.ci_high",
    "pairs": "family.pairs", "correction": "family.correction",
    "p_value": "versus.pair.p_value", "p_value_holm": "versus.pair.p_value_holm",
    "d_z": "versus.pair.d_z", "d_z_ci_low": "versus.pair.d_z_ci_low",
    "d_z_ci_high": "versus.pair.d_z_ci_high",
    "accuracy_diff_sd": "versus.pair.diff_sd",
    "mde_80": "versus.mde_80",
    "equivalence_margin": "family.equivalence_margin",
    "paired_ci_level": "family.level",
    "seeds_rule": "seed_rule.rule", "stop_reason": "seed_rule.stop_reason",
    "var_share_weights": "variance.weight_share", "var_share_data": "variance.data_share",
    "var_share_residual": "variance.residual_share",
    "lr": "lr", "val_accuracy_mean": "val_accuracy_mean",
    "accuracy_diff_ci_level": "versus.pair.diff_ci_level",
    "holm_divisor": "versus.pair.holm_divisor",
}
SUMMARY_COLUMNS = list(COLUMN_SOURCES)
# tuned.csv: one row per initializer at its chosen rate (`best_lr`, None when every rate
# diverged on every seed), its validation score, then the summary of those cells.
TUNED_COLUMNS = ["best_lr", "val_score", *SUMMARY_COLUMNS]


def _at(row: SummaryRow, path: str):
    value = row
    for name in path.split("."):
        if value is None:
            return None
        value = getattr(value, name)
    return value


def flatten(row: SummaryRow) -> dict:
    """`row` as summary.csv's row: {column: value} in `SUMMARY_COLUMNS` order (also the
    JSON document's summary rows and `export --format csv`)."""
    return {column: _at(row, path) for column, path in COLUMN_SOURCES.items()}
