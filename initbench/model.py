"""The MLP (flax.linen) and per-cell parameter initialization."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from initbench import initializers
from initbench.spec import Spec, kernel_params

# Separate random streams per seed, so the data order never depends on the initializer.
INIT_STREAM, DATA_STREAM, DATA_ORDER_STREAM = 1, 2, 3


def activation_fn(name: str) -> Callable[[jax.Array], jax.Array]:
    """The jax.nn activation for a validated name ('linear' is the identity)."""
    if name == "linear":
        return lambda x: x
    return getattr(jax.nn, name)


class MLP(nn.Module):
    """Dense layers with `activation` between them; returns logits.

    Each hidden pre-activation is exposed to flax's `perturb` (for d loss / d pre-activation)
    and `sow`n as `intermediates/preact_i` (for the probe); both are no-ops in plain training.
    """

    hidden: Sequence[int]
    num_classes: int
    activation: str = "relu"
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init_fn: Callable[[int], Callable] = lambda fan_in: nn.initializers.zeros

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = activation_fn(self.activation)
        for i, width in enumerate(self.hidden):
            dense = nn.Dense(
                width, kernel_init=self.kernel_init, bias_init=self.bias_init_fn(x.shape[-1]),
                name=f"dense_{i}",
            )
            h = self.perturb(f"preact_{i}", dense(x))
            self.sow("intermediates", f"preact_{i}", h)
            x = act(h)
        out = nn.Dense(
            self.num_classes, kernel_init=self.kernel_init,
            bias_init=self.bias_init_fn(x.shape[-1]), name=f"dense_{len(self.hidden)}",
        )
        return out(x)


def make_model(spec: Spec, num_classes: int, init_name: str = "zeros") -> MLP:
    """The spec's MLP whose kernels are drawn by initializer `init_name`."""
    bias_name = spec.bias_init

    def bias_init_fn(fan_in: int) -> Callable:
        return initializers.get_bias(bias_name, fan_in)

    return MLP(
        hidden=tuple(spec.hidden),
        num_classes=num_classes,
        activation=spec.activation,
        kernel_init=initializers.get(init_name, **kernel_params(spec, init_name)),
        bias_init_fn=bias_init_fn,
    )


def init_key(init_name: str, seed: int) -> jax.Array:
    """The key of cell (initializer, seed); aliases share it, other cells never do. An
    initializer's parameters are not in it: `normal(0.01)` draws from `normal`'s stream
    (its weights are `normal`'s times 0.01, seed for seed), so comparing parameters of one
    initializer compares the parameters alone."""
    name_id = zlib.crc32(initializers.base(init_name).encode()) & 0x7FFFFFFF
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), INIT_STREAM), name_id)


def data_key(seed: int) -> jax.Array:
    """The minibatch-order key of a seed: shared by every initializer (the paired design)."""
    return jax.random.fold_in(jax.random.key(seed), DATA_STREAM)


def data_order_key(seed: int, data_seed: int) -> jax.Array:
    """The minibatch-order key of (weight seed, data order `data_seed`) for `--data-seeds`.

    Order 0 is the seed's own `data_key` (so a data-order-0 cell is the cell of a run
    without `--data-seeds`); order
    d >= 1 comes from a third stream of the seed, never used by any other key. Shared by
    every initializer, like `data_key`.
    """
    if data_seed == 0:
        return data_key(seed)
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), DATA_ORDER_STREAM),
                              data_seed)


def cell_draw(spec: Spec, init_name: str, num_features: int,
              num_classes: int) -> Callable[[jax.Array], dict]:
    """The function from a cell's `init_key` to its parameters under `init_name`."""
    model = make_model(spec, num_classes, init_name)
    dummy = jnp.zeros((1, num_features), jnp.float32)
    return lambda key: model.init(key, dummy)["params"]


def init_params(spec: Spec, init_name: str, seeds: Sequence[int], num_features: int,
                num_classes: int):
    """Parameters of one initializer for each seed, stacked on a leading [seed] axis
    (NumPy arrays)."""
    draw = cell_draw(spec, init_name, num_features, num_classes)
    return draw_cells({init_name: draw}, {init_name: list(seeds)})[init_name]


def draw_all(draws: dict[str, Callable[[jax.Array], dict]]) -> Callable[[list], list]:
    """The function from one `init_key` per initializer of `draws` (in its order) to their
    cells' parameters: the body of `draw_cells`' one program."""
    names = list(draws)
    return lambda keys: [draws[name](key) for name, key in zip(names, keys)]


def draw_cells(draws: dict[str, Callable[[jax.Array], dict]],
               seeds: dict[str, Sequence[int]], program: Callable | None = None) -> dict:
    """For each initializer name, `draws[name]` of each of `seeds[name]`'s `init_key`s,
    stacked on a leading [seed] axis on the host (NumPy arrays).

    One compiled program draws one cell of every initializer, called once per seed: bitwise
    the eager draw (checked for all 14 initializers), one compilation for the whole grid
    and no forward pass. Not vmapped over seeds: jaxlib's batched QR (orthogonal, lsuv) can
    deadlock on two host devices (BENCHMARKS.md, "Why the batched QR stalled"). Shorter
    seed lists repeat their last seed; the repeats are dropped. `program`: `draw_all(draws)`
    jitted by the caller (the runner keeps it in its program cache); default `jax.jit`.
    """
    names = list(draws)
    program = program if program is not None else jax.jit(draw_all(draws))
    drawn: dict[str, list] = {name: [] for name in names}
    for i in range(max(len(seeds[name]) for name in names)):
        keys = [init_key(name, seeds[name][min(i, len(seeds[name]) - 1)]) for name in names]
        for name, cell in zip(names, jax.device_get(program(keys))):
            if i < len(seeds[name]):
                drawn[name].append(cell)
    return {name: jax.tree.map(lambda *leaves: np.stack(leaves), *cells)
            for name, cells in drawn.items()}


def layer_names(spec: Spec) -> list[str]:
    """Dense layer names in order, input to output."""
    return [f"dense_{i}" for i in range(len(spec.hidden) + 1)]
