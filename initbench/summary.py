"""A run's summary computed: per-initializer rows of seed statistics, curve metrics and
paired verdicts, the comparison family, the tuned cells of a multi-rate grid, seed plans.

Pure NumPy over `RunResult.metrics` ([init, seed, epoch]). The records the rows are built
from, and summary.csv's columns, live in `summary_rows`; `summarize_all` returns a
`RunSummary` and never changes the `RunResult` it reads.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from initbench import stats
from initbench.results import RunResult
from initbench.summary_rows import (
    CORRECTION,
    CurveMeans,
    DivergenceRate,
    Family,
    PairRow,
    RunSummary,
    SeedRule,
    SummaryRow,
    TargetReach,
    VersusBaseline,
    flatten,
)

PAIRS = ("baseline", "all")


def lr_scores(val_final: np.ndarray) -> np.ndarray:
    """[init, lr] selection scores from final validation accuracies [init, lr, slot]: the
    mean over seeds with a diverged cell (NaN) counted as 0 accuracy, so divergence counts
    against its rate; -inf where every seed diverged (such a rate is never chosen)."""
    values = np.asarray(val_final, float)
    finite = np.isfinite(values)
    scores = np.where(finite, values, 0.0).mean(axis=-1)
    return np.where(finite.any(axis=-1), scores, -np.inf)


def choose_lrs(val_final: np.ndarray) -> list[int | None]:
    """Per initializer, the index of the rate with the highest `lr_scores` (the first of
    equals), or None when every rate diverged on every seed. Only validation data enters:
    test accuracy is reported at the chosen rate, never used to choose it."""
    scores = lr_scores(val_final)
    return [int(np.argmax(row)) if np.isfinite(row).any() else None for row in scores]


def tuned_result(result: RunResult) -> tuple[RunResult, list[float | None]]:
    """(each initializer at its chosen rate as an [init, seed, epoch] result, the chosen
    rates). Rates are chosen on final validation accuracy (`choose_lrs`); an initializer
    with no usable rate gets NaN curves. Paired by seed as every grid is: the same seed saw
    the same minibatches at every rate."""
    val = result.metrics["val_accuracy"][..., -1]
    best = choose_lrs(val)
    picked = {}
    for name, values in result.metrics.items():
        rows = [values[i, b] if b is not None else np.full(values.shape[2:], np.nan)
                for i, b in enumerate(best)]
        picked[name] = np.stack(rows)
    rates = [None if b is None else result.spec.lr[b] for b in best]
    meta = {**result.meta, "tuned_lrs": dict(zip(result.inits, rates))}
    return RunResult(result.spec, picked, meta), rates


def summarize_lrs(result: RunResult, baseline: str | None = None,
                  target: float | None = None, pairs: str = "baseline",
                  margin: float | None = None) -> RunSummary:
    """A multi-rate grid's summary: its tuned result and rows, and its per-rate rows.

    Per rate: `summarize_run` of that rate alone, every initializer against the baseline at
    the same rate. Tuned: each initializer at its own best rate against the baseline at the
    baseline's best rate, paired by seed, with the same statistics; rows carry `lr` (the
    chosen rate) and `val_accuracy_mean`."""
    tuned, rates = tuned_result(result)
    val = result.metrics["val_accuracy"][..., -1]
    per_rate = []
    for k, lr in enumerate(result.spec.lr):
        rows = summarize_run(result.at_lr(lr), baseline, target, pairs, margin)
        per_rate.extend(dataclasses.replace(
            row, lr=lr, val_accuracy_mean=_mean(val[result.inits.index(row.init), k]))
            for row in rows)
    rows = summarize_run(tuned, baseline, target, pairs, margin)
    tuned_val = tuned.metrics["val_accuracy"][..., -1]
    rows = [dataclasses.replace(row, lr=rates[result.inits.index(row.init)],
                                val_accuracy_mean=_mean(tuned_val[result.inits.index(row.init)]))
            for row in rows]
    return RunSummary(result, tuple(rows), tuple(per_rate), tuned)


def tuned_rows_csv(summary: RunSummary) -> list[dict]:
    """tuned.csv's rows: `best_lr` and the selection score (`lr_scores`) beside each of a
    multi-rate run's tuned rows."""
    result = summary.result
    scores = lr_scores(result.metrics["val_accuracy"][..., -1])
    out = []
    for row in summary.rows:
        i = result.inits.index(row.init)
        k = None if row.lr is None else result.spec.lr.index(row.lr)
        out.append({"best_lr": row.lr, "val_score": None if k is None else float(scores[i, k]),
                    **flatten(row)})
    return out


def num_looks(result: RunResult) -> int:
    """How many seed sets the verdicts were looked at with: the distinct seed sets among the
    runs a report merges, or those of a run folder rewritten with more seeds (`seed_looks`);
    1 for a single run or a side-by-side merge."""
    continued = len({tuple(look) for look in result.meta.get("seed_looks") or [()]})
    merged = result.meta.get("merged_from") or []
    if result.meta.get("mixed_settings") or len(merged) < 2:
        return continued
    return max(continued, len({tuple(sorted(run.get("seeds") or ())) for run in merged}))


def paired_level(result: RunResult) -> float:
    """The family level of a run's paired verdicts. CI_LEVEL for one fixed-seed run;
    SEQUENTIAL_LEVEL for `--seeds auto`; for a merge of L runs with different seeds
    (`num_looks`), 1 - ALPHA / L, Bonferroni over the looks: a user may stop at the first
    look that says "better", and 1 - ALPHA / L keeps that below ALPHA whatever the stopping
    rule (--seeds auto's 97% does not: simulations.peeking_false_claims, docs/statistics.md).
    The strictest applies when several do."""
    from initbench import sequential

    level = sequential.SEQUENTIAL_LEVEL if result.spec.auto_seeds else stats.CI_LEVEL
    return max(level, 1.0 - stats.ALPHA / num_looks(result))


def compare_family(result: RunResult, baseline: str | None = None, pairs: str = "baseline",
                   margin: float | None = None) -> list[PairRow]:
    """Every comparison of the family `pairs` ("baseline": each initializer minus the
    baseline; "all": every pair, in `stats.comparison_pairs` order) on final test accuracy,
    Holm-corrected together. Each row's interval is `stats.decision_intervals`' (the t
    interval at its Holm step's level; with `margin`, a fraction, the Bonferroni one where
    either lies inside +/- margin), and its verdict is read off that interval: "equivalent"
    when it lies inside +/- margin, else better/worse when it excludes 0."""
    inits = result.inits
    base = inits.index(baseline or inits[0])
    level = paired_level(result)
    alpha = 1.0 - level
    final = seed_units(result, result.metrics["test_accuracy"][:, :, -1])
    family = stats.comparison_pairs(len(inits), base, pairs)
    if not family:
        return []
    diffs = np.stack([stats.paired_differences(final[i], final[j]) for i, j in family])
    test = stats.paired_t_test(diffs)
    p = np.atleast_1d(test.p_value)
    p_holm = stats.holm(p)
    shown = stats.decision_intervals(diffs, alpha, margin)
    row_levels = np.atleast_1d(shown.level)
    # d_z's CI at the same level as Δ's: it inverts the same t statistic, so it excludes 0
    # exactly when Δ's interval does (no second interval that could disagree).
    effect = stats.effect_size(diffs, np.where(np.isfinite(row_levels), row_levels, level))
    rows = []
    for k, (i, j) in enumerate(family):
        d = diffs[k][np.isfinite(diffs[k])]
        n = int(d.size)
        row_level = float(row_levels[k])
        low = float(np.atleast_1d(shown.ci_low)[k])
        high = float(np.atleast_1d(shown.ci_high)[k])
        mean = float(np.mean(d)) if n else float("nan")
        rows.append(PairRow(
            a=inits[i], b=inits[j], seeds=n, diff_mean=mean, diff_ci_low=low,
            diff_ci_high=high, diff_sd=float(np.atleast_1d(test.sd)[k]),
            p_value=float(p[k]), p_value_holm=float(p_holm[k]),
            d_z=float(np.atleast_1d(effect.d_z)[k]),
            d_z_ci_low=float(np.atleast_1d(effect.ci_low)[k]),
            d_z_ci_high=float(np.atleast_1d(effect.ci_high)[k]),
            verdict=stats.interval_verdict(low, high, n, margin),
            ci_level=level, correction=CORRECTION, equivalence_margin=margin,
            diff_ci_level=row_level, holm_divisor=float(np.atleast_1d(shown.divisor)[k])))
    return rows


def seed_units(result: RunResult, values: np.ndarray) -> np.ndarray:
    """Final values [init, slot] as [init, weight seed], the independent unit.

    Under `--data-seeds K` the K data orders of a weight seed share its weights, so their
    results are correlated; treating the W x K slots as independent would make CIs and
    paired tests over-confident. Each weight seed's value is the mean of its data orders
    that did not diverge (NaN when all did). With K = 1 `values` is returned unchanged.
    """
    k = result.spec.data_seeds
    if k == 1:
        return values
    grouped = np.reshape(values, (values.shape[0], -1, k))  # slots are seed-major
    finite = np.isfinite(grouped)
    counts = finite.sum(axis=2)
    sums = np.where(finite, grouped, 0.0).sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def variance_shares(result: RunResult, final_acc) -> stats.VarianceComponents | None:
    """The variance components of one initializer's final accuracies [slot] over weight seed
    and data order (None when K = 1)."""
    k = result.spec.data_seeds
    if k == 1:
        return None
    return stats.variance_components(np.reshape(final_acc, (-1, k)))  # slots are seed-major


def summarize_run(result: RunResult, baseline: str | None = None,
                  target: float | None = None, pairs: str = "baseline",
                  margin: float | None = None) -> list[SummaryRow]:
    """One row per initializer, ranked by mean final test accuracy (best first).

    `baseline` (default: the first initializer) is compared seed by seed with every other;
    `target` is the test accuracy whose first epoch is reported (NaN = never reached).
    The accuracy verdicts are Holm-corrected over the family `pairs` (see `compare_family`),
    with TOST against `margin` (a fraction) when given; a `--seeds auto` run reports its
    paired CIs and verdicts at `sequential.SEQUENTIAL_LEVEL`.
    """
    inits = result.inits
    baseline = baseline or inits[0]
    base = inits.index(baseline)
    level = paired_level(result)
    compared = compare_family(result, baseline, pairs, margin)
    family = {(row.a, row.b): row for row in compared}
    acc, loss = result.metrics["test_accuracy"], result.metrics["test_loss"]
    slot_acc = acc[:, :, -1]
    # Statistics over independent units: weight seeds (their data orders averaged).
    final_acc = seed_units(result, slot_acc)
    final_loss = seed_units(result, loss[:, :, -1])
    train_loss = result.metrics["train_loss"]
    auto = result.meta.get("seeds_auto") or {}
    table = Family(baseline, pairs, level, margin)  # one object: the same on every row
    rule = SeedRule("auto" if result.spec.auto_seeds else "fixed", auto.get("stop_reason"))
    rows = []
    for i, init in enumerate(inits):
        acc_summary = stats.summarize(final_acc[i], level)
        # An accuracy lies in [0, 1], so clipping its CI there never loses coverage (with 2
        # seeds the t interval is 12.7 times as wide as their range).
        acc_summary = dataclasses.replace(acc_summary,
                                          ci_low=max(acc_summary.ci_low, 0.0),
                                          ci_high=min(acc_summary.ci_high, 1.0))
        reach = None
        if target is not None:
            hit = stats.epochs_to_target(acc[i], target)
            reach = TargetReach(target, _mean(hit), int(np.isfinite(hit).sum()))
        versus = None
        if i != base:
            pair = (family.get((init, baseline)) or family[(baseline, init)]).toward(init)
            versus = VersusBaseline(
                pair=pair,
                accuracy=stats.compare_paired(final_acc[i], final_acc[base],
                                              higher_is_better=True, level=level),
                loss=stats.compare_paired(final_loss[i], final_loss[base],
                                          higher_is_better=False, level=level),
                mde_80=_mde_80(pair, len(compared), level))
        rows.append(SummaryRow(
            rank=0, dataset=result.dataset, init=init, seeds=len(result.seeds),
            accuracy=acc_summary, loss=stats.summarize(final_loss[i], level),
            iqm=stats.interquartile_mean(final_acc[i]),
            divergence=DivergenceRate(*stats.divergence_rate(slot_acc[i])),
            curves=CurveMeans(train_loss=_mean(train_loss[i, :, -1]),
                              epoch0_test_loss=_mean(loss[i, :, 0]),
                              epoch0_train_loss=_mean(train_loss[i, :, 0]),
                              best_epoch=_mean(stats.best_epoch(acc[i])),
                              test_loss_auc=_mean(stats.area_under_curve(loss[i]))),
            reach=reach, family=table, versus=versus, seed_rule=rule,
            variance=variance_shares(result, slot_acc[i]),
            lr=None if result.spec.multi_lr else result.spec.lr[0],
            val_accuracy_mean=(_mean(result.metrics["val_accuracy"][i, :, -1])
                               if "val_accuracy" in result.metrics else None)))
    rows.sort(key=lambda r: -r.accuracy.mean if np.isfinite(r.accuracy.mean) else np.inf)
    return [dataclasses.replace(row, rank=rank) for rank, row in enumerate(rows, start=1)]


def _mde_80(pair: PairRow, num_comparisons: int, level: float) -> float:
    """The difference the verdict's test finds 80% of the time with `pair`'s seeds (Holm's
    first step over the family, `plan_alpha`); NaN below 2 seeds."""
    from initbench import power

    if pair.seeds < 2:
        return float("nan")
    alpha = plan_alpha(num_comparisons, level)
    return float(power.minimum_detectable_effect(pair.seeds, pair.diff_sd, alpha=alpha))


def plan_alpha(num_comparisons: int, level: float) -> float:
    """The per-comparison alpha that seed plans and mde_80 use: Holm's first step over the
    family (`power.family_alpha`), at the run's family level."""
    from initbench import power

    return power.family_alpha(max(num_comparisons, 1), level)


@dataclass(frozen=True)
class PlanRow:
    """Seed planning for one comparison with the baseline, in accuracy points: the sd of the
    per-seed paired differences, the seeds needed for 80% power for a true difference of
    `effect_pt`, and the difference detectable with 80% power at `seeds`, both for the
    verdict the run gives: a two-sided paired t test at `alpha` = (1 - family level) /
    `family_size`, Holm's first step over the run's family (so the power holds for every
    comparison). `seeds_needed` is None where the sd is 0 or unknown (fewer than 2 seeds)."""

    init: str
    baseline: str
    seeds: int
    diff_mean_pt: float
    diff_sd_pt: float
    effect_pt: float
    seeds_needed: int | None
    mde_80_pt: float
    family_size: int = 1
    alpha: float = stats.ALPHA


PLAN_COLUMNS = [f.name for f in dataclasses.fields(PlanRow)]


def _seeds_needed(effect_pt: float, sd_pt: float, init: str, baseline: str,
                  alpha: float) -> int:
    """`power.seeds_needed`, or InitbenchError when no search bound is enough."""
    from initbench import power
    from initbench.errors import InitbenchError

    try:
        return power.seeds_needed(effect_pt, sd_pt, alpha=alpha)
    except ValueError:
        raise InitbenchError(
            f"--effect {effect_pt:g}: {init} vs {baseline} (sd of the differences "
            f"{sd_pt:.3g} points) would need more than {power.MAX_SEEDS_SEARCHED:,} seeds; "
            "give a larger --effect.") from None


def plan_rows(result: RunResult, rows: list[SummaryRow], effect_pt: float) -> list[PlanRow]:
    """One `PlanRow` per comparison of `result` with the baseline of its summary `rows`, in
    rank order. `effect_pt` (> 0, points) is the true difference the next run should detect.
    Power is for the run's verdicts: its family (`pairs` of `rows`, so k - 1 or k(k-1)/2
    comparisons) at its family level (0.97 for `--seeds auto` and merged runs), tested at
    Holm's first-step alpha (`plan_alpha`)."""
    from initbench import power

    baseline = rows[0].family.baseline
    pairs = {row.a: row for row in compare_family(result, baseline, "baseline")}
    k = len(result.inits)
    family_size = k * (k - 1) // 2 if rows[0].family.pairs == "all" else k - 1
    alpha = plan_alpha(family_size, paired_level(result))
    out = []
    for row in rows:
        if row.init == baseline:
            continue
        pair = pairs[row.init]
        sd = 100 * pair.diff_sd
        ok = pair.seeds >= 2 and np.isfinite(sd)
        out.append(PlanRow(
            init=row.init, baseline=baseline, seeds=pair.seeds,
            diff_mean_pt=100 * pair.diff_mean, diff_sd_pt=sd, effect_pt=effect_pt,
            seeds_needed=(_seeds_needed(effect_pt, sd, row.init, baseline, alpha)
                          if ok and sd > 0 else None),
            mde_80_pt=(100 * float(power.minimum_detectable_effect(pair.seeds, pair.diff_sd,
                                                                   alpha=alpha))
                       if ok else float("nan")),
            family_size=family_size, alpha=alpha))
    return out


def mean_curves(result: RunResult, metric: str) -> np.ndarray:
    """[init, epoch] mean over seeds of the finite values (NaN where every seed diverged)."""
    values = result.metrics[metric]
    finite = np.isfinite(values)
    counts = finite.sum(axis=1)
    sums = np.where(finite, values, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _mean(values: np.ndarray) -> float:
    finite = np.asarray(values, float)[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def summarize_saved(result: RunResult, baseline: str | None = None,
                    target: float | None = None, pairs: str | None = None,
                    margin_pt: float | None = None) -> RunSummary:
    """`summarize_all` for a reopened run: baseline, target, pairs and the equivalence
    margin (points) default to those in its meta.

    Raises InitbenchError for a baseline that is not one of the run's rows, pairs other than
    baseline/all or a margin that is not positive (`target` is a fraction already checked:
    `spec.target_fraction` for --target, `runfolder.read_run` for a recorded one).
    """
    from initbench.errors import InitbenchError

    if baseline is None:
        recorded = result.meta.get("baseline")
        baseline = recorded if recorded in result.inits else None
    elif baseline not in result.inits and result.labels is None:
        baseline = result.spec.resolve_init(baseline, "--baseline")  # an alias counts
    elif baseline not in result.inits:
        raise InitbenchError(
            f"--baseline '{baseline}' is not in the run; choose one of: {', '.join(result.inits)}."
        )
    if target is None:  # checked when the folder was read (`runfolder.read_run`)
        target = result.meta.get("target")
    pairs, margin_pt = resolve_family(
        pairs if pairs is not None else result.meta.get("pairs"),
        margin_pt if margin_pt is not None else result.meta.get("equivalence_margin"))
    return summarize_all(result, baseline, target, pairs, _fraction(margin_pt))


def summarize_all(result: RunResult, baseline: str | None = None, target: float | None = None,
                  pairs: str = "baseline", margin: float | None = None) -> RunSummary:
    """The summary of `result`: its `summarize_run` rows, or for a multi-rate grid its tuned
    and per-rate rows (`summarize_lrs`). `result` is left as it was."""
    if not result.multi_lr:
        return RunSummary(result, tuple(summarize_run(result, baseline, target, pairs, margin)))
    return summarize_lrs(result, baseline, target, pairs, margin)


def view(result: RunResult) -> RunResult:
    """What tables and figures show of `result` without its summary: each initializer at its
    chosen rate for a multi-rate grid (`tuned_result`), else `result` itself."""
    return tuned_result(result)[0] if result.multi_lr else result


def resolve_family(pairs: str | None, margin_pt: float | None) -> tuple[str, float | None]:
    """(pairs, margin in points) checked: pairs defaults to "baseline"; InitbenchError for
    pairs not in PAIRS or a margin that is not a positive number."""
    import math

    from initbench.errors import InitbenchError, unknown_name

    pairs = "baseline" if pairs is None else pairs
    if pairs not in PAIRS:
        raise unknown_name("--pairs value", pairs, PAIRS)
    if margin_pt is not None and (not math.isfinite(margin_pt) or margin_pt <= 0):
        raise InitbenchError(f"--equivalence-margin must be a positive number of accuracy "
                             f"points, got {margin_pt:g}.")
    return pairs, margin_pt


def _fraction(points: float | None) -> float | None:
    return None if points is None else points / 100.0
