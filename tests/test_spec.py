"""Spec parsing and validation: every bad setting is an InitbenchError naming it."""

import pytest

from initbench.errors import InitbenchError
from initbench.spec import Spec, parse_hidden, parse_list, parse_seeds


def test_parse_seeds_count_list_range():
    assert parse_seeds("3") == (0, 1, 2)
    assert parse_seeds("0,5,7") == (0, 5, 7)
    assert parse_seeds("3-5") == (3, 4, 5)


@pytest.mark.parametrize("text", ["a,b", "1.5", "0", "-1", "1,,2", "", "5-3"])
def test_parse_seeds_rejects(text):
    with pytest.raises(InitbenchError, match="seeds"):
        parse_seeds(text)


def test_parse_hidden_shorthand():
    assert parse_hidden("256,256") == (256, 256)
    assert parse_hidden("256x4") == (256,) * 4
    assert parse_hidden("512,128x2") == (512, 128, 128)


@pytest.mark.parametrize("text", ["-5", "0", "256x0", "abc", "256,,256", "2.5"])
def test_parse_hidden_rejects(text):
    with pytest.raises(InitbenchError, match="hidden"):
        parse_hidden(text)


def test_parse_list_rejects_empty_items():
    assert parse_list("a, b", "inits") == ("a", "b")
    with pytest.raises(InitbenchError, match="malformed"):
        parse_list("a,,b", "inits")


@pytest.mark.parametrize("changes, message", [
    ({"epochs": 0}, "epochs"),
    ({"lr": 0.0}, "lr"),
    ({"lr": -1.0}, "lr"),
    ({"lr": float("nan")}, "lr"),
    ({"batch_size": 0}, "batch-size"),
    ({"optimizer": "adamm"}, "Did you mean 'adam'"),
    ({"activation": "rellu"}, "Did you mean 'relu'"),
    ({"inits": ("xavier", "glorot_uniform")}, "twice"),
    ({"inits": ("xavir",)}, "Did you mean 'xavier'"),
    ({"bias_init": "nrmal"}, "Did you mean 'normal'"),
    ({"seeds": (1, 1)}, "twice"),
    ({"gain": -1.0}, "gain"),
    ({"mode": "fan"}, "fan mode"),
])
def test_validation_names_the_bad_setting(changes, message):
    with pytest.raises(InitbenchError, match=message):
        Spec(**changes)


def test_round_trip_and_training_key():
    spec = Spec(inits=("xavier", "normal"), seeds=(0, 3), dataset="digits", hidden=(8, 8))
    assert Spec.from_dict(spec.to_dict()) == spec
    # The cache key ignores which cells are asked for, and changes with any training setting.
    assert spec.replace(seeds=(9,), inits=("he_normal",)).training_key() == spec.training_key()
    assert spec.replace(lr=0.001).training_key() != spec.training_key()
    assert spec.replace(bias_init="normal").training_key() != spec.training_key()
