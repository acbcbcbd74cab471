"""The runner: one run's compiled programs over a grid of cells, traced once per run.

`Runner` turns the pure per-cell functions of `initbench.train` into programs over a grid:
the cell axis (vmap), fixed-size blocks on every device (`initbench.sharding`), the data
placed on the devices and every program traced once per run, whatever the number of
chunks. Between epochs it calls an `EpochHook` (checkpoints live in `cellcache`), and
`Timings` records its wall-clock marks. It knows nothing of files or figures.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from initbench import interrupts, programs
from initbench.progress import Reporter
from initbench.runtime import Runtime
from initbench.spec import Spec


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


class EpochHook(Protocol):
    """What a chunk does between epochs besides training; `cellcache.Checkpoints` keeps
    its state so an interrupted chunk resumes. Leaves are host arrays of the padded chunk."""

    def resume(self, padded_cells: list, shapes: list[tuple[int, ...]]
               ) -> tuple[list[np.ndarray], int, dict[str, np.ndarray]] | None:
        """(state leaves, last finished epoch, curves [epoch, M, ...]) to resume from, or None."""

    def after_epoch(self, epoch: int,
                    snapshot: Callable[[], tuple[list[np.ndarray], dict[str, np.ndarray]]],
                    urgent: bool) -> None:
        """Epoch `epoch` (not the last) is done; `urgent`: the run stops after it."""

    def finish(self) -> None:
        """The chunk is trained."""


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
        self.traces: Counter = Counter()
        self.cell = train.make_cell_fns(spec, dataset.num_classes, len(dataset.x_train),
                                         dataset.image_shape)
        mesh = runtime.mesh
        self.devices = [None] if mesh is None else sharding.local_devices(mesh)
        host = train.cell_data(spec, dataset)
        self._data = {d: jax.tree.map(lambda a, d=d: self._place(a, d), host)
                      for d in self.devices}
        self._probe_fns: dict[int, Callable] = {}
        self._jits: dict[str, programs.Program] = {}  # program -> its per-block program
        self._draws: dict[tuple[str, ...], programs.Program] = {}  # initializers -> draw
        self._compiling: list | None = None  # background compilations not yet awaited
        # Keys arrive as raw key data: a host array, placed without compiling anything.
        self._init_block = jax.vmap(lambda params, key_data, lr: self.cell.init(
            params, jax.random.wrap_key_data(key_data), lr))
        self._init_fn = self._program("init", self._init_block)
        self.init_fn = sharding.blockwise(
            {d: lambda tree, d=d: self._init_fn.call_on(d, *tree) for d in self.devices}, mesh)
        self.eval_fn = self._blockwise("eval", lambda state, data: jax.vmap(
            lambda s: self.cell.evaluate(s, data))(state))
        self.epoch_fn = self._blockwise("epoch", lambda state, data, epoch: jax.vmap(
            lambda s: self.cell.epoch(s, epoch, data))(state), donate=True)

    @staticmethod
    def _place(array, device):
        import jax
        import jax.numpy as jnp

        return jnp.asarray(array) if device is None else jax.device_put(array, device)

    def _program(self, name: str, fn: Callable, donate: bool = False, also: dict | None = None,
                 keep: bool = True) -> programs.Program:
        """`fn` jitted, its traced program kept across processes in the program cache beside
        the persistent XLA cache (`initbench.programs`; none without that cache or with
        `keep` False). Its identity is the cell cache's key (every setting, the data, the
        model, the versions; the epoch count does not shape a program), how the model sees a
        row (image shape) and `also` (what else shapes `fn`)."""
        from initbench import cellcache

        def identity_fn():
            return {"cells": cellcache.cache_key(self.spec.replace(epochs=1), self.dataset),
                    "image_shape": self.dataset.image_shape,
                    "num_classes": self.dataset.num_classes, **(also or {})}

        folder = programs.folder_for(self.runtime.xla_cache) if keep else None
        return programs.Program(name, self._counted(name, fn), folder, identity_fn,
                                donate_argnums=(0,) if donate else ())

    def _draw_program(self, names: tuple[str, ...], draw_fn: Callable) -> programs.Program:
        """The one program drawing a cell of each initializer of `names` (`starts.DrawJit`):
        built once per run and set of initializers, and kept across processes like the
        others, its identity naming the initializers. Not kept when an initializer was
        registered by a user's script: its code is not in the key (`initializers.is_builtin`)."""
        from initbench import initializers

        if names not in self._draws:
            self._draws[names] = self._program(
                "draw", draw_fn, also={"inits": list(names)},
                keep=all(initializers.is_builtin(name) for name in names))
        return self._draws[names]

    def _counted(self, name: str, fn: Callable) -> Callable:
        def counted_fn(*args):
            self.traces[name] += 1  # runs once per trace, never per call
            return fn(*args)

        counted_fn.__name__ = f"initbench_{name}"  # how JAX's compile events name it
        return counted_fn

    def _blockwise(self, name: str, block_fn: Callable, donate: bool = False) -> Callable:
        """`block_fn(state, data, *args)` jitted once (traced once, compiled once and loaded
        on every host device by `_compile_in_background`) and run over every block of the
        grid by `sharding.blockwise`, each device with its own copy of the data. The data
        is an argument, never closed over: closed over, it was embedded as a constant in
        every compiled program (2.3 GB more memory for a 100-cell grid on 55,000 examples
        and 2 devices, and in every persistent-cache entry), and a program with constants
        cannot be loaded on another device (`initbench.executables`)."""
        from initbench import sharding

        self._jits[name] = jitted = self._program(name, block_fn, donate)
        return sharding.blockwise(
            {d: lambda state, *args, d=d, data=self._data[d]: jitted.call_on(d, state, data,
                                                                             *args)
             for d in self.devices}, self.runtime.mesh)

    def _compile_in_background(self, names: tuple[str, ...] | None = None) -> int:
        """Start compiling the init, evaluation and epoch programs in other threads while
        the starting parameters are drawn, so no device thread compiles on its first call.
        Each program is compiled once, for the first device, and that executable is loaded
        on every other host device (`programs.Program.compile_job`); the calls then run it
        (`_await_compiled` first; a call arriving early waits for its program). Once per
        runner. On 2 cores the gain is small: compilation and the draw are both CPU-bound
        (BENCHMARKS.md). `names`: the initializers of the cells about to be drawn, whose draw
        program gives the shapes (read back from a kept program); None when the starts are
        not drawn by `init_state`'s draw program (`jax.eval_shape`)."""
        if self._compiling is not None:
            return 0
        import jax

        from initbench import sharding, starts, train

        cells = [("zeros", 0)] * sharding.cells_per_block()  # every initializer: same shapes
        params = starts.start_shapes(self.spec, self.dataset, len(cells), names,
                                     self._draw_program)
        keys = jax.eval_shape(lambda: jax.random.key_data(train.data_keys(cells)))
        lrs = jax.eval_shape(lambda: train.cell_lrs(self.spec, cells))
        state = self._init_fn.out_shapes(params, keys, lrs)  # read from a kept program
        if state is None:
            state = jax.eval_shape(self._init_block, params, keys, lrs)

        programs.import_on_main_thread(programs.folder_for(self.runtime.xla_cache))
        data = self._data[self.devices[0]]  # every device's copy has the same shapes
        # a job, once made, makes its program's calls wait for it: submit them at once
        jobs = [self._init_fn.compile_job(self.devices, params, keys, lrs),
                self._jits["epoch"].compile_job(self.devices, state, data, 1),
                self._jits["eval"].compile_job(self.devices, state, data)]
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

        built = starts.cell_starts(self.spec, cells, self.dataset, self._draw_program)
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
              epoch_hook: EpochHook | None = None,
              timings: Timings | None = None,
              on_epoch: Callable | None = None) -> list[dict]:
        """Train `cells` together; one dict of [epoch] arrays per cell (LSUV passes under
        `lsuv_passes` for data-dependent starts).

        `epoch_hook` (the cell cache's `cellcache.Checkpoints` in a run) may hand back a
        saved state to resume from, is called after every epoch but the last, and told when
        the chunk is done; the runner itself writes nothing. `timings` gets a mark when the
        starting state is ready and after every epoch. `on_epoch(cells, epoch, metrics)`
        gets every epoch's metrics as they come (host arrays over the padded cells), epoch 0
        and resumed epochs included (`live.PartialCurves`).
        """
        import jax

        from initbench import sharding

        spec, runtime = self.spec, self.runtime
        mark = timings.mark if timings is not None else lambda name: None
        padded = self.padded(cells)
        from initbench import starts

        # A subclass with its own init_state (the phase diagram's) draws no initializers:
        # its cells' names are not initializers, and the draw program is not its start.
        own_draw = type(self).init_state is Runner.init_state
        programs = self._compile_in_background(starts.init_names(padded) if own_draw else None)
        reporter.phase((f"compiling {programs} programs, " if programs else "")
                       + f"drawing the starting parameters of {describe_cells(len(cells))}")
        try:
            state, passes = self.init_state(padded)
        finally:
            self._await_compiled()
        if timings is not None:
            jax.block_until_ready(state)
        mark("params")
        first_block = next(iter(state.per_device.values()))[0]
        checkpoint = (epoch_hook.resume(
            padded, [(len(padded), *_host_shape(a)[1:]) for a in jax.tree.leaves(first_block)])
                      if epoch_hook is not None else None)
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
            reporter.notice(f"resuming {describe_cells(len(cells))} from epoch {done} (checkpoint)")
            reporter.advance(done * len(cells))
        else:
            done = 0
            history = {k: [v] for k, v in sharding.gather(self.eval_fn(state)).items()}
            mark("epoch_0")
            if on_epoch is not None:
                on_epoch(cells, 0, {k: v[0] for k, v in history.items()})

        def snapshot(state) -> Callable[[], tuple[list[np.ndarray], dict[str, np.ndarray]]]:
            """The state's leaves and the curves so far as host arrays, gathered only when
            the hook asks (a checkpoint is not written every epoch)."""
            return lambda: (jax.tree.leaves(sharding.gather(state)),
                            {k: np.stack(v) for k, v in history.items()})

        for epoch in range(done + 1, spec.epochs + 1):
            with interrupts.deferred():  # the state is donated: stop between epochs
                state, metrics = self.run_epoch(state, epoch)
                for k, v in metrics.items():
                    history[k].append(v)
            mark(f"epoch_{epoch}")
            if on_epoch is not None:
                on_epoch(cells, epoch, metrics)
            reporter.advance(len(cells))
            stopping = interrupts.pending()  # Ctrl-C or SIGTERM: keep this epoch, then stop
            if epoch_hook is not None and epoch < spec.epochs:
                epoch_hook.after_epoch(epoch, snapshot(state), urgent=stopping)
            if stopping:
                interrupts.check()
        stacked = {k: np.stack(v) for k, v in history.items()}  # [epoch, M, ...]
        out = [{k: v[:, m] for k, v in stacked.items()} for m in range(len(cells))]
        for cell_out, cell_passes in zip(out, passes):
            if cell_passes is not None:
                cell_out["lsuv_passes"] = np.asarray(cell_passes)
        if epoch_hook is not None:
            epoch_hook.finish()
        return out

def _from_host(array, like):
    """Inverse of `sharding.host_array`, for a leaf typed like `like`."""
    import jax

    if jax.dtypes.issubdtype(like.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(array, impl=jax.random.key_impl(like))
    return array


def _host_shape(leaf) -> tuple[int, ...]:
    """The shape `sharding.host_array(leaf)` will have, without copying it."""
    import jax

    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return tuple(jax.random.key_data(leaf).shape)
    return tuple(leaf.shape)


def describe_cells(count: int) -> str:
    """"N cell(s)", for progress lines."""
    return f"{count} cell{'s' * (count != 1)}"
