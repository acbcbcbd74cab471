"""Run a comparison end to end: data, cached cells, compiled training, results on disk.

This is the library behind `initbench run` and `initbench compare`; the CLI only parses
options into a `Spec` and renders what this returns.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Protocol

import numpy as np

from initbench import jax_setup, results, stats
from initbench.errors import InitbenchError
from initbench.spec import Spec

CHECKPOINT_EVERY_S = 20.0
MAX_CELLS_PER_CHUNK = 128  # bounds device memory; bigger grids train chunk after chunk


class Reporter(Protocol):
    """Where progress goes (a rich progress bar in the CLI, nothing in tests)."""

    def notice(self, text: str) -> None: ...
    def start(self, total: int, description: str) -> None: ...
    def advance(self, amount: int) -> None: ...
    def stop(self) -> None: ...


class SilentReporter:
    """A Reporter that reports nothing."""

    def notice(self, text: str) -> None:
        pass

    def start(self, total: int, description: str) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def stop(self) -> None:
        pass


def load_data(spec: Spec):
    """(dataset, fallback notice or None) for the spec; an explicit dataset never falls back."""
    from initbench import data as data_lib

    if spec.dataset is None:
        return data_lib.load_default()
    return data_lib.load(spec.dataset), None


def run_experiment(spec: Spec, out: Path, reporter: Reporter | None = None,
                   use_cache: bool = True, command: list[str] | None = None,
                   baseline: str | None = None, target: float | None = None,
                   max_cells_per_chunk: int = MAX_CELLS_PER_CHUNK) -> results.RunResult | None:
    """Train every (init, seed) cell of `spec` not already cached and write `out`.

    Returns the whole grid; cells cached under the same training setting are reused.
    In a multi-process run (`jax_setup.init_distributed`) only process 0 reads the cache and
    writes anything; the other processes train their share and return None. Process 0 holds
    `out`'s lock (`safeio.folder_lock`) throughout: a second writer is refused.
    """
    import contextlib

    from initbench import safeio

    main = is_main_process()
    if main:  # before the lock, whose file sits beside `out`
        out = results.check_writable(out)
    with safeio.folder_lock(out) if main else contextlib.nullcontext():
        return _run_experiment(spec, out, reporter, use_cache, command, baseline, target,
                               max_cells_per_chunk)


def _run_experiment(spec, out, reporter, use_cache, command, baseline, target,
                    max_cells_per_chunk):
    from initbench import summary

    reporter = reporter or SilentReporter()
    out = Path(out)
    baseline = spec.resolve_init(baseline, "--baseline")
    main = is_main_process()
    if main:
        out = results.check_writable(out, results.estimate_run_bytes(spec))
        results.check_cache_writable()
    started = time.perf_counter()
    dataset, notice = load_data(spec)
    if notice:
        reporter.notice(notice)
    requested = spec.dataset
    spec = spec.replace(dataset=dataset.name)
    if main:
        _check_same_setting(out, spec)
    if spec.batch_size > len(dataset.x_train):
        raise InitbenchError(
            f"--batch-size {spec.batch_size} is larger than the training set of "
            f"{dataset.name} ({len(dataset.x_train)} examples)."
        )
    metrics, layer_metrics, trained = train_grid(spec, dataset, reporter, use_cache,
                                                 max_cells_per_chunk)
    if not main:
        return None
    meta = {
        "command": command or sys.argv,
        "dataset_requested": requested or "default (mnist, else mnist-5k)",
        "dataset_notice": notice,
        "num_train": len(dataset.x_train), "num_test": len(dataset.x_test),
        "cells_trained": trained, "cells_cached": len(spec.inits) * len(spec.seeds) - trained,
        "seconds": round(time.perf_counter() - started, 3),
        "baseline": baseline or spec.inits[0], "target": target,
        **environment(),
    }
    from initbench import lsuv

    if passes := lsuv.passes_by_init(spec, dataset):
        meta["lsuv_passes"] = passes
        reporter.notice(lsuv.describe(passes))
    result = results.RunResult(spec, metrics, meta, layer_metrics)
    rows = summary.summarize_run(result, baseline, target)
    from initbench import plots

    results.write_run(out, result, rows, summary.SUMMARY_COLUMNS,
                      {"curves.png": plots.render(result, rows, "png")})
    return result


def _check_same_setting(out: Path, spec: Spec) -> None:
    """Refuse to overwrite a run folder that holds a different training setting, or cells
    this run would drop (see `results.check_replaces`)."""
    results.check_replaces(out, spec)


def train_grid(spec: Spec, dataset, reporter: Reporter, use_cache: bool,
               max_cells_per_chunk: int):
    """Metrics [init, seed, epoch] of every cell (cached or trained) and the count trained.

    Chunks hold at most `max_cells_per_chunk` cells, fewer when memory would not hold them
    (`sharding.cells_per_chunk`). Processes other than 0 of a multi-process run train what
    process 0 found missing and return (None, None, count).
    """
    from initbench import initializers

    main = is_main_process()
    key = results.cache_key(spec, dataset)
    cells = [(init, seed) for init in spec.inits for seed in spec.seeds]
    found: dict[tuple[str, int], dict] = {}
    if use_cache and main:
        for init, seed in cells:
            cached = results.load_cell(spec, initializers.canonical(init), seed,
                                       key, reporter.notice)
            if cached is not None:
                found[(init, seed)] = cached[0]
    missing = [cell for cell in cells if cell not in found]
    if jax_setup.is_distributed():
        from initbench import sharding

        agreed = sharding.from_main_process(np.array([cell in found for cell in cells]))
        missing = [cell for cell, cached in zip(cells, agreed) if not cached]
    if missing:
        from initbench import sharding

        chunk_size = sharding.cells_per_chunk(spec, dataset, max_cells_per_chunk)
        if jax_setup.is_distributed():
            chunk_size = int(sharding.from_main_process(np.array([chunk_size]))[0])
        reporter.start(len(missing) * spec.epochs, f"training {_cells(len(missing))}")
        try:
            for start in range(0, len(missing), chunk_size):
                chunk = missing[start:start + chunk_size]
                for cell, arrays in zip(chunk, train_chunk(spec, dataset, chunk, reporter,
                                                           resume=use_cache)):
                    found[cell] = arrays
                    if main:
                        results.save_cell(spec, initializers.canonical(cell[0]), cell[1],
                                          arrays, {"init": cell[0], "seed": cell[1]},
                                          key)
        finally:
            reporter.stop()
    if not main:
        return None, None, len(missing)
    shape = (len(spec.inits), len(spec.seeds), spec.epochs + 1)
    metrics = {name: np.empty(shape) for name in results.METRICS}
    layer_names = sorted(k for k in found[cells[0]] if k.startswith("layer_"))
    layer_metrics = {k[len("layer_"):]: np.empty(shape + found[cells[0]][k].shape[1:])
                     for k in layer_names}
    for (init, seed), arrays in found.items():
        i, s = spec.inits.index(init), spec.seeds.index(seed)
        for name in results.METRICS:
            metrics[name][i, s] = arrays[name]
        for k in layer_names:
            layer_metrics[k[len("layer_"):]][i, s] = arrays[k]
    first = stats.first_diverged_epoch(*(metrics[m] for m in results.METRICS))
    metrics = {name: stats.mask_diverged(values, first) for name, values in metrics.items()}
    return metrics, layer_metrics, len(missing)


def train_chunk(spec: Spec, dataset, cells: list[tuple[str, int]], reporter: Reporter,
                resume: bool = True):
    """Train `cells` together in one compiled program; one dict of [epoch] arrays per cell.

    The state is checkpointed every CHECKPOINT_EVERY_S seconds, so an interrupted chunk
    resumes from its last checkpoint instead of epoch 0 (unless `resume` is False:
    `--no-cache`). A damaged checkpoint is set aside and the chunk starts over.
    """
    import jax

    from initbench import sharding, train

    mesh = sharding.cell_mesh()
    padded = sharding.pad_cells(cells, mesh)
    fns = train.make_train(spec, dataset, mesh)
    state = fns.init_fn(padded)
    cells_key = hashlib.sha256(json.dumps(padded).encode()).hexdigest()[:16]
    ckpt_path = results.checkpoint_path(spec, cells_key,
                                       results.cache_key(spec, dataset))
    # Several processes would each need the checkpoint: multi-process runs start over.
    checkpointing = not jax_setup.is_distributed()
    checkpoint = (results.load_checkpoint(ckpt_path, reporter.notice,
                                          [_host_shape(a) for a in jax.tree.leaves(state)])
                  if checkpointing and resume else None)
    if checkpoint is not None:
        leaves, done, history = checkpoint
        treedef = jax.tree.structure(state)
        state = jax.tree.unflatten(treedef, [
            jax.device_put(_from_host(leaf, old), old.sharding)
            for leaf, old in zip(leaves, jax.tree.leaves(state))
        ])
        history = {k: list(v) for k, v in history.items()}
        reporter.notice(f"resuming {_cells(len(cells))} from epoch {done} (checkpoint)")
        reporter.advance(done * len(cells))
    else:
        done = 0
        history = {k: [v] for k, v in sharding.to_host(fns.eval_fn(state)).items()}
    last_save = time.monotonic()
    for epoch in range(done + 1, spec.epochs + 1):
        state, metrics = fns.epoch_fn(state, epoch)
        for k, v in sharding.to_host(metrics).items():
            history[k].append(v)
        reporter.advance(len(cells))
        if (checkpointing and time.monotonic() - last_save > CHECKPOINT_EVERY_S
                and epoch < spec.epochs):
            leaves = [_to_host(leaf) for leaf in jax.tree.leaves(state)]
            results.save_checkpoint(ckpt_path, leaves, epoch,
                                    {k: np.stack(v) for k, v in history.items()})
            last_save = time.monotonic()
    stacked = {k: np.stack(v) for k, v in history.items()}  # [epoch, M, ...]
    out = [{k: v[:, m] for k, v in stacked.items()} for m in range(len(cells))]
    if checkpointing:
        ckpt_path.unlink(missing_ok=True)
    return out


def is_main_process() -> bool:
    """Whether this process writes results: always, unless it is not process 0 of a
    multi-process run."""
    if not jax_setup.is_distributed():
        return True
    from initbench import sharding

    return sharding.is_main_process()


def _to_host(leaf) -> np.ndarray:
    """A state leaf as a NumPy array; typed PRNG keys become their raw key data."""
    import jax

    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    return np.asarray(leaf)


def _host_shape(leaf) -> tuple[int, ...]:
    """The shape `_to_host(leaf)` will have, without copying it."""
    import jax

    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return tuple(jax.random.key_data(leaf).shape)
    return tuple(leaf.shape)


def _from_host(array: np.ndarray, like):
    """Inverse of `_to_host`, for a leaf shaped and typed like `like`."""
    import jax

    if jax.dtypes.issubdtype(like.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(array, impl=jax.random.key_impl(like))
    return array


def environment() -> dict:
    """Versions, device and git revision, recorded with every result."""
    import importlib.metadata as md

    import jax

    versions = {}
    for package in ("initbench", "jax", "jaxlib", "flax", "optax", "numpy", "scipy"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    devices = jax.devices()
    return {
        "versions": versions,
        "python": platform.python_version(),
        "device": {"platform": devices[0].platform, "kind": devices[0].device_kind,
                   "count": len(devices), "processes": jax.process_count()},
        "machine": {"system": platform.system(), "machine": platform.machine(),
                    "processor": platform.processor() or None},
        "git_revision": git_revision(),
    }


def _cells(count: int) -> str:
    return f"{count} cell{'s' * (count != 1)}"


def git_revision() -> str | None:
    """The current git commit of the working tree ("+dirty" when tracked files have
    uncommitted changes), or None outside a repository."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip()

    try:
        revision = git("rev-parse", "--short", "HEAD")
        dirty = revision and git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (revision + "+dirty" * bool(dirty)) or None
