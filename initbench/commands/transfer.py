"""CLI commands: transfer (does the best rate move with width?) and coord (the coordinate
check). Only typer and JAX-free modules are imported here; JAX starts inside the command."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from initbench import spec as spec_lib
from initbench.commands import options as o
from initbench.errors import InitbenchError
from initbench.runtime import Runtime


def _params(text: str) -> tuple[str, ...]:
    from initbench import parameterizations

    names = spec_lib.parse_list(text, "param")
    for name in names:
        parameterizations.get(name)
    return names


def _widths(text: str) -> tuple[int, ...]:
    widths = spec_lib.parse_hidden(text)  # positive integers, same checks as --hidden
    if len(set(widths)) != len(widths):
        raise InitbenchError(f"--widths: a width listed twice in '{text}'.")
    return widths


PARAMS = o.Opt("params", ("--param",), str, "sp,mup",
               "Parameterizations to compare, comma-separated: sp, ntk, mup "
               "(docs/parameterizations.md).")
WIDTHS = o.Opt("widths", ("--widths",), str, "64,128,256,512,1024",
               "Hidden widths to train (every hidden layer has the width).")
DEPTH = o.Opt("depth", ("--depth",), int | None, None,
              "Hidden layers of the MLP (default 2); resmlp: blocks. Another --model defines "
              "its own.")
BASE = o.Opt("base", ("--base-width",), int | None, None,
             "Width whose rates the others reuse under mup/ntk (default: the smallest).")
METRIC = o.Opt("metric", ("--metric",), str, "train_loss",
               "What 'best rate' minimizes: train_loss (the muP literature's), val_loss, or "
               "val_accuracy (maximized).")
TOLERANCE = o.Opt("tolerance", ("--tolerance",), float, 0.25,
                  "Slope tolerance: 'transfers' / 'stable' when the 95% interval of the slope "
                  "of log(best rate) (coord: log size) against log(width) lies inside ±this.")
STEPS = o.Opt("steps", ("--steps",), int, 10, "Training steps recorded (coord).")
TRANSFER_OUT = o.Opt("out", ("--out",), Path | None, None,
                     "Output folder (default: a new folder under results/).")
SHARED = (o.INIT, o.SEEDS, o.DATASET, o.BATCH_SIZE, o.LR, o.OPTIMIZER, o.ACTIVATION,
          o.BIAS_INIT, o.MODEL, PARAMS, WIDTHS, DEPTH, BASE, TOLERANCE, TRANSFER_OUT, o.QUIET, o.JSON)


def _setup(values: dict) -> tuple:
    """(spec, params, widths) of a width study's options, checked before JAX starts."""
    params, widths = _params(values["params"]), _widths(values["widths"])
    model, depth = values["model"], values["depth"]
    if model in ("mlp", *spec_lib.RESIDUAL_MODELS):
        depth = 2 if depth is None else depth
        if not isinstance(depth, int) or not 1 <= depth <= 100:
            raise InitbenchError(f"--depth must be an integer in [1, 100], got {depth}.")
    elif depth is not None:
        raise InitbenchError(f"--depth has no effect with --model {model} (it shapes the MLP; "
                             "the network defines its own layers); drop it.")
    if str(values["seeds"]).strip().lower() == "auto":
        raise InitbenchError("transfer and coord take a seed count or list (e.g. --seeds 5), "
                             "not auto.")
    if len(spec_lib.parse_seeds(values["seeds"])) < 2:
        raise InitbenchError("--seeds: at least 2 seeds are needed for an interval (the "
                             "bootstrap resamples seeds); e.g. --seeds 5.")
    base = values["base"]
    if base is not None and base < 1:
        raise InitbenchError(f"--base-width must be a positive integer, got {base}.")
    spec = o.build_spec({k: v for k, v in values.items()
                         if k in ("init", "seeds", "dataset", "batch_size", "lr", "optimizer",
                                  "activation", "bias_init", "epochs", "model")})
    from initbench import width_study

    spec = width_study.width_spec(spec, "sp", min(widths), depth, base or min(widths))
    for param in params:  # every grid's spec is valid (a CNN width, an ntk --base-width)
        for width in widths:
            width_study.width_spec(spec, param, width, depth, base or min(widths))
    return spec, params, widths, depth, base


def _start(values: dict, runtime: Runtime, spec):
    from initbench import data, jax_setup
    from initbench.console import stderr
    from initbench.progress import RichReporter

    reporter = RichReporter(stderr, show=not (values["quiet"] or values["as_json"]))
    reporter.phase("starting JAX")
    try:
        runtime = jax_setup.start(runtime.replace(use_cache=not values.get("no_cache", False)))
        reporter.phase(f"loading {spec.dataset or 'the dataset'}")
        dataset, notice = data.load_data(spec)
    finally:
        reporter.stop()
    if notice:
        reporter.notice(f"dataset used: {dataset.name} — {notice}")
    return runtime, reporter, dataset


@o.command_options(*SHARED, o.EPOCHS, METRIC, o.NO_CACHE, init="he_normal",
                   lr="1e-4:1e-1:13", epochs=5)
def transfer(values: dict, runtime: Runtime) -> None:
    """Does the best learning rate move with width? Trains every (parameterization, width,
    rate, seed) and fits the slope of log(best rate) against log(width), with a
    bootstrap-over-seeds interval: transfers, shifts or undecided."""
    from initbench import width_study

    spec, params, widths, depth, base = _setup(values)
    width_study.check_widths(widths, params, values["metric"], spec.lr, values["tolerance"])
    _train_and_write(values, runtime, spec, "transfer", width_study, transfer_table,
                     "transfer.csv, transfer_cells.csv, transfer.png, spec.json",
                     lambda spec, dataset, runtime, reporter: width_study.run_transfer(
                         spec, params, widths, depth, base, values["metric"],
                         values["tolerance"], dataset, runtime, reporter))


def _train_and_write(values: dict, runtime: Runtime, spec, kind: str, module, table_fn,
                     files: str, train_fn) -> None:
    """What `transfer` and `coord` share: refuse an unwritable --out before training, train
    (`train_fn(spec, dataset, runtime, reporter)`), write the folder with `module.write`
    (a new results/KIND-<timestamp> without --out, removed again if nothing was written),
    then print `module.document` (--json) or `table_fn`'s table and where it went."""
    from rich.text import Text

    from initbench.console import stderr, stdout
    from initbench.runfolder import check_writable, new_run_folder
    from initbench.safeio import remove_if_empty

    if values["out"] is not None:
        check_writable(values["out"])
    runtime, reporter, dataset = _start(values, runtime, spec)
    spec = spec.replace(dataset=dataset.name)
    reserved = values["out"] is None
    out = new_run_folder(kind) if reserved else Path(values["out"])
    try:
        run = train_fn(spec, dataset, runtime, reporter)
        reporter.phase(f"writing {out}")
        module.write(out, run)
    finally:
        reporter.stop()
        if reserved:
            remove_if_empty(out)
    if values["as_json"]:
        print(json.dumps(module.document(run), indent=2))
        return
    stdout.print(table_fn(run))
    if not values["quiet"]:
        stderr.print(Text(f"written to {out}/ ({files}) in {run.meta['seconds']:.0f} s"))


def transfer_table(run):
    """The verdict table: one row per parameterization."""
    from rich.table import Table

    table = Table(title=f"Transfer across width {', '.join(map(str, run.widths))} "
                        f"({run.metric}, {run.spec.dataset}, {len(run.spec.seeds)} seeds)",
                  caption="best rate: the vertex of a parabola in log-rate around the grid "
                          "minimum of the mean over seeds; intervals: 95% bootstrap over "
                          "seeds. '*': at the end of the --lr grid (widen it).")
    table.add_column("param")
    for width in run.widths:
        table.add_column(f"best lr @{width}", justify="right")
    for header in ("slope [95%]", "verdict"):
        table.add_column(header, justify="right")
    for param, r in run.results.items():
        best = [f"{r.best_lr[i]:.2g}{'*' if r.at_edge[i] else ''}" for i in range(len(run.widths))]
        verdict = r.verdict
        if r.seeds_to_decide is not None:
            verdict += f" (~{r.seeds_to_decide} seeds)"
        table.add_row(param, *best, f"{r.slope:+.2f} [{r.slope_low:+.2f}, {r.slope_high:+.2f}]",
                      verdict)
    return table


@o.command_options(*SHARED, STEPS, init="he_normal", lr="0.01", widths="64,256,1024",
                   seeds="3")
def coord(values: dict, runtime: Runtime) -> None:
    """The coordinate check: mean |coordinate| of every layer and the logits over the first
    --steps steps at each width, and per layer whether it stays stable with width."""
    from initbench import coord as coord_lib

    spec, params, widths, depth, base = _setup(values)
    steps = values["steps"]
    if not isinstance(steps, int) or not 1 <= steps <= 10_000:
        raise InitbenchError(f"--steps must be an integer in [1, 10000], got {steps}.")
    if len(widths) < 2:
        raise InitbenchError("--widths needs at least 2 widths for a slope.")
    if len(spec.lr) != 1:
        raise InitbenchError("coord trains at one --lr (the base rate), got several.")
    if not values["tolerance"] > 0:
        raise InitbenchError(f"--tolerance must be positive, got {values['tolerance']}.")
    _train_and_write(values, runtime, spec, "coord", coord_lib, coord_table,
                     "coord.csv, coord.png, spec.json",
                     lambda spec, dataset, runtime, reporter: coord_lib.run_coord(
                         spec, params, widths, depth, base, steps, values["tolerance"],
                         dataset, reporter, runtime.command))


def coord_table(run):
    """One row per (parameterization, layer): size at the first and last width at step T,
    the slope with its interval and the verdict."""
    from rich.table import Table

    table = Table(title=f"Coordinate check, steps 1..{run.steps}, widths "
                        f"{', '.join(map(str, run.widths))} ({run.spec.dataset}, "
                        f"lr {run.spec.lr[0]:g})",
                  caption=f"slope of log(mean |coordinate|) against log(width), 95% bootstrap "
                          f"over seeds, at the step named (the steepest unstable one; stable: "
                          f"inside ±{run.tolerance:g} at every step). Sizes at the last step.")
    for header in ("param", "layer", f"size @{run.widths[0]}", f"size @{run.widths[-1]}",
                   "step", "slope [95%]", "verdict"):
        table.add_column(header, justify="left" if header in ("param", "layer") else "right")
    for param in run.params:
        sizes = run.sizes[param].mean(axis=1)
        for j, layer in enumerate(run.layers):
            slope, low, high, verdict, at_step = run.verdicts[param][j]
            table.add_row(param, layer, f"{sizes[0, -1, j]:.3g}", f"{sizes[-1, -1, j]:.3g}",
                          str(at_step), f"{slope:+.2f} [{low:+.2f}, {high:+.2f}]", verdict)
    return table


def register(app: typer.Typer) -> None:
    """Add transfer and coord to `app`."""
    app.command("transfer")(transfer)
    app.command("coord")(coord)
