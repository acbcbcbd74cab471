"""MetaInit (Dauphin and Schoenholz 2019): learn each kernel's norm to minimize the
gradient quotient, from the he_normal draw; the `metainit` initializer's after-draw hook.

With g = ∇L(θ) and Hg the Hessian-vector product on a batch (the authors' PyTorch listing,
`gradient_quotient`), over every parameter entry:

    GQ(θ) = mean_i |(g_i - (Hg)_i) / (g_i + eps·sign(g_i)) - 1|,   eps = 1e-5

For each kernel W (rank >= 2) only its norm moves, by sign-SGD with momentum:

    d = sign(<W, ∂GQ/∂W> / |W|);  v <- momentum·v - lr·d;  W <- W · (|W| + v) / |W|

`STEPS` steps (the paper's 500 would cost minutes on a CPU for a deep net: this is the
setting for a comparison's budget), lr 0.1 and momentum 0.9 as the authors'. The authors'
listing keeps the last step's norms; here the norms of the step with the lowest GQ are
kept (the start included), because with lr 0.1 on norms of order 1 the momentum carries
the last step far from the best (measured: GQ 45 -> 116 on a 3-block net of width 8). The batch is
the first `BATCH_SIZE` training examples with their labels (fixed, the same for every seed
and initializer, like LSUV's), where the paper draws x ~ N(0, 1) and random labels. All
steps run in one compiled `lax.scan`; each cell is done on its own (a start never sees its
neighbours). The record of a cell is [steps, GQ before, GQ kept, step kept].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

STEPS = 100
LR = 0.1
MOMENTUM = 0.9
EPS = 1e-5
BATCH_SIZE = 128


def metainit_batch(x_train: np.ndarray, y_train: np.ndarray):
    """The MetaInit batch: the first `BATCH_SIZE` training examples and labels."""
    return x_train[:BATCH_SIZE], y_train[:BATCH_SIZE]


def gradient_quotient(loss_fn, params, eps: float = EPS):
    """GQ of `loss_fn(params)` (a scalar): mean over entries of |(g - Hg)/(g ± eps) - 1|."""
    grad_fn = jax.grad(loss_fn)
    g, hg = jax.jvp(grad_fn, (params,), (grad_fn(params),))
    leaves = [jnp.abs((gi - hi) / (gi + eps * jnp.where(gi >= 0, 1.0, -1.0)) - 1.0)
              for gi, hi in zip(jax.tree.leaves(g), jax.tree.leaves(hg))]
    return sum(jnp.sum(leaf) for leaf in leaves) / sum(leaf.size for leaf in leaves)


def make_metainit(apply_fn, steps: int = STEPS, lr: float = LR, momentum: float = MOMENTUM):
    """`metainit_fn(params, x, y) -> (params, [steps, GQ before, GQ kept, step kept])` for one cell
    (params unstacked) of a network `apply_fn(variables, x) -> logits`."""
    import optax

    def loss_fn(params, x, y):
        logits = apply_fn({"params": params}, x).astype(jnp.float32)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def metainit_fn(params, x, y):
        params = jax.tree.map(lambda p: p.astype(jnp.float32), params)
        dtypes = jax.tree.map(lambda p: p.dtype, params)

        def gq_fn(p):
            return gradient_quotient(lambda q: loss_fn(q, x, y), p)

        learned = jax.tree.map(lambda p: p.ndim >= 2, params)

        def step_fn(carry, step):
            p, memory, best, best_gq, best_step = carry
            gq, grads = jax.value_and_grad(gq_fn)(p)
            better = gq < best_gq  # this step's start is the best seen so far
            best = jax.tree.map(lambda b, q: jnp.where(better, q, b), best, p)
            best_gq = jnp.where(better, gq, best_gq)
            best_step = jnp.where(better, step, best_step)

            def update(w, grad, v, is_kernel):
                if not is_kernel:
                    return w, v
                norm = jnp.linalg.norm(w)
                direction = jnp.sign(jnp.sum(w * grad) / norm)
                v = momentum * v - lr * direction
                return w * (norm + v) / norm, v

            pairs = jax.tree.map(update, p, grads, memory, learned)
            is_pair = lambda t: isinstance(t, tuple)  # noqa: E731
            p = jax.tree.map(lambda t: t[0], pairs, is_leaf=is_pair)
            memory = jax.tree.map(lambda t: t[1], pairs, is_leaf=is_pair)
            return (p, memory, best, best_gq, best_step), None

        before = gq_fn(params)
        memory = jax.tree.map(lambda p: jnp.zeros((), jnp.float32), params)
        carry = (params, memory, params, jnp.float32(jnp.inf), jnp.int32(0))
        (last, _, best, best_gq, best_step), _ = jax.lax.scan(
            step_fn, carry, jnp.arange(steps, dtype=jnp.int32))
        last_gq = gq_fn(last)
        keep_last = last_gq < best_gq
        params = jax.tree.map(lambda a, b: jnp.where(keep_last, a, b), last, best)
        after = jnp.minimum(last_gq, best_gq)
        kept = jnp.where(keep_last, steps, best_step)
        params = jax.tree.map(lambda p, d: p.astype(d), params, dtypes)
        return params, jnp.stack([jnp.float32(steps), before, after, kept.astype(jnp.float32)])

    return metainit_fn


def after_draw(spec, network, params, data):
    """The `metainit` initializer's after-draw hook (`initializers.after_draw`): (params,
    records [seed, 4]) of stacked `params` after MetaInit on `metainit_batch` of `data`."""
    from initbench import networks

    apply_fn = networks.make_apply(spec, data.num_classes, data.image_shape)
    return apply_metainit(apply_fn, params, metainit_batch(data.x_train, data.y_train))


def apply_metainit(apply_fn, params, batch):
    """MetaInit for stacked `params` ([seed] leading axis) on `batch` (x [B, D], y [B]).
    Returns (params, records [seed, 4]: steps, GQ before, GQ kept, step kept); one seed
    at a time."""
    fn = jax.jit(make_metainit(apply_fn))
    x, y = (jnp.asarray(a) for a in batch)
    num_seeds = jax.tree.leaves(params)[0].shape[0]
    cells, records = [], []
    for s in range(num_seeds):
        cell, record = fn(jax.tree.map(lambda a, s=s: jnp.asarray(a[s]), params), x, y)
        cells.append(jax.tree.map(np.asarray, cell))
        records.append(np.asarray(record))
    return jax.tree.map(lambda *leaves: np.stack(leaves), *cells), np.stack(records)


def describe(records: dict[str, dict[str, list[float]]]) -> str:
    """One line per init of {init: {seed: [steps, GQ before, GQ kept, step kept]}}."""
    parts = []
    for name, by_seed in records.items():
        values = np.asarray(list(by_seed.values()), np.float64)
        parts.append(f"{name}: MetaInit {int(values[0, 0])} steps, gradient quotient "
                     f"{values[:, 1].mean():.4g} -> {values[:, 2].mean():.4g} (mean over "
                     f"{len(values)} seeds)")
    return "; ".join(parts)
