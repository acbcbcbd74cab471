"""The runner: cached cells, compiled programs built once per run, chunks, results on disk.

This is the library behind `run`, `compare`, `probe` and `bench`; the CLI only parses
options into a `Spec` and a `Runtime` and renders what this returns. `Runner` turns the
pure per-cell functions of `initbench.train` into programs over a grid: the cell axis
(vmap), fixed-size blocks on every device (`initbench.sharding`), the data placed on the
devices and every program traced once per run, whatever the number of chunks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import platform
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from initbench import interrupts, plan, results, stats
from initbench.errors import InitbenchError
from initbench.runtime import Runtime
from initbench.spec import Spec


class Reporter(Protocol):
    """Where progress goes (a rich progress bar in the CLI, nothing in tests)."""

    def notice(self, text: str) -> None: ...
    def phase(self, text: str) -> None: ...  # what runs now, until the next phase or step
    def start(self, total: int, description: str) -> None: ...
    def advance(self, amount: int) -> None: ...
    def stop(self) -> None: ...


class SilentReporter:
    """A Reporter that reports nothing."""

    def notice(self, text: str) -> None:
        pass

    def phase(self, text: str) -> None:
        pass

    def start(self, total: int, description: str) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def stop(self) -> None:
        pass


class EverySeconds:
    """Calls `action(*args)` from `maybe(*args)` when `period_s` seconds have passed since
    the last call (or the start): periodic work without patched constants."""

    def __init__(self, period_s: float, action: Callable, clock: Callable[[], float] = time.monotonic):
        self.period_s, self.action, self.clock = period_s, action, clock
        self.last = clock()

    def maybe(self, *args) -> None:
        if self.clock() - self.last >= self.period_s:
            self.action(*args)
            self.last = self.clock()


class Timings:
    """Wall-clock marks of one run, in order: [(name, time.time())], for `initbench bench
    --race`'s fixed-cost breakdown (kept in spec.json's "timings", never in a compared file).

    Names: start, data, runner, params, epoch_0 .. epoch_N (per chunk), trained, summary,
    printed (when `run_experiment` has an `on_summary`), figures. `compile_s` adds up JAX's
    compile events (tracing, lowering, XLA) while the run lasts; programs of several devices
    compile in parallel, so it may exceed wall time.
    """

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.marks: list[tuple[str, float]] = []
        self._compile_start = dict(_compile_seconds())

    def mark(self, name: str) -> None:
        self.marks.append((name, self.clock()))

    def record(self) -> dict:
        """The marks and compile seconds as JSON-ready values."""
        spent = {event.rsplit("/", 1)[-1]: round(total - self._compile_start.get(event, 0.0), 3)
                 for event, total in _compile_seconds().items()}
        return {"clock": "time.time", "marks": [[name, round(t, 4)] for name, t in self.marks],
                "compile_s": spent}


@functools.cache
def _compile_seconds() -> Counter:
    """Seconds JAX has spent per compile event in this process (a listener registered once)."""
    import jax

    totals: Counter = Counter()

    def listen_fn(event: str, duration: float, **_) -> None:
        if event.startswith("/jax/core/compile/"):
            totals[event] += duration

    jax.monitoring.register_event_duration_secs_listener(listen_fn)
    return totals


def load_data(spec: Spec):
    """(dataset, fallback notice or None) for the spec; an explicit dataset never falls back.
    With `spec.val_fraction` the training set is split (`data.split_validation`), unless the
    dataset brings its own validation split (a file's x_val, y_val), which is used instead;
    without it, a file's own split is left out."""
    from initbench import data as data_lib

    if spec.dataset is None:
        dataset, notice = data_lib.load_default()
    else:
        dataset, notice = data_lib.load(spec.dataset), None
    if spec.val_fraction is not None and dataset.x_val is None:
        dataset = data_lib.split_validation(dataset, spec.val_fraction)
    elif spec.val_fraction is None and dataset.x_val is not None:  # a file's own split, unused
        dataset = dataclasses.replace(dataset, x_val=None, y_val=None)
    return dataset, notice


class Runner:
    """The compiled programs of one run of `spec` on `dataset`, over `runtime.mesh`.

    Built once per run: the data is placed on every local device once, and each program
    (init, epoch, evaluation, probe statistics) is traced once, however many chunks of
    cells it then runs. `traces` counts the traces per program (for tests).
    """

    def __init__(self, spec: Spec, dataset, runtime: Runtime):
        import jax

        from initbench import sharding, train

        self.spec, self.dataset, self.runtime = spec, dataset, runtime
        self.cache_key = results.cache_key(spec, dataset)
        self.traces: Counter = Counter()
        self.cell = train.make_cell_fns(spec, dataset.num_classes, len(dataset.x_train),
                                         dataset.image_shape)
        mesh = runtime.mesh
        self.devices = [None] if mesh is None else sharding.local_devices(mesh)
        host = train.cell_data(spec, dataset)
        self._data = {d: jax.tree.map(lambda a, d=d: self._place(a, d), host)
                      for d in self.devices}
        self._probe_fns: dict[int, Callable] = {}
        self._jits: dict[str, Callable] = {}  # program -> its jitted per-block function
        self._compiling: list | None = None  # background compilations not yet awaited
        # Keys arrive as raw key data: a host array, placed without compiling anything.
        self._init_block = jax.vmap(lambda params, key_data, lr: self.cell.init(
            params, jax.random.wrap_key_data(key_data), lr))
        self._init_fn = jax.jit(self._counted("init", self._init_block))
        self.init_fn = sharding.blockwise({d: lambda tree: self._init_fn(*tree)
                                           for d in self.devices}, mesh)
        self.eval_fn = self._blockwise("eval", lambda state, data: jax.vmap(
            lambda s: self.cell.evaluate(s, data))(state))
        self.epoch_fn = self._blockwise("epoch", lambda state, data, epoch: jax.vmap(
            lambda s: self.cell.epoch(s, epoch, data))(state), donate=True)

    @staticmethod
    def _place(array, device):
        import jax
        import jax.numpy as jnp

        return jnp.asarray(array) if device is None else jax.device_put(array, device)

    def _counted(self, name: str, fn: Callable) -> Callable:
        def counted_fn(*args):
            self.traces[name] += 1  # runs once per trace, never per call
            return fn(*args)

        counted_fn.__name__ = f"initbench_{name}"  # how JAX's compile events name it
        return counted_fn

    def _blockwise(self, name: str, block_fn: Callable, donate: bool = False) -> Callable:
        """`block_fn(state, data, *args)` jitted once (traced once, compiled per device) and
        run over every block of the grid by `sharding.blockwise`, each device with its own
        copy of the data. The data is an argument, never closed over: closed over, it was
        embedded as a constant in every compiled program (2.3 GB more memory for a 100-cell
        grid on 55,000 examples and 2 devices, and in every persistent-cache entry)."""
        import jax

        from initbench import sharding

        options = {"donate_argnums": 0} if donate else {}
        self._jits[name] = jitted = jax.jit(self._counted(name, block_fn), **options)
        return sharding.blockwise(
            {d: lambda state, *args, data=self._data[d]: jitted(state, data, *args)
             for d in self.devices}, self.runtime.mesh)

    def _compile_in_background(self) -> int:
        """Start compiling the init, evaluation and epoch programs of every device in other
        threads while the starting parameters are drawn, so no device thread compiles on
        its first call. Once per runner; jit's own cache then serves the calls
        (`_await_compiled` first). On 2 cores the gain is small: compilation and the draw
        are both CPU-bound (BENCHMARKS.md)."""
        if self._compiling is not None:
            return 0
        import jax

        from initbench import sharding, starts, train

        cells = [("zeros", 0)] * sharding.cells_per_block()  # every initializer: same shapes
        params = starts.start_shapes(self.spec, self.dataset, len(cells))
        keys = jax.eval_shape(lambda: jax.random.key_data(train.data_keys(cells)))
        lrs = jax.eval_shape(lambda: train.cell_lrs(self.spec, cells))
        state = jax.eval_shape(self._init_block, params, keys, lrs)

        def on(device, tree):
            where = None if device is None else jax.sharding.SingleDeviceSharding(device)
            return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype,
                                                               sharding=where), tree)

        jobs = []
        for d in self.devices:
            jobs.append(lambda d=d: self._init_fn.lower(*on(d, (params, keys, lrs))).compile())
            data = self._data[d]
            jobs.append(lambda d=d, data=data: self._jits["epoch"].lower(on(d, state), data,
                                                                         1).compile())
            jobs.append(lambda d=d, data=data: self._jits["eval"].lower(on(d, state),
                                                                        data).compile())
        pool = sharding.compile_pool()
        self._compiling = [pool.submit(job) for job in jobs]
        return len(jobs)

    def _await_compiled(self) -> None:
        """Wait for `_compile_in_background` (its errors are raised here, as a call would)."""
        compiling, self._compiling = self._compiling or [], []
        for future in compiling:
            future.result()

    def init_state(self, cells: Sequence[tuple[str, int]]):
        """(state of the padded `cells` as `sharding.Blocks`, LSUV passes per cell): every
        process draws the whole grid's starts on the host and places its devices' blocks."""
        import jax

        from initbench import sharding, starts, train

        built = starts.cell_starts(self.spec, cells, self.dataset)
        host = (built.params, np.asarray(jax.random.key_data(train.data_keys(cells))),
                train.cell_lrs(self.spec, cells))
        return self.init_fn(sharding.to_blocks(host, self.runtime.mesh)), built.lsuv_passes

    def run_epoch(self, state, epoch: int):
        """(state after training epoch `epoch`, its metrics as host arrays, padded cells)."""
        from initbench import sharding

        out = self.epoch_fn(state, epoch)
        return out.map(lambda o: o[0]), sharding.gather(out.map(lambda o: o[1]))

    def padded(self, cells: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
        """`cells` padded to whole blocks on every device (`sharding.pad_cells`)."""
        from initbench import sharding

        return sharding.pad_cells(list(cells), self.runtime.mesh)

    def cell_stats(self, state, batch_size: int) -> dict:
        """Per-layer statistics (`diagnostics.STATS`, each [M, L + 1]) of every cell of
        `state` on the first `batch_size` training examples."""
        import jax

        from initbench import diagnostics, sharding

        if batch_size not in self._probe_fns:
            stats_fn = diagnostics.make_cell_stats(self.spec, self.dataset.num_classes,
                                                    self.dataset.image_shape)
            x, y = self.dataset.x_train[:batch_size], self.dataset.y_train[:batch_size]

            def make_block_fn(data):
                return lambda state: jax.vmap(lambda s: stats_fn(s.params, *data))(state)

            self._probe_fns[batch_size] = sharding.blockwise(
                {d: jax.jit(self._counted("probe", make_block_fn(
                    (self._place(x, d), self._place(y, d))))) for d in self.devices},
                self.runtime.mesh)
        return sharding.gather(self._probe_fns[batch_size](state))

    def train(self, cells: Sequence[tuple[str, int]], reporter: Reporter,
              on_checkpoint: Callable | None = None,
              timings: Timings | None = None,
              on_epoch: Callable | None = None) -> list[dict]:
        """Train `cells` together; one dict of [epoch] arrays per cell (LSUV passes under
        `lsuv_passes` for data-dependent starts).

        Without `runtime.distributed`, the chunk's state is checkpointed every
        `runtime.checkpoint_every_s` seconds, so an interrupted chunk resumes from its last
        checkpoint instead of epoch 0. `on_checkpoint(epoch)` is called after each one;
        `timings` gets a mark when the starting state is ready and after every epoch;
        `on_epoch(cells, epoch, metrics)` gets every epoch's metrics (host arrays over the
        padded cells), epoch 0 and resumed epochs included (`live.PartialCurves`).
        """
        import jax

        from initbench import sharding

        spec, runtime = self.spec, self.runtime
        mark = timings.mark if timings is not None else lambda name: None
        padded = self.padded(cells)
        programs = self._compile_in_background()
        reporter.phase((f"compiling {programs} programs, " if programs else "")
                       + f"drawing the starting parameters of {_cells(len(cells))}")
        try:
            state, passes = self.init_state(padded)
        finally:
            self._await_compiled()
        if timings is not None:
            jax.block_until_ready(state)
        mark("params")
        cells_key = hashlib.sha256(json.dumps(padded).encode()).hexdigest()[:16]
        ckpt_path = results.checkpoint_path(runtime.cell_cache, spec, cells_key, self.cache_key)
        # Several processes would each need the checkpoint: multi-process runs start over.
        # --no-cache ignores checkpoints too; a damaged one is set aside (a notice) and the
        # chunk starts over.
        checkpointing = not runtime.distributed
        first_block = next(iter(state.per_device.values()))[0]
        checkpoint = (results.load_checkpoint(
            ckpt_path, reporter.notice,
            [(len(padded), *_host_shape(a)[1:]) for a in jax.tree.leaves(first_block)])
                      if checkpointing and runtime.use_cache else None)
        if checkpoint is not None:
            leaves, done, history = checkpoint
            treedef, like = jax.tree.structure(first_block), jax.tree.leaves(first_block)
            state = sharding.to_blocks(jax.tree.unflatten(treedef, list(leaves)),
                                       runtime.mesh).map(
                lambda tree: jax.tree.unflatten(treedef, [
                    _from_host(leaf, old) for leaf, old in zip(jax.tree.leaves(tree), like)]))
            history = {k: list(v) for k, v in history.items()}
            for epoch in range(done + 1) if on_epoch is not None else ():
                on_epoch(cells, epoch, {k: v[epoch] for k, v in history.items()})
            reporter.notice(f"resuming {_cells(len(cells))} from epoch {done} (checkpoint)")
            reporter.advance(done * len(cells))
        else:
            done = 0
            history = {k: [v] for k, v in sharding.gather(self.eval_fn(state)).items()}
            mark("epoch_0")
            if on_epoch is not None:
                on_epoch(cells, 0, {k: v[0] for k, v in history.items()})

        def save(epoch: int, state) -> None:
            leaves = jax.tree.leaves(sharding.gather(state))
            results.save_checkpoint(ckpt_path, leaves, epoch,
                                    {k: np.stack(v) for k, v in history.items()})
            if on_checkpoint is not None:
                on_checkpoint(epoch)

        periodic = EverySeconds(runtime.checkpoint_every_s, save)
        for epoch in range(done + 1, spec.epochs + 1):
            with interrupts.deferred():  # the state is donated: stop between epochs
                state, metrics = self.run_epoch(state, epoch)
                for k, v in metrics.items():
                    history[k].append(v)
            mark(f"epoch_{epoch}")
            if on_epoch is not None:
                on_epoch(cells, epoch, metrics)
            reporter.advance(len(cells))
            if interrupts.pending():  # Ctrl-C or SIGTERM: keep this epoch, then stop
                if checkpointing and epoch < spec.epochs:
                    save(epoch, state)
                interrupts.check()
            if checkpointing and epoch < spec.epochs:
                periodic.maybe(epoch, state)
        stacked = {k: np.stack(v) for k, v in history.items()}  # [epoch, M, ...]
        out = [{k: v[:, m] for k, v in stacked.items()} for m in range(len(cells))]
        for cell_out, cell_passes in zip(out, passes):
            if cell_passes is not None:
                cell_out["lsuv_passes"] = np.asarray(cell_passes)
        if checkpointing:
            ckpt_path.unlink(missing_ok=True)
        return out


def run_experiment(spec: Spec, out: Path, runtime: Runtime | None = None,
                   reporter: Reporter | None = None, *, baseline: str | None = None,
                   target: float | None = None, pairs: str | None = None,
                   margin_pt: float | None = None,
                   max_cells_per_chunk: int = plan.MAX_CELLS_PER_CHUNK,
                   on_summary: Callable[[results.RunResult], None] | None = None
                   ) -> results.RunResult | None:
    """Train every (init, seed) cell of `spec` not already cached and write the run to `out`.

    Returns the whole grid; cells cached under the same training setting are reused. In a
    multi-process run only process 0 (`runtime.main`) reads the cache and writes anything;
    the other processes train their share and return None. Process 0 holds `out`'s lock
    (`safeio.folder_lock`) throughout: a second writer is refused. `pairs` ("baseline" or
    "all") and `margin_pt` (the TOST margin in accuracy points) choose the comparisons and
    are recorded in the run's meta; for `--seeds auto` (`spec.precision` set) the seeds are
    chosen round by round (`train_until_precise`) and `spec.seeds` is ignored.
    `on_summary(result)` is called once the summary is computed, before the figures are
    drawn and the folder is written (the CLI prints its tables then); the folder still
    appears whole, after it.
    """
    from initbench import safeio

    runtime = runtime or Runtime.from_environment()
    if runtime.main:  # before the lock, whose file sits beside `out`
        out = results.check_writable(out, results.estimate_run_bytes(spec))
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
        results.check_cache_writable(runtime.cell_cache)
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
    earlier_looks = results.check_replaces(out, spec) if runtime.main else None
    if spec.batch_size > len(dataset.x_train):
        raise InitbenchError(
            f"--batch-size {spec.batch_size} is larger than the training set of "
            f"{dataset.name} ({len(dataset.x_train)} examples)."
        )
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
    meta = {
        "command": list(runtime.command),
        "dataset_requested": requested or "default (mnist, else mnist-5k)",
        "dataset_notice": notice,
        "num_train": len(dataset.x_train), "num_test": len(dataset.x_test),
        # merges compare it: two runs of "mnist" may have seen different imported files
        "data_fingerprint": data_lib.fingerprint(dataset),
        # a dataset by path has no registry entry to say its input shape
        **({"data_shape": list(dataset.image_shape)} if dataset.source == "file" else {}),
        **({"model": {"name": spec.model, "fingerprint": networks.fingerprint(
                          spec, network.num_classes, network.image_shape),
                      "image_shape": list(network.image_shape),
                      "layers": network.layer_names()}} if network is not None else {}),
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
        from initbench import lsuv

        meta["lsuv_passes"] = grid.lsuv_passes
        reporter.notice(lsuv.describe(grid.lsuv_passes))
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
        results.write_run(out, result, result.per_rate or result.summary, figure, files)
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
        files["tuned.csv"] = results.csv_text(summary.tuned_rows_csv(result, rows),
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
    return {"pairs.csv": results.csv_text([dataclasses.asdict(r) for r in pair_rows],
                                          summary.PAIR_COLUMNS),
            "pairs.png": plots.render_pairs(result, rows, pair_rows, "png")}


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
    keys = {lr: results.cache_key(spec.at_lr(lr), dataset) for lr in spec.lr}
    slots = spec.slots
    cells = [(init, seed, d, lr) for init in spec.inits for lr in spec.lr for seed, d in slots]
    found: dict[tuple, dict] = {}
    if runtime.use_cache and runtime.main:
        reporter.phase(f"looking for {_cells(len(cells))} in the cache")
        for cell in cells:
            cached = results.load_cell(runtime.cell_cache, spec.at_lr(cell[3]),
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
        reporter.start(len(missing) * spec.epochs, f"training {_cells(len(missing))}")
        try:
            for start in range(0, len(missing), chunk_size):
                chunk = missing[start:start + chunk_size]
                for cell, arrays in zip(chunk, runner.train(chunk, reporter, timings=timings,
                                                            on_epoch=on_epoch)):
                    found[cell] = arrays
                    if runtime.main:
                        init, seed, d, lr = cell
                        results.save_cell(runtime.cell_cache, spec.at_lr(lr),
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
    layer_names = sorted(k for k in found[cells[0]] if k.startswith("layer_"))
    layer_metrics = {k[len("layer_"):]: np.empty(shape + found[cells[0]][k].shape[1:])
                     for k in layer_names}
    passes: dict[str, dict[str, list[int]]] = {}
    slot_index = {slot: s for s, slot in enumerate(slots)}
    for cell in cells:  # grid order, so spec.json lists inits and seeds in order
        arrays = found[cell]
        init, seed, d, lr = cell
        where = (spec.inits.index(init), *((spec.lr.index(lr),) if rates else ()),
                 slot_index[(seed, d)])
        for name in metric_names:
            metrics[name][where] = arrays[name]
        for k in layer_names:
            layer_metrics[k[len("layer_"):]][where] = arrays[k]
        if "lsuv_passes" in arrays:
            passes.setdefault(init, {})[str(seed)] = np.asarray(arrays["lsuv_passes"]).tolist()
            # (the passes depend on the weights only: every data order and rate has the same)
    first = stats.first_diverged_epoch(*(metrics[m] for m in results.METRICS))
    metrics = {name: stats.mask_diverged(values, first) for name, values in metrics.items()}
    return Grid(metrics, layer_metrics, len(missing), passes)


def _from_host(array, like):
    """Inverse of `sharding.host_array`, for a leaf typed like `like`."""
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


def _host_shape(leaf) -> tuple[int, ...]:
    """The shape `sharding.host_array(leaf)` will have, without copying it."""
    import jax

    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return tuple(jax.random.key_data(leaf).shape)
    return tuple(leaf.shape)
