"""Merging runs: pool runs of one training setting, or put settings side by side.
"""

from __future__ import annotations

import numpy as np

from initbench.errors import InitbenchError
from initbench.results import METRICS, RunResult
from initbench.spec import Spec

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
