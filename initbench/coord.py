"""The coordinate check (`initbench coord`): how big each layer's coordinates are after t
steps of training, at several widths, and whether that size grows with width.

For each (parameterization, width) and seed, one compiled program (vmapped over seeds)
trains T minibatch steps of the spec's optimizer at its one rate, from the start training
uses (`starts.cell_starts`) with the seed's own minibatch order (`model.data_key`, the
order `train` draws: epoch e's permutation), and records before step 0 and after every step
the mean absolute value of the output of every drawn layer but the last (`Network.layers`,
in the order the data reaches them: the MLP's hidden pre-activations, the CNN's conv
outputs) and of the logits on a fixed batch (the first COORD_BATCH training examples) — the
quantity of microsoft/mup's `get_coord_data` ("l1"). A second loop
because the runner's programs report per epoch, and the check needs every step; the step
itself is `train`'s (same loss, optimizer, order).

Layout: `sizes` [width, seed, step (T + 1), layer (L hidden + logits)].

Verdict per layer (`verdicts`): at each step t = 1..T, the slope of log(mean size over
seeds) against log(width), with a bootstrap-over-seeds interval at LEVEL: stable when it
lies inside +/- tolerance, grows when it is above 0 (and not inside), shrinks when below,
undecided when it straddles 0 without fitting inside the tolerance. The layer is stable
when every step is; otherwise it gets the call of its steepest unstable step.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from initbench import transfer as transfer_lib
from initbench.spec import Spec

COORD_BATCH = 512
DEFAULT_TOLERANCE = 0.25
COLUMNS = ("param", "layer", "width", "step", "mean_size", "size_low", "size_high",
           "slope", "slope_low", "slope_high", "verdict", "verdict_step")


@dataclass
class CoordRun:
    """A coordinate check: `sizes[param]` [width, seed, step, layer], `verdicts[param]`
    one (slope, low, high, verdict, step) per layer (`verdicts`)."""

    spec: Spec
    params: tuple[str, ...]
    widths: tuple[int, ...]
    depth: int | None  # hidden layers of the MLP; None: the network's own
    base_width: int
    steps: int
    layers: tuple[str, ...]
    sizes: dict[str, np.ndarray]
    verdicts: dict[str, list[tuple[float, float, float, str, int]]]
    tolerance: float
    meta: dict


def layer_names(spec: Spec, dataset) -> tuple[str, ...]:
    """The names of the sizes `coordinate_sizes` records, input to output, then "logits"."""
    from initbench import networks

    names = networks.resolve(spec, dataset.num_classes, dataset.image_shape).layer_names()
    return (*names[:-1], "logits")


def _measures(spec: Spec, dataset, batch):
    """(sizes_fn(params) -> [layer], loss_fn(params, x, y), network) of the spec's network
    on the stored parameters (the parameterization's multipliers applied)."""
    import jax.numpy as jnp
    import optax

    from initbench import networks, parameterize

    network = networks.resolve(spec, dataset.num_classes, dataset.image_shape)
    parameterize.check_network(spec, network)
    num_layers = len(network.layers)

    def effective_fn(params):
        return params if spec.param == "sp" else parameterize.effective(spec, params, network)

    def sizes_fn(params):
        logits, _, outputs = network.run_layers(effective_fn(params), batch)
        return jnp.stack([jnp.mean(jnp.abs(outputs[i])) for i in range(num_layers - 1)]
                         + [jnp.mean(jnp.abs(logits))])

    def loss_fn(params, x, y):
        logits = network.apply({"params": effective_fn(params)}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    return sizes_fn, loss_fn, network


def coordinate_sizes(spec: Spec, dataset, steps: int) -> np.ndarray:
    """[seed, step (steps + 1), layer] mean |coordinate| of each layer of `layer_names`
    (every drawn layer's output but the last's) and the logits, on the first COORD_BATCH
    training examples, before and after each step."""
    import jax
    import jax.numpy as jnp
    import optax

    from initbench import starts, train

    cells = [(spec.inits[0], seed) for seed in spec.seeds]
    params = starts.cell_starts(spec, cells, dataset).params
    data_keys = jax.random.key_data(train.data_keys(cells))
    x_train, y_train = jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train)
    batch = x_train[:COORD_BATCH]
    sizes_fn, loss_fn, network = _measures(spec, dataset, batch)
    tx = train.make_optimizer(spec, network=network)
    num_train = len(dataset.x_train)
    num_steps = num_train // spec.batch_size

    def cell_fn(params, key_data):
        key = jax.random.wrap_key_data(key_data)

        def step_fn(carry, t):
            params, opt_state = carry
            order = jax.random.permutation(jax.random.fold_in(key, 1 + t // num_steps),
                                           num_train)
            idx = jax.lax.dynamic_slice(order, ((t % num_steps) * spec.batch_size,),
                                        (spec.batch_size,))
            size = sizes_fn(params)
            grads = jax.grad(loss_fn)(params, x_train[idx], y_train[idx])
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), size

        (params, _), sizes = jax.lax.scan(step_fn, (params, tx.init(params)),
                                          jnp.arange(steps))
        return jnp.concatenate([sizes, sizes_fn(params)[None]])

    return np.asarray(jax.jit(jax.vmap(cell_fn))(params, data_keys))


def step_slopes(widths, sizes: np.ndarray, num_bootstrap: int = transfer_lib.NUM_BOOTSTRAP,
                seed: int = 0) -> np.ndarray:
    """[step, layer, 3]: the slope of log(mean size over seeds) against log(width) at each
    step, and its LEVEL bootstrap-over-seeds interval (low, high); `sizes` [width, seed,
    step, layer]. The same resampled seeds at every width (paired)."""
    sizes = np.asarray(sizes, float)
    log_w = np.log(np.asarray(widths, float))
    num_seeds = sizes.shape[1]
    picks = np.random.default_rng(seed).integers(0, num_seeds, (num_bootstrap, num_seeds))
    with np.errstate(divide="ignore", invalid="ignore"):
        point = transfer_lib.slope(log_w, np.log(sizes.mean(axis=1)).transpose(1, 2, 0))
        boot = np.log(sizes[:, picks].mean(axis=2))  # [width, B, step, layer]
        boot_slopes = transfer_lib.slope(log_w, boot.transpose(1, 2, 3, 0))  # [B, step, layer]
    tail = 100 * (1 - transfer_lib.LEVEL) / 2
    low, high = np.nanpercentile(boot_slopes, [tail, 100 - tail], axis=0)
    return np.stack([point, low, high], axis=-1)


def verdicts(widths, sizes: np.ndarray, tolerance: float = DEFAULT_TOLERANCE,
             num_bootstrap: int = transfer_lib.NUM_BOOTSTRAP, seed: int = 0
             ) -> list[tuple[float, float, float, str, int]]:
    """(slope, low, high, verdict, step) per layer; `sizes` [width, seed, step, layer].

    A layer is `stable` when its slope interval lies inside +/- tolerance at every step
    1..T (step 0 is the initialization, where muP's logits shrink like 1/sqrt(width) by
    design); otherwise its verdict is that of the step whose slope is farthest from 0
    among the steps that are not stable (a blow-up at step 1 that collapses by step T is
    not stable). The numbers are those of the step named (for a stable layer, its steepest)."""
    slopes = step_slopes(widths, sizes, num_bootstrap, seed)[1:]  # steps 1..T
    out = []
    for j in range(slopes.shape[1]):
        calls = [classify(lo, hi, tolerance) for _, lo, hi in slopes[:, j]]
        unstable = [t for t, call in enumerate(calls) if call != "stable"]
        candidates = unstable or list(range(len(calls)))
        t = max(candidates, key=lambda t: abs(slopes[t, j, 0]) if np.isfinite(slopes[t, j, 0])
                else np.inf)
        point, low, high = (float(v) for v in slopes[t, j])
        out.append((point, low, high, calls[t], t + 1))
    return out


def classify(low: float, high: float, tolerance: float) -> str:
    """stable / grows / shrinks / undecided for a slope interval [low, high]."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "undecided"
    if -tolerance < low and high < tolerance:
        return "stable"
    if low > 0:
        return "grows"
    if high < 0:
        return "shrinks"
    return "undecided"


def run_coord(spec: Spec, params: tuple[str, ...], widths: tuple[int, ...], depth: int | None,
              base_width: int | None, steps: int, tolerance: float, dataset, reporter,
              command: tuple[str, ...] = ()) -> CoordRun:
    """The coordinate check of every (parameterization, width); `command` is recorded."""
    from initbench import provenance, width_study

    started = time.perf_counter()
    widths = tuple(sorted(widths))
    base = base_width if base_width is not None else widths[0]
    width_study.check_networks(spec, params, widths, depth, base, dataset)
    sizes = {}
    for param in params:
        per_width = []
        for width in widths:
            reporter.phase(f"coordinate check: --param {param}, width {width}, {steps} steps")
            per_width.append(coordinate_sizes(
                width_study.width_spec(spec, param, width, depth, base), dataset, steps))
        sizes[param] = np.stack(per_width)
    layers = layer_names(width_study.width_spec(spec, params[0], widths[0], depth, base),
                         dataset)
    meta = {"command": list(command), "seconds": round(time.perf_counter() - started, 3),
            **provenance.environment()}
    return CoordRun(spec, tuple(params), widths, depth, base, steps, layers, sizes,
                    {p: verdicts(widths, s, tolerance) for p, s in sizes.items()},
                    tolerance, meta)


def rows(run: CoordRun) -> list[dict]:
    """coord.csv's rows: one per (parameterization, layer, width, step), with the mean size
    over seeds and its range over seeds, the slope across widths at that step with its
    interval, and the layer's verdict and the step it was read at (same on every row of
    the layer)."""
    out = []
    for param in run.params:
        sizes = run.sizes[param]
        slopes = step_slopes(run.widths, sizes)
        for j, layer in enumerate(run.layers):
            _, _, _, verdict, at_step = run.verdicts[param][j]
            for i, width in enumerate(run.widths):
                for t in range(run.steps + 1):
                    values = sizes[i, :, t, j]
                    out.append({"param": param, "layer": layer, "width": width, "step": t,
                                "mean_size": float(values.mean()),
                                "size_low": float(values.min()),
                                "size_high": float(values.max()),
                                "slope": float(slopes[t, j, 0]),
                                "slope_low": float(slopes[t, j, 1]),
                                "slope_high": float(slopes[t, j, 2]),
                                "verdict": verdict, "verdict_step": at_step})
    return out


def document(run: CoordRun) -> dict:
    """spec.json of a coord folder (and the --json document)."""
    spec = {k: v for k, v in run.spec.to_dict().items() if k not in ("hidden", "width")}
    return {"study": "coord", "spec": spec, "params": list(run.params),
            "widths": list(run.widths), "depth": run.depth, "base_width": run.base_width,
            "steps": run.steps, "tolerance": run.tolerance, "level": transfer_lib.LEVEL,
            "verdicts": {p: {layer: {"slope": v[0], "slope_low": v[1], "slope_high": v[2],
                                     "verdict": v[3], "step": v[4]}
                             for layer, v in zip(run.layers, run.verdicts[p])}
                         for p in run.params},
            **run.meta}


def write(out: Path, run: CoordRun) -> None:
    """coord.csv, coord.png and spec.json in `out`, at once."""
    from initbench import runfolder, safeio, scaling_plots

    files = {"coord.csv": runfolder.csv_text(rows(run), COLUMNS).encode(),
             "coord.png": scaling_plots.render_coord(run),
             "spec.json": (json.dumps(document(run), indent=2) + "\n").encode()}
    safeio.write_folder(out, files, replaceable=tuple(files))
