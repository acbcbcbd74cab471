"""Tests for the initializer registry: statistics of large draws, params, errors."""

from __future__ import annotations

import math
import subprocess
import sys

import jax
import numpy as np
import pytest

from initbench import initializers
from initbench.errors import InitbenchError

FAN_IN, FAN_OUT = 784, 512
NUM_DRAWS = 3
TN_CUT = 2 / 0.87962566103423978  # |w| < TN_CUT·std for TN(std)

RANDOM_KERNELS = [n for n in initializers.names() if n not in ("zeros", "identity", "zero", "idinit")]


def draw(init, shape=(FAN_IN, FAN_OUT), num_draws=NUM_DRAWS, seed=0):
    """`num_draws` independent draws of `init` at `shape`, stacked on axis 0."""
    keys = jax.random.split(jax.random.key(seed), num_draws)
    return np.stack([np.asarray(init(k, shape)) for k in keys])


def test_import_does_not_load_jax():
    code = (
        "import sys, initbench.initializers as i;"
        "i.names(); i.formula('xavier'); i.expected_std('he_normal', 3, 4);"
        "print('jax' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", RANDOM_KERNELS)
def test_mean_and_std_match_expected(name):
    w = draw(initializers.get(name))
    std = initializers.expected_std(name, FAN_IN, FAN_OUT)
    assert w.shape == (NUM_DRAWS, FAN_IN, FAN_OUT)
    assert w.dtype == np.float32
    assert abs(w.mean()) < 5 * std / math.sqrt(w.size)
    for one in w:
        assert one.std() == pytest.approx(std, rel=0.015)


@pytest.mark.parametrize(
    "name, bound",
    [
        ("glorot_uniform", math.sqrt(6 / (FAN_IN + FAN_OUT))),
        ("he_uniform", math.sqrt(6 / FAN_IN)),
        ("lecun_uniform", math.sqrt(3 / FAN_IN)),
        ("torch_default", 1 / math.sqrt(FAN_IN)),
        ("uniform", 0.05),
    ],
)
def test_uniform_bounds(name, bound):
    w = np.abs(draw(initializers.get(name)))
    assert w.max() <= bound * (1 + 1e-6)
    assert w.max() > 0.999 * bound
    assert initializers.expected_std(name, FAN_IN, FAN_OUT) == pytest.approx(bound / math.sqrt(3))


@pytest.mark.parametrize(
    "name, std",
    [
        ("glorot_normal", math.sqrt(2 / (FAN_IN + FAN_OUT))),
        ("he_normal", math.sqrt(2 / FAN_IN)),
        ("lecun_normal", math.sqrt(1 / FAN_IN)),
        ("truncated_normal", 1.0),
    ],
)
def test_truncated_normals_are_cut_at_two_underlying_stds(name, std):
    assert initializers.expected_std(name, FAN_IN, FAN_OUT) == pytest.approx(std)
    w = np.abs(draw(initializers.get(name)))
    assert w.max() <= TN_CUT * std * (1 + 1e-6)
    assert w.max() > 0.99 * TN_CUT * std


def test_truncated_unit_std_matches_jax_constant():
    assert math.isclose(initializers.TRUNCATED_UNIT_STD, 0.87962566103423978, rel_tol=1e-12)


def test_normal_is_not_truncated():
    w = draw(initializers.get("normal", stddev=0.1))
    assert np.abs(w).max() > 4 * 0.1


@pytest.mark.parametrize("name", ["orthogonal", "lsuv"])
@pytest.mark.parametrize("gain", [1.0, 1.5])
def test_orthogonal_tall_and_wide(name, gain):
    init = initializers.get(name, gain=gain)
    tall = draw(init, (784, 256), num_draws=1)[0].astype(np.float64)
    wide = draw(init, (256, 784), num_draws=1)[0].astype(np.float64)
    np.testing.assert_allclose(tall.T @ tall, gain**2 * np.eye(256), atol=1e-5)
    np.testing.assert_allclose(wide @ wide.T, gain**2 * np.eye(256), atol=1e-5)
    std = initializers.expected_std(name, 784, 256, gain=gain)
    assert std == pytest.approx(gain / 28)
    assert tall.std() == pytest.approx(std, rel=1e-3)


def test_zeros():
    w = draw(initializers.get("zeros"), num_draws=1)
    assert not w.any()
    assert initializers.expected_std("zeros", FAN_IN, FAN_OUT) == 0.0


@pytest.mark.parametrize("shape", [(64, 64), (64, 32), (32, 64)])
def test_identity(shape):
    w = draw(initializers.get("identity", gain=2.0), shape, num_draws=1)[0]
    np.testing.assert_array_equal(w, 2.0 * np.eye(*shape))
    assert w.std() == pytest.approx(initializers.expected_std("identity", *shape, gain=2.0))


@pytest.mark.parametrize(
    "name, params, std",
    [
        ("glorot_uniform", {"gain": 2.0}, 2 * math.sqrt(2 / (FAN_IN + FAN_OUT))),
        ("glorot_normal", {"mode": "fan_in"}, math.sqrt(1 / FAN_IN)),
        ("he_uniform", {"mode": "fan_out"}, math.sqrt(2 / FAN_OUT)),
        ("he_normal", {"gain": 0.5, "mode": "fan_avg"}, 0.5 * math.sqrt(4 / (FAN_IN + FAN_OUT))),
        ("lecun_normal", {"gain": 3.0}, 3 * math.sqrt(1 / FAN_IN)),
        ("normal", {"stddev": 0.01}, 0.01),
        ("truncated_normal", {"stddev": 0.1}, 0.1),
        ("uniform", {"scale": 0.3}, 0.3 / math.sqrt(3)),
    ],
)
def test_params_change_std_as_the_formula_says(name, params, std):
    assert initializers.expected_std(name, FAN_IN, FAN_OUT, **params) == pytest.approx(std)
    w = draw(initializers.get(name, **params), num_draws=1)
    assert w.std() == pytest.approx(std, rel=0.015)


def test_none_params_mean_defaults():
    assert initializers.expected_std("normal", 3, 4, stddev=None) == 1.0
    a = draw(initializers.get("he_normal", gain=None, mode=None), num_draws=1)
    b = draw(initializers.get("he_normal"), num_draws=1)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("alias, name", sorted(initializers.aliases().items()))
def test_aliases_give_identical_arrays(alias, name):
    assert initializers.canonical(alias) == name
    assert initializers.formula(alias) == initializers.formula(name)
    np.testing.assert_array_equal(
        draw(initializers.get(alias), (64, 32), num_draws=1),
        draw(initializers.get(name), (64, 32), num_draws=1),
    )


def test_registry_facts():
    names = initializers.names()
    assert len(names) == len(set(names)) == 20  # 14 classic ones and 6 for deep and residual nets
    assert set(initializers.aliases().values()) <= set(names)
    assert not set(initializers.aliases()) & set(names)
    assert initializers.canonical("Xavier-Uniform") == "glorot_uniform"
    assert initializers.formula("xavier") == "U(±sqrt(6/(fan_in+fan_out)))"
    assert all(initializers.formula(n) for n in names)
    assert [n for n in names if initializers.is_data_dependent(n)] == ["lsuv", "metainit"]
    assert initializers.params("he_uniform") == {"gain": 1.0, "mode": "fan_in"}
    assert initializers.params("glorot_normal") == {"gain": 1.0, "mode": "fan_avg"}
    assert initializers.params("zeros") == {}


@pytest.mark.parametrize(
    "call, fragments",
    [
        (lambda: initializers.get("xavir"), ["'xavir'", "Did you mean 'xavier'", "glorot_uniform"]),
        (lambda: initializers.canonical("he_normall"), ["'he_normall'", "'he_normal'"]),
        (lambda: initializers.formula("bogus"), ["'bogus'", "Valid:"]),
        (lambda: initializers.is_data_dependent("lsvu"), ["'lsvu'", "'lsuv'"]),
        (lambda: initializers.expected_std("nope", 3, 4), ["'nope'"]),
        (lambda: initializers.get("normal", stddev=0), ["stddev", "0"]),
        (lambda: initializers.get("truncated_normal", stddev=-1.0), ["stddev", "-1.0"]),
        (lambda: initializers.get("normal", stddev="abc"), ["stddev", "'abc'"]),
        (lambda: initializers.get("uniform", scale=math.inf), ["scale", "inf"]),
        (lambda: initializers.get("orthogonal", gain=0), ["gain", "0"]),
        (lambda: initializers.get("he_normal", gain=True), ["gain", "True"]),
        (lambda: initializers.get("he_normal", mode="fan_inn"), ["'fan_inn'", "'fan_in'"]),
        (lambda: initializers.get("glorot_uniform", gian=2), ["'gian'", "'gain'", "mode"]),
        (lambda: initializers.get("normal", gain=2), ["'gain'", "stddev"]),
        (lambda: initializers.get("zeros", gain=2), ["'zeros'", "no parameters", "'gain'"]),
        (lambda: initializers.expected_std("he_normal", 0, 4), ["fan_in", "0"]),
        (lambda: initializers.expected_std("he_normal", 3, 2.5), ["fan_out", "2.5"]),
        (lambda: initializers.get_bias("normall", 3), ["'normall'", "'normal'", "constant"]),
        (lambda: initializers.get_bias("uniform", 3, scale=-1), ["scale", "-1"]),
        (lambda: initializers.get_bias("constant", 3, value=math.nan), ["value", "nan"]),
        (lambda: initializers.get_bias("torch_default", 0), ["fan_in", "0"]),
    ],
)
def test_user_errors_name_the_bad_value(call, fragments):
    with pytest.raises(InitbenchError) as info:
        call()
    for fragment in fragments:
        assert fragment in str(info.value)


BIAS_SIZE = 100_000


@pytest.mark.parametrize(
    "name, params, std, bound",
    [
        ("normal", {}, 1.0, None),
        ("normal", {"stddev": 0.1}, 0.1, None),
        ("truncated_normal", {}, 1.0, TN_CUT),
        ("uniform", {}, 0.05 / math.sqrt(3), 0.05),
        ("uniform", {"scale": 2.0}, 2 / math.sqrt(3), 2.0),
        ("torch_default", {}, 1 / math.sqrt(3 * FAN_IN), 1 / math.sqrt(FAN_IN)),
    ],
)
def test_bias_std_and_bounds(name, params, std, bound):
    assert initializers.expected_bias_std(name, FAN_IN, **params) == pytest.approx(std)
    b = draw(initializers.get_bias(name, FAN_IN, **params), (BIAS_SIZE,), num_draws=1)[0]
    assert abs(b.mean()) < 5 * std / math.sqrt(BIAS_SIZE)
    assert b.std() == pytest.approx(std, rel=0.02)
    if bound is not None:
        assert np.abs(b).max() <= bound * (1 + 1e-6)
        assert np.abs(b).max() > 0.99 * bound


@pytest.mark.parametrize(
    "name, params, value",
    [("zeros", {}, 0.0), ("constant", {}, 0.01), ("constant", {"value": -0.5}, -0.5)],
)
def test_constant_biases(name, params, value):
    b = draw(initializers.get_bias(name, FAN_IN, **params), (16,), num_draws=1)[0]
    np.testing.assert_array_equal(b, np.full(16, value, np.float32))
    assert initializers.expected_bias_std(name, FAN_IN, **params) == 0.0


def test_bias_names():
    assert initializers.BIAS_NAMES[0] == "zeros"
    assert set(initializers.BIAS_NAMES) == {
        "zeros",
        "normal",
        "truncated_normal",
        "uniform",
        "torch_default",
        "constant",
    }
    assert initializers.bias_formula("torch_default") == "U(±1/sqrt(fan_in))"
