"""The Typer app: options in, a Spec to the library, tables out.

Every `InitbenchError` (and every usage error) becomes one line on stderr and exit code 2,
here and nowhere else. JAX and TensorFlow are imported only inside commands that need them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from initbench.commands import bench, probe, report
from initbench.console import stderr, stdout
from initbench.errors import InitbenchError

try:  # typer >= 0.20 vendors click; older typer raises click's own exceptions
    from typer import TyperException as _CliError
except ImportError:  # pragma: no cover
    from click import ClickException as _CliError


_invocation: list[str] = ["initbench"]  # the command line, recorded in spec.json


class _Interrupted(Exception):
    """Ctrl-C inside a command (Typer would turn KeyboardInterrupt into a silent exit 130)."""


class _Group(typer.core.TyperGroup):
    """Turns user and usage errors into one line on stderr and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise _Interrupted() from None

    def main(self, args=None, *rest, **kwargs):
        kwargs["standalone_mode"] = False
        global _invocation
        _invocation = ["initbench", *(sys.argv[1:] if args is None else args)]
        try:
            code = super().main(args, *rest, **kwargs)
        except InitbenchError as err:
            _fail(str(err), 2)
        except _CliError as err:
            # No command at all: the help is the message (rich printed it already).
            _fail(err.format_message(), getattr(err, "exit_code", 2))
        except (typer.Abort, KeyboardInterrupt, _Interrupted):
            _fail("interrupted: finished cells are cached; the same command resumes.", 130)
        except OSError as err:  # the safety net: every expected one is an InitbenchError
            from initbench.safeio import describe_os_error

            _fail(describe_os_error(err), 2)
        except MemoryError:
            _fail("out of host memory; use fewer seeds or initializers, or a smaller --hidden "
                  "(finished cells are cached).", 2)
        except Exception as err:
            if "RESOURCE_EXHAUSTED" not in str(err):
                raise
            _fail("the device ran out of memory; use a smaller --hidden or --batch-size "
                  "(finished cells are cached).", 2)
        sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int):
    """One line on stderr (user text printed verbatim, never as markup), then exit."""
    from rich.markup import escape

    if message.strip() and not message.lstrip().startswith("Usage:"):
        stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True)
    elif message.strip():
        stderr.print(message, highlight=False, markup=False)
    sys.exit(code)


app = typer.Typer(cls=_Group, no_args_is_help=True, add_completion=False,
                  rich_markup_mode="rich", pretty_exceptions_enable=False,
                  help="Compare neural-network weight initializers over seeds, honestly.")
data_app = typer.Typer(no_args_is_help=True, help="Manage datasets.")
app.add_typer(data_app, name="data")

# ---------------------------------------------------------------- shared options
Seeds = Annotated[str, typer.Option("--seeds", help="Count N (seeds 0..N-1), list 0,5,7 or range 3-6.")]
Dataset = Annotated[str | None, typer.Option(
    "--dataset", help="Dataset name (see `initbench datasets`). Default: mnist, or the embedded "
    "mnist-5k when full MNIST is not available offline.")]
Epochs = Annotated[int, typer.Option("--epochs", help="Training epochs.")]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Minibatch size.")]
Lr = Annotated[float, typer.Option("--lr", help="Learning rate.")]
Optimizer = Annotated[str, typer.Option(
    "--optimizer", help="adam, adamw, sgd, momentum (0.9), rmsprop, nadam, adagrad.")]
Hidden = Annotated[str, typer.Option("--hidden", help="Hidden widths: 256,256 or 256x4 (4 layers).")]
Activation = Annotated[str, typer.Option(
    "--activation", help="relu, tanh, gelu, sigmoid, elu, selu, silu, leaky_relu, softplus, linear.")]
BiasInit = Annotated[str, typer.Option(
    "--bias-init", help="Bias initializer: zeros, normal (stddev 1, the classic script), "
    "uniform, truncated_normal, torch_default, constant.")]
Gain = Annotated[float | None, typer.Option(
    "--gain", help="Gain for variance-scaling, orthogonal, lsuv and identity initializers.")]
Mode = Annotated[str | None, typer.Option(
    "--mode", help="Fan mode for the variance-scaling family: fan_in, fan_out, fan_avg.")]
LsuvTol = Annotated[float, typer.Option("--lsuv-tol", help="LSUV: output variance tolerance.")]
LsuvMaxIter = Annotated[int, typer.Option("--lsuv-max-iter", help="LSUV: max passes per layer.")]
TrackLayers = Annotated[bool, typer.Option(
    "--track-layers", help="Record per-layer gradient norm and dead-unit fraction per epoch.")]
Out = Annotated[Path | None, typer.Option(
    "--out", help="Output folder (default: a new folder under results/).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final table.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")]
NoCache = Annotated[bool, typer.Option(
    "--no-cache", help="Retrain every cell even if a finished one is cached.")]
Baseline = Annotated[str | None, typer.Option(
    "--baseline", help="Initializer every other is compared with, seed by seed (default: first).")]
Target = Annotated[float | None, typer.Option(
    "--target", help="Report the epochs needed to reach this test accuracy (e.g. 0.97).")]
Distributed = Annotated[bool, typer.Option(
    "--distributed", help="Train across processes/hosts with jax.distributed: the cluster "
    "(SLURM, ...) is detected, or give the three options below. Process 0 writes the results.")]
CoordinatorAddress = Annotated[str | None, typer.Option(
    "--coordinator-address", help="With --distributed: HOST:PORT of process 0.")]
NumProcesses = Annotated[int | None, typer.Option(
    "--num-processes", help="With --distributed: how many processes train together.")]
ProcessId = Annotated[int | None, typer.Option(
    "--process-id", help="With --distributed: this process's rank, 0..num-processes-1.")]


def _train_command(command: str, inits: str, seeds: str, dataset, epochs, batch_size, lr,
                   optimizer, hidden, activation, bias_init, gain, mode, lsuv_tol, lsuv_max_iter,
                   track_layers, out, quiet, as_json, no_cache, baseline, target,
                   cluster: tuple = (False, None, None, None)) -> None:
    from initbench import spec as spec_lib

    spec = spec_lib.Spec(
        inits=spec_lib.parse_list(inits, "inits"), seeds=spec_lib.parse_seeds(seeds),
        dataset=dataset, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
        hidden=spec_lib.parse_hidden(hidden), activation=activation, bias_init=bias_init,
        gain=gain, mode=mode, lsuv_tol=lsuv_tol, lsuv_max_iter=lsuv_max_iter,
        track_layers=track_layers,
    )
    if target is not None and not 0 < target <= 1:
        raise InitbenchError(f"--target must be an accuracy in (0, 1], got {target}.")
    baseline = spec.resolve_init(baseline, "--baseline")
    _setup_jax(len(spec.inits) * len(spec.seeds), *cluster)
    if out is None:
        out = _new_run_folder(command)
        try:
            _run_and_report(spec, out, quiet, as_json, no_cache, baseline, target)
        finally:  # a reserved default folder that got no results is not left behind
            _remove_if_empty(out)
        return
    _run_and_report(spec, out, quiet, as_json, no_cache, baseline, target)


def _remove_if_empty(folder: Path) -> None:
    from initbench.safeio import remove_if_empty

    remove_if_empty(folder)


def _setup_jax(num_cells: int, distributed: bool, coordinator_address: str | None,
               num_processes: int | None, process_id: int | None) -> None:
    """Before JAX starts: split a CPU into host devices for the grid, join a cluster if asked."""
    from initbench import jax_setup

    if not distributed and any(v is not None for v in (coordinator_address, num_processes,
                                                        process_id)):
        raise InitbenchError("--coordinator-address, --num-processes and --process-id need "
                             "--distributed.")
    if distributed:  # first: it checks its options (XLA flags apply later, when devices start)
        jax_setup.init_distributed(coordinator_address, num_processes, process_id)
    jax_setup.configure_xla(jax_setup.host_devices_for(num_cells // (num_processes or 1)))


def _new_run_folder(command: str) -> Path:
    from initbench.results import new_run_folder

    return new_run_folder(command)


def _run_and_report(spec, out: Path, quiet: bool, as_json: bool, no_cache: bool,
                    baseline: str | None, target: float | None) -> None:
    from rich.markup import escape

    from initbench import experiment, report, summary
    from initbench.progress import RichReporter

    main = experiment.is_main_process()  # in a multi-process run only process 0 reports
    reporter = RichReporter(stderr, show=main and not (quiet or as_json))
    result = experiment.run_experiment(spec, out, reporter, use_cache=not no_cache,
                                       command=list(_invocation), baseline=baseline,
                                       target=target)
    if result is None:
        return
    rows = summary.summarize_run(result, baseline, target)  # curves.png is in the folder already
    if as_json:
        print(json.dumps(report.result_document(result, rows, str(out)), indent=2))
        return
    if not quiet:
        stdout.print(report.curves_group(result))
    stdout.print(report.summary_table(result, rows))
    if not quiet:
        notice = result.meta.get("dataset_notice")
        if notice:
            stderr.print(f"[yellow]note:[/] dataset used: {result.dataset} — {escape(notice)}")
        cached = result.meta.get("cells_cached", 0)
        extra = f" ({cached} cell{'s' * (cached != 1)} reused from the cache)" if cached else ""
        stderr.print(f"results written to {out}/ (curves.csv, summary.csv, spec.json, curves.png)"
                     f"{extra}", markup=False, highlight=False)


@app.command()
def run(
    init: Annotated[str, typer.Option("--init", help="The initializer (see `initbench inits`).")]
    = "xavier",
    seeds: Seeds = "3", dataset: Dataset = None, epochs: Epochs = 30,
    batch_size: BatchSize = 100, lr: Lr = 0.01, optimizer: Optimizer = "adam",
    hidden: Hidden = "256,256", activation: Activation = "relu", bias_init: BiasInit = "zeros",
    gain: Gain = None, mode: Mode = None, lsuv_tol: LsuvTol = 0.02,
    lsuv_max_iter: LsuvMaxIter = 20, track_layers: TrackLayers = False, out: Out = None,
    quiet: Quiet = False, as_json: Json = False, no_cache: NoCache = False,
    target: Target = None, distributed: Distributed = False,
    coordinator_address: CoordinatorAddress = None, num_processes: NumProcesses = None,
    process_id: ProcessId = None,
) -> None:
    """Train one initializer over several seeds."""
    _train_command("run", init, seeds, dataset, epochs, batch_size, lr, optimizer, hidden,
                   activation, bias_init, gain, mode, lsuv_tol, lsuv_max_iter, track_layers, out,
                   quiet, as_json, no_cache, None, target,
                   (distributed, coordinator_address, num_processes, process_id))


@app.command()
def compare(
    inits: Annotated[str, typer.Option("--inits", help="Comma-separated initializers.")]
    = "xavier,he_normal,lecun_normal,orthogonal,normal",
    seeds: Seeds = "5", dataset: Dataset = None, epochs: Epochs = 30,
    batch_size: BatchSize = 100, lr: Lr = 0.01, optimizer: Optimizer = "adam",
    hidden: Hidden = "256,256", activation: Activation = "relu", bias_init: BiasInit = "zeros",
    gain: Gain = None, mode: Mode = None, lsuv_tol: LsuvTol = 0.02,
    lsuv_max_iter: LsuvMaxIter = 20, track_layers: TrackLayers = False, out: Out = None,
    quiet: Quiet = False, as_json: Json = False, no_cache: NoCache = False,
    baseline: Baseline = None, target: Target = None, distributed: Distributed = False,
    coordinator_address: CoordinatorAddress = None, num_processes: NumProcesses = None,
    process_id: ProcessId = None,
) -> None:
    """Train several initializers x seeds together and rank them, with paired verdicts."""
    _train_command("compare", inits, seeds, dataset, epochs, batch_size, lr, optimizer, hidden,
                   activation, bias_init, gain, mode, lsuv_tol, lsuv_max_iter, track_layers, out,
                   quiet, as_json, no_cache, baseline, target,
                   (distributed, coordinator_address, num_processes, process_id))


@app.command("inits")
def list_inits() -> None:
    """List every initializer, its formula and the std it gives a 784x256 kernel."""
    from rich.table import Table

    from initbench import initializers

    by_target: dict[str, list[str]] = {}
    for alias, target in initializers.aliases().items():
        by_target.setdefault(target, []).append(alias)
    table = Table(title="Kernel initializers (kernel shape fan_in x fan_out)")
    for header in ("name", "aliases", "formula", "std @ 784x256", "parameters"):
        table.add_column(header)
    for name in initializers.names():
        params = ", ".join(f"{k}={v}" for k, v in initializers.params(name).items())
        table.add_row(name, ", ".join(sorted(by_target.get(name, []))),
                      initializers.formula(name),
                      f"{initializers.expected_std(name, 784, 256):.4f}", params or "—")
    stdout.print(table)
    bias = Table(title="Bias initializers (--bias-init)")
    bias.add_column("name")
    bias.add_column("formula")
    for name in initializers.BIAS_NAMES:
        bias.add_row(name, initializers.bias_formula(name))
    stdout.print(bias)


@app.command("datasets")
def list_datasets() -> None:
    """List every dataset, its shape, and whether it is available offline now."""
    from rich.table import Table

    from initbench import data

    table = Table(title=f"Datasets (TFDS data dir: {data.tfds_data_dir()})")
    for header in ("name", "source", "shape", "classes", "train", "test", "offline now",
                   "description"):
        table.add_column(header)
    for name in data.names():
        info = data.info(name)
        available = data.is_available_offline(name)
        table.add_row(name, info.source, "x".join(map(str, info.image_shape)),
                      str(info.num_classes), f"{info.num_train:,}", f"{info.num_test:,}",
                      "[green]yes[/]" if available else "[dim]no[/]", info.description)
    stdout.print(table)


@data_app.command("import")
def data_import(
    directory: Annotated[Path, typer.Argument(help="Folder with the 4 MNIST IDX files (.gz ok).")],
) -> None:
    """Make manually downloaded MNIST IDX files usable offline (air-gapped machines)."""
    from initbench import data

    where = data.import_idx(directory)
    stdout.print(f"imported MNIST from {directory} into {where}; `--dataset mnist` now works "
                 "offline.", markup=False, highlight=False)


for _module in (report, probe, bench):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
