"""CLI command: probe — the network at initialization, layer by layer, on a real batch.

Only typer and rich are imported here; JAX comes in when the command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

# The run/compare options live in initbench.cli, which imports this module: the few this
# command shares are restated here rather than imported in a cycle.
Inits = Annotated[str, typer.Option("--inits", help="Comma-separated initializers.")]
Seeds = Annotated[str, typer.Option("--seeds", help="Count N (seeds 0..N-1), list 0,5,7 or range 3-6.")]
Dataset = Annotated[str | None, typer.Option(
    "--dataset", help="Dataset name (see `initbench datasets`). Default: mnist, or the embedded "
    "mnist-5k when full MNIST is not available offline.")]
BatchSize = Annotated[int, typer.Option(
    "--batch-size", help="Examples in the probe batch (the first ones of the training set).")]
Hidden = Annotated[str, typer.Option("--hidden", help="Hidden widths: 256,256 or 256x30 (30 layers).")]
Activation = Annotated[str, typer.Option(
    "--activation", help="relu, tanh, gelu, sigmoid, elu, selu, silu, leaky_relu, softplus, linear.")]
BiasInit = Annotated[str, typer.Option("--bias-init", help="Bias initializer (see `initbench inits`).")]
Gain = Annotated[float | None, typer.Option(
    "--gain", help="Gain for variance-scaling, orthogonal, lsuv and identity initializers.")]
Mode = Annotated[str | None, typer.Option(
    "--mode", help="Fan mode for the variance-scaling family: fan_in, fan_out, fan_avg.")]
LsuvTol = Annotated[float, typer.Option("--lsuv-tol", help="LSUV: output variance tolerance.")]
LsuvMaxIter = Annotated[int, typer.Option("--lsuv-max-iter", help="LSUV: max passes per layer.")]
Out = Annotated[Path | None, typer.Option(
    "--out", help="Output folder for probe.csv, probe.png, probe.json (default: results/probe-*).")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")]


def probe(
    inits: Inits = "xavier,he_normal,orthogonal,lsuv", seeds: Seeds = "3",
    dataset: Dataset = None, batch_size: BatchSize = 1000, hidden: Hidden = "256x30",
    activation: Activation = "relu", bias_init: BiasInit = "zeros", gain: Gain = None,
    mode: Mode = None, lsuv_tol: LsuvTol = 0.02, lsuv_max_iter: LsuvMaxIter = 20,
    out: Out = None, as_json: Json = False,
) -> None:
    """Show how the signal travels through the net at init: per-layer activation and gradient
    std and dead units, per initializer (no training)."""
    import sys

    from rich.markup import escape

    from initbench import jax_setup
    from initbench import probe as probe_lib
    from initbench import spec as spec_lib
    from initbench.console import stderr, stdout

    jax_setup.configure_xla()
    spec = spec_lib.Spec(
        inits=spec_lib.parse_list(inits, "inits"), seeds=spec_lib.parse_seeds(seeds),
        dataset=dataset, hidden=spec_lib.parse_hidden(hidden), activation=activation,
        bias_init=bias_init, gain=gain, mode=mode, lsuv_tol=lsuv_tol, lsuv_max_iter=lsuv_max_iter,
    )
    reserved = out is None
    out = out or _default_out()
    try:
        result = probe_lib.probe_run(spec, out, batch_size, ["initbench", *sys.argv[1:]])
    finally:
        if reserved:  # a default folder whose probe failed is not left behind
            from initbench.safeio import remove_if_empty

            remove_if_empty(out)
    if as_json:
        print(json.dumps(probe_lib.document(result, str(out)), indent=2))
        return
    stdout.print(probe_table(result))
    if result.lsuv_passes:
        from initbench import lsuv

        stderr.print(lsuv.describe(probe_lib.document(result)["lsuv_passes"]), highlight=False)
    notice = result.meta.get("dataset_notice")
    if notice:
        stderr.print(f"[yellow]note:[/] dataset used: {result.spec.dataset} — "
                     f"{escape(notice)}")
    stderr.print(f"probe written to {out}/ (probe.csv, probe.png, probe.json)", markup=False,
                 highlight=False)


def probe_table(result):
    """The rich table: per init, activation std at the first/middle/last hidden layer and
    their ratio, dead units, back-propagated gradient std, LSUV passes."""
    from rich.table import Table

    from initbench import probe as probe_lib

    depth = result.num_hidden
    first, mid, last = 0, depth // 2, depth - 1
    table = Table(title=probe_lib.title(result) + " (means over seeds)", title_style="bold",
                  caption=_CAPTION)
    headers = ["init", f"act std L{first}", f"L{mid}", f"L{last}", "last/first",
               "dead % (mean)", f"dead % L{last}", f"grad std L{first}", f"L{last}",
               "grad first/last", "LSUV passes"]
    for header in headers:
        table.add_column(header, justify="left" if header == "init" else "right", no_wrap=True)
    for row in probe_lib.summarize(result):
        passes = result.lsuv_passes.get(row["init"])
        table.add_row(
            row["init"], _g(row["act_std_first"]), _g(row["act_std_mid"]),
            _g(row["act_std_last"]), _ratio(row["act_ratio"]),
            f"{100 * row['dead_fraction_mean']:.1f}", f"{100 * row['dead_fraction_last']:.1f}",
            _g(row["grad_std_first"]), _g(row["grad_std_last"]), _ratio(row["grad_ratio"]),
            _passes(passes),
        )
    return table


_CAPTION = (
    "act std: std of a hidden layer's activations over the batch; last/first far below 1 means "
    "the signal dies with depth (far above: it explodes).\n"
    "dead: units whose activation has zero slope on every example of the batch. grad std: std "
    "of the per-example dloss/dpre-activation; grad first/last < 1: gradients vanish toward "
    "the input."
)


def _passes(passes) -> str:
    """LSUV rescalings per layer over every seed: '1 per layer' or '1–3 per layer'."""
    if passes is None:
        return "—"
    low, high = int(passes.min()), int(passes.max())
    return f"{high} per layer" if low == high else f"{low}–{high} per layer"


def _g(value: float) -> str:
    return "—" if value != value else f"{value:.3g}"


def _ratio(value: float) -> str:
    if value != value:
        return "—"
    style = "green" if 0.25 <= value <= 4 else "red"
    return f"[{style}]{value:.3g}[/]"


def _default_out() -> Path:
    from initbench.results import new_run_folder

    return new_run_folder("probe")


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("probe")(probe)
