"""The only module that reads and writes run folders and the cell cache.

A run folder holds `spec.json` (every setting, command line, versions, device),
`curves.csv` (long form, one row per (init, seed, epoch)) and `summary.csv` (one row per
initializer). Files are written to a temporary name and renamed, so they appear whole or
not at all.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from initbench.errors import InitbenchError
from initbench.spec import Spec

METRICS = ("train_loss", "test_loss", "test_accuracy")
CURVE_COLUMNS = ("dataset", "init", "bias_init", "seed", "epoch", *METRICS, "diverged")
CACHE_ENV = "INITBENCH_CACHE"


@dataclass
class RunResult:
    """A finished grid. `metrics[name]` is [num_inits, num_seeds, num_epochs + 1] (epoch 0 =
    before the first step); NaN from a cell's first diverged epoch on."""

    spec: Spec
    metrics: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)
    layer_metrics: dict[str, np.ndarray] = field(default_factory=dict)  # [init, seed, epoch, layer]

    @property
    def inits(self) -> list[str]:
        return list(self.spec.inits)

    @property
    def seeds(self) -> list[int]:
        return list(self.spec.seeds)

    @property
    def dataset(self) -> str:
        return self.spec.dataset or "?"

    @property
    def diverged(self) -> np.ndarray:
        """[init, seed, epoch] bool: the cell had diverged by that epoch."""
        return ~np.isfinite(self.metrics["train_loss"]) | ~np.isfinite(self.metrics["test_loss"])


# ------------------------------------------------------------------ atomic writes


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` to `path` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"newline": ""})) as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def check_writable(folder: Path) -> None:
    """Fail before any training if `folder` cannot be created or written."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InitbenchError(f"--out {folder} exists and is not a folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise InitbenchError(f"cannot write to --out {folder}: {err.strerror}.") from None


def csv_text(rows: list[dict], columns: list[str] | tuple[str, ...]) -> str:
    """Rows as CSV text with a header; floats written in full precision."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(v) for k, v in row.items()})
    return buffer.getvalue()


def _fmt(value):
    if isinstance(value, (float, np.floating)):
        return "nan" if not np.isfinite(value) else repr(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


# ------------------------------------------------------------------ run folders


def curve_rows(result: RunResult) -> list[dict]:
    """Long-form rows of curves.csv in [init, seed, epoch] order."""
    diverged = result.diverged
    rows = []
    for i, init in enumerate(result.inits):
        for s, seed in enumerate(result.seeds):
            for epoch in range(result.spec.epochs + 1):
                row = {"dataset": result.dataset, "init": init, "bias_init": result.spec.bias_init,
                       "seed": seed, "epoch": epoch, "diverged": int(diverged[i, s, epoch])}
                for name in METRICS:
                    row[name] = float(result.metrics[name][i, s, epoch])
                rows.append(row)
    return rows


def layer_rows(result: RunResult) -> list[dict]:
    """Long-form rows of layers.csv: one per (init, seed, epoch, layer)."""
    if not result.layer_metrics:
        return []
    names = sorted(result.layer_metrics)
    shape = result.layer_metrics[names[0]].shape
    rows = []
    for i, init in enumerate(result.inits):
        for s, seed in enumerate(result.seeds):
            for epoch in range(shape[2]):
                for layer in range(shape[3]):
                    row = {"dataset": result.dataset, "init": init, "seed": seed,
                           "epoch": epoch, "layer": layer}
                    for name in names:
                        row[name] = float(result.layer_metrics[name][i, s, epoch, layer])
                    rows.append(row)
    return rows


def write_run(folder: Path, result: RunResult, summary_rows: list[dict],
              summary_columns: list[str]) -> None:
    """Write spec.json, curves.csv, summary.csv (and layers.csv if tracked) into `folder`."""
    folder = Path(folder)
    write_atomic(folder / "curves.csv", csv_text(curve_rows(result), CURVE_COLUMNS))
    rows = layer_rows(result)
    if rows:
        write_atomic(folder / "layers.csv", csv_text(rows, list(rows[0])))
    write_atomic(folder / "summary.csv", csv_text(summary_rows, summary_columns))
    document = {"spec": result.spec.to_dict(), "training_key": result.spec.training_key(),
                **result.meta}
    write_atomic(folder / "spec.json", json.dumps(document, indent=2, default=str) + "\n")


def read_run(folder: Path) -> RunResult:
    """Load a run folder written by `write_run`; InitbenchError if it is not a whole run."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InitbenchError(f"{folder} is not a folder.")
    spec_path, curves_path = folder / "spec.json", folder / "curves.csv"
    if not spec_path.exists() or not curves_path.exists():
        raise InitbenchError(f"{folder} is not an initbench run (no spec.json or curves.csv).")
    try:
        document = json.loads(spec_path.read_text())
        spec = Spec.from_dict(document["spec"])
    except (json.JSONDecodeError, KeyError, TypeError, InitbenchError) as err:
        raise InitbenchError(f"{spec_path} is corrupted: {err}.") from None
    metrics = _read_curves(curves_path, spec)
    meta = {k: v for k, v in document.items() if k not in ("spec", "training_key")}
    result = RunResult(spec, metrics, meta)
    layers_path = folder / "layers.csv"
    if layers_path.exists():
        result.layer_metrics = _read_layers(layers_path, spec)
    return result


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict]:
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError) as err:
        raise InitbenchError(f"{path} cannot be read: {err}.") from None
    if not rows:
        raise InitbenchError(f"{path} is empty or truncated.")
    missing = [c for c in required if c not in rows[0]]
    if missing:
        raise InitbenchError(f"{path} is corrupted: missing columns {', '.join(missing)}.")
    return rows


def _read_curves(path: Path, spec: Spec) -> dict[str, np.ndarray]:
    rows = _read_csv(path, CURVE_COLUMNS)
    shape = (len(spec.inits), len(spec.seeds), spec.epochs + 1)
    metrics = {name: np.full(shape, np.nan) for name in METRICS}
    seen = np.zeros(shape, bool)
    init_index = {name: i for i, name in enumerate(spec.inits)}
    seed_index = {seed: s for s, seed in enumerate(spec.seeds)}
    for line, row in enumerate(rows, start=2):
        try:
            i, s = init_index[row["init"]], seed_index[int(row["seed"])]
            epoch = int(row["epoch"])
            for name in METRICS:
                metrics[name][i, s, epoch] = float(row[name])
            seen[i, s, epoch] = True
        except (KeyError, ValueError, TypeError, IndexError):
            raise InitbenchError(
                f"{path} is corrupted at line {line}: a row that does not match spec.json."
            ) from None
    if not seen.all():
        raise InitbenchError(
            f"{path} is truncated: {int((~seen).sum())} of {seen.size} (init, seed, epoch) "
            "rows are missing."
        )
    return metrics


def _read_layers(path: Path, spec: Spec) -> dict[str, np.ndarray]:
    rows = _read_csv(path, ("init", "seed", "epoch", "layer"))
    names = [c for c in rows[0] if c not in ("dataset", "init", "seed", "epoch", "layer")]
    num_layers = len(spec.hidden) + 1
    shape = (len(spec.inits), len(spec.seeds), spec.epochs + 1, num_layers)
    out = {name: np.full(shape, np.nan) for name in names}
    init_index = {name: i for i, name in enumerate(spec.inits)}
    seed_index = {seed: s for s, seed in enumerate(spec.seeds)}
    try:
        for row in rows:
            idx = (init_index[row["init"]], seed_index[int(row["seed"])], int(row["epoch"]),
                   int(row["layer"]))
            for name in names:
                out[name][idx] = float(row[name])
    except (KeyError, ValueError, IndexError):
        raise InitbenchError(f"{path} is corrupted: a row that does not match spec.json.") from None
    return out


# ------------------------------------------------------------------ cell cache


def cache_root() -> Path:
    """Where finished cells are kept: $INITBENCH_CACHE, else results/.cache."""
    return Path(os.environ.get(CACHE_ENV, "results/.cache"))


def _cell_path(spec: Spec, canonical_init: str, seed: int) -> Path:
    return cache_root() / spec.training_key() / f"{canonical_init}-seed{seed}.npz"


def save_cell(spec: Spec, canonical_init: str, seed: int, arrays: dict[str, np.ndarray],
              meta: dict) -> None:
    """Keep one finished cell's curves, keyed by the full training setting's content hash."""
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta, default=str)), **arrays)
    write_atomic(_cell_path(spec, canonical_init, seed), buffer.getvalue())


def load_cell(spec: Spec, canonical_init: str, seed: int) -> tuple[dict, dict] | None:
    """A cached cell's (arrays, meta), or None if absent or unreadable."""
    path = _cell_path(spec, canonical_init, seed)
    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files if k != "meta"}
            meta = json.loads(str(data["meta"]))
    except (OSError, ValueError, KeyError):
        return None  # a damaged cache entry is simply retrained
    if any(arrays.get(m) is None or arrays[m].shape[0] != spec.epochs + 1 for m in METRICS):
        return None
    return arrays, meta


def checkpoint_path(spec: Spec, cells_key: str) -> Path:
    """Where a chunk's mid-training state is kept between interruptions."""
    return cache_root() / spec.training_key() / f"checkpoint-{cells_key}.npz"


def save_checkpoint(path: Path, leaves: list[np.ndarray], epoch: int,
                    history: dict[str, np.ndarray]) -> None:
    """Atomically store a chunk's state leaves, its last finished epoch and its curves so far."""
    buffer = io.BytesIO()
    payload = {f"leaf_{i}": leaf for i, leaf in enumerate(leaves)}
    payload.update({f"history_{k}": v for k, v in history.items()})
    np.savez(buffer, epoch=np.array(epoch), num_leaves=np.array(len(leaves)), **payload)
    write_atomic(path, buffer.getvalue())


def load_checkpoint(path: Path) -> tuple[list[np.ndarray], int, dict[str, np.ndarray]] | None:
    """A chunk checkpoint's (leaves, epoch, history), or None if absent or unreadable."""
    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            leaves = [data[f"leaf_{i}"] for i in range(int(data["num_leaves"]))]
            history = {k[len("history_"):]: data[k] for k in data.files
                       if k.startswith("history_")}
            return leaves, int(data["epoch"]), history
    except (OSError, ValueError, KeyError):
        return None
