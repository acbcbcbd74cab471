"""CLI commands that list what is available: inits, datasets; and `data import`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from initbench.commands import options as o
from initbench.runtime import Runtime

data_app = typer.Typer(no_args_is_help=True, help="Manage datasets.")


PARAMETERS_NOTE = (
    "Parameters go in the name: NAME(VALUE) sets an initializer's one parameter, "
    "NAME(key=VALUE, ...) any of them, e.g. --inits 'xavier,normal(0.01),"
    "truncated_normal(stddev=0.02),uniform(0.1),he_normal(gain=2,mode=fan_avg)' (quote the "
    "list: parentheses are shell syntax). The name with its parameters is the initializer's "
    "label in every table, file, figure and card; --gain/--mode set them for every listed "
    "initializer and are written into each label they change (xavier --mode fan_in: "
    "xavier(mode=fan_in)). A parameter's default in the name changes nothing: normal(1) is "
    "normal, same cells. Parameters share their initializer's random stream: normal(0.01) "
    "is normal x 0.01, seed for seed.")


def list_inits() -> None:
    """List every initializer, its formula and the std it gives a 784x256 kernel."""
    from rich.table import Table
    from rich.text import Text

    from initbench import initializers, modern_inits
    from initbench.console import stdout

    by_target: dict[str, list[str]] = {}
    for alias, target in initializers.aliases().items():
        by_target.setdefault(target, []).append(alias)
    table = Table(title="Kernel initializers (kernel shape fan_in x fan_out)",
                  caption=PARAMETERS_NOTE)
    for header in ("name", "aliases", "formula", "std @ 784x256", "parameters", "paper"):
        table.add_column(header)
    for name in initializers.names():
        params = ", ".join(f"{k}={v}" for k, v in initializers.params(name).items())
        table.add_row(name, ", ".join(sorted(by_target.get(name, []))),
                      Text(initializers.formula(name)),  # "[in·k², out]" is no markup
                      f"{initializers.expected_std(name, 784, 256):.4f}", params or "—",
                      modern_inits.CITATIONS.get(name, "—"))
    stdout.print(table)
    stdout.print("delta is the Dirac kernel (identity; torch.nn.init.dirac_), not Xiao et al.'s "
                 "delta-orthogonal: that is delta_orthogonal. fixup and skipinit/rezero need "
                 "residual branches (--model resmlp or rescnn); zero and idinit draw no random "
                 "numbers; idinit(conv=patch) is IDInit's patch-maintain convolution.")
    bias = Table(title="Bias initializers (--bias-init)")
    bias.add_column("name")
    bias.add_column("formula")
    for name in initializers.BIAS_NAMES:
        bias.add_row(name, Text(initializers.bias_formula(name)))
    stdout.print(bias)


def list_datasets() -> None:
    """List every dataset, its shape, and whether it is available offline now."""
    from rich.table import Table
    from rich.text import Text

    from initbench import data
    from initbench.console import stdout

    table = Table(title=Text(f"Datasets (TFDS data dir: {data.tfds_data_dir()})"))
    for header in ("name", "source", "shape", "classes", "train", "test", "offline now",
                   "description"):
        table.add_column(header)
    for name in data.names():
        info = data.info(name)
        available = data.is_available_offline(name)
        table.add_row(name, info.source, "x".join(map(str, info.image_shape)),
                      str(info.num_classes), f"{info.num_train:,}", f"{info.num_test:,}",
                      Text("yes", "green") if available else Text("no", "dim"), info.description)
    stdout.print(table)


DIRECTORY = o.Opt("directory", (), Path, o.REQUIRED,
                  "Folder with the 4 MNIST IDX files (.gz ok).", argument=True)


@dataclass(frozen=True)
class ImportOptions:
    """What `data import` was given: the folder holding the IDX files."""

    directory: Path


def import_options(values: dict[str, Any]) -> ImportOptions:
    """The typed options of `data import` (the files are checked by `data.import_idx`)."""
    return ImportOptions(directory=values["directory"])


@o.command_options(DIRECTORY, typed=import_options)
def data_import(options: ImportOptions, _: Runtime) -> None:
    """Make manually downloaded MNIST IDX files usable offline (air-gapped machines)."""
    from rich.text import Text

    from initbench import data
    from initbench.console import stdout

    directory = options.directory
    where = data.import_idx(directory)
    stdout.print(Text(f"imported MNIST from {directory} into {where}; `--dataset mnist` now "
                      "works offline."))


def register(app: typer.Typer) -> None:
    """Add inits, datasets and the data group to `app`."""
    app.command("inits")(list_inits)
    app.command("datasets")(list_datasets)
    data_app.command("import")(data_import)
    app.add_typer(data_app, name="data")
