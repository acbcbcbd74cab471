"""README promises about what every parameter starts from ("Use your own network"): marked
parameters are drawn, biases use their kernel's fan_in, the card tells the truth. Through
`starts.init_card`, the path `initbench inspect` and training use (resolver included)."""

import math
import textwrap

import pytest

from initbench import data, networks, starts
from initbench.errors import InitbenchError
from initbench.spec import Spec

USER_NET = textwrap.dedent("""
    import flax.linen as nn
    import jax.numpy as jnp


    class Net(nn.Module):
        num_classes: int
        initbench_params = ("table", "*/embedding")

        @nn.compact
        def __call__(self, x):
            x = x.reshape(x.shape[0], -1)
            table = self.param("table", nn.initializers.ones, (x.shape[-1], 128))
            emb = nn.Embed(4, 128, embedding_init=nn.initializers.ones, name="embed")
            h = nn.relu(x @ table + emb(jnp.zeros((x.shape[0],), jnp.int32)))
            return nn.Dense(self.num_classes, name="head")(nn.relu(nn.Dense(512, name="wide")(h)))


    def make_net(num_classes):
        return Net(num_classes)
""")


def _rows(spec, init="he_normal"):
    dataset = data.load("digits")
    return {row["path"]: row for row in starts.init_card(spec, init, 0, dataset)}


@pytest.fixture(scope="module")
def user_card(tmp_path_factory):
    """One user network (marked top-level and nested parameters, a 128 -> 512 -> 10 head)
    under he_normal with torch_default biases: one draw serves the tests below."""
    folder = tmp_path_factory.mktemp("user_net")
    (folder / "my_nets.py").write_text(USER_NET)
    spec = Spec(inits=("he_normal",), dataset="digits", bias_init="torch_default",
                model=f"{folder / 'my_nets.py'}:make_net")
    return _rows(spec)


def test_parameters_matched_by_initbench_params_are_drawn(user_card):
    """A top-level parameter ("table") and a nested one ("*/embedding") whose module
    initializes them to ones are drawn by the initializer (mean ~0, its std)."""
    for path, fan_in in (("table", 64), ("embed/embedding", 4)):
        row = user_card[path]
        assert row["rule"].startswith("he_normal"), row
        assert row["fan_in"] == fan_in
        assert row["expected_std"] == pytest.approx(math.sqrt(2 / fan_in))
        assert abs(row["drawn_mean"]) < 0.2 * row["expected_std"]
        assert row["drawn_std"] == pytest.approx(row["expected_std"], rel=0.15)


def _check_biases(rows, kernels):
    """Every bias: torch_default's std 1/sqrt(3 fan_in) with fan_in its kernel's
    (prod of all but the last kernel dimension), and the drawn std close to it."""
    for layer, kernel_shape in kernels.items():
        fan_in = math.prod(kernel_shape[:-1])
        row = rows[f"{layer}/bias"]
        assert row["fan_in"] == fan_in
        assert row["expected_std"] == pytest.approx(1 / math.sqrt(3 * fan_in))
        tolerance = 3 * 0.9 / math.sqrt(4 * kernel_shape[-1]) + 0.05  # ~3 sd of a uniform's sd
        assert row["drawn_std"] == pytest.approx(row["expected_std"], rel=tolerance), layer


def test_mlp_hidden_biases_use_their_kernels_fan_in():
    # fan_in != fan_out in every layer (64 -> 256 -> 64 -> 10), so either swap shows.
    spec = Spec(inits=("he_normal",), dataset="digits", hidden=(256, 64), bias_init="torch_default")
    rows = _rows(spec)
    _check_biases(rows, {"dense_0": (64, 256), "dense_1": (256, 64), "dense_2": (64, 10)})


def test_user_network_biases_use_their_kernels_fan_in(user_card):
    _check_biases(user_card, {"wide": (128, 512), "head": (512, 10)})
    # The built-in CNN: conv biases use in x receptive field (3 x 3 x C).
    cnn = networks.resolve(Spec(model="cnn", bias_init="torch_default"), 10, (8, 8, 1))
    fans = {rule.name: rule.fan_in for rule in cnn.rules if rule.kind == "bias"}
    assert fans == {"conv_0/bias": 9, "conv_1/bias": 72, "dense_0/bias": 64, "dense_1/bias": 64}


def test_a_factory_named_by_package_module_is_resolved(tmp_path, monkeypatch):
    package = tmp_path / "promise_nets_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(USER_NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    network = networks.resolve(Spec(model="promise_nets_pkg.nets:make_net"), 10, (8, 8, 1))
    assert type(network.module).__name__ == "Net"
    assert network.marked == ("table", "*/embedding")
    assert network.fingerprint.startswith("make_net@sha256:")


def test_an_nnx_module_is_refused_with_the_to_linen_hint(tmp_path):
    (tmp_path / "nnx_net.py").write_text(textwrap.dedent("""
        from flax import nnx


        def make_net(num_classes):
            return nnx.Linear(64, num_classes, rngs=nnx.Rngs(0))
    """))
    with pytest.raises(InitbenchError, match="to_linen"):
        networks.resolve(Spec(model=f"{tmp_path / 'nnx_net.py'}:make_net"), 10, (8, 8, 1))

