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


@o.command_options(o.INIT, *o.TRAINING, seeds="3", typed=o.train_options)
def run(options: o.TrainOptions, runtime: Runtime) -> None:
    """Train one initializer over several seeds."""
    train_and_report("run", options, runtime)


@o.command_options(o.INITS, *o.TRAINING, o.BASELINE, o.PAIRS, o.EQUIVALENCE_MARGIN,
                   typed=o.train_options)
def compare(options: o.TrainOptions, runtime: Runtime) -> None:
    """Train several initializers x seeds together and rank them, with paired verdicts."""
    train_and_report("compare", options, runtime)


def train_and_report(command: str, options: o.TrainOptions, runtime: Runtime) -> None:
    """Start JAX for the grid, train, write the run folder, print tables."""
    from initbench import experiment, jax_setup, plan, report, summary
    from initbench.console import stderr, stdout
    from initbench.progress import RichReporter
    from initbench.runfolder import new_run_folder
    from initbench.safeio import remove_if_empty

    spec, shown, cluster = options.spec, options.output, options.cluster
    pairs, margin_pt = summary.resolve_family(options.family.pairs,
                                              options.family.equivalence_margin)
    num_cells = len(spec.inits) * len(spec.lr) * len(spec.slots)  # the grid's cells
    reporter = RichReporter(stderr, show=not (shown.quiet or shown.as_json))
    reporter.phase("starting JAX")
    try:
        runtime = jax_setup.start(
            runtime.replace(use_cache=options.use_cache),
            plan.host_devices_for(num_cells // (cluster.num_processes or 1)),
            cluster.distributed, cluster.coordinator_address, cluster.num_processes,
            cluster.process_id)
    finally:
        reporter.stop()
    reporter.show = reporter.show and runtime.main  # one process of several speaks
    reserved = options.out is None
    out = new_run_folder(command) if reserved else Path(options.out)

    def print_tables(result) -> None:  # before the figures are drawn: they take seconds
        if shown.as_json:
            return
        report.print_result(stdout, result, result.summary, quiet=shown.quiet,
                            wide=shown.wide, curves=shown.curves)

    try:
        result = experiment.run_experiment(spec, out, runtime, reporter,
                                           baseline=options.family.baseline,
                                           target=options.target, pairs=pairs,
                                           margin_pt=margin_pt, on_summary=print_tables)
    finally:  # a reserved default folder that got no results is not left behind
        if reserved:
            remove_if_empty(out)
    if result is None:  # not process 0 of a multi-process run
        return
    if shown.as_json:
        print(json.dumps(report.result_document(result, result.summary, str(out)), indent=2))
        return
    if not shown.quiet:
        report.print_run_notes(stderr, result, out)


def register(app: typer.Typer) -> None:
    """Add run and compare to `app`."""
    app.command("run")(run)
    app.command("compare")(compare)
