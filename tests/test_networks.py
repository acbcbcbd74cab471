"""--model: conv fans, per-parameter draws, the CNN and a user model in a grid, the card,
the probe and LSUV on any network, bad factories (exit 2, one line)."""

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cli_helpers import invoke

from initbench import cellcache, data, initializers, model, networks, probe, progress, starts
from initbench import grid as grid_lib
from initbench.runtime import Runtime
from initbench.spec import Spec

SILENT = progress.SilentReporter()
USER = str(Path(__file__).parent / "fixtures" / "user_net.py")


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def spec_for(model, **changes):
    base = Spec(model=model, inits=("he_normal", "xavier", "lsuv"), seeds=(0, 1),
                dataset="digits", epochs=1, batch_size=100)
    return base.replace(**changes)




# ---------------------------------------------------------------- fans and formulas


def test_conv_kernel_fans_use_the_receptive_field():
    assert initializers.kernel_fans((3, 3, 16, 32)) == (144, 288)
    assert initializers.kernel_fans((784, 256)) == (784, 256)
    assert initializers.expected_kernel_std("he_normal", (3, 3, 16, 32)) == math.sqrt(2 / 144)
    assert initializers.expected_kernel_std("xavier", (3, 3, 16, 32)) == pytest.approx(
        math.sqrt(2 / (144 + 288)))


@pytest.mark.parametrize("name, expected", [
    ("he_normal", math.sqrt(2 / 144)), ("he_uniform", math.sqrt(2 / 144)),
    ("glorot_uniform", math.sqrt(2 / 432)), ("lecun_normal", math.sqrt(1 / 144)),
    ("torch_default", 1 / math.sqrt(3 * 144)), ("orthogonal", 1 / math.sqrt(144)),
])
def test_conv_kernel_samples_match_the_formula(name, expected):
    """Sample std over a 3x3x16x32 kernel (4,608 entries; 5 draws) within 2%."""
    init = initializers.get(name)
    stds = [float(jnp.std(init(jax.random.key(s), (3, 3, 16, 32), jnp.float32)))
            for s in range(5)]
    assert np.mean(stds) == pytest.approx(expected, rel=0.02)
    assert initializers.expected_kernel_std(name, (3, 3, 16, 32)) == pytest.approx(expected)


def test_orthogonal_conv_kernel_is_orthogonal_as_a_matrix():
    kernel = initializers.get("orthogonal")(jax.random.key(0), (3, 3, 16, 32), jnp.float32)
    matrix = np.asarray(kernel).reshape(-1, 32)  # [144, 32]: orthonormal columns
    np.testing.assert_allclose(matrix.T @ matrix, np.eye(32), atol=1e-5)


def test_delta_conv_kernel_passes_the_input_through():
    kernel = initializers.get("delta")(jax.random.key(0), (3, 3, 4, 4), jnp.float32)
    x = jax.random.normal(jax.random.key(1), (2, 6, 6, 4))
    y = jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(y, x, atol=1e-6)
    assert initializers.expected_kernel_std("delta", (3, 3, 4, 4)) == pytest.approx(
        float(np.std(np.asarray(kernel))))


def test_the_dense_identity_is_unchanged():
    kernel = initializers.get("identity", gain=2.0)(jax.random.key(0), (3, 5), jnp.float32)
    np.testing.assert_array_equal(kernel, 2.0 * np.eye(3, 5))


# ---------------------------------------------------------------- draws


def test_every_kernel_is_drawn_biases_follow_bias_init_others_keep_their_own(digits):
    spec = spec_for(f"{USER}:make_net", bias_init="constant")
    network = networks.check(spec, 10, digits.image_shape)
    kinds = {rule.name: rule.kind for rule in network.rules}
    assert kinds == {"conv/kernel": "kernel", "conv/bias": "bias", "head/kernel": "kernel",
                     "head/bias": "bias", "norm/scale": "own", "norm/bias": "own"}
    params = networks.draw(spec, network, "he_normal", jax.random.key(0))
    np.testing.assert_array_equal(params["conv"]["bias"], np.full(4, 0.01, np.float32))
    np.testing.assert_array_equal(params["norm"]["scale"], np.ones(4, np.float32))
    assert network.layer_names() == ["conv", "head"]


def test_a_cells_draw_depends_on_its_own_init_and_seed_only(digits):
    spec = spec_for("cnn")
    both = starts.cell_starts(spec, [("he_normal", 0), ("xavier", 1)], digits).params
    one = starts.cell_starts(spec, [("xavier", 1)], digits).params
    for a, b in zip(jax.tree.leaves(both), jax.tree.leaves(one)):
        np.testing.assert_array_equal(a[1], b[0])


def test_marked_parameters_are_drawn(digits):
    class Marked(networks.nn.Module):
        num_classes: int
        initbench_params = ("*/w",)

        @networks.nn.compact
        def __call__(self, x):
            w = self.param("w", networks.nn.initializers.zeros, (64, self.num_classes))
            return x.reshape(x.shape[0], -1) @ w

    network = networks.Network("m", Marked(10), (8, 8, 1), 10, "x", ("w",))
    assert [r.kind for r in network.rules] == ["kernel"]
    drawn = networks.draw(spec_for("cnn"), network, "he_normal", jax.random.key(0))
    assert float(jnp.std(drawn["w"])) == pytest.approx(math.sqrt(2 / 64), rel=0.1)


# ---------------------------------------------------------------- training


def grid(spec, dataset):
    out = grid_lib.train_grid(spec, dataset, Runtime(use_cache=False), SILENT,
                                max_cells_per_chunk=128)
    return out.metrics


@pytest.mark.parametrize("model", ["cnn", f"{USER}:make_net"])
def test_cell_equals_its_single_run(digits, model):
    """A CNN or user-model cell's numbers do not depend on its grid (bitwise)."""
    spec = spec_for(model)
    full = grid(spec, digits)
    single = grid(spec.replace(inits=("lsuv",), seeds=(1,)), digits)
    for name in full:
        np.testing.assert_array_equal(single[name][0, 0], full[name][2, 1])
    assert np.all(full["test_loss"][:, :, -1] < full["test_loss"][:, :, 0])  # it learns


def test_the_model_is_in_the_keys(digits, tmp_path):
    mlp = Spec(dataset="digits")
    assert "model" not in json.loads(json.dumps(mlp.to_dict())) or mlp.model == "mlp"
    assert mlp.training_key() == Spec(dataset="digits", model="mlp").training_key()
    assert Spec(dataset="digits", model="cnn").training_key() != mlp.training_key()
    source = tmp_path / "net.py"
    source.write_text(Path(USER).read_text())
    user = Spec(dataset="digits", model=f"{source}:make_net")
    before = cellcache.cache_key(user, digits)
    source.write_text(Path(USER).read_text() + "\n# changed\n")
    assert cellcache.cache_key(user, digits) != before


def test_user_model_trains_in_a_grid_through_the_cli(tmp_path):
    out = tmp_path / "run"
    result = invoke("compare", "--model", f"{USER}:make_net", "--inits", "he_normal,orthogonal",
                    "--dataset", "digits", "--epochs", "1", "--seeds", "2", "--out", out,
                    "--quiet")
    assert result.exit_code == 0, result.output
    spec = json.loads((out / "spec.json").read_text())
    assert spec["spec"]["model"] == f"{USER}:make_net"
    assert spec["model"]["layers"] == ["conv", "head"]
    assert spec["model"]["fingerprint"].startswith("make_net@sha256:")


# ---------------------------------------------------------------- probe, LSUV, card


def test_probe_of_the_cnn_on_mnist_5k():
    mnist = data.load("mnist-5k")
    spec = Spec(model="cnn", inits=("xavier", "he_normal", "lsuv"), seeds=(0,),
                dataset="mnist-5k")
    result = probe.run_probe(spec, mnist, Runtime(use_cache=False), batch_size=200)
    assert result.stats["act_std"].shape == (3, 1, 4)  # conv_0, conv_1, dense_0, dense_1
    assert np.all(np.isfinite(result.stats["grad_std"]))
    # LSUV: every drawn layer's output has unit variance on its batch (1,000 examples;
    # the probe's 200 are a subset, so near 1)
    np.testing.assert_allclose(result.stats["preact_std"][2, 0], 1.0, atol=0.1)
    assert result.lsuv_passes["lsuv"].shape == (1, 4)
    # He keeps the ReLU signal's scale better than Glorot through the conv layers
    assert result.stats["act_std"][1, 0, 1] > result.stats["act_std"][0, 0, 1]


def test_inspect_card_json():
    result = invoke("inspect", "--model", "cnn", "--init", "he_normal", "--dataset", "digits",
                    "--json")
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout)
    rows = {row["path"]: row for row in card["parameters"]}
    assert rows["conv_1/kernel"]["fan_in"] == 72 and rows["conv_1/kernel"]["fan_out"] == 144
    assert rows["conv_1/kernel"]["expected_std"] == pytest.approx(math.sqrt(2 / 72))
    assert rows["conv_1/kernel"]["drawn_std"] == pytest.approx(math.sqrt(2 / 72), rel=0.1)
    assert [row["path"] for row in card["parameters"]][:2] == ["conv_0/kernel", "conv_0/bias"]


def test_inspect_says_what_keeps_its_own_init():
    result = invoke("inspect", "--model", f"{USER}:make_net", "--dataset", "digits")
    assert result.exit_code == 0, result.output
    assert "module's own" in result.stdout and "norm/scale" in result.stdout


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("model, message", [
    ("nope.py:make_net", "no such file 'nope.py'"),
    (f"{USER}:make_nett", "Did you mean 'make_net'"),
    (f"{USER}:make_raises", "make_raises(10) raised ValueError: no GPU here"),
    (f"{USER}:make_not_a_module", "not a flax.linen Module"),
    (f"{USER}:make_wrong_logits", "expected (1, 10)"),
    (f"{USER}:make_no_weights", "no weight an initializer can draw"),
    (f"{USER}:make_needs_colour", "cannot take digits's images [N, 8, 8, 1]"),
    ("no_such_package_xyz.models:net", "cannot import 'no_such_package_xyz.models'"),
    ("resnet", "unknown model 'resnet'"),
])
@pytest.mark.parametrize("command", ["compare", "probe", "inspect"])
def test_bad_models_exit_2_in_one_line(tmp_path, model, message, command):
    extra = ["--epochs", "1", "--seeds", "1"] if command == "compare" else []
    extra += ["--seeds", "1"] if command == "probe" else []
    out = ["--out", tmp_path / "out"] if command != "inspect" else []
    result = invoke(command, "--model", model, "--dataset", "digits", *extra, *out)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert message in " ".join(result.output.split()), result.output
    assert not (tmp_path / "out").exists()


def test_the_mlp_is_a_network_with_its_own_names_keys_and_no_fingerprint(digits):
    """`--model mlp` resolves to a `Network` on flat rows: its dense layers in order, the
    draw of `model.init_params` (flax's keys, so its numbers and cache keys never move), no
    fingerprint in the key, its activation for the dead-unit rule, and the card's layers."""
    spec = Spec(inits=("he_normal",), seeds=(0,), dataset="digits", hidden=(16, 8),
                activation="tanh")
    network = networks.check(spec, digits.num_classes, digits.image_shape, "digits")
    assert network.image_shape == (digits.x_train.shape[1],)
    assert network.layer_names() == model.layer_names(spec) == ["dense_0", "dense_1", "dense_2"]
    assert network.fingerprint is None and network.activation == "tanh"
    assert networks.fingerprint(spec, digits.num_classes, digits.image_shape) is None
    drawn = networks.cell_draw(spec, network, "he_normal")(model.init_key("he_normal", 3))
    expected = model.init_params(spec, "he_normal", [3], digits.x_train.shape[1],
                                 digits.num_classes)
    for got, want in zip(jax.tree.leaves(drawn), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(got, want[0])
    x = jnp.asarray(digits.x_train[:4])
    np.testing.assert_array_equal(  # the MLP's own program: no reshape in between
        networks.make_apply(spec, digits.num_classes, digits.image_shape)({"params": drawn}, x),
        model.make_model(spec, digits.num_classes).apply({"params": drawn}, x))
    rows = networks.card(spec, "he_normal", drawn, network)
    assert [(r["path"], r["layer"]) for r in rows] == [
        (f"dense_{i}/{leaf}", i) for i in range(3) for leaf in ("kernel", "bias")]
