"""One experiment's settings: a frozen, validated dataclass that round-trips through spec.json.

Over 450 lines: every setting is validated here, in Python before anything is traced, with
the one-line message that names the bad value; the parsers of the option texts sit beside.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field

from initbench.builtin_models import BUILTIN_MODELS, HIDDEN_MODELS, RESIDUAL_MODELS
from initbench.errors import InitbenchError, unknown_name
from initbench.optimizers import OPTIMIZERS

ACTIVATIONS = (
    "relu", "tanh", "gelu", "sigmoid", "elu", "selu", "silu", "leaky_relu", "softplus", "linear",
)
FAN_MODES = ("fan_in", "fan_out", "fan_avg")
NORMS = ("none", "layer", "batch")  # --norm (the residual models only)
DTYPES = ("float32", "bfloat16")  # --dtype: parameters and computation
DEFAULT_COMPARE_INITS = ("xavier", "he_normal", "lecun_normal", "orthogonal", "normal")
# `--seeds auto`: the first round trains AUTO_FIRST_ROUND seeds (sequential.FIRST_ROUND, which
# tests check is equal; spec.py sits below sequential.py and cannot import it).
AUTO_FIRST_ROUND = 5


def network_title(model: str, mlp_shape: str) -> str:
    """How titles name the network of `--model model`: "MLP " + `mlp_shape` (its widths and
    activation, as the caller spells them) for the MLP, whose shape is --hidden; "model
    NAME" for any other network."""
    return f"MLP {mlp_shape}" if model == "mlp" else f"model {model}"


def known_layer_count(spec) -> int | None:
    """How many drawn layers the spec's network has, where --hidden alone says (the MLP:
    hidden layers + output); None where only the built network tells."""
    return len(spec.hidden) + 1 if spec.model == "mlp" else None


def depth_title(model: str, depth: int | None) -> str:
    """How a width study's title names its network of `depth` hidden layers (blocks; None:
    the network's own): "2 hidden layers" for the MLP, "--model resmlp, 4 blocks",
    "--model FILE.py:NAME"."""
    if model == "mlp":
        return f"{depth} hidden layer{'s' * (depth != 1)}"
    return f"--model {model}" + ("" if depth is None else f", {depth} block{'s' * (depth != 1)}")


DEFAULT_MAX_SEEDS = 30
# Bounds of what each number is cast to. A seed becomes a 32-bit PRNG key (jax.random.key
# keeps only the low 32 bits without x64, so seeds 0 and 2**32 would train identical cells);
# epochs, widths and batch sizes become int32 shapes and loop counters; lr and gain become
# float32 (gain squared, for the variance-scaling family).
MAX_SEED = 2**32 - 1
MAX_NUM_SEEDS = 100_000
MAX_INT32 = 2**31 - 1
MAX_EPOCHS = 1_000_000
MAX_DEPTH = 10_000
FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_TINY = 1.1754943508222875e-38  # smallest normal float32
# Settings that change a cell's numbers; everything else (seeds, inits, labels) only picks cells.
_TRAINING_FIELDS = (
    "dataset", "epochs", "batch_size", "lr", "optimizer", "hidden", "activation",
    "bias_init", "gain", "mode", "lsuv_tol", "lsuv_max_iter", "track_layers",
)
# With several learning rates a validation split of this share of the training set is
# carved out (when --val-fraction is not given): the best rate is chosen on it, never on test.
DEFAULT_VAL_FRACTION = 0.1
MAX_NUM_LRS = 1_000


@dataclass(frozen=True)
class Spec:
    """Every setting of one comparison. `dataset=None` means "mnist, else embedded mnist-5k".

    `precision` (accuracy points) set means `--seeds auto`: seeds are added in rounds until
    every paired CI half-width is at most `precision` or `max_seeds` (default
    DEFAULT_MAX_SEEDS) are used; `seeds` then holds the seeds actually used. Neither is a
    training field: they only pick how many cells there are.

    `data_seeds` K > 1 crosses every weight seed with K minibatch orders (`--data-seeds`):
    the grid's seed axis then holds W*K slots, seed-major (slot s*K + d is seed s, data
    order d). It is hashed into `training_key` only when K != 1, so default keys never change.

    `lr` is a tuple of learning rates (a number given is made a 1-tuple; spec.json keeps a
    single rate as a number). With several rates every cell is (initializer, rate, seed) and
    `val_fraction` defaults to DEFAULT_VAL_FRACTION: that share of the training set, fixed
    and stratified, is the validation split on which each initializer's best rate is chosen.
    `val_fraction` is hashed into `training_key` only when set, like `data_seeds`.
    `model` is "mlp" (`hidden`, `activation` apply), "cnn" (the built-in small CNN),
    "resmlp" or "rescnn" (residual: `hidden` is WIDTHxBLOCKS, `norm` applies) or a
    user factory "FILE.py:NAME" / "package.module:NAME" (`initbench.networks`). Like
    `data_seeds`, it is hashed into `training_key` only when it is not "mlp"; the content of
    a user factory's source is in `cellcache.cache_key`.

    `param` is the parameterization (`initbench.parameterizations`: sp, ntk, mup) and
    `base_width` the width whose rates the others reuse; like `model`, both are hashed into
    `training_key` and written to spec.json only when `param` is not "sp".

    `width` is the width a network whose factory takes one (`--model cnn`, or a user
    factory `make(num_classes, width)`) is built at: `transfer` and `coord` set it for each
    of `--widths`; None builds the factory's default. Hashed into `training_key` and written
    to spec.json only when set.
    """

    inits: tuple[str, ...] = DEFAULT_COMPARE_INITS
    seeds: tuple[int, ...] = (0, 1, 2)
    dataset: str | None = None
    epochs: int = 30
    batch_size: int = 100
    lr: tuple[float, ...] = (0.01,)
    optimizer: str = "adam"
    hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    bias_init: str = "zeros"
    gain: float | None = None
    mode: str | None = None
    lsuv_tol: float = 0.02
    lsuv_max_iter: int = 20
    track_layers: bool = False
    precision: float | None = None
    max_seeds: int | None = None
    data_seeds: int = 1
    val_fraction: float | None = None
    model: str = "mlp"
    norm: str = "none"
    dtype: str = "float32"
    param: str = "sp"
    base_width: int | None = None
    width: int | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        if _is_number(self.lr):  # Spec(lr=0.01) and old spec.json files: one rate
            object.__setattr__(self, "lr", (self.lr,))
        elif isinstance(self.lr, list):
            object.__setattr__(self, "lr", tuple(self.lr))
        if self.val_fraction is None and isinstance(self.lr, tuple) and len(self.lr) > 1:
            object.__setattr__(self, "val_fraction", DEFAULT_VAL_FRACTION)
        if isinstance(self.inits, tuple):  # 'normal( 0.01 )' is labelled 'normal(0.01)'
            from initbench import init_names

            object.__setattr__(self, "inits", tuple(
                init_names.label(n) if isinstance(n, str) and "(" in n else n for n in self.inits))
        validate(self)
        _fold_options(self)

    @property
    def multi_lr(self) -> bool:
        """True when several learning rates are trained (a tuned comparison)."""
        return len(self.lr) > 1

    def at_lr(self, lr: float) -> Spec:
        """The single-rate spec of one of `lr`'s rates (same split: its cells are this
        spec's cells at that rate, bitwise)."""
        return self.replace(lr=(lr,), val_fraction=self.val_fraction)

    @property
    def init_params(self) -> dict:
        """Keyword parameters passed to every kernel initializer that accepts them."""
        params = {}
        if self.gain is not None:
            params["gain"] = self.gain
        if self.mode is not None:
            params["mode"] = self.mode
        return params

    def replace(self, **changes) -> Spec:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-ready settings (tuples become lists)."""
        out = dataclasses.asdict(self)
        out.pop("extra")
        if out["data_seeds"] == 1:
            out.pop("data_seeds")  # a default run's spec.json is as before --data-seeds
        if out["val_fraction"] is None:
            out.pop("val_fraction")
        for name, default in (("norm", "none"), ("dtype", "float32")):
            if out[name] == default:
                out.pop(name)  # a default run's spec.json is as before --norm and --dtype
        if len(out["lr"]) == 1:
            out["lr"] = out["lr"][0]  # a single rate stays a number, as before --lr lists
        if out["param"] == "sp":  # an sp run's spec.json has no param keys, as before --param existed
            out.pop("param")
        if out["base_width"] is None:
            out.pop("base_width")
        if out["width"] is None:
            out.pop("width")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: dict) -> Spec:
        """Inverse of `to_dict`; unknown keys are ignored so older spec.json files still load."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
        return cls(**kwargs)

    @property
    def auto_seeds(self) -> bool:
        """True for a `--seeds auto` run (a precision is set)."""
        return self.precision is not None

    @property
    def slots(self) -> list[tuple[int, int]]:
        """The grid's seed axis: (weight seed, data order) pairs, seed-major."""
        return [(seed, d) for seed in self.seeds for d in range(self.data_seeds)]

    @property
    def seed_limit(self) -> int:
        """The most seeds `--seeds auto` may use."""
        return self.max_seeds if self.max_seeds is not None else DEFAULT_MAX_SEEDS
    def resolve_init(self, name: str | None, option: str = "--baseline") -> str | None:
        """The initializer of `inits` that `name` names (an alias counts: `glorot_normal`
        finds `xavier`), None for None; InitbenchError if none does."""
        from initbench import initializers

        if name is None or name in self.inits:
            return name
        try:
            wanted = initializers.canonical(name)
        except InitbenchError:
            wanted = None
        for init in self.inits:
            if wanted is not None and initializers.canonical(init) == wanted:
                return init
        raise InitbenchError(
            f"{option} '{name}' is not among the initializers: {', '.join(self.inits)}."
        )

    def training_key(self) -> str:
        """Content hash of the settings that determine a cell's numbers (not which cells)."""
        settings = {k: self.to_dict()[k] for k in _TRAINING_FIELDS}  # data_seeds: below
        if self.data_seeds != 1:  # K = 1 keeps every existing key (and cached cell) valid
            settings["data_seeds"] = self.data_seeds
        if self.val_fraction is not None:  # likewise: no split keeps every existing key
            settings["val_fraction"] = self.val_fraction
        if self.model != "mlp":  # likewise: the MLP's keys never change
            settings["model"] = self.model
        if self.norm != "none":  # likewise
            settings["norm"] = self.norm
        if self.dtype != "float32":  # likewise
            settings["dtype"] = self.dtype
        if self.param != "sp":  # likewise: sp keeps every cache key
            settings["param"] = self.param
            settings["base_width"] = self.base_width
        if self.width is not None:  # likewise: a network at its default width keeps its keys
            settings["width"] = self.width
        blob = json.dumps(settings, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def validate(spec: Spec) -> None:
    """Raise InitbenchError naming the first bad setting."""
    from initbench import initializers

    if not spec.inits:
        raise InitbenchError("no initializers given.")
    canon = [initializers.canonical(name) for name in spec.inits]
    dupes = sorted({n for n in spec.inits if canon.count(initializers.canonical(n)) > 1})
    if dupes:
        raise InitbenchError(f"initializers listed twice (aliases and default parameters "
                             f"count): {', '.join(dupes)}.")
    if spec.bias_init not in initializers.BIAS_NAMES:
        raise unknown_name("bias initializer", spec.bias_init, initializers.BIAS_NAMES)
    if not spec.seeds:
        raise InitbenchError("no seeds given.")
    if any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in spec.seeds):
        raise InitbenchError(f"seeds must be non-negative integers, got {_short(spec.seeds)}.")
    if max(spec.seeds) > MAX_SEED:
        raise InitbenchError(
            f"seed {max(spec.seeds)} is too large: seeds must be at most {MAX_SEED} (2**32 - 1), "
            "the range of the 32-bit random key a seed becomes; larger seeds would repeat "
            "smaller ones' random streams."
        )
    if len(spec.seeds) > MAX_NUM_SEEDS:
        raise InitbenchError(f"{len(spec.seeds)} seeds are too many: at most {MAX_NUM_SEEDS}.")
    if len(set(spec.seeds)) != len(spec.seeds):
        raise InitbenchError(f"seeds listed twice: {_short(spec.seeds)}.")
    check_positive_int("epochs", spec.epochs, MAX_EPOCHS)
    check_positive_int("data-seeds", spec.data_seeds, 10_000)
    if spec.data_seeds > 1 and spec.precision is not None:
        raise InitbenchError("--data-seeds cannot be combined with --seeds auto yet; give a "
                             "seed count (e.g. --seeds 10).")
    check_positive_int("batch-size", spec.batch_size, MAX_INT32)
    check_positive_int("lsuv-max-iter", spec.lsuv_max_iter, 10_000)
    _check_lrs(spec.lr)
    if len(spec.lr) > 1 and spec.track_layers:
        raise InitbenchError("--track-layers cannot be combined with several --lr rates yet; "
                             "track one rate at a time.")
    if len(spec.lr) > 1 and spec.precision is not None:
        raise InitbenchError("--seeds auto cannot be combined with several --lr rates yet; "
                             "give a seed count (e.g. --seeds 10).")
    if spec.val_fraction is not None and (not _is_number(spec.val_fraction)
                                          or not 0 < spec.val_fraction < 1):
        raise InitbenchError(f"--val-fraction must be in (0, 1), got {spec.val_fraction}.")
    if not _is_number(spec.lsuv_tol) or not 0 < spec.lsuv_tol < 1:
        raise InitbenchError(f"--lsuv-tol must be in (0, 1), got {spec.lsuv_tol}.")
    if spec.gain is not None and (not _is_number(spec.gain) or not math.isfinite(spec.gain)
                                  or spec.gain <= 0):
        raise InitbenchError(f"--gain must be a positive number, got {spec.gain}.")
    if spec.gain is not None and not FLOAT32_TINY**0.5 <= spec.gain <= FLOAT32_MAX**0.5:
        raise InitbenchError(
            f"--gain {spec.gain} is out of range: its square (the variance scale) must be a "
            f"normal float32, so the gain must be in [{FLOAT32_TINY**0.5:.3g}, "
            f"{FLOAT32_MAX**0.5:.3g}]."
        )
    if spec.mode is not None and spec.mode not in FAN_MODES:
        raise unknown_name("fan mode", spec.mode, FAN_MODES)
    if spec.optimizer not in OPTIMIZERS:
        raise unknown_name("optimizer", spec.optimizer, OPTIMIZERS)
    if spec.activation not in ACTIVATIONS:
        raise unknown_name("activation", spec.activation, ACTIVATIONS)
    if spec.precision is not None and (
            isinstance(spec.precision, bool) or not isinstance(spec.precision, (int, float))
            or not math.isfinite(spec.precision) or spec.precision <= 0):
        raise InitbenchError(f"--precision must be a positive number of accuracy points, "
                             f"got {spec.precision}.")
    if spec.max_seeds is not None:
        if spec.precision is None:
            raise InitbenchError("--max-seeds applies only with --seeds auto --precision P.")
        if (not isinstance(spec.max_seeds, int) or isinstance(spec.max_seeds, bool)
                or spec.max_seeds < AUTO_FIRST_ROUND):
            raise InitbenchError(f"--max-seeds must be an integer >= {AUTO_FIRST_ROUND} (the "
                                 f"first round), got {spec.max_seeds}.")
        if spec.max_seeds > MAX_NUM_SEEDS:  # more could never be run: the cap would not hold
            raise InitbenchError(f"--max-seeds {spec.max_seeds} is too many: a run has at most "
                                 f"{MAX_NUM_SEEDS:,} seeds.")
    if not spec.hidden or any(not isinstance(w, int) or isinstance(w, bool) or w < 1
                              for w in spec.hidden):
        raise InitbenchError(f"hidden widths must be positive integers, got {_short(spec.hidden)}.")
    if max(spec.hidden) > MAX_INT32:
        raise InitbenchError(
            f"hidden width {max(spec.hidden)} is too large: at most {MAX_INT32} (an int32 shape)."
        )
    if len(spec.hidden) > MAX_DEPTH:
        raise InitbenchError(f"{len(spec.hidden)} hidden layers are too many: at most {MAX_DEPTH}.")
    for name in spec.inits:
        initializers.get(name, **initializers.accepted(name, spec.init_params))
    _check_model(spec.model)
    _check_residual(spec)
    from initbench import parameterizations

    parameterizations.check(spec)
    _check_has_effect(spec)


def _check_residual(spec: Spec) -> None:
    """--norm and --dtype are known values; --norm and the initializers that need a
    network's branches (fixup, skipinit) only with a residual model."""
    from initbench import initializers

    if spec.norm not in NORMS:
        raise unknown_name("norm", spec.norm, NORMS)
    if spec.dtype not in DTYPES:
        raise unknown_name("dtype", spec.dtype, DTYPES)
    if spec.model in RESIDUAL_MODELS and len(set(spec.hidden)) != 1:
        raise InitbenchError(f"--model {spec.model} needs one width for every block "
                             f"(WIDTHxBLOCKS, e.g. 256x50), got widths {sorted(set(spec.hidden))}.")
    if spec.norm != "none" and spec.model not in RESIDUAL_MODELS:
        raise InitbenchError(f"--norm {spec.norm} has no effect with --model {spec.model} "
                             f"(it is for {', '.join(RESIDUAL_MODELS)}); drop it.")
    needing = [n for n in spec.inits if initializers.needs_branches(n)]
    if needing and spec.model not in RESIDUAL_MODELS:
        raise InitbenchError(f"{', '.join(needing)} set{'s' * (len(needing) == 1)} residual "
                             f"branches, which --model {spec.model} does not have; use "
                             f"--model {' or '.join(RESIDUAL_MODELS)}.")


def _check_has_effect(spec: Spec) -> None:
    """Refuse an option that changes nothing it is recorded for: it would be written in
    spec.json and change the cache key as if it had drawn or trained something else."""
    from initbench import initializers

    for option, value in (("gain", spec.gain), ("mode", spec.mode)):
        if value is None:
            continue
        shown = f"--{option} {value:g}" if option == "gain" else f"--{option} {value}"
        without = [name for name in spec.inits if option not in initializers.params(name)]
        if without:
            raise InitbenchError(
                f"{shown} has no effect on {', '.join(without)} (no {option} in "
                f"{'its' if len(without) == 1 else 'their'} formula); drop --{option} or "
                f"list only initializers that take a {option}.")
        if all(initializers.params(name)[option] == value for name in spec.inits):
            raise InitbenchError(
                f"{shown} has no effect: it is already the {option} of "
                f"{', '.join(spec.inits)}; drop --{option}.")
    if spec.model not in HIDDEN_MODELS:
        defaults = Spec()
        for option, field_name in (("--activation", "activation"), ("--hidden", "hidden")):
            if getattr(spec, field_name) != getattr(defaults, field_name):
                raise InitbenchError(
                    f"{option} has no effect with --model {spec.model} (it shapes the MLP "
                    "only; the network defines its own layers); drop it.")


def _fold_options(spec: Spec) -> None:
    """Write `gain` and `mode` into each initializer's label, where they change its draw:
    `xavier` with --mode fan_in becomes `xavier(mode=fan_in)` (a mode it already has adds
    nothing), so every table, file, figure and card names what was drawn. The two fields
    are then None; spec.json, merges and the cache key see the options in the labels only.
    `extra["unfolded"]` maps each changed label to the name a run folder written before
    labels had options lists in its CSV rows."""
    if spec.gain is None and spec.mode is None:
        return
    from initbench import init_names, initializers

    labels = []
    for name in spec.inits:
        takes = initializers.params(name)
        changed = {k: v for k, v in spec.init_params.items() if k in takes and v != takes[k]}
        labels.append(init_names.with_params(name, changed) if changed else name)
    unfolded = {**spec.extra.get("unfolded", {}),
                **{label: name for label, name in zip(labels, spec.inits) if label != name}}
    object.__setattr__(spec, "extra", {**spec.extra, "unfolded": unfolded})
    object.__setattr__(spec, "inits", tuple(labels))
    object.__setattr__(spec, "gain", None)
    object.__setattr__(spec, "mode", None)


def _check_model(model) -> None:
    """A built-in model name or the FILE.py:NAME / package.module:NAME form (resolved later,
    by `networks.resolve`, which reports a missing file or attribute)."""
    if not isinstance(model, str) or not model.strip():
        raise InitbenchError(f"--model must be {', '.join(BUILTIN_MODELS)}, FILE.py:NAME or "
                             f"package.module:NAME, got {model!r}.")
    if model in BUILTIN_MODELS:
        return
    where, sep, name = model.rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise unknown_name("model", model, (*BUILTIN_MODELS, "FILE.py:NAME",
                                            "package.module:NAME"))




def kernel_params(spec: Spec, name: str) -> dict:
    """Initializer parameters from the spec that apply to initializer `name`."""
    from initbench import initializers

    return initializers.accepted(name, spec.init_params)


def _check_lrs(lrs) -> None:
    """Every rate a positive float32 number, none twice, at most MAX_NUM_LRS."""
    if not isinstance(lrs, tuple) or not lrs:
        raise InitbenchError("--lr: no learning rate given.")
    if len(lrs) > MAX_NUM_LRS:
        raise InitbenchError(f"--lr: {len(lrs)} rates are too many: at most {MAX_NUM_LRS}.")
    for lr in lrs:
        if not _is_number(lr) or not math.isfinite(lr) or lr <= 0:
            raise InitbenchError(f"--lr must be a positive number, got {lr}.")
        if not FLOAT32_TINY <= lr <= FLOAT32_MAX:
            raise InitbenchError(
                f"--lr {lr} cannot be represented in float32 (training's precision): it must "
                f"be in [{FLOAT32_TINY:.3g}, {FLOAT32_MAX:.3g}]."
            )
    # Rates that round to the same float32 would train identical cells.
    import numpy as np

    as32 = [float(np.float32(lr)) for lr in lrs]
    dupes = sorted({lr for lr, r in zip(lrs, as32) if as32.count(r) > 1})
    if dupes:
        raise InitbenchError(f"--lr: rates listed twice: {', '.join(f'{lr:g}' for lr in dupes)}.")


def parse_lrs(text: str) -> tuple[float, ...]:
    """'0.01' -> (0.01,); '1e-3,1e-2' -> both; '1e-4:1e-1:7' -> 7 log-spaced rates from
    1e-4 to 1e-1 (ends included, rounded to 4 significant digits)."""
    text = str(text).strip()
    if ":" in text:
        parts = [p.strip() for p in text.split(":")]
        if len(parts) != 3 or not re.fullmatch(r"[0-9]{1,4}", parts[2]):
            raise InitbenchError(f"--lr: '{text}' is not a range LOW:HIGH:COUNT (e.g. 1e-4:1e-1:7).")
        low, high = (_parse_lr(p, text) for p in parts[:2])
        count = int(parts[2])
        if not 0 < low < high or count < 2:
            raise InitbenchError(f"--lr {text}: a range needs 0 < LOW < HIGH and COUNT >= 2.")
        if count > MAX_NUM_LRS:
            raise InitbenchError(f"--lr {text}: {count} rates are too many: at most {MAX_NUM_LRS}.")
        ratio = math.log(high / low) / (count - 1)
        return tuple(float(f"{low * math.exp(ratio * k):.4g}") for k in range(count))
    return tuple(_parse_lr(item, text) for item in parse_list(text, "lr"))


def _parse_lr(item: str, text: str) -> float:
    try:
        value = float(item) if len(item) <= 40 else float("nan")
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise InitbenchError(f"--lr: '{item[:40]}' in '{text[:60]}' is not a positive number.")
    return value


def check_positive_int(option: str, value, maximum: int) -> None:
    """InitbenchError (one line) unless `--option`'s value is an integer in [1, maximum]."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InitbenchError(f"--{option} must be a positive integer, got {value}.")
    if value > maximum:
        raise InitbenchError(f"--{option} {value} is too large: at most {maximum}.")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(values) -> str:
    """A list for a message, cut to its first and last items when long."""
    values = list(values)
    if len(values) <= 10:
        return str(values)
    return f"[{', '.join(map(str, values[:5]))}, ..., {', '.join(map(str, values[-3:]))}]"


def parse_list(text: str, option: str) -> tuple[str, ...]:
    """'a,b, c' -> ('a', 'b', 'c'); empty items are an error."""
    items = tuple(item.strip() for item in text.split(","))
    if not text.strip() or any(not item for item in items):
        raise InitbenchError(f"--{option}: malformed list '{text}' (expected comma-separated names).")
    return items


def parse_seeds(text: str) -> tuple[int, ...]:
    """'5' -> seeds 0..4; '0,5,7' -> those seeds; '3-6' -> 3,4,5,6."""
    text = text.strip()
    if any(len(item) > 40 for item in re.split(r"[,-]", text)):
        raise InitbenchError(f"--seeds: '{text[:60]}...' has a number too large to be a seed "
                             f"(at most {MAX_SEED}).")
    if re.fullmatch(r"[0-9]+", text):
        count = int(text)
        if count < 1:
            raise InitbenchError("--seeds must be at least 1.")
        if count > MAX_NUM_SEEDS:
            raise InitbenchError(f"--seeds {count} is too many: at most {MAX_NUM_SEEDS} seeds.")
        return tuple(range(count))
    if re.fullmatch(r"[0-9]+-[0-9]+", text):
        lo, hi = (int(x) for x in text.split("-"))
        if hi < lo:
            raise InitbenchError(f"--seeds: empty range '{text}'.")
        if hi > MAX_SEED:
            raise InitbenchError(
                f"--seeds {text}: seed {hi} is too large (at most {MAX_SEED}, the range of the "
                "32-bit random key a seed becomes)."
            )
        if hi - lo + 1 > MAX_NUM_SEEDS:
            raise InitbenchError(f"--seeds {text} is {hi - lo + 1} seeds: at most {MAX_NUM_SEEDS}.")
        return tuple(range(lo, hi + 1))
    items = parse_list(text, "seeds")
    if not all(re.fullmatch(r"[0-9]+", item) for item in items):
        raise InitbenchError(
            f"--seeds: '{text}' is not a count (5), a list of integers (0,5,7) or a range (3-6)."
        )
    return tuple(int(item) for item in items)


def first_seeds(auto: bool, precision: float | None) -> tuple[int, ...] | None:
    """The seeds a `--seeds auto` study starts with (its first round), or None without
    auto; `--seeds auto` and `--precision` go together (the CLI's and `initbench.compare`'s
    one rule)."""
    if auto and precision is None:
        raise InitbenchError("--seeds auto needs --precision P (accuracy points, e.g. 0.5): "
                             "the CI half-width at which to stop adding seeds.")
    if not auto and precision is not None:
        raise InitbenchError("--precision applies only with --seeds auto.")
    return tuple(range(AUTO_FIRST_ROUND)) if auto else None


def parse_hidden(text: str) -> tuple[int, ...]:
    """'256,256' -> (256, 256); '256x4' -> four layers of 256; '512,256x3' mixes both."""
    widths: list[int] = []
    for item in parse_list(text, "hidden"):
        match = re.fullmatch(r"(-?[0-9]+)(?:x([0-9]+))?", item)
        if not match:
            raise InitbenchError(f"--hidden: '{item}' is not a width (256) or WIDTHxDEPTH (256x4).")
        if len(item) > 40:  # int() refuses numbers of thousands of digits with a ValueError
            raise InitbenchError(f"--hidden: '{item[:40]}...' is too large.")
        width, depth = int(match[1]), int(match[2] or 1)
        if width < 1 or depth < 1:
            raise InitbenchError(f"--hidden: widths and depths must be positive, got '{item}'.")
        if depth + len(widths) > MAX_DEPTH:
            raise InitbenchError(f"--hidden {text}: too many layers, at most {MAX_DEPTH}.")
        widths.extend([width] * depth)
    return tuple(widths)


def target_fraction(percent: float | None) -> float | None:
    """`--target` (a test accuracy in percent) as the fraction the summaries hold; the CLI and
    `initbench.compare` both use this rule.

    A value of 1 or less is refused rather than guessed: 0.97 was the old fraction form, but
    could as well be a (useless) target of 0.97%."""
    if percent is None:
        return None
    if isinstance(percent, bool) or not isinstance(percent, (int, float)):
        raise InitbenchError(f"--target must be a number (percent), got {percent!r}.")
    if not math.isfinite(percent) or not 0 < percent <= 100:
        raise InitbenchError(f"--target must be a test accuracy in percent, in (1, 100], got "
                             f"{percent:g}.")
    if percent <= 1:
        raise InitbenchError(f"--target is in percent: got {percent:g}; for {100 * percent:g}% "
                             f"write --target {100 * percent:g}.")
    return percent / 100.0
