"""Seed planning for the paired t test: power, seeds needed, minimum detectable effect.

Pure NumPy + scipy.special (no scipy.stats import). Units: `effect` and `sd` are in the same
units as the per-seed paired differences (accuracy fractions in initbench's files; the CLI
converts points). `sd` is the standard deviation of the per-seed paired differences
(`values - baseline` on the same seed), e.g. from a pilot run.

The test is the one behind the verdicts: two-sided paired t at level `alpha` with n seeds,
df = n - 1. Under a true mean difference `effect`, t follows a noncentral t with
noncentrality nc = (effect / sd) * sqrt(n), so

    power(n) = P(T' >= c) + P(T' <= -c),   c = t_{1 - alpha/2, n-1},   T' ~ nct(n - 1, nc)

(both tails, like G*Power's "Means: difference from constant (one sample case)" / matched
pairs). Known value: d_z = 0.5 needs n = 34 for 80% power at alpha = 0.05 (power 0.808).

The noncentral t CDF is `scipy.special.nctdtr`, which returns NaN far in its tails (about a
quarter of a grid of n = 2..200 and effects up to 1e6 sd: the lower tail from nc ~ 7.5, the
upper from nc ~ 35). A NaN read as a number once made the 80% search stop early (mde_80 at
2 seeds was 5.36 sd, true 11.55). `nct_cdf` replaces each NaN by a quadrature over the
chi-square variable, `P(T' <= x) = E_V[Phi(x * sqrt(V / df) - nc)]`, so power is never NaN
(tested against statsmodels' TTestPower at n = 2, 3, 5, 30 and effects up to 1e4 sd).

Planning for the verdict a run gives: the verdicts are Holm-corrected over a family of m
comparisons, so a comparison is tested at alpha / m in Holm's first step and at alpha at
best in its last. `family_alpha(m, level)` is the first step's alpha / m (Bonferroni): the
level that guarantees the planned power whatever the other comparisons do.
"""

from __future__ import annotations

import numpy as np

from initbench.stats import ALPHA, MIN_PAIRED_SEEDS

POWER = 0.80
MAX_SEEDS_SEARCHED = 10_000_000


def paired_power(num_seeds, effect, sd, alpha: float = ALPHA):
    """Power of the two-sided paired t test with `num_seeds` seeds (broadcasts; floats in).

    num_seeds >= 2; sd > 0. effect may be negative (power is symmetric in its sign).
    """
    from scipy.special import stdtrit

    n = np.asarray(num_seeds, dtype=float)
    if np.any(n < 2):
        raise ValueError(f"num_seeds must be >= 2, got {num_seeds!r}")
    sd = np.asarray(sd, dtype=float)
    if np.any(~(sd > 0)):
        raise ValueError(f"sd must be > 0, got {sd!r}")
    _check_alpha(alpha)
    df = n - 1
    nc = np.abs(np.asarray(effect, dtype=float)) / sd * np.sqrt(n)
    c = stdtrit(df, 1.0 - alpha / 2.0)
    power = 1.0 - nct_cdf(df, nc, c) + nct_cdf(df, nc, -c)
    return _scalar(np.clip(power, 0.0, 1.0))


_QUADRATURE_POINTS = 4096


def nct_cdf(df, nc, x):
    """P(T' <= x) for a noncentral t with `df` degrees of freedom and noncentrality `nc`
    (broadcasts): `scipy.special.nctdtr`, with its NaNs replaced by a quadrature.

    The quadrature averages Phi(x * sqrt(v / df) - nc) over chi-square(df) quantiles v at
    4096 evenly spaced probabilities (midpoint rule in probability); its absolute error is
    below 1e-3 and it is used only where nctdtr gives NaN, where the answer is within
    1e-13 of 0 or 1 (measured on n = 2..200, nc up to 1e6).
    """
    from scipy.special import chdtri, nctdtr, ndtr

    df, nc, x = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (df, nc, x)))
    cdf = np.array(nctdtr(df, nc, x), dtype=float, ndmin=1).reshape(df.shape)
    bad = np.isnan(cdf)
    if np.any(bad):
        u = (np.arange(_QUADRATURE_POINTS) + 0.5) / _QUADRATURE_POINTS
        d, m, t = df[bad][:, None], nc[bad][:, None], x[bad][:, None]
        v = chdtri(d, u[None, :])  # upper-tail quantiles: the same grid, mirrored
        cdf[bad] = ndtr(t * np.sqrt(v / d) - m).mean(axis=1)
    return cdf


def seeds_needed(effect: float, sd: float, power: float = POWER, alpha: float = ALPHA) -> int:
    """Smallest number of seeds n whose paired t test reaches `power` for a true `effect`.

    At least MIN_PAIRED_SEEDS (3: initbench gives no verdict below it). Raises ValueError for
    effect == 0 (no n suffices) or an n above MAX_SEEDS_SEARCHED. Power rises with n, so this
    is a doubling search then a bisection on integers.
    """
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power!r}")
    if not np.isfinite(effect) or effect == 0:
        raise ValueError(f"effect must be a non-zero finite number, got {effect!r}")
    lo, hi = MIN_PAIRED_SEEDS - 1, MIN_PAIRED_SEEDS  # invariant: power(lo) < target <= power(hi)
    if paired_power(hi, effect, sd, alpha) >= power:
        return hi
    while paired_power(hi, effect, sd, alpha) < power:
        lo, hi = hi, hi * 2
        if hi > MAX_SEEDS_SEARCHED:
            raise ValueError(f"more than {MAX_SEEDS_SEARCHED} seeds needed for effect {effect!r}")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if paired_power(mid, effect, sd, alpha) >= power:
            hi = mid
        else:
            lo = mid
    return int(hi)


def minimum_detectable_effect(num_seeds, sd, power: float = POWER, alpha: float = ALPHA):
    """Smallest |effect| the paired t test detects with `power` at `num_seeds` (the mde_80).

    Broadcasts over `num_seeds` and `sd`; same units as `sd`. Power rises with |effect|, so
    the effect is found by 80 bisection steps on the noncentrality (relative error < 1e-12).
    NaN where num_seeds < 2 or sd is not a positive finite number; 0 where sd == 0.
    """
    from scipy.special import stdtrit

    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power!r}")
    _check_alpha(alpha)
    n, sd = np.broadcast_arrays(np.asarray(num_seeds, dtype=float), np.asarray(sd, dtype=float))
    ok = (n >= 2) & np.isfinite(sd) & (sd >= 0)
    df = np.where(ok, n - 1, 1.0)
    c = stdtrit(df, 1.0 - alpha / 2.0)

    def power_at(nc):
        return 1.0 - nct_cdf(df, nc, c) + nct_cdf(df, nc, -c)

    low = np.zeros_like(df)
    high = np.full_like(df, 1.0)
    while np.any(power_at(high) < power):  # grow the bracket until it holds the answer
        high = np.where(power_at(high) < power, high * 2.0, high)
    for _ in range(80):
        mid = (low + high) / 2.0
        below = power_at(mid) < power
        low, high = np.where(below, mid, low), np.where(below, high, mid)
    effect = np.where(ok, high / np.sqrt(np.where(ok, n, 1.0)) * sd, np.nan)
    return _scalar(effect)


def family_alpha(num_comparisons: int, level: float = 1.0 - ALPHA) -> float:
    """The per-comparison alpha to plan with for a Holm family of `num_comparisons` at the
    family level `level` (0.95, or 0.97 for `--seeds auto`): (1 - level) / m, the alpha of
    Holm's first step (Bonferroni), so the planned power holds for every comparison."""
    if int(num_comparisons) != num_comparisons or num_comparisons < 1:
        raise ValueError(f"num_comparisons must be an integer >= 1, got {num_comparisons!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    return (1.0 - level) / num_comparisons


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


def _scalar(x):
    x = np.asarray(x)
    return x.item() if x.ndim == 0 else x
