"""Aggregates over seeds: summaries, bootstrap CIs, paired comparisons, curve metrics.

NumPy and scipy.special (never scipy.stats at import: it costs ~1.4 s). One array layout,
with the axis order `[init, seed, epoch]`:

- Final metrics: `values[num_seeds]` for one initializer, or `values[num_inits, num_seeds]`.
- Curves: `curves[num_seeds, num_epochs + 1]` for one initializer, or
  `curves[num_inits, num_seeds, num_epochs + 1]`. Epoch 0 is the value before the first step.
  The curve functions work along the last (epoch) axis, so they accept either form and return
  the leading shape (`[num_seeds]` or `[num_inits, num_seeds]`).
- NaN marks a diverged cell or epoch. Statistics use the finite values only and report how many
  were dropped (`n_diverged`); a diverged cell never changes another cell's numbers.

Confidence intervals of one initializer's mean (`CI_METHOD`, `summarize`) are Student t
intervals over seeds: for the finite values `x`, `n = len(x) >= 2`,

    mean(x) +/- t.ppf(0.975, n - 1) * std(x, ddof=1) / sqrt(n)

With n == 1 the CI is (nan, nan); when all values are equal it is exactly (v, v). Simulated
(`simulations.mean_ci_coverage`, docs/statistics.md), it covers the true mean 95% of the
time at every n >= 2 for normal accuracies and 88-93% for strongly skewed ones; the
percentile bootstrap it replaced covered 50%, 75% and 84% at n = 2, 3 and 5 (it uses the
normal quantile and the biased std). `bootstrap_ci` is kept as a reference:

    rng = np.random.default_rng(BOOTSTRAP_SEED)                  # a fresh generator per CI
    idx = rng.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))      # resample seeds with replacement
    means = x[idx].mean(axis=1)
    ci_low, ci_high = np.percentile(means, [2.5, 97.5])

A paired comparison uses `PAIRED_CI_METHOD`: the Student t interval of the mean of the
per-seed differences `d = values - baseline` (seed order, seeds where both are finite),
`mean(d) +/- t.ppf(1 - alpha / 2, n - 1) * std(d, ddof=1) / sqrt(n)`. In a run's table the
level is the one of the Holm step that decided the verdict (`holm_divisors`), so the interval
shown beside a verdict is the interval that decided it.

Over paired differences `diffs[..., num_seeds]` (seed axis last, NaN dropped
per row): the paired t test and its p-value, Holm's correction, TOST equivalence, the effect
size d_z with a noncentral-t CI, the interquartile mean, the exact binomial CI of the
divergence rate, the weight/data variance decomposition and the CD-diagram groups.
Methods, formulas and measured error rates: docs/statistics.md.

Over 450 lines: every estimator of the statistics layer, each a small pure NumPy/SciPy
function over the documented layout; docs/statistics.md is its long form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CI_LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
CI_METHOD = "Student t over seeds"
PAIRED_CI_METHOD = "Student t over per-seed paired differences"

VERDICT_BETTER = "better"
VERDICT_WORSE = "worse"
VERDICT_UNCLEAR = "no clear difference"
VERDICT_TOO_FEW = "no verdict (n<3)"
VERDICTS = (VERDICT_BETTER, VERDICT_WORSE, VERDICT_UNCLEAR, VERDICT_TOO_FEW)
MIN_PAIRED_SEEDS = 3

_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # np.trapezoid is NumPy >= 2.0


@dataclass(frozen=True)
class Summary:
    """Statistics of one initializer's `values[num_seeds]`, over the finite values only."""

    n: int
    n_diverged: int
    mean: float
    std: float
    sem: float
    min: float
    max: float
    median: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Paired:
    """A paired comparison against a baseline; `mean_diff` is `values - baseline`, unsigned."""

    n: int
    mean_diff: float
    ci_low: float
    ci_high: float
    p_better: float
    verdict: str


def _as_seeds(values, name: str = "values") -> np.ndarray:
    """Return `values` as a float array `[num_seeds]`, or raise ValueError naming its shape."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must have shape [num_seeds], got shape {array.shape}")
    return array


def _as_curves(curves, name: str = "curves") -> np.ndarray:
    """Return `curves` as a float array `[..., num_epochs + 1]`, or raise ValueError."""
    array = np.asarray(curves, dtype=float)
    if array.ndim < 1 or array.shape[-1] < 1:
        raise ValueError(f"{name} must have shape [..., num_epochs + 1], got shape {array.shape}")
    return array


def _ci_values(values, level: float) -> tuple[np.ndarray, tuple[float, float] | None]:
    """The finite `values[num_seeds]`, and the CI when there is nothing to estimate:
    (nan, nan) for fewer than 2 values, exactly (v, v) when all equal v (resampled means of
    equal floats can differ from v by rounding)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    x = _as_seeds(values)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return x, (float("nan"), float("nan"))
    if np.all(x == x[0]):
        return x, (float(x[0]), float(x[0]))
    return x, None


def bootstrap_ci(values, level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile-bootstrap CI of the mean of the finite `values[num_seeds]`; see module doc."""
    x, fixed = _ci_values(values, level)
    if fixed:
        return fixed
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    idx = rng.integers(0, x.size, size=(BOOTSTRAP_RESAMPLES, x.size))
    means = x[idx].mean(axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return (float(low), float(high))


def t_ci(values, level: float = CI_LEVEL) -> tuple[float, float]:
    """Student t CI of the mean of the finite `values[num_seeds]`; see module doc."""
    from scipy.special import stdtrit  # Student t quantile; scipy.stats takes ~1.4 s to import

    x, fixed = _ci_values(values, level)
    if fixed:
        return fixed
    n, mean = x.size, float(np.mean(x))
    half = float(stdtrit(n - 1, 0.5 + level / 2.0) * np.std(x, ddof=1) / np.sqrt(n))
    return (mean - half, mean + half)


def summarize(values, level: float = CI_LEVEL) -> Summary:
    """Summarize `values[num_seeds]` over its finite entries; non-finite ones count as diverged.
    The CI is `t_ci` at `level`."""
    x = _as_seeds(values)
    finite = np.isfinite(x)
    x = x[finite]
    n = int(x.size)
    nan = float("nan")
    if n == 0:
        return Summary(0, int(finite.size), nan, nan, nan, nan, nan, nan, nan, nan)
    std = float(np.std(x, ddof=1)) if n >= 2 else nan
    ci_low, ci_high = t_ci(x, level)
    return Summary(
        n=n,
        n_diverged=int(finite.size - n),
        mean=float(np.mean(x)),
        std=std,
        sem=std / float(np.sqrt(n)) if n >= 2 else nan,
        min=float(np.min(x)),
        max=float(np.max(x)),
        median=float(np.median(x)),
        ci_low=ci_low,
        ci_high=ci_high,
    )


def summarize_many(values) -> list[Summary]:
    """Summarize each row of `values[num_inits, num_seeds]`; one Summary per initializer."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 2:
        raise ValueError(f"values must have shape [num_inits, num_seeds], got shape {array.shape}")
    return [summarize(row) for row in array]


def compare_paired(values, baseline, higher_is_better: bool = True,
                   level: float = CI_LEVEL) -> Paired:
    """Compare `values[num_seeds]` with `baseline[num_seeds]` seed by seed (same seed order).

    Uses the seeds where both are finite. `mean_diff` and the CI are of `values - baseline`;
    `p_better` is the fraction of those seeds on which `values` is better (ties count 1/2).
    The CI is `t_ci` of the differences; the verdict is "better"/"worse" when it excludes 0,
    "no clear difference" otherwise, and "no verdict (n<3)" (with a NaN CI) for fewer than
    3 paired seeds. `level` is the CI's level (0.97 for `--seeds auto` runs).
    """
    x = _as_seeds(values, "values")
    y = _as_seeds(baseline, "baseline")
    if x.shape != y.shape:
        raise ValueError(f"values and baseline differ in shape: {x.shape} vs {y.shape}")
    both = np.isfinite(x) & np.isfinite(y)
    diff = x[both] - y[both]
    n = int(diff.size)
    nan = float("nan")
    if n == 0:
        return Paired(0, nan, nan, nan, nan, VERDICT_TOO_FEW)
    signed = diff if higher_is_better else -diff
    p_better = float((np.sum(signed > 0) + 0.5 * np.sum(signed == 0)) / n)
    mean_diff = float(np.mean(diff))
    if n < MIN_PAIRED_SEEDS:
        return Paired(n, mean_diff, nan, nan, p_better, VERDICT_TOO_FEW)
    ci_low, ci_high = t_ci(diff, level)
    if ci_low > 0:
        verdict = VERDICT_BETTER if higher_is_better else VERDICT_WORSE
    elif ci_high < 0:
        verdict = VERDICT_WORSE if higher_is_better else VERDICT_BETTER
    else:
        verdict = VERDICT_UNCLEAR
    return Paired(n, mean_diff, ci_low, ci_high, p_better, verdict)


def epochs_to_target(accuracy_curves, target: float) -> np.ndarray:
    """First epoch (0..E) with accuracy >= target, as float `[num_seeds]`; NaN if never reached."""
    curves = _as_curves(accuracy_curves, "accuracy_curves")
    hit = curves >= target  # NaN compares False, so diverged epochs never count as a hit
    first = np.argmax(hit, axis=-1).astype(float)
    return np.where(hit.any(axis=-1), first, np.nan)


def area_under_curve(curves) -> np.ndarray:
    """Trapezoid area over epochs 0..E (unit spacing), `[num_seeds]`; NaN if any non-finite."""
    array = _as_curves(curves)
    area = np.asarray(_trapezoid(array, dx=1.0, axis=-1), dtype=float)
    return np.where(np.isfinite(array).all(axis=-1), area, np.nan)


def best_epoch(accuracy_curves) -> np.ndarray:
    """Epoch of the highest finite accuracy (first on ties), float `[num_seeds]`; NaN if none."""
    curves = _as_curves(accuracy_curves, "accuracy_curves")
    finite = np.isfinite(curves)
    best = np.argmax(np.where(finite, curves, -np.inf), axis=-1).astype(float)
    return np.where(finite.any(axis=-1), best, np.nan)


def first_diverged_epoch(*curves) -> np.ndarray:
    """First epoch where any same-shaped curve is non-finite, int `[num_seeds]`; -1 if never."""
    if not curves:
        raise ValueError("first_diverged_epoch needs at least one curve array")
    arrays = [_as_curves(c) for c in curves]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"curves differ in shape: {sorted(shapes)}")
    bad = np.logical_or.reduce([~np.isfinite(a) for a in arrays])
    return np.where(bad.any(axis=-1), np.argmax(bad, axis=-1), -1).astype(int)


def mask_diverged(curves, first_diverged) -> np.ndarray:
    """Copy of `curves[..., E + 1]`, NaN from each seed's `first_diverged` epoch on (-1: none)."""
    array = _as_curves(curves).copy()
    first = np.asarray(first_diverged)
    if first.shape != array.shape[:-1]:
        raise ValueError(
            f"first_diverged must have shape {array.shape[:-1]}, got shape {first.shape}"
        )
    epochs = np.arange(array.shape[-1])
    after = (first[..., None] >= 0) & (epochs >= first[..., None])
    array[after] = np.nan
    return array


# --- Paired tests over many comparisons ----------------------------------------------------
#
# Layout: per-seed paired differences `diffs[..., num_seeds]`, the seed axis last (one row per
# comparison, e.g. `[num_comparisons, num_seeds]`); NaN marks a seed where either cell diverged
# and is left out of that row only. Results have the leading shape (a float for a 1-D input).
# Only scipy.special is imported here: these run on every `compare`.

VERDICT_EQUIVALENT = "equivalent"
ALPHA = 1.0 - CI_LEVEL
EQUIVALENCE_METHOD = "TOST: 90% Student t CI of the paired differences inside +/- margin"
EFFECT_SIZE_METHOD = "d_z = mean / sd of the paired differences; CI by inverting the noncentral t"


@dataclass(frozen=True)
class TTest:
    """Paired (one-sample) t test of `diffs[..., num_seeds]` against 0; leading-shape fields."""

    n: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    t: np.ndarray
    p_value: np.ndarray


@dataclass(frozen=True)
class Equivalence:
    """TOST of `diffs` against +/- margin; `ci_low`/`ci_high` is the 1 - 2*alpha t CI."""

    n: np.ndarray
    mean: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_value: np.ndarray
    equivalent: np.ndarray


@dataclass(frozen=True)
class EffectSize:
    """Standardized paired difference d_z = mean / sd with its CI (noncentral t inversion)."""

    n: np.ndarray
    d_z: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray


def _scalar(x):
    """0-d arrays become Python floats/bools; arrays stay arrays."""
    x = np.asarray(x)
    return x.item() if x.ndim == 0 else x


def _moments(diffs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, mean, sd with ddof=1) of the finite entries along the last axis of `diffs`.

    NaN where a row has no finite entry (mean) or fewer than 2 (sd).
    """
    d = np.asarray(diffs, dtype=float)
    if d.ndim < 1:
        raise ValueError(f"diffs must have shape [..., num_seeds], got shape {d.shape}")
    finite = np.isfinite(d)
    n = finite.sum(axis=-1)
    x = np.where(finite, d, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = x.sum(axis=-1) / n
        dev = np.where(finite, d - mean[..., None], 0.0)
        sd = np.sqrt((dev**2).sum(axis=-1) / (n - 1))
    mean = np.where(n >= 1, mean, np.nan)
    sd = np.where(n >= 2, sd, np.nan)
    # Equal values give sd exactly 0, not float dust (so p = 1 or 0, never noise).
    same = (n >= 2) & (np.where(finite, d, np.inf).min(axis=-1)
                       == np.where(finite, d, -np.inf).max(axis=-1))
    sd = np.where(same, 0.0, sd)
    return n, mean, sd


def paired_differences(values, baseline) -> np.ndarray:
    """`values - baseline` seed by seed, `[..., num_seeds]`; NaN where either is non-finite."""
    x = np.asarray(values, dtype=float)
    y = np.asarray(baseline, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"values and baseline differ in shape: {x.shape} vs {y.shape}")
    with np.errstate(invalid="ignore"):
        d = x - y
    return np.where(np.isfinite(x) & np.isfinite(y), d, np.nan)


def paired_t_test(diffs) -> TTest:
    """Two-sided t test that the mean of `diffs[..., num_seeds]` is 0 (finite entries only).

    t = mean / (sd / sqrt(n)), p = 2 * T_{n-1}(-|t|) (Student t CDF via scipy.special.stdtr).
    p < 1 - level exactly when `t_ci(diffs, level)` excludes 0. With sd == 0: p = 1 when the
    mean is 0, else p = 0. Fewer than 2 finite differences: t and p are NaN.
    """
    from scipy.special import stdtr

    n, mean, sd = _moments(diffs)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = mean / (sd / np.sqrt(n))
        p = 2.0 * stdtr(np.maximum(n - 1, 1), -np.abs(t))
    zero_sd = sd == 0
    t = np.where(zero_sd & (mean == 0), 0.0, t)
    p = np.where(zero_sd, np.where(mean == 0, 1.0, 0.0), p)
    p = np.where(n >= 2, np.minimum(p, 1.0), np.nan)
    t = np.where(n >= 2, t, np.nan)
    return TTest(_scalar(n), _scalar(mean), _scalar(sd), _scalar(t), _scalar(p))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values of one family, along the last axis of `p_values`.

    With the m finite p-values sorted, p_(1) <= ... <= p_(m):
        adj_(i) = min(1, max_{j <= i} (m - j + 1) * p_(j))
    returned in the input order. "Reject at level alpha" is adj < alpha; this controls the
    family-wise error rate at alpha under any dependence between the tests. NaN entries are not
    part of the family (m counts the finite ones) and stay NaN.
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim < 1:
        raise ValueError(f"p_values must have shape [..., num_tests], got shape {p.shape}")
    finite = np.isfinite(p)
    if np.any(finite & ((p < 0) | (p > 1))):
        raise ValueError("p_values must lie in [0, 1]")
    m = finite.sum(axis=-1, keepdims=True)
    order = np.argsort(np.where(finite, p, np.inf), axis=-1, kind="stable")
    sorted_p = np.take_along_axis(np.where(finite, p, 1.0), order, axis=-1)  # NaNs sort last
    rank = np.arange(p.shape[-1])  # 0-based j - 1
    scaled = np.minimum(np.maximum(m - rank, 1) * sorted_p, 1.0)
    adjusted_sorted = np.maximum.accumulate(scaled, axis=-1)
    adjusted = np.empty_like(adjusted_sorted)
    np.put_along_axis(adjusted, order, adjusted_sorted, axis=-1)
    return np.where(finite, adjusted, np.nan)


def holm_divisors(p_values, alpha: float = ALPHA) -> np.ndarray:
    """Per p-value, the divisor k of the test that decided it in Holm's step-down at `alpha`.

    With the m finite p-values sorted, step i (1-based) tests p_(i) < alpha / (m - i + 1)
    and Holm stops at the first step s that fails. A rejected p_(i) (i < s) was decided at
    k = m - i + 1; every p-value from the failed step on at the failed step's k = m - s + 1
    (they are all >= p_(s) >= alpha / k). So `p < alpha / k` exactly when
    `holm(p) < alpha`, and the 1 - alpha / k t interval of a comparison excludes 0 exactly
    when Holm rejects it: the interval decides the verdict. Along the last axis; NaN p-values
    are not in the family and get NaN.
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim < 1:
        raise ValueError(f"p_values must have shape [..., num_tests], got shape {p.shape}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    finite = np.isfinite(p)
    m = finite.sum(axis=-1, keepdims=True)
    order = np.argsort(np.where(finite, p, np.inf), axis=-1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(p.shape[-1]), p.shape), axis=-1)
    rejected = holm(p) < alpha
    # The failed step: the number of rejections (Holm rejects a prefix of the sorted p's).
    failed = rejected.sum(axis=-1, keepdims=True)
    divisor = np.where(rejected, m - rank, m - failed).astype(float)
    return np.where(finite, divisor, np.nan)


@dataclass(frozen=True)
class DecisionIntervals:
    """The interval shown beside each verdict of a family, `[..., num_comparisons]`: the
    Student t interval of the mean difference at `level` = 1 - alpha / `divisor`."""

    n: np.ndarray
    mean: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    level: np.ndarray
    divisor: np.ndarray


def decision_intervals(diffs, alpha: float = ALPHA, margin: float | None = None
                       ) -> DecisionIntervals:
    """The intervals that decide the verdicts of one Holm family `diffs[..., m, num_seeds]`.

    Each comparison's t interval at 1 - alpha / k, k its Holm divisor (`holm_divisors` of
    the paired t p-values): it excludes 0 exactly when Holm rejects. With a `margin`, the
    comparisons whose Bonferroni interval (k = m) or Holm-step interval lies inside +/- margin
    show the Bonferroni one instead: "equivalent" is then a TOST at alpha / (2m) per
    comparison, so the chance of any false "equivalent" in the family is at most alpha / 2,
    and no row shows an interval inside the margin without being called equivalent. (A
    Holm-step interval inside the margin with a Bonferroni one that is not turns into "no
    clear difference" or keeps its better/worse when the wider interval still excludes 0: a
    difference smaller than the margin is not worth calling better anyway.) NaN for rows with
    fewer than 2 finite differences.
    """
    from scipy.special import stdtrit

    if margin is not None and not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin!r}")
    n, mean, sd = _moments(diffs)
    p = np.asarray(paired_t_test(diffs).p_value, dtype=float)
    divisor = holm_divisors(np.atleast_1d(p), alpha).reshape(np.shape(p))
    m = np.isfinite(p).sum(axis=-1, keepdims=True)

    def interval(k):
        with np.errstate(invalid="ignore", divide="ignore"):
            half = stdtrit(np.maximum(n - 1, 1), 1.0 - alpha / (2.0 * k)) * sd / np.sqrt(n)
        half = np.where(sd == 0, 0.0, half)
        return mean - half, mean + half

    low, high = interval(divisor)
    if margin is not None:
        b_low, b_high = interval(np.broadcast_to(m, divisor.shape).astype(float))
        inside = ((b_low > -margin) & (b_high < margin)) | ((low > -margin) & (high < margin))
        low, high = np.where(inside, b_low, low), np.where(inside, b_high, high)
        divisor = np.where(inside & np.isfinite(divisor), m, divisor)
    ok = (n >= 2) & np.isfinite(divisor)
    nan = np.nan
    return DecisionIntervals(
        _scalar(n), _scalar(mean), _scalar(np.where(ok, low, nan)),
        _scalar(np.where(ok, high, nan)),
        _scalar(np.where(ok, 1.0 - alpha / np.where(ok, divisor, 1.0), nan)),
        _scalar(np.where(ok, divisor, nan)))


def interval_verdict(ci_low: float, ci_high: float, n: int, margin: float | None = None,
                     higher_is_better: bool = True) -> str:
    """The verdict read off the interval shown beside it (`ci_low`, `ci_high` of a - b).

    "no verdict (n<3)" below MIN_PAIRED_SEEDS; "equivalent" when a margin is given and the
    interval lies strictly inside (-margin, margin) (first: a difference smaller than the
    margin is not worth calling better); "better"/"worse" when it excludes 0; "no clear
    difference" otherwise (and for a NaN interval).
    """
    if n < MIN_PAIRED_SEEDS or not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return VERDICT_TOO_FEW if n < MIN_PAIRED_SEEDS else VERDICT_UNCLEAR
    if margin is not None and -margin < ci_low and ci_high < margin:
        return VERDICT_EQUIVALENT
    if ci_low > 0 or ci_high < 0:
        return VERDICT_BETTER if (ci_low > 0) == higher_is_better else VERDICT_WORSE
    return VERDICT_UNCLEAR


def tost(diffs, margin: float, alpha: float = ALPHA) -> Equivalence:
    """Two one-sided t tests that the mean of `diffs[..., num_seeds]` lies inside (-margin, margin).

    p_lower = P(T_{n-1} >= (mean + margin) / se), p_upper = P(T_{n-1} <= (mean - margin) / se),
    p_value = max of the two; `equivalent` is p_value < alpha, which is exactly "the
    1 - 2*alpha (90%) t CI lies strictly inside (-margin, margin)". With sd == 0 the CI is the
    point mean. Fewer than 2 finite differences: NaN and not equivalent.
    """
    from scipy.special import stdtr, stdtrit

    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin!r}")
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha!r}")
    n, mean, sd = _moments(diffs)
    df = np.maximum(n - 1, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = sd / np.sqrt(n)
        half = stdtrit(df, 1.0 - alpha) * se
        p_lower = stdtr(df, -(mean + margin) / se)
        p_upper = stdtr(df, (mean - margin) / se)
    p = np.maximum(p_lower, p_upper)
    zero_sd = se == 0
    p = np.where(zero_sd, np.where(np.abs(mean) < margin, 0.0, 1.0), p)
    half = np.where(zero_sd, 0.0, half)
    ok = n >= 2
    p = np.where(ok, p, np.nan)
    low = np.where(ok, mean - half, np.nan)
    high = np.where(ok, mean + half, np.nan)
    equivalent = ok & (p < alpha)
    return Equivalence(_scalar(n), _scalar(mean), _scalar(low), _scalar(high), _scalar(p),
                       _scalar(equivalent))


def effect_size(diffs, level: float = CI_LEVEL) -> EffectSize:
    """d_z = mean / sd of `diffs[..., num_seeds]` and its exact CI under normal differences.

    t = d_z * sqrt(n) follows a noncentral t with n - 1 degrees of freedom and noncentrality
    delta * sqrt(n). The CI inverts it (scipy.special.nctdtrinc): the noncentrality at which the
    observed t is the upper and the lower (1 - level)/2 quantile, divided by sqrt(n). NaN for
    fewer than 2 differences or sd == 0 (d_z is then undefined or infinite).
    """
    from scipy.special import nctdtrinc

    level = np.asarray(level, dtype=float)  # one level, or one per row of `diffs`
    if np.any(~((level > 0.0) & (level < 1.0))):
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    n, mean, sd = _moments(diffs)
    ok = (n >= 2) & (sd > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        d_z = np.where(ok, mean / sd, np.nan)
        t = d_z * np.sqrt(n)
        df = np.maximum(n - 1, 1)
        tail = (1.0 - level) / 2.0
        low = np.where(ok, nctdtrinc(df, 1.0 - tail, np.where(ok, t, 0.0)) / np.sqrt(n), np.nan)
        high = np.where(ok, nctdtrinc(df, tail, np.where(ok, t, 0.0)) / np.sqrt(n), np.nan)
    return EffectSize(_scalar(n), _scalar(d_z), _scalar(low), _scalar(high))


def paired_verdict(mean_diff: float, p_adjusted: float, n: int, equivalent: bool = False,
                   higher_is_better: bool = True, alpha: float = ALPHA) -> str:
    """The verdict of one comparison from its (Holm-)adjusted p-value and TOST result.

    "no verdict (n<3)" below MIN_PAIRED_SEEDS; "equivalent" when TOST says so (it takes
    precedence: a difference inside the margin is not worth calling better); "better"/"worse"
    when p_adjusted < alpha, by the sign of mean_diff; "no clear difference" otherwise.
    With one comparison p_adjusted is the raw p and this is `compare_paired`'s verdict.
    """
    if n < MIN_PAIRED_SEEDS:
        return VERDICT_TOO_FEW
    if equivalent:
        return VERDICT_EQUIVALENT
    if np.isfinite(p_adjusted) and p_adjusted < alpha and mean_diff != 0:
        up = (mean_diff > 0) == higher_is_better
        return VERDICT_BETTER if up else VERDICT_WORSE
    return VERDICT_UNCLEAR


def comparison_pairs(num_inits: int, baseline: int = 0, pairs: str = "baseline"
                     ) -> list[tuple[int, int]]:
    """Index pairs (i, j), compared as `values[i] - values[j]`, of one Holm family.

    "baseline": (i, baseline) for every other i, in index order (num_inits - 1 pairs);
    "all": every (i, j) with i < j (num_inits * (num_inits - 1) / 2 pairs).
    """
    if pairs == "baseline":
        if not 0 <= baseline < num_inits:
            raise ValueError(f"baseline must be in [0, {num_inits}), got {baseline!r}")
        return [(i, baseline) for i in range(num_inits) if i != baseline]
    if pairs == "all":
        return [(i, j) for i in range(num_inits) for j in range(i + 1, num_inits)]
    raise ValueError(f"pairs must be 'baseline' or 'all', got {pairs!r}")


# --- Robust summaries and divergence ----------------------------------------------------------

IQM_PROPORTION = 0.25


def interquartile_mean(values) -> float:
    """Interquartile mean of the finite `values[num_seeds]` (rliable's IQM).

    rliable computes `scipy.stats.trim_mean(x, proportiontocut=0.25)`: sort, drop
    k = floor(0.25 * n) values from each end, average the rest. So with n < 4 it is the plain
    mean, with n = 5 the mean of the middle 3. NaN when no value is finite.
    """
    x = _as_seeds(values)
    x = np.sort(x[np.isfinite(x)])
    if x.size == 0:
        return float("nan")
    k = int(IQM_PROPORTION * x.size)
    return float(np.mean(x[k:x.size - k]))


def median(values) -> float:
    """Median of the finite `values[num_seeds]`; NaN when none is finite."""
    x = _as_seeds(values)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else float("nan")


def binomial_ci(k: int, n: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """Exact (Clopper-Pearson) CI of a proportion k / n.

    low = B^-1(tail; k, n - k + 1) (0 when k == 0), high = B^-1(1 - tail; k + 1, n - k)
    (1 when k == n), tail = (1 - level) / 2, via scipy.special.betaincinv. Equals
    `scipy.stats.binomtest(k, n).proportion_ci(level, method="exact")`. (nan, nan) for n == 0.
    """
    from scipy.special import betaincinv

    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if not (0 <= k <= n) or int(k) != k or int(n) != n:
        raise ValueError(f"need integers 0 <= k <= n, got k={k!r}, n={n!r}")
    if n == 0:
        return (float("nan"), float("nan"))
    tail = (1.0 - level) / 2.0
    low = 0.0 if k == 0 else float(betaincinv(k, n - k + 1, tail))
    high = 1.0 if k == n else float(betaincinv(k + 1, n - k, 1.0 - tail))
    return (low, high)


def divergence_rate(values, level: float = CI_LEVEL) -> tuple[float, float, float]:
    """(rate, ci_low, ci_high): the share of non-finite `values[num_seeds]`, exact binomial CI."""
    x = _as_seeds(values)
    n = int(x.size)
    k = int(np.sum(~np.isfinite(x)))
    low, high = binomial_ci(k, n, level)
    return (k / n if n else float("nan"), low, high)


# --- Where the spread comes from: weight seed x data seed -------------------------------------


@dataclass(frozen=True)
class VarianceComponents:
    """Two-way random-effects decomposition of one initializer's `values[weight_seed, data_seed]`.

    Variances (`weight`, `data`, `residual`, truncated at 0) and their shares of the total
    (`weight_share + data_share + residual_share == 1`; NaN when the total is 0 or undefined).
    `num_weight_seeds` counts the weight seeds used (rows with a non-finite cell are dropped).
    """

    num_weight_seeds: int
    num_data_seeds: int
    weight: float
    data: float
    residual: float
    weight_share: float
    data_share: float
    residual_share: float


def variance_components(values) -> VarianceComponents:
    """Shares of the variance of `values[num_weight_seeds, num_data_seeds]` (crossed, 1 per cell).

    Model y[w, k] = mu + a[w] + b[k] + e[w, k], a ~ (0, s2_weight), b ~ (0, s2_data),
    e ~ (0, s2_residual): the interaction and the noise cannot be told apart with one
    observation per cell, so both are in the residual. ANOVA mean squares (W rows, K columns):

        MS_W = K * sum_w (ybar[w,.] - ybar)^2 / (W - 1)          E = s2_res + K * s2_weight
        MS_K = W * sum_k (ybar[.,k] - ybar)^2 / (K - 1)          E = s2_res + W * s2_data
        MS_E = sum (y - ybar[w,.] - ybar[.,k] + ybar)^2 / ((W - 1)(K - 1))      E = s2_res

    so s2_weight = (MS_W - MS_E) / K, s2_data = (MS_K - MS_E) / W, s2_res = MS_E, the unbiased
    method-of-moments (ANOVA) estimates. A negative estimate (the mean square below the
    residual's by chance) is set to 0, the usual truncation; that makes it slightly biased
    upward. Rows (weight seeds) with any non-finite cell are dropped, which keeps the design
    balanced; fewer than 2 rows or columns left gives NaN.
    """
    y = np.asarray(values, dtype=float)
    if y.ndim != 2:
        raise ValueError(f"values must have shape [num_weight_seeds, num_data_seeds], "
                         f"got shape {y.shape}")
    y = y[np.isfinite(y).all(axis=1)]
    w, k = y.shape
    nan = float("nan")
    if w < 2 or k < 2:
        return VarianceComponents(w, k, nan, nan, nan, nan, nan, nan)
    grand = y.mean()
    rows, cols = y.mean(axis=1), y.mean(axis=0)
    ms_w = k * np.sum((rows - grand) ** 2) / (w - 1)
    ms_k = w * np.sum((cols - grand) ** 2) / (k - 1)
    ms_e = np.sum((y - rows[:, None] - cols[None, :] + grand) ** 2) / ((w - 1) * (k - 1))
    weight = max(float((ms_w - ms_e) / k), 0.0)
    data = max(float((ms_k - ms_e) / w), 0.0)
    residual = float(ms_e)
    total = weight + data + residual
    shares = (weight / total, data / total, residual / total) if total > 0 else (nan,) * 3
    return VarianceComponents(w, k, weight, data, residual, *shares)


# --- Critical-difference style groups for `--pairs all` ---------------------------------------


def rank_groups(means, separated) -> list[tuple[int, ...]]:
    """Maximal groups of initializers that the corrected tests cannot separate, for CD bars.

    `means[num_inits]` orders the initializers (highest first, ties by index; NaN last and
    never grouped). `separated[num_inits, num_inits]` is a symmetric bool matrix, True where
    the corrected (Holm) test separates i and j. A group is a run of consecutive initializers
    in that order, at least 2 long, in which no pair is separated, and not contained in a
    longer such run. Returns the groups as tuples of initializer indices in rank order,
    ordered by their first member's rank.
    """
    m = np.asarray(means, dtype=float)
    sep = np.asarray(separated, dtype=bool)
    if m.ndim != 1 or sep.shape != (m.size, m.size):
        raise ValueError(f"need means [num_inits] and separated [num_inits, num_inits], "
                         f"got {m.shape} and {sep.shape}")
    if not np.array_equal(sep, sep.T):
        raise ValueError("separated must be symmetric")
    order = [int(i) for i in np.argsort(np.where(np.isfinite(m), -m, np.inf), kind="stable")
             if np.isfinite(m[i])]
    groups, previous_end = [], -1
    for start in range(len(order)):
        end = start  # extend while the new member is inseparable from every member so far
        while end + 1 < len(order) and not sep[order[end + 1], order[start:end + 1]].any():
            end += 1
        # A run from `start` only ends later than the run from `start - 1` or lies inside it.
        if end > start and end > previous_end:
            groups.append(tuple(order[start:end + 1]))
        previous_end = end
    return groups
