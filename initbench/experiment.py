"""Run a study: check and lock the run folder, train the grid, summarize, draw and write it.

This is the library behind `run` and `compare`; the CLI only parses options into a `Spec`
and a `Runtime` and renders what this returns. It is the only part of a run that reaches
for the figures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections.abc import Callable
from pathlib import Path

from initbench import cellcache, interrupts, plan, results, runfolder
from initbench.data import check_batch_size, load_data
from initbench.errors import InitbenchError
from initbench.grid import train_grid, train_until_precise
from initbench.progress import Reporter, SilentReporter
from initbench.provenance import environment
from initbench.runner import Timings
from initbench.runtime import Runtime
from initbench.spec import Spec


def run_experiment(spec: Spec, out: Path, runtime: Runtime,
                   reporter: Reporter | None = None, *, baseline: str | None = None,
                   target: float | None = None, pairs: str | None = None,
                   margin_pt: float | None = None,
                   max_cells_per_chunk: int = plan.MAX_CELLS_PER_CHUNK,
                   on_summary: Callable[[results.RunResult], None] | None = None
                   ) -> results.RunResult | None:
    """Train every (init, seed) cell of `spec` not already cached and write the run to `out`.

    `runtime` (the CLI's, or the one `initbench.compare` builds) says where the cell cache
    is and which process this is. Returns the whole grid; cells cached under the same
    training setting are reused. In a multi-process run only process 0 (`runtime.main`)
    reads the cache and writes anything; the other processes train their share and return
    None. Process 0 holds `out`'s lock (`safeio.folder_lock`) throughout: a second writer is
    refused. `pairs` ("baseline" or "all") and `margin_pt` (the TOST margin in accuracy
    points) choose the comparisons and are recorded in the run's meta; for `--seeds auto`
    (`spec.precision` set) the seeds are chosen round by round (`train_until_precise`) and
    `spec.seeds` is ignored. `on_summary(result)` is called once the summary is computed,
    before the figures are drawn and the folder is written (the CLI prints its tables
    then); the folder still appears whole, after it.
    """
    from initbench import safeio

    if runtime.main:  # before the lock, whose file sits beside `out`
        out = runfolder.check_writable(out, runfolder.estimate_run_bytes(spec))
    lock = safeio.folder_lock(out) if runtime.main else contextlib.nullcontext()
    with lock, model_prints_to_stderr() as results_stdout:
        if on_summary is not None:
            on_summary = results_stdout(on_summary)
        return _run_experiment(spec, out, runtime, reporter, baseline=baseline, target=target,
                               pairs=pairs, margin_pt=margin_pt,
                               max_cells_per_chunk=max_cells_per_chunk, on_summary=on_summary)


@contextlib.contextmanager
def model_prints_to_stderr():
    """Within: `print` (a user model's, while it is traced) goes to stderr, so that stdout
    holds only results (`--json` stays one document). Yields a wrapper that runs a function
    (one printing results) with the real stdout."""
    import sys

    real = sys.stdout

    def results_stdout(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with contextlib.redirect_stdout(real):
                return fn(*args, **kwargs)
        return wrapped

    with contextlib.redirect_stdout(sys.stderr):
        yield results_stdout


def _run_experiment(spec: Spec, out: Path, runtime: Runtime, reporter: Reporter | None, *,
                    baseline, target, pairs, margin_pt, max_cells_per_chunk, on_summary=None):
    """`run_experiment` once `out` is checked and locked."""
    from initbench import summary

    # Nothing is imported in a background thread (matplotlib used to be, while training): a
    # C extension's initializer run by dlopen there can wait for the GIL while holding the
    # loader lock, and the main thread, holding the GIL, then waits in its own dlopen for
    # that lock forever. The end of the run imports what it draws with in this thread.
    reporter = reporter or SilentReporter()
    out = Path(out)
    pairs, margin_pt = summary.resolve_family(pairs, margin_pt)
    if spec.auto_seeds and runtime.distributed:
        raise InitbenchError("--seeds auto cannot be combined with --distributed yet; give "
                             "a seed count (e.g. --seeds 20).")
    baseline = spec.resolve_init(baseline, "--baseline")
    if runtime.main:
        cellcache.check_cache_writable(runtime.cell_cache)
    started = time.perf_counter()
    timings = Timings()
    timings.mark("start")
    reporter.phase(f"loading {spec.dataset or 'the dataset'}")
    dataset, notice = load_data(spec)
    timings.mark("data")
    if notice:
        reporter.notice(notice)
    requested = spec.dataset
    spec = spec.replace(dataset=dataset.name)
    earlier_looks = runfolder.check_replaces(out, spec) if runtime.main else None
    check_batch_size(dataset, spec.batch_size)
    from initbench import data as data_lib
    from initbench import networks

    network = networks.check(spec, dataset.num_classes, dataset.image_shape, dataset.name)
    auto = None
    from initbench import live

    partial = live.PartialCurves(out, spec, dataset.name) if runtime.main else None
    on_epoch = partial.on_epoch if partial is not None else None
    try:
        if spec.auto_seeds:
            grid, auto = train_until_precise(spec, dataset, runtime, reporter,
                                             baseline or spec.inits[0], pairs,
                                             max_cells_per_chunk, on_epoch=on_epoch)
            spec = spec.replace(seeds=tuple(range(auto["seeds_used"])))
        else:
            grid = train_grid(spec, dataset, runtime, reporter,
                              max_cells_per_chunk=max_cells_per_chunk, timings=timings,
                              on_epoch=on_epoch)
    finally:  # the finished folder has curves.csv instead
        if partial is not None:
            partial.close()
    timings.mark("trained")
    interrupts.check()  # a Ctrl-C that Python swallowed (in a GC callback) still stops here
    if not runtime.main:
        return None
    # The model's record, where its key holds a fingerprint (the MLP's holds none).
    model_fingerprint = networks.fingerprint(spec, network.num_classes, dataset.image_shape)
    meta = {
        "command": list(runtime.command),
        "dataset_requested": requested or "default (mnist, else mnist-5k)",
        "dataset_notice": notice,
        "num_train": len(dataset.x_train), "num_test": len(dataset.x_test),
        # merges compare it: two runs of "mnist" may have seen different imported files
        "data_fingerprint": data_lib.fingerprint(dataset),
        # a dataset by path has no registry entry to say its input shape
        **({"data_shape": list(dataset.image_shape)} if dataset.source == "file" else {}),
        **({"model": {"name": spec.model, "fingerprint": model_fingerprint,
                      "image_shape": list(network.image_shape),
                      "layers": network.layer_names()}} if model_fingerprint is not None else {}),
        "cells_trained": grid.trained,
        "cells_cached": len(spec.inits) * len(spec.lr) * len(spec.slots) - grid.trained,
        "seconds": round(time.perf_counter() - started, 3),
        "baseline": baseline or spec.inits[0], "target": target,
        "pairs": pairs, "equivalence_margin": margin_pt,
        **({"seeds_auto": auto} if auto is not None else {}),
        **seed_looks(earlier_looks, spec.seeds),
        **environment(),
    }
    if grid.lsuv_passes:
        from initbench import initializers, lsuv, metainit

        by_hook = {"lsuv": {k: v for k, v in grid.lsuv_passes.items()
                            if initializers.base(k) != "metainit"},
                   "metainit": {k: v for k, v in grid.lsuv_passes.items()
                                if initializers.base(k) == "metainit"}}
        if by_hook["lsuv"]:
            meta["lsuv_passes"] = by_hook["lsuv"]
            reporter.notice(lsuv.describe(by_hook["lsuv"]))
        if by_hook["metainit"]:  # per seed: [steps, gradient quotient before, after]
            meta["metainit"] = by_hook["metainit"]
            reporter.notice(metainit.describe(by_hook["metainit"]))
    result = results.RunResult(spec, grid.metrics, meta, grid.layer_metrics)
    margin = None if margin_pt is None else margin_pt / 100.0
    result.summary = summary.summarize_all(result, baseline, target, pairs, margin)
    timings.mark("summary")
    reporter.stop()  # the tables print on stdout; no spinner may run across them
    if on_summary is not None:
        on_summary(result)
        timings.mark("printed")
    reporter.phase("drawing figures")
    from initbench import plots

    figure = plots.render(result.view, result.summary, "png")
    files = run_files(result, result.summary, pairs, margin)
    timings.mark("figures")
    meta["timings"] = timings.record()
    reporter.phase(f"writing {out}")
    try:
        runfolder.write_run(out, result, result.per_rate or result.summary, figure, files)
    finally:
        reporter.stop()
    return result


def seed_looks(earlier: list[list[int]] | None, seeds) -> dict:
    """`{"seed_looks": [...]}` when this run continues a run folder that was looked at with
    other seeds (it replaces it with more), else nothing: each seed set a reader saw the
    verdicts with is a look, and the family level splits 5% over them
    (`summary.num_looks`). Rewriting a folder with the same seeds is no new look."""
    if not earlier:
        return {}
    looks = [list(look) for look in earlier]
    if sorted(seeds) != looks[-1]:
        looks.append(sorted(int(s) for s in seeds))
    return {"seed_looks": looks} if len(looks) > 1 else {}


def run_files(result: results.RunResult, rows: list, pairs: str,
              margin: float | None) -> dict[str, str | bytes]:
    """A run folder's extra files: those of `pair_files` (of the tuned cells, for a
    multi-rate run), and for a multi-rate run tuned.csv (one row per initializer at its
    chosen rate) and lr.png (accuracy against learning rate)."""
    from initbench import plots, summary

    files = pair_files(result.view, rows, pairs, margin)
    if result.tuned is not None:
        files["tuned.csv"] = runfolder.csv_text(summary.tuned_rows_csv(result, rows),
                                              summary.TUNED_COLUMNS)
        files["lr.png"] = plots.render_lr(result, result.per_rate, rows, "png")
    return files


def pair_files(result: results.RunResult, rows: list, pairs: str,
               margin: float | None) -> dict[str, str | bytes]:
    """The extra files of a `--pairs all` run: pairs.csv (every pair) and pairs.png (the
    ranking figure); none for `--pairs baseline`."""
    from initbench import plots, summary

    if pairs != "all" or len(result.inits) < 2:
        return {}
    pair_rows = summary.compare_family(result, rows[0].baseline, "all", margin)
    return {"pairs.csv": runfolder.csv_text([dataclasses.asdict(r) for r in pair_rows],
                                          summary.PAIR_COLUMNS),
            "pairs.png": plots.render_pairs(result, rows, pair_rows, "png")}
