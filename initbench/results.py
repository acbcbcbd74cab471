"""The only module that reads and writes run folders and the cell cache.

A run folder holds `spec.json` (every setting, command line, versions, device),
`curves.csv` (long form, one row per (init, seed, epoch)) and `summary.csv` (one row per
initializer). Files are written to a temporary name and renamed, so they appear whole or
not at all.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from initbench.errors import InitbenchError
from initbench.safeio import write_atomic
from initbench.spec import Spec

METRICS = ("train_loss", "test_loss", "test_accuracy")
CURVE_COLUMNS = ("dataset", "init", "bias_init", "seed", "epoch", *METRICS, "diverged")
# A `--data-seeds K > 1` run's curves.csv has this column after `seed` (absent when K = 1).
DATA_SEED_COLUMN = "data_seed"
# With a validation split (`Spec.val_fraction`) every cell also records these, per epoch.
VAL_METRICS = ("val_loss", "val_accuracy")
# curves.csv's learning-rate column, after `bias_init` (absent in folders from before it).
LR_COLUMN = "lr"


def metric_names(spec: Spec) -> tuple[str, ...]:
    """The per-epoch metrics of `spec`'s cells: METRICS, then VAL_METRICS with a split."""
    return METRICS + (VAL_METRICS if spec.val_fraction is not None else ())


@dataclass
class RunResult:
    """A finished grid. `metrics[name]` is [num_inits, num_slots, num_epochs + 1] (epoch 0 =
    before the first step); NaN from a cell's first diverged epoch on. A slot is a seed, or
    under `--data-seeds K > 1` a (seed, data order) pair, seed-major (`slots`).

    With several learning rates (`spec.multi_lr`) the grid is [num_inits, num_lrs,
    num_slots, num_epochs + 1]: `at_lr(lr)` is the ordinary single-rate result of one rate,
    and `summary.tuned_result` the one of each initializer at its chosen rate, so every
    statistic, table and figure works on [init, seed, epoch] as before."""

    spec: Spec
    metrics: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)
    layer_metrics: dict[str, np.ndarray] = field(default_factory=dict)  # [init, seed, epoch, layer]
    labels: tuple[str, ...] | None = None  # row names when they are not spec.inits (merge_runs)
    summary: list = field(default_factory=list)  # summary.SummaryRow, ranked, once computed
    # Several rates: each initializer at its chosen rate (`summary.tuned_result`) and the
    # summary rows of every (init, lr), once computed.
    tuned: RunResult | None = None
    per_rate: list = field(default_factory=list)

    @property
    def view(self) -> RunResult:
        """What tables and figures show: the tuned result of a multi-rate run, else itself."""
        return self.tuned if self.tuned is not None else self

    @property
    def inits(self) -> list[str]:
        return list(self.labels if self.labels is not None else self.spec.inits)

    @property
    def seeds(self) -> list[int]:
        return list(self.spec.seeds)

    @property
    def slots(self) -> list[tuple[int, int]]:
        """(seed, data order) of every index of the seed axis (data order 0 when K = 1)."""
        return self.spec.slots

    @property
    def dataset(self) -> str:
        return self.spec.dataset or "?"

    @property
    def multi_lr(self) -> bool:
        """True when the metrics hold an lr axis ([init, lr, slot, epoch])."""
        return self.spec.multi_lr and self.metrics["test_loss"].ndim == 4

    def at_lr(self, lr: float) -> RunResult:
        """The single-rate result of rate `lr` of a multi-rate grid ([init, slot, epoch])."""
        index = self.spec.lr.index(lr)
        return RunResult(self.spec.at_lr(lr), {k: v[:, index] for k, v in self.metrics.items()},
                         dict(self.meta),
                         {k: v[:, index] for k, v in self.layer_metrics.items()})

    @property
    def diverged(self) -> np.ndarray:
        """[init, seed, epoch] bool: the cell had diverged by that epoch."""
        return ~np.isfinite(self.metrics["train_loss"]) | ~np.isfinite(self.metrics["test_loss"])


# ------------------------------------------------------------------ atomic writes


def new_run_folder(command: str) -> Path:
    """A new, empty folder results/<command>-<timestamp>[-N], created atomically (`mkdir`), so
    two runs started in the same second never share it."""
    import time

    from initbench import safeio

    return safeio.reserve_folder(Path("results"), f"{command}-{time.strftime('%Y%m%d-%H%M%S')}")


def check_writable(folder: Path, needed_bytes: int = 0, option: str = "--out") -> Path:
    """Fail (before any training) if `folder` could not be written as a whole, or its disk
    lacks `needed_bytes`; returns the folder to write (a symbolic link's target). Creates
    nothing that stays."""
    from initbench import safeio

    safeio.check_out_name(folder, option)
    folder = safeio.resolve_out(folder, option)
    safeio.probe_folder(folder, needed_bytes, option)
    return folder


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
    """Long-form rows of curves.csv in [init, lr, seed(, data_seed), epoch] order."""
    if result.multi_lr:
        return [row for lr in result.spec.lr for row in curve_rows(result.at_lr(lr))]
    diverged = result.diverged
    crossed = result.spec.data_seeds > 1
    names = metric_names(result.spec)
    rows = []
    for i, init in enumerate(result.inits):
        for s, (seed, d) in enumerate(result.slots):
            for epoch in range(result.spec.epochs + 1):
                row = {"dataset": result.dataset, "init": init, "bias_init": result.spec.bias_init,
                       LR_COLUMN: result.spec.lr[0],
                       "seed": seed, **({DATA_SEED_COLUMN: d} if crossed else {}),
                       "epoch": epoch, "diverged": int(diverged[i, s, epoch])}
                for name in names:
                    row[name] = float(result.metrics[name][i, s, epoch])
                rows.append(row)
    return rows


def layer_rows(result: RunResult) -> list[dict]:
    """Long-form rows of layers.csv: one per (init, seed(, data_seed), epoch, layer)."""
    if not result.layer_metrics:
        return []
    names = sorted(result.layer_metrics)
    shape = result.layer_metrics[names[0]].shape
    crossed = result.spec.data_seeds > 1
    rows = []
    for i, init in enumerate(result.inits):
        for s, (seed, d) in enumerate(result.slots):
            for epoch in range(shape[2]):
                for layer in range(shape[3]):
                    row = {"dataset": result.dataset, "init": init, "seed": seed,
                           **({DATA_SEED_COLUMN: d} if crossed else {}),
                           "epoch": epoch, "layer": layer}
                    for name in names:
                        row[name] = float(result.layer_metrics[name][i, s, epoch, layer])
                    rows.append(row)
    return rows


RUN_FILES = ("spec.json", "curves.csv", "summary.csv", "layers.csv", "curves.png",
             "pairs.csv", "pairs.png", "plan.csv", "tuned.csv", "lr.png",
             "curves.partial.csv")  # the last: `live.PARTIAL_CURVES`, while a run trains


def write_run(folder: Path, result: RunResult, summary_rows: list, figure: bytes | None = None,
              files: dict[str, str | bytes] | None = None) -> None:
    """Write a whole run folder: curves.csv, layers.csv (if tracked), summary.csv (one row
    per `summary_rows` dataclass, its fields as columns), spec.json, curves.png (`figure`)
    and `files` ({name: content}, e.g. pairs.csv and pairs.png of a `--pairs all` run).

    The folder is assembled beside `folder`, then renamed over it (`safeio.write_folder`),
    so a failure leaves the old folder or the whole new one."""
    from initbench import safeio

    folder = safeio.resolve_out(Path(folder))
    out = {"curves.csv": csv_text(curve_rows(result), curve_columns(result.spec))}
    rows = layer_rows(result)
    if rows:
        out["layers.csv"] = csv_text(rows, list(rows[0]))
    columns = [f.name for f in dataclasses.fields(summary_rows[0])]
    out["summary.csv"] = csv_text([dataclasses.asdict(row) for row in summary_rows], columns)
    document = {"spec": result.spec.to_dict(), "training_key": result.spec.training_key(),
                **result.meta}
    out["spec.json"] = json.dumps(document, indent=2, default=str) + "\n"
    if figure is not None:
        out["curves.png"] = figure
    out.update(files or {})
    encoded = {name: data.encode() if isinstance(data, str) else data for name, data in out.items()}
    try:
        safeio.write_folder(folder, encoded, replaceable=RUN_FILES)
    except OSError as err:
        raise InitbenchError(safeio.describe_os_error(err) if err.filename else
                             f"cannot write {folder}: {err.strerror or err}. Finished cells are "
                             "cached; the same command resumes once this is fixed.") from None


def write_folder_with(folder: Path, write_fn, replaceable: tuple[str, ...] = ()) -> None:
    """Let `write_fn(staging_folder)` write files into a temporary folder, then make `folder`
    hold exactly those (`safeio.write_folder`); InitbenchError naming the path on failure."""
    import shutil

    from initbench import safeio

    folder = safeio.resolve_out(Path(folder))
    try:
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name[:100]}.build-"))
        try:
            write_fn(staging)
            files = {p.name: p.read_bytes() for p in staging.iterdir() if p.is_file()}
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        safeio.write_folder(folder, files, replaceable)
    except OSError as err:
        raise InitbenchError(f"cannot write {err.filename or folder}: "
                             f"{err.strerror or err}.") from None


def check_replaces(folder: Path, spec: Spec) -> list[list[int]] | None:
    """Refuse to write `spec`'s run over `folder` if that would lose anything.

    `folder` may be new, empty, or a run of the same training setting whose (initializer,
    seed) cells are all among `spec`'s (the same grid, or a superset: its cells come back
    from the cache). A run of other settings, a subset of its cells, or a folder of other
    files is refused with one line: a run folder never loses results.

    Returns the seed sets the run in `folder` was looked at with (its `seed_looks`, else its
    seeds), oldest first, so that a run continuing it counts as another look; None for a new
    or empty folder.
    """
    from initbench import initializers

    folder = Path(folder)
    # curves.partial.csv alone: what a killed run left while training (`live`)
    if not folder.is_dir() or not any(p.name != "curves.partial.csv" for p in folder.iterdir()):
        return None
    spec_path = folder / "spec.json"
    if not spec_path.is_file():
        raise InitbenchError(f"--out {folder} already holds files and is not an initbench run; "
                             "choose a new or empty folder.")
    try:
        old, document = _read_spec(spec_path)
    except InitbenchError as err:
        raise InitbenchError(f"--out {folder}: {err} Choose another folder.") from None
    if document.get("training_key") != spec.training_key() or old.training_key() != spec.training_key():
        raise InitbenchError(
            f"--out {folder} holds a run with different settings; choose another folder "
            "(results are never overwritten by a different experiment)."
        )
    new_cells = {(initializers.canonical(i), s) for i in spec.inits for s in spec.seeds}
    dropped = [(i, s) for i in old.inits for s in old.seeds
               if (initializers.canonical(i), s) not in new_cells]
    if dropped:
        inits = list(spec.inits) + [i for i in old.inits if initializers.canonical(i) not in
                                    {initializers.canonical(n) for n in spec.inits}]
        seeds = sorted(set(spec.seeds) | set(old.seeds))
        example = ", ".join(f"{i} seed {s}" for i, s in dropped[:3])
        raise InitbenchError(
            f"--out {folder} holds {len(dropped)} cell{'s' * (len(dropped) != 1)} of the same "
            f"setting that this run leaves out ({example}{', ...' if len(dropped) > 3 else ''}); "
            "a run folder never loses results: run the union (compare --inits "
            f"{','.join(inits)} --seeds {_seed_list(seeds)}; cached cells are reused) or "
            "choose another folder."
        )
    looks = document.get("seed_looks") or [sorted(old.seeds)]
    return [sorted(int(s) for s in look) for look in looks]


def _seed_list(seeds: list[int]) -> str:
    if len(seeds) > 1 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def estimate_run_bytes(spec: Spec, num_params: int = 0, max_cells_per_chunk: int = 128) -> int:
    """A generous estimate of the bytes a run writes: its folder (twice, while the new one
    replaces the old), the cached cells and one chunk's checkpoint (state of
    `num_params` parameters per cell, three copies with Adam's moments)."""
    num_cells = len(spec.inits) * len(spec.seeds)
    num_layers = (len(spec.hidden) + 1) if spec.track_layers else 0
    num_rows = num_cells * (spec.epochs + 1)
    folder = num_rows * (160 + 120 * num_layers) + 400_000  # CSV rows, summary, spec, figure
    cache = num_rows * 8 * (3 + 2 * num_layers) + num_cells * 2_000
    checkpoint = min(num_cells, max_cells_per_chunk) * num_params * 4 * 3
    return 2 * folder + cache + checkpoint


def curve_columns(spec: Spec, with_lr: bool = True) -> tuple[str, ...]:
    """The columns of curves.csv: `lr` after `bias_init` (`with_lr`: folders from before it
    lack it), `data_seed` after `seed` only when `spec.data_seeds > 1`, and the validation
    metrics before `diverged` with a validation split."""
    columns = list(CURVE_COLUMNS)
    if with_lr:
        columns.insert(columns.index("bias_init") + 1, LR_COLUMN)
    if spec.data_seeds != 1:
        columns.insert(columns.index("seed") + 1, DATA_SEED_COLUMN)
    if spec.val_fraction is not None:
        at = columns.index("diverged")
        columns[at:at] = VAL_METRICS
    return tuple(columns)


def _slot_index(spec: Spec, row: dict) -> int:
    """The seed-axis index of a curves/layers row (no data_seed column: data order 0)."""
    seed, d = int(row["seed"]), int(row.get(DATA_SEED_COLUMN) or 0)
    if not 0 <= d < spec.data_seeds or seed not in spec.seeds:
        raise KeyError(seed)
    return spec.seeds.index(seed) * spec.data_seeds + d


def read_run(folder: Path) -> RunResult:
    """Load a run folder written by `write_run`; InitbenchError if it is not a whole run."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InitbenchError(f"{folder} is not a folder.")
    spec_path, curves_path = folder / "spec.json", folder / "curves.csv"
    if not spec_path.exists() or not curves_path.exists():
        raise InitbenchError(f"{folder} is not an initbench run (no spec.json or curves.csv).")
    spec, document = _read_spec(spec_path)
    metrics = _read_curves(curves_path, spec)
    meta = {k: v for k, v in document.items() if k not in ("spec", "training_key")}
    result = RunResult(spec, metrics, meta)
    layers_path = folder / "layers.csv"
    if layers_path.exists():
        result.layer_metrics = _read_layers(layers_path, spec)
    return result


def _read_spec(path: Path) -> tuple[Spec, dict]:
    """(Spec, whole document) of a spec.json; InitbenchError naming the file for anything a
    hand edit or a damaged disk can do to it."""
    try:
        text = path.read_bytes().decode("utf-8-sig")  # an editor's byte-order mark is no error
        document = json.loads(text)
    except OSError as err:
        raise InitbenchError(f"{path} cannot be read: {err.strerror or err}.") from None
    except UnicodeDecodeError as err:
        raise InitbenchError(f"{path} is corrupted: not UTF-8 text (byte {err.start}).") from None
    except (json.JSONDecodeError, RecursionError) as err:
        raise InitbenchError(f"{path} is corrupted: not JSON ({err}).") from None
    if not isinstance(document, dict) or not isinstance(document.get("spec"), dict):
        raise InitbenchError(f"{path} is corrupted: no \"spec\" object with the run's settings.")
    try:
        spec = Spec.from_dict(document["spec"])
    except InitbenchError as err:
        raise InitbenchError(f"{path} is corrupted: {err}") from None
    except (TypeError, ValueError, AttributeError) as err:
        raise InitbenchError(f"{path} is corrupted: a setting of the wrong type ({err}).") from None
    if spec.dataset is not None and not isinstance(spec.dataset, str):
        raise InitbenchError(f"{path} is corrupted: dataset {spec.dataset!r} is not a name.")
    return spec, document


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict]:
    try:
        # utf-8-sig: a CSV saved by a spreadsheet starts with a byte-order mark, which
        # would otherwise become part of the first column's name
        with open(path, newline="", encoding="utf-8-sig") as handle:
            text = handle.read()
        rows = list(csv.DictReader(io.StringIO(text)))
    except (OSError, csv.Error, UnicodeDecodeError) as err:
        raise InitbenchError(f"{path} cannot be read: {err}.") from None
    if text and not text.endswith("\n"):
        # initbench ends every row with a newline: a cut-off last row may still parse
        # (a number cut short is still a number), so refuse it here.
        raise InitbenchError(f"{path} is truncated: its last line is incomplete.")
    if not rows:
        raise InitbenchError(f"{path} is empty or truncated.")
    missing = [c for c in required if c not in rows[0]]
    if missing:
        raise InitbenchError(f"{path} is corrupted: missing columns {', '.join(missing)}.")
    for line, row in enumerate(rows, start=2):
        if None in row or None in row.values():  # more or fewer fields than the header
            raise InitbenchError(f"{path} is corrupted at line {line}: {len(row) - (None in row)}"
                                 f" columns where the header has {len(rows[0])}.")
    return rows


def _check_rows(path: Path, rows: list[dict], expected: int,
                key_columns: tuple[str, ...] = ("init", "seed", "epoch")) -> None:
    """Refuse a CSV with more or fewer rows than its spec.json implies, before allocating;
    a repeated row is named by its line."""
    if len(rows) > expected:
        seen: dict[tuple, int] = {}
        for line, row in enumerate(rows, start=2):
            key = tuple(row[c].strip() for c in key_columns)
            if key in seen:
                raise InitbenchError(
                    f"{path} is corrupted at line {line}: a second row for "
                    f"{', '.join(f'{c} {v}' for c, v in zip(key_columns, key))} "
                    f"(first at line {seen[key]}).")
            seen[key] = line
        raise InitbenchError(f"{path} is corrupted: {len(rows)} rows where spec.json implies "
                             f"{expected} (duplicated or foreign rows).")
    if len(rows) < expected:
        raise InitbenchError(f"{path} is truncated: {len(rows)} rows where spec.json implies "
                             f"{expected}; {expected - len(rows)} (init, seed, epoch) rows are "
                             "missing.")


def _read_curves(path: Path, spec: Spec) -> dict[str, np.ndarray]:
    """[init, slot, epoch] metrics of curves.csv (slot: seed, or (seed, data order) under
    --data-seeds). Every row must appear exactly once; a cell is masked (NaN) from its first
    diverged epoch on (a non-finite loss or a `diverged` flag), as when it was trained."""
    from initbench import stats

    rows = _read_csv(path, curve_columns(spec, with_lr=spec.multi_lr))
    columns = curve_columns(spec, with_lr=LR_COLUMN in rows[0])
    names = metric_names(spec)
    rates = (len(spec.lr),) if spec.multi_lr else ()
    shape = (len(spec.inits), *rates, len(spec.slots), spec.epochs + 1)
    _check_rows(path, rows, int(np.prod(shape)),
                tuple(c for c in ("init", LR_COLUMN, "seed", DATA_SEED_COLUMN, "epoch")
                      if c in columns))
    lr_index = {float(np.float32(lr)): k for k, lr in enumerate(spec.lr)}
    metrics = {name: np.full(shape, np.nan) for name in names}
    flagged = np.zeros(shape, bool)
    seen = np.zeros(shape, bool)
    init_index = {name: i for i, name in enumerate(spec.inits)}
    for line, row in enumerate(rows, start=2):
        try:
            i, s = init_index[row["init"]], _slot_index(spec, row)
            if rates:
                i = (i, lr_index[float(np.float32(float(row[LR_COLUMN])))])
            epoch = int(row["epoch"])
            i = i if rates else (i,)
            s = (*i, s)
            if not 0 <= epoch <= spec.epochs:
                raise InitbenchError(f"{path} is corrupted at line {line}: epoch {epoch} is "
                                     f"outside 0..{spec.epochs}.")
            if seen[(*s, epoch)]:
                raise InitbenchError(
                    f"{path} is corrupted at line {line}: a second row for init "
                    f"{row['init']}, seed {row['seed']}, epoch {epoch}."
                )
            for name in names:
                metrics[name][(*s, epoch)] = float(row[name])
            flagged[(*s, epoch)] = row["diverged"].strip() not in ("0", "", "False", "false")
            seen[(*s, epoch)] = True
        except (KeyError, ValueError, TypeError, IndexError):
            raise InitbenchError(
                f"{path} is corrupted at line {line}: a row that does not match spec.json."
            ) from None
    if not seen.all():
        raise InitbenchError(
            f"{path} is truncated: {int((~seen).sum())} of {seen.size} (init, seed, epoch) "
            "rows are missing."
        )
    for name in ("train_loss", "test_loss"):  # a flagged epoch counts as diverged
        metrics[name] = np.where(flagged, np.nan, metrics[name])
    first = stats.first_diverged_epoch(*(metrics[m] for m in METRICS))
    return {name: stats.mask_diverged(values, first) for name, values in metrics.items()}


def _int_or(text, default: int) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return default


def _read_layers(path: Path, spec: Spec) -> dict[str, np.ndarray]:
    rows = _read_csv(path, ("init", "seed", "epoch", "layer"))
    names = [c for c in rows[0]
             if c not in ("dataset", "init", "seed", DATA_SEED_COLUMN, "epoch", "layer")]
    num_layers = len(spec.hidden) + 1
    if spec.model != "mlp":  # one row per drawn layer of the network
        num_layers = 1 + max((_int_or(row.get("layer"), -1) for row in rows), default=-1)
    shape = (len(spec.inits), len(spec.slots), spec.epochs + 1, num_layers)
    _check_rows(path, rows, int(np.prod(shape)),
                tuple(c for c in ("init", "seed", DATA_SEED_COLUMN, "epoch", "layer")
                      if c in rows[0]))
    out = {name: np.full(shape, np.nan) for name in names}
    seen = np.zeros(shape, bool)
    init_index = {name: i for i, name in enumerate(spec.inits)}
    for line, row in enumerate(rows, start=2):
        try:
            idx = (init_index[row["init"]], _slot_index(spec, row), int(row["epoch"]),
                   int(row["layer"]))
            if not (0 <= idx[2] <= spec.epochs and 0 <= idx[3] < num_layers) or seen[idx]:
                raise ValueError
            seen[idx] = True
            for name in names:
                out[name][idx] = float(row[name])
        except (KeyError, ValueError, TypeError, IndexError):
            raise InitbenchError(f"{path} is corrupted at line {line}: a row that does not match "
                                 "spec.json, out of range or repeated.") from None
    return out


# ------------------------------------------------------------------ cell cache


# The version of the training program (train.py, model.py, initializers.py, lsuv.py) in the
# cache key: bump it whenever a change there alters any cell's numbers, so no cached cell of
# the old program is ever reused.
TRAINING_CODE_VERSION = 3  # 2: CPU blocks of one cell; 3: data as program arguments
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
    """The content hash of everything that changes a cell's numbers.

    The training settings (`Spec.training_key`), the data actually used (`data.fingerprint`
    of its arrays, not its name), the platform and device kind, the cells per compiled block,
    the jax and jaxlib versions and `TRAINING_CODE_VERSION`; for a non-MLP model also
    `networks.fingerprint` (the built-in's version, or the user factory's source and lowered
    computation).
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
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _cell_path(root: Path, spec: Spec, canonical_init: str, seed: int, data_seed: int = 0,
               key: str | None = None) -> Path:
    # A cell's numbers do not depend on how many data orders its run has: every K shares
    # the K = 1 folder, and data order 0 is today's file (so `--data-seeds` reuses it).
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


# ------------------------------------------------------------------ merging runs


def merge_runs(runs: list[RunResult], names: list[str] | None = None,
               allow_mixed: bool = False) -> RunResult:
    """One grid from several runs (`names` label them in messages; default run 1, run 2, ...).

    Runs of the same training setting (equal `training_key`) are pooled: their (init, seed)
    cells must be disjoint and together fill an init x seed grid (seeds sorted, inits in order
    of appearance). Runs of different settings are refused unless `allow_mixed`; then each
    setting is pooled on its own and the settings are put side by side, never pooled: every
    row label gets the settings that differ (e.g. `xavier lr=0.1`), and every setting must
    cover the same seeds and the same number of epochs. A mixed result has `labels` and
    cannot be written as a run folder.
    """
    if not runs:
        raise ValueError("merge_runs needs at least one run")
    names = list(names) if names is not None else [f"run {k + 1}" for k in range(len(runs))]
    crossed = [name for name, run in zip(names, runs) if run.spec.data_seeds > 1]
    if len(runs) > 1 and crossed:
        raise InitbenchError(f"{crossed[0]} has several data orders (--data-seeds); such runs "
                             "cannot be merged yet.")
    tuned = [name for name, run in zip(names, runs) if run.multi_lr]
    if len(runs) > 1 and tuned:
        raise InitbenchError(f"{tuned[0]} has several learning rates (--lr list); such runs "
                             "cannot be merged yet: rerun the union of its seeds (cached cells "
                             "are reused).")
    _check_same_data(runs, names)
    groups: dict[str, list[int]] = {}
    for k, run in enumerate(runs):
        groups.setdefault(run.spec.training_key(), []).append(k)
    pooled = [_pool([runs[k] for k in ks], [names[k] for k in ks]) for ks in groups.values()]
    if len(pooled) == 1:
        return pooled[0]
    firsts = [names[ks[0]] for ks in groups.values()]
    differing = _differing_settings([p.spec for p in pooled])
    if not allow_mixed:
        field_name, a, b = _first_difference(pooled[0].spec, pooled[1].spec)
        raise InitbenchError(
            f"{firsts[0]} and {firsts[1]} have different training settings ({field_name} "
            f"{a} vs {b}); only runs of one setting are merged (pass --allow-mixed to show "
            "them side by side)."
        )
    return _side_by_side(pooled, firsts, differing)


def _pool(runs: list[RunResult], names: list[str]) -> RunResult:
    """Unite runs of one training setting; duplicate or missing cells are an error."""
    from initbench import initializers

    if len(runs) == 1:
        return runs[0]
    spelling: dict[str, str] = {}  # canonical name -> first spelling seen
    where: dict[tuple[str, int], tuple[int, int, int]] = {}
    for k, run in enumerate(runs):
        for i, init in enumerate(run.inits):
            canon = initializers.canonical(init)
            spelling.setdefault(canon, init)
            for s, seed in enumerate(run.seeds):
                if (canon, seed) in where:
                    _check_same_cell(runs, names, where[(canon, seed)], (k, i, s),
                                     f"{spelling[canon]} seed {seed}")
                    continue  # bitwise the same cell: the first run's copy is kept
                where[(canon, seed)] = (k, i, s)
    canons = list(spelling)
    seeds = sorted({seed for _, seed in where})
    for canon in canons:
        for seed in seeds:
            if (canon, seed) not in where:
                raise InitbenchError(
                    f"cannot merge: no run holds {spelling[canon]} seed {seed}; merged runs must "
                    "give every initializer the same seeds."
                )
    first = runs[0]
    shape = (len(canons), len(seeds), first.spec.epochs + 1)
    metrics = {name: np.empty(shape) for name in METRICS}
    layer_names = set(first.layer_metrics)
    if any(set(run.layer_metrics) != layer_names for run in runs):
        layer_names = set()  # only some runs tracked layers: keep none rather than a partial grid
    layer_metrics = {
        name: np.empty(shape + first.layer_metrics[name].shape[3:]) for name in layer_names
    }
    for i, canon in enumerate(canons):
        for s, seed in enumerate(seeds):
            k, ki, ks = where[(canon, seed)]
            for name in METRICS:
                metrics[name][i, s] = runs[k].metrics[name][ki, ks]
            for name in layer_names:
                layer_metrics[name][i, s] = runs[k].layer_metrics[name][ki, ks]
    spec = first.spec.replace(inits=tuple(spelling[c] for c in canons), seeds=tuple(seeds))
    meta = {key: value for key, value in first.meta.items()
            if key not in ("cells_trained", "cells_cached", "seconds", "timings", "command")}
    meta["merged_from"] = [
        {"run": name, "inits": run.inits, "seeds": run.seeds,
         "command": run.meta.get("command")} for name, run in zip(names, runs)
    ]
    return RunResult(spec, metrics, meta, layer_metrics)


def _check_same_cell(runs: list[RunResult], names: list[str], first: tuple[int, int, int],
                     second: tuple[int, int, int], cell: str) -> None:
    """InitbenchError unless two runs' copies of one cell are bitwise equal (NaN equal to
    NaN), naming the first metric and epoch where they differ."""
    (k1, i1, s1), (k2, i2, s2) = first, second
    for metric in METRICS:
        a, b = runs[k1].metrics[metric][i1, s1], runs[k2].metrics[metric][i2, s2]
        if a.shape != b.shape:
            raise InitbenchError(f"{names[k1]} and {names[k2]} both hold {cell} with different "
                                 f"numbers of epochs ({a.shape[-1] - 1} vs {b.shape[-1] - 1}).")
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        if not same.all():
            epoch = int(np.argmin(same))
            raise InitbenchError(
                f"{names[k1]} and {names[k2]} both hold {cell} with different numbers "
                f"({metric} at epoch {epoch}: {a[epoch]!r} vs {b[epoch]!r}); a cell is merged "
                "only when its copies are bitwise equal.")


def _first_difference(a: Spec, b: Spec) -> tuple[str, str, str]:
    """(setting, value in a, value in b) of the first training setting (in `training_key`'s
    order, then data orders, validation split, model) in which `a` and `b` differ.

    Compared as attributes, not as `to_dict` entries: a default left out of one spec.json
    (`val_fraction`, `data_seeds`) still differs from the other's value."""
    from initbench.spec import _TRAINING_FIELDS

    for name in (*_TRAINING_FIELDS, "data_seeds", "val_fraction", "model"):
        value_a, value_b = getattr(a, name), getattr(b, name)
        if value_a != value_b:
            return name, _setting_text(value_a), _setting_text(value_b)
    raise ValueError("the specs have the same training settings")


def _check_same_data(runs: list[RunResult], names: list[str]) -> None:
    """InitbenchError naming the first two runs whose data (the arrays' fingerprint in
    spec.json) or user model (its computation's fingerprint) differ. A run folder written
    before the data fingerprint was recorded is not compared (nothing to compare with)."""
    for what, get in (("data", lambda run: run.meta.get("data_fingerprint")),
                      ("model", lambda run: (run.meta.get("model") or {}).get("fingerprint")
                       if isinstance(run.meta.get("model"), dict) else None)):
        seen: tuple[str, str] | None = None
        for name, run in zip(names, runs):
            value = get(run)
            if not isinstance(value, str):
                continue
            if seen is None:
                seen = (name, value)
            elif value != seen[1]:
                dataset = runs[0].spec.dataset
                kind = (f"different data under the name {dataset} (fingerprints "
                        if what == "data" else "different networks (model fingerprints ")
                raise InitbenchError(
                    f"{seen[0]} and {name} were trained on {kind}{seen[1][:12]} vs "
                    f"{value[:12]}); runs are merged only when they saw the same "
                    f"{'data' if what == 'data' else 'network'}.")


def _differing_settings(specs: list[Spec]) -> list[str]:
    """The training settings (spec fields other than inits and seeds) that differ."""
    dicts = [spec.to_dict() for spec in specs]
    return [f for f in dicts[0] if f not in ("inits", "seeds")
            and any(d[f] != dicts[0][f] for d in dicts)]


def _setting_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return "-".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _side_by_side(pooled: list[RunResult], names: list[str], differing: list[str]) -> RunResult:
    """Runs of different settings as one grid whose rows are labelled `init setting=value`."""
    first = pooled[0]
    for name, run in zip(names[1:], pooled[1:]):
        if run.spec.epochs != first.spec.epochs:
            raise InitbenchError(
                f"cannot show {names[0]} and {name} side by side: {first.spec.epochs} vs "
                f"{run.spec.epochs} epochs."
            )
        if sorted(run.seeds) != sorted(first.seeds):
            raise InitbenchError(
                f"cannot show {names[0]} and {name} side by side: their seeds differ "
                "(paired comparisons need the same seeds in every setting)."
            )
    labels, metrics = [], {name: [] for name in METRICS}
    for run in pooled:
        settings = run.spec.to_dict()
        suffix = " ".join(f"{f}={_setting_text(settings[f])}" for f in differing)
        labels.extend(f"{init} {suffix}" for init in run.inits)
        order = [run.seeds.index(seed) for seed in first.seeds]
        for name in METRICS:
            metrics[name].append(run.metrics[name][:, order])
    meta = {key: value for key, value in first.meta.items()
            if key not in ("cells_trained", "cells_cached", "seconds", "timings", "command",
                            "baseline")}
    meta["mixed_settings"] = {f: [_setting_text(run.spec.to_dict()[f]) for run in pooled]
                              for f in differing}
    meta["merged_from"] = [
        {"run": name, "training_key": run.spec.training_key(), "inits": run.inits,
         "seeds": run.seeds} for name, run in zip(names, pooled)
    ]
    return RunResult(first.spec, {k: np.concatenate(v) for k, v in metrics.items()}, meta,
                     labels=tuple(labels))


# The files commands write into a run (or probe) folder: reading it back needs them, or
# they describe it. No user-named output may replace one of them. plan.csv is not one: it
# is `plan --out`'s own output, derived from the others, and may be written again.
_OWN_FILES = (frozenset(RUN_FILES) - {"plan.csv"}) | {"probe.csv", "probe.json", "probe.png"}


def check_output_path(path: Path, figure_of: Path | None = None) -> None:
    """InitbenchError if `path` (links followed) is one of a run folder's own files.

    `figure_of`: the one run folder a figure is drawn from; its own `curves.png` may be drawn
    again (`plot RUN` rewrites RUN/curves.png), no other run's file may be."""
    target = Path(path).resolve()
    folder = target.parent
    if target.name not in _OWN_FILES or not (folder / "spec.json").is_file():
        return
    if (figure_of is not None and target.name == "curves.png"
            and Path(figure_of).resolve() == folder):
        return
    raise InitbenchError(f"--out {path} is the file {target.name} of the run folder {folder}; "
                         "writing it would overwrite the run's own file: choose another name.")


def write_output(path: Path, data: str | bytes, figure_of: Path | None = None) -> None:
    """Write a user-named output file atomically; InitbenchError (nothing written) if it can't
    or if it is a run folder's own file (`check_output_path`)."""
    path = Path(path)
    if path.is_dir():
        raise InitbenchError(f"--out {path} is a folder; give a file name.")
    check_output_path(path, figure_of)
    try:
        write_atomic(path, data)
    except OSError as err:
        raise InitbenchError(f"cannot write --out {path}: {err.strerror or err}.") from None


def open_runs(folders: list[Path], allow_mixed: bool = False) -> RunResult:
    """Read one run folder, or several and merge them (see `merge_runs`)."""
    folders = [Path(f) for f in folders]
    if not folders:
        raise InitbenchError("no run folder given.")
    seen: dict[Path, Path] = {}
    for folder in folders:
        resolved = folder.resolve()
        if resolved in seen:
            raise InitbenchError(f"run folder {folder} is given twice.")
        seen[resolved] = folder
    runs = [read_run(folder) for folder in folders]
    if len(runs) == 1:
        return runs[0]
    return merge_runs(runs, [str(f) for f in folders], allow_mixed)
