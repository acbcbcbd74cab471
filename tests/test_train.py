"""The compiled grid trainer: paired design, cell independence, epoch 0, divergence."""

import jax
import numpy as np
import optax
import pytest

from initbench import data, experiment, model, train
from initbench.runtime import Runtime
from initbench.spec import Spec

SILENT = experiment.SilentReporter()


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def small_spec(**changes) -> Spec:
    base = Spec(inits=("xavier", "he_normal", "normal"), seeds=(0, 1, 2), dataset="digits",
                epochs=2, batch_size=100, hidden=(16,), lr=0.01)
    return base.replace(**changes)


def grid(spec, dataset):
    grid = experiment.train_grid(spec, dataset, Runtime(use_cache=False), SILENT,
                                 max_cells_per_chunk=128)
    assert grid.trained == len(spec.inits) * len(spec.seeds)
    return grid.metrics


def test_cell_equals_its_single_run(digits):
    """A cell's numbers do not depend on which other cells share the grid (bitwise)."""
    spec = small_spec()
    full = grid(spec, digits)
    single = grid(spec.replace(inits=("he_normal",), seeds=(1,)), digits)
    for name in full:
        np.testing.assert_array_equal(single[name][0, 0], full[name][1, 1])


def test_same_command_same_numbers(digits):
    spec = small_spec(inits=("xavier",), seeds=(0, 1))
    first, second = grid(spec, digits), grid(spec, digits)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])


def test_aliases_give_identical_cells(digits):
    xavier = grid(small_spec(inits=("xavier",), seeds=(3,)), digits)
    glorot = grid(small_spec(inits=("glorot_uniform",), seeds=(3,)), digits)
    np.testing.assert_array_equal(xavier["test_loss"], glorot["test_loss"])


def test_minibatch_order_depends_on_seed_only():
    """Every initializer of a seed sees the same data order (the paired design)."""
    a, b = model.data_key(4), model.data_key(4)
    assert np.array_equal(jax.random.key_data(a), jax.random.key_data(b))
    assert not np.array_equal(jax.random.key_data(model.data_key(5)), jax.random.key_data(a))
    assert not np.array_equal(jax.random.key_data(model.init_key("xavier", 4)),
                              jax.random.key_data(model.init_key("he_normal", 4)))


def test_matches_a_plain_optax_loop(digits):
    """One cell of the compiled grid equals a hand-written per-step loop (float tolerance)."""
    spec = small_spec(inits=("he_normal",), seeds=(2,))
    compiled = grid(spec, digits)
    net = model.make_model(spec, digits.num_classes)
    params = jax.tree.map(lambda a: a[0], model.init_params(
        spec, "he_normal", [2], digits.x_train.shape[1], digits.num_classes))
    tx = optax.adam(spec.lr[0])
    opt_state = tx.init(params)

    def loss_fn(p, x, y):
        logits = net.apply({"params": p}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def test_loss(p):
        return float(loss_fn(p, digits.x_test, digits.y_test))

    num_steps = len(digits.x_train) // spec.batch_size
    expected_train, expected_test = [float(loss_fn(params, digits.x_train, digits.y_train))], \
        [test_loss(params)]
    for epoch in range(1, spec.epochs + 1):
        order = np.asarray(jax.random.permutation(
            jax.random.fold_in(model.data_key(2), epoch), len(digits.x_train)))
        losses = []
        for step in range(num_steps):
            idx = order[step * spec.batch_size:(step + 1) * spec.batch_size]
            loss, grads = jax.value_and_grad(loss_fn)(params, digits.x_train[idx],
                                                      digits.y_train[idx])
            updates, opt_state = tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            losses.append(float(loss))
        expected_train.append(np.mean(losses))
        expected_test.append(test_loss(params))
    np.testing.assert_allclose(compiled["train_loss"][0, 0], expected_train, rtol=2e-4)
    np.testing.assert_allclose(compiled["test_loss"][0, 0], expected_test, rtol=2e-4)


def test_epoch_zero_is_before_the_first_step(digits):
    spec = small_spec(inits=("normal",), seeds=(0,), epochs=1)
    compiled = grid(spec, digits)
    net = model.make_model(spec, digits.num_classes)
    params = jax.tree.map(lambda a: a[0], model.init_params(
        spec, "normal", [0], digits.x_train.shape[1], digits.num_classes))
    logits = net.apply({"params": params}, digits.x_test)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, digits.y_test).mean()
    accuracy = (np.argmax(logits, -1) == digits.y_test).mean()
    np.testing.assert_allclose(compiled["test_loss"][0, 0, 0], loss, rtol=1e-5)
    np.testing.assert_allclose(compiled["test_accuracy"][0, 0, 0], accuracy, rtol=1e-6)
    # std-1 weights start far above log(10) ~ 2.3: the classic "random" baseline's huge cost.
    assert compiled["test_loss"][0, 0, 0] > 10


def test_diverged_cells_are_marked_from_that_epoch_on(digits):
    """Cells whose loss overflows are NaN from their first bad epoch on; no crash."""
    spec = small_spec(inits=("xavier", "normal"), seeds=(0, 1), optimizer="sgd", lr=1e30,
                      epochs=3)
    metrics = grid(spec, digits)
    loss = metrics["train_loss"]
    assert np.isfinite(loss[:, :, 0]).all()  # epoch 0 is before the first step
    assert not np.isfinite(loss[:, :, 1:]).any()


def test_a_diverged_seed_does_not_poison_the_summary():
    from initbench import summary
    from initbench.results import RunResult

    spec = Spec(inits=("xavier", "normal"), seeds=(0, 1, 2),
                dataset="digits", epochs=1, hidden=(4,))
    acc = np.array([[[0.1, 0.90], [0.1, 0.92], [0.1, 0.94]],
                    [[0.1, 0.80], [0.1, np.nan], [0.1, 0.84]]])
    loss = np.where(np.isfinite(acc), 1 - acc, np.nan)
    result = RunResult(spec, {"train_loss": loss, "test_loss": loss, "test_accuracy": acc})
    rows = {row.init: row for row in summary.summarize_run(result)}
    assert rows["normal"].diverged == 1
    assert rows["normal"].test_accuracy_mean == pytest.approx(0.82)
    assert rows["xavier"].test_accuracy_mean == pytest.approx(0.92)
    assert rows["xavier"].rank == 1


def test_partial_batches_are_dropped(digits):
    fns = train.make_cell_fns(small_spec(batch_size=100), digits.num_classes, len(digits.x_train))
    assert fns.num_steps == len(digits.x_train) // 100
