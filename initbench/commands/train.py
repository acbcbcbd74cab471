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
    """Train through the library (`api.run_spec`, what `initbench.compare` calls: one path),
    print the tables as soon as the summary exists, then the notes or the JSON document."""
    from initbench import api, report
    from initbench.console import stderr, stdout
    from initbench.progress import RichReporter
    from initbench.runfolder import new_run_folder
    from initbench.safeio import remove_if_empty

    shown, cluster, family = options.output, options.cluster, options.family
    reporter = RichReporter(stderr, show=not (shown.quiet or shown.as_json))
    reserved = options.out is None
    out = new_run_folder(command) if reserved else Path(options.out)

    def print_tables(result) -> None:  # before the figures are drawn: they take seconds
        if shown.as_json:
            return
        report.print_result(stdout, result, result.summary, quiet=shown.quiet,
                            wide=shown.wide, curves=shown.curves)

    try:
        run = api.run_spec(options.spec, baseline=family.baseline, target=options.target,
                           pairs=family.pairs, margin_pt=family.equivalence_margin, out=out,
                           cache=options.use_cache, distributed=cluster.distributed,
                           coordinator_address=cluster.coordinator_address,
                           num_processes=cluster.num_processes,
                           process_id=cluster.process_id, runtime=runtime,
                           reporter=reporter, on_summary=print_tables)
    finally:  # a reserved default folder that got no results is not left behind
        if reserved:
            remove_if_empty(out)
    if run is None:  # not process 0 of a multi-process run
        return
    result = run.result
    if shown.as_json:
        print(json.dumps(report.result_document(result, result.summary, str(out)), indent=2))
        return
    if not shown.quiet:
        report.print_run_notes(stderr, result, out)


def register(app: typer.Typer) -> None:
    """Add run and compare to `app`."""
    app.command("run")(run)
    app.command("compare")(compare)
