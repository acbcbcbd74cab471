"""The grid loop: every cell of a spec, from the cell cache or trained in chunks of one
`Runner`, and the rounds of `--seeds auto`; a trained grid is [init, seed, epoch].
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from initbench import cellcache, plan, results, stats
from initbench.progress import Reporter
from initbench.runner import Runner, Timings, describe_cells
from initbench.runtime import Runtime
from initbench.spec import Spec


class Grid(NamedTuple):
    """A trained grid: metrics [init, seed, epoch] (NaN from a cell's first diverged epoch
    on), layer metrics [init, seed, epoch, layer], cells trained now, and
    {init: {seed: LSUV passes per layer}} for data-dependent starts."""

    metrics: dict | None
    layer_metrics: dict | None
    trained: int
    lsuv_passes: dict


def train_grid(spec: Spec, dataset, runtime: Runtime, reporter: Reporter, *,
               max_cells_per_chunk: int = plan.MAX_CELLS_PER_CHUNK,
               make_runner: Callable[[], Runner] | None = None,
               timings: Timings | None = None, on_epoch: Callable | None = None) -> Grid:
    """Every cell of `spec`, from the cache or trained now, in chunks of one `Runner`.

    Chunks hold at most `max_cells_per_chunk` cells, fewer when memory would not hold them
    (`sharding.cells_per_chunk`). Processes other than 0 of a multi-process run train what
    process 0 found missing and return a Grid without metrics. `make_runner` (default: a
    new `Runner`) lets several grids of one run share one runner, so nothing is traced twice.
    `timings` gets the marks of `Runner.train` ("runner" once the runner is built).
    """
    from initbench import initializers

    # A cell is (init, seed, data order, lr); its cache entry is that of its single-rate
    # run (`Spec.at_lr`), so `run --lr X` with the same split shares it.
    keys = {lr: cellcache.cache_key(spec.at_lr(lr), dataset) for lr in spec.lr}
    slots = spec.slots
    cells = [(init, seed, d, lr) for init in spec.inits for lr in spec.lr for seed, d in slots]
    found: dict[tuple, dict] = {}
    if runtime.use_cache and runtime.main:
        reporter.phase(f"looking for {describe_cells(len(cells))} in the cache")
        for cell in cells:
            cached = cellcache.load_cell(runtime.cell_cache, spec.at_lr(cell[3]),
                                       initializers.canonical(cell[0]), cell[1], cell[2],
                                       key=keys[cell[3]], notice=reporter.notice)
            if cached is not None:
                found[cell] = cached[0]
    missing = [cell for cell in cells if cell not in found]
    if runtime.distributed:
        from initbench import sharding

        agreed = sharding.from_main_process(np.array([cell in found for cell in cells]))
        missing = [cell for cell, cached in zip(cells, agreed) if not cached]
    if missing:
        from initbench import sharding

        chunk_size = sharding.cells_per_chunk(spec, dataset, max_cells_per_chunk)
        if runtime.distributed:
            chunk_size = int(sharding.from_main_process(np.array([chunk_size]))[0])
        reporter.phase("placing the data on the devices")
        runner = make_runner() if make_runner is not None else Runner(spec, dataset, runtime)
        if timings is not None:
            timings.mark("runner")
        # Several processes would each need a checkpoint: multi-process runs start over.
        checkpoints = None if runtime.distributed else cellcache.Checkpoints(
            runtime.cell_cache, spec, cellcache.cache_key(spec, dataset),
            runtime.checkpoint_every_s, reporter.notice, resume=runtime.use_cache)
        reporter.start(len(missing) * spec.epochs, f"training {describe_cells(len(missing))}")
        try:
            for start in range(0, len(missing), chunk_size):
                chunk = missing[start:start + chunk_size]
                trained = runner.train(chunk, reporter, epoch_hook=checkpoints,
                                       timings=timings, on_epoch=on_epoch)
                for cell, arrays in zip(chunk, trained):
                    found[cell] = arrays
                    if runtime.main:
                        init, seed, d, lr = cell
                        cellcache.save_cell(runtime.cell_cache, spec.at_lr(lr),
                                          initializers.canonical(init), seed, arrays,
                                          {"init": init, "seed": seed,
                                           **({"data_seed": d} if spec.data_seeds > 1 else {}),
                                           **({"lr": lr} if spec.multi_lr else {})},
                                          d, key=keys[lr])
        finally:
            reporter.stop()
    if not runtime.main:
        return Grid(None, None, len(missing), {})
    # [init, slot, epoch]; several rates: [init, lr, slot, epoch] (`RunResult`).
    rates = (len(spec.lr),) if spec.multi_lr else ()
    shape = (len(spec.inits), *rates, len(slots), spec.epochs + 1)
    metric_names = results.metric_names(spec)
    metrics = {name: np.empty(shape) for name in metric_names}
    from initbench.diagnostics import layer_metric_names

    layer_names = layer_metric_names(found[cells[0]])
    layer_metrics = {name: np.empty(shape + found[cells[0]][k].shape[1:])
                     for k, name in layer_names.items()}
    passes: dict[str, dict[str, list[int]]] = {}
    slot_index = {slot: s for s, slot in enumerate(slots)}
    for cell in cells:  # grid order, so spec.json lists inits and seeds in order
        arrays = found[cell]
        init, seed, d, lr = cell
        where = (spec.inits.index(init), *((spec.lr.index(lr),) if rates else ()),
                 slot_index[(seed, d)])
        for name in metric_names:
            metrics[name][where] = arrays[name]
        for k, name in layer_names.items():
            layer_metrics[name][where] = arrays[k]
        if "lsuv_passes" in arrays:
            passes.setdefault(init, {})[str(seed)] = np.asarray(arrays["lsuv_passes"]).tolist()
            # (the passes depend on the weights only: every data order and rate has the same)
    first = stats.first_diverged_epoch(*(metrics[m] for m in results.METRICS))
    metrics = {name: stats.mask_diverged(values, first) for name, values in metrics.items()}
    return Grid(metrics, layer_metrics, len(missing), passes)


def train_until_precise(spec: Spec, dataset, runtime: Runtime, reporter: Reporter,
                        baseline: str, pairs: str,
                        max_cells_per_chunk: int = plan.MAX_CELLS_PER_CHUNK,
                        on_epoch: Callable | None = None) -> tuple[Grid, dict]:
    """`--seeds auto`: train seeds 0, 1, ... in the rounds `sequential.next_seeds` asks for
    until every comparison of the family `pairs` has a SEQUENTIAL_LEVEL CI half-width of at
    most `spec.precision` points, or `spec.seed_limit` seeds are used.

    Each round trains only its new seeds (cells already cached are reused as always).
    Returns the grid over every seed used, [init, seed, epoch] in seed order, and the record
    kept in the run's meta: precision, max seeds, seeds used, rounds, why it stopped and the
    final half-widths in points (one per comparison, in `stats.comparison_pairs` order).
    """
    from initbench import sequential

    family = stats.comparison_pairs(len(spec.inits), spec.inits.index(baseline), pairs)
    grids: list[Grid] = []
    num_seeds = 0
    runner = functools.cache(lambda: Runner(spec, dataset, runtime))  # built once, if needed
    diffs = np.zeros((len(family), 0))
    while True:
        decision = sequential.next_seeds(diffs, spec.precision / 100.0, spec.seed_limit)
        if num_seeds:
            widest = np.nanmax(decision.half_widths) * 100 if family else float("nan")
            reporter.notice(f"{num_seeds} seeds: widest {100 * sequential.SEQUENTIAL_LEVEL:g}% "
                            f"CI half-width {widest:.2f} pt (target {spec.precision:g} pt)"
                            + (f"; stopping: {decision.reason}" if decision.stop else ""))
        if decision.stop:
            break
        new = tuple(range(num_seeds, num_seeds + decision.num_new_seeds))
        grids.append(train_grid(spec.replace(seeds=new), dataset, runtime, reporter,
                                max_cells_per_chunk=max_cells_per_chunk, make_runner=runner,
                                on_epoch=on_epoch))
        num_seeds += len(new)
        final = np.concatenate([g.metrics["test_accuracy"][:, :, -1] for g in grids], axis=1)
        diffs = np.stack([stats.paired_differences(final[i], final[j]) for i, j in family]
                         ) if family else np.zeros((0, num_seeds))
    grid = Grid(
        {k: np.concatenate([g.metrics[k] for g in grids], axis=1) for k in grids[0].metrics},
        {k: np.concatenate([g.layer_metrics[k] for g in grids], axis=1)
         for k in grids[0].layer_metrics},
        sum(g.trained for g in grids),
        {init: {seed: passes for g in grids for seed, passes in g.lsuv_passes.get(init, {}).items()}
         for init in spec.inits if any(init in g.lsuv_passes for g in grids)})
    record = {"precision": spec.precision, "max_seeds": spec.seed_limit,
              "seeds_used": num_seeds, "rounds": len(grids), "stop_reason": decision.reason,
              "level": sequential.SEQUENTIAL_LEVEL, "comparisons": pairs,
              "half_widths_pt": [None if not np.isfinite(h) else float(100 * h)
                                 for h in decision.half_widths]}
    return grid, record
