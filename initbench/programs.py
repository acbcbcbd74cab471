"""The program cache: traced and lowered programs kept across processes (`jax.export`).

JAX's persistent compilation cache skips XLA's compilation in a repeated command, but every
process still traces and lowers each program again before it can look the executable up
(1.6 s of a warm 20-cell start, BENCHMARKS.md). A `Program` keeps its exported StableHLO
(`jax.export`, serialized) in a folder inside the persistent XLA cache, keyed by the
program's identity, so a repeated command deserializes it and goes from there straight to
the persistent cache and to running.

A program always runs the same way once a folder is given: freshly exported or read back,
the same serialized module is called (`Exported.call`), so its numbers never depend on
whether the entry was there; tests/test_programs.py checks them bitwise against the plain
`jax.jit` path a run without the cache takes. An entry that cannot be used (damaged, written
by another jax, for another signature) is traced again and overwritten; a folder that cannot
be written only means nothing is kept. Entries are pickles (the pytree structures of the
arguments and results ride along), so the folder must be as trusted as the XLA cache beside
it, whose entries are executables.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import pickle
import threading
from collections.abc import Callable
from pathlib import Path

# Entries of another layout are traced again (bump when the pickled payload changes).
ENTRY_FORMAT = 1
FOLDER = "programs"  # inside the persistent XLA cache folder: cleared and disabled with it
SUFFIX = ".jaxprogram"


def folder_for(xla_cache: Path | None) -> Path | None:
    """Where programs are kept for the persistent XLA cache `xla_cache` (None: nowhere)."""
    return None if xla_cache is None else Path(xla_cache) / FOLDER


def import_on_main_thread(folder: Path | None) -> None:
    """Import what lowering a kept program imports (scipy.linalg, ~0.2 s) before the compile
    threads start: an import (a dlopen) in a background thread can deadlock with one in the
    main thread. Nothing without a program cache."""
    if folder is not None:
        import scipy.linalg  # noqa: F401


@functools.cache
def source_hash() -> str:
    """SHA-256 of initbench's own Python sources. `TRAINING_CODE_VERSION` is bumped only when
    numbers change; a program's inputs or outputs can change without that (a new metric),
    so a kept program is valid only for the code that traced it. About 1 ms."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def process_identity() -> dict:
    """What beyond a program's own settings shapes its lowered module in this process: the
    jax and jaxlib versions, the backend and device kind, the JAX settings that change
    tracing (64-bit types, matmul precision, the PRNG and its partitionable variant) and
    initbench's sources."""
    import jax
    import jaxlib

    device = jax.devices()[0]
    config = {name: str(getattr(jax.config, name)) for name in (
        "jax_enable_x64", "jax_default_matmul_precision", "jax_default_prng_impl",
        "jax_threefry_partitionable")}
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "platform": device.platform, "device_kind": device.device_kind,
            "config": config, "source": source_hash(), "format": ENTRY_FORMAT}


def _leaf_spec(leaf):
    """A leaf's shape, dtype and weak type, without its device (every program here runs on
    one device; which one is the caller's placement)."""
    import jax

    if isinstance(leaf, jax.ShapeDtypeStruct):
        return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, weak_type=leaf.weak_type)
    aval = jax.typeof(leaf)
    return jax.ShapeDtypeStruct(aval.shape, aval.dtype, weak_type=aval.weak_type)


class Program:
    """`fn(*args)` jitted, with its traced program kept in `folder` across processes.

    `folder` None: exactly `jax.jit(fn, donate_argnums=donate_argnums)`. Otherwise each
    signature (pytree structure, shapes, dtypes) is exported once, or read back when an
    entry keyed by `identity()` (JSON-able: the settings that shape `fn`, e.g. the cell
    cache's key; called once, when the first entry is looked up),
    `name`, the signature and `process_identity()` exists, and called through
    `Exported.call`. `traced` counts the signatures traced in this process (for tests).
    Callable and `lower`-able like a jitted function; thread-safe (devices compile in
    parallel threads).
    """

    def __init__(self, name: str, fn: Callable, folder: Path | None,
                 identity: Callable[[], object], donate_argnums: tuple[int, ...] = ()):
        import jax

        self.name, self.fn, self.donate_argnums = name, fn, tuple(donate_argnums)
        self.folder = None if folder is None else Path(folder)
        self.identity = functools.cache(identity)
        self.traced = 0
        self._jit = jax.jit(fn, donate_argnums=self.donate_argnums)
        self._calls: dict = {}  # signature -> (jitted Exported.call, output structure)
        self._loaded: dict = {}  # (signature, device) -> (compiled, output structure)
        self._compiling: dict = {}  # signature -> threading.Event, set when its job ends
        self._lock = threading.Lock()

    def __call__(self, *args):
        if self.folder is None:
            return self._jit(*args)
        import jax

        leaves, treedef = jax.tree.flatten(args)
        call_fn, out_tree = self._call_for(leaves, treedef)
        return jax.tree.unflatten(out_tree, call_fn(*leaves))

    def compile_job(self, devices: list, *args) -> Callable[[], None]:
        """A job (to run in another thread) that compiles the program for `args` (arrays or
        `jax.ShapeDtypeStruct`s, without shardings) once, for the first of `devices` (None:
        the default device), and loads that one executable on every other host device
        (`executables.load_on`), so that `call_on` runs it there; accelerators compile once
        each. From now on, a `call_on` with this signature waits for the job instead of
        compiling the program itself."""
        import jax

        from initbench import executables  # here, on the main thread, not in the job

        leaves, treedef = jax.tree.flatten(args)
        signature = self._signature(leaves, treedef)
        with self._lock:
            done = self._compiling.setdefault(signature, threading.Event())

        def placed(device):
            where = None if device is None else jax.sharding.SingleDeviceSharding(device)
            return jax.tree.map(lambda a: jax.ShapeDtypeStruct(
                (s := _leaf_spec(a)).shape, s.dtype, sharding=where, weak_type=s.weak_type),
                args)

        def job() -> None:
            try:
                first = devices[0]
                program, fresh = executables.compile_fresh(lambda: self.lower(*placed(first)))
                compiled = {first: program}
                for device in devices[1:]:
                    loaded = (executables.load_on(program, device)
                              if fresh and executables.relocatable(device) else None)
                    compiled[device] = loaded or self.lower(*placed(device)).compile()
                out_tree = None if self.folder is None else self._call_for(leaves, treedef)[1]
                with self._lock:
                    for device, executable in compiled.items():
                        self._loaded[signature, device] = (executable, out_tree)
            finally:
                done.set()

        return job

    def call_on(self, device, *args):
        """Call the program on `device`'s arrays `args`: the executable a `compile_job`
        loaded there for this signature (waiting for that job if it is still under way in
        another thread, rather than compiling the same program again), or else as
        `__call__` does."""
        import jax

        leaves, treedef = jax.tree.flatten(args)
        signature = self._signature(leaves, treedef)
        if signature in self._compiling:
            self._compiling[signature].wait()
        found = self._loaded.get((signature, device))
        if found is None:
            return self(*args)
        program, out_tree = found
        if out_tree is None:  # compiled from jax.jit: takes and returns the pytrees
            return program(*args)
        return jax.tree.unflatten(out_tree, program(*leaves))

    def lower(self, *args):
        """`jax.stages.Lowered` for `args` (arrays or `jax.ShapeDtypeStruct`s, with shardings)."""
        if self.folder is None:
            return self._jit.lower(*args)
        import jax

        leaves, treedef = jax.tree.flatten(args)
        return self._call_for(leaves, treedef)[0].lower(*leaves)

    def out_shapes(self, *args):
        """The output as `jax.ShapeDtypeStruct`s for `args`, read from the exported program
        (no tracing when it was kept); None without a folder (then use `jax.eval_shape`)."""
        if self.folder is None:
            return None
        import jax

        leaves, treedef = jax.tree.flatten(args)
        _, out_tree, out_avals = self._call_for(leaves, treedef, with_avals=True)
        return jax.tree.unflatten(out_tree, [jax.ShapeDtypeStruct(a.shape, a.dtype,
                                                                  weak_type=a.weak_type)
                                             for a in out_avals])

    def entry_path(self, leaves: list, treedef) -> Path:
        """The file that keeps this program for these arguments."""
        specs = [(tuple(s.shape), str(s.dtype), bool(s.weak_type))
                 for s in map(_leaf_spec, leaves)]
        key = hashlib.sha256(json.dumps(
            {"program": self.name, "identity": self.identity(), "tree": str(treedef),
             "leaves": specs, "process": process_identity()},
            sort_keys=True, default=str).encode()).hexdigest()[:24]
        return self.folder / f"{self.name}-{key}{SUFFIX}"

    @staticmethod
    def _signature(leaves: list, treedef) -> tuple:
        """The argument structure, shapes, dtypes and weak types: what one trace serves."""
        return treedef, tuple((s.shape, s.dtype, s.weak_type) for s in map(_leaf_spec, leaves))

    def _call_for(self, leaves: list, treedef, with_avals: bool = False):
        specs = tuple(map(_leaf_spec, leaves))
        signature = (treedef, tuple((s.shape, s.dtype, s.weak_type) for s in specs))
        with self._lock:  # two devices' first calls: one export, not two
            if signature not in self._calls:
                self._calls[signature] = self._build(leaves, treedef, specs)
        built = self._calls[signature]
        return built if with_avals else built[:2]

    def _build(self, leaves: list, treedef, specs: tuple):
        import jax

        path = self.entry_path(leaves, treedef)
        loaded = _load(path, treedef, specs)
        if loaded is None:
            exported, out_tree = self._export(treedef, specs)
            _save(path, treedef, out_tree, exported)
        else:
            exported, out_tree = loaded
        counts = [jax.tree.structure(arg).num_leaves for arg in treedef.children()]
        starts = [sum(counts[:i]) for i in range(len(counts))]
        donated = tuple(j for i in self.donate_argnums
                        for j in range(starts[i], starts[i] + counts[i]))

        def call(*flat):
            return exported.call(*flat)

        call.__name__ = getattr(self.fn, "__name__", self.name)  # compile events name it
        return jax.jit(call, donate_argnums=donated), out_tree, exported.out_avals

    def _export(self, treedef, specs: tuple):
        """Trace and lower `fn` once for `specs` (flat, so that no pytree node type needs
        registering with jax.export): (Exported, the output's pytree structure)."""
        import jax
        from jax import export

        out_trees = []

        def flat_fn(*flat):
            out, out_tree = jax.tree.flatten(self.fn(*jax.tree.unflatten(treedef, flat)))
            out_trees.append(out_tree)
            return out

        self.traced += 1
        exported = export.export(jax.jit(flat_fn))(*specs)
        return exported, out_trees[0]


def _load(path: Path, treedef, specs: tuple):
    """(Exported, output structure) kept at `path`, or None when there is none or it cannot
    be used here: unreadable, another entry format, another structure or signature, another
    platform. Its causes are not reported: the program is simply traced again."""
    import jax
    from jax import export

    try:
        payload = pickle.loads(path.read_bytes())
        if payload["format"] != ENTRY_FORMAT or payload["in_tree"] != treedef:
            return None
        exported = export.deserialize(bytearray(payload["exported"]))
        # weak types are not serialized (the entry's path holds them)
        if (tuple((a.shape, a.dtype) for a in exported.in_avals)
                != tuple((s.shape, s.dtype) for s in specs)
                or jax.default_backend() not in exported.platforms
                or exported.nr_devices != 1):
            return None
        return exported, payload["out_tree"]
    except Exception:  # any damage means "trace again", never a failed run
        return None


def _save(path: Path, treedef, out_tree, exported) -> None:
    """Keep an exported program (atomically); a folder that cannot be written keeps none."""
    from initbench.safeio import write_atomic

    payload = {"format": ENTRY_FORMAT, "in_tree": treedef, "out_tree": out_tree,
               "exported": bytes(exported.serialize())}
    with contextlib.suppress(OSError):
        write_atomic(path, pickle.dumps(payload))
