"""Every command-line option declared once, bound to its `Spec` field, help text and default.

Every command takes its options from `Opt` records with `command_options`, which builds the
Typer signature (keyword-only parameters) and hands the command a frozen options value
(`TrainOptions`, `ReportOptions`, ...) built by that command's one reading function, where
its values are checked, and the `Runtime` the CLI built. The options shared by several
commands are declared here; a command with its own default or help for one (`report
--baseline` defaults to the run's) derives it with `Opt.but`, and options of one command
alone are `Opt`s in that command's module. `build_spec` turns the bound ones into a `Spec`.
Help lists come from the registries (`optimizers.OPTIMIZERS`, `initializers.BIAS_NAMES`,
`data.names()`), so they cannot drift from what is accepted. Only typer, rich and
initbench's JAX-free modules load here.
"""

from __future__ import annotations

import contextvars
import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from initbench import data, init_names, initializers, optimizers
from initbench import spec as spec_lib
from initbench.errors import InitbenchError
from initbench.runtime import Runtime

_SPEC_DEFAULTS = {f.name: f.default for f in dataclasses.fields(spec_lib.Spec)}


REQUIRED = inspect.Parameter.empty  # the default of an argument that must be given


@dataclass(frozen=True)
class Opt:
    """One option: its parameter name, flags, type, default and help; `field` names the
    `Spec` field it sets (through `parse` for text that needs parsing). An `argument` is
    positional (its `flags` are empty; `REQUIRED` as its default: it must be given)."""

    name: str
    flags: tuple[str, ...]
    type: Any
    default: Any
    help: str
    field: str | None = None
    parse: Callable[[Any], Any] | None = None
    argument: bool = False

    def but(self, **changes: Any) -> Opt:
        """This option with another default or help (a command's own reading of it); its
        name, flags, type and Spec field stay the declaration's."""
        unknown = set(changes) - {"default", "help"}
        if unknown:
            raise TypeError(f"an option's variant changes only default and help, not "
                            f"{sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    @property
    def annotated(self) -> Any:
        """`Annotated[type, typer.Option(...)]` (or `typer.Argument`) for the signature."""
        if self.argument:
            return Annotated[self.type, typer.Argument(help=self.help, show_default=False)]
        return Annotated[self.type, typer.Option(*self.flags, help=self.help)]

    def parameter(self, default: Any) -> inspect.Parameter:
        return inspect.Parameter(self.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                 annotation=self.annotated)


def _spec_opt(field: str, flag: str, type_: Any, help_: str, **kwargs) -> Opt:
    """An option bound to Spec field `field`, defaulting to the field's default."""
    kwargs.setdefault("default", _SPEC_DEFAULTS[field])
    return Opt(field, (flag,), type_, help=help_, field=field, **kwargs)


def _one_init(text: str) -> tuple[str, ...]:
    names = init_names.split(text, "init")
    if len(names) != 1:
        raise InitbenchError(f"--init takes one initializer, got '{text}'; use `initbench "
                             "compare --inits` for several.")
    return names


def _names(items) -> str:
    return ", ".join(items)


INITS = Opt("inits", ("--inits",), str, ",".join(spec_lib.DEFAULT_COMPARE_INITS),
            "Comma-separated initializers (see `initbench inits`), each NAME or with its "
            "parameters: normal(0.01), truncated_normal(stddev=0.02), xavier(mode=fan_in).",
            "inits", lambda text: init_names.split(text, "inits"))
INIT = Opt("init", ("--init",), str, "xavier",
           "The initializer (see `initbench inits`): NAME or NAME(VALUE), NAME(key=VALUE, ...).",
           "inits", _one_init)
SEEDS = Opt("seeds", ("--seeds",), str, "5",
            "Count N (seeds 0..N-1), list 0,5,7, range 3-6, or auto (with --precision: rounds "
            "of 5 seeds until the paired CIs are that narrow).", "seeds", spec_lib.parse_seeds)
PRECISION = _spec_opt("precision", "--precision", float | None,
                      "With --seeds auto: stop when every paired difference with the baseline "
                      "has a 97% CI half-width <= this many accuracy points (e.g. 0.5).")
MAX_SEEDS = _spec_opt("max_seeds", "--max-seeds", int | None,
                      f"With --seeds auto: the most seeds to use (default "
                      f"{spec_lib.DEFAULT_MAX_SEEDS}, at least {spec_lib.AUTO_FIRST_ROUND}).")
DATA_SEEDS = _spec_opt("data_seeds", "--data-seeds", int,
                       "Cross every weight seed with K minibatch orders (data order 0 is the "
                       "seed's own) and report the share of the variance of final accuracy due "
                       "to the weights, the data order and the rest. Default 1: as without it.")
DATASET = _spec_opt("dataset", "--dataset", str | None,
                    f"{_names(data.names())}; or your own: FILE.npz (x_train, y_train, x_test, "
                    "y_test, optional x_val, y_val) or FILE.py:NAME / package.module:NAME (a "
                    "function returning them). Default: mnist, or the embedded mnist-5k when "
                    "full MNIST is not available offline (see `initbench datasets`).")
MODEL = _spec_opt("model", "--model", str,
                  "mlp (--hidden, --activation apply), resmlp (residual blocks of two dense "
                  "layers: --hidden 256x50 is 50 blocks of width 256; --norm), rescnn "
                  "(residual blocks of two 3x3 convs: --hidden 16x8 is 8 blocks of 16 "
                  "channels; --norm), cnn (built-in small CNN), or your own "
                  "network: FILE.py:NAME or package.module:NAME, a factory taking the number of "
                  "classes and returning a flax.linen Module from images [N, H, W, C] to logits.")
NORM = _spec_opt("norm", "--norm", str,
                 f"With --model resmlp or rescnn: normalization in every block: "
                 f"{_names(spec_lib.NORMS)} (batch: the statistics of the batch seen).")
DTYPE = _spec_opt("dtype", "--dtype", str,
                  f"Parameters and computation: {_names(spec_lib.DTYPES)}. Draws are made in "
                  "float32 and cast.")
EPOCHS = _spec_opt("epochs", "--epochs", int, "Training epochs.")
BATCH_SIZE = _spec_opt("batch_size", "--batch-size", int, "Minibatch size.")
LR = _spec_opt("lr", "--lr", str,
               "Learning rate, or several: 0.001,0.003,0.01 or LOW:HIGH:COUNT (log-spaced, e.g. "
               "1e-4:1e-1:7). Several rates train every initializer at each of them and report "
               "each at its own best rate, chosen on a validation split.",
               default="0.01", parse=spec_lib.parse_lrs)
VAL_FRACTION = _spec_opt("val_fraction", "--val-fraction", float | None,
                         "Share of the training set held out (fixed, stratified) as a "
                         f"validation split. Default: none with one --lr, "
                         f"{spec_lib.DEFAULT_VAL_FRACTION} with several.")
OPTIMIZER = _spec_opt("optimizer", "--optimizer", str,
                      f"{_names(optimizers.names())} (optax; momentum is SGD with 0.9).")
HIDDEN = _spec_opt("hidden", "--hidden", str,
                   "Hidden widths: 256,256; 256x4 is four layers of 256; 512,128x3 mixes both.",
                   default="256,256", parse=spec_lib.parse_hidden)
ACTIVATION = _spec_opt("activation", "--activation", str, _names(spec_lib.ACTIVATIONS) + ".")
BIAS_INIT = _spec_opt("bias_init", "--bias-init", str,
                      f"Bias initializer: {_names(initializers.BIAS_NAMES)} (see `initbench "
                      "inits`; normal is stddev 1, the classic script's).")
GAIN = _spec_opt("gain", "--gain", float | None,
                 "Gain for variance-scaling, orthogonal, lsuv and identity initializers; "
                 "written into each label it changes: xavier(gain=2).")
MODE = _spec_opt("mode", "--mode", str | None,
                 f"Fan mode for the variance-scaling family: {_names(spec_lib.FAN_MODES)}; "
                 "written into each label it changes: xavier(mode=fan_in).")
LSUV_TOL = _spec_opt("lsuv_tol", "--lsuv-tol", float, "LSUV: output variance tolerance.")
LSUV_MAX_ITER = _spec_opt("lsuv_max_iter", "--lsuv-max-iter", int, "LSUV: max passes per layer.")
TRACK_LAYERS = _spec_opt("track_layers", "--track-layers", bool,
                         "Record per-layer gradient norm and dead-unit fraction per epoch.")

PARAM = _spec_opt("param", "--param", str,
                  "Parameterization: sp (as drawn, one rate), ntk or mup (Tensor Programs V: "
                  "per-layer init, multiplier and Adam rate scaled with width; see "
                  "docs/parameterizations.md).")
BASE_WIDTH = _spec_opt("base_width", "--base-width", int | None,
                       "With --param mup or ntk: the width whose rates the others reuse "
                       "(default: the net's own width; transfer: the smallest of --widths).")

OUT = Opt("out", ("--out",), Path | None, None,
          "Output folder (default: a new folder under results/).")
QUIET = Opt("quiet", ("--quiet", "-q"), bool, False, "Print only the final table.")
JSON = Opt("as_json", ("--json",), bool, False, "Print one JSON document on stdout, nothing else.")
NO_CACHE = Opt("no_cache", ("--no-cache",), bool, False,
               "Retrain every cell even if a finished one (or a checkpoint) is cached.")
BASELINE = Opt("baseline", ("--baseline",), str | None, None,
               "Initializer every other is compared with, seed by seed (default: first).")
PAIRS = Opt("pairs", ("--pairs",), str | None, None,
            "Comparisons: baseline (each initializer vs the baseline) or all (every pair; "
            "writes pairs.csv and pairs.png). Verdicts are Holm-corrected over them. "
            "Default: baseline (report: the run's own).")
EQUIVALENCE_MARGIN = Opt("equivalence_margin", ("--equivalence-margin",), float | None, None,
                         "Margin M in accuracy points: the verdict is 'equivalent' when the "
                         "90% CI of the difference lies inside ±M (TOST). Default: none "
                         "(report: the run's own).")
EFFECT = Opt("effect", ("--effect",), float, 0.5,
             "The true difference, in accuracy points, the next run should detect.")
TARGET = Opt("target", ("--target",), float | None, None,
             "Report the epochs needed to reach this test accuracy, in percent (e.g. 97).")
WIDE = Opt("wide", ("--wide",), bool, False,
           "Show every column of the ranked table (spread, losses, best epoch, P(better)); "
           "the files always hold them.")
CURVES = Opt("curves", ("--curves",), bool, False,
             "Also draw the mean train loss, test loss and test accuracy curves in the "
             "terminal, after the table.")
DISTRIBUTED = Opt("distributed", ("--distributed",), bool, False,
                  "Train across processes/hosts with jax.distributed: the cluster (SLURM, ...) "
                  "is detected, or give the three options below. Process 0 writes the results.")
COORDINATOR = Opt("coordinator_address", ("--coordinator-address",), str | None, None,
                  "With --distributed: HOST:PORT of process 0.")
NUM_PROCESSES = Opt("num_processes", ("--num-processes",), int | None, None,
                    "With --distributed: how many processes train together.")
PROCESS_ID = Opt("process_id", ("--process-id",), int | None, None,
                 "With --distributed: this process's rank, 0..num-processes-1.")
CONFIG = Opt("config", ("--config",), Path | None, None,
              "A study file (TOML) giving any of these options by name (batch-size = 50, "
              "inits = [\"xavier\", \"normal\"]); options on the command line override it.")
PROBE_BATCH = Opt("probe_batch", ("--batch-size",), int, 1000,
                  "Examples in the probe batch (the first ones of the training set).")

# What one network, its initializers and their training are: shared by run, compare, probe.
NETWORK = (MODEL, DATASET, HIDDEN, ACTIVATION, NORM, DTYPE, BIAS_INIT, GAIN, MODE, LSUV_TOL,
           LSUV_MAX_ITER, PARAM, BASE_WIDTH)
TRAINING = (SEEDS, PRECISION, MAX_SEEDS, DATA_SEEDS, EPOCHS, BATCH_SIZE, LR, VAL_FRACTION,
            OPTIMIZER, *NETWORK,
            TRACK_LAYERS, OUT, QUIET, JSON, WIDE, CURVES, NO_CACHE, TARGET, DISTRIBUTED,
            COORDINATOR, NUM_PROCESSES, PROCESS_ID, CONFIG)


def command_options(*opts: Opt, typed: Callable[[dict], Any], **defaults: Any) -> Callable:
    """Decorate `fn(options, runtime: Runtime)` into a Typer command taking `opts`
    (keyword-only; `defaults` overrides some defaults by parameter name). `options` is
    `typed(values)`, the command's frozen options value (such as `TrainOptions`), built from
    the values by parameter name; `runtime` is the one `cli` built for this command line."""
    unknown = set(defaults) - {o.name for o in opts}
    if unknown:
        raise TypeError(f"no such options: {sorted(unknown)}")

    def decorate(fn: Callable) -> Callable:
        context = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)

        def command(ctx: typer.Context, **values: Any) -> None:
            runtime = ctx.find_object(Runtime)
            if runtime is None:  # only `cli`'s group builds it, from the command line
                raise TypeError(f"{fn.__name__} runs inside initbench.cli.app, which builds "
                                "its Runtime")
            sources = {name: ctx.get_parameter_source(name) for name in values}
            given = {name for name, source in sources.items()
                     if source is not None and source.name != "DEFAULT"}
            if values.get("config") is not None:  # a study file fills in what is not given
                from initbench import study_config

                values, given = study_config.apply(values["config"], values, given, opts)
            token = _GIVEN.set(frozenset(given))
            try:
                fn(typed(values), runtime)
            finally:
                _GIVEN.reset(token)

        command.__signature__ = inspect.Signature(
            [context, *(o.parameter(defaults.get(o.name, o.default)) for o in opts)])
        command.__name__, command.__doc__ = fn.__name__, fn.__doc__
        command.options, command.typed = opts, typed
        return command

    return decorate


# The options given on the running command's line (not defaulted); None outside a command.
_GIVEN: contextvars.ContextVar[frozenset | None] = contextvars.ContextVar("given", default=None)


def _given(name: str) -> bool:
    """Whether option `name` of the running command was given (not its default); True
    outside a command (a library call gives every value on purpose)."""
    given = _GIVEN.get()
    return given is None or name in given


def build_spec(values: dict[str, Any]) -> spec_lib.Spec:
    """The validated `Spec` of a command's option values (those bound to a Spec field)."""
    fields = {}
    auto = str(values.get("seeds", "")).strip().lower() == "auto"
    for opt in (INITS, INIT, *TRAINING):
        if opt.field is not None and opt.name in values:
            value = values[opt.name]
            if opt is SEEDS and auto:  # the first round, set below
                continue
            fields[opt.field] = opt.parse(value) if opt.parse is not None else value
    if fields.get("model", "mlp") not in spec_lib.HIDDEN_MODELS:
        # A command's own MLP default (probe: 256x30) is no choice of the user's: only a
        # --hidden or --activation actually given is refused with another network.
        for opt in (HIDDEN, ACTIVATION):
            if not _given(opt.name):
                fields.pop(opt.field, None)
    first = spec_lib.first_seeds(auto, fields.get("precision"))
    if auto:
        fields["seeds"] = first
    return spec_lib.Spec(**fields)


target_fraction = spec_lib.target_fraction  # one rule for --target (the library's)


# ---------------------------------------------------------------- typed command options


@dataclass(frozen=True)
class Output:
    """How a command shows its results (`--quiet`, `--json`, `--wide`, `--curves`)."""

    quiet: bool = False
    as_json: bool = False
    wide: bool = False
    curves: bool = False


@dataclass(frozen=True)
class Cluster:
    """`--distributed` and the three settings that go with it (`jax_setup.start`)."""

    distributed: bool = False
    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None


@dataclass(frozen=True)
class Family:
    """What a run's verdicts compare: `--baseline`, `--pairs`, `--equivalence-margin` (in
    accuracy points); None where the command does not take the option."""

    baseline: str | None = None
    pairs: str | None = None
    equivalence_margin: float | None = None


@dataclass(frozen=True)
class TrainOptions:
    """Everything `run` and `compare` were given, typed: the validated `Spec`, the output
    folder (None: a new one under results/), whether cached cells are used, `--target` as a
    fraction, and the output, cluster and comparison settings."""

    spec: spec_lib.Spec
    out: Path | None
    use_cache: bool
    target: float | None
    output: Output
    cluster: Cluster
    family: Family


def part(cls: type, values: dict[str, Any]) -> Any:
    """`cls` from the values of the options named like its fields (a command that does not
    declare one leaves that field's default)."""
    return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values})


def train_options(values: dict[str, Any]) -> TrainOptions:
    """The typed options of `run` and `compare`: the one place their values are read."""
    return TrainOptions(spec=build_spec(values), out=values["out"],
                        use_cache=not values["no_cache"],
                        target=target_fraction(values["target"]),
                        output=part(Output, values), cluster=part(Cluster, values),
                        family=part(Family, values))


@dataclass(frozen=True)
class ProbeOptions:
    """What `probe` was given: the Spec of its network and seeds, the folder (None: a new
    one under results/), the probe batch's size and the output form."""

    spec: spec_lib.Spec
    out: Path | None
    batch_size: int
    output: Output


def probe_options(values: dict[str, Any]) -> ProbeOptions:
    """The typed options of `probe`."""
    return ProbeOptions(spec=build_spec(values), out=values["out"],
                        batch_size=values["probe_batch"], output=part(Output, values))


@dataclass(frozen=True)
class InspectOptions:
    """What `inspect` was given: the Spec of its one cell (its seed is `spec.seeds[0]`) and
    the output form."""

    spec: spec_lib.Spec
    output: Output


def inspect_options(values: dict[str, Any]) -> InspectOptions:
    """The typed options of `inspect`."""
    return InspectOptions(spec=build_spec(values).replace(seeds=(values["seed"],)),
                          output=part(Output, values))
