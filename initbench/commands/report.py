"""CLI commands that reopen run folders: report, plot, export. They never train.

Each takes one run folder or several. Several folders are merged when their training
settings match (same `training_key`): seeds are united, and an (init, seed) cell found in two
folders is refused. Folders with different settings are refused unless `--allow-mixed` is
given; then they are shown side by side, one row per (setting, init), labelled with the
settings that differ (e.g. `xavier lr=0.1`), and never pooled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from initbench.commands import options as o

Pairs = o.PAIRS.annotated
Margin = o.EQUIVALENCE_MARGIN.annotated

Dirs = Annotated[list[Path], typer.Argument(
    help="Run folders written by run/compare; several are merged (same settings).",
    show_default=False)]
Baseline = Annotated[str | None, typer.Option(
    "--baseline", help="Initializer every other is compared with, seed by seed "
    "(default: the run's own baseline).")]
Target = Annotated[float | None, typer.Option(
    "--target", help="Report the epochs needed to reach this test accuracy, in percent (e.g. "
    "97; default: the run's).")]
AllowMixed = Annotated[bool, typer.Option(
    "--allow-mixed", help="Show runs with different training settings side by side "
    "(rows labelled by the differing settings) instead of refusing them.")]


def report(
    dirs: Dirs,
    baseline: Baseline = None,
    target: Target = None,
    allow_mixed: AllowMixed = False,
    pairs: Pairs = None,
    equivalence_margin: Margin = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Also write the merged run (CSVs, spec.json, curves.png) to this new "
        "folder.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the table.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON document on stdout, nothing else.")] = False,
    wide: o.WIDE.annotated = False,
    curves: o.CURVES.annotated = False,
    html: Annotated[bool, typer.Option(
        "--html", help="Also write one self-contained HTML page (table, figures, card, "
        "settings, provenance): to the FILE.html given among the arguments, else to "
        "RUN_DIR/report.html.")] = False,
) -> None:
    """Re-render the ranked table and curves of saved runs; merge several. No training."""
    import json

    from initbench import report as report_lib
    from initbench import runfolder, summary
    from initbench.console import stderr, stdout

    dirs, html_path = html_target(dirs, html)
    target = o.target_fraction(target)
    result = runfolder.open_runs(dirs, allow_mixed)
    summarized = summary.summarize_saved(result, baseline, target, pairs, equivalence_margin)
    if out is not None:
        write_merged(summarized, out)
    if html_path is not None:
        write_html(summarized, html_path)
        if not quiet:
            stderr.print(f"html report written to {html_path}", markup=False, highlight=False)
    if as_json:
        print(json.dumps(report_lib.result_document(summarized, str(out) if out else None),
                         indent=2))
        return
    report_lib.print_result(stdout, summarized, quiet=quiet, wide=wide, curves=curves)
    if not quiet:
        merged = result.meta.get("merged_from")
        if merged:
            stderr.print(f"merged {len(merged)} runs: {len(result.inits)} rows x "
                         f"{len(result.seeds)} seeds ({_seed_text(result.seeds)}).")
        if out is not None:
            stderr.print(f"merged run written to {out}/ (curves.csv, summary.csv, spec.json, "
                         "curves.png)", markup=False, highlight=False)


def write_merged(summarized, out: Path) -> None:
    """Write a (merged) run with its summary (`summary.RunSummary`) as a new run folder,
    with its plot; refuse to replace a run. The run's meta records the summary's baseline,
    target, family and margin, so that reopening it gives the same table."""
    from initbench import experiment, plots, runfolder
    from initbench.errors import InitbenchError

    result, rows = summarized.result, list(summarized.rows)
    if result.labels is not None:
        raise InitbenchError("--out: runs of different settings are shown side by side but "
                              "cannot be saved as one run folder.")
    if (Path(out) / "spec.json").exists():
        raise InitbenchError(f"--out {out} already holds a run; choose a new folder.")
    out = runfolder.check_writable(out)
    if Path(out).is_dir() and any(Path(out).iterdir()):
        raise InitbenchError(f"--out {out} already holds files; choose a new or empty folder.")
    first = rows[0].family
    target = None if rows[0].reach is None else rows[0].reach.target
    result.meta["baseline"], result.meta["target"] = first.baseline, target
    margin = first.equivalence_margin
    result.meta["pairs"] = first.pairs
    result.meta["equivalence_margin"] = None if margin is None else 100 * margin
    # rendered first: a failure leaves no folder
    figure = plots.render(summarized.view, rows, "png")
    files = experiment.run_files(summarized)
    runfolder.write_run(out, result, summarized.csv_rows(), figure, files)


HTML_SUFFIXES = (".html", ".htm")


def html_target(dirs: list[Path], html: bool) -> tuple[list[Path], Path | None]:
    """(run folders, HTML file or None) of `report ... --html [FILE]`: FILE is the one
    argument ending in .html/.htm; without it, RUN_DIR/report.html of the one folder. Checked
    before any reading."""
    from initbench import runfolder
    from initbench.errors import InitbenchError

    named = [d for d in dirs if d.suffix.lower() in HTML_SUFFIXES]
    if not html:
        if named:
            raise InitbenchError(f"{named[0]} looks like an HTML file, not a run folder; "
                                 "add --html to write the report there.")
        return dirs, None
    if len(named) > 1:
        raise InitbenchError("--html takes one FILE.html; got "
                             + ", ".join(map(str, named)) + ".")
    folders = [d for d in dirs if d not in named]
    if not folders:
        raise InitbenchError("--html: no run folder given (e.g. initbench report RUN_DIR --html).")
    if named:
        path = named[0]
    elif len(folders) == 1:
        path = folders[0] / "report.html"
    else:
        raise InitbenchError("--html over several run folders needs a file name, e.g. "
                             "initbench report A B --html merged.html.")
    if path.is_dir():
        raise InitbenchError(f"--html {path} is a folder; give a file name ending in .html.")
    runfolder.check_output_path(path)
    return folders, path


def write_html(summarized, path: Path) -> None:
    """Write the run's HTML page (`html_report.page`) to `path`, atomically: every figure
    and the card are made first, so a failure writes nothing."""
    from initbench import html_report, runfolder

    cards, note = html_report.network_cards(summarized.result)
    text = html_report.page(summarized, html_report.figures(summarized), cards, note)
    runfolder.write_output(path, text)


def _seed_text(seeds: list[int]) -> str:
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"seeds {seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else f"seed {seeds[0]}"
    return "seeds " + ",".join(map(str, seeds))


def plot(
    dirs: Dirs,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Figure file to write: .png, .svg or .pdf (DIR/curves.png replaces "
        "the run's own). Required: reading a run never changes it by itself.")] = None,
    baseline: Baseline = None,
    allow_mixed: AllowMixed = False,
    pairs: Pairs = None,
    equivalence_margin: Margin = None,
) -> None:
    """Plot mean curves with 95% CI bands and final accuracy per seed (PNG, SVG or PDF)."""
    from initbench import plots, runfolder, summary
    from initbench.console import stderr
    from initbench.errors import InitbenchError

    figure_of = dirs[0] if len(dirs) == 1 else None  # its own curves.png may be redrawn
    if out is not None:
        plots.plot_format(out)  # a bad extension fails before any reading
        runfolder.check_output_path(out, figure_of)
    result = runfolder.open_runs(dirs, allow_mixed)
    if out is None:  # after reading: a broken folder is named first
        raise InitbenchError("plot needs --out FILE (.png, .svg or .pdf), e.g. --out "
                             f"{Path(dirs[0]) / 'curves.png'} to replace the run's own figure.")
    summarized = summary.summarize_saved(result, baseline, None, pairs, equivalence_margin)
    plots.save_plot(summarized.view, list(summarized.rows), out, figure_of)
    stderr.print(f"figure written to {out}", markup=False, highlight=False)


def export(
    dirs: Dirs,
    fmt: Annotated[str | None, typer.Option(
        "--format", "-f", help="markdown, csv, json or latex (booktabs). Default: from --out's "
        "extension (.md .csv .json .tex), else markdown.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write to this file (atomically) instead of stdout.")] = None,
    baseline: Baseline = None,
    target: Target = None,
    allow_mixed: AllowMixed = False,
    pairs: Pairs = None,
    equivalence_margin: Margin = None,
) -> None:
    """Export the summary with CIs and verdicts as markdown, CSV, JSON or LaTeX."""
    from initbench import export as export_lib
    from initbench import runfolder, summary
    from initbench.console import stderr

    fmt = export_lib.choose_format(fmt, str(out) if out is not None else None)
    if out is not None:
        runfolder.check_output_path(out)  # before reading
    target = o.target_fraction(target)
    result = runfolder.open_runs(dirs, allow_mixed)
    summarized = summary.summarize_saved(result, baseline, target, pairs, equivalence_margin)
    text = export_lib.render(summarized.view, list(summarized.rows), fmt)
    if out is None:
        typer.echo(text, nl=False)
        return
    runfolder.write_output(out, text)
    stderr.print(f"{fmt} written to {out}", markup=False, highlight=False)


def plan(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder (run/compare).",
                                            show_default=False)],
    effect: o.EFFECT.annotated = o.EFFECT.default,
    baseline: Baseline = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Also write the plan as CSV to this file (e.g. RUN_DIR/plan.csv). "
        "Without it nothing is written.")] = None,
) -> None:
    """How many seeds? Per comparison: sd of the paired differences, seeds needed for 80%
    power at 5% for --effect points, and the minimum detectable effect now. Reads the run,
    writes nothing unless --out is given."""
    import dataclasses
    import math

    import numpy as np

    from initbench import report as report_lib
    from initbench import runfolder, summary
    from initbench.console import stderr, stdout
    from initbench.errors import InitbenchError

    if not math.isfinite(effect) or effect <= 0:
        raise InitbenchError(f"--effect must be a positive number of accuracy points, "
                             f"got {effect:g}.")
    result = runfolder.read_run(run_dir)
    summarized = summary.summarize_saved(result, baseline)
    view = summarized.view  # the tuned cells, with rates
    plan_rows = summary.plan_rows(view, list(summarized.rows), effect)
    if not plan_rows:
        raise InitbenchError(f"{run_dir} has one initializer: there is no comparison to plan.")
    if not any(math.isfinite(row.diff_sd_pt) and row.seeds >= 2 for row in plan_rows):
        # every row would be NaN: nothing in this run says how much seeds differ
        diverged = not np.isfinite(view.metrics["test_accuracy"][..., -1]).any()
        why = ("every cell diverged" if diverged else
               "no comparison has 2 seeds on which both cells finished without diverging")
        raise InitbenchError(f"{run_dir}: {why}, so there is no spread of paired differences "
                             "to plan from; rerun with a smaller --lr or other initializers.")
    stdout.print(report_lib.plan_table(view, plan_rows))
    if out is None:
        return
    runfolder.write_output(out, runfolder.csv_text([dataclasses.asdict(r) for r in plan_rows],
                                               summary.PLAN_COLUMNS))
    stderr.print(f"plan written to {out}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add report, plot, export and plan to `app`."""
    app.command("report")(report)
    app.command("plot")(plot)
    app.command("export")(export)
    app.command("plan")(plan)
