"""The cell cache: the key of everything that changes a cell's numbers, finished cells and
chunk checkpoints, each written atomically; a damaged entry is set aside and retrained.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from initbench.errors import InitbenchError
from initbench.results import METRICS
from initbench.safeio import write_atomic
from initbench.spec import Spec

# ------------------------------------------------------------------ cell cache


# The version of the training program (train.py, model.py, initializers.py, lsuv.py) in the
# cache key: bump it whenever a change there alters any cell's numbers, so no cached cell of
# the old program is ever reused.
TRAINING_CODE_VERSION = 4  # 2: CPU blocks of one cell; 3: data as program arguments;
# 4: one network path for the MLP (its LSUV starts move by <= 1.8e-7, the CNN's per-layer
# gradient norms by one float32 step)
DAMAGED_SUFFIX = ".damaged"


def check_cache_writable(root: Path) -> None:
    """Fail before training if the cell cache `root` cannot be written (a file, read-only, ...)."""
    from initbench import safeio

    try:
        safeio.probe_folder(safeio.resolve_out(root, "the cell cache ($INITBENCH_CACHE)"),
                            option="the cell cache ($INITBENCH_CACHE)")
    except InitbenchError as err:
        raise InitbenchError(f"{err} Set $INITBENCH_CACHE to a writable folder.") from None


def cache_key(spec: Spec, dataset) -> str:
    """The content hash of everything that changes a cell's numbers: `cache_key_parts`."""
    return hashlib.sha256(json.dumps(cache_key_parts(spec, dataset),
                                     sort_keys=True).encode()).hexdigest()[:16]


def cache_key_parts(spec: Spec, dataset) -> dict:
    """What `cache_key` hashes.

    The training settings (`Spec.training_key`), the data actually used (`data.fingerprint`
    of its arrays, not its name), the platform and device kind, the cells per compiled block,
    the jax and jaxlib versions and `TRAINING_CODE_VERSION`; for a non-MLP model also
    `networks.fingerprint` (the built-in's version, or the user factory's source and lowered
    computation); and the image shape where the arrays do not imply it (`implied_image_shape`):
    the arrays are flat [N, D], and a convolution sees D features as the shape says.
    """
    import jax
    import jaxlib

    from initbench import data, networks, sharding

    device = jax.devices()[0]
    parts = {
        "training_key": _cell_key(spec), "data": data.fingerprint(dataset),
        "platform": device.platform, "device_kind": device.device_kind,
        "cells_per_block": sharding.cells_per_block(), "jax": jax.__version__,
        "jaxlib": jaxlib.__version__, "training_code": TRAINING_CODE_VERSION,
    }
    model = networks.fingerprint(spec, dataset.num_classes, dataset.image_shape)
    if model is not None:  # the MLP's keys never change
        parts["model"] = model
    shape = tuple(int(d) for d in dataset.image_shape)
    if shape != implied_image_shape(dataset.x_train.shape[1]):
        parts["image_shape"] = list(shape)  # absent where implied: existing keys stay
    return parts


def implied_image_shape(num_features: int) -> tuple[int, int, int] | None:
    """The image shape D flat features imply: a square of one channel (s, s, 1) when D = s²,
    else of three (s, s, 3) when D = 3s² (never both: √3 is irrational), else None. Every
    built-in dataset's shape is the one its D implies (28x28x1, 8x8x1, 32x32x3), so the keys
    cached before the shape was part of the key are the keys it has now."""
    for channels in (1, 3):
        side = math.isqrt(num_features // channels)
        if num_features % channels == 0 and side * side * channels == num_features:
            return (side, side, channels)
    return None


def _cell_path(root: Path, spec: Spec, canonical_init: str, seed: int, data_seed: int = 0,
               key: str | None = None) -> Path:
    # A cell's numbers do not depend on how many data orders its run has: every K shares
    # the K = 1 folder, and data order 0 is the file of a run without it (so `--data-seeds` reuses it).
    name = f"{canonical_init}-seed{seed}" + (f"-data{data_seed}" if data_seed else "")
    return Path(root) / (key or _cell_key(spec)) / f"{name}.npz"


def _cell_key(spec: Spec) -> str:
    """The training key of `spec`'s cells: that of its K = 1 run under `--data-seeds K`."""
    return spec.replace(data_seeds=1).training_key() if spec.data_seeds != 1 else spec.training_key()


def save_cell(root: Path, spec: Spec, canonical_init: str, seed: int,
              arrays: dict[str, np.ndarray], meta: dict, data_seed: int = 0,
              key: str | None = None) -> None:
    """Keep one finished cell's curves in the cache folder `root` under `key` (`cache_key`;
    default: the settings' hash); `data_seed` is its data order under `--data-seeds`."""
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta, default=str)), **arrays)
    path = _cell_path(root, spec, canonical_init, seed, data_seed, key)
    try:
        write_atomic(path, buffer.getvalue())
    except OSError as err:
        raise _cache_write_error(path, err) from None


def _cache_write_error(path: Path, err: OSError) -> InitbenchError:
    """The one line for a cell cache that cannot be written (a full disk, EIO): the path, and
    no claim that this run's cells are cached, since this one is not."""
    reason = err.strerror or str(err) or type(err).__name__
    return InitbenchError(
        f"cannot write the cell cache {path}: {reason}. This cell and those after it are not "
        "cached (cells saved before it are); free space or set $INITBENCH_CACHE, and the same "
        "command trains only what is missing.")


def load_cell(root: Path, spec: Spec, canonical_init: str, seed: int, data_seed: int = 0,
              key: str | None = None, notice=None) -> tuple[dict, dict] | None:
    """A cached cell's (arrays, meta) from the cache folder `root`, or None if absent. A
    damaged entry (truncated, empty, failing its zip CRC, wrong shapes) is set aside as
    `*.damaged`, with a one-line `notice(text)`, and None is returned, so the cell is
    trained again."""
    path = _cell_path(root, spec, canonical_init, seed, data_seed, key)
    if not path.exists():
        return None
    try:
        with np.load(path) as data:  # reading every member checks its CRC-32
            arrays = {k: data[k] for k in data.files if k != "meta"}
            meta = json.loads(str(data["meta"]))
        if any(arrays.get(m) is None or arrays[m].shape[:1] != (spec.epochs + 1,)
               for m in METRICS):
            raise ValueError("wrong shapes")
    except Exception as err:
        set_aside(path, f"{type(err).__name__}: {err}", notice)
        return None
    return arrays, meta


def set_aside(path: Path, reason: str, notice=None) -> None:
    """Rename a damaged cache file to `*.damaged` (kept for inspection) and say so."""
    target = path.with_name(path.name + DAMAGED_SUFFIX)
    try:
        os.replace(path, target)
        where = f"set aside as {target.name}"
    except OSError:
        where = "ignored"
    if notice is not None:
        first = reason.strip().splitlines()[0] if reason.strip() else "unreadable"
        notice(f"damaged cache file {path} ({first[:120]}) {where}; its cells are trained again.")


def checkpoint_path(root: Path, spec: Spec, cells_key: str, key: str | None = None) -> Path:
    """Where a chunk's mid-training state is kept between interruptions (under `root`)."""
    return Path(root) / (key or _cell_key(spec)) / f"checkpoint-{cells_key}.npz"


def save_checkpoint(path: Path, leaves: list[np.ndarray], epoch: int,
                    history: dict[str, np.ndarray]) -> None:
    """Atomically store a chunk's state leaves, its last finished epoch and its curves so far."""
    buffer = io.BytesIO()
    payload = {f"leaf_{i}": leaf for i, leaf in enumerate(leaves)}
    payload.update({f"history_{k}": v for k, v in history.items()})
    np.savez(buffer, epoch=np.array(epoch), num_leaves=np.array(len(leaves)), **payload)
    try:
        write_atomic(path, buffer.getvalue())
    except OSError as err:
        raise _cache_write_error(path, err) from None


def load_checkpoint(path: Path, notice=None, like: list | None = None
                    ) -> tuple[list[np.ndarray], int, dict[str, np.ndarray]] | None:
    """A chunk checkpoint's (leaves, epoch, history), or None if absent. A damaged one
    (truncated, empty, bad CRC, or leaves whose shapes are not `like`) is set aside
    with a `notice` and None is returned: the chunk starts from epoch 0."""
    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            leaves = [data[f"leaf_{i}"] for i in range(int(data["num_leaves"]))]
            history = {k[len("history_"):]: data[k] for k in data.files
                       if k.startswith("history_")}
            epoch = int(data["epoch"])
        if like is not None and [tuple(shape) for shape in like] != [a.shape for a in leaves]:
            raise ValueError("its state does not match this chunk")
        if epoch < 1 or any(len(v) != epoch + 1 for v in history.values()):
            raise ValueError(f"its curves do not match its epoch {epoch}")
    except Exception as err:
        set_aside(path, f"{type(err).__name__}: {err}", notice)
        return None
    return leaves, epoch, history


class EverySeconds:
    """Calls `action(*args)` from `maybe(*args)` when `period_s` seconds have passed since
    the last call (or the start): periodic work without patched constants."""

    def __init__(self, period_s: float, action: Callable, clock: Callable[[], float] = time.monotonic):
        self.period_s, self.action, self.clock = period_s, action, clock
        self.last = clock()

    def maybe(self, *args) -> None:
        if self.clock() - self.last >= self.period_s:
            self.action(*args)
            self.last = self.clock()


def chunk_key(padded_cells: list) -> str:
    """The name of a chunk's checkpoint: a hash of its padded cells, in order."""
    return hashlib.sha256(json.dumps(padded_cells).encode()).hexdigest()[:16]


class Checkpoints:
    """The epoch hook (`runner.EpochHook`) that keeps a chunk's state in the cell cache
    `root` every `every_s` seconds and when the run is interrupted, so an interrupted chunk
    resumes from its last checkpoint instead of epoch 0.

    With `resume=False` (--no-cache) a checkpoint is written but never read; a damaged one
    is set aside with a `notice` and the chunk starts over; a finished chunk's is deleted.
    Multi-process runs use none (every process would need it).
    """

    def __init__(self, root: Path, spec: Spec, key: str, every_s: float,
                 notice: Callable[[str], None] | None = None, resume: bool = True):
        self.root, self.spec, self.key, self.every_s = Path(root), spec, key, every_s
        self.notice, self.resume_allowed = notice, resume
        self.path: Path | None = None
        self.periodic: EverySeconds | None = None

    def resume(self, padded_cells: list, shapes: list[tuple[int, ...]]):
        """The chunk's saved (leaves, epoch, history), or None; starts the period."""
        self.path = checkpoint_path(self.root, self.spec, chunk_key(padded_cells), self.key)
        self.periodic = EverySeconds(self.every_s, self._save)
        return load_checkpoint(self.path, self.notice, shapes) if self.resume_allowed else None

    def after_epoch(self, epoch: int, snapshot: Callable, urgent: bool) -> None:
        if urgent:
            self._save(epoch, snapshot)
        else:
            self.periodic.maybe(epoch, snapshot)

    def finish(self) -> None:
        self.path.unlink(missing_ok=True)

    def _save(self, epoch: int, snapshot: Callable) -> None:
        leaves, history = snapshot()
        save_checkpoint(self.path, leaves, epoch, history)
