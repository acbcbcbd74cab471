"""One path to a cell's starting parameters, data-dependent starts (LSUV) included.

Training, the probe and `--track-layers` all start from `cell_starts`, so "the probe is
epoch 0 of training" holds by construction, and the LSUV passes a cell took are recorded
when it is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from initbench import initializers, lsuv
from initbench import model as model_lib
from initbench.spec import Spec


class Starts(NamedTuple):
    """Parameters of every cell stacked on a leading [M] axis (in the cells' order), and per
    cell the LSUV passes per layer ([L + 1] ints; None for data-independent starts)."""

    params: dict
    lsuv_passes: list[np.ndarray | None]


def cell_starts(spec: Spec, cells: Sequence[tuple[str, int]], data) -> Starts:
    """Starting parameters of `cells` ((init, seed) pairs) for `data` (an `initbench.data.Dataset`).

    A cell's start depends only on its own (initializer, seed): kernels from
    `model.init_key`, LSUV on the fixed `lsuv.lsuv_batch` of the training set.
    """
    groups: dict[str, list[int]] = {}
    for name, seed, *_ in cells:  # a data order (--data-seeds) does not change the start
        groups.setdefault(name, []).append(seed)
    stacked, passes = {}, {}
    for name, seeds in groups.items():
        params = model_lib.init_params(spec, name, seeds, data.x_train.shape[1], data.num_classes)
        if initializers.is_data_dependent(name):
            params, passes[name] = lsuv.apply_lsuv(spec, params, lsuv.lsuv_batch(data.x_train),
                                                   data.num_classes)
        stacked[name] = params
    index = {name: 0 for name in groups}
    ordered, cell_passes = [], []
    for name, *_ in cells:
        i = index[name]
        ordered.append(jax.tree.map(lambda a, i=i: a[i], stacked[name]))
        cell_passes.append(passes[name][i] if name in passes else None)
        index[name] += 1
    return Starts(jax.tree.map(lambda *leaves: jnp.stack(leaves), *ordered), cell_passes)
