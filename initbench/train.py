"""`make_train(spec, data)`: compiled functions that train a grid of cells together.

A *cell* is one (initializer, seed). The grid's cells share one leading model axis `[M]`
(in `[init, seed]` order); every array below has it first. One compiled `epoch_fn` runs
a whole epoch for a block of cells: a `lax.scan` over minibatches inside a `vmap` over
the block, with the data already on the device. Every block, on every device, runs the
same program (see `initbench.sharding`). No I/O happens here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from initbench import model as model_lib
from initbench.spec import Spec

EVAL_CHUNK = 1000  # examples per evaluation step: bounds activation memory on big grids


class GridState(NamedTuple):
    """Everything that changes during training, each leaf with a leading [M] cell axis."""

    params: Any
    opt_state: Any
    data_keys: jax.Array


class TrainFns(NamedTuple):
    """The compiled pieces of a run (see `make_train`)."""

    init_fn: Any   # cells -> GridState
    eval_fn: Any   # GridState -> dict of [M] metrics (epoch 0: before the first step)
    epoch_fn: Any  # (GridState, epoch) -> (GridState, dict of [M] metrics)
    num_steps: int


def make_optimizer(spec: Spec) -> optax.GradientTransformation:
    """The optax optimizer named by the spec, at its learning rate."""
    lr = spec.lr
    return {
        "adam": lambda: optax.adam(lr),
        "adamw": lambda: optax.adamw(lr),
        "sgd": lambda: optax.sgd(lr),
        "momentum": lambda: optax.sgd(lr, momentum=0.9),
        "rmsprop": lambda: optax.rmsprop(lr),
        "nadam": lambda: optax.nadam(lr),
        "adagrad": lambda: optax.adagrad(lr),
    }[spec.optimizer]()


def _eval_chunks(x: np.ndarray, y: np.ndarray):
    """Pad to whole chunks: xs [C, chunk, D], ys [C, chunk], mask [C, chunk] (1 = real)."""
    chunk = min(EVAL_CHUNK, len(x))
    num_chunks = -(-len(x) // chunk)
    pad = num_chunks * chunk - len(x)
    mask = np.concatenate([np.ones(len(x), np.float32), np.zeros(pad, np.float32)])
    xs = np.concatenate([x, np.zeros((pad, x.shape[1]), x.dtype)])
    ys = np.concatenate([y, np.zeros(pad, y.dtype)])
    return (xs.reshape(num_chunks, chunk, -1), ys.reshape(num_chunks, chunk),
            mask.reshape(num_chunks, chunk))


def make_train(spec: Spec, data, mesh: jax.sharding.Mesh | None = None) -> TrainFns:
    """Build the grid's compiled functions for `spec` on `data` (an `initbench.data.Dataset`).

    With a `mesh` (one axis named "cells"), the cell axis is sharded over its devices and
    the data replicated on each. Every compiled program trains one block of
    `sharding.cells_per_block()` cells on one device, so a cell's numbers are bitwise the same
    whatever the grid and the number of devices.
    """
    from initbench import sharding

    num_steps = len(data.x_train) // spec.batch_size  # the last partial batch is dropped
    tx = make_optimizer(spec)
    devices = [None] if mesh is None else sharding.local_devices(mesh)
    fns = {d: _device_fns(spec, data, tx, d) for d in devices}
    eval_fn = sharding.blockwise({d: f[0] for d, f in fns.items()}, mesh)
    epoch_fn = sharding.blockwise({d: f[1] for d, f in fns.items()}, mesh)

    def init_fn(cells: Sequence[tuple[str, int]], init_batch=None) -> GridState:
        """Initial state of `cells` ((init, seed) pairs, in order); data-dependent starts
        (LSUV) use `init_batch` (default: the first training examples)."""
        params = build_params(spec, cells, data, init_batch)
        opt_state = jax.vmap(tx.init)(params)
        keys = jnp.stack([model_lib.data_key(seed) for _, seed in cells])
        state = GridState(params, opt_state, keys)
        if mesh is None:
            return state
        cell_sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("cells"))
        # Every process built the whole state; each keeps its devices' blocks.
        return jax.tree.map(lambda a: jax.make_array_from_callback(
            a.shape, cell_sharding, lambda index: a[index]), state)

    return TrainFns(init_fn, eval_fn, epoch_fn, num_steps)


def _device_fns(spec: Spec, data, tx: optax.GradientTransformation, device):
    """(eval_fn, epoch_fn) for the cells on one device (None: the default), data put there."""
    num_train = len(data.x_train)
    num_steps = num_train // spec.batch_size
    apply_model = model_lib.make_model(spec, data.num_classes).apply

    def place(array):
        return jnp.asarray(array) if device is None else jax.device_put(array, device)

    x_train, y_train = place(data.x_train), place(data.y_train)
    test_chunks = tuple(place(a) for a in _eval_chunks(data.x_test, data.y_test))
    train_chunks = tuple(place(a) for a in _eval_chunks(data.x_train, data.y_train))
    layer_metrics_fn = None
    if spec.track_layers:  # traced only when asked for: the default program is unchanged
        from initbench import probe

        layer_x, layer_y = probe.layer_batch(data)
        layer_metrics_fn = probe.make_layer_metrics(spec, data.num_classes, place(layer_x),
                                                    place(layer_y))

    def loss_fn(params, x, y):
        logits = apply_model({"params": params}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def evaluate_cell(params, chunks):
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

    def epoch_cell(params, opt_state, key, epoch):
        order = jax.random.permutation(jax.random.fold_in(key, epoch), num_train)
        batches = order[: num_steps * spec.batch_size].reshape(num_steps, spec.batch_size)

        def step_fn(carry, idx):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params, x_train[idx], y_train[idx])
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step_fn, (params, opt_state), batches)
        test_loss, test_acc = evaluate_cell(params, test_chunks)
        metrics = {"train_loss": losses.mean(), "test_loss": test_loss, "test_accuracy": test_acc}
        if layer_metrics_fn is not None:
            metrics.update(layer_metrics_fn(params))
        return params, opt_state, metrics

    def eval_cell(params):
        train_loss, _ = evaluate_cell(params, train_chunks)
        test_loss, test_acc = evaluate_cell(params, test_chunks)
        metrics = {"train_loss": train_loss, "test_loss": test_loss, "test_accuracy": test_acc}
        if layer_metrics_fn is not None:
            metrics.update(layer_metrics_fn(params))
        return metrics

    @jax.jit
    def eval_fn(state: GridState):
        return jax.vmap(eval_cell)(state.params)

    def _epoch_fn(state: GridState, epoch):
        params, opt_state, metrics = jax.vmap(epoch_cell, in_axes=(0, 0, 0, None))(
            state.params, state.opt_state, state.data_keys, epoch
        )
        return GridState(params, opt_state, state.data_keys), metrics

    epoch_fn = jax.jit(_epoch_fn, donate_argnums=0)
    return eval_fn, epoch_fn


def build_params(spec: Spec, cells: Sequence[tuple[str, int]], data, init_batch=None):
    """Initial parameters of `cells`, stacked on the leading [M] axis in the given order."""
    from initbench import initializers

    groups: dict[str, list[int]] = {}
    for name, seed in cells:
        groups.setdefault(name, []).append(seed)
    stacked = {}
    for name, seeds in groups.items():
        params = model_lib.init_params(
            spec, name, seeds, data.x_train.shape[1], data.num_classes
        )
        if initializers.is_data_dependent(name):
            from initbench import lsuv

            batch = data.x_train[:1000] if init_batch is None else init_batch
            params, _ = lsuv.apply_lsuv(spec, params, batch, data.num_classes)
        stacked[name] = params
    index = {name: 0 for name in groups}
    ordered = []
    for name, _ in cells:
        ordered.append(jax.tree.map(lambda a, i=index[name]: a[i], stacked[name]))
        index[name] += 1
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *ordered)
