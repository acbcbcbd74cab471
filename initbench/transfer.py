"""The transfer verdict: does the best learning rate move with width? Pure NumPy.

One layout throughout: `values` [width, lr, seed], the final value of the metric of each
cell (NaN for a diverged cell), lower is better (negate accuracies before calling).

- the best rate at a width: the rate grid's minimum of the mean over seeds, refined by a
  parabola in log-rate through it and its two neighbours (its vertex, kept between them);
  at an end of the grid the end itself, flagged `at_edge`;
- its interval, and the slope's: a bootstrap over seeds, the same resampled seeds at every
  width (the paired design: a seed's data order is the same at every width and rate);
- the slope of log(best rate) against log(width), by least squares, with its interval;
- the verdict (`verdict`): transfers when the slope's interval lies inside +/- tolerance,
  shifts when it excludes 0, else undecided, with the seeds that would likely decide it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
NUM_BOOTSTRAP = 2000
DEFAULT_TOLERANCE = 0.25


def best_log_rates(log_lrs: np.ndarray, losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(best log-rate, at_edge) for each row of `losses` [..., lr] (a mean over seeds;
    NaN = diverged, never best). The grid minimum, refined by the vertex of the parabola
    through it and its neighbours in log-rate (clipped to them); at an end of the grid, or
    with a diverged neighbour, the grid point itself. All-NaN rows give NaN."""
    best, at_edge, _ = best_points(log_lrs, losses)
    return best, at_edge


def best_points(log_lrs: np.ndarray, losses: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`best_log_rates` and the fitted value there (the parabola's, or the grid's)."""
    log_lrs = np.asarray(log_lrs, float)
    losses = np.where(np.isfinite(losses), losses, np.inf)
    k = np.argmin(losses, axis=-1)
    num = len(log_lrs)
    all_bad = ~np.isfinite(np.min(losses, axis=-1))
    at_edge = (k == 0) | (k == num - 1)
    inner = np.clip(k, 1, num - 2)
    y0, y1, y2 = (np.take_along_axis(losses, (inner + d)[..., None], -1)[..., 0]
                  for d in (-1, 0, 1))
    x0, x1, x2 = log_lrs[inner - 1], log_lrs[inner], log_lrs[inner + 1]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # vertex of the parabola through three points (x0 < x1 < x2)
        num_ = (x1 - x0) ** 2 * (y1 - y2) - (x1 - x2) ** 2 * (y1 - y0)
        den = (x1 - x0) * (y1 - y2) - (x1 - x2) * (y1 - y0)
        vertex = x1 - 0.5 * num_ / den
    ok = np.isfinite(vertex) & np.isfinite(y0) & np.isfinite(y2) & ~at_edge
    best = np.where(ok, np.clip(vertex, x0, x2), log_lrs[k])
    with np.errstate(invalid="ignore", over="ignore"):  # Lagrange form at the best point
        value = (y0 * (best - x1) * (best - x2) / ((x0 - x1) * (x0 - x2))
                 + y1 * (best - x0) * (best - x2) / ((x1 - x0) * (x1 - x2))
                 + y2 * (best - x0) * (best - x1) / ((x2 - x0) * (x2 - x1)))
    value = np.where(ok, value, np.take_along_axis(losses, k[..., None], -1)[..., 0])
    return (np.where(all_bad, np.nan, best), at_edge & ~all_bad,
            np.where(all_bad, np.nan, value))


def slope(log_widths: np.ndarray, log_rates: np.ndarray) -> np.ndarray:
    """Least-squares slope of `log_rates` [..., width] against `log_widths` [width]."""
    x = np.asarray(log_widths, float) - np.mean(log_widths)
    y = log_rates - np.mean(log_rates, axis=-1, keepdims=True)
    return np.sum(x * y, axis=-1) / np.sum(x * x)


@dataclass(frozen=True)
class Transfer:
    """The transfer result of one parameterization. Rates in learning-rate units, widths
    ascending; `best_*` [width]; slope and its interval in log-rate per log-width."""

    widths: tuple[int, ...]
    best_lr: np.ndarray
    best_lr_low: np.ndarray
    best_lr_high: np.ndarray
    at_edge: np.ndarray
    slope: float
    slope_low: float
    slope_high: float
    verdict: str
    seeds_to_decide: int | None
    num_seeds: int
    tolerance: float


def transfer(widths, lrs, values: np.ndarray, tolerance: float = DEFAULT_TOLERANCE,
             num_bootstrap: int = NUM_BOOTSTRAP, seed: int = 0) -> Transfer:
    """The best rate per width and the slope of log(best rate) against log(width), with
    bootstrap-over-seeds intervals at LEVEL, and the verdict; `values` [width, lr, seed]."""
    values = np.asarray(values, float)
    num_widths, num_lrs, num_seeds = values.shape
    if num_widths < 2 or num_lrs < 3:
        raise ValueError(f"need >= 2 widths and >= 3 rates, got {num_widths} and {num_lrs}")
    log_w, log_lr = np.log(np.asarray(widths, float)), np.log(np.asarray(lrs, float))
    best, edge = best_log_rates(log_lr, _mean(values))
    point = float(slope(log_w, best))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, num_seeds, size=(num_bootstrap, num_seeds))
    boot = _mean(values[:, :, picks].transpose(2, 0, 1, 3))  # [B, width, lr]
    boot_best, _ = best_log_rates(log_lr, boot)
    boot_slopes = slope(log_w, boot_best)
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.nanpercentile(boot_slopes, [tail, 100 - tail])
    rate_low, rate_high = np.nanpercentile(boot_best, [tail, 100 - tail], axis=0)
    verdict, needed = decide(point, float(low), float(high), tolerance, num_seeds,
                             bool(edge.any()))
    return Transfer(tuple(int(w) for w in widths), np.exp(best), np.exp(rate_low),
                    np.exp(rate_high), edge, point, float(low), float(high), verdict, needed,
                    num_seeds, tolerance)


def decide(point: float, low: float, high: float, tolerance: float, num_seeds: int,
           at_edge: bool = False) -> tuple[str, int | None]:
    """(verdict, seeds likely to decide it or None): 'transfers' when [low, high] lies
    inside +/- tolerance, 'shifts' when it excludes 0, else 'undecided'. An optimum at an
    end of the rate grid is 'undecided' (the slope is censored; widen --lr). The seeds: the
    interval's half-width shrinks like 1/sqrt(seeds); the nearer decision is the goal."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "undecided", None
    if at_edge:
        return "undecided", None
    if -tolerance < low and high < tolerance:
        return "transfers", None
    if low > 0 or high < 0:
        return "shifts", None
    half = (high - low) / 2
    goal = max(tolerance - abs(point), abs(point))
    if goal <= 0 or half <= 0:
        return "undecided", None
    return "undecided", math.ceil(num_seeds * (half / goal) ** 2)


def _mean(values: np.ndarray) -> np.ndarray:
    """Mean over the last (seed) axis; a rate with any diverged seed is NaN (never best)."""
    return np.mean(values, axis=-1)
