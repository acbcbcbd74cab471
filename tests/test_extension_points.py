"""Each extension point is one record: a toy dataset, a toy export format, a toy optimizer
and a toy data-dependent initializer are added by touching only their registries, and every
command then uses them."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from cli_helpers import invoke

from initbench import data, export, initializers, optimizers, starts
from initbench.spec import Spec

TINY = ["--epochs", "1", "--hidden", "4", "--batch-size", "8"]




def _toy_dataset() -> data.Dataset:
    """Two 2x2-pixel classes: bright top row or bright bottom row (40 train, 10 test)."""
    rng = np.random.default_rng(0)
    y = np.arange(50) % 2
    x = rng.uniform(0, 0.2, (50, 4)).astype(np.float32)
    x[y == 0, :2] += 0.8
    x[y == 1, 2:] += 0.8
    return data.Dataset("toy", x[:40], y[:40].astype(np.int32), x[40:],
                        y[40:].astype(np.int32), 2, (2, 2, 1), "embedded")


@pytest.fixture
def toy_dataset(monkeypatch):
    monkeypatch.setattr(data, "DATASETS", dict(data.DATASETS))
    data.register(data.DatasetInfo("toy", "embedded", "two 2x2 classes", (2, 2, 1), 2, 40, 10,
                                   loader=_toy_dataset))


def test_a_registered_dataset_is_listed_loaded_and_trained(toy_dataset, tmp_path):
    assert "toy" in data.names() and data.is_available_offline("toy")
    assert data.load("toy").num_classes == 2
    result = invoke("run", "--dataset", "toy", "--init", "xavier", "--seeds", "1", *TINY,
                    "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "run" / "spec.json").read_text())
    assert document["spec"]["dataset"] == "toy" and document["num_train"] == 40
    assert "toy" in invoke("datasets").output


def test_an_unknown_dataset_is_refused_not_replaced_by_another():
    with pytest.raises(Exception, match="toy"):
        data.load("toy")


def test_a_registered_export_format_is_chosen_by_name_and_extension(toy_dataset, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setattr(export, "FORMATS", dict(export.FORMATS))
    export.register("inits", export.Format((".inits",), lambda result, rows: "\n".join(
        row.init for row in rows) + "\n"))
    assert invoke("run", "--dataset", "toy", "--init", "xavier", "--seeds", "1", *TINY,
                  "--out", tmp_path / "run").exit_code == 0
    result = invoke("export", tmp_path / "run", "--out", tmp_path / "table.inits")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "table.inits").read_text() == "xavier\n"
    assert export.choose_format("INITS", None) == "inits"


def test_a_registered_optimizer_is_accepted_and_built(monkeypatch):
    monkeypatch.setattr(optimizers, "OPTIMIZERS", {
        **optimizers.OPTIMIZERS, "nesterov": optimizers.Optimizer(
            "sgd", "SGD with Nesterov momentum", {"momentum": 0.9, "nesterov": True})})
    monkeypatch.setattr("initbench.spec.OPTIMIZERS", optimizers.OPTIMIZERS)
    monkeypatch.setattr("initbench.train.OPTIMIZERS", optimizers.OPTIMIZERS)
    from initbench import train

    tx = train.make_optimizer(Spec(optimizer="nesterov", lr=(0.5,)))
    params = {"w": np.ones(2, np.float32)}
    updates, _ = tx.update({"w": np.ones(2, np.float32)}, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], -0.5 * 1.9)  # nesterov: g + momentum * (g)


def _halve_after_draw(spec, network, params, data):
    """A toy data-dependent start: every leaf halved, one pass per layer per seed."""
    import jax

    num_seeds = jax.tree.leaves(params)[0].shape[0]
    return (jax.tree.map(lambda a: a * 0.5, params),
            np.ones((num_seeds, len(spec.hidden) + 1), np.int32) * data.num_classes)


def test_a_registered_data_dependent_initializer_draws_then_runs_its_hook(monkeypatch):
    monkeypatch.setattr(initializers, "_KERNELS", dict(initializers._KERNELS))
    base = initializers._KERNELS["glorot_uniform"]
    initializers.register("halved_xavier", "U(±sqrt(6/(fan_in+fan_out))) / 2", base.make,
                          base.std, base.defaults, after_draw=_halve_after_draw)
    assert initializers.is_data_dependent("halved_xavier")
    assert not initializers.is_data_dependent("xavier")
    spec = Spec(inits=("xavier", "halved_xavier"), dataset="digits", hidden=(8,))
    digits = data.load("digits")
    cells = [("halved_xavier", 0), ("xavier", 0)]
    built = starts.cell_starts(spec, cells, digits)
    monkeypatch.setitem(initializers._KERNELS, "halved_xavier", dataclasses.replace(
        initializers._KERNELS["halved_xavier"], after_draw=None))
    raw = starts.cell_starts(spec, cells, digits)
    np.testing.assert_array_equal(built.lsuv_passes[0], [10, 10])
    assert built.lsuv_passes[1] is None and raw.lsuv_passes == [None, None]
    for leaf_built, leaf_raw in zip(_leaves(built.params), _leaves(raw.params)):
        np.testing.assert_array_equal(leaf_built[0], leaf_raw[0] * 0.5)
        np.testing.assert_array_equal(leaf_built[1], leaf_raw[1])  # xavier: untouched


def _leaves(tree):
    import jax

    return jax.tree.leaves(tree)
