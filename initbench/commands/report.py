"""CLI commands that reopen run folders: report, plot, export, plan. They never train.

Each takes one run folder or several. Several folders are merged when their training
settings match (same `training_key`): seeds are united, and an (init, seed) cell found in two
folders is refused. Folders with different settings are refused unless `--allow-mixed` is
given; then they are shown side by side, one row per (setting, init), labelled with the
settings that differ (e.g. `xavier lr=0.1`), and never pooled.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from initbench.commands import options as o
from initbench.runtime import Runtime

DIRS = o.Opt("dirs", (), list[Path], o.REQUIRED,
             "Run folders written by run/compare; several are merged (same settings).",
             argument=True)
RUN_DIR = o.Opt("run_dir", (), Path, o.REQUIRED, "A finished run folder (run/compare).",
                argument=True)
BASELINE = o.BASELINE.but(help="Initializer every other is compared with, seed by seed "
                               "(default: the run's own baseline).")
TARGET = o.TARGET.but(help="Report the epochs needed to reach this test accuracy, in percent "
                           "(e.g. 97; default: the run's).")
ALLOW_MIXED = o.Opt("allow_mixed", ("--allow-mixed",), bool, False,
                    "Show runs with different training settings side by side (rows labelled by "
                    "the differing settings) instead of refusing them.")
REPORT_OUT = o.OUT.but(help="Also write the merged run (CSVs, spec.json, curves.png) to this "
                            "new folder.")
QUIET = o.QUIET.but(help="Print only the table.")
HTML = o.Opt("html", ("--html",), bool, False,
             "Also write one self-contained HTML page (table, figures, card, settings, "
             "provenance): to the FILE.html given among the arguments, else to "
             "RUN_DIR/report.html.")
PLOT_OUT = o.OUT.but(help="Figure file to write: .png, .svg or .pdf (DIR/curves.png replaces "
                          "the run's own). Required: reading a run never changes it by itself.")
FORMAT = o.Opt("fmt", ("--format", "-f"), str | None, None,
               "markdown, csv, json or latex (booktabs). Default: from --out's extension (.md "
               ".csv .json .tex), else markdown.")
EXPORT_OUT = o.OUT.but(help="Write to this file (atomically) instead of stdout.")
PLAN_OUT = o.OUT.but(help="Also write the plan as CSV to this file (e.g. RUN_DIR/plan.csv). "
                          "Without it nothing is written.")


@dataclass(frozen=True)
class Reading:
    """Which saved runs a reading command opens and what their verdicts compare: the run
    folders, `--allow-mixed`, and `--baseline`/`--pairs`/`--equivalence-margin` (None: the
    run's own)."""

    dirs: tuple[Path, ...]
    allow_mixed: bool
    family: o.Family


def _reading(values: dict[str, Any], dirs: list[Path]) -> Reading:
    return Reading(dirs=tuple(dirs), allow_mixed=values["allow_mixed"],
                   family=o.part(o.Family, values))


@dataclass(frozen=True)
class ReportOptions:
    """What `report` was given: the runs read, `--target` as a fraction (None: the run's),
    the merged run's folder, the HTML file (None: no page) and the output form."""

    reading: Reading
    target: float | None
    out: Path | None
    html: Path | None
    output: o.Output


def report_options(values: dict[str, Any]) -> ReportOptions:
    """The typed options of `report`, checked before any run is read."""
    dirs, html_path = html_target(values["dirs"], values["html"])
    return ReportOptions(reading=_reading(values, dirs), target=o.target_fraction(values["target"]),
                         out=values["out"], html=html_path, output=o.part(o.Output, values))


def _open(reading: Reading):
    """The runs `reading` names, merged (or side by side with --allow-mixed)."""
    from initbench import runfolder

    return runfolder.open_runs(list(reading.dirs), reading.allow_mixed)


def _summarize(result, reading: Reading, target: float | None = None):
    """The summary (`summary.RunSummary`) of `result` under `reading`'s comparisons (None:
    the run's own)."""
    from initbench import summary

    family = reading.family
    return summary.summarize_saved(result, family.baseline, target, family.pairs,
                                   family.equivalence_margin)


@o.command_options(DIRS, BASELINE, TARGET, ALLOW_MIXED, o.PAIRS, o.EQUIVALENCE_MARGIN,
                   REPORT_OUT, QUIET, o.JSON, o.WIDE, o.CURVES, HTML, typed=report_options)
def report(options: ReportOptions, _: Runtime) -> None:
    """Re-render the ranked table and curves of saved runs; merge several. No training."""
    import json

    from initbench import report as report_lib
    from initbench.console import stderr, stdout

    out, shown = options.out, options.output
    result = _open(options.reading)
    summarized = _summarize(result, options.reading, options.target)
    if out is not None:
        write_merged(summarized, out)
    if options.html is not None:
        write_html(summarized, options.html)
        if not shown.quiet:
            stderr.print(f"html report written to {options.html}", markup=False,
                         highlight=False)
    if shown.as_json:
        print(json.dumps(report_lib.result_document(summarized, str(out) if out else None),
                         indent=2))
        return
    report_lib.print_result(stdout, summarized, quiet=shown.quiet, wide=shown.wide,
                            curves=shown.curves)
    if not shown.quiet:
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
    out = runfolder.check_new_folder(out)
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


@dataclass(frozen=True)
class PlotOptions:
    """What `plot` was given: the runs read and the figure file (None: refused, after the
    runs are read, so that a broken folder is named first)."""

    reading: Reading
    out: Path | None


def plot_options(values: dict[str, Any]) -> PlotOptions:
    """The typed options of `plot`; a bad --out fails before any reading."""
    from initbench import plots, runfolder

    dirs, out = values["dirs"], values["out"]
    if out is not None:
        plots.plot_format(out)
        runfolder.check_output_path(out, _figure_of(dirs))
    return PlotOptions(reading=_reading(values, dirs), out=out)


def _figure_of(dirs) -> Path | None:
    """The one run folder whose own curves.png `plot` may redraw (None with several)."""
    return dirs[0] if len(dirs) == 1 else None


@o.command_options(DIRS, PLOT_OUT, BASELINE, ALLOW_MIXED, o.PAIRS, o.EQUIVALENCE_MARGIN,
                   typed=plot_options)
def plot(options: PlotOptions, _: Runtime) -> None:
    """Plot mean curves with 95% CI bands and final accuracy per seed (PNG, SVG or PDF)."""
    from initbench import plots
    from initbench.console import stderr
    from initbench.errors import InitbenchError

    dirs, out = options.reading.dirs, options.out
    result = _open(options.reading)
    if out is None:  # after reading: a broken folder is named first
        raise InitbenchError("plot needs --out FILE (.png, .svg or .pdf), e.g. --out "
                             f"{Path(dirs[0]) / 'curves.png'} to replace the run's own figure.")
    summarized = _summarize(result, options.reading)
    plots.save_plot(summarized.view, list(summarized.rows), out, _figure_of(dirs))
    stderr.print(f"figure written to {out}", markup=False, highlight=False)


@dataclass(frozen=True)
class ExportOptions:
    """What `export` was given: the runs read, the format, the file (None: stdout) and
    `--target` as a fraction (None: the run's)."""

    reading: Reading
    fmt: str
    out: Path | None
    target: float | None


def export_options(values: dict[str, Any]) -> ExportOptions:
    """The typed options of `export`, checked before any reading."""
    from initbench import export as export_lib
    from initbench import runfolder

    out = values["out"]
    fmt = export_lib.choose_format(values["fmt"], str(out) if out is not None else None)
    if out is not None:
        runfolder.check_output_path(out)
    return ExportOptions(reading=_reading(values, values["dirs"]), fmt=fmt, out=out,
                         target=o.target_fraction(values["target"]))


@o.command_options(DIRS, FORMAT, EXPORT_OUT, BASELINE, TARGET, ALLOW_MIXED, o.PAIRS,
                   o.EQUIVALENCE_MARGIN, typed=export_options)
def export(options: ExportOptions, _: Runtime) -> None:
    """Export the summary with CIs and verdicts as markdown, CSV, JSON or LaTeX."""
    from initbench import export as export_lib
    from initbench import runfolder
    from initbench.console import stderr

    result = _open(options.reading)
    summarized = _summarize(result, options.reading, options.target)
    text = export_lib.render_summary(summarized, options.fmt)
    if options.out is None:
        typer.echo(text, nl=False)
        return
    runfolder.write_output(options.out, text)
    stderr.print(f"{options.fmt} written to {options.out}", markup=False, highlight=False)


@dataclass(frozen=True)
class PlanOptions:
    """What `plan` was given: the run, the effect to detect (accuracy points), the baseline
    (None: the run's) and the CSV file (None: nothing written)."""

    run_dir: Path
    effect: float
    baseline: str | None
    out: Path | None


def plan_options(values: dict[str, Any]) -> PlanOptions:
    """The typed options of `plan`."""
    import math

    from initbench.errors import InitbenchError

    effect = values["effect"]
    if not math.isfinite(effect) or effect <= 0:
        raise InitbenchError(f"--effect must be a positive number of accuracy points, "
                             f"got {effect:g}.")
    return PlanOptions(run_dir=values["run_dir"], effect=effect, baseline=values["baseline"],
                       out=values["out"])


@o.command_options(RUN_DIR, o.EFFECT, BASELINE, PLAN_OUT, typed=plan_options)
def plan(options: PlanOptions, _: Runtime) -> None:
    """How many seeds? Per comparison: sd of the paired differences, seeds needed for 80%
    power at 5% for --effect points, and the minimum detectable effect now. Reads the run,
    writes nothing unless --out is given."""
    import math

    import numpy as np

    from initbench import report as report_lib
    from initbench import runfolder, summary
    from initbench.console import stderr, stdout
    from initbench.errors import InitbenchError

    run_dir, out = options.run_dir, options.out
    result = runfolder.read_run(run_dir)
    summarized = summary.summarize_saved(result, options.baseline)
    view = summarized.view  # the tuned cells of a rate grid, with their rates
    plan_rows = summary.plan_rows(view, list(summarized.rows), options.effect)
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
