"""Per-layer statistics of one cell on a batch: the probe at init, `--track-layers` in training.

For each drawn layer `i` of the network (the MLP's dense layers: 0 = first hidden layer,
`L = len(hidden)` = the logits layer), on a batch x [B, D] with labels y [B]:

- `preact_mean`, `preact_std`: mean and std of the pre-activation h_i = W_i a_{i-1} + b_i
  over all (example, unit) entries;
- `act_std`: std of the activation a_i = act(h_i) (the logits layer's activation is the
  identity, so there it equals `preact_std`);
- `dead_fraction`: the fraction of units that are dead on the whole batch, i.e. whose
  activation has derivative exactly 0 at every example, so no gradient can pass through
  them. For ReLU that is the same as the unit's output being exactly 0 for every example.
  Smooth activations (tanh, sigmoid, gelu, elu, ...) only count as dead when saturated
  to float precision on every example; leaky_relu, linear and the logits layer never are;
- `grad_std`: std of dℓ_n/dh_i[n], the per-example loss gradient with respect to the
  pre-activation (= B times the gradient of the batch-mean cross-entropy), over all
  (example, unit) entries;
- `weight_grad_norm`: Frobenius norm of d(mean loss)/dW_i, the gradient one SGD step on
  this batch would use.

Every network (`initbench.networks`: the MLP, `--model cnn`, a user module) goes one way:
the layers are the modules whose kernels were drawn, in the order the data reaches them,
found by intercepting their calls. Layer i's pre-activation is its output; its activation
is what the next drawn layer receives (after the activation, pooling, flattening, ... in
between; the last layer's is its own output). Where the network declares an elementwise
activation between its layers (`Network.activation`: the MLP), a dead unit is one where its
derivative is 0 at every example, as above; elsewhere the in-between map has no per-unit
derivative, and a dead unit is a feature of the next layer's input (a channel of an image,
an entry of a vector) that is exactly 0 on every example and position (a dead ReLU unit:
for ReLU the two rules agree, jax's relu having derivative 0 at 0). The last layer has
none.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from initbench import model as model_lib
from initbench import networks
from initbench.spec import Spec

STATS = ("preact_mean", "preact_std", "act_std", "dead_fraction", "grad_std", "weight_grad_norm")
BATCH_SIZE = 1000  # the probe's default batch and the --track-layers batch


def make_cell_stats(spec: Spec, num_classes: int, image_shape):
    """A pure `stats_fn(params, x, y) -> {name: [L + 1]}` for one cell (params unstacked),
    one entry per drawn layer of the network (`networks.Network.layers`; the MLP's dense
    layers) on flat rows x of images `image_shape`.

    Jit- and vmap-able; the same function backs `--track-layers` during training.
    """
    network = networks.resolve(spec, num_classes, image_shape)
    num_layers = len(network.layers)
    act = None if network.activation is None else model_lib.activation_fn(network.activation)

    def dead_units(h, a):
        """Fraction of the units between a layer's output h and the next layer's input a
        that pass no gradient on any example (see the module docstring)."""
        if act is not None:  # elementwise: the activation's derivative at h
            a = jax.jvp(act, (h,), (jnp.ones_like(h),))[1]
        return jnp.mean(jnp.all(a.reshape(-1, a.shape[-1]) == 0, axis=0))

    def stats_fn(params, x, y):
        if spec.param != "sp":  # the forward pass's kernels (issue 25)
            from initbench import parameterizations

            params = parameterizations.effective(spec, params)
        batch = x.shape[0]
        _, _, shapes = jax.eval_shape(lambda p: network.run_layers(p, x), params)
        shifts = {i: jnp.zeros(s.shape, s.dtype) for i, s in shapes.items()}

        def loss_fn(params, shifts):
            logits, inputs, outputs = network.run_layers(params, x, shifts)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, (inputs, outputs)

        (param_grads, out_grads), (inputs, outputs) = jax.grad(
            loss_fn, argnums=(0, 1), has_aux=True)(params, shifts)
        grads_by_path = dict(networks._flatten(param_grads))
        rows = []
        for i in range(num_layers):
            h = outputs[i]
            if i + 1 < num_layers:
                a = inputs[i + 1]
                dead = dead_units(h, a)
            else:
                a, dead = h, jnp.zeros(())
            kernels = [g for path, g in grads_by_path.items()
                       if path[:-1] == network.layers[i] and g.ndim >= 2]
            norm = jnp.linalg.norm(jnp.stack([jnp.linalg.norm(g) for g in kernels]))
            rows.append((h, a, dead, out_grads[i], norm))
        return {
            "preact_mean": jnp.stack([r[0].mean() for r in rows]),
            "preact_std": jnp.stack([r[0].std() for r in rows]),
            "act_std": jnp.stack([r[1].std() for r in rows]),
            "dead_fraction": jnp.stack([r[2] for r in rows]).astype(jnp.float32),
            "grad_std": jnp.stack([(batch * r[3]).std() for r in rows]),
            "weight_grad_norm": jnp.stack([r[4] for r in rows]),
        }

    return stats_fn


def layer_batch(data) -> tuple[np.ndarray, np.ndarray]:
    """The fixed batch `--track-layers` measures on: the first `BATCH_SIZE` training
    examples (x [B, D], y [B]), the probe's default batch."""
    return data.x_train[:BATCH_SIZE], data.y_train[:BATCH_SIZE]


# A cell's per-layer metrics are kept beside its per-epoch ones under this prefix (in the
# cell cache too); `RunResult.layer_metrics` holds them without it.
LAYER_PREFIX = "layer_"


def layer_metrics(stats: dict) -> dict:
    """What `--track-layers` records once per epoch, from `make_cell_stats`'s output:
    `layer_grad_norm` and `layer_dead_fraction`, each [L + 1]."""
    return {LAYER_PREFIX + "grad_norm": stats["weight_grad_norm"],
            LAYER_PREFIX + "dead_fraction": stats["dead_fraction"]}


def layer_metric_names(cell_arrays) -> dict[str, str]:
    """{key in a cell's arrays: name in `RunResult.layer_metrics`} of its per-layer metrics."""
    return {k: k[len(LAYER_PREFIX):] for k in sorted(cell_arrays) if k.startswith(LAYER_PREFIX)}
