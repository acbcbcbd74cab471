"""The network at initialization, layer by layer, on a real batch (signal propagation).

For each cell (initializer, seed) and each dense layer, the statistics of
`initbench.diagnostics` (pre-activation and activation std, dead units, gradient std,
weight-gradient norm) on the first `batch_size` training examples. Arrays are laid out
[init, seed, layer]. The cells start exactly as training starts them (`starts.cell_starts`,
LSUV included) and run through the same `initbench.runner.Runner`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from initbench import runfolder, safeio
from initbench import spec as spec_lib
from initbench.diagnostics import BATCH_SIZE as DEFAULT_BATCH_SIZE
from initbench.diagnostics import STATS
from initbench.formatting import json_value
from initbench.runtime import Runtime
from initbench.spec import Spec, network_title

COLUMNS = ("init", "seed", "layer", *STATS)


@dataclass
class ProbeResult:
    """Statistics at init. `stats[name]` is [init, seed, layer] (layer L = logits);
    `lsuv_passes[init]` is [seed, layer] for data-dependent initializers."""

    spec: Spec
    stats: dict[str, np.ndarray]
    lsuv_passes: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def num_hidden(self) -> int:
        """Layers before the last (the MLP's hidden layers; for any network, its drawn
        layers but the last)."""
        return int(next(iter(self.stats.values())).shape[-1]) - 1


def run_probe(spec: Spec, data, runtime: Runtime,
              batch_size: int = DEFAULT_BATCH_SIZE) -> ProbeResult:
    """Probe every (init, seed) of `spec` at initialization on the first `batch_size`
    training examples of `data`, all cells in the runner's compiled blocks."""
    from initbench.data import check_batch_size
    from initbench.runner import Runner

    spec_lib.check_positive_int("batch-size", batch_size, spec_lib.MAX_INT32)  # as training's
    check_batch_size(data, batch_size)
    runner = Runner(spec, data, runtime)
    cells = [(init, seed) for init in spec.inits for seed in spec.seeds]
    state, passes = runner.init_state(runner.padded(cells))
    shape = (len(spec.inits), len(spec.seeds), -1)
    stats = {k: np.asarray(v[:len(cells)], np.float64).reshape(shape)
             for k, v in runner.cell_stats(state, batch_size).items()}
    num_seeds = len(spec.seeds)
    lsuv_passes = {init: np.stack(passes[i * num_seeds:(i + 1) * num_seeds])
                   for i, init in enumerate(spec.inits) if passes[i * num_seeds] is not None}
    return ProbeResult(spec, stats, lsuv_passes, {"num_examples": batch_size})


def probe_run(spec: Spec, out: Path, runtime: Runtime,
              batch_size: int = DEFAULT_BATCH_SIZE, reporter=None) -> ProbeResult:
    """Load the spec's dataset, probe it and write `out`/probe.csv, probe.png, probe.json;
    each phase is announced to `reporter` (`progress.Reporter`; default: silent)."""
    import json

    from initbench import progress
    from initbench.data import load_data

    reporter = reporter or progress.SilentReporter()
    out = runfolder.check_writable(Path(out))
    reporter.phase(f"loading {spec.dataset or 'the dataset'}")
    dataset, notice = load_data(spec)
    spec = spec.replace(dataset=dataset.name)
    from initbench import sharding

    sharding.check_fits(spec, dataset)
    from initbench import networks

    network = networks.check(spec, dataset.num_classes, dataset.image_shape, dataset.name)
    reporter.phase(f"drawing {len(spec.inits) * len(spec.seeds)} starting points and "
                   f"measuring every layer on {batch_size} examples")
    result = run_probe(spec, dataset, runtime, batch_size)
    result.meta["layers"] = network.layer_names()
    result.meta.update({"command": list(runtime.command), "dataset_notice": notice,
                        "num_features": int(dataset.x_train.shape[1]),
                        "num_classes": int(dataset.num_classes)})
    reporter.phase(f"drawing probe.png and writing {out}")
    runfolder.write_folder_with(out, lambda staging: (
        write_csv(staging / "probe.csv", result),
        plot(staging / "probe.png", result, title(result)),
        safeio.write_atomic(staging / "probe.json", json.dumps(
            document(result, str(out)), indent=2, default=str) + "\n"),
    ), replaceable=("probe.csv", "probe.png", "probe.json"))
    return result


def title(result: ProbeResult) -> str:
    """'mnist-5k · MLP 784-256x30-10 relu · at init, 1000 examples, 3 seeds' style line."""
    spec, meta = result.spec, result.meta
    widths = "-".join(str(w) for w in spec.hidden)
    if len(set(spec.hidden)) == 1 and len(spec.hidden) > 3:
        widths = f"{spec.hidden[0]}x{len(spec.hidden)}"
    net = f"{meta.get('num_features', '?')}-{widths}-{meta.get('num_classes', '?')}"
    arch = network_title(spec.model, f"{net} {spec.activation}")
    return (f"{spec.dataset} · {arch} · at init, "
            f"{meta.get('num_examples', '?')} examples, {len(spec.seeds)} seeds")


def document(result: ProbeResult, out: str | None = None) -> dict:
    """The probe.json / --json document: settings, LSUV passes, summary, per-layer means."""
    return {
        "out": out,
        "spec": result.spec.to_dict(),
        "meta": result.meta,
        "lsuv_passes": {init: {str(seed): passes[s].tolist()
                               for s, seed in enumerate(result.spec.seeds)}
                        for init, passes in result.lsuv_passes.items()},
        "summary": [{k: json_value(v) for k, v in row.items()} for row in summarize(result)],
        "mean_over_seeds": mean_over_seeds(result),
    }


def probe_rows(result: ProbeResult) -> list[dict]:
    """Long-form rows of probe.csv in [init, seed, layer] order."""
    rows = []
    for i, init in enumerate(result.spec.inits):
        for s, seed in enumerate(result.spec.seeds):
            for layer in range(result.num_hidden + 1):
                row = {"init": init, "seed": seed, "layer": layer}
                row.update({k: float(result.stats[k][i, s, layer]) for k in STATS})
                rows.append(row)
    return rows


def write_csv(path: Path, result: ProbeResult) -> None:
    """Write probe.csv (columns `COLUMNS`) atomically."""
    safeio.write_atomic(Path(path), runfolder.csv_text(probe_rows(result), COLUMNS))


def summarize(result: ProbeResult) -> list[dict]:
    """One row per init, means over seeds, over hidden layers 0..L-1 (first, middle, last).

    Keys: init, act_std_first/mid/last, act_ratio (last/first), dead_fraction_mean,
    dead_fraction_last, grad_std_first/last, grad_ratio (first/last: how much the
    back-propagated gradient shrinks on its way to the input), lsuv_max_passes (or None).
    """
    depth = result.num_hidden
    first, mid, last = 0, depth // 2, depth - 1
    rows = []
    for i, init in enumerate(result.spec.inits):
        act = result.stats["act_std"][i].mean(axis=0)
        grad = result.stats["grad_std"][i].mean(axis=0)
        dead = result.stats["dead_fraction"][i].mean(axis=0)
        passes = result.lsuv_passes.get(init)
        rows.append({
            "init": init,
            "act_std_first": float(act[first]), "act_std_mid": float(act[mid]),
            "act_std_last": float(act[last]), "act_ratio": _ratio(act[last], act[first]),
            "dead_fraction_mean": float(dead[:depth].mean()),
            "dead_fraction_last": float(dead[last]),
            "grad_std_first": float(grad[first]), "grad_std_last": float(grad[last]),
            "grad_ratio": _ratio(grad[first], grad[last]),
            "lsuv_max_passes": None if passes is None else int(passes.max()),
        })
    return rows


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 and math.isfinite(a / b) else math.nan


def mean_over_seeds(result: ProbeResult) -> dict[str, dict[str, list[float]]]:
    """{stat: {init: [L + 1] mean over seeds}}, JSON-ready (NaN -> None)."""
    return {k: {init: [None if not math.isfinite(v) else float(v)
                       for v in result.stats[k][i].mean(axis=0)]
                for i, init in enumerate(result.spec.inits)}
            for k in STATS}


def plot(path: Path, result: ProbeResult, title: str | None = None) -> None:
    """A PNG: act std, grad std (log y) and dead fraction per hidden layer; one line per
    init (mean over seeds), a band from the min to the max seed."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depth = result.num_hidden
    layers = np.arange(depth)
    panels = [("act_std", "activation std", True), ("grad_std", "grad std  dℓ/d preact", True),
              ("dead_fraction", "dead units (fraction)", False)]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), constrained_layout=True)
    for ax, (key, label, log) in zip(axes, panels):
        for i, init in enumerate(result.spec.inits):
            values = result.stats[key][i, :, :depth]
            mean = values.mean(axis=0)
            if log:
                mean = np.where(mean > 0, mean, np.nan)
            (line,) = ax.plot(layers, mean, marker="o", markersize=3, label=init)
            if values.shape[0] > 1:
                low, high = values.min(axis=0), values.max(axis=0)
                if log:
                    low, high = np.where(low > 0, low, np.nan), np.where(high > 0, high, np.nan)
                ax.fill_between(layers, low, high, color=line.get_color(), alpha=0.2)
        if log:
            ax.set_yscale("log")
        else:
            ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("hidden layer")
        ax.set_title(label)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].legend()
    if title:
        fig.suptitle(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    safeio.write_atomic(Path(path), buffer.getvalue())
