"""One path to a cell's starting parameters, data-dependent starts (an initializer's
after-draw hook, such as LSUV's) included.

Training, the probe and `--track-layers` all start from `cell_starts`, so "the probe is
epoch 0 of training" holds by construction, and the LSUV passes a cell took are recorded
when it is built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import numpy as np

from initbench import initializers, networks
from initbench import model as model_lib
from initbench.spec import Spec

# How the draw program of some initializers (names, in the draw's order) is jitted: given the
# names and `model.draw_all`'s function, a callable like `jax.jit`'s; the runner's keeps the
# program across processes (`programs.Program`, which also has `out_shapes`).
DrawJit = Callable[[tuple[str, ...], Callable], Callable]


class Starts(NamedTuple):
    """Parameters of every cell stacked on a leading [M] axis (in the cells' order; NumPy
    arrays), and per cell the LSUV passes per layer ([L + 1] ints; None for
    data-independent starts)."""

    params: dict
    lsuv_passes: list[np.ndarray | None]


def init_names(cells: Sequence[tuple[str, int]]) -> tuple[str, ...]:
    """The initializers of `cells`, in order of first appearance: the draw program's order."""
    return tuple(dict.fromkeys(name for name, *_ in cells))


def cell_starts(spec: Spec, cells: Sequence[tuple[str, int]], data,
                draw_jit: DrawJit | None = None) -> Starts:
    """Starting parameters of `cells` ((init, seed) pairs) for `data` (an `initbench.data.Dataset`).

    A cell's start depends only on its own (initializer, seed): kernels from
    `model.init_key` (`networks.cell_draw`), LSUV on the fixed `lsuv.lsuv_batch` of the
    training set. `draw_jit` jits the one draw program (default `jax.jit`); the numbers
    never depend on it.
    """
    groups: dict[str, list[int]] = {}
    for name, seed, *_ in cells:  # a data order (--data-seeds) does not change the start
        groups.setdefault(name, []).append(seed)
    network = networks.resolve(spec, data.num_classes, data.image_shape)
    draws = {name: networks.cell_draw(spec, network, name) for name in groups}
    program = None if draw_jit is None else draw_jit(init_names(cells), model_lib.draw_all(draws))
    stacked, passes = model_lib.draw_cells(draws, groups, program), {}
    for name in groups:
        if (hook := initializers.after_draw(name)) is not None:
            params, passes[name] = hook(spec, network, stacked[name], data)
            stacked[name] = jax.tree.map(np.asarray, params)
    if spec.param != "sp":  # stored as the parameterization keeps them
        from initbench import parameterize

        stacked = {name: jax.tree.map(np.asarray, parameterize.to_stored(spec, tree, network))
                   for name, tree in stacked.items()}
    if spec.dtype != "float32":  # drawn (and set on data) in float32, then rounded
        from initbench import precision

        stacked = {name: jax.tree.map(np.asarray, precision.cast_params(tree, spec.dtype))
                   for name, tree in stacked.items()}
    # Reordered on the host: on a device every leaf shape would compile its own gather.
    index = {name: 0 for name in groups}
    ordered, cell_passes = [], []
    for name, *_ in cells:
        i = index[name]
        ordered.append(jax.tree.map(lambda a, i=i: a[i], stacked[name]))
        cell_passes.append(passes[name][i] if name in passes else None)
        index[name] += 1
    return Starts(jax.tree.map(lambda *leaves: np.stack(leaves), *ordered), cell_passes)


def start_shapes(spec: Spec, data, num_cells: int, names: tuple[str, ...] | None = None,
                 draw_jit: DrawJit | None = None) -> dict:
    """Shapes and dtypes (`jax.ShapeDtypeStruct`) of `cell_starts`' params for `num_cells`
    cells, without drawing anything (every initializer gives the same shapes). Given the
    initializers `names` about to be drawn and a `draw_jit` whose program has `out_shapes`
    (`programs.Program`), they are read from the draw program that `cell_starts` then calls
    (not traced when it was kept); otherwise `jax.eval_shape` traces the draw of `zeros`."""
    network = networks.resolve(spec, data.num_classes, data.image_shape)
    key = jax.eval_shape(lambda: model_lib.init_key("zeros", 0))
    one = None
    if names is not None and draw_jit is not None:
        draws = {name: networks.cell_draw(spec, network, name) for name in names}
        out_shapes = getattr(draw_jit(names, model_lib.draw_all(draws)), "out_shapes", None)
        kept = None if out_shapes is None else out_shapes([key] * len(names))
        one = None if kept is None else kept[0]
    if one is None:
        one = jax.eval_shape(networks.cell_draw(spec, network, "zeros"), key)
    if spec.dtype != "float32":
        from initbench import precision

        one = jax.eval_shape(lambda tree: precision.cast_params(tree, spec.dtype), one)
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct((num_cells, *a.shape), a.dtype), one)


def init_card(spec: Spec, init_name: str, seed: int, data) -> list[dict]:
    """The initialization card of cell (`init_name`, `seed`) for `data`: one row per
    parameter (`networks.card`) of the start training uses (LSUV included)."""
    return init_card_and_properties(spec, init_name, seed, data)[0]


def init_card_and_properties(spec: Spec, init_name: str, seed: int,
                             data) -> tuple[list[dict], list[str]]:
    """(`init_card`'s rows, the lines that check the initializer's defining property on
    this draw: `modern_inits.properties`; the deterministic ones are compared with the draw
    of seed + 1, which is drawn only for them). With a `spec.dtype` other than float32 each
    row also gets `by_dtype` (`precision.card_stats`)."""
    from initbench import modern_inits

    network = networks.check(spec, data.num_classes, data.image_shape, data.name)  # first
    base = initializers.base(init_name)
    seeds = [seed, seed + 1] if base in modern_inits.DETERMINISTIC else [seed]
    built = cell_starts(spec, [(init_name, s) for s in seeds], data)
    start = jax.tree.map(lambda a: a[0], built.params)
    other = jax.tree.map(lambda a: a[1], built.params) if len(seeds) > 1 else None
    rows = networks.card(spec, init_name, start, network)
    if spec.dtype != "float32":  # what the cast kept of the float32 draw, per dtype
        from initbench import precision

        drawn = cell_starts(spec.replace(dtype="float32"), [(init_name, seed)], data).params
        precision.card_stats(rows, dict(networks._flatten(jax.tree.map(lambda a: a[0], drawn))),
                             dict(networks._flatten(start)), init_name, spec.bias_init,
                             spec.dtype)
    lines = modern_inits.properties(base, start, other, network.structure,
                                    built.lsuv_passes[0])
    if spec.param != "sp":
        from initbench import parameterize  # multiplier and rate per layer

        rows = parameterize.card_columns(spec, rows, network)
    return rows, lines
