"""How a grid is laid out on devices: block sizes, host-device counts, memory estimates.

Pure arithmetic on settings and counts; no JAX is imported here, so the CLI can plan before
JAX starts (the host-device split must be set before JAX creates its devices).

Why blocks of a fixed size: XLA:CPU's fusion and vectorization choices depend on the array
shapes, and with them the last bits of exp, log and reductions. Measured (jax 0.10.2): a
cell trained among <= 4 cells differs from the same cell among >= 5, and on `digits` among
<= 11 from among >= 12 (2e-7 in test loss). With one block shape, a cell's numbers cannot
depend on its grid. On CPUs the block is one cell: a grid never pads, and one model's Adam
state stays in cache (blocks of 8 were 20-28% slower per model-epoch, BENCHMARKS.md).
"""

from __future__ import annotations

import itertools
import math
import os

# Cells per compiled program. On CPUs one cell (it was 8, whose numbers differ by ~1 ulp:
# hence cellcache.TRAINING_CODE_VERSION 2). GPUs and TPUs need many models per
# program to fill the device.
CELLS_PER_BLOCK = 1
ACCELERATOR_CELLS_PER_BLOCK = 128
MAX_CELLS_PER_CHUNK = 128  # bounds device memory; bigger grids train chunk after chunk
# Share of free memory a chunk of cells may plan to use (the rest: XLA temporaries, slack).
MEMORY_FRACTION = 0.5
EVAL_CHUNK = 1000  # examples per evaluation step: bounds activation memory on big grids
SPLIT_GAIN_EXPONENT = 0.2  # d host devices ~ d**0.2 x the throughput of one (2 cores: 1.15x)


def cells_per_block(platform: str) -> int:
    """Cells every compiled program trains on a device of `platform` ("cpu", "gpu", ...)."""
    return CELLS_PER_BLOCK if platform == "cpu" else ACCELERATOR_CELLS_PER_BLOCK


def num_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def host_devices_for(num_cells: int, cores: int | None = None) -> int:
    """Host devices worth splitting the CPU into for a grid of `num_cells` cells.

    Every device trains the same number of whole blocks of CELLS_PER_BLOCK cells (padding
    costs as much as real cells), and d devices train about d**0.2 times more model-epochs
    per second than one (measured on 2 cores: 1.15x; beyond 2 cores a guess). The count
    with the least estimated time wins, ties going to fewer devices: on 2 cores with blocks
    of one cell, 1 device for 1, 3 and 5 cells, 2 devices for every other count.
    """
    cores = num_cores() if cores is None else cores

    def cost(num_devices: int) -> float:
        blocks_per_device = math.ceil(num_cells / (CELLS_PER_BLOCK * num_devices))
        return blocks_per_device * num_devices / num_devices**SPLIT_GAIN_EXPONENT

    return min(range(1, cores + 1), key=lambda d: (round(cost(d), 6), d))


def padded_size(num_cells: int, block: int, num_devices: int) -> int:
    """Cells after padding, so every device holds the same whole number of blocks."""
    unit = block * num_devices
    return -(-num_cells // unit) * unit


def bytes_per_cell(spec, num_features: int, num_classes: int) -> int:
    """Device bytes one cell needs while training (an estimate, float32).

    Parameters, gradients, updates and two optimizer moments, twice over (donated buffers
    are reused, XLA temporaries are not), plus a minibatch and an evaluation chunk of
    activations for forward and backward.
    """
    widths = [num_features, *spec.hidden, num_classes]
    num_params = sum(a * b + b for a, b in itertools.pairwise(widths))
    batch_acts = spec.batch_size * (num_features + 3 * sum(widths[1:]))
    eval_acts = EVAL_CHUNK * 2 * max(widths[1:])
    return 4 * (10 * num_params + batch_acts + eval_acts)


def data_bytes(dataset) -> int:
    """Device bytes of one replicated copy of the data (train twice: shuffled and evaluated)."""
    return int(2 * dataset.x_train.nbytes + dataset.x_test.nbytes
               + 2 * dataset.y_train.nbytes + dataset.y_test.nbytes)


def cells_per_chunk(spec, dataset, limit: int, free: list[int | None], platform: str,
                    num_devices: int) -> int:
    """How many cells to train at once: at most `limit`, fewer when memory would not hold them.

    `free` is the free memory of each local device (None: unknown). Every device holds a
    copy of the data and its share of the cells; the share is sized to fit in
    MEMORY_FRACTION of the smallest device's free memory (CPU host devices split the host's
    memory between them) and rounded down to whole blocks.
    """
    if not free or any(f is None for f in free):
        return limit
    sharing = len(free) if platform == "cpu" else 1
    budget = min(free) * MEMORY_FRACTION / sharing
    per_cell = bytes_per_cell(spec, dataset.x_train.shape[1], dataset.num_classes)
    per_device = int((budget - data_bytes(dataset)) // per_cell)
    block = cells_per_block(platform)
    per_device = max(block, per_device // block * block)
    return max(1, min(limit, per_device * num_devices))
