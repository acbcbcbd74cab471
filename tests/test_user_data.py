"""Datasets by path: FILE.npz and FILE.py:NAME train, `inspect` and `probe` take them, bad
ones are refused in one line before training, and the content is in the cache key."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from initbench import data, user_data
from initbench.cli import app
from initbench.errors import InitbenchError

FAST = ["--epochs", "1", "--hidden", "8", "--batch-size", "50"]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def arrays(num_train=120, num_test=40, shape=(6,), seed=0):
    """A tiny 3-class problem: inputs `shape` per example, labels from the first feature."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num_train + num_test, *shape)).astype(np.float32)
    y = np.digitize(x.reshape(len(x), -1)[:, 0], [-0.5, 0.5]).astype(np.int64)
    return {"x_train": x[:num_train], "y_train": y[:num_train],
            "x_test": x[num_train:], "y_test": y[num_train:]}


def save(path: Path, **changes) -> Path:
    values = {**arrays(), **changes}
    np.savez(path, **{k: v for k, v in values.items() if v is not None})
    return path


FACTORY = '''
import numpy as np

def make():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(100, 4, 4, 1)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(np.int64)
    return {"x_train": x[:80], "y_train": y[:80], "x_test": x[80:], "y_test": y[80:]}

def broken():
    raise RuntimeError("no data today")

def wrong():
    return 42
'''


def test_npz_and_function_datasets_train(tmp_path):
    npz = save(tmp_path / "tiny.npz")
    (tmp_path / "mydata.py").write_text(FACTORY)
    for dataset, shape, classes in ((npz, [6], 3), (f"{tmp_path / 'mydata.py'}:make", [4, 4, 1], 2)):
        out = tmp_path / f"run-{classes}"
        result = invoke("compare", "--inits", "xavier,he_normal", "--seeds", "2", "--dataset",
                        dataset, *FAST, "--out", out, "--quiet")
        assert result.exit_code == 0, result.output
        document = json.loads((out / "spec.json").read_text())
        assert document["spec"]["dataset"] == str(dataset)
        assert document["data_shape"] == shape
        assert document["num_train"] == (120 if classes == 3 else 80)
        curves = (out / "curves.csv").read_text().splitlines()
        assert len(curves) == 1 + 2 * 2 * 2


def test_arrays_become_a_dataset_with_the_class_count_inferred():
    images = arrays(shape=(3, 3, 2))
    dataset = data.Dataset(**user_data.check_arrays("x.npz", images))
    assert dataset.image_shape == (3, 3, 2) and dataset.x_train.shape == (120, 18)
    assert dataset.num_classes == 3 and dataset.y_train.dtype == np.int32
    assert dataset.x_train.dtype == np.float32
    np.testing.assert_array_equal(dataset.x_test, images["x_test"].reshape(40, 18))
    # the count is the largest label + 1, so a class absent from training still has its logit
    gap = {**arrays(), "y_train": np.where(arrays()["y_train"] == 1, 3, arrays()["y_train"])}
    assert data.Dataset(**user_data.check_arrays("x.npz", gap)).num_classes == 4
    with_val = data.Dataset(**user_data.check_arrays("x.npz", {**arrays(), "x_val": arrays()["x_test"],
                                                               "y_val": arrays()["y_test"]}))
    assert with_val.x_val.shape == (40, 6)


def test_editing_the_file_changes_the_fingerprint_and_retrains(tmp_path):
    npz = save(tmp_path / "d.npz")
    args = ["run", "--init", "xavier", "--seeds", "1", "--dataset", npz, *FAST]
    first = invoke(*args, "--out", tmp_path / "a", "--json")
    again = invoke(*args, "--out", tmp_path / "b", "--json")
    x = arrays()["x_train"].copy()
    x[0, 0] += 1.0  # one number of the file changed
    save(npz, x_train=x)
    edited = invoke(*args, "--out", tmp_path / "c", "--json")
    metas = [json.loads(r.stdout)["meta"] for r in (first, again, edited)]
    assert [m["cells_trained"] for m in metas] == [1, 0, 1]
    assert metas[0]["data_fingerprint"] == metas[1]["data_fingerprint"] != metas[2]["data_fingerprint"]


def test_inspect_and_probe_take_datasets_by_path(tmp_path):
    npz = save(tmp_path / "d.npz")
    (tmp_path / "mydata.py").write_text(FACTORY)
    card = invoke("inspect", "--dataset", npz, "--hidden", "8", "--init", "he_normal")
    assert card.exit_code == 0, card.output
    assert "6x8" in card.stdout and "8x3" in card.stdout  # 6 features in, 3 classes out
    conv = invoke("inspect", "--dataset", f"{tmp_path / 'mydata.py'}:make", "--model", "cnn",
                  "--init", "he_normal")
    assert conv.exit_code == 0, conv.output
    assert "3x3x1x8" in conv.stdout and "4x4x1" in conv.stdout  # the images keep their shape
    probed = invoke("probe", "--dataset", f"{tmp_path / 'mydata.py'}:make", "--inits", "xavier",
                    "--seeds", "1", "--hidden", "8x2", "--batch-size", "50", "--out",
                    tmp_path / "p", "--json")
    assert probed.exit_code == 0, probed.output
    assert json.loads(probed.stdout)["spec"]["dataset"].endswith("mydata.py:make")


def _bad_cases(tmp: Path):
    x, y = arrays()["x_train"], arrays()["y_train"]
    (tmp / "garbage.npz").write_bytes(b"this is no zip file")
    (tmp / "mydata.py").write_text(FACTORY)
    objects = np.empty(120, dtype=object)
    objects[:] = [[1.0]] * 120
    return {
        "missing file": (tmp / "nope.npz", "no such file"),
        "unreadable file": (tmp / "garbage.npz", "cannot read it as a .npz file"),
        "pickled objects": (save(tmp / "obj.npz", x_train=objects), "cannot read it as plain arrays"),
        "missing array": (save(tmp / "m.npz", y_test=None), "no array y_test"),
        "misspelt array": (save(tmp / "s.npz", X_val=x), "Did you mean 'x_val'"),
        "3-D inputs": (save(tmp / "r.npz", x_train=x.reshape(120, 2, 3)), "expected images"),
        "text inputs": (save(tmp / "t.npz", x_train=x.astype(str)), "inputs must be real"),
        "float labels": (save(tmp / "f.npz", y_train=y.astype(float)), "labels must be integers"),
        "negative label": (save(tmp / "n.npz", y_train=y - 1), "holds the label -1"),
        "test label out of range": (save(tmp / "o.npz", y_test=np.full(40, 7)),
                                    "holds the label 7, but y_train's labels are 0..2"),
        "test label one past the classes": (save(tmp / "k.npz", y_test=np.full(40, 3)),
                                            "holds the label 3, but y_train's labels are 0..2"),
        "NaN": (save(tmp / "nan.npz", x_train=np.where(np.arange(720).reshape(120, 6) == 7,
                                                       np.nan, x)), "NaN or infinite"),
        "inf": (save(tmp / "inf.npz", x_test=np.full((40, 6), np.inf)), "NaN or infinite"),
        "empty split": (save(tmp / "e.npz", x_test=np.zeros((0, 6)), y_test=np.zeros(0, int)),
                        "x_test is empty"),
        "lengths differ": (save(tmp / "l.npz", y_train=y[:100]), "has 100 labels"),
        "shapes differ": (save(tmp / "w.npz", x_test=np.zeros((40, 5))), "they must match"),
        "one class": (save(tmp / "c.npz", y_train=np.zeros(120, int), y_test=np.zeros(40, int)),
                      "at least 2 are needed"),
        "x_val alone": (save(tmp / "v.npz", x_val=x), "give both or neither"),
        "function raises": (f"{tmp / 'mydata.py'}:broken", "broken() raised RuntimeError"),
        "function returns no arrays": (f"{tmp / 'mydata.py'}:wrong", "returned int"),
        "no such function": (f"{tmp / 'mydata.py'}:mkae", "Did you mean 'make'"),
        "no such module": ("no_such_module_here:make", "cannot import"),
    }


def test_bad_datasets_are_refused_in_one_line_before_training(tmp_path):
    cases = _bad_cases(tmp_path)
    assert len(cases) >= 10
    for case, (dataset, message) in cases.items():
        out = tmp_path / "out"
        result = invoke("run", "--init", "xavier", "--seeds", "1", "--dataset", dataset, *FAST,
                        "--out", out)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2, (case, result.output)
        assert lines[-1].startswith("error: ") and message in result.output, (case, result.output)
        assert sum(line.startswith("error:") for line in lines) == 1, case
        assert "Traceback" not in result.output, case
        assert not out.exists(), case
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # nothing trained


def test_data_load_dispatches_paths_only():
    assert user_data.is_path("a.npz") and user_data.is_path("pkg.mod:make")
    assert not user_data.is_path("mnist-5k") and not user_data.is_path("emnist/digits")
    with pytest.raises(InitbenchError, match="unknown dataset 'mnsit'"):
        data.load("mnsit")


def test_a_files_own_validation_split_is_used_when_one_is_needed(tmp_path):
    from initbench.spec import Spec

    val = arrays(seed=5)
    npz = save(tmp_path / "v.npz", x_val=val["x_test"], y_val=val["y_test"])
    tuned, _ = data.load_data(Spec(dataset=str(npz), lr=(0.01, 0.1)))  # a split is used
    np.testing.assert_array_equal(tuned.x_val, val["x_test"])
    assert len(tuned.x_train) == 120  # nothing carved out of x_train
    plain, _ = data.load_data(Spec(dataset=str(npz)))
    assert plain.x_val is None and plain.y_val is None
    without, _ = data.load_data(Spec(dataset=str(save(tmp_path / "w.npz"))))
    assert data.fingerprint(plain) == data.fingerprint(without)
