"""Simulations that check the error rates of initbench's statistics (docs/statistics.md).

Each function draws its own data from `np.random.default_rng(seed)` and returns measured
rates, so the numbers in the docs can be re-run:
`python -c "from initbench import simulations as s; print(s.sequential_rates(1.0))"`.
Accuracies are in points here (units cancel: only ratios of effect, sd and margin matter).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from initbench import sequential, stats


@dataclass(frozen=True)
class SequentialRates:
    """Outcome of `sequential_rates`: rates over runs and comparisons; seeds used per run."""

    false_claim: float  # share of comparisons whose final CI excludes 0 (true difference 0)
    coverage: float  # share of final CIs that contain the true difference
    mean_seeds: float
    stopped_for_precision: float  # share of runs stopped by the precision rule


def sequential_rates(sd: float, precision: float = 0.5, max_seeds: int = 30,
                     num_comparisons: int = 1, true_diff: float = 0.0,
                     level: float = sequential.SEQUENTIAL_LEVEL, num_runs: int = 20_000,
                     seed: int = 0) -> SequentialRates:
    """Run the `--seeds auto` rule on normal paired differences (mean `true_diff`, sd `sd`).

    Each run trains rounds until `sequential.stopping_seeds` stops it, then every comparison's
    final Student t CI at `level` (the level the rule stopped on) is checked.
    """
    rng = np.random.default_rng(seed)
    d = rng.normal(true_diff, sd, size=(num_runs, num_comparisons, max_seeds))
    stop = sequential.stopping_seeds(d, precision, max_seeds, level)
    claims = covered = precise = 0
    for n in np.unique(stop):
        x = d[stop == n][:, :, :n]
        half = sequential.half_widths(x, level)
        mean = x.mean(axis=-1)
        claims += int(np.sum(np.abs(mean) > half))
        covered += int(np.sum(np.abs(mean - true_diff) <= half))
        precise += int(np.sum(np.all(half <= precision, axis=-1)))
    total = num_runs * num_comparisons
    return SequentialRates(
        false_claim=claims / total if true_diff == 0 else float("nan"),
        coverage=covered / total,
        mean_seeds=float(stop.mean()),
        stopped_for_precision=precise / num_runs,
    )


def holm_familywise_error(num_inits: int = 10, num_seeds: int = 5, pairs: str = "baseline",
                          seed_sd: float = 1.0, noise_sd: float = 0.5, num_runs: int = 4_000,
                          alpha: float = stats.ALPHA, seed: int = 0) -> tuple[float, float]:
    """P(at least one false "better"/"worse") with no true difference, Holm vs uncorrected.

    accuracy[run, init, seed] = seed effect (shared by every initializer on that seed,
    sd `seed_sd`) + independent noise (sd `noise_sd`); every initializer has the same mean.
    Returns (with Holm, without correction).
    """
    rng = np.random.default_rng(seed)
    shared = rng.normal(0.0, seed_sd, size=(num_runs, 1, num_seeds))
    acc = shared + rng.normal(0.0, noise_sd, size=(num_runs, num_inits, num_seeds))
    idx = np.array(stats.comparison_pairs(num_inits, 0, pairs))
    diffs = stats.paired_differences(acc[:, idx[:, 0]], acc[:, idx[:, 1]])
    p = stats.paired_t_test(diffs).p_value  # [num_runs, num_pairs]
    holm_any = np.any(stats.holm(p) < alpha, axis=-1)
    raw_any = np.any(p < alpha, axis=-1)
    return float(holm_any.mean()), float(raw_any.mean())


def tost_at_margin(num_seeds: int, sd: float, margin: float = 0.5, num_runs: int = 20_000,
                   alpha: float = stats.ALPHA, seed: int = 0) -> float:
    """Share of runs declared "equivalent" when the true difference is exactly +margin or
    -margin (half the runs each): TOST's type I error at the margin, at most alpha in theory."""
    rng = np.random.default_rng(seed)
    sign = np.where(np.arange(num_runs) % 2 == 0, 1.0, -1.0)[:, None]
    d = rng.normal(0.0, sd, size=(num_runs, num_seeds)) + sign * margin
    return float(np.mean(stats.tost(d, margin, alpha).equivalent))


def variance_components_mean(weight_sd: float, data_sd: float, noise_sd: float,
                             num_weight_seeds: int, num_data_seeds: int,
                             num_runs: int = 2_000, seed: int = 0) -> tuple[float, float, float]:
    """Mean estimated (weight, data, residual) variances over simulated crossed designs."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, weight_sd, size=(num_runs, num_weight_seeds, 1))
    k = rng.normal(0.0, data_sd, size=(num_runs, 1, num_data_seeds))
    y = w + k + rng.normal(0.0, noise_sd, size=(num_runs, num_weight_seeds, num_data_seeds))
    est = [stats.variance_components(y[r]) for r in range(num_runs)]
    return (float(np.mean([e.weight for e in est])), float(np.mean([e.data for e in est])),
            float(np.mean([e.residual for e in est])))
