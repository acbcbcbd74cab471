"""LSUV (Mishkin & Matas 2015): rescale each layer on real data to unit output variance.

The start is the `lsuv` registry entry (gain·Q, Q semi-orthogonal). Then, for each dense
layer in order, input to output (the logits layer included, as in the paper):

    repeat: out = h @ W + b on the LSUV batch; v = Var(out) over all (example, unit);
            stop if |v - 1| < tol, else W <- W / sqrt(v)

at most `lsuv_max_iter` times, and the layer's activation of `out` feeds the next layer.
Only kernels change. With zero biases one pass is exact; a bias whose spread across units
alone exceeds variance 1 can keep a layer from reaching 1, and it then stops at the cap.

The LSUV batch is the first `BATCH_SIZE` training examples: fixed, the same for every
seed and initializer, so a cell's LSUV start depends only on its own orthogonal draw
(deterministic per seed, like every other initializer).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from initbench import networks
from initbench.spec import Spec

BATCH_SIZE = 1000  # examples in the LSUV batch (the first ones of the training set)


def lsuv_batch(x_train: np.ndarray) -> np.ndarray:
    """The LSUV batch: the first `BATCH_SIZE` training examples, [B, D]."""
    return x_train[:BATCH_SIZE]


def after_draw(spec: Spec, network: networks.Network, params, data):
    """The `lsuv` initializer's after-draw hook (`initializers.after_draw`): (params, passes
    [seed, layer]) of stacked `params` rescaled on the LSUV batch of `data`."""
    return apply_lsuv(spec, network, params, lsuv_batch(data.x_train))


def apply_lsuv(spec: Spec, network: networks.Network, params, batch):
    """Rescale stacked `params` ([seed] leading axis) layer by layer on `batch` [B, D].

    The layers are the network's drawn ones (`network.layers`, in the order the data
    reaches them; the MLP's dense layers, logits included). Layer by layer: v = Var(layer
    output) over all entries on `batch`, run through the whole network as it stands
    (earlier layers already rescaled); while |v - 1| >= tol (and at most `lsuv_max_iter`
    times) the layer's drawn kernels are divided by sqrt(v). Returns (params, passes): the
    rescaled parameters and an int array [seed, layer] of the rescalings each layer took
    (0: already within `spec.lsuv_tol`; `spec.lsuv_max_iter`: stopped at the cap).
    """
    rules = [r for r in network.rules if r.kind == "kernel"]
    num_seeds = jax.tree.leaves(params)[0].shape[0]
    x = jnp.asarray(batch, jnp.float32)

    @jax.jit
    def variances_fn(params):
        def one_seed(p):
            _, _, outputs = network.run_layers(p, x)
            return jnp.stack([jnp.var(outputs[i]) for i in range(len(network.layers))])

        return jax.vmap(one_seed)(params)

    passes = np.zeros((num_seeds, len(network.layers)), np.int32)
    cells = []
    for s in range(num_seeds):  # one seed at a time: a cell's start never sees its neighbours
        flat = dict(networks._flatten(jax.tree.map(lambda a, s=s: a[s:s + 1], params)))
        for i, layer in enumerate(network.layers):
            kernels = [r.path for r in rules if r.path[:-1] == layer]
            for _ in range(spec.lsuv_max_iter):
                v = float(variances_fn(networks._unflatten(flat))[0, i])
                if not (abs(v - 1.0) >= spec.lsuv_tol and np.isfinite(v) and v > 0):
                    break
                for path in kernels:
                    flat[path] = flat[path] / jnp.sqrt(jnp.asarray(v, flat[path].dtype))
                passes[s, i] += 1
        cells.append(networks._unflatten(flat))
    return jax.tree.map(lambda *leaves: jnp.concatenate(leaves), *cells), passes


def format_passes(passes) -> str:
    """One line from passes [seed, layer]: passes per layer, the maximum over seeds."""
    worst = np.asarray(passes).max(axis=0)
    return f"{' '.join(str(int(p)) for p in worst)} ({len(worst)} layers, max over seeds)"


def describe(passes: dict[str, dict[str, list[int]]]) -> str:
    """One line per init of {init: {seed: passes per layer}}: the LSUV passes each layer took."""
    return "; ".join(f"{name}: LSUV passes per layer {format_passes(list(by_seed.values()))}"
                     for name, by_seed in passes.items())
