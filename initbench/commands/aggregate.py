"""CLI command: aggregate — initializers compared across several runs (tasks), rliable's way.

Only typer and rich are imported at the top; NumPy, SciPy and matplotlib come in when the
command runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from initbench.commands import options as o
from initbench.runtime import Runtime

FILES = ("aggregate.csv", "improvement.csv", "profile.csv", "tasks.csv", "aggregate.md",
         "aggregate.png")

DIRS = o.Opt("dirs", (), list[Path], o.REQUIRED,
             "Run folders (tasks) that share initializers but differ in dataset, network or "
             "recipe; at least two, with the same number of seeds.", argument=True)
OUT = o.OUT.but(help="Write aggregate.csv, improvement.csv, profile.csv, tasks.csv, "
                     "aggregate.md and aggregate.png to this new (or empty) folder.")
REPS = o.Opt("reps", ("--reps",), int, 10_000, "Bootstrap resamples per interval.")


@dataclass(frozen=True)
class AggregateOptions:
    """What `aggregate` was given: the run folders (each once), the folder written (None:
    nothing written) and the bootstrap resamples."""

    dirs: tuple[Path, ...]
    out: Path | None
    reps: int


def aggregate_options(values: dict[str, Any]) -> AggregateOptions:
    """The typed options of `aggregate`, checked before any reading: a bad --out costs
    nothing."""
    from initbench import runfolder

    dirs, out = values["dirs"], values["out"]
    if out is not None:
        runfolder.check_new_folder(out)
    if len({Path(d).resolve() for d in dirs}) < len(dirs):
        from initbench.errors import InitbenchError

        raise InitbenchError("a run folder is given twice.")
    return AggregateOptions(dirs=tuple(dirs), out=out, reps=values["reps"])


@o.command_options(DIRS, OUT, REPS, typed=aggregate_options)
def aggregate(options: AggregateOptions, _: Runtime) -> None:
    """Across tasks: per initializer the IQM of the normalized score with stratified bootstrap
    CIs, P(one beats another) with CIs, and a performance profile. No training."""
    from initbench import aggregate as agg_lib
    from initbench import report, runfolder, summary
    from initbench.console import stderr, stdout

    dirs, out = options.dirs, options.out
    folders = [str(d) for d in dirs]
    runs = [runfolder.read_run(d) for d in dirs]
    labels = [report.title(summary.view(run)).replace(f" · {len(run.seeds)} seeds", "")
              for run in runs]
    inits, tasks, scores, diverged, dropped = agg_lib.task_scores(runs, folders, labels)
    agg = agg_lib.summarize(inits, tasks, scores, diverged, options.reps, dropped)
    if out is not None:
        write(agg, out)
    stdout.print(iqm_table(agg))
    stdout.print(pairs_table(agg))
    for init, missing in dropped.items():
        stderr.print(f"note: {init} left out: not in {', '.join(missing)}", markup=False,
                     highlight=False)
    if out is not None:
        stderr.print(f"aggregate written to {out}/ ({', '.join(FILES)})", markup=False,
                     highlight=False)


def write(agg, out: Path) -> None:
    """Write every file of `agg` into `out`, all at once (`safeio.write_folder`)."""
    from initbench import aggregate as agg_lib
    from initbench import aggregate_plot, runfolder, safeio
    from initbench.errors import InitbenchError

    files = {
        "aggregate.csv": runfolder.csv_text(agg_lib.iqm_csv_rows(agg), agg_lib.IQM_COLUMNS),
        "improvement.csv": runfolder.csv_text(agg_lib.improvement_csv_rows(agg),
                                            agg_lib.IMPROVEMENT_COLUMNS),
        "profile.csv": runfolder.csv_text(agg_lib.profile_csv_rows(agg),
                                        ("init", "tau", "share_above", "ci_low", "ci_high")),
        "tasks.csv": runfolder.csv_text(rows := agg_lib.task_csv_rows(agg), list(rows[0])),
        "aggregate.md": agg_lib.markdown(agg),
        "aggregate.png": aggregate_plot.render(agg),  # drawn before anything is written
    }
    try:
        safeio.write_folder(safeio.resolve_out(Path(out)),
                            {k: v.encode() if isinstance(v, str) else v for k, v in files.items()})
    except OSError as err:
        raise InitbenchError(safeio.describe_os_error(err)) from None


def iqm_table(agg):
    """The IQM table as a rich table, the verdict note as its caption."""
    from rich.table import Table
    from rich.text import Text

    from initbench import aggregate as agg_lib

    table = Table(title=Text(f"{len(agg.inits)} initializers across {len(agg.tasks)} tasks: "
                             + "; ".join(t.label for t in agg.tasks)), title_style="bold",
                  caption=Text(agg_lib.verdict_note(agg)), caption_justify="left")
    for header in ("#", "init", "tasks × seeds", "diverged", "IQM [95% CI]", "mean",
                   "clearly better than"):
        table.add_column(header, justify="left" if header in ("init", "clearly better than")
                         else "right", overflow="fold")
    for row in agg.rows:
        table.add_row(str(row.rank), row.init, f"{row.num_tasks} × {row.num_seeds}",
                      str(row.num_diverged), agg_lib.iqm_text(row), f"{row.mean:.3f}",
                      row.better_than.replace(";", ", ") or "—")
    return table


def pairs_table(agg):
    """Every pair: P(a > b) with its Bonferroni interval and the verdict."""
    from rich.table import Table
    from rich.text import Text

    from initbench import aggregate as agg_lib
    from initbench.report import VERDICT_STYLES

    level = f"{100 * agg.pairs[0].ci_level:.4g}%"
    table = Table(title=Text(f"probability of improvement, every pair ({level} CI)"),
                  title_style="bold")
    for header in ("a", "b", f"P(a > b) [{level} CI]", "verdict (a vs b)"):
        table.add_column(header, justify="right" if header.startswith("P") else "left")
    for pair in agg.pairs:
        table.add_row(pair.a, pair.b, agg_lib.pair_text(pair),
                      Text(pair.verdict, style=VERDICT_STYLES.get(pair.verdict, "")))
    return table


def register(app: typer.Typer) -> None:
    """Add aggregate to `app`."""
    app.command("aggregate")(aggregate)
