"""CLI command: inspect — the initialization card of one network under one initializer.

Only typer and rich are imported here; JAX comes in when the command runs.
"""

from __future__ import annotations

import json

import typer

from initbench.commands import options as o
from initbench.runtime import Runtime

SEED = o.Opt("seed", ("--seed",), int, 0, "The seed whose draw is shown.")


@o.command_options(o.INIT, *o.NETWORK, SEED, o.JSON, init="he_normal", typed=o.inspect_options)
def inspect_card(options: o.InspectOptions, runtime: Runtime) -> None:
    """The initialization card: every parameter's path, shape, fans, the rule applied, the
    expected std and the std actually drawn (one seed), as training starts it."""
    from rich.text import Text

    from initbench import data, experiment, jax_setup, starts
    from initbench.console import stderr, stdout
    from initbench.progress import RichReporter

    spec, seed, as_json = options.spec, options.spec.seeds[0], options.output.as_json
    reporter = RichReporter(stderr, show=not as_json)
    reporter.phase("starting JAX")
    jax_setup.start(runtime)
    reporter.phase(f"loading {spec.dataset or 'the dataset'}")
    dataset, notice = data.load_data(spec)
    spec = spec.replace(dataset=dataset.name)
    reporter.phase(f"building {spec.model} and drawing its parameters under {spec.inits[0]}")
    try:
        with experiment.model_prints_to_stderr():  # a model's prints while traced
            rows, properties = starts.init_card_and_properties(spec, spec.inits[0], seed,
                                                               dataset)
    finally:
        reporter.stop()
    document = {"model": spec.model, "init": spec.inits[0], "seed": seed,
                "dataset": dataset.name, "image_shape": list(dataset.image_shape),
                "bias_init": spec.bias_init, "parameters": rows,
                **({"param": spec.param, "base_width": spec.base_width, "lr": spec.lr[0]}
                   if spec.param != "sp" else {})}
    if properties:  # the initializer's defining property, checked on this draw
        document["properties"] = properties
    if as_json:
        print(json.dumps(document, indent=2))
        return
    stdout.print(card_table(document))
    for line in document.get("properties", []):
        stdout.print(Text(f"property: {line}"))
    if notice:
        stderr.print(Text.assemble(("note:", "yellow"), f" dataset used: {dataset.name} — {notice}"))


def card_table(document: dict):
    """The card as a rich table."""
    from rich.table import Table
    from rich.text import Text

    shape = "x".join(map(str, document["image_shape"]))
    table = Table(title=Text(f"{document['model']} · {document['init']} · seed "
                             f"{document['seed']} · {document['dataset']} images {shape}"),
                  caption="fans: kernel [..., in, out], receptive field = product of the "
                          "leading dims; fan_in = in x rf, fan_out = out x rf. Drawn std: over "
                          "the entries of this seed's draw.")
    param = document.get("param")  # a parameterization's columns
    if param is not None:
        table.title = Text(f"{table.title} · --param {param} (base width "
                           f"{document['base_width'] or 'its own'}, --lr {document['lr']:g})")
        table.caption += (" Expected and drawn std: of the stored weight; the forward pass "
                          "uses multiplier x stored (effective std); rate: this parameter's "
                          "learning rate.")
    extra = ("multiplier", "effective std", "rate") if param is not None else ()
    for header in ("layer", "parameter", "shape", "fan_in", "fan_out", "rule",
                   "expected std", "drawn std", *extra):
        table.add_column(header, justify="right" if header not in ("parameter", "rule")
                         else "left", no_wrap=header != "rule", overflow="fold")
    dtypes = list(document["parameters"][0].get("by_dtype", {})) if document["parameters"] else []
    for dtype in dtypes:
        table.add_column(f"{dtype} std / mean / at bound", justify="right")
    for row in document["parameters"]:
        dtype_cells = [_dtype_cell(row["by_dtype"][d]) for d in dtypes]
        table.add_row(
            "—" if row["layer"] is None else str(row["layer"]), Text(row["path"]),
            "x".join(map(str, row["shape"])), _int(row["fan_in"]), _int(row["fan_out"]),
            Text(row["rule"]),
            "—" if row["expected_std"] is None else f"{row['expected_std']:.4g}",
            f"kept: {row['kept']}" if row.get("kept") else f"{row['drawn_std']:.4g}",
            *((f"{row['multiplier']:.4g}", f"{row['effective_std']:.4g}", f"{row['rate']:.4g}")
              if param is not None else ()), *dtype_cells)
    return table


def _dtype_cell(stats: dict) -> str:
    """"std / mean / share at the truncation bound" of one dtype ("—" without a bound)."""
    bound = "—" if stats["at_bound"] is None else f"{stats['at_bound']:.2g}"
    return f"{stats['std']:.4g} / {stats['mean']:.2g} / {bound}"


def _int(value) -> str:
    return "—" if value is None else str(value)


def register(app: typer.Typer) -> None:
    """Add inspect to `app`."""
    app.command("inspect")(inspect_card)
