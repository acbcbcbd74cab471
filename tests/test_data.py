"""Tests for initbench.data: embedded sets, TFDS (mocked), offline failure, IDX import."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from initbench import data
from initbench.errors import InitbenchError


@pytest.fixture
def tfds_dir(tmp_path, monkeypatch):
    """An empty, not yet created TFDS data dir, with the network reported as down."""
    path = tmp_path / "tfds"
    monkeypatch.setenv("TFDS_DATA_DIR", str(path))
    monkeypatch.setattr(data, "network_available", lambda *args, **kwargs: False)
    return path


def write_idx(path, magic, array, gz=False):
    """Write `array` (uint8) as an IDX file with the given magic number."""
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if gz else open
    with opener(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())


def write_mnist_idx(directory, num_train=20, num_test=10, seed=0):
    """Write four small valid MNIST IDX files (images gzipped); return the arrays written."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, prefix, num in (("train", "train", num_train), ("test", "t10k", num_test)):
        images = rng.integers(0, 256, (num, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, num, dtype=np.uint8)
        write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", 2051, images, gz=True)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", 2049, labels)
        arrays[split] = (images, labels)
    return arrays


def test_import_is_lazy():
    code = (
        "import sys, initbench.data; "
        "print(sorted(m for m in ('numpy', 'sklearn', 'mlxtend', 'tensorflow', "
        "'tensorflow_datasets') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_names_and_info():
    assert data.names()[0] == data.DEFAULT_DATASET
    assert {"mnist", "mnist-5k", "digits", "fashion_mnist", "kmnist"} <= set(data.names())
    assert data.info("mnist-5k").num_train == 4_000
    assert data.info("cifar10").image_shape == (32, 32, 3)


def test_unknown_name_suggests_closest():
    with pytest.raises(InitbenchError, match="mnist-5k") as err:
        data.load("mnist5k")
    assert "Did you mean" in str(err.value)
    with pytest.raises(InitbenchError, match="fashion_mnist"):
        data.info("fashion-mnist")


def test_mnist_5k_is_stratified_and_deterministic():
    first, second = data.load("mnist-5k"), data.load("mnist-5k")
    assert first.x_train.shape == (4_000, 784) and first.x_test.shape == (1_000, 784)
    assert first.x_train.dtype == np.float32 and first.y_train.dtype == np.int32
    assert np.bincount(first.y_train).tolist() == [400] * 10
    assert np.bincount(first.y_test).tolist() == [100] * 10
    assert first.x_train.min() == 0.0 and first.x_train.max() == 1.0
    assert (first.name, first.source, first.num_classes) == ("mnist-5k", "embedded", 10)
    assert first.image_shape == (28, 28, 1)
    np.testing.assert_array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(first.y_test, second.y_test)


def test_mnist_5k_split_is_cached_and_a_bad_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    parsed = data.load("mnist-5k")  # parses the CSV, writes the cache
    (cache_file,) = (tmp_path / "initbench" / "datasets").glob("mnist-5k-*.npz")

    def no_parsing(*args, **kwargs):
        raise AssertionError("the CSV was parsed although the split is cached")

    monkeypatch.setattr(np, "loadtxt", no_parsing)
    cached = data.load("mnist-5k")
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(cached, name), getattr(parsed, name))
    cache_file.write_bytes(cache_file.read_bytes()[:1000])  # a cut-off cache file
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    rebuilt = data.load("mnist-5k")
    np.testing.assert_array_equal(rebuilt.x_train, parsed.x_train)
    assert cache_file.stat().st_size > 1000


def test_digits_split_is_cached_without_importing_scikit_learn(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    parsed = data.load("digits")  # scikit-learn's load_digits, then the cache is written
    assert list((tmp_path / "initbench" / "datasets").glob("digits-*.npz"))

    def no_loading():
        raise AssertionError("load_digits ran although the split is cached")

    monkeypatch.setattr(data, "_split_digits", no_loading)
    cached = data.load("digits")
    assert data.fingerprint(cached) == data.fingerprint(parsed)  # same cells, same cache keys
    code = "import sys\nfrom initbench import data\ndata.load('digits')\nprint('sklearn' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)}, timeout=120)
    assert done.stdout.strip() == "False", done.stderr[-2000:]


def test_digits_shapes_and_range():
    digits = data.load("digits")
    assert digits.x_train.shape == (1_437, 64) and digits.x_test.shape == (360, 64)
    assert digits.x_train.dtype == np.float32 and digits.y_test.dtype == np.int32
    assert digits.x_train.min() >= 0.0 and digits.x_train.max() == 1.0
    assert digits.image_shape == (8, 8, 1)
    assert set(np.unique(digits.y_test)) == set(range(10))


def test_embedded_sets_are_always_offline(tfds_dir):
    assert data.is_available_offline("mnist-5k") and data.is_available_offline("digits")
    assert not data.is_available_offline("mnist")


def test_tfds_data_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    assert data.tfds_data_dir() == tmp_path
    monkeypatch.delenv("TFDS_DATA_DIR")
    assert data.tfds_data_dir().name == "tensorflow_datasets"


@pytest.mark.real_network  # the real probe, not conftest's offline stub
def test_network_probe_is_real_and_fails_fast():
    import socket

    with socket.socket() as server:  # a listening local port: the probe opens it
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert data.network_available("127.0.0.1", server.getsockname()[1], timeout=2.0)
        port = server.getsockname()[1]
    start = time.perf_counter()
    assert not data.network_available("127.0.0.1", port, timeout=1.0)  # now closed: refused
    assert not data.network_available("no-such-host.invalid", 443, timeout=1.0)
    assert time.perf_counter() - start < 3.0


def test_tfds_mnist_with_mock_data(tfds_dir, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr(data, "network_available", lambda *args, **kwargs: True)
    with tfds.testing.mock_data(num_examples=12):
        mnist = data.load("mnist")
    assert mnist.x_train.shape == (12, 784) and mnist.x_test.shape == (12, 784)
    assert mnist.x_train.dtype == np.float32 and mnist.y_train.dtype == np.int32
    assert mnist.x_train.min() >= 0.0 and mnist.x_train.max() <= 1.0
    assert mnist.x_train.max() > 0.0
    assert (mnist.name, mnist.source, mnist.image_shape) == ("mnist", "tfds", (28, 28, 1))


def test_offline_mnist_fails_fast_with_both_ways_out(tfds_dir):
    start = time.perf_counter()
    with pytest.raises(InitbenchError) as err:
        data.load("mnist")
    assert time.perf_counter() - start < 5.0
    message = str(err.value)
    assert "initbench data import" in message and "mnist-5k" in message
    assert str(tfds_dir) in message and "\n" not in message
    assert not tfds_dir.exists()


def test_load_default_falls_back_offline(tfds_dir):
    dataset, notice = data.load_default()
    assert dataset.name == "mnist-5k"
    assert notice and "mnist-5k" in notice and str(tfds_dir) in notice
    assert "\n" not in notice


def test_import_idx_then_load_offline(tfds_dir, tmp_path):
    pytest.importorskip("tensorflow_datasets")
    arrays = write_mnist_idx(tmp_path / "idx")
    where = data.import_idx(tmp_path / "idx")
    assert where.is_dir() and tfds_dir in where.parents
    assert data.is_available_offline("mnist")
    mnist = data.load("mnist")
    assert (mnist.name, mnist.source, mnist.image_shape) == ("mnist", "imported", (28, 28, 1))
    images, labels = arrays["train"]
    np.testing.assert_array_equal(mnist.x_train, images.reshape(20, -1).astype(np.float32) / 255)
    np.testing.assert_array_equal(mnist.y_train, labels)
    images, labels = arrays["test"]
    np.testing.assert_array_equal(mnist.x_test, images.reshape(10, -1).astype(np.float32) / 255)
    np.testing.assert_array_equal(mnist.y_test, labels)
    default, notice = data.load_default()
    assert (default.source, notice) == ("imported", None)
    assert sorted(p.name for p in tfds_dir.iterdir()) == [data.IMPORTED_NAME]


def test_import_idx_again_replaces_the_earlier_import(tfds_dir, tmp_path):
    pytest.importorskip("tensorflow_datasets")
    write_mnist_idx(tmp_path / "first", seed=1)
    data.import_idx(tmp_path / "first")
    images, labels = write_mnist_idx(tmp_path / "second", num_train=12, num_test=6, seed=2)["test"]
    data.import_idx(tmp_path / "second")
    mnist = data.load("mnist")
    assert mnist.x_train.shape == (12, 784)
    np.testing.assert_array_equal(mnist.x_test, images.reshape(6, -1).astype(np.float32) / 255)
    np.testing.assert_array_equal(mnist.y_test, labels)
    assert sorted(p.name for p in tfds_dir.iterdir()) == [data.IMPORTED_NAME]


def corrupt_missing(directory):
    (directory / "t10k-labels-idx1-ubyte").unlink()


def corrupt_magic(directory):
    write_idx(directory / "train-labels-idx1-ubyte", 2051, np.zeros(20, np.uint8))


def corrupt_count(directory):
    write_idx(directory / "t10k-labels-idx1-ubyte", 2049, np.zeros(9, np.uint8))


def corrupt_truncated(directory):
    path = directory / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-1])


def corrupt_gzip(directory):
    (directory / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        (corrupt_missing, "missing MNIST file 't10k-labels-idx1-ubyte'"),
        (corrupt_magic, "magic number 2051"),
        (corrupt_count, "10 images but .* 9 labels"),
        (corrupt_truncated, "bytes but its header"),
        (corrupt_gzip, "cannot read IDX file"),
    ],
)
def test_import_idx_rejects_bad_files_and_writes_nothing(tfds_dir, tmp_path, corrupt, expected):
    write_mnist_idx(tmp_path / "idx")
    corrupt(tmp_path / "idx")
    with pytest.raises(InitbenchError, match=expected) as err:
        data.import_idx(tmp_path / "idx")
    assert "\n" not in str(err.value)
    assert not tfds_dir.exists()


def test_import_idx_rejects_missing_dir(tfds_dir, tmp_path):
    with pytest.raises(InitbenchError, match="does not exist"):
        data.import_idx(tmp_path / "nowhere")
    assert not tfds_dir.exists()


def test_load_default_without_tfds_says_how_to_install_it(tfds_dir, monkeypatch):
    """Without TensorFlow Datasets (a plain `pip install initbench`) the default run uses
    mnist-5k, names the extra to install in its one notice, and probes no network."""
    monkeypatch.setattr(data, "tfds_installed", lambda: False)
    monkeypatch.setattr(data, "network_available",
                        lambda *a, **k: pytest.fail("probed the network without TFDS"))
    dataset, notice = data.load_default()
    assert dataset.name == "mnist-5k"
    assert "pip install 'initbench[tfds]'" in notice and "\n" not in notice
