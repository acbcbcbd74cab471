"""CLI command: rerun — run again exactly what a run folder's spec.json records.

A thin wrapper over `api.rerun`: prints the table as `compare` does, then how many cells came
from the cache and which of the run's files came out byte-identical to the original's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from initbench.commands import options as o
from initbench.runtime import Runtime

FOLDER = o.Opt("folder", (), Path, o.REQUIRED, "A run folder written by run/compare.",
               argument=True)
OUT = o.OUT.but(help="Output folder (default: a new results/rerun-* folder).")


@dataclass(frozen=True)
class RerunOptions:
    """What `rerun` was given: the run folder, the new folder (None: a new one under
    results/), whether cached cells are used and the output form."""

    folder: Path
    out: Path | None
    use_cache: bool
    output: o.Output


def rerun_options(values: dict[str, Any]) -> RerunOptions:
    """The typed options of `rerun` (the folder itself is checked by `api.rerun`)."""
    return RerunOptions(folder=values["folder"], out=values["out"],
                        use_cache=not values["no_cache"], output=o.part(o.Output, values))


@o.command_options(FOLDER, OUT, o.NO_CACHE, o.QUIET, o.JSON, typed=rerun_options)
def rerun(options: RerunOptions, runtime: Runtime) -> None:
    """Run exactly what a run folder's spec.json records; with its cells cached every cell
    is a cache hit and the files come out byte-identical (spec.json's provenance aside)."""
    from rich.text import Text

    from initbench import api, report
    from initbench.console import stderr, stdout
    from initbench.progress import RichReporter

    folder, quiet, as_json = options.folder, options.output.quiet, options.output.as_json
    reporter = RichReporter(stderr, show=not (quiet or as_json))

    def print_tables(result) -> None:
        if not as_json:
            report.print_result(stdout, result, result.summary, quiet=quiet)

    run = api.rerun(folder, out=options.out, cache=options.use_cache, runtime=runtime,
                    reporter=reporter, on_summary=print_tables)
    same, different = api.compare_folders(folder, run.folder)
    if as_json:
        document = report.result_document(run.result, run.result.summary, str(run.folder))
        document["rerun"] = {"of": str(folder), "identical": same, "different": different}
        print(json.dumps(document, indent=2))
        return
    if quiet:
        return
    report.print_run_notes(stderr, run.result, run.folder)
    meta = run.meta
    total = meta.get("cells_trained", 0) + meta.get("cells_cached", 0)
    cells = (f"all {total} cells from the cache" if not meta.get("cells_trained") else
             f"{meta['cells_trained']} of {total} cells trained again (not in the cache)")
    verdict = (f"every file identical to {folder}'s (spec.json's provenance aside)"
               if not different else f"different from {folder}: {', '.join(different)}")
    stderr.print(Text(f"rerun: {cells}; {verdict}."))


def register(app: typer.Typer) -> None:
    """Add rerun to `app`."""
    app.command("rerun")(rerun)
