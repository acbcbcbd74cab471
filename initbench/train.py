"""What one cell does: its optimizer state, one epoch of minibatch steps, its evaluation.

A *cell* is one (initializer, seed). The functions here are pure functions of one cell's
state and the data, with no knowledge of devices, meshes, blocks or other cells:
`initbench.runner.Runner` adds the cell axis (vmap), blocks, placement and jit, once
per run. No I/O happens here.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from initbench import diagnostics, networks
from initbench import model as model_lib
from initbench.optimizers import OPTIMIZERS
from initbench.plan import EVAL_CHUNK
from initbench.spec import Spec


class CellState(NamedTuple):
    """Everything about one cell that changes during training (the runner stacks cells on a
    leading [M] axis of every leaf)."""

    params: Any
    opt_state: Any
    data_key: jax.Array


class CellData(NamedTuple):
    """The data one cell reads: training arrays for minibatches, the train and test sets in
    padded evaluation chunks (xs [C, chunk, D], ys [C, chunk], mask [C, chunk]), the
    fixed `--track-layers` batch (None when layers are not tracked) and the validation set's
    chunks (None without a validation split)."""

    x_train: Any
    y_train: Any
    train_chunks: tuple
    test_chunks: tuple
    layer_batch: tuple | None
    val_chunks: tuple | None = None


class CellFns(NamedTuple):
    """The pure functions of one cell (see `make_cell_fns`)."""

    init: Any      # (params, data_key, lr) -> CellState
    epoch: Any     # (CellState, epoch, CellData) -> (CellState, {metric: scalar})
    evaluate: Any  # (CellState, CellData) -> {metric: scalar}  (epoch 0: before any step)
    num_steps: int


def make_optimizer(spec: Spec, lr=None, network=None) -> optax.GradientTransformation:
    """The optax optimizer named by the spec.

    With a validation split (`spec.val_fraction`, always set when several rates are trained)
    the learning rate is a hyperparameter held in the optimizer state
    (`optax.inject_hyperparams`): `init` records `lr` (a traced per-cell value works) and
    `update` reads it back, so one compiled program trains cells of different rates.
    Without a split the rate is the constant `spec.lr[0]`, the program runs without a split
    always had: a traced
    rate changes the last bits of Adam's updates, and default runs keep their numbers.
    `network`: the resolved network whose layer roles set the per-layer rates of a
    `spec.param` other than sp (needed only then).
    """
    if spec.val_fraction is None:
        tx = OPTIMIZERS[spec.optimizer].make()(spec.lr[0])
    else:
        tx = optax.inject_hyperparams(OPTIMIZERS[spec.optimizer].make())(
            learning_rate=spec.lr[0] if lr is None else lr)
    if spec.param == "sp":  # the plain optimizer: sp's updates cannot move
        return tx
    from initbench import parameterize  # per-layer rates

    return optax.chain(tx, parameterize.scale_rates(spec, network))


def eval_chunks(x: np.ndarray, y: np.ndarray):
    """Pad to whole chunks: xs [C, chunk, D], ys [C, chunk], mask [C, chunk] (1 = real)."""
    chunk = min(EVAL_CHUNK, len(x))
    num_chunks = -(-len(x) // chunk)
    pad = num_chunks * chunk - len(x)
    mask = np.concatenate([np.ones(len(x), np.float32), np.zeros(pad, np.float32)])
    xs = np.concatenate([x, np.zeros((pad, x.shape[1]), x.dtype)])
    ys = np.concatenate([y, np.zeros(pad, y.dtype)])
    return (xs.reshape(num_chunks, chunk, -1), ys.reshape(num_chunks, chunk),
            mask.reshape(num_chunks, chunk))


def cell_data(spec: Spec, data) -> CellData:
    """The host (NumPy) arrays every cell of `spec` reads from `data`; the runner places them."""
    layer = diagnostics.layer_batch(data) if spec.track_layers else None
    val = getattr(data, "x_val", None)
    return CellData(data.x_train, data.y_train, eval_chunks(data.x_train, data.y_train),
                    eval_chunks(data.x_test, data.y_test), layer,
                    None if val is None else eval_chunks(val, data.y_val))


def make_cell_fns(spec: Spec, num_classes: int, num_train: int,
                  image_shape: tuple[int, ...]) -> CellFns:
    """The pure per-cell functions for `spec` on a training set of `num_train` examples
    of images `image_shape` [H, W, C] (the network reshapes the flat rows to its inputs)."""
    num_steps = num_train // spec.batch_size  # the last partial batch is dropped
    network = (None if spec.param == "sp"  # a parameterization reads its layer roles
               else networks.resolve(spec, num_classes, image_shape))
    tx = make_optimizer(spec, network=network)
    apply_model = networks.make_apply(spec, num_classes, image_shape)
    if spec.param != "sp":  # forward multipliers; sp: the plain program
        from initbench import parameterize

        apply_model = parameterize.wrap_apply(spec, apply_model, network)
    # Traced only when asked for: the default program is unchanged.
    stats_fn = (diagnostics.make_cell_stats(spec, num_classes, image_shape)
                if spec.track_layers else None)

    def loss_fn(params, x, y):
        logits = apply_model({"params": params}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def evaluate_chunks(params, chunks):
        def chunk_fn(totals, batch):
            x, y, mask = batch
            logits = apply_model({"params": params}, x)
            losses = optax.softmax_cross_entropy_with_integer_labels(logits, y)
            correct = jnp.argmax(logits, axis=-1) == y
            loss_sum = jnp.sum(jnp.where(mask > 0, losses, 0.0))
            return (totals[0] + loss_sum, totals[1] + jnp.sum(correct * mask)), None

        (loss_sum, num_correct), _ = jax.lax.scan(chunk_fn, (0.0, 0.0), chunks)
        num = jnp.sum(chunks[2])
        return loss_sum / num, num_correct / num

    def with_layers(metrics, params, data: CellData):
        if data.val_chunks is not None:  # traced only with a validation split
            metrics["val_loss"], metrics["val_accuracy"] = evaluate_chunks(params,
                                                                           data.val_chunks)
        if stats_fn is not None:
            metrics.update(diagnostics.layer_metrics(stats_fn(params, *data.layer_batch)))
        return metrics

    def init(params, data_key, lr) -> CellState:
        return CellState(params, make_optimizer(spec, lr, network).init(params), data_key)

    def epoch(state: CellState, epoch, data: CellData):
        params, opt_state = state.params, state.opt_state
        order = jax.random.permutation(jax.random.fold_in(state.data_key, epoch), num_train)
        batches = order[: num_steps * spec.batch_size].reshape(num_steps, spec.batch_size)

        def step_fn(carry, idx):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params, data.x_train[idx],
                                                      data.y_train[idx])
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step_fn, (params, opt_state), batches)
        test_loss, test_acc = evaluate_chunks(params, data.test_chunks)
        metrics = {"train_loss": losses.mean(), "test_loss": test_loss, "test_accuracy": test_acc}
        return CellState(params, opt_state, state.data_key), with_layers(metrics, params, data)

    def evaluate(state: CellState, data: CellData):
        train_loss, _ = evaluate_chunks(state.params, data.train_chunks)
        test_loss, test_acc = evaluate_chunks(state.params, data.test_chunks)
        metrics = {"train_loss": train_loss, "test_loss": test_loss, "test_accuracy": test_acc}
        return with_layers(metrics, state.params, data)

    return CellFns(init, epoch, evaluate, num_steps)


def data_keys(cells) -> jax.Array:
    """[M] minibatch-order keys of `cells`: each seed's own, whatever the initializer.

    A cell is (init, seed), or (init, seed, data order) under `--data-seeds`; the key never
    depends on the initializer (`model.data_order_key`).
    """
    return jnp.stack([model_lib.data_order_key(cell[1], cell[2] if len(cell) > 2 else 0)
                      for cell in cells])


def cell_lrs(spec: Spec, cells) -> np.ndarray:
    """[M] float32 learning rates of `cells`: a cell (init, seed, data order, lr) has its
    own; shorter cells train at the spec's first rate."""
    return np.array([cell[3] if len(cell) > 3 else spec.lr[0] for cell in cells], np.float32)
