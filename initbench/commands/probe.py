"""CLI command: probe — the network at initialization, layer by layer, on a real batch.

Its options are those of `run` and `compare` that shape the network (`commands.options`);
only typer and rich are imported here, JAX comes in when the command runs.
"""

from __future__ import annotations

import json

import typer

from initbench.commands import options as o
from initbench.runtime import Runtime

_PROBE_OUT = o.OUT.but(help="Output folder for probe.csv, probe.png, probe.json (default: "
                            "results/probe-*).")


@o.command_options(o.INITS, o.SEEDS, *o.NETWORK, o.PROBE_BATCH, _PROBE_OUT, o.JSON,
                   inits="xavier,he_normal,orthogonal,lsuv", seeds="3", hidden="256x30",
                   typed=o.probe_options)
def probe(options: o.ProbeOptions, runtime: Runtime) -> None:
    """Show how the signal travels through the net at init: per-layer activation and gradient
    std and dead units, per initializer (no training)."""
    from rich.text import Text

    from initbench import experiment, jax_setup
    from initbench import probe as probe_lib
    from initbench.console import stderr, stdout
    from initbench.progress import RichReporter
    from initbench.runfolder import new_run_folder

    spec, as_json = options.spec, options.output.as_json
    reporter = RichReporter(stderr, show=not as_json)
    reporter.phase("starting JAX")
    runtime = jax_setup.start(runtime)
    reserved = options.out is None
    out = new_run_folder("probe") if reserved else options.out
    try:
        with experiment.model_prints_to_stderr():  # a model's prints while traced
            result = probe_lib.probe_run(spec, out, runtime, options.batch_size, reporter)
    finally:
        reporter.stop()
        if reserved:  # a default folder whose probe failed is not left behind
            from initbench.safeio import remove_if_empty

            remove_if_empty(out)
    if as_json:
        print(json.dumps(probe_lib.document(result, str(out)), indent=2))
        return
    stdout.print(probe_table(result))
    if result.lsuv_passes:
        from initbench import lsuv

        stderr.print(Text(lsuv.describe(probe_lib.document(result)["lsuv_passes"])))
    notice = result.meta.get("dataset_notice")
    if notice:
        stderr.print(Text.assemble(("note:", "yellow"),
                                   f" dataset used: {result.spec.dataset} — {notice}"))
    stderr.print(Text(f"probe written to {out}/ (probe.csv, probe.png, probe.json)"))


def probe_table(result):
    """The rich table: per init, activation std at the first/middle/last hidden layer and
    their ratio, dead units, back-propagated gradient std, LSUV passes."""
    from rich.table import Table
    from rich.text import Text

    from initbench import probe as probe_lib

    depth = result.num_hidden
    first, mid, last = 0, depth // 2, depth - 1
    table = Table(title=Text(probe_lib.title(result) + " (means over seeds)"), title_style="bold",
                  caption=_CAPTION)
    headers = ["init", f"act std L{first}", f"L{mid}", f"L{last}", "last/first",
               "dead % (mean)", f"dead % L{last}", f"grad std L{first}", f"L{last}",
               "grad first/last", "LSUV passes"]
    for header in headers:
        table.add_column(header, justify="left" if header == "init" else "right", no_wrap=True)
    for row in probe_lib.summarize(result):
        passes = result.lsuv_passes.get(row["init"])
        table.add_row(
            Text(row["init"]), _g(row["act_std_first"]), _g(row["act_std_mid"]),
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


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("probe")(probe)
