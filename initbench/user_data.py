"""Datasets by path: `--dataset FILE.npz` or a function `FILE.py:NAME` / `package.module:NAME`.

Either gives the arrays `x_train, y_train, x_test, y_test` and optionally `x_val, y_val`
(a function returns them as a dict, or as a tuple of 4 or 6 in that order). Inputs are
images [N, H, W, C] or features [N, D], any real dtype, finite, used as given (scale them
yourself); labels are integers 0..K-1 with K, the class count, inferred from the training
labels. Every check runs before anything trains and fails with one `InitbenchError` line
naming the array and the fix. The run's cache key holds `data.fingerprint` of the arrays, so
editing the file retrains.
"""

from __future__ import annotations

from pathlib import Path

from initbench import user_code
from initbench.errors import InitbenchError

REQUIRED = ("x_train", "y_train", "x_test", "y_test")
OPTIONAL = ("x_val", "y_val")
MIN_CLASSES = 2
MAX_CLASSES = 100_000  # a label beyond this is a mistake (an id, not a class index)


def is_path(name: str | None) -> bool:
    """Whether `--dataset name` names a file or a function rather than a registered dataset."""
    return isinstance(name, str) and (name.endswith(".npz") or ":" in name)


def load(name: str) -> dict:
    """The checked arrays of `name` (FILE.npz, FILE.py:NAME or package.module:NAME) as the
    fields of a `data.Dataset` (`check_arrays`)."""
    arrays = _read_npz(name) if name.endswith(".npz") else _call_function(name)
    return check_arrays(name, arrays)


def _read_npz(name: str) -> dict:
    import zipfile

    import numpy as np

    path = Path(name)
    if not path.is_file():
        raise InitbenchError(f"--dataset {name}: no such file.")
    try:
        if not zipfile.is_zipfile(path):  # np.load would try it as .npy or a pickle
            raise InitbenchError(f"--dataset {name}: cannot read it as a .npz file (not a zip "
                                 "archive); write it with numpy.savez.")
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as err:  # object arrays need pickle: refused, never executed
        raise InitbenchError(f"--dataset {name}: cannot read it as plain arrays ({err}); save "
                             "numeric arrays with numpy.savez.") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise InitbenchError(f"--dataset {name}: cannot read it as a .npz file "
                             f"({user_code.one_line(err)}).") from None


def _call_function(name: str) -> dict:
    where, _, attr = name.rpartition(":")
    if not where or not attr.isidentifier():
        raise InitbenchError(f"--dataset {name}: expected FILE.npz, FILE.py:NAME or "
                             "package.module:NAME.")
    module = _import(name, where)
    function = getattr(module, attr, None)
    if function is None or not callable(function):
        from initbench.errors import unknown_name

        choices = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        raise InitbenchError(f"--dataset {name}: {unknown_name(f'function in {where!r}', attr, choices)}")
    try:
        returned = function()
    except Exception as err:
        raise InitbenchError(f"--dataset {name}: {attr}() raised "
                             f"{user_code.one_line(err)}") from None
    if isinstance(returned, dict):
        return dict(returned)
    if isinstance(returned, (tuple, list)) and len(returned) in (4, 6):
        return dict(zip(REQUIRED + OPTIONAL, returned))
    raise InitbenchError(f"--dataset {name}: {attr}() returned {type(returned).__name__}; return a "
                         "dict with x_train, y_train, x_test, y_test (and optionally x_val, "
                         "y_val), or a tuple of 4 or 6 arrays in that order.")


def _import(name: str, where: str):
    if user_code.is_file(where) and not Path(where).is_file():
        raise InitbenchError(f"--dataset {name}: no such file '{where}'.")
    return user_code.import_module(f"--dataset {name}", where, "initbench_data_")


def check_arrays(name: str, arrays: dict) -> dict:
    """Check `arrays` (REQUIRED, optionally OPTIONAL) and return the fields of a
    `data.Dataset`: inputs float32 flattened to [N, D] with `image_shape` the per-example
    shape, labels int32, `num_classes` = the largest training label + 1."""
    import numpy as np

    from initbench.errors import unknown_name

    where = f"--dataset {name}"
    unknown = sorted(set(arrays) - set(REQUIRED + OPTIONAL))
    if unknown:
        name_error = unknown_name("array", unknown[0], REQUIRED + OPTIONAL)
        if unknown[0].lower() in REQUIRED + OPTIONAL:  # difflib's hint is case-sensitive
            name_error = InitbenchError(f"unknown array '{unknown[0]}'. Did you mean "
                                        f"'{unknown[0].lower()}'? Names are lower case.")
        raise InitbenchError(f"{where}: {name_error}")
    missing = [key for key in REQUIRED if key not in arrays]
    if missing:
        raise InitbenchError(f"{where}: no array {', '.join(missing)} (needed: "
                             f"{', '.join(REQUIRED)}; optional: {', '.join(OPTIONAL)}).")
    if ("x_val" in arrays) != ("y_val" in arrays):
        raise InitbenchError(f"{where}: x_val and y_val come together; give both or neither.")
    splits = [s for s in ("train", "test", "val") if f"x_{s}" in arrays]
    xs, ys = {}, {}
    for split in splits:
        x, y = (np.asarray(arrays[f"{k}_{split}"]) for k in ("x", "y"))
        if x.dtype == object or not (np.issubdtype(x.dtype, np.integer)
                                     or np.issubdtype(x.dtype, np.floating)):
            raise InitbenchError(f"{where}: x_{split} has dtype {x.dtype}; inputs must be real "
                                 "numbers (integer or floating point).")
        if x.ndim not in (2, 4):
            raise InitbenchError(f"{where}: x_{split} has shape {x.shape}; expected images "
                                 "[N, H, W, C] or features [N, D] (for grey images [N, H, W] "
                                 "add a channel axis: x[..., None]).")
        if len(x) == 0:
            raise InitbenchError(f"{where}: x_{split} is empty (0 examples).")
        if y.ndim != 1:
            raise InitbenchError(f"{where}: y_{split} has shape {y.shape}; labels are one "
                                 "integer per example, shape [N].")
        if len(y) != len(x):
            raise InitbenchError(f"{where}: x_{split} has {len(x)} examples but y_{split} has "
                                 f"{len(y)} labels.")
        if not np.issubdtype(y.dtype, np.integer) or y.dtype == bool:
            raise InitbenchError(f"{where}: y_{split} has dtype {y.dtype}; labels must be "
                                 "integers 0..K-1 (class indices, not one-hot or floats).")
        if y.min() < 0:
            raise InitbenchError(f"{where}: y_{split} holds the label {int(y.min())}; labels "
                                 "must be 0..K-1.")
        x32 = x.astype(np.float32)
        if not np.isfinite(x32).all():
            bad = np.argwhere(~np.isfinite(x32).reshape(len(x32), -1))[0][0]
            raise InitbenchError(f"{where}: x_{split} holds NaN or infinite values (first at "
                                 f"example {bad}, or too large for float32).")
        xs[split], ys[split] = x32, y
    shape = xs["train"].shape[1:]
    for split in splits[1:]:
        if xs[split].shape[1:] != shape:
            raise InitbenchError(f"{where}: x_{split} examples have shape "
                                 f"{xs[split].shape[1:]}, x_train's {shape}; they must match.")
    num_classes = int(ys["train"].max()) + 1
    if num_classes > MAX_CLASSES:
        raise InitbenchError(f"{where}: y_train holds the label {num_classes - 1}; labels must "
                             f"be class indices 0..K-1 with K at most {MAX_CLASSES:,}.")
    if num_classes < MIN_CLASSES or len(np.unique(ys["train"])) < MIN_CLASSES:
        raise InitbenchError(f"{where}: y_train holds {len(np.unique(ys['train']))} class; at "
                             f"least {MIN_CLASSES} are needed to classify.")
    for split in splits[1:]:
        if ys[split].max() >= num_classes:
            raise InitbenchError(f"{where}: y_{split} holds the label {int(ys[split].max())}, "
                                 f"but y_train's labels are 0..{num_classes - 1}; every class "
                                 "must have training examples.")
    flat = {s: np.ascontiguousarray(xs[s].reshape(len(xs[s]), -1)) for s in splits}
    labels = {s: np.ascontiguousarray(ys[s].astype(np.int32)) for s in splits}
    return dict(name=name, x_train=flat["train"], y_train=labels["train"],
                x_test=flat["test"], y_test=labels["test"], num_classes=num_classes,
                image_shape=tuple(int(d) for d in shape), source="file",
                x_val=flat.get("val"), y_val=labels.get("val"))
