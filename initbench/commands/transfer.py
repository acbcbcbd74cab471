"""CLI commands: transfer (does the best rate move with width?) and coord (the coordinate
check). Only typer and JAX-free modules are imported here; JAX starts inside the command."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from initbench import spec as spec_lib
from initbench.commands import options as o
from initbench.errors import InitbenchError
from initbench.runtime import Runtime

PARAMS = o.PARAM.but(default="sp,mup", help="Parameterizations to compare, comma-separated: "
                     "sp, ntk, mup (docs/parameterizations.md).")
WIDTHS = o.Opt("widths", ("--widths",), str, "64,128,256,512,1024",
               "Hidden widths to train (every hidden layer has the width).")
DEPTH = o.Opt("depth", ("--depth",), int | None, None,
              "Hidden layers of the MLP (default 2); resmlp: blocks. Another --model defines "
              "its own.")
BASE = o.BASE_WIDTH.but(help="Width whose rates the others reuse under mup/ntk (default: the "
                             "smallest).")
METRIC = o.Opt("metric", ("--metric",), str, "train_loss",
               "What 'best rate' minimizes: train_loss (the muP literature's), val_loss, or "
               "val_accuracy (maximized).")
TOLERANCE = o.Opt("tolerance", ("--tolerance",), float, 0.25,
                  "Slope tolerance: 'transfers' / 'stable' when the 95% interval of the slope "
                  "of log(best rate) (coord: log size) against log(width) lies inside ±this.")
STEPS = o.Opt("steps", ("--steps",), int, 10, "Training steps recorded (coord).")
SHARED = (o.INIT, o.SEEDS, o.DATASET, o.BATCH_SIZE, o.LR, o.OPTIMIZER, o.ACTIVATION,
          o.BIAS_INIT, o.MODEL, PARAMS, WIDTHS, DEPTH, BASE, TOLERANCE, o.OUT, o.QUIET, o.JSON)


@dataclass(frozen=True)
class WidthStudy:
    """What `transfer` and `coord` share, checked before JAX starts: the `Spec` of the
    smallest width (the MLP's --hidden is `depth` layers of it; another network is built at
    it), the parameterizations, widths, depth (None: a network other than the MLP and
    resmlp, which defines its own) and base width (None: the smallest), the slope
    tolerance, the folder (None: a new one under results/), whether cached cells are used
    and the output form."""

    spec: spec_lib.Spec
    params: tuple[str, ...]
    widths: tuple[int, ...]
    depth: int | None
    base: int | None
    tolerance: float
    out: Path | None
    use_cache: bool
    output: o.Output


def width_study_options(values: dict[str, Any]) -> WidthStudy:
    """The checked settings of a width study (its seeds: a count or list of at least 2;
    `width_study.check_study`: its parameterizations, widths and tolerance)."""
    from initbench import width_study

    params = spec_lib.parse_list(values["param"], "param")
    widths = spec_lib.parse_hidden(values["widths"])  # positive integers, as for --hidden
    width_study.check_study(widths, params, values["tolerance"])
    model, depth = values["model"], values["depth"]
    if model in spec_lib.HIDDEN_MODELS:
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
    base = values["base_width"]
    if base is not None and base < 1:
        raise InitbenchError(f"--base-width must be a positive integer, got {base}.")
    spec = o.build_spec({k: v for k, v in values.items()
                         if k in ("init", "seeds", "dataset", "batch_size", "lr", "optimizer",
                                  "activation", "bias_init", "epochs", "model")})
    spec = width_study.width_spec(spec, "sp", min(widths), depth, base or min(widths))
    for param in params:  # every grid's spec is valid (a CNN width, an ntk --base-width)
        for width in widths:
            width_study.width_spec(spec, param, width, depth, base or min(widths))
    return WidthStudy(spec=spec, params=params, widths=widths, depth=depth, base=base,
                      tolerance=values["tolerance"], out=values["out"],
                      use_cache=not values.get("no_cache", False),
                      output=o.part(o.Output, values))


@dataclass(frozen=True)
class TransferOptions:
    """What `transfer` was given: the study and what 'best rate' optimizes."""

    study: WidthStudy
    metric: str


def transfer_options(values: dict[str, Any]) -> TransferOptions:
    """The typed options of `transfer` (`width_study.check_widths`: a verdict is possible)."""
    from initbench import width_study

    study = width_study_options(values)
    width_study.check_widths(study.widths, study.params, values["metric"], study.spec.lr,
                             study.tolerance)
    return TransferOptions(study=study, metric=values["metric"])


@o.command_options(*SHARED, o.EPOCHS, METRIC, o.NO_CACHE, init="he_normal",
                   lr="1e-4:1e-1:13", epochs=5, typed=transfer_options)
def transfer(options: TransferOptions, runtime: Runtime) -> None:
    """Does the best learning rate move with width? Trains every (parameterization, width,
    rate, seed) and fits the slope of log(best rate) against log(width), with a
    bootstrap-over-seeds interval: transfers, shifts or undecided."""
    from initbench import width_study

    study = options.study
    _train_and_write(study, runtime, "transfer", width_study, transfer_table,
                     "transfer.csv, transfer_cells.csv, transfer.png, spec.json",
                     lambda spec, dataset, runtime, reporter: width_study.run_transfer(
                         spec, study.params, study.widths, study.depth, study.base,
                         options.metric, study.tolerance, dataset, runtime, reporter))


def _start(study: WidthStudy, runtime: Runtime):
    from initbench import data, jax_setup
    from initbench.console import stderr
    from initbench.progress import RichReporter

    spec = study.spec
    reporter = RichReporter(stderr, show=not (study.output.quiet or study.output.as_json))
    reporter.phase("starting JAX")
    try:
        runtime = jax_setup.start(runtime.replace(use_cache=study.use_cache))
        reporter.phase(f"loading {spec.dataset or 'the dataset'}")
        dataset, notice = data.load_data(spec)
    finally:
        reporter.stop()
    if notice:
        reporter.notice(f"dataset used: {dataset.name} — {notice}")
    return runtime, reporter, dataset


def _train_and_write(study: WidthStudy, runtime: Runtime, kind: str, module, table_fn,
                     files: str, train_fn) -> None:
    """What `transfer` and `coord` share: refuse an unwritable --out before training, train
    (`train_fn(spec, dataset, runtime, reporter)`), write the folder with `module.write`
    (a new results/KIND-<timestamp> without --out, removed again if nothing was written),
    then print `module.document` (--json) or `table_fn`'s table and where it went."""
    from rich.text import Text

    from initbench.console import stderr, stdout
    from initbench.runfolder import check_writable, new_run_folder
    from initbench.safeio import remove_if_empty

    if study.out is not None:
        check_writable(study.out)
    runtime, reporter, dataset = _start(study, runtime)
    spec = study.spec.replace(dataset=dataset.name)
    reserved = study.out is None
    out = new_run_folder(kind) if reserved else Path(study.out)
    try:
        run = train_fn(spec, dataset, runtime, reporter)
        reporter.phase(f"writing {out}")
        module.write(out, run)
    finally:
        reporter.stop()
        if reserved:
            remove_if_empty(out)
    if study.output.as_json:
        print(json.dumps(module.document(run), indent=2))
        return
    stdout.print(table_fn(run))
    if not study.output.quiet:
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


@dataclass(frozen=True)
class CoordOptions:
    """What `coord` was given: the study and the steps recorded."""

    study: WidthStudy
    steps: int


def coord_options(values: dict[str, Any]) -> CoordOptions:
    """The typed options of `coord`: the study's, some steps and one base rate."""
    study = width_study_options(values)
    steps = values["steps"]
    if not isinstance(steps, int) or not 1 <= steps <= 10_000:
        raise InitbenchError(f"--steps must be an integer in [1, 10000], got {steps}.")
    if len(study.spec.lr) != 1:
        raise InitbenchError("coord trains at one --lr (the base rate), got several.")
    return CoordOptions(study=study, steps=steps)


@o.command_options(*SHARED, STEPS, init="he_normal", lr="0.01", widths="64,256,1024",
                   seeds="3", typed=coord_options)
def coord(options: CoordOptions, runtime: Runtime) -> None:
    """The coordinate check: mean |coordinate| of every layer and the logits over the first
    --steps steps at each width, and per layer whether it stays stable with width."""
    from initbench import coord as coord_lib

    study = options.study
    _train_and_write(study, runtime, "coord", coord_lib, coord_table,
                     "coord.csv, coord.png, spec.json",
                     lambda spec, dataset, runtime, reporter: coord_lib.run_coord(
                         spec, study.params, study.widths, study.depth, study.base,
                         options.steps, study.tolerance, dataset, reporter, runtime.command))


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
