"""Spec parsing and validation: every bad setting is an InitbenchError naming it."""

import dataclasses
import json

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
    ({"gain": 0.0}, "gain"),
    ({"inits": ("normal",), "gain": 0.0}, "gain"),  # also where no initializer takes a gain
    ({"lsuv_tol": 0.0}, "lsuv-tol"),
    ({"lsuv_tol": 1.0}, "lsuv-tol"),
    ({"lsuv_max_iter": 0}, "lsuv-max-iter"),
    ({"hidden": (8, 0)}, "hidden"),
    ({"seeds": (-1,)}, "seeds"),
    ({"mode": "fan"}, "fan mode"),
])
def test_validation_names_the_bad_setting(changes, message):
    with pytest.raises(InitbenchError, match=message):
        Spec(**changes)


# A value other than the default for every Spec field. A field added to Spec without an
# entry here fails `test_every_field_is_classified`.
CHANGED = {
    "dataset": "digits", "epochs": 7, "batch_size": 50, "lr": 0.003, "optimizer": "sgd",
    "hidden": (8, 8), "activation": "tanh", "bias_init": "normal", "gain": 1.5,
    "mode": "fan_out", "lsuv_tol": 0.05, "lsuv_max_iter": 3, "track_layers": True,
    "data_seeds": 2,  # the run's key; its cells are cached under the K = 1 key (results)
    "val_fraction": 0.2, "model": "cnn", "dtype": "bfloat16",
}
# --norm needs --model resmlp, so it cannot ride on CHANGED's cnn: its key change is
# tests/test_deep_residual.py::test_default_keys_are_unchanged.
RESIDUAL_ONLY = {"norm": "layer"}
# Fields that only pick which cells to train, or are not settings at all. Each is set on
# its own, except max_seeds, which needs precision (--seeds auto).
NOT_TRAINING = {"inits": ("he_normal",), "seeds": (9,), "extra": {"note": "x"},
                "precision": 0.5, "max_seeds": 40}
NEEDS = {"max_seeds": {"precision": 0.5}}
# The parameterization, hashed only when it is not sp (refused with --model cnn,
# so it cannot join CHANGED); test_parameterizations.py checks its keys.
PARAMETERIZATION = {"param": "mup", "base_width": 16}


def test_every_field_is_classified():
    names = {f.name for f in dataclasses.fields(Spec)}
    assert names == set(CHANGED) | set(NOT_TRAINING) | set(PARAMETERIZATION) | set(RESIDUAL_ONLY)
    assert not set(CHANGED) & set(NOT_TRAINING)


@pytest.mark.parametrize("name", sorted(CHANGED))
def test_every_training_field_changes_the_cache_key(name):
    """A cached cell is reused only for the same numbers: every setting that changes a
    cell's numbers changes the key, alone and on top of a non-default spec."""
    def keys(**fields):  # a new Spec each time: --gain/--mode are written into the labels
        return cell_keys(Spec(inits=("xavier", "he_normal"), seeds=(0, 3), **fields))

    assert keys(**{name: CHANGED[name]}) != keys()
    # hidden and activation shape the MLP only: with another --model they are refused
    mlp_only = ("model",) if name in ("hidden", "activation") else ("hidden", "activation")
    others = {k: v for k, v in CHANGED.items() if k != name and k not in mlp_only}
    default = getattr(Spec(), name)
    assert keys(**others, **{name: CHANGED[name]}) != keys(**others)
    assert keys(**others, **{name: default}) == keys(**others)


def cell_keys(spec):
    """What a cached cell is found under: the training key, then each initializer's
    identity (`initializers.canonical`, which holds a --gain/--mode written into its label)."""
    from initbench import initializers

    return spec.training_key(), tuple(initializers.canonical(i) for i in spec.inits)


def test_cells_and_notes_do_not_change_the_cache_key():
    spec = Spec(inits=("xavier", "normal"), seeds=(0, 3))
    for name, value in NOT_TRAINING.items():
        changed = spec.replace(**NEEDS.get(name, {}), **{name: value})
        assert changed.training_key() == spec.training_key(), name


def test_round_trip_keeps_every_field():
    spec = Spec(inits=("xavier", "he_normal"), seeds=(0, 3),
                **{k: v for k, v in CHANGED.items() if k not in ("hidden", "activation")})
    document = json.loads(json.dumps(spec.to_dict()))  # as spec.json stores it
    again = Spec.from_dict(document)
    assert again == spec and again.training_key() == spec.training_key()
    for f in dataclasses.fields(Spec):
        if f.name != "extra":
            assert getattr(again, f.name) == getattr(spec, f.name), f.name
            assert type(getattr(again, f.name)) is type(getattr(spec, f.name)), f.name
    assert Spec.from_dict({**document, "added_by_a_later_version": 1}) == spec
