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


def mean_ci_coverage(num_seeds: int, distribution: str = "normal", method: str = "t",
                     num_runs: int = 20_000, seed: int = 0) -> float:
    """Share of per-initializer CIs (level 95%) that contain the true mean accuracy.

    `distribution`: "normal" (sd 1), "skewed" (minus a gamma with shape 4: skewness -1, a
    long tail of bad seeds) or "very skewed" (minus an exponential: skewness -2). `method`:
    "t" (`stats.t_ci`, what the tables show) or "bootstrap" (`stats.bootstrap_ci`, what they
    showed before; slow, so keep `num_runs` small)."""
    rng = np.random.default_rng(seed)
    shape = (num_runs, num_seeds)
    if distribution == "normal":
        x, mu = rng.normal(0.0, 1.0, shape), 0.0
    elif distribution == "skewed":
        x, mu = -rng.gamma(4.0, 0.5, shape), -2.0
    elif distribution == "very skewed":
        x, mu = -rng.exponential(1.0, shape), -1.0
    else:
        raise ValueError(f"unknown distribution {distribution!r}")
    if method == "t":
        half = sequential.half_widths(x, stats.CI_LEVEL)
        return float(np.mean(np.abs(x.mean(axis=1) - mu) <= half))
    if method == "bootstrap":
        cis = np.array([stats.bootstrap_ci(row) for row in x])
        return float(np.mean((cis[:, 0] <= mu) & (mu <= cis[:, 1])))
    raise ValueError(f"unknown method {method!r}")


@dataclass(frozen=True)
class FamilyIntervals:
    """Outcome of `holm_interval_rates` over simulated runs."""

    coverage: float  # share of runs where every shown interval contains its true difference
    row_coverage: float  # share of shown intervals that contain their true difference
    false_claim: float  # share of runs with a better/worse where the true difference is 0
    mismatches: int  # rows whose verdict (adjusted p) disagrees with their interval


def holm_interval_rates(effects, num_seeds: int = 5, seed_sd: float = 1.0,
                        noise_sd: float = 0.5, alpha: float = stats.ALPHA,
                        num_runs: int = 4_000, seed: int = 0) -> FamilyIntervals:
    """Coverage of the intervals shown beside Holm verdicts (`--pairs baseline`).

    accuracy[run, init, seed] = effects[init] + a seed effect shared by every initializer
    (sd `seed_sd`) + own noise (sd `noise_sd`); init 0 is the baseline (its effect is
    subtracted). Each comparison's interval is the t interval at 1 - alpha / k, k its Holm
    divisor (`stats.holm_divisors`), as in the tables."""
    rng = np.random.default_rng(seed)
    mu = np.asarray(effects, dtype=float)
    num_inits = mu.size
    shared = rng.normal(0.0, seed_sd, size=(num_runs, 1, num_seeds))
    acc = mu[None, :, None] + shared + rng.normal(0.0, noise_sd,
                                                  size=(num_runs, num_inits, num_seeds))
    diffs = acc[:, 1:] - acc[:, :1]  # [run, comparison, seed]
    truth = mu[1:] - mu[0]
    p = stats.paired_t_test(diffs).p_value
    shown = stats.decision_intervals(diffs, alpha)
    covered = (shown.ci_low <= truth) & (truth <= shown.ci_high)
    excludes = (shown.ci_low > 0) | (shown.ci_high < 0)
    rejected = stats.holm(p) < alpha
    false = np.any(excludes & (truth == 0), axis=-1)
    return FamilyIntervals(coverage=float(np.mean(covered.all(axis=-1))),
                           row_coverage=float(np.mean(covered)),
                           false_claim=float(np.mean(false)),
                           mismatches=int(np.sum(excludes != rejected)))


def peeking_false_claims(level: float, first: int = 5, step: int = 5, max_seeds: int = 30,
                         num_runs: int = 20_000, seed: int = 0) -> float:
    """Share of users who end up claiming a difference that is not there, when they look at
    the verdict after each batch of seeds and stop at the first "better"/"worse".

    One comparison, normal paired differences with mean 0; the first look after `first`
    seeds, then one every `step` more, up to `max_seeds`; the verdict at each look is the t
    interval at `level` excluding 0 (what a merged report shows)."""
    rng = np.random.default_rng(seed)
    d = rng.normal(0.0, 1.0, size=(num_runs, max_seeds))
    claimed = np.zeros(num_runs, bool)
    for n in range(first, max_seeds + 1, step):
        x = d[:, :n]
        half = sequential.half_widths(x, level)
        claimed |= np.abs(x.mean(axis=1)) > half
    return float(claimed.mean())


def equivalence_family_error(num_inits: int = 5, num_seeds: int = 5, margin: float = 0.5,
                             sd: float = 0.5, alpha: float = stats.ALPHA,
                             num_runs: int = 4_000, seed: int = 0) -> float:
    """P(at least one false "equivalent") over a `--pairs baseline` family whose true
    differences all lie exactly on the margin (+margin or -margin, alternating): the worst
    case for equivalence claims. "Equivalent" is the tables' rule: the shown interval
    (`stats.decision_intervals`) lies inside +/- margin."""
    rng = np.random.default_rng(seed)
    m = num_inits - 1
    truth = np.where(np.arange(m) % 2 == 0, margin, -margin)
    diffs = truth[None, :, None] + rng.normal(0.0, sd, size=(num_runs, m, num_seeds))
    shown = stats.decision_intervals(diffs, alpha, margin)
    inside = (shown.ci_low > -margin) & (shown.ci_high < margin)
    return float(np.mean(inside.any(axis=-1)))


def print_interval_tables(num_runs: int = 20_000) -> None:
    """Print the coverage tables of docs/statistics.md that `mean_ci_coverage`,
    `holm_interval_rates`, `peeking_false_claims` and `equivalence_family_error` measure
    (`python -m initbench.simulations`; about 15 s on 2 cores)."""
    print("per-initializer CI coverage (95%), seed 1: seeds, t normal / skewed / very skewed,"
          " old bootstrap normal")
    for n in (2, 3, 5, 10, 30):
        t = [mean_ci_coverage(n, d, num_runs=num_runs, seed=1)
             for d in ("normal", "skewed", "very skewed")]
        boot = mean_ci_coverage(n, "normal", "bootstrap", num_runs=num_runs // 10, seed=1)
        print(n, " / ".join(f"{100 * c:.1f}%" for c in (*t, boot)))
    print("Holm-step intervals, seed 2: effects, seeds, all cover / each covers / false claims"
          " / mismatches")
    for effects in ([0] * 5, [0, 3, 0, 0, 0], [0, 1, 1, 0, 0], [0, 3, 3, 3, 3],
                    [0, 3, 3, 3, 0.5], [0] * 10):
        for n in (3, 5, 10):
            r = holm_interval_rates(effects, n, num_runs=num_runs, seed=2)
            print(effects, n, f"{100 * r.coverage:.1f}% / {100 * r.row_coverage:.1f}% / "
                  f"{100 * r.false_claim:.1f}% / {r.mismatches}")
    print("looking then adding seeds, seed 3: looks, false claims at 95% / 97% / 1 - 5%/L")
    for looks in (2, 3, 4, 6):
        rates = [peeking_false_claims(level, max_seeds=5 * looks, num_runs=num_runs, seed=3)
                 for level in (0.95, 0.97, 1 - stats.ALPHA / looks)]
        print(looks, " / ".join(f"{100 * r:.1f}%" for r in rates))
    print("false 'equivalent' over 4 comparisons at the margin, seed 4: sd, seeds 3/5/10/30")
    for sd in (0.25, 0.5, 1.0):
        rates = [equivalence_family_error(5, n, 0.5, sd, num_runs=num_runs, seed=4)
                 for n in (3, 5, 10, 30)]
        print(sd, " / ".join(f"{100 * r:.1f}%" for r in rates))


if __name__ == "__main__":
    print_interval_tables()
