"""Width as an axis: `initbench transfer` trains every (parameterization, width, rate, seed)
cell with the grid runner and writes the transfer verdict (`initbench.transfer`).

Each (parameterization, width) is one grid of `grid.train_grid`: its cells (every
rate x seed) share one compiled program (shapes differ between widths), come from and go to
the cell cache like any run's, and keep the paired design: a seed's minibatch order is the
same at every width, rate and parameterization (`model.data_key`), and its weights those of
(initializer, seed) at that width.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from initbench import transfer as transfer_lib
from initbench.errors import InitbenchError
from initbench.spec import HIDDEN_MODELS, Spec

# metric -> whether lower is better
METRICS = {"train_loss": True, "val_loss": True, "val_accuracy": False}
COLUMNS = ("param", "width", "base_width", "best_lr", "best_lr_low", "best_lr_high", "at_edge",
           "slope", "slope_low", "slope_high", "verdict", "seeds_to_decide", "num_seeds",
           "tolerance", "metric")
CELL_COLUMNS = ("param", "width", "lr", "seed", "value")


@dataclass
class TransferRun:
    """A transfer study: `values[param]` [width, lr, seed] is the final `metric` of each
    cell (NaN: diverged), `results[param]` its verdict."""

    spec: Spec
    params: tuple[str, ...]
    widths: tuple[int, ...]
    depth: int | None  # hidden layers of the MLP; None: the network's own
    base_width: int
    metric: str
    values: dict[str, np.ndarray]
    results: dict[str, transfer_lib.Transfer]
    meta: dict


def check_study(widths: tuple[int, ...], params: tuple[str, ...], tolerance: float) -> None:
    """InitbenchError for a width study (`transfer` or `coord`) that cannot give a verdict:
    an unknown or repeated parameterization, fewer than 2 different widths, a tolerance
    that is no positive number."""
    from initbench import parameterizations

    for param in params:
        parameterizations.get(param)
    if len(set(params)) != len(params):
        raise InitbenchError(f"--param: listed twice: {','.join(params)}.")
    if len(widths) < 2 or len(set(widths)) != len(widths):
        raise InitbenchError(f"--widths needs at least 2 different widths, got "
                             f"{','.join(map(str, widths))}.")
    if not (tolerance > 0 and np.isfinite(tolerance)):
        raise InitbenchError(f"--tolerance must be a positive number, got {tolerance}.")


def check_widths(widths: tuple[int, ...], params: tuple[str, ...], metric: str,
                 lrs: tuple[float, ...], tolerance: float) -> None:
    """InitbenchError for a transfer study that cannot give a verdict, before anything is
    trained: `check_study`'s, a known metric and at least 3 rates."""
    check_study(widths, params, tolerance)
    if metric not in METRICS:
        from initbench.errors import unknown_name

        raise unknown_name("metric", metric, METRICS)
    if len(lrs) < 3:
        raise InitbenchError(f"--lr needs at least 3 rates to locate a best one, got {len(lrs)} "
                             "(e.g. 1e-4:1e-1:13).")


def width_spec(spec: Spec, param: str, width: int, depth: int | None,
               base_width: int) -> Spec:
    """The spec of one (parameterization, width) grid: a network --hidden shapes (the MLP,
    the residual nets) with `depth` hidden layers (blocks) of `width`; any other network
    built at `width` (`spec.width`: the built-in CNN, or a user factory that takes one)."""
    base = None if param == "sp" else base_width
    if spec.model in HIDDEN_MODELS:
        return spec.replace(hidden=(width,) * depth, param=param, base_width=base)
    return spec.replace(width=width, param=param, base_width=base)


def check_networks(spec: Spec, params: tuple[str, ...], widths: tuple[int, ...],
                   depth: int | None, base_width: int, dataset) -> None:
    """InitbenchError (one line) before anything is trained when the network cannot be
    built at every width (a factory takes no width, or it does not take the dataset's
    images) or a parameterization needs layer roles it does not tell."""
    from initbench import networks, parameterize

    for width in widths:
        for param in params:
            wide = width_spec(spec, param, width, depth, base_width)
            network = networks.check(wide, dataset.num_classes, dataset.image_shape,
                                     dataset.name)
            parameterize.check_network(wide, network)


def run_transfer(spec: Spec, params: tuple[str, ...], widths: tuple[int, ...],
                 depth: int | None,
                 base_width: int | None, metric: str, tolerance: float, dataset, runtime,
                 reporter) -> TransferRun:
    """Train the study's grids (cached cells reused) and compute each verdict."""
    from initbench import grid, provenance

    started = time.perf_counter()
    widths = tuple(sorted(widths))
    base = base_width if base_width is not None else widths[0]
    check_networks(spec, params, widths, depth, base, dataset)
    values: dict[str, np.ndarray] = {}
    trained = 0
    for param in params:
        per_width = []
        for width in widths:
            reporter.notice(f"--param {param}, width {width}: {len(spec.lr)} rates x "
                            f"{len(spec.seeds)} seeds")
            trained_grid = grid.train_grid(width_spec(spec, param, width, depth, base), dataset,
                                           runtime, reporter)
            trained += trained_grid.trained
            per_width.append(trained_grid.metrics[metric][0, :, :, -1])  # [lr, seed], last epoch
        values[param] = np.stack(per_width)
    sign = 1.0 if METRICS[metric] else -1.0
    results = {param: transfer_lib.transfer(widths, spec.lr, sign * values[param], tolerance)
               for param in params}
    meta = {"command": list(runtime.command), "cells_trained": trained,
            "seconds": round(time.perf_counter() - started, 3),
            "num_train": len(dataset.x_train), **provenance.environment()}
    return TransferRun(spec, tuple(params), widths, depth, base, metric, values, results, meta)


def rows(run: TransferRun) -> list[dict]:
    """transfer.csv's rows: one per (parameterization, width)."""
    out = []
    for param, result in run.results.items():
        for i, width in enumerate(run.widths):
            out.append({"param": param, "width": width,
                        "base_width": run.base_width if param != "sp" else "",
                        "best_lr": float(result.best_lr[i]),
                        "best_lr_low": float(result.best_lr_low[i]),
                        "best_lr_high": float(result.best_lr_high[i]),
                        "at_edge": bool(result.at_edge[i]), "slope": result.slope,
                        "slope_low": result.slope_low, "slope_high": result.slope_high,
                        "verdict": result.verdict,
                        "seeds_to_decide": ("" if result.seeds_to_decide is None
                                            else result.seeds_to_decide),
                        "num_seeds": result.num_seeds, "tolerance": result.tolerance,
                        "metric": run.metric})
    return out


def cell_rows(run: TransferRun) -> list[dict]:
    """transfer_cells.csv's rows: the final metric of every cell."""
    return [{"param": param, "width": width, "lr": lr, "seed": seed,
             "value": float(run.values[param][i, j, s])}
            for param in run.params for i, width in enumerate(run.widths)
            for j, lr in enumerate(run.spec.lr) for s, seed in enumerate(run.spec.seeds)]


def document(run: TransferRun) -> dict:
    """spec.json of a transfer folder (and the --json document)."""
    spec = {k: v for k, v in run.spec.to_dict().items() if k not in ("hidden", "width")}
    return {"study": "transfer", "spec": spec, "params": list(run.params),
            "widths": list(run.widths), "depth": run.depth, "base_width": run.base_width,
            "metric": run.metric,
            "verdicts": {p: {"slope": r.slope, "slope_low": r.slope_low,
                             "slope_high": r.slope_high, "verdict": r.verdict,
                             "seeds_to_decide": r.seeds_to_decide, "tolerance": r.tolerance,
                             "level": transfer_lib.LEVEL}
                         for p, r in run.results.items()},
            **run.meta}


def write(out: Path, run: TransferRun) -> None:
    """transfer.csv, transfer_cells.csv, transfer.png and spec.json in `out`, at once."""
    from initbench import runfolder, safeio, scaling_plots

    files = {"transfer.csv": runfolder.csv_text(rows(run), COLUMNS).encode(),
             "transfer_cells.csv": runfolder.csv_text(cell_rows(run), CELL_COLUMNS).encode(),
             "transfer.png": scaling_plots.render_transfer(run),
             "spec.json": (json.dumps(document(run), indent=2) + "\n").encode()}
    safeio.write_folder(out, files, replaceable=tuple(files))
