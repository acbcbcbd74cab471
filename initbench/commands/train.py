"""CLI commands: run and compare. `run` is `compare` with one initializer.

Only typer and JAX-free modules are imported here; JAX starts inside the command, after
`jax_setup.start` has set XLA up for the grid.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from initbench.commands import options as o
from initbench.runtime import Runtime


@o.command_options(o.INIT, *o.TRAINING, seeds="3")
def run(values: dict, runtime: Runtime) -> None:
    """Train one initializer over several seeds."""
    train_and_report("run", values, runtime)


@o.command_options(o.INITS, *o.TRAINING, o.BASELINE, o.PAIRS, o.EQUIVALENCE_MARGIN)
def compare(values: dict, runtime: Runtime) -> None:
    """Train several initializers x seeds together and rank them, with paired verdicts."""
    train_and_report("compare", values, runtime)


def train_and_report(command: str, values: dict, runtime: Runtime) -> None:
    """Train through `api.compare` (the library's one path) with the command's options,
    print the tables as soon as the summary exists, then the notes or the JSON document."""
    from initbench import api, report
    from initbench.console import stderr, stdout
    from initbench.progress import RichReporter
    from initbench.runfolder import new_run_folder
    from initbench.safeio import remove_if_empty

    quiet, as_json = values["quiet"], values["as_json"]
    keywords = {name: values[name] for name in _API_OPTIONS if name in values}
    if "init" in values:  # `run`: one initializer
        keywords["inits"] = o.INIT.parse(values["init"])
    reporter = RichReporter(stderr, show=not (quiet or as_json))
    reserved = values["out"] is None
    out = new_run_folder(command) if reserved else Path(values["out"])

    def print_tables(result) -> None:  # before the figures are drawn: they take seconds
        if as_json:
            return
        report.print_result(stdout, result, result.summary, quiet=quiet, wide=values["wide"],
                            curves=values["curves"])

    try:
        run = api.compare(**keywords, out=out, cache=not values["no_cache"], runtime=runtime,
                          reporter=reporter, on_summary=print_tables, command=runtime.command)
    finally:  # a reserved default folder that got no results is not left behind
        if reserved:
            remove_if_empty(out)
    if run is None:  # not process 0 of a multi-process run
        return
    result = run.result
    if as_json:
        print(json.dumps(report.result_document(result, result.summary, str(out)), indent=2))
        return
    if not quiet:
        report.print_run_notes(stderr, result, out)


# The options of run/compare that are keywords of `api.compare` under the same name.
_SPEC_OPTIONS = ("inits", "seeds", "precision", "max_seeds", "data_seeds", "epochs",
                 "batch_size", "lr", "val_fraction", "optimizer", "model", "dataset", "hidden",
                 "activation", "bias_init", "gain", "mode", "lsuv_tol", "lsuv_max_iter",
                 "track_layers")
_API_OPTIONS = (*_SPEC_OPTIONS, "baseline", "pairs", "equivalence_margin", "target",
                "distributed", "coordinator_address", "num_processes", "process_id")


def register(app: typer.Typer) -> None:
    """Add run and compare to `app`."""
    app.command("run")(run)
    app.command("compare")(compare)
