"""Spread the grid's cells over devices and processes, in blocks of a fixed size.

The cells are split evenly over a 1-D mesh of every device of every process. Each device
keeps its share as blocks of exactly `cells_per_block()` cells (1 on CPUs, 128 on
accelerators; see `initbench.plan` for why blocks have one size), held in `Blocks` from
program to program, and trains every block with the same compiled single-device program
(`blockwise`). Cells never talk to each other, so nothing is communicated while training;
metrics are gathered once per epoch (`gather`). Why not XLA's SPMD partitioner (jit over
the mesh, or shard_map): it inserts copies that change XLA's algebraic rewrites (Adam's
bias correction became `m / (b * d)` instead of `m * (1 / b) / d`), so 2 or 4 devices
differed from 1 by an ulp. tests/test_sharding.py checks 1, 2 and 4 devices and several
grid sizes bitwise.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import jax
import numpy as np

from initbench import plan


def cell_mesh() -> jax.sharding.Mesh | None:
    """A 1-D mesh over every device (all processes), or None on a single device."""
    devices = jax.devices()
    if len(devices) == 1:
        return None
    return jax.sharding.Mesh(devices, ("cells",))


def cells_per_block() -> int:
    """Cells every compiled program trains on this machine's devices (`plan.cells_per_block`)."""
    return plan.cells_per_block(jax.devices()[0].platform)


def pad_cells(cells: list, mesh: jax.sharding.Mesh | None) -> list:
    """Repeat the last cell until every device holds the same whole number of blocks.

    Padding cells are exact copies, so they cost compute but never change any result;
    callers keep only the first len(cells) outputs.
    """
    num_devices = 1 if mesh is None else mesh.devices.size
    target = plan.padded_size(len(cells), cells_per_block(), num_devices)
    return list(cells) + [cells[-1]] * (target - len(cells))


def local_devices(mesh: jax.sharding.Mesh) -> list:
    """This process's devices of `mesh`, in mesh order."""
    return [d for d in mesh.devices.flat if d.process_index == jax.process_index()]


@jax.tree_util.register_pytree_node_class
class Blocks:
    """A per-cell pytree of a grid, kept as blocks where they are trained.

    `per_device` maps each local device (None: the default device, without a mesh) to its
    blocks in order, each a pytree whose leaves have a leading axis of `cells_per_block()`
    cells on that device. Kept this way from program to program, a grid is never cut up or
    put back together on a device (eagerly, every leaf shape would compile its own slice
    and concatenation: ~2 s of a cold start with blocks of one cell). A pytree itself, so
    `jax.block_until_ready` works on it.
    """

    def __init__(self, per_device: dict):
        self.per_device = per_device

    def map(self, fn: Callable) -> Blocks:
        """`fn` applied to every block's pytree (host-side restructuring, e.g. a field)."""
        return Blocks({d: [fn(b) for b in blocks] for d, blocks in self.per_device.items()})

    def tree_flatten(self):
        return tuple(self.per_device.values()), tuple(self.per_device)

    @classmethod
    def tree_unflatten(cls, devices, children):
        return cls(dict(zip(devices, children)))


def to_blocks(tree, mesh: jax.sharding.Mesh | None) -> Blocks:
    """A host (NumPy) pytree of every cell of a padded grid (cells first) as this process's
    blocks on its devices: device i of the mesh holds the i-th equal share of the cells."""
    block = cells_per_block()
    size = jax.tree.leaves(tree)[0].shape[0]
    if mesh is None:
        first = {None: 0}
        share = size
    else:
        share = size // mesh.devices.size
        order = list(mesh.devices.flat)
        first = {d: order.index(d) * share for d in local_devices(mesh)}
    if share % block:
        raise ValueError(f"{size} cells are not whole blocks of {block} on every device")

    def put(array, device):
        return jax.device_put(array) if device is None else jax.device_put(array, device)

    return Blocks({d: [jax.tree.map(lambda a, i=i, d=d: put(a[i:i + block], d), tree)
                       for i in range(start, start + share, block)]
                   for d, start in first.items()})


def blockwise(fn_by_device: dict, mesh: jax.sharding.Mesh | None) -> Callable:
    """Run a per-block function over every block of every local device.

    `fn_by_device[d](tree, *args)` takes and returns pytrees whose leaves have a leading
    axis of `cells_per_block()` cells on device `d` (key None: the default device, when
    `mesh` is None). The returned `run(blocks, *args)` takes `Blocks` and returns the
    outputs as `Blocks`. Devices are driven from one thread each, so their first calls
    compile in parallel and later calls overlap (JAX dispatch is asynchronous).
    """
    devices = [None] if mesh is None else local_devices(mesh)

    def run_device(device, blocks: Blocks, *args) -> list:
        return [fn_by_device[device](tree, *args) for tree in blocks.per_device[device]]

    if len(devices) == 1:
        return lambda blocks, *args: Blocks({devices[0]: run_device(devices[0], blocks, *args)})
    pool = _pool(len(devices))

    def run(blocks: Blocks, *args) -> Blocks:
        futures = {d: pool.submit(run_device, d, blocks, *args) for d in devices}
        return Blocks({d: future.result() for d, future in futures.items()})

    return run


@functools.cache
def _pool(num_threads: int) -> ThreadPoolExecutor:
    """One dispatch thread per local device, shared by every chunk of a run."""
    return ThreadPoolExecutor(num_threads, thread_name_prefix="initbench-device")


@functools.cache
def compile_pool() -> ThreadPoolExecutor:
    """Threads that compile programs ahead of their first call, one per core."""
    return ThreadPoolExecutor(plan.num_cores(), thread_name_prefix="initbench-compile")


def host_array(leaf) -> np.ndarray:
    """A leaf as a NumPy array; typed PRNG keys become their raw key data."""
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    return np.asarray(leaf)


def gather(blocks: Blocks, size: int | None = None):
    """Every cell's values as NumPy arrays, cells first (all processes' cells, gathered on
    every process), the first `size` cells (None: all, padding included)."""
    per_device = [jax.tree.map(lambda *parts: np.concatenate([host_array(p) for p in parts]),
                               *trees) for trees in blocks.per_device.values()]
    local = jax.tree.map(lambda *parts: np.concatenate(parts), *per_device)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        local = jax.tree.map(np.asarray, multihost_utils.process_allgather(local, tiled=True))
    return local if size is None else jax.tree.map(lambda a: a[:size], local)


def from_main_process(values: np.ndarray) -> np.ndarray:
    """Process 0's copy of a small array of booleans or integers (every process must call)."""
    if jax.process_count() == 1:
        return values
    from jax.experimental import multihost_utils

    sent = np.asarray(values).astype(np.int32)  # bools and int64 do not cross every backend
    return np.asarray(multihost_utils.broadcast_one_to_all(sent)).astype(values.dtype)


# ------------------------------------------------------------------ memory


def free_bytes(device) -> int | None:
    """Free memory of `device` in bytes: the accelerator's own, or the host's on CPU."""
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # not every backend implements it
        stats = None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(spec, dataset, free: float | None = None, device=None) -> None:
    """Refuse (InitbenchError, before anything is compiled) a network of which not even one
    compiled block of `cells_per_block()` cells fits in a device's free memory, with the
    estimate and the limit. A block is the smallest unit a device trains (it is padded)."""
    from initbench.errors import InitbenchError

    device = device or jax.local_devices()[0]
    if free is None:
        free = free_bytes(device)
        if free is None:
            return
    block = cells_per_block()
    need = plan.data_bytes(dataset) + block * plan.bytes_per_cell(
        spec, dataset.x_train.shape[1], dataset.num_classes)
    if need > free:
        raise InitbenchError(
            f"the network does not fit: one compiled block of {block} cells of hidden "
            f"{'-'.join(map(str, spec.hidden[:6]))}{'-...' if len(spec.hidden) > 6 else ''} "
            f"(batch {spec.batch_size}) needs about {need / 2**30:.3g} GiB, and "
            f"{device.platform} has {free / 2**30:.3g} GiB free; use a smaller --hidden or "
            "--batch-size."
        )


def cells_per_chunk(spec, dataset, limit: int) -> int:
    """`plan.cells_per_chunk` for this machine's devices and their free memory."""
    devices = jax.local_devices()
    free = [free_bytes(d) for d in devices]
    if all(f is not None for f in free):
        sharing = len(devices) if devices[0].platform == "cpu" else 1
        check_fits(spec, dataset, min(free) / sharing, devices[0])
    return plan.cells_per_chunk(spec, dataset, limit, free, devices[0].platform,
                                len(jax.devices()))
