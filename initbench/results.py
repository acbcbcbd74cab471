"""A finished grid as a value (`RunResult`) and the names of the metrics each cell records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from initbench.spec import Spec

METRICS = ("train_loss", "test_loss", "test_accuracy")
# A cell has diverged from the first epoch where one of these is not finite (curves.csv's
# `diverged` column, `RunResult.diverged`).
LOSSES = ("train_loss", "test_loss")
# With a validation split (`Spec.val_fraction`) every cell also records these, per epoch.
VAL_METRICS = ("val_loss", "val_accuracy")


def metric_names(spec: Spec) -> tuple[str, ...]:
    """The per-epoch metrics of `spec`'s cells: METRICS, then VAL_METRICS with a split."""
    return METRICS + (VAL_METRICS if spec.val_fraction is not None else ())


@dataclass
class RunResult:
    """A finished grid. `metrics[name]` is [num_inits, num_slots, num_epochs + 1] (epoch 0 =
    before the first step); NaN from a cell's first diverged epoch on. A slot is a seed, or
    under `--data-seeds K > 1` a (seed, data order) pair, seed-major (`slots`).

    With several learning rates (`spec.multi_lr`) the grid is [num_inits, num_lrs,
    num_slots, num_epochs + 1]: `at_lr(lr)` is the ordinary single-rate result of one rate,
    and `summary.tuned_result` the one of each initializer at its chosen rate, so every
    statistic, table and figure works on [init, seed, epoch] as before. Its summary is a
    separate value (`summary.summarize_all`), computed from it and never stored in it."""

    spec: Spec
    metrics: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)
    layer_metrics: dict[str, np.ndarray] = field(default_factory=dict)  # [init, seed, epoch, layer]
    labels: tuple[str, ...] | None = None  # row names when they are not spec.inits (merge_runs)

    @property
    def inits(self) -> list[str]:
        return list(self.labels if self.labels is not None else self.spec.inits)

    @property
    def seeds(self) -> list[int]:
        return list(self.spec.seeds)

    @property
    def slots(self) -> list[tuple[int, int]]:
        """(seed, data order) of every index of the seed axis (data order 0 when K = 1)."""
        return self.spec.slots

    @property
    def dataset(self) -> str:
        return self.spec.dataset or "?"

    @property
    def multi_lr(self) -> bool:
        """True when the metrics hold an lr axis ([init, lr, slot, epoch])."""
        return self.spec.multi_lr and self.metrics["test_loss"].ndim == 4

    def at_lr(self, lr: float) -> RunResult:
        """The single-rate result of rate `lr` of a multi-rate grid ([init, slot, epoch])."""
        index = self.spec.lr.index(lr)
        return RunResult(self.spec.at_lr(lr), {k: v[:, index] for k, v in self.metrics.items()},
                         dict(self.meta),
                         {k: v[:, index] for k, v in self.layer_metrics.items()})

    @property
    def diverged(self) -> np.ndarray:
        """[init, seed, epoch] bool: the cell had diverged by that epoch."""
        return np.logical_or.reduce([~np.isfinite(self.metrics[name]) for name in LOSSES])
