"""The library API a notebook calls: `compare` trains and writes a run folder, `load` reopens
one; both return a `Run` (tables as pandas DataFrames, the figure, the ranked table in
Jupyter). The `run` and `compare` commands call `compare` too: one path.

Every option of `initbench compare` is a keyword here, taking either the command line's
text (`seeds="0,5,7"`, `lr="1e-4:1e-1:7"`, `hidden="256x4"`) or a Python value
(`seeds=5`, `seeds=[0, 5, 7]`, `lr=[0.001, 0.01]`, `hidden=[256, 256]`). User errors raise
`InitbenchError` before anything trains. pandas is imported only when a table is asked for,
so the CLI never loads it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from initbench import init_names
from initbench import spec as spec_lib
from initbench.errors import InitbenchError
from initbench.runtime import Runtime

# The Spec fields a keyword of `compare` sets, with how its command-line text is parsed.
_PARSERS: dict[str, Callable[[str], Any]] = {
    "inits": lambda text: init_names.split(text, "inits"),
    "seeds": spec_lib.parse_seeds,
    "lr": spec_lib.parse_lrs,
    "hidden": spec_lib.parse_hidden,
}


def _as_tuple(name: str, value) -> tuple:
    """A list-valued keyword as a tuple: text parsed as on the command line, a number (a seed
    count, one rate, one width) or a sequence of them taken as given."""
    if isinstance(value, str):
        return _PARSERS[name](value)
    if name == "seeds" and isinstance(value, int) and not isinstance(value, bool):
        return spec_lib.parse_seeds(str(value))
    if name in ("lr", "hidden") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, Sequence) or hasattr(value, "__iter__"):
        items = tuple(value.tolist() if hasattr(value, "tolist") else value)
        if name == "inits" and not all(isinstance(i, str) for i in items):
            raise InitbenchError(f"inits must be initializer names, got {items!r}.")
        return items
    raise InitbenchError(f"{name} must be text like the command line's or a list, got {value!r}.")


def make_spec(inits=spec_lib.DEFAULT_COMPARE_INITS, *, seeds=5, precision: float | None = None,
              **fields) -> spec_lib.Spec:
    """The validated `Spec` of `compare`'s training keywords (`seeds="auto"` with
    `precision`: the first round's seeds). InitbenchError naming the first bad value."""
    auto = isinstance(seeds, str) and seeds.strip().lower() == "auto"
    first = spec_lib.first_seeds(auto, precision)
    values = {"inits": _as_tuple("inits", inits),
              "seeds": first if auto else _as_tuple("seeds", seeds),
              "precision": precision}
    for name, value in fields.items():
        if name in ("lr", "hidden") and value is not None:
            value = _as_tuple(name, value)
        if value is not None or name in ("dataset", "gain", "mode", "val_fraction", "max_seeds",
                                             "base_width"):
            values[name] = value
    try:
        return spec_lib.Spec(**values)
    except TypeError as err:  # a keyword that is no setting
        raise InitbenchError(str(err)) from None


def compare(inits=spec_lib.DEFAULT_COMPARE_INITS, *, seeds=5, dataset: str | None = None,
            model: str = "mlp", epochs: int = 30, batch_size: int = 100, lr=0.01,
            val_fraction: float | None = None, optimizer: str = "adam", hidden=(256, 256),
            activation: str = "relu", bias_init: str = "zeros", gain: float | None = None,
            mode: str | None = None, lsuv_tol: float = 0.02, lsuv_max_iter: int = 20,
            track_layers: bool = False, precision: float | None = None,
            max_seeds: int | None = None, data_seeds: int = 1, param: str = "sp",
            base_width: int | None = None, norm: str = "none", dtype: str = "float32",
            baseline: str | None = None,
            target: float | None = None, pairs: str | None = None,
            equivalence_margin: float | None = None, out: str | Path | None = None,
            cache: bool = True, progress: bool = False, distributed: bool = False,
            coordinator_address: str | None = None, num_processes: int | None = None,
            process_id: int | None = None, runtime: Runtime | None = None,
            reporter=None, on_summary: Callable | None = None) -> Run | None:
    """Train every (initializer, seed) cell not already cached, write the run folder `out`
    (default: a new `results/compare-<timestamp>`) and return it as a `Run`.

    The keywords are `initbench compare`'s options (`target` in percent, like `--target`;
    `cache=False` is `--no-cache`; `progress=True` shows the progress bar on stderr).
    `runtime` holds the cache locations and the command line spec.json records (default:
    `Runtime.from_environment` with this call, as Python: a notebook has no command line, so
    this entry point builds one where the CLI would); `reporter` the progress display;
    `on_summary(result)` is called with the summary before the figures are drawn.
    Returns None in processes other than 0 of a `distributed` run.
    """
    given = {k: v for k, v in locals().items() if k not in _NOT_RECORDED}
    spec = make_spec(inits, seeds=seeds, precision=precision, dataset=dataset, model=model,
                     epochs=epochs, batch_size=batch_size, lr=lr, val_fraction=val_fraction,
                     optimizer=optimizer, hidden=hidden, activation=activation,
                     bias_init=bias_init, gain=gain, mode=mode, lsuv_tol=lsuv_tol,
                     lsuv_max_iter=lsuv_max_iter, track_layers=track_layers,
                     max_seeds=max_seeds, data_seeds=data_seeds, param=param,
                     base_width=base_width, norm=norm, dtype=dtype)
    target = spec_lib.target_fraction(target)
    if runtime is None:
        runtime = Runtime.from_environment((_python_call(given),))
    return run_spec(spec, baseline=baseline, target=target, pairs=pairs,
                    margin_pt=equivalence_margin, out=out, cache=cache, progress=progress,
                    distributed=distributed, coordinator_address=coordinator_address,
                    num_processes=num_processes, process_id=process_id, runtime=runtime,
                    reporter=reporter, on_summary=on_summary)


def run_spec(spec: spec_lib.Spec, *, baseline: str | None = None, target: float | None = None,
             pairs: str | None = None, margin_pt: float | None = None,
             out: str | Path | None = None, folder_name: str = "compare", cache: bool = True,
             progress: bool = False, distributed: bool = False,
             coordinator_address: str | None = None, num_processes: int | None = None,
             process_id: int | None = None, runtime: Runtime, reporter=None,
             on_summary: Callable | None = None) -> Run | None:
    """`compare` for a built `Spec`, with `target` as a fraction and `margin_pt` in points
    (as spec.json records them; `rerun` passes them back unchanged), under the caller's
    `runtime` (the CLI's, or the one `compare`/`rerun` build). A default `out` is a new
    `results/<folder_name>-<timestamp>`."""
    from initbench import experiment, jax_setup, plan, summary
    from initbench.runfolder import new_run_folder
    from initbench.safeio import remove_if_empty

    pairs, margin_pt = summary.resolve_family(pairs, margin_pt)
    if reporter is None:
        from initbench.console import stderr
        from initbench.progress import RichReporter, SilentReporter

        reporter = RichReporter(stderr) if progress else SilentReporter()
    num_cells = len(spec.inits) * len(spec.lr) * len(spec.slots)
    reporter.phase("starting JAX")
    try:
        runtime = jax_setup.start(runtime.replace(use_cache=cache),
                                  plan.host_devices_for(num_cells // (num_processes or 1)),
                                  distributed, coordinator_address, num_processes, process_id)
    finally:
        reporter.stop()
    if hasattr(reporter, "show"):
        reporter.show = reporter.show and runtime.main  # one process of several speaks
    reserved = out is None
    out = new_run_folder(folder_name) if reserved else Path(out)
    try:
        result = experiment.run_experiment(spec, out, runtime, reporter, baseline=baseline,
                                           target=target, pairs=pairs, margin_pt=margin_pt,
                                           on_summary=on_summary)
    finally:  # a reserved default folder that got no results is not left behind
        if reserved:
            remove_if_empty(out)
    if result is None:
        return None
    return Run(out, result)


_NOT_RECORDED = {"runtime", "reporter", "on_summary", "progress"}


def _python_call(given: dict) -> str:
    """`initbench.compare(...)` with the keywords that differ from their defaults."""
    import inspect

    defaults = {p.name: p.default for p in inspect.signature(compare).parameters.values()}
    shown = [f"{k}={v!r}" for k, v in given.items() if defaults.get(k) != v]
    return f"initbench.compare({', '.join(shown)})"




# spec.json's keys that record how and when a run was made, not what it computed: a rerun
# of the same run differs from it there only (and in `dataset_requested`/`dataset_notice`
# when the original asked for the default dataset: the rerun names the one it used).
PROVENANCE_KEYS = ("command", "seconds", "timings", "cells_trained", "cells_cached",
                   "dataset_requested", "dataset_notice", "git_revision")


def rerun(folder: str | Path, *, out: str | Path | None = None, cache: bool = True,
          progress: bool = False, runtime: Runtime | None = None, reporter=None,
          on_summary: Callable | None = None) -> Run:
    """Run again exactly what `folder`'s spec.json records (settings, seeds, baseline,
    target, comparisons, margin; the dataset actually used, never the default's fallback)
    into `out` (default: a new `results/rerun-<timestamp>`). With the cells still in the
    cache every cell is a cache hit; on the same platform the files are then byte-identical
    to `folder`'s but for spec.json's `PROVENANCE_KEYS`. InitbenchError if the data is not
    the data the run used (its `data_fingerprint`), before anything trains. `runtime`,
    `reporter` and `on_summary` are as for `compare`."""
    from initbench import runfolder

    folder = Path(folder)
    spec_path = folder / "spec.json"
    if not spec_path.is_file():
        raise InitbenchError(f"{folder} is not an initbench run (no spec.json).")
    spec, document = runfolder._read_spec(spec_path)
    if document.get("merged_from"):
        raise InitbenchError(f"{folder} is a merge of several runs (report --out); rerun "
                             "each of them instead.")
    _check_same_data(spec, document)
    if spec.auto_seeds:  # the rounds again, from the first: they stop where they stopped
        spec = spec.replace(seeds=tuple(range(spec_lib.AUTO_FIRST_ROUND)))
    if runtime is None:  # as `compare`: the Python entry point builds what the CLI would
        runtime = Runtime.from_environment((f"initbench.rerun({str(folder)!r})",))
    run = run_spec(spec, baseline=document.get("baseline"), target=document.get("target"),
                   pairs=document.get("pairs"), margin_pt=document.get("equivalence_margin"),
                   out=out, folder_name="rerun", cache=cache, progress=progress,
                   runtime=runtime, reporter=reporter, on_summary=on_summary)
    return run


def _check_same_data(spec: spec_lib.Spec, document: dict) -> None:
    """Refuse a rerun whose dataset no longer holds the arrays the run was trained on."""
    from initbench import data

    recorded = document.get("data_fingerprint")
    if recorded is None:
        return
    dataset, _ = data.load_data(spec)
    now = data.fingerprint(dataset)
    if now != recorded:
        raise InitbenchError(f"the dataset {spec.dataset} is not the data this run used "
                             f"(data_fingerprint {now[:12]}..., recorded {recorded[:12]}...): "
                             "it changed since; a rerun would not reproduce the run.")


def compare_folders(original: str | Path, again: str | Path) -> tuple[list[str], list[str]]:
    """(identical, different) file names of two run folders: every file byte for byte, and
    spec.json with its `PROVENANCE_KEYS` left out (the run's own files only; a differing
    spec.json is named with its differing keys: `spec.json (data_fingerprint)`)."""
    from initbench import runfolder

    original, again = Path(original), Path(again)
    names = sorted({p.name for p in (*original.iterdir(), *again.iterdir())
                    if p.name in runfolder.RUN_FILES})
    same, different = [], []
    for name in names:
        a, b = original / name, again / name
        if not (a.is_file() and b.is_file()):
            equal = False
        elif name == "spec.json":
            differing = spec_differences(a, b)
            equal = not differing
            name = f"spec.json ({', '.join(differing)})" if differing else name
        else:
            equal = a.read_bytes() == b.read_bytes()
        (same if equal else different).append(name)
    return same, different


def spec_differences(a: Path, b: Path) -> list[str]:
    """The top-level keys of two spec.json files that differ, `PROVENANCE_KEYS` left out."""
    documents = [json.loads(Path(p).read_text()) for p in (a, b)]
    keys = sorted((set(documents[0]) | set(documents[1])) - set(PROVENANCE_KEYS))
    return [k for k in keys if documents[0].get(k, ...) != documents[1].get(k, ...)]


def load(folder: str | Path) -> Run:
    """The `Run` of a run folder written by `compare` (or `initbench run/compare`);
    InitbenchError if it is not a whole run. Reads only: the folder is left as it is."""
    from initbench import runfolder

    folder = Path(folder)
    return Run(folder, runfolder.read_run(folder))


class Run:
    """One run folder: its tables as pandas DataFrames (the files' own columns), its
    settings, its figure, and its ranked table in Jupyter (`_repr_html_`).

    `result` is the `results.RunResult` ([init, seed, epoch] metrics); `rows` the ranked
    `summary.SummaryRow`s (computed again for a loaded run, as `initbench report` does)."""

    def __init__(self, folder: Path, result):
        self.folder = Path(folder)
        self.result = result

    def __repr__(self) -> str:
        return f"Run({str(self.folder)!r})"

    @property
    def rows(self) -> list:
        if not self.result.summary:
            from initbench import summary

            self.result.summary = summary.summarize_saved(self.result)
        return self.result.summary

    @property
    def spec(self) -> spec_lib.Spec:
        """The run's settings (spec.json's "spec"; `to_dict()` gives the JSON form)."""
        return self.result.spec

    @property
    def meta(self) -> dict:
        """The rest of spec.json: provenance, command line, data fingerprint, timings."""
        return self.result.meta

    def _table(self, name: str):
        import pandas as pd

        path = self.folder / name
        if not path.is_file():
            return None
        return pd.read_csv(path)

    @property
    def summary(self):
        """summary.csv: one row per initializer, ranked (DataFrame)."""
        return self._table("summary.csv")

    @property
    def curves(self):
        """curves.csv: one row per (init, lr, seed, epoch), long form (DataFrame)."""
        return self._table("curves.csv")

    @property
    def pairs(self):
        """pairs.csv of a `pairs="all"` run (every pair), else None."""
        return self._table("pairs.csv")

    @property
    def tuned(self):
        """tuned.csv of a run with several learning rates, else None."""
        return self._table("tuned.csv")

    @property
    def layers(self):
        """layers.csv of a `track_layers=True` run, else None."""
        return self._table("layers.csv")

    def figure(self):
        """The matplotlib Figure of curves.png (curves, final accuracies, paired panel)."""
        from initbench import plots

        return plots.make_figure(self.result.view, self.rows)

    def title(self) -> str:
        from initbench import report

        return report.title(self.result.view)

    def _repr_html_(self) -> str:
        """The ranked table as HTML, titled, with the verdict rule (Jupyter shows it)."""
        import html

        from initbench import report

        rows = self.rows
        columns, cells = report.ranked_table(rows)
        head = "".join(f"<th style='text-align:{j}'>{html.escape(h)}</th>" for h, j in columns)
        body = "".join("<tr>" + "".join(f"<td style='text-align:{j}'>{html.escape(str(c))}</td>"
                                        for c, (_, j) in zip(row, columns)) + "</tr>"
                       for row in cells)
        note = report.verdict_note(rows) if report.is_comparison(rows) else ""
        return (f"<div><p><b>{html.escape(self.title())}</b></p>"
                f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                f"<p><small>{html.escape(note)}</small></p>"
                f"<p><small>{html.escape(str(self.folder))}</small></p></div>")

    def to_dict(self) -> dict:
        """The run's JSON document (what `--json` prints)."""
        from initbench import report

        return json.loads(json.dumps(report.result_document(self.result, self.rows,
                                                            str(self.folder)), default=str))


def spec_fields() -> list[str]:
    """The names of the Spec's settings (for study files and error hints)."""
    return [f.name for f in dataclasses.fields(spec_lib.Spec) if f.name != "extra"]
