"""The residual CNN (`--model rescnn`): its shape and record of branches, and the rules of
the residual initializers on its convolutions (delta-orthogonal, Fixup, SkipInit/ReZero,
ZerO, IDInit with its two convolution settings). Tiny nets on digits (8x8 images)."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from initbench import data, experiment, initializers, modern_inits, networks, rescnn, starts
from initbench.cli import app
from initbench.errors import InitbenchError
from initbench.runtime import Runtime
from initbench.spec import Spec


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def flat(params, seed=0):
    return {"/".join(p): np.asarray(v[seed], np.float64) for p, v in networks._flatten(params)}


def drawn(init, digits, width=8, blocks=2, seed=0):
    spec = Spec(inits=(init,), model="rescnn", hidden=(width,) * blocks, dataset="digits")
    return flat(starts.cell_starts(spec, [(init, seed)], digits).params)


def test_rescnn_layers_record_and_stride():
    """--hidden 8x3: a 3x3 stem, 3 blocks of two 3x3 convs of 8 channels, a dense head;
    the stem strides 2 on 28x28 images (14x14 inside), 1 on 8x8 ones."""
    spec = Spec(model="rescnn", hidden=(8,) * 3)
    for image, inside in (((8, 8, 1), 8), ((28, 28, 1), 14)):
        network = networks.resolve(spec, 10, image)
        shapes = jax.tree.map(lambda leaf: leaf.shape, network.template)
        assert shapes["stem"]["kernel"] == (3, 3, 1, 8)
        assert shapes["block_2"]["conv_1"]["kernel"] == (3, 3, 8, 8)
        assert shapes["head"]["kernel"] == (inside * inside * 8, 10)
        assert shapes["block_0"]["gate"] == ()
        _, inputs, _ = network.run_layers(jax.tree.map(np.zeros_like, network.module.init(
            jax.random.key(0), network.dummy())["params"]), np.zeros((2, math.prod(image))))
        assert inputs[1].shape == (2, inside, inside, 8)  # what block_0/conv_0 receives
    record = network.structure
    assert record.num_branches == 3 and record.branch_layers == 2
    assert record.role(("block_1", "conv_1")) == "branch_last"
    assert record.role(("block_1", "conv_0")) == "branch_inner"
    assert record.gates[2] == ("block_2", "gate")
    assert networks.fingerprint(spec, 10, (8, 8, 1)) == rescnn.RESCNN_VERSION
    assert Spec(model="rescnn").training_key() != Spec(model="resmlp").training_key()


def test_rescnn_refuses_mixed_widths_and_takes_norm_and_branch_inits():
    with pytest.raises(InitbenchError, match="--model rescnn needs one width"):
        Spec(model="rescnn", hidden=(16, 8))
    Spec(model="rescnn", inits=("fixup", "rezero"), norm="batch")  # no error
    result = CliRunner().invoke(app, ["compare", "--model", "rescnn", "--hidden", "8,4",
                                      "--dataset", "digits"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1


def test_delta_orthogonal_on_every_conv_kernel_zero_off_centre_orthogonal_at_it(digits):
    params = drawn("delta_orthogonal", digits, width=8, blocks=2)
    convs = [p for p in params if p.endswith("kernel") and params[p].ndim == 4]
    assert len(convs) == 5  # the stem and two per block
    for path in convs:
        kernel = params[path]
        off = kernel.copy()
        off[1, 1] = 0
        assert not off.any(), path
        centre = kernel[1, 1]
        gram = centre @ centre.T if centre.shape[0] <= centre.shape[1] else centre.T @ centre
        np.testing.assert_allclose(gram, np.eye(len(gram)), atol=1e-5)


def test_fixup_scales_conv_branches_by_its_formula_and_zeroes_their_ends(digits):
    """N(0, 2/fan_out) with a conv's fan_out = out·3·3 (the authors' code), times
    L^(-1/2) for L = 4 branches of m = 2 convs; each branch's last conv and the head 0."""
    params = drawn("fixup", digits, width=64, blocks=4)
    for i in range(4):
        std = params[f"block_{i}/conv_0/kernel"].std()
        assert std == pytest.approx(math.sqrt(2 / (64 * 9)) * 4 ** -0.5, rel=0.01)
        assert not params[f"block_{i}/conv_1/kernel"].any()
        assert params[f"block_{i}/gate"] == 1
    assert not params["head/kernel"].any() and not params["head/bias"].any()
    spec = Spec(inits=("fixup",), model="rescnn", hidden=(64,) * 4, dataset="digits")
    _, lines = starts.init_card_and_properties(spec, "fixup", 0, digits)
    low, high = (float(v) for v in lines[0].split("in [")[1].split("]")[0].split(", "))
    assert 0.99 < low <= high < 1.01 and lines[0].endswith("zero: yes")


def test_rezero_starts_every_conv_branch_gate_at_zero(digits):
    params = drawn("rezero", digits, width=8, blocks=3)
    assert [params[f"block_{i}/gate"] for i in range(3)] == [0, 0, 0]
    assert params["block_0/conv_1/kernel"].std() > 0  # the branch itself is drawn


def test_zero_puts_its_matrix_at_the_centre_and_zeroes_branch_ends(digits):
    params = drawn("zero", digits, width=8, blocks=2)
    inner = params["block_0/conv_0/kernel"]
    np.testing.assert_array_equal(inner[1, 1], np.eye(8))
    assert not inner[0].any() and not params["block_1/conv_1/kernel"].any()
    again = drawn("zero", digits, width=8, blocks=2, seed=5)
    assert all(np.array_equal(params[p], again[p]) for p in params)


def test_idinit_patch_maintain_is_the_reshaped_identity_hand_computed():
    """conv=patch: I' of the kernel as [in·k², out], rows in PyTorch's order (in, kh, kw).
    in 1, out 3: row h·3+w is 1 at column (h·3+w) mod 3 = w, so output o is column w = o of
    the window. in 2, out 2: row c·9+h·3+w, mod 2: (c+h+w) mod 2: a checkerboard that flips
    with the input channel (an (h, w, c) order would give o = c everywhere)."""
    kernel = modern_inits.idinit_kernel((3, 3, 1, 3), 1.0, "patch")
    for o in range(3):
        expected = np.zeros((3, 3))
        expected[:, o] = 1
        np.testing.assert_array_equal(kernel[:, :, 0, o], expected)
    kernel = modern_inits.idinit_kernel((3, 3, 2, 2), 1.0, "patch")
    h, w, c, o = np.indices((3, 3, 2, 2))
    np.testing.assert_array_equal(kernel, ((c + h + w) % 2 == o).astype(float))
    channel = modern_inits.idinit_kernel((3, 3, 2, 2), 1.0, "channel")
    np.testing.assert_array_equal(channel[1, 1], np.eye(2))
    assert not channel[0].any()
    for name, shape in (("idinit(conv=patch)", (3, 3, 8, 8)), ("idinit", (3, 3, 8, 8)),
                        ("idinit(conv=patch)", (3, 3, 1, 8))):
        values = np.asarray(initializers.get(name)(None, shape))
        assert values.std() == pytest.approx(initializers.expected_kernel_std(name, shape))


def test_idinit_conv_settings_on_rescnn_and_bad_values(digits):
    spec = Spec(inits=("idinit(conv=patch)",), model="rescnn", hidden=(8,) * 2,
                dataset="digits")
    params = flat(starts.cell_starts(spec, [("idinit(conv=patch)", 0)], digits).params)
    np.testing.assert_array_equal(params["block_0/conv_0/kernel"],
                                  modern_inits.idinit_kernel((3, 3, 8, 8), 1.0, "patch"))
    np.testing.assert_allclose(params["block_0/conv_1/kernel"],
                               1e-6 * modern_inits.idinit_kernel((3, 3, 8, 8), 1.0, "patch"),
                               rtol=1e-6)  # IDIZ_ε on a branch's last conv
    assert initializers.canonical("idinit(conv=channel)") == "idinit"  # the default: same cells
    with pytest.raises(InitbenchError, match="conv"):
        initializers.get("idinit(conv=pach)")
    result = CliRunner().invoke(app, ["inits"])
    assert result.exit_code == 0 and "Pan et al. 2025" in result.stdout


def test_batch_norm_over_batch_and_image_axes():
    """--norm batch on conv features [N, H, W, C]: per channel, mean 0 and variance 1 over
    the batch and both image axes."""
    from initbench import resmlp

    x = jax.random.normal(jax.random.key(0), (8, 4, 4, 3)) * np.arange(1.0, 4.0) + 2.0
    norm = resmlp.BatchStatsNorm()
    y = np.asarray(norm.apply(norm.init(jax.random.key(1), x), x))
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 1, 2)), 1.0, rtol=1e-3)
    # A pixel's own offset survives (statistics per pixel would remove it): the whole map
    # shares one mean and variance per channel.
    shifted = x + jnp.arange(16.0).reshape(1, 4, 4, 1)
    y = np.asarray(norm.apply(norm.init(jax.random.key(1), shifted), shifted))
    s = np.asarray(shifted)
    expected = (s - s.mean(axis=(0, 1, 2))) / np.sqrt(s.var(axis=(0, 1, 2)) + 1e-5)
    np.testing.assert_allclose(y, expected, atol=1e-4)


def test_rescnn_trains_in_the_shared_grid(digits):
    """One compiled grid: he_normal, fixup, skipinit, delta_orthogonal and
    idinit(conv=patch) on a 2-block rescnn; every cell finite, the first four well above
    chance after 2 epochs (idinit(conv=patch) stays near chance on this tiny net: its train
    loss rose, then settled at ln 10, at lr 0.01 and at 0.001)."""
    inits = ("he_normal", "fixup", "skipinit", "delta_orthogonal", "idinit(conv=patch)")
    spec = Spec(inits=inits, seeds=(0,), epochs=2, batch_size=50, lr=0.01, model="rescnn",
                hidden=(8,) * 2, dataset="digits")
    grid = experiment.train_grid(spec, digits, Runtime(use_cache=False),
                                 experiment.SilentReporter())
    accuracy = grid.metrics["test_accuracy"]
    assert np.isfinite(accuracy).all() and accuracy[:4, :, -1].min() > 0.5


def test_inspect_shows_the_rescnn_card(digits):
    result = CliRunner().invoke(app, ["inspect", "--model", "rescnn", "--hidden", "8x2",
                                      "--init", "delta_orthogonal", "--dataset", "digits",
                                      "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert any(line.startswith("delta_orthogonal: 5 conv kernels; largest off-centre |w| 0;")
               for line in document["properties"])


@pytest.mark.parametrize("name", ["delta_orthogonal(gain=2)", "idinit(tau=0.5)", "zero"])
def test_a_conv_kernels_expected_std_follows_the_parameters_in_its_name(name):
    """The card's expected std of a conv kernel for a specifier with parameters (it once
    raised 'sets gain in its name and again as an option', and took IDInit's τ as 1 in the
    kernel's mean)."""
    shape = (3, 3, 8, 8)
    values = np.asarray(initializers.get(name)(jax.random.key(0), shape))
    assert values.std() == pytest.approx(initializers.expected_kernel_std(name, shape), rel=1e-4)
