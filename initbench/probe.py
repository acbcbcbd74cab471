"""The network at initialization, layer by layer, on a real batch (signal propagation).

For each cell (initializer, seed) and each dense layer `i` (0 = first hidden layer,
`L = len(hidden)` = the logits layer), on a batch x [B, D] with labels y [B]:

- `preact_mean`, `preact_std`: mean and std of the pre-activation h_i = W_i a_{i-1} + b_i
  over all (example, unit) entries;
- `act_std`: std of the activation a_i = act(h_i) (the logits layer's activation is the
  identity, so there it equals `preact_std`);
- `dead_fraction`: the fraction of units that are dead on the whole batch, i.e. whose
  activation has derivative exactly 0 at every example, so no gradient can pass through
  them. For ReLU that is the same as the unit's output being exactly 0 for every example.
  Smooth activations (tanh, sigmoid, gelu, elu, ...) only count as dead when saturated
  to float precision on every example; leaky_relu, linear and the logits layer never are;
- `grad_std`: std of dℓ_n/dh_i[n], the per-example loss gradient with respect to the
  pre-activation (= B times the gradient of the batch-mean cross-entropy), over all
  (example, unit) entries;
- `weight_grad_norm`: Frobenius norm of d(mean loss)/dW_i, the gradient one SGD step on
  this batch would use.

Arrays are laid out [init, seed, layer]. The batch is the first `batch_size` training
examples; the parameters are exactly the ones training starts from (LSUV included, on its
own batch, see `initbench.lsuv`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from initbench import results
from initbench.errors import InitbenchError
from initbench.spec import Spec

STATS = ("preact_mean", "preact_std", "act_std", "dead_fraction", "grad_std", "weight_grad_norm")
COLUMNS = ("init", "seed", "layer", *STATS)
DEFAULT_BATCH_SIZE = 1000


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
        return len(self.spec.hidden)


def make_cell_stats(spec: Spec, num_classes: int):
    """A pure `stats_fn(params, x, y) -> {name: [L + 1]}` for one cell (params unstacked).

    Jit- and vmap-able; the same function backs `--track-layers` during training.
    """
    import jax
    import jax.numpy as jnp
    import optax

    from initbench import model as model_lib

    mlp = model_lib.make_model(spec, num_classes)
    act = model_lib.activation_fn(spec.activation)
    names = model_lib.layer_names(spec)

    def stats_fn(params, x, y):
        batch = x.shape[0]
        perturbations = {f"preact_{i}": jnp.zeros((batch, w), jnp.float32)
                         for i, w in enumerate(spec.hidden)}

        def loss_fn(params, perturbations, logit_shift):
            logits, state = mlp.apply({"params": params, "perturbations": perturbations}, x,
                                      mutable=["intermediates"])
            logits = logits + logit_shift  # d loss / d shift = d loss / d logits
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, (state["intermediates"], logits)

        zero_shift = jnp.zeros((batch, num_classes), jnp.float32)
        grads, (inter, logits) = jax.grad(loss_fn, argnums=(0, 1, 2), has_aux=True)(
            params, perturbations, zero_shift)
        param_grads, preact_grads, logit_grads = grads
        rows = []
        for i in range(len(spec.hidden)):
            h = inter[f"preact_{i}"][0]
            a, slope = jax.jvp(act, (h,), (jnp.ones_like(h),))
            dead = jnp.mean(jnp.all(slope == 0, axis=0))
            rows.append((h, a, dead, preact_grads[f"preact_{i}"]))
        rows.append((logits, logits, jnp.zeros(()), logit_grads))
        out = {
            "preact_mean": jnp.stack([h.mean() for h, _, _, _ in rows]),
            "preact_std": jnp.stack([h.std() for h, _, _, _ in rows]),
            "act_std": jnp.stack([a.std() for _, a, _, _ in rows]),
            "dead_fraction": jnp.stack([d for _, _, d, _ in rows]).astype(jnp.float32),
            "grad_std": jnp.stack([(batch * g).std() for _, _, _, g in rows]),
            "weight_grad_norm": jnp.stack([jnp.linalg.norm(param_grads[n]["kernel"])
                                           for n in names]),
        }
        return out

    return stats_fn


def layer_batch(data) -> tuple[np.ndarray, np.ndarray]:
    """The fixed batch `--track-layers` measures on: the first `DEFAULT_BATCH_SIZE` training
    examples (x [B, D], y [B]), the probe's default batch."""
    return data.x_train[:DEFAULT_BATCH_SIZE], data.y_train[:DEFAULT_BATCH_SIZE]


def make_layer_metrics(spec: Spec, num_classes: int, x, y):
    """`metrics_fn(params) -> {"layer_grad_norm", "layer_dead_fraction"}`, each [L + 1], for
    one cell on the fixed batch (x, y): what `--track-layers` records once per epoch."""
    stats_fn = make_cell_stats(spec, num_classes)

    def metrics_fn(params):
        stats = stats_fn(params, x, y)
        return {"layer_grad_norm": stats["weight_grad_norm"],
                "layer_dead_fraction": stats["dead_fraction"]}

    return metrics_fn


def init_cells(spec: Spec, data, init_name: str):
    """(params stacked over `spec.seeds`, LSUV passes [seed, layer] or None) for one init.

    The same parameters `train.build_params` gives training, LSUV on the same batch.
    """
    from initbench import initializers, lsuv
    from initbench import model as model_lib

    params = model_lib.init_params(spec, init_name, spec.seeds, data.x_train.shape[1],
                                   data.num_classes)
    passes = None
    if initializers.is_data_dependent(init_name):
        params, passes = lsuv.apply_lsuv(spec, params, lsuv.lsuv_batch(data.x_train),
                                         data.num_classes)
    return params, passes


def run_probe(spec: Spec, data, batch_size: int = DEFAULT_BATCH_SIZE) -> ProbeResult:
    """Probe every (init, seed) of `spec` at initialization on the first `batch_size`
    training examples of `data`; one compiled, seed-vmapped pass per initializer."""
    import jax

    if not isinstance(batch_size, int) or batch_size < 1:
        raise InitbenchError(f"--batch-size must be a positive integer, got {batch_size}.")
    if batch_size > len(data.x_train):
        raise InitbenchError(f"--batch-size {batch_size} is larger than the training set of "
                             f"{data.name} ({len(data.x_train)} examples).")
    x, y = data.x_train[:batch_size], data.y_train[:batch_size]
    probe_fn = jax.jit(jax.vmap(make_cell_stats(spec, data.num_classes), in_axes=(0, None, None)))
    per_init: list[dict[str, np.ndarray]] = []
    passes: dict[str, np.ndarray] = {}
    for name in spec.inits:
        params, lsuv_passes = init_cells(spec, data, name)
        per_init.append({k: np.asarray(v, np.float64) for k, v in probe_fn(params, x, y).items()})
        if lsuv_passes is not None:
            passes[name] = lsuv_passes
    stats = {k: np.stack([cells[k] for cells in per_init]) for k in STATS}
    return ProbeResult(spec, stats, passes, {"num_examples": batch_size})


def probe_run(spec: Spec, out: Path, batch_size: int = DEFAULT_BATCH_SIZE,
              command: list[str] | None = None) -> ProbeResult:
    """Load the spec's dataset, probe it and write `out`/probe.csv, probe.png, probe.json."""
    import json

    from initbench import experiment

    out = results.check_writable(Path(out))
    dataset, notice = experiment.load_data(spec)
    spec = spec.replace(dataset=dataset.name)
    from initbench import sharding

    sharding.check_fits(spec, dataset)
    result = run_probe(spec, dataset, batch_size)
    result.meta.update({"command": command, "dataset_notice": notice,
                        "num_features": int(dataset.x_train.shape[1]),
                        "num_classes": int(dataset.num_classes)})
    results.write_folder_with(out, lambda staging: (
        write_csv(staging / "probe.csv", result),
        plot(staging / "probe.png", result, title(result)),
        results.write_atomic(staging / "probe.json", json.dumps(
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
    return (f"{spec.dataset} · MLP {net} {spec.activation} · at init, "
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
        "summary": [{k: _json_float(v) for k, v in row.items()} for row in summarize(result)],
        "mean_over_seeds": mean_over_seeds(result),
    }


def _json_float(value):
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


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
    results.write_atomic(Path(path), results.csv_text(probe_rows(result), COLUMNS))


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
    results.write_atomic(Path(path), buffer.getvalue())
