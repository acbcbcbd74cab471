"""`--seeds auto`: the sequential seed rule, a pure function of the differences so far.

Layout: `diffs[num_comparisons, num_seeds]`, the per-seed paired differences of every
comparison (one row per comparison, seeds in the order trained; NaN where a cell diverged).
`precision` is in the units of `diffs` (accuracy fractions in initbench's files: 0.5 points
is 0.005).

The rule looks at the widths only, never at the means or the verdicts:

1. no seeds yet: train FIRST_ROUND (5);
2. stop, "precision reached", when every comparison's SEQUENTIAL_LEVEL Student t CI has a
   half-width <= precision (a comparison with fewer than 2 finite differences is not precise);
3. stop, "max seeds", when num_seeds >= max_seeds;
4. otherwise add ROUND_SIZE (5) seeds, or fewer so as not to pass max_seeds.

Why SEQUENTIAL_LEVEL = 0.97 and not 0.95: a rule that stops when the interval is narrow stops
more often when the sample sd happens to be small, and then the 95% interval is too narrow.
Simulated with no true difference and one comparison, stopping on and reporting the 95%
interval claimed a difference in up to 7.2% of runs (sd 0.75-1.0 points, precision 0.5,
max 30). Stopping on and reporting the 97% interval keeps it at or below 4.7% for sd
0.3-2.0 points (docs/statistics.md has the table; `simulate_sequential` reproduces it).
A run that used `--seeds auto` must therefore report its paired CIs and verdicts at
SEQUENTIAL_LEVEL (`stats.t_ci(d, SEQUENTIAL_LEVEL)`, verdict alpha 1 - SEQUENTIAL_LEVEL).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FIRST_ROUND = 5
ROUND_SIZE = 5
SEQUENTIAL_LEVEL = 0.97
STOP_PRECISION = "precision reached"
STOP_MAX_SEEDS = "max seeds"


@dataclass(frozen=True)
class Decision:
    """What to do after the seeds trained so far.

    `stop` with `reason` (STOP_PRECISION or STOP_MAX_SEEDS), or not and `num_new_seeds` > 0.
    `half_widths[num_comparisons]`: each comparison's CI half-width now (NaN: n < 2).
    """

    stop: bool
    reason: str
    num_new_seeds: int
    half_widths: np.ndarray


def half_widths(diffs, level: float = SEQUENTIAL_LEVEL) -> np.ndarray:
    """Student t CI half-widths `t_{(1+level)/2, n-1} * sd / sqrt(n)` along the last axis.

    Over the finite entries of `diffs[..., num_seeds]`; NaN where fewer than 2 are finite.
    Equal to half the width of `stats.t_ci(row, level)` for each row.
    """
    from scipy.special import stdtrit

    from initbench.stats import _moments

    n, _, sd = _moments(diffs)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = stdtrit(np.maximum(n - 1, 1), 0.5 + level / 2.0) * sd / np.sqrt(n)
    return np.where(n >= 2, half, np.nan)


def _precise(diffs, precision: float, level: float) -> np.ndarray:
    """True where every comparison (axis -2) has a half-width <= precision."""
    half = half_widths(diffs, level)
    return np.all(half <= precision, axis=-1)  # NaN compares False: not precise


def next_seeds(diffs, precision: float, max_seeds: int, level: float = SEQUENTIAL_LEVEL,
               first_round: int = FIRST_ROUND, round_size: int = ROUND_SIZE) -> Decision:
    """Apply the rule in the module doc to `diffs[num_comparisons, num_seeds]`."""
    d = np.asarray(diffs, dtype=float)
    if d.ndim != 2:
        raise ValueError(f"diffs must have shape [num_comparisons, num_seeds], got {d.shape}")
    if not precision > 0:
        raise ValueError(f"precision must be > 0, got {precision!r}")
    if int(max_seeds) != max_seeds or max_seeds < first_round:
        raise ValueError(f"max_seeds must be an integer >= {first_round}, got {max_seeds!r}")
    if first_round < 2 or round_size < 1:
        raise ValueError(f"need first_round >= 2 and round_size >= 1, got "
                         f"{first_round!r}, {round_size!r}")
    num_seeds = d.shape[1]
    if num_seeds == 0:
        return Decision(False, "", first_round, np.full(d.shape[0], np.nan))
    half = half_widths(d, level)
    if d.shape[0] == 0 or bool(_precise(d, precision, level)):
        return Decision(True, STOP_PRECISION, 0, half)
    if num_seeds >= max_seeds:
        return Decision(True, STOP_MAX_SEEDS, 0, half)
    return Decision(False, "", int(min(round_size, max_seeds - num_seeds)), half)


def stopping_seeds(diffs, precision: float, max_seeds: int, level: float = SEQUENTIAL_LEVEL,
                   first_round: int = FIRST_ROUND, round_size: int = ROUND_SIZE) -> np.ndarray:
    """Seeds at which the rule stops, for many simulated runs at once.

    `diffs[num_runs, num_comparisons, >= max_seeds]` holds every seed a run could train;
    returns int `[num_runs]`. The same decisions as calling `next_seeds` round by round
    (tested), vectorised over runs for the simulations.
    """
    d = np.asarray(diffs, dtype=float)
    if d.ndim != 3 or d.shape[2] < max_seeds:
        raise ValueError(f"diffs must have shape [num_runs, num_comparisons, >= max_seeds], "
                         f"got {d.shape}")
    stop = np.full(d.shape[0], -1)
    n = first_round
    while True:
        open_ = stop < 0
        precise = _precise(d[open_, :, :n], precision, level)
        idx = np.flatnonzero(open_)
        stop[idx[precise]] = n
        if n >= max_seeds:
            stop[stop < 0] = n
            return stop
        n = min(n + round_size, max_seeds)
