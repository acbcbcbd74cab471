"""Signal propagation at init (probe), LSUV and --track-layers: the theory, pinned."""

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from cli_helpers import invoke, read_csv

from initbench import data, diagnostics, lsuv, networks, probe, starts
from initbench.runtime import Runtime
from initbench.spec import Spec


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")






# ------------------------------------------------------------------ deep ReLU theory


def test_depth_30_relu_glorot_dies_he_holds_lsuv_is_unit(digits):
    """He et al. (2015): Glorot halves a ReLU signal's second moment per layer, He keeps it;
    LSUV makes every layer's output variance 1 within the tolerance."""
    spec = Spec(inits=("glorot_uniform", "he_normal", "lsuv"), seeds=(0,), dataset="digits",
                hidden=(256,) * 30, activation="relu")
    result = probe.run_probe(spec, digits, Runtime(use_cache=False),
                             batch_size=lsuv.BATCH_SIZE)  # = the LSUV batch
    act = result.stats["act_std"][:, 0, :30]
    glorot, he = act[0, -1] / act[0, 0], act[1, -1] / act[1, 0]
    assert glorot < 1e-3
    assert 1 / 4 < he < 4
    lsuv_variance = result.stats["preact_std"][2, 0] ** 2  # every layer, logits included
    assert np.all(np.abs(lsuv_variance - 1) < spec.lsuv_tol), lsuv_variance
    passes = result.lsuv_passes["lsuv"]
    assert passes.shape == (1, 31) and np.all((passes >= 1) & (passes <= spec.lsuv_max_iter))


# ------------------------------------------------------------------ LSUV on tiny pytrees


def tiny_params(kernels, biases):
    """Stacked params of a 1-seed MLP from lists of kernels and biases (hand-built)."""
    return {f"dense_{i}": {"kernel": jnp.asarray(k, jnp.float32)[None],
                           "bias": jnp.asarray(b, jnp.float32)[None]}
            for i, (k, b) in enumerate(zip(kernels, biases))}


def test_lsuv_one_pass_is_exact_with_zero_bias_and_zero_passes_when_already_unit():
    x = np.array([[1.0, -1.0], [-1.0, 1.0], [2.0, 0.0], [0.0, -2.0]], np.float32)
    spec = Spec(inits=("lsuv",), seeds=(0,), hidden=(2,), activation="linear")
    # Layer 0: identity kernel, Var(x) = 1.5 -> one pass divides it by sqrt(1.5).
    # Layer 1: then h has variance 1, and the kernel I/sqrt(1) keeps it: zero passes.
    params = tiny_params([np.eye(2), np.eye(2)], [np.zeros(2), np.zeros(2)])
    out, passes = lsuv.apply_lsuv(spec, networks.resolve(spec, 2, (2,)), params, x)
    np.testing.assert_allclose(out["dense_0"]["kernel"][0], np.eye(2) / np.sqrt(1.5), rtol=1e-6)
    np.testing.assert_allclose(out["dense_1"]["kernel"][0], np.eye(2), rtol=1e-6)
    assert passes.tolist() == [[1, 0]]


def test_lsuv_stops_at_max_iter_when_the_bias_spread_blocks_unit_variance():
    x = np.array([[1.0], [-1.0]], np.float32)
    # Bias (-3, 3) alone has variance 9 over units: no kernel scale reaches 1.
    params = tiny_params([[[1.0, 1.0]], [[1.0], [1.0]]], [[-3.0, 3.0], [0.0]])
    spec = Spec(inits=("lsuv",), seeds=(0,), hidden=(2,), activation="linear", lsuv_max_iter=5)
    _, passes = lsuv.apply_lsuv(spec, networks.resolve(spec, 1, (1,)), params, x)
    assert passes[0, 0] == 5


# ------------------------------------------------------------------ probe vs independent autodiff


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_probe_gradients_match_a_hand_written_net(activation):
    """grad_std, weight_grad_norm, stds and dead units against a plain-jnp MLP."""
    rng = np.random.default_rng(0)
    widths, num_features, num_classes, batch = (5, 4), 6, 3, 8
    sizes = [num_features, *widths, num_classes]
    kernels = [rng.normal(0, 0.7, (a, b)).astype(np.float32) for a, b in itertools.pairwise(sizes)]
    biases = [rng.normal(0, 0.1, b).astype(np.float32) for b in sizes[1:]]
    biases[0][0] = -100.0  # unit 0 of layer 0 is dead on every example (for relu)
    x = rng.normal(size=(batch, num_features)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1], np.int32)
    act = {"relu": jax.nn.relu, "tanh": jnp.tanh}[activation]

    def loss_fn(kernels, deltas):
        a, preacts = x, []
        for i, (k, b) in enumerate(zip(kernels, biases)):
            h = a @ k + b + deltas[i]
            preacts.append(h)
            a = act(h) if i < len(widths) else h
        return optax.softmax_cross_entropy_with_integer_labels(a, y).mean(), preacts

    deltas = [jnp.zeros((batch, w)) for w in sizes[1:]]
    (kernel_grads, delta_grads), preacts = jax.grad(loss_fn, argnums=(0, 1), has_aux=True)(
        kernels, deltas)

    spec = Spec(inits=("xavier",), seeds=(0,), hidden=widths, activation=activation)
    params = {f"dense_{i}": {"kernel": k, "bias": b}
              for i, (k, b) in enumerate(zip(kernels, biases))}
    stats = diagnostics.make_cell_stats(spec, num_classes, x.shape[1:])(params, x, y)

    np.testing.assert_allclose(stats["grad_std"], [np.std(batch * g) for g in delta_grads],
                               rtol=1e-4)
    np.testing.assert_allclose(stats["weight_grad_norm"],
                               [np.linalg.norm(g) for g in kernel_grads], rtol=1e-4)
    np.testing.assert_allclose(stats["preact_std"], [np.std(h) for h in preacts], rtol=1e-5)
    np.testing.assert_allclose(stats["act_std"][:2], [np.std(act(h)) for h in preacts[:2]],
                               rtol=1e-5)
    # relu: h < 0 on every example; tanh: saturated, slope exactly 0 in float32.
    assert stats["dead_fraction"][0] == pytest.approx(1 / 5)
    assert stats["dead_fraction"][1] == 0.0
    assert stats["dead_fraction"][-1] == 0.0  # the logits layer is linear

    # And one finite difference, so the autodiff reference is itself checked.
    eps, (layer, n, unit) = 1e-2, (1, 3, 2)
    bump = [jnp.zeros_like(d) for d in deltas]
    bump[layer] = bump[layer].at[n, unit].set(eps)
    plus = loss_fn(kernels, [d + e for d, e in zip(deltas, bump)])[0]
    minus = loss_fn(kernels, [d - e for d, e in zip(deltas, bump)])[0]
    assert (plus - minus) / (2 * eps) == pytest.approx(float(delta_grads[layer][n, unit]),
                                                       rel=2e-2, abs=1e-5)


# ------------------------------------------------------------------ the CLI and training


def test_probe_cli_writes_csv_plot_and_json(tmp_path):
    out = tmp_path / "probe"
    result = invoke("probe", "--inits", "xavier,lsuv", "--hidden", "8x3", "--dataset", "digits",
                    "--seeds", "2", "--batch-size", "100", "--out", out)
    assert result.exit_code == 0, result.output
    assert "last/first" in result.output and "LSUV passes per layer" in result.output
    rows = read_csv(out / "probe.csv")
    assert list(rows[0]) == list(probe.COLUMNS)
    assert len(rows) == 2 * 2 * 4  # init x seed x (3 hidden + logits)
    assert [(r["init"], r["seed"], r["layer"]) for r in rows[:5]] == [
        ("xavier", "0", "0"), ("xavier", "0", "1"), ("xavier", "0", "2"), ("xavier", "0", "3"),
        ("xavier", "1", "0")]
    assert (out / "probe.png").stat().st_size > 0 and (out / "probe.json").exists()


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "999999"], "larger than the training set"),
    (["--inits", "xavier,nope"], "unknown"),
    (["--lsuv-tol", "2"], "--lsuv-tol"),
])
def test_probe_bad_input_is_exit_2(tmp_path, args, message):
    result = invoke("probe", "--dataset", "digits", "--hidden", "4", "--out", tmp_path / "p",
                    *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


SMALL = Spec(inits=("lsuv",), seeds=(0, 1), dataset="digits", hidden=(8, 8), epochs=1)


def test_lsuv_start_is_deterministic_per_seed(digits):
    cells = [("lsuv", 0), ("lsuv", 1)]
    first = starts.cell_starts(SMALL, cells, digits).params
    second = starts.cell_starts(SMALL, cells, digits).params
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second)):
        np.testing.assert_array_equal(a, b)
    kernel = np.asarray(first["dense_1"]["kernel"])
    assert not np.array_equal(kernel[0], kernel[1])


def test_run_lsuv_with_track_layers(tmp_path, digits):
    """`run --init lsuv --track-layers` trains, reports LSUV passes, writes layers.csv whose
    epoch 0 is exactly the probe's numbers on the same batch."""
    out = tmp_path / "run"
    result = invoke("run", "--init", "lsuv", "--dataset", "digits", "--epochs", "1",
                    "--seeds", "2", "--hidden", "8,8", "--track-layers", "--quiet", "--out", out)
    assert result.exit_code == 0, result.output
    rows = read_csv(out / "curves.csv")
    assert float(rows[-1]["test_accuracy"]) > 0.2  # chance is 0.1
    passes = json.loads((out / "spec.json").read_text())["lsuv_passes"]["lsuv"]
    assert set(passes) == {"0", "1"} and all(len(p) == 3 for p in passes.values())

    layers = read_csv(out / "layers.csv")
    assert len(layers) == 2 * 2 * 3  # seed x epoch (0, 1) x layer (2 hidden + logits)
    assert {"grad_norm", "dead_fraction"} <= set(layers[0])
    at_init = probe.run_probe(SMALL, digits, Runtime(use_cache=False))
    for row in layers:
        if row["epoch"] == "0":
            s, layer = int(row["seed"]), int(row["layer"])
            assert float(row["grad_norm"]) == pytest.approx(
                at_init.stats["weight_grad_norm"][0, s, layer], rel=1e-5)
            assert float(row["dead_fraction"]) == at_init.stats["dead_fraction"][0, s, layer]


@pytest.mark.parametrize("batch_size", [2.5, True, "100", 0])
def test_the_probe_refuses_a_batch_size_that_training_would(batch_size):
    """The probe's --batch-size obeys training's rule (a positive integer, never coerced):
    from Python as from the command line, one InitbenchError before anything is drawn."""
    from initbench.errors import InitbenchError

    with pytest.raises(InitbenchError, match="--batch-size must be a positive integer"):
        probe.run_probe(Spec(inits=("xavier",), dataset="digits"), data.load("digits"),
                        Runtime(use_cache=False), batch_size=batch_size)


def test_the_probes_own_mlp_default_is_no_choice_against_another_network(tmp_path):
    """probe's default --hidden (256x30) is its own, not the user's: `probe --model cnn`
    without --hidden runs (a --hidden actually given with the CNN is refused)."""
    result = invoke("probe", "--model", "cnn", "--inits", "xavier", "--seeds", "1",
                    "--dataset", "digits", "--out", tmp_path / "p")
    assert result.exit_code == 0, result.output
    given = invoke("probe", "--model", "cnn", "--hidden", "64x2", "--inits", "xavier",
                   "--dataset", "digits")
    assert given.exit_code == 2 and "--hidden has no effect" in given.output
