"""The only module that reads and writes run folders and the cell cache.

A run folder holds `spec.json` (every setting, command line, versions, device),
`curves.csv` (long form, one row per (init, seed, epoch)) and `summary.csv` (one row per
initializer). Files are written to a temporary name and renamed, so they appear whole or
not at all.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
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
# A `--data-seeds K > 1` run's curves.csv has this column after `seed` (absent when K = 1).
DATA_SEED_COLUMN = "data_seed"


@dataclass
class RunResult:
    """A finished grid. `metrics[name]` is [num_inits, num_slots, num_epochs + 1] (epoch 0 =
    before the first step); NaN from a cell's first diverged epoch on. A slot is a seed, or
    under `--data-seeds K > 1` a (seed, data order) pair, seed-major (`slots`)."""

    spec: Spec
    metrics: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)
    layer_metrics: dict[str, np.ndarray] = field(default_factory=dict)  # [init, seed, epoch, layer]
    labels: tuple[str, ...] | None = None  # row names when they are not spec.inits (merge_runs)
    summary: list = field(default_factory=list)  # summary.SummaryRow, ranked, once computed

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
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are for sharing
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def new_run_folder(command: str) -> Path:
    """A fresh folder name under results/: results/<command>-<timestamp>[-N]."""
    import time

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path("results") / f"{command}-{stamp}"
    suffix = 1
    while out.exists():
        suffix += 1
        out = Path("results") / f"{command}-{stamp}-{suffix}"
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable(folder: Path) -> None:
    """Fail (before any training) if `folder` could not be created or written; creates nothing."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing == folder and not folder.is_dir():
        raise InitbenchError(f"--out {folder} exists and is not a folder.")
    if not existing.is_dir():
        raise InitbenchError(f"cannot create --out {folder}: {existing} is not a folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InitbenchError(f"cannot write to --out {folder}: {existing} is not writable.")


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
    """Long-form rows of curves.csv in [init, seed(, data_seed), epoch] order."""
    diverged = result.diverged
    crossed = result.spec.data_seeds > 1
    rows = []
    for i, init in enumerate(result.inits):
        for s, (seed, d) in enumerate(result.slots):
            for epoch in range(result.spec.epochs + 1):
                row = {"dataset": result.dataset, "init": init, "bias_init": result.spec.bias_init,
                       "seed": seed, **({DATA_SEED_COLUMN: d} if crossed else {}),
                       "epoch": epoch, "diverged": int(diverged[i, s, epoch])}
                for name in METRICS:
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


def write_run(folder: Path, result: RunResult, summary_rows: list, figure: bytes | None = None,
              files: dict[str, str | bytes] | None = None) -> None:
    """Write a whole run folder: curves.csv, layers.csv (if tracked), summary.csv (one row
    per `summary_rows` dataclass, its fields as columns), spec.json, curves.png (`figure`)
    and `files` ({name: content}, e.g. pairs.csv and pairs.png of a `--pairs all` run)."""
    folder = Path(folder)
    write_atomic(folder / "curves.csv", csv_text(curve_rows(result), curve_columns(result.spec)))
    rows = layer_rows(result)
    if rows:
        write_atomic(folder / "layers.csv", csv_text(rows, list(rows[0])))
    columns = [f.name for f in dataclasses.fields(summary_rows[0])]
    write_atomic(folder / "summary.csv",
                 csv_text([dataclasses.asdict(row) for row in summary_rows], columns))
    document = {"spec": result.spec.to_dict(), "training_key": result.spec.training_key(),
                **result.meta}
    write_atomic(folder / "spec.json", json.dumps(document, indent=2, default=str) + "\n")
    if figure is not None:
        write_atomic(folder / "curves.png", figure)
    for name, content in (files or {}).items():
        write_atomic(folder / name, content)


def curve_columns(spec: Spec) -> tuple[str, ...]:
    """The columns of curves.csv: `data_seed` after `seed` only when `spec.data_seeds > 1`."""
    if spec.data_seeds == 1:
        return CURVE_COLUMNS
    at = CURVE_COLUMNS.index("seed") + 1
    return (*CURVE_COLUMNS[:at], DATA_SEED_COLUMN, *CURVE_COLUMNS[at:])


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
    return rows


def _read_curves(path: Path, spec: Spec) -> dict[str, np.ndarray]:
    rows = _read_csv(path, curve_columns(spec))
    shape = (len(spec.inits), len(spec.slots), spec.epochs + 1)
    metrics = {name: np.full(shape, np.nan) for name in METRICS}
    seen = np.zeros(shape, bool)
    init_index = {name: i for i, name in enumerate(spec.inits)}
    for line, row in enumerate(rows, start=2):
        try:
            i, s = init_index[row["init"]], _slot_index(spec, row)
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
    names = [c for c in rows[0]
             if c not in ("dataset", "init", "seed", DATA_SEED_COLUMN, "epoch", "layer")]
    num_layers = len(spec.hidden) + 1
    shape = (len(spec.inits), len(spec.slots), spec.epochs + 1, num_layers)
    out = {name: np.full(shape, np.nan) for name in names}
    init_index = {name: i for i, name in enumerate(spec.inits)}
    try:
        for row in rows:
            idx = (init_index[row["init"]], _slot_index(spec, row), int(row["epoch"]),
                   int(row["layer"]))
            for name in names:
                out[name][idx] = float(row[name])
    except (KeyError, ValueError, IndexError):
        raise InitbenchError(f"{path} is corrupted: a row that does not match spec.json.") from None
    return out


# ------------------------------------------------------------------ cell cache


def _cell_path(root: Path, spec: Spec, canonical_init: str, seed: int,
               data_seed: int = 0) -> Path:
    # A cell's numbers do not depend on how many data orders its run has: every K shares
    # the K = 1 folder, and data order 0 is today's file (so `--data-seeds` reuses it).
    name = f"{canonical_init}-seed{seed}" + (f"-data{data_seed}" if data_seed else "")
    return Path(root) / _cell_key(spec) / f"{name}.npz"


def _cell_key(spec: Spec) -> str:
    return spec.replace(data_seeds=1).training_key() if spec.data_seeds != 1 else spec.training_key()


def save_cell(root: Path, spec: Spec, canonical_init: str, seed: int,
              arrays: dict[str, np.ndarray], meta: dict, data_seed: int = 0) -> None:
    """Keep one finished cell's curves under the cache folder `root`, keyed by the full
    training setting's content hash (`data_seed`: its data order under `--data-seeds`)."""
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta, default=str)), **arrays)
    write_atomic(_cell_path(root, spec, canonical_init, seed, data_seed), buffer.getvalue())


def load_cell(root: Path, spec: Spec, canonical_init: str, seed: int,
              data_seed: int = 0) -> tuple[dict, dict] | None:
    """A cached cell's (arrays, meta) from the cache folder `root`, or None if absent or
    unreadable."""
    path = _cell_path(root, spec, canonical_init, seed, data_seed)
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


def checkpoint_path(root: Path, spec: Spec, cells_key: str) -> Path:
    """Where a chunk's mid-training state is kept between interruptions (under `root`)."""
    return Path(root) / _cell_key(spec) / f"checkpoint-{cells_key}.npz"


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
    groups: dict[str, list[int]] = {}
    for k, run in enumerate(runs):
        groups.setdefault(run.spec.training_key(), []).append(k)
    pooled = [_pool([runs[k] for k in ks], [names[k] for k in ks]) for ks in groups.values()]
    if len(pooled) == 1:
        return pooled[0]
    firsts = [names[ks[0]] for ks in groups.values()]
    differing = _differing_settings([p.spec for p in pooled])
    if not allow_mixed:
        a, b = pooled[0].spec.to_dict(), pooled[1].spec.to_dict()
        what = ", ".join(f"{f} {_setting_text(a[f])} vs {_setting_text(b[f])}"
                         for f in differing if a[f] != b[f])
        raise InitbenchError(
            f"{firsts[0]} and {firsts[1]} have different training settings ({what}); "
            "only runs of one setting are merged (pass --allow-mixed to show them side by side)."
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
                    other = names[where[(canon, seed)][0]]
                    raise InitbenchError(
                        f"{other} and {names[k]} both hold {spelling[canon]} seed {seed}; "
                        "a seed can be merged only once (rerun with other --seeds)."
                    )
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
            if key not in ("cells_trained", "cells_cached", "seconds", "command")}
    meta["merged_from"] = [
        {"run": name, "inits": run.inits, "seeds": run.seeds,
         "command": run.meta.get("command")} for name, run in zip(names, runs)
    ]
    return RunResult(spec, metrics, meta, layer_metrics)


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
            if key not in ("cells_trained", "cells_cached", "seconds", "command", "baseline")}
    meta["mixed_settings"] = {f: [_setting_text(run.spec.to_dict()[f]) for run in pooled]
                              for f in differing}
    meta["merged_from"] = [
        {"run": name, "training_key": run.spec.training_key(), "inits": run.inits,
         "seeds": run.seeds} for name, run in zip(names, pooled)
    ]
    return RunResult(first.spec, {k: np.concatenate(v) for k, v in metrics.items()}, meta,
                     labels=tuple(labels))


def write_output(path: Path, data: str | bytes) -> None:
    """Write a user-named output file atomically; InitbenchError (nothing written) if it can't."""
    path = Path(path)
    if path.is_dir():
        raise InitbenchError(f"--out {path} is a folder; give a file name.")
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
