"""Issue 25, width beyond the MLP: `transfer`, `coord` and `--param` on the built-in CNN and
on a user factory that takes a width (`def make(num_classes, width)`), the layer roles
muP needs (declared, read from the shapes at two widths, or from the layers' order), and
muP's biases (Table 8: a bias's scale does not move with width)."""

import json
import math
from pathlib import Path

import pytest
from cli_helpers import invoke, one_error, read_csv

from initbench import coord, networks, parameterizations, parameterize, starts
from initbench.data import load
from initbench.spec import Spec

ROOT = Path(__file__).resolve().parents[1]
WIDE = f"{ROOT / 'examples/wide_nets.py'}:make_wide"
DECLARED = f"{ROOT / 'examples/wide_nets.py'}:make_declared"
NO_WIDTH = f"{ROOT / 'examples/my_nets.py'}:make_net"

# Networks whose roles cannot be told, and bad declarations (written to a file per test).
ODD_NETS = '''
import flax.linen as nn

class OneLayer(nn.Module):
    num_classes: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.num_classes, name="only")(x.reshape(x.shape[0], -1))

def make_one_layer(num_classes):
    return OneLayer(num_classes)

class HiddenReadout(nn.Module):  # its logits come from a parameter no initializer draws
    num_classes: int

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(32, name="first")(x.reshape(x.shape[0], -1)))
        x = nn.Dense(16, name="second")(x)
        return x @ self.param("readout", nn.initializers.lecun_normal(), (16, self.num_classes))

def make_hidden_readout(num_classes):
    return HiddenReadout(num_classes)

class Lopsided(nn.Module):
    num_classes: int
    width: int = 8

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(self.width + 3, name="first")(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.num_classes, name="head")(x)

def make_lopsided(num_classes, width=8):
    return Lopsided(num_classes, width)

class BadRole(Lopsided):
    initbench_roles = {"first/*": "input", "head/*": "readout"}

def make_bad_role(num_classes, width=8):
    return BadRole(num_classes, width)

class Unmatched(Lopsided):
    initbench_roles = {"first/*": "input"}

def make_unmatched(num_classes, width=8):
    return Unmatched(num_classes, width)
'''


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def test_transfer_through_a_user_factory_under_sp_and_mup(tmp_path):
    """A tiny transfer (digits, widths 8 and 16, 3 rates, 2 seeds, 1 epoch) through the
    shipped width-taking factory: every cell trained at its width, muP at its base width
    is SP bit for bit, wider it is not; the width and the factory are recorded."""
    result = invoke("transfer", "--dataset", "digits", "--model", WIDE, "--param", "sp,mup",
                    "--widths", "8,16", "--lr", "1e-3:1e-1:3", "--seeds", "2", "--epochs", "1",
                    "--quiet", "--out", tmp_path / "t")
    assert result.exit_code == 0, result.output
    rows = read_csv(tmp_path / "t/transfer.csv")
    assert [(r["param"], r["width"]) for r in rows] == [("sp", "8"), ("sp", "16"),
                                                        ("mup", "8"), ("mup", "16")]
    cells = {(c["param"], c["width"], c["lr"], c["seed"]): c["value"]
             for c in read_csv(tmp_path / "t/transfer_cells.csv")}
    assert len(cells) == 2 * 2 * 3 * 2
    for (param, width, lr, seed), value in cells.items():
        assert math.isfinite(float(value))
        if param == "mup":
            assert (cells[("sp", width, lr, seed)] == value) == (width == "8")
    # the widths differ: a wider net trains other numbers
    assert cells[("sp", "8", "0.01", "0")] != cells[("sp", "16", "0.01", "0")]
    document = json.loads((tmp_path / "t/spec.json").read_text())
    assert document["spec"]["model"] == WIDE and document["depth"] is None
    assert document["base_width"] == 8 and "width" not in document["spec"]


def test_coord_through_a_user_factory(tmp_path):
    """coord records every drawn layer's output but the last, and the logits."""
    result = invoke("coord", "--dataset", "digits", "--model", WIDE, "--param", "mup",
                    "--widths", "8,16", "--steps", "1", "--seeds", "2", "--quiet",
                    "--out", tmp_path / "c")
    assert result.exit_code == 0, result.output
    rows = read_csv(tmp_path / "c/coord.csv")
    assert [r["layer"] for r in rows[::4]] == ["stem", "hidden", "logits"]
    assert len(rows) == 3 * 2 * 2 and all(float(r["mean_size"]) > 0 for r in rows)
    cnn = Spec(model="cnn", width=16, dataset="digits")
    assert coord.layer_names(cnn, load("digits")) == ("conv_0", "conv_1", "dense_0", "logits")


@pytest.mark.parametrize("command", ["transfer", "coord"])
def test_a_factory_without_a_width_is_refused_in_one_line(command):
    line = one_error(invoke(command, "--dataset", "digits", "--model", NO_WIDTH,
                            "--widths", "8,16", "--seeds", "2"))
    assert "make_net() takes no width" in line and "def make_net(num_classes, width)" in line


def test_roles_from_shapes_declared_and_order(digits):
    """The CNN's roles from its shapes at two widths; a declaration gives the same roles as
    the shapes of the same network; a network without a width by its layers' order."""
    def roles_of(model, **changes):
        spec = Spec(model=model, param="mup", dataset="digits", **changes)
        network = networks.resolve(spec, 10, digits.image_shape)
        return {"/".join(path): kind
                for path, kind in parameterize.roles(spec, network).items()}

    assert roles_of("cnn") == {"conv_0/kernel": "input", "conv_1/kernel": "hidden",
                               "dense_0/kernel": "hidden", "dense_1/kernel": "output"}
    expected = {"stem/kernel": "input", "hidden/kernel": "hidden", "head/kernel": "output"}
    assert roles_of(WIDE, width=16) == roles_of(DECLARED, width=16) == expected
    assert roles_of(NO_WIDTH) == {"Conv_0/kernel": "input", "Dense_0/kernel": "output"}


@pytest.mark.parametrize("factory, message", [
    ("make_one_layer", "one drawn layer"),
    ("make_hidden_readout", "('second') does not return the 10 logits"),
    ("make_lopsided", "not in proportion to the width"),
    ("make_bad_role", "'readout'; a role is one of input, hidden, output"),
    ("make_unmatched", "gives no role to 'head/kernel'"),
])
def test_roles_that_cannot_be_told_are_one_line(tmp_path, factory, message):
    (tmp_path / "odd_nets.py").write_text(ODD_NETS)
    model = f"{tmp_path / 'odd_nets.py'}:{factory}"
    args = ["--dataset", "digits", "--model", model, "--param", "mup", "--seeds", "2"]
    if factory in ("make_one_layer", "make_hidden_readout"):  # no width: roles by order
        line = one_error(invoke("compare", *args, "--epochs", "1"))
    else:
        line = one_error(invoke("transfer", *args, "--widths", "8,16"))
    assert message in line, line
    # inspect, at the factory's own width (its signature's default), refuses alike
    assert message in one_error(invoke("inspect", "--dataset", "digits", "--model", model,
                                       "--param", "mup"))
    if factory == "make_lopsided":  # sp needs no roles: any width-taking factory trains
        result = invoke("transfer", *args[:4], "--param", "sp", "--widths", "8,16",
                        "--lr", "1e-2:1e-1:3", "--seeds", "2", "--epochs", "1", "--quiet",
                        "--out", tmp_path / "sp")
        assert result.exit_code == 0, result.output


def test_mup_on_the_cnn_is_table_8_by_role(digits):
    """At width 32 over base 16 (m = 2): input kernels as drawn, hidden kernels at rate
    1/m, the output kernel stored x sqrt(m) with multiplier 1/m; ntk x sqrt(fan_in) with
    the convolution's fan_in (receptive field x channels)."""
    spec = Spec(model="cnn", width=32, param="mup", base_width=16, dataset="digits")
    network = networks.resolve(spec, 10, digits.image_shape)
    table = {"/".join(p): s for p, s in parameterize.scalings(spec, network).items()}
    assert table["conv_0/kernel"] == parameterizations.Scaling(1.0, 1.0, 1.0)
    assert table["conv_1/kernel"] == table["dense_0/kernel"] == parameterizations.Scaling(
        1.0, 1.0, 0.5)
    assert table["dense_1/kernel"] == parameterizations.Scaling(math.sqrt(2), 0.5, 1.0)
    ntk = spec.replace(param="ntk", base_width=None)
    table = {"/".join(p): s
             for p, s in parameterize.scalings(ntk, networks.resolve(
                 ntk, 10, digits.image_shape)).items()}
    assert table["conv_1/kernel"].init == pytest.approx(math.sqrt(3 * 3 * 4))


def test_the_cnn_at_its_default_width_is_unchanged():
    """Width 64 is the CNN of every run before widths: its layers and its keys."""
    import jax

    module = networks.CNN(10)
    shapes = jax.tree.map(lambda a: a.shape, jax.eval_shape(
        module.init, jax.random.key(0), jax.numpy.zeros((1, 28, 28, 1)))["params"])
    assert shapes["conv_0"]["kernel"] == (3, 3, 1, 8)
    assert shapes["conv_1"]["kernel"] == (3, 3, 8, 16)
    assert shapes["dense_0"]["kernel"] == (784, 64)
    assert Spec(model="cnn").training_key() != Spec(model="cnn", width=64).training_key()
    assert "width" not in Spec(model="cnn").to_dict()
    assert networks.fingerprint(Spec(model="cnn"), 10, (28, 28, 1)) == networks.CNN_VERSION


def test_mup_biases_keep_their_scale_across_width(digits):
    """Table 8, "all biases": a bias's init variance does not move with width. A bias drawn
    at 1/sqrt(fan_in) (torch_default) of a hidden or output layer is stored x sqrt(m), as
    microsoft/mup's set_base_shapes rescales it, so its expected std at width 64 is that at
    the base width 16; width-free bias draws (zeros) are left alone."""
    cards = {}
    for width in (16, 64):
        spec = Spec(inits=("he_normal",), hidden=(width, width), param="mup", base_width=16,
                    bias_init="torch_default", dataset="digits")
        cards[width] = {r["path"]: r for r in starts.init_card(spec, "he_normal", 0, digits)}
    for path in ("dense_1/bias", "dense_2/bias"):
        assert cards[64][path]["expected_std"] == pytest.approx(cards[16][path]["expected_std"])
        assert cards[64][path]["init_factor"] == pytest.approx(2.0)  # sqrt(64 / 16)
    bias = cards[64]["dense_1/bias"]  # 64 entries: the draw is near what the card expects
    assert bias["drawn_std"] == pytest.approx(bias["expected_std"], rel=0.25)
    assert cards[64]["dense_0/bias"]["init_factor"] == 1.0  # its fan_in (features) is finite
    zeros = Spec(hidden=(64, 64), param="mup", base_width=16)
    table = parameterize.scalings(zeros, networks.resolve(zeros, 10, (64,)))
    assert table[("dense_1", "bias")].init == table[("dense_2", "bias")].init == 1.0


def test_readme_wide_network_is_the_shipped_example():
    """`--model examples/wide_nets.py:make_wide` runs as written: the file is the README's code."""
    import re

    text = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(import flax.linen as nn\n\nclass WideNet.*?)```", text,
                      flags=re.S).group(1)
    assert (ROOT / "examples" / "wide_nets.py").read_text() == block
    assert "initbench transfer --model examples/wide_nets.py:make_wide" in text



@pytest.mark.parametrize("model", ["mlp", "resmlp", "rescnn"])
def test_a_width_study_builds_the_networks_hidden_shapes_at_each_width(model):
    """transfer and coord on a network --hidden shapes set its hidden widths (a residual
    net's block width), never `spec.width`, which those networks would ignore: two widths
    must give two networks, each at its own width (muP's multiplier)."""
    from initbench import width_study

    spec = Spec(model=model, inits=("xavier",))
    kernels, multipliers = [], []
    for width in (8, 16):
        wide = width_study.width_spec(spec, "mup", width, 1, 8)
        network = networks.resolve(wide, 10, (8, 8, 1))
        kernels.append(sorted(r.shape for r in network.rules if r.kind == "kernel"))
        multipliers.append(parameterizations.width_multiplier(wide))
    assert kernels[0] != kernels[1]
    assert multipliers == [1.0, 2.0]
