"""The compiled grid trainer: paired design, cell independence, epoch 0, divergence."""

import csv

import jax
import numpy as np
import optax
import pytest

from initbench import data, experiment, lsuv, model, networks, progress, results, sharding, train
from initbench import grid as grid_lib
from initbench.runner import Runner
from initbench.runtime import Runtime
from initbench.spec import Spec

SILENT = progress.SilentReporter()


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def small_spec(**changes) -> Spec:
    base = Spec(inits=("xavier", "he_normal", "normal"), seeds=(0, 1, 2), dataset="digits",
                epochs=2, batch_size=100, hidden=(16,), lr=0.01)
    return base.replace(**changes)


def grid(spec, dataset):
    grid = grid_lib.train_grid(spec, dataset, Runtime(use_cache=False), SILENT,
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


def test_minibatch_order_depends_on_seed_only(digits):
    """Every initializer of a seed holds the seed's data-order key (the paired design),
    data-dependent (lsuv) and huge (normal) starts included; seeds never share one."""
    inits = ("xavier", "normal", "lsuv", "orthogonal", "zeros")
    cells = [(init, seed) for init in inits for seed in (0, 3)]
    keys = trainer_data_keys(small_spec(inits=inits, seeds=(0, 3)), digits, cells)
    for (init, seed), key in zip(cells, keys):
        np.testing.assert_array_equal(key, jax.random.key_data(model.data_key(seed)),
                                      err_msg=f"{init} seed {seed}")
    assert not np.array_equal(keys[0], keys[1])
    assert not np.array_equal(jax.random.key_data(model.init_key("xavier", 4)),
                              jax.random.key_data(model.init_key("he_normal", 4)))


OPTAX = {"adam": optax.adam, "sgd": optax.sgd}


def reference_curves(spec, dataset, init: str, seed: int) -> dict[str, np.ndarray]:
    """One cell trained by a hand-written per-step optax loop: [epoch] curves.

    The data order is the documented one: epoch e permutes the training set with
    `fold_in(data_key(seed), e)` and takes whole minibatches of it in order (a last partial
    batch is dropped). LSUV starts are rescaled on the first 1,000 training examples
    (docs/signal-propagation.md), written out here rather than read from `lsuv`.
    """
    net = model.make_model(spec, dataset.num_classes)
    params = model.init_params(spec, init, [seed], dataset.x_train.shape[1], dataset.num_classes)
    if init == "lsuv":
        network = networks.resolve(spec, dataset.num_classes, dataset.image_shape)
        params, _ = lsuv.apply_lsuv(spec, network, params, dataset.x_train[:1000])
    params = jax.tree.map(lambda a: a[0], params)
    tx = OPTAX[spec.optimizer](spec.lr[0])
    opt_state = tx.init(params)

    def loss_fn(p, x, y):
        logits = net.apply({"params": p}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def step(p, state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(p, x, y)
        updates, state = tx.update(grads, state, p)
        return optax.apply_updates(p, updates), state, loss

    def evaluate(p):
        logits = net.apply({"params": p}, dataset.x_test)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, dataset.y_test).mean()
        return float(loss), float(np.mean(np.argmax(logits, -1) == dataset.y_test))

    num_train = len(dataset.x_train)
    test_loss, test_acc = evaluate(params)
    curves = {"train_loss": [float(loss_fn(params, dataset.x_train, dataset.y_train))],
              "test_loss": [test_loss], "test_accuracy": [test_acc]}
    for epoch in range(1, spec.epochs + 1):
        order = np.asarray(jax.random.permutation(
            jax.random.fold_in(model.data_key(seed), epoch), num_train))
        losses = []
        for start in range(0, num_train - spec.batch_size + 1, spec.batch_size):
            idx = order[start:start + spec.batch_size]
            params, opt_state, loss = step(params, opt_state, dataset.x_train[idx],
                                           dataset.y_train[idx])
            losses.append(float(loss))
        test_loss, test_acc = evaluate(params)
        curves["train_loss"].append(np.mean(losses))
        curves["test_loss"].append(test_loss)
        curves["test_accuracy"].append(test_acc)
    return {k: np.array(v) for k, v in curves.items()}


def assert_cell_matches_reference(metrics, i, s, expected, num_test, label):
    for name in ("train_loss", "test_loss"):
        np.testing.assert_allclose(metrics[name][i, s], expected[name], rtol=2e-4,
                                   err_msg=f"{label}: {name}")
    # float rounding may flip the argmax of a borderline example or two
    np.testing.assert_allclose(metrics["test_accuracy"][i, s], expected["test_accuracy"],
                               atol=2.5 / num_test, err_msg=f"{label}: test_accuracy")


def test_matches_a_plain_optax_loop(digits):
    """Every cell of a compiled grid equals a hand-written per-step loop (float tolerance):
    several initializers, lsuv and normal included, and two seeds. 1437 training examples
    in batches of 100, so the loop also pins down the dropped partial batch."""
    inits = ("he_normal", "xavier", "normal", "lsuv")
    spec = small_spec(inits=inits, seeds=(2, 0))
    compiled = grid(spec, digits)
    for i, init in enumerate(inits):
        for s, seed in enumerate(spec.seeds):
            expected = reference_curves(spec, digits, init, seed)
            assert_cell_matches_reference(compiled, i, s, expected, len(digits.x_test),
                                          f"{init} seed {seed}")


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


def test_diverged_cells_are_marked_from_that_epoch_on(tmp_path):
    """A grid that diverges, end to end: in the arrays every metric (accuracy included) is
    NaN from a cell's first bad epoch on and finite before; curves.csv marks those rows;
    summary.csv excludes and counts them. SGD at lr 3 on a linear net overflows in epoch 2;
    zero kernels never do (only the biases learn, by bounded steps)."""
    spec = small_spec(inits=("zeros", "xavier", "normal"), seeds=(0, 1, 2), epochs=3,
                      activation="linear", optimizer="sgd", lr=3.0)
    result = experiment.run_experiment(spec, tmp_path / "run", Runtime.from_environment())
    metrics = result.metrics
    bad = np.logical_or.reduce([~np.isfinite(metrics[m]) for m in results.METRICS])
    first = np.where(bad.any(-1), bad.argmax(-1), -1)
    assert (first[0] == -1).all(), first  # zeros: never
    assert (first[1:] >= 1).all(), first  # the others: after epoch 0, before the end
    after = (first[..., None] >= 0) & (np.arange(spec.epochs + 1) >= first[..., None])
    for name in results.METRICS:
        assert np.isnan(metrics[name][after]).all(), name
        assert np.isfinite(metrics[name][~after]).all(), name

    with open(tmp_path / "run" / "curves.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            i, s = spec.inits.index(row["init"]), spec.seeds.index(int(row["seed"]))
            marked = bool(after[i, s, int(row["epoch"])])
            assert row["diverged"] == str(int(marked)), row
            assert all((row[m] == "nan") == marked for m in results.METRICS), row
    with open(tmp_path / "run" / "summary.csv", newline="") as handle:
        rows = {row["init"]: row for row in csv.DictReader(handle)}
    for i, init in enumerate(spec.inits):
        final = metrics["test_accuracy"][i, :, -1]
        assert int(rows[init]["diverged"]) == int(after[i, :, -1].sum())
        mean = float(rows[init]["test_accuracy_mean"])
        if np.isfinite(final).any():
            assert mean == pytest.approx(final[np.isfinite(final)].mean())
        else:
            assert np.isnan(mean)  # not the 0.1 that NaN logits would score
    assert rows["zeros"]["rank"] == "1"


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
    """Batches of 1000 from 1437 examples: one step per epoch on the first 1000 of the
    epoch's order; the other 437 are not used (a partial step would change every number)."""
    spec = small_spec(inits=("xavier",), seeds=(1,), batch_size=1000, optimizer="sgd", lr=0.5)
    compiled = grid(spec, digits)
    expected = reference_curves(spec, digits, "xavier", 1)
    assert_cell_matches_reference(compiled, 0, 0, expected, len(digits.x_test), "batch 1000")
    assert train.make_cell_fns(spec, digits.num_classes, len(digits.x_train),
                              digits.image_shape).num_steps == 1


# ------------------------------------------------------------------ train.py internals
# The only test code that reaches into train.py and the Runner's state; adapt it when
# their API changes.


def trainer_data_keys(spec, dataset, cells) -> np.ndarray:
    """The raw minibatch-order key the runner puts in the training state of each of
    `cells`, in order (checked against `train.data_keys`, the function it builds them with)."""
    runner = Runner(spec, dataset, Runtime(use_cache=False))
    state, _ = runner.init_state(cells)
    keys = sharding.gather(state).data_key  # raw key data
    np.testing.assert_array_equal(keys, np.asarray(jax.random.key_data(train.data_keys(cells))))
    return keys


def test_gain_and_mode_reach_the_drawn_kernels(digits):
    """Kernels drawn with a gain g (`--gain g`, written into the label as NAME(gain=g)) are g
    times the default draw (same key); mode fan_out scales he_normal's std by
    sqrt(fan_in / fan_out); the grid starts from those kernels."""
    spec = small_spec(inits=("he_normal",), seeds=(0,), epochs=1)

    def kernels(label):
        labelled = spec.replace(inits=(label,))
        params = model.init_params(labelled, labelled.inits[0], [0], 64, 10)
        return [np.asarray(params[name]["kernel"][0]) for name in model.layer_names(spec)]

    for init in ("he_normal", "xavier", "orthogonal"):
        for plain, gained in zip(kernels(init), kernels(f"{init}(gain=2.5)")):
            np.testing.assert_allclose(gained, 2.5 * plain, rtol=1e-6, err_msg=init)
    fans = [(64, 16), (16, 10)]
    for (fan_in, fan_out), plain, wide in zip(fans, kernels("he_normal"),
                                              kernels("he_normal(mode=fan_out)")):
        np.testing.assert_allclose(wide, np.sqrt(fan_in / fan_out) * plain, rtol=1e-6)
    gained_spec = spec.replace(gain=2.5)  # the option form: folded into the label
    assert gained_spec.inits == ("he_normal(gain=2.5)",)
    compiled = grid(gained_spec, digits)
    net = model.make_model(gained_spec, digits.num_classes)
    params = jax.tree.map(lambda a: a[0], model.init_params(
        gained_spec, gained_spec.inits[0], [0], 64, 10))
    logits = net.apply({"params": params}, digits.x_test)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, digits.y_test).mean()
    np.testing.assert_allclose(compiled["test_loss"][0, 0, 0], loss, rtol=1e-5)


def test_evaluation_ignores_the_padding_of_its_last_chunk(digits, monkeypatch):
    """Evaluated in chunks of 100, the 360 test examples end in a padded chunk: the padding
    counts neither in the loss nor in the accuracy (`plan.EVAL_CHUNK`, patched where
    train.py reads it, is internal)."""
    monkeypatch.setattr(train, "EVAL_CHUNK", 100)
    _, _, mask = train.cell_data(small_spec(), digits).test_chunks
    assert mask.shape == (4, 100) and mask.sum() == len(digits.x_test) == 360  # 40 padded
    spec = small_spec(inits=("xavier",), seeds=(0,), epochs=1)
    compiled = grid(spec, digits)
    expected = reference_curves(spec, digits, "xavier", 0)
    assert_cell_matches_reference(compiled, 0, 0, expected, len(digits.x_test), "chunks of 100")
    net = model.make_model(spec, digits.num_classes)
    params = jax.tree.map(lambda a: a[0], model.init_params(spec, "xavier", [0], 64, 10))
    logits = np.asarray(net.apply({"params": params}, digits.x_test))
    accuracy = float(np.mean(np.argmax(logits, -1) == digits.y_test))
    assert compiled["test_accuracy"][0, 0, 0] == pytest.approx(accuracy, abs=1e-6)


@pytest.mark.parametrize("name, steps", [
    # two steps with the constant gradient g = [1, -2] from params [1, 1], lr 0.1, by hand
    ("sgd", [[-0.1, 0.2], [-0.1, 0.2]]),
    ("momentum", [[-0.1, 0.2], [-0.19, 0.38]]),  # trace = g + 0.9 * trace
    ("adam", [[-0.1, 0.1], [-0.1, 0.1]]),  # bias-corrected m/sqrt(v) = sign(g)
    ("adamw", [[-0.1 - 1e-5, 0.1 - 1e-5], None]),  # adam + lr * 1e-4 * params
    ("rmsprop", [[-0.1 / np.sqrt(0.1), 0.1 / np.sqrt(0.1)], None]),  # v = 0.1 g^2
    ("adagrad", [[-0.1 / np.sqrt(1.1), 0.2 / np.sqrt(4.1)], None]),  # accumulator starts at 0.1
])
def test_each_optimizer_name_is_that_optimizer(name, steps):
    """The optimizer names map to the optax transformations they promise
    (train.make_optimizer is internal)."""
    tx = train.make_optimizer(Spec(optimizer=name, lr=0.1))
    params, grads = np.array([1.0, 1.0], np.float32), np.array([1.0, -2.0], np.float32)
    state = tx.init(params)
    for expected in steps:
        updates, state = tx.update(grads, state, params)
        if expected is not None:
            np.testing.assert_allclose(updates, expected, rtol=1e-4, atol=1e-7)


def test_one_program_draws_every_initializer_as_if_alone():
    """model.draw_cells compiles one program for all initializers of a grid and calls it per
    seed position; every cell equals its own eager draw, with uneven seed lists too."""
    spec = small_spec(hidden=(8,))
    seeds = {"xavier": [0, 1, 2], "orthogonal": [5], "normal": [1, 3]}
    draws = {name: model.cell_draw(spec, name, 64, 10) for name in seeds}
    drawn = model.draw_cells(draws, seeds)
    for name, name_seeds in seeds.items():
        assert jax.tree.leaves(drawn[name])[0].shape[0] == len(name_seeds)
        for i, seed in enumerate(name_seeds):
            alone = jax.device_get(draws[name](model.init_key(name, seed)))
            for got, want in zip(jax.tree.leaves(drawn[name]), jax.tree.leaves(alone)):
                np.testing.assert_array_equal(got[i], want)
