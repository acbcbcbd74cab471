"""Spread the grid's cell axis over devices with jax.sharding (one mesh axis, "cells")."""

from __future__ import annotations

import jax

# XLA:CPU rounds differently for batches of <= 4 cells than for >= 5 (measured: 1e-7..1e-6
# apart after a few epochs), so every device gets at least this many cells; with it, a cell's
# numbers do not depend on which other cells share the grid.
MIN_CELLS_PER_DEVICE = 8


def cell_mesh() -> jax.sharding.Mesh | None:
    """A 1-D mesh over every device (all processes), or None on a single device."""
    devices = jax.devices()
    if len(devices) == 1:
        return None
    return jax.sharding.Mesh(devices, ("cells",))


def pad_cells(cells: list, mesh: jax.sharding.Mesh | None) -> list:
    """Repeat the last cell until every device holds the same number (>= MIN_CELLS_PER_DEVICE).

    Padding cells are exact copies, so they cost compute but never change any result;
    callers keep only the first len(cells) outputs.
    """
    num_devices = 1 if mesh is None else mesh.devices.size
    target = max(len(cells), MIN_CELLS_PER_DEVICE * num_devices)
    target += -target % num_devices
    return list(cells) + [cells[-1]] * (target - len(cells))
