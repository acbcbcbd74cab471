"""Per-initializer summary rows of a run: seed statistics, curve metrics, paired verdicts.

Pure NumPy over `RunResult.metrics` ([init, seed, epoch]); the rows feed summary.csv,
the tables and the exports.
"""

from __future__ import annotations

import numpy as np

from initbench import stats
from initbench.results import RunResult

SUMMARY_COLUMNS = [
    "rank", "dataset", "init", "seeds", "diverged",
    *(f"test_accuracy_{k}" for k in ("mean", "std", "sem", "min", "max", "median",
                                     "ci_low", "ci_high")),
    *(f"test_loss_{k}" for k in ("mean", "std", "ci_low", "ci_high")),
    "train_loss_mean", "epoch0_test_loss_mean", "epoch0_train_loss_mean", "best_epoch_mean",
    "target", "epochs_to_target_mean", "reached_target", "test_loss_auc_mean",
    "baseline", "accuracy_diff_mean", "accuracy_diff_ci_low", "accuracy_diff_ci_high",
    "p_better", "verdict", "loss_diff_mean", "loss_diff_ci_low", "loss_diff_ci_high",
    "loss_verdict", "ci_method", "ci_level", "bootstrap_resamples", "paired_ci_method",
]


def summarize_run(result: RunResult, baseline: str | None = None,
                  target: float | None = None) -> list[dict]:
    """One row per initializer, ranked by mean final test accuracy (best first).

    `baseline` (default: the first initializer) is compared seed by seed with every other;
    `target` is the test accuracy whose first epoch is reported (NaN = never reached).
    """
    inits = result.inits
    baseline = baseline or inits[0]
    base = inits.index(baseline)
    acc, loss = result.metrics["test_accuracy"], result.metrics["test_loss"]
    final_acc, final_loss = acc[:, :, -1], loss[:, :, -1]
    rows = []
    for i, init in enumerate(inits):
        acc_summary = stats.summarize(final_acc[i])
        loss_summary = stats.summarize(final_loss[i])
        row = {
            "dataset": result.dataset, "init": init, "seeds": len(result.seeds),
            "diverged": acc_summary.n_diverged,
            **{f"test_accuracy_{k}": getattr(acc_summary, k)
               for k in ("mean", "std", "sem", "min", "max", "median", "ci_low", "ci_high")},
            **{f"test_loss_{k}": getattr(loss_summary, k)
               for k in ("mean", "std", "ci_low", "ci_high")},
            "train_loss_mean": _mean(result.metrics["train_loss"][i, :, -1]),
            "epoch0_test_loss_mean": _mean(loss[i, :, 0]),
            "epoch0_train_loss_mean": _mean(result.metrics["train_loss"][i, :, 0]),
            "best_epoch_mean": _mean(stats.best_epoch(acc[i])),
            "test_loss_auc_mean": _mean(stats.area_under_curve(loss[i])),
            "target": target if target is not None else "",
            "baseline": baseline,
            "ci_method": stats.CI_METHOD, "ci_level": stats.CI_LEVEL,
            "bootstrap_resamples": stats.BOOTSTRAP_RESAMPLES,
            "paired_ci_method": stats.PAIRED_CI_METHOD,
        }
        if target is not None:
            hit = stats.epochs_to_target(acc[i], target)
            row["epochs_to_target_mean"] = _mean(hit)
            row["reached_target"] = int(np.isfinite(hit).sum())
        if i != base:
            acc_pair = stats.compare_paired(final_acc[i], final_acc[base], higher_is_better=True)
            loss_pair = stats.compare_paired(final_loss[i], final_loss[base],
                                             higher_is_better=False)
            row.update({
                "accuracy_diff_mean": acc_pair.mean_diff, "accuracy_diff_ci_low": acc_pair.ci_low,
                "accuracy_diff_ci_high": acc_pair.ci_high, "p_better": acc_pair.p_better,
                "verdict": acc_pair.verdict, "loss_diff_mean": loss_pair.mean_diff,
                "loss_diff_ci_low": loss_pair.ci_low, "loss_diff_ci_high": loss_pair.ci_high,
                "loss_verdict": loss_pair.verdict,
            })
        else:
            row["verdict"] = row["loss_verdict"] = "baseline"
        rows.append(row)
    rows.sort(key=lambda r: -r["test_accuracy_mean"] if np.isfinite(r["test_accuracy_mean"])
              else np.inf)
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


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
                    target: float | None = None) -> list[dict]:
    """`summarize_run` for a reopened run: baseline and target default to those in its meta.

    Raises InitbenchError for a baseline that is not one of the run's rows or a target
    outside (0, 1].
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
    if target is None:
        target = result.meta.get("target")
    if target is not None and not 0 < target <= 1:
        raise InitbenchError(f"--target must be an accuracy in (0, 1], got {target}.")
    return summarize_run(result, baseline, target)
