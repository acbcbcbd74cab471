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
    """Build the Spec and Runtime from `values`, train, write the run folder, print tables."""
    from initbench import experiment, jax_setup, plan, report, summary
    from initbench.console import stderr, stdout
    from initbench.progress import RichReporter
    from initbench.runfolder import new_run_folder
    from initbench.safeio import remove_if_empty

    spec = o.build_spec(values)
    pairs, margin_pt = summary.resolve_family(values.get("pairs"),
                                              values.get("equivalence_margin"))
    target = o.target_fraction(values["target"])
    num_cells = len(spec.inits) * len(spec.lr) * len(spec.slots)  # the grid's cells
    quiet, as_json = values["quiet"], values["as_json"]
    reporter = RichReporter(stderr, show=not (quiet or as_json))
    reporter.phase("starting JAX")
    try:
        runtime = jax_setup.start(
            runtime.replace(use_cache=not values["no_cache"]),
            plan.host_devices_for(num_cells // (values["num_processes"] or 1)),
            values["distributed"], values["coordinator_address"], values["num_processes"],
            values["process_id"])
    finally:
        reporter.stop()
    reporter.show = reporter.show and runtime.main  # one process of several speaks
    reserved = values["out"] is None
    out = new_run_folder(command) if reserved else Path(values["out"])

    def print_tables(result) -> None:  # before the figures are drawn: they take seconds
        if as_json:
            return
        report.print_result(stdout, result, result.summary, quiet=quiet, wide=values["wide"],
                            curves=values["curves"])

    try:
        result = experiment.run_experiment(spec, out, runtime, reporter,
                                           baseline=values.get("baseline"), target=target,
                                           pairs=pairs, margin_pt=margin_pt,
                                           on_summary=print_tables)
    finally:  # a reserved default folder that got no results is not left behind
        if reserved:
            remove_if_empty(out)
    if result is None:  # not process 0 of a multi-process run
        return
    if as_json:
        print(json.dumps(report.result_document(result, result.summary, str(out)), indent=2))
        return
    if not quiet:
        report.print_run_notes(stderr, result, out)


def register(app: typer.Typer) -> None:
    """Add run and compare to `app`."""
    app.command("run")(run)
    app.command("compare")(compare)
