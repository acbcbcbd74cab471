"""Curves while they happen: `curves.partial.csv` in the run folder, one block of rows per
trained epoch, flushed at once, so `tail -f` (or `pandas.read_csv` in a notebook) follows a
long run. Its columns are curves.csv's; rows come in the order epochs finish (every cell of
a chunk at epoch e, then e + 1, ...), only for cells trained now (cached ones are already
known), with `diverged` 1 where a loss is NaN or infinite at that epoch. The file is removed
once the run ends, whichever way: the finished folder holds curves.csv instead.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from initbench import results, runfolder
from initbench.spec import Spec

PARTIAL_CURVES = "curves.partial.csv"


class PartialCurves:
    """Appends the rows of each trained epoch to `folder / PARTIAL_CURVES` (created on the
    first epoch, with the header); `close()` removes it."""

    def __init__(self, folder: Path, spec: Spec, dataset_name: str):
        self.path = Path(folder) / PARTIAL_CURVES
        self.spec, self.dataset_name = spec, dataset_name
        self.columns = runfolder.curve_columns(spec)
        self.names = results.metric_names(spec)
        self._handle = None
        self._created_folder = False

    def on_epoch(self, cells, epoch: int, metrics: dict) -> None:
        """Rows for epoch `epoch` of `cells` [(init, seed, data order, lr)]; `metrics`
        holds one host array per metric, [num padded cells], in `cells` order."""
        if self._handle is None:
            self._open()
        rows = []
        for m, (init, seed, data_seed, lr) in enumerate(cells):
            values = {name: float(metrics[name][m]) for name in self.names}
            bad = not all(np.isfinite(values[name]) for name in results.LOSSES)
            rows.append({"dataset": self.dataset_name, "init": init,
                         "bias_init": self.spec.bias_init, runfolder.LR_COLUMN: lr, "seed": seed,
                         runfolder.DATA_SEED_COLUMN: data_seed, "epoch": epoch, **values,
                         "diverged": int(bad)})
        text = runfolder.csv_text(rows, self.columns)
        self._handle.write(text.split("\n", 1)[1])  # without the header
        self._handle.flush()

    def _open(self) -> None:
        if not self.path.parent.exists():
            self.path.parent.mkdir(parents=True)
            self._created_folder = True
        self._handle = open(self.path, "w", newline="")  # noqa: SIM115 (closed in close())
        self._handle.write(",".join(self.columns) + "\n")
        self._handle.flush()

    def close(self) -> None:
        """Remove the file (and the folder this writer created, if nothing else is in it)."""
        if self._handle is None:
            return
        with contextlib.suppress(OSError):
            self._handle.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
        if self._created_folder:
            with contextlib.suppress(OSError):
                self.path.parent.rmdir()
        self._handle = None
