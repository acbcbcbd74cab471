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
    for renderable in card_renderables(document):
        stdout.print(renderable)
    for line in document.get("properties", []):
        stdout.print(Text(f"property: {line}"))
    if notice:
        stderr.print(Text.assemble(("note:", "yellow"), f" dataset used: {dataset.name} — {notice}"))


def card_renderables(document: dict) -> list:
    """What the card prints: its table, then the rules the table's rule column names, then
    (under a parameterization) what it does to each parameter, in a table of its own: one
    table holding both would not fit 100 columns without folding the parameter paths."""
    parts = [card_table(document), rules_legend(document)]
    if document.get("param") is not None:
        parts.append(param_table(document))
    return parts


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
        table.title = Text(f"{table.title} · --param {param}")
        table.caption += " Expected and drawn std: of the stored weight."
    # Narrow headers (two lines) and a short rule (its formula is said once, under the
    # table) keep the card within 100 columns; only the path and shape fold when narrower.
    for header in ("layer", "parameter", "shape", "fan\nin", "fan\nout", "rule",
                   "expected\nstd", "drawn\nstd"):
        table.add_column(header, justify="right" if header not in ("parameter", "rule")
                         else "left", no_wrap=header not in ("parameter", "shape"),
                         overflow="fold")
    dtypes = list(document["parameters"][0].get("by_dtype", {})) if document["parameters"] else []
    for dtype in dtypes:
        table.add_column(f"{dtype} std / mean / at bound", justify="right")
    for row in document["parameters"]:
        dtype_cells = [_dtype_cell(row["by_dtype"][d]) for d in dtypes]
        table.add_row(
            "—" if row["layer"] is None else str(row["layer"]), Text(row["path"]),
            "x".join(map(str, row["shape"])), _int(row["fan_in"]), _int(row["fan_out"]),
            Text(_short_rule(row)),
            "—" if row["expected_std"] is None else f"{row['expected_std']:.4g}",
            f"kept: {row['kept']}" if row.get("kept") else f"{row['drawn_std']:.4g}",
            *dtype_cells)
    return table


def param_table(document: dict):
    """What `--param` does to each parameter: its role, the factor on the stored weight,
    the forward multiplier, the std the forward pass sees and the learning rate."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(f"--param {document['param']} (base width "
                             f"{document['base_width'] or 'its own'}, --lr "
                             f"{document['lr']:g}), per parameter"),
                  caption="stored: the factor on the drawn weight; the forward pass uses "
                          "multiplier x stored (effective std); rate: this parameter's "
                          "learning rate.")
    for header in ("layer", "parameter", "role", "stored", "multiplier", "effective std",
                   "rate"):
        table.add_column(header, justify="left" if header in ("parameter", "role")
                         else "right", no_wrap=header != "parameter", overflow="fold")
    for row in document["parameters"]:
        if "multiplier" not in row:
            continue
        table.add_row("—" if row["layer"] is None else str(row["layer"]), Text(row["path"]),
                      row.get("role", ""), f"x {row['init_factor']:.4g}",
                      f"{row['multiplier']:.4g}", f"{row['effective_std']:.4g}",
                      f"{row['rate']:.4g}")
    return table


def rules_legend(document: dict):
    """The rules the card's rule column names, each said once: a rich grid of (key, formula)
    that wraps the formula, so a long one never squeezes the table's columns."""
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    legend: dict[str, str] = {}
    for row in document["parameters"]:
        key, formula = row["rule_legend"]
        legend.setdefault(key, formula)
    for key, formula in legend.items():
        grid.add_row(Text(f"{key}:"), Text(formula))
    return grid


def _short_rule(row: dict) -> str:
    """The rule column's text: the legend's key, this layer's factor, and the
    parameterization's factor on the stored weight where it has one."""
    factor = row.get("init_factor", 1.0)
    return row["rule_short"] + (f" x {factor:.4g}" if factor != 1.0 else "")


def _dtype_cell(stats: dict) -> str:
    """"std / mean / share at the truncation bound" of one dtype ("—" without a bound)."""
    bound = "—" if stats["at_bound"] is None else f"{stats['at_bound']:.2g}"
    return f"{stats['std']:.4g} / {stats['mean']:.2g} / {bound}"


def _int(value) -> str:
    return "—" if value is None else str(value)


def register(app: typer.Typer) -> None:
    """Add inspect to `app`."""
    app.command("inspect")(inspect_card)
