"""Spread the grid's cells over devices and processes, in blocks of a fixed size.

The grid state is a global `jax.Array` sharded as `P("cells")` over a 1-D mesh of every
device of every process. Each device trains its share in blocks of exactly
`cells_per_block()` cells (1 on CPUs, 128 on accelerators; see `initbench.plan` for why
blocks have one size), every block with the same compiled single-device program (`blockwise`). Cells never talk
to each other, so nothing is communicated while training; metrics are gathered once per
epoch. Why not XLA's SPMD partitioner (jit over the mesh, or shard_map): it
inserts copies that change XLA's algebraic rewrites (Adam's bias correction became
`m / (b * d)` instead of `m * (1 / b) / d`), so 2 or 4 devices differed from 1 by an ulp.
tests/test_sharding.py checks 1, 2 and 4 devices and several grid sizes bitwise.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
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


def blockwise(fn_by_device: dict, mesh: jax.sharding.Mesh | None) -> Callable:
    """Run a per-block function over every block of cells of every local device.

    `fn_by_device[d](tree, *args)` takes and returns pytrees whose leaves have a leading
    axis of `cells_per_block()` cells on device `d` (key None: the default device, when
    `mesh` is None). The returned `run(tree, *args)` takes and returns pytrees with the
    whole cell axis first: plain arrays without a mesh, global arrays sharded as
    `P("cells")` with one. Devices are driven from one thread each, so their first calls
    compile in parallel and later calls overlap (JAX dispatch is asynchronous).
    """
    block = cells_per_block()
    if mesh is None:
        return lambda tree, *args: _run_blocks(fn_by_device[None], block, tree, *args)
    devices = local_devices(mesh)
    cell_sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("cells"))
    pool = _pool(len(devices))

    def run(tree, *args):
        leaves, treedef = jax.tree.flatten(tree)
        shards = [{shard.device: shard.data for shard in leaf.addressable_shards}
                  for leaf in leaves]
        futures = [pool.submit(_run_blocks, fn_by_device[d], block,
                               treedef.unflatten([s[d] for s in shards]), *args)
                   for d in devices]
        outs = [future.result() for future in futures]
        out_leaves = [jax.tree.leaves(out) for out in outs]

        def assemble(i: int) -> jax.Array:
            local = [leaves_d[i] for leaves_d in out_leaves]
            shape = (local[0].shape[0] * mesh.devices.size, *local[0].shape[1:])
            return jax.make_array_from_single_device_arrays(shape, cell_sharding, local)

        return jax.tree.unflatten(jax.tree.structure(outs[0]),
                                  [assemble(i) for i in range(len(out_leaves[0]))])

    return run


@functools.cache
def _pool(num_threads: int) -> ThreadPoolExecutor:
    """One dispatch thread per local device, shared by every chunk of a run."""
    return ThreadPoolExecutor(num_threads, thread_name_prefix="initbench-device")


def _run_blocks(fn: Callable, block: int, tree, *args):
    """`fn` over consecutive blocks of `block` cells of `tree`, outputs concatenated."""
    size = jax.tree.leaves(tree)[0].shape[0]
    if size == block:
        return fn(tree, *args)
    outs = [fn(jax.tree.map(lambda a, start=start: _take(a, start, block), tree), *args)
            for start in range(0, size, block)]
    return jax.tree.map(lambda *blocks: jnp.concatenate(blocks)[:size], *outs)


def _take(array, start: int, block: int):
    """Cells start..start+block of `array`, its last cell repeated past its end."""
    part = array[start:start + block]
    missing = block - part.shape[0]
    return jnp.concatenate([part] + [part[-1:]] * missing) if missing else part


def to_host(tree):
    """A pytree of (possibly multi-process) arrays as NumPy arrays, gathered on every process."""
    if all(getattr(leaf, "is_fully_addressable", True) for leaf in jax.tree.leaves(tree)):
        return jax.tree.map(np.asarray, tree)
    from jax.experimental import multihost_utils

    return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))


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
