"""The only module that reads and writes run folders: their format, validation and the
replace guard.

A run folder holds `spec.json` (every setting, command line, versions, device),
`curves.csv` (long form, one row per (init, seed, epoch)) and `summary.csv` (one row per
initializer). Files are written to a temporary name and renamed, so they appear whole or
not at all. No user-named output may replace a run folder's own file. Imports no JAX.

Over 450 lines: the run-folder format is written and read (and validated row by row)
here, in one module, so the writer and the reader cannot drift apart.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

import numpy as np

from initbench.errors import InitbenchError
from initbench.merges import merge_runs
from initbench.results import LOSSES, METRICS, VAL_METRICS, RunResult, metric_names
from initbench.safeio import write_atomic
from initbench.spec import Spec, known_layer_count

CURVE_COLUMNS = ("dataset", "init", "bias_init", "seed", "epoch", *METRICS, "diverged")
# A `--data-seeds K > 1` run's curves.csv has this column after `seed` (absent when K = 1).
DATA_SEED_COLUMN = "data_seed"
# curves.csv's learning-rate column, after `bias_init` (absent in folders from before it).
LR_COLUMN = "lr"


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


def check_new_folder(folder: Path, option: str = "--out") -> Path:
    """Refuse a folder that is a file, a run folder or a folder holding files: what writes
    a new folder of its own (a merged run, an aggregate) never replaces anything. Returns
    the folder to write, as `check_writable`."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InitbenchError(f"{option} {folder} is a file; give a new or empty folder.")
    if (folder / "spec.json").exists():
        raise InitbenchError(f"{option} {folder} already holds a run; choose a new folder.")
    folder = check_writable(folder, option=option)
    if folder.is_dir() and any(folder.iterdir()):
        raise InitbenchError(f"{option} {folder} already holds files; choose a new or empty "
                             "folder.")
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


def write_run(folder: Path, result: RunResult, summary_rows: list[dict],
              figure: bytes | None = None, files: dict[str, str | bytes] | None = None) -> None:
    """Write a whole run folder: curves.csv, layers.csv (if tracked), summary.csv (one row
    per `summary_rows` dict, its keys as columns, in order: `RunSummary.csv_rows`),
    spec.json, curves.png (`figure`) and `files` ({name: content}, e.g. pairs.csv and
    pairs.png of a `--pairs all` run).

    The folder is assembled beside `folder`, then renamed over it (`safeio.write_folder`),
    so a failure leaves the old folder or the whole new one."""
    from initbench import safeio

    folder = safeio.resolve_out(Path(folder))
    out = {"curves.csv": csv_text(curve_rows(result), curve_columns(result.spec))}
    rows = layer_rows(result)
    if rows:
        out["layers.csv"] = csv_text(rows, list(rows[0]))
    out["summary.csv"] = csv_text(summary_rows, list(summary_rows[0]))
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
    _check_target(spec_path, meta.get("target"))
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


def _check_target(path: Path, target) -> None:
    """The recorded `--target` (a fraction: `spec.target_fraction` of the percent given) is
    null or an accuracy in (0, 1]; anything else is a hand edit, refused naming the file."""
    if target is None:
        return
    if (isinstance(target, bool) or not isinstance(target, (int, float))
            or not 0 < target <= 1):
        raise InitbenchError(f"{path} is corrupted: target {target!r} is not a test accuracy "
                             "in (0, 1].")


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
    init_index = _init_index(spec)
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
    for name in LOSSES:  # a flagged epoch counts as diverged
        metrics[name] = np.where(flagged, np.nan, metrics[name])
    first = stats.first_diverged_epoch(*(metrics[m] for m in METRICS))
    return {name: stats.mask_diverged(values, first) for name, values in metrics.items()}


def _init_index(spec: Spec) -> dict[str, int]:
    """Row name -> index in `spec.inits`; a folder written before --gain/--mode were part of
    the labels names the initializer without them (`Spec.extra["unfolded"]`)."""
    index = {name: i for i, name in enumerate(spec.inits)}
    for label, old in spec.extra.get("unfolded", {}).items():
        if label in index:
            index.setdefault(old, index[label])
    return index


def _int_or(text, default: int) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return default


def _read_layers(path: Path, spec: Spec) -> dict[str, np.ndarray]:
    rows = _read_csv(path, ("init", "seed", "epoch", "layer"))
    names = [c for c in rows[0]
             if c not in ("dataset", "init", "seed", DATA_SEED_COLUMN, "epoch", "layer")]
    num_layers = known_layer_count(spec)
    if num_layers is None:  # one row per drawn layer of the network, which the rows tell
        num_layers = 1 + max((_int_or(row.get("layer"), -1) for row in rows), default=-1)
    shape = (len(spec.inits), len(spec.slots), spec.epochs + 1, num_layers)
    _check_rows(path, rows, int(np.prod(shape)),
                tuple(c for c in ("init", "seed", DATA_SEED_COLUMN, "epoch", "layer")
                      if c in rows[0]))
    out = {name: np.full(shape, np.nan) for name in names}
    seen = np.zeros(shape, bool)
    init_index = _init_index(spec)
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
