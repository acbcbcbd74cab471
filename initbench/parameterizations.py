"""Parameterizations (`--param`): how a layer's initialization, forward multiplier and
learning rate scale with width. One record per parameterization in `REGISTRY`.

An MLP's dense layers are of three kinds (Tensor Programs V, Yang et al. 2022, §4):
`input` (dense_0: data -> width), `hidden` (width -> width) and `output` (width ->
classes). Each record maps (kind, fan_in, width multiplier m) to three numbers per kernel:

- `init`: the factor on the kernel as the initializer drew it (the *stored* weight);
- `multiplier`: the constant the stored kernel is multiplied by in the forward pass
  (effective kernel = multiplier x stored; gradients flow through it);
- `rate`: the factor on the learning rate of that kernel (its optimizer update is scaled:
  exactly a per-parameter rate for Adam, SGD and the others optax builds here).

Biases keep factor 1 everywhere (the table's "all biases" column for Adam: rate 1).
m = width / base_width, where the width of an MLP is its widest hidden layer and
`--base-width` defaults to that width (m = 1: muP is SP there, by construction).

- `sp`: every factor 1 (today's numbers, bitwise: `train` never wraps anything for it);
- `ntk`: stored = drawn x sqrt(fan_in), multiplier 1/sqrt(fan_in): the forward at init is
  SP's, the initializer's own scale sigma stays in the stored weight (so every initializer
  of a run shares one program), and the update of the effective kernel is 1/sqrt(fan_in)
  of SP's;
- `mup`: Table 8 of the paper (the form microsoft/mup implements: `MuReadout`,
  `set_base_shapes`, `MuAdam`): input and hidden kernels drawn as in SP, the output kernel
  stored at sqrt(m) x its SP draw with multiplier 1/m (so its effective variance is
  1/(m x fan_in), Table 3's 1/fan_in^2 relative to the base), hidden rates / m, input and
  output rates 1. Equivalent to Table 3 for Adam (init var 1/fan_in^2 and rate 1/fan_in
  for the output kernel, no multipliers). docs/parameterizations.md has the table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from initbench.errors import InitbenchError, unknown_name

KINDS = ("input", "hidden", "output")


@dataclass(frozen=True)
class Scaling:
    """One kernel's factors: stored init, forward multiplier, learning rate."""

    init: float
    multiplier: float
    rate: float


@dataclass(frozen=True)
class Parameterization:
    """A registered parameterization: `scale(kind, fan_in, m) -> Scaling`."""

    name: str
    summary: str
    scale: Callable[[str, int, float], Scaling]


def _sp(kind: str, fan_in: int, m: float) -> Scaling:
    return Scaling(1.0, 1.0, 1.0)


def _ntk(kind: str, fan_in: int, m: float) -> Scaling:
    return Scaling(math.sqrt(fan_in), 1.0 / math.sqrt(fan_in), 1.0)


def _mup(kind: str, fan_in: int, m: float) -> Scaling:
    if kind == "output":
        return Scaling(math.sqrt(m), 1.0 / m, 1.0)
    if kind == "hidden":
        return Scaling(1.0, 1.0, 1.0 / m)
    return Scaling(1.0, 1.0, 1.0)


REGISTRY: dict[str, Parameterization] = {p.name: p for p in (
    Parameterization("sp", "standard: each kernel as the initializer draws it, one rate", _sp),
    Parameterization("ntk", "NTK: stored x sqrt(fan_in), forward x 1/sqrt(fan_in)", _ntk),
    Parameterization("mup", "muP for Adam (Tensor Programs V, Table 8 = microsoft/mup): output "
                            "x 1/m forward, stored x sqrt(m); hidden rate / m", _mup),
)}
NAMES = tuple(REGISTRY)


def get(name: str) -> Parameterization:
    """The registered parameterization `name`; InitbenchError naming the choices."""
    if name not in REGISTRY:
        raise unknown_name("parameterization", name, NAMES)
    return REGISTRY[name]


def width_of(hidden) -> int:
    """The width of an MLP of hidden widths `hidden`: its widest hidden layer."""
    return max(hidden)


def width_multiplier(spec) -> float:
    """m = width / base width (1 without `--base-width`)."""
    base = spec.base_width if spec.base_width is not None else width_of(spec.hidden)
    return width_of(spec.hidden) / base


def layer_kind(index: int, num_hidden: int) -> str:
    """'input' for dense_0, 'output' for dense_{num_hidden}, 'hidden' in between."""
    if index == num_hidden:
        return "output"
    return "input" if index == 0 else "hidden"


def layer_scalings(spec, num_features: int) -> dict[str, Scaling]:
    """{dense_i: Scaling} of the spec's MLP on `num_features` inputs, input to output."""
    record, m = get(spec.param), width_multiplier(spec)
    fans = (num_features, *spec.hidden)
    return {f"dense_{i}": record.scale(layer_kind(i, len(spec.hidden)), fans[i], m)
            for i in range(len(spec.hidden) + 1)}


def check(spec) -> None:
    """InitbenchError for a parameterization setting that cannot apply (called by
    `spec.validate`, before anything is drawn)."""
    get(spec.param)
    if spec.base_width is not None:
        if (not isinstance(spec.base_width, int) or isinstance(spec.base_width, bool)
                or spec.base_width < 1):
            raise InitbenchError(f"--base-width must be a positive integer, got "
                                 f"{spec.base_width}.")
        if spec.param == "sp":
            raise InitbenchError("--base-width has no effect with --param sp (nothing scales "
                                 "with width); drop it or give --param mup or ntk.")
    if spec.param != "sp" and spec.model != "mlp":
        raise InitbenchError(f"--param {spec.param} applies to the MLP only for now (its "
                             f"layers are input, hidden and output); got --model {spec.model}.")


def _kernel_map(spec, params, pick: Callable[[Scaling], float]):
    """`params` (or updates, shaped alike) with each `dense_i/kernel` leaf multiplied by
    pick(its Scaling); fan_in is read from the leaf ([..., fan_in, fan_out]), so this works
    on one cell's tree and on trees with leading cell axes alike. Factors of 1 are skipped
    (the leaf is returned as is)."""
    import jax

    record, m, num_hidden = get(spec.param), width_multiplier(spec), len(spec.hidden)

    def one(path, leaf):
        names = [str(getattr(k, "key", k)) for k in path]
        if len(names) < 2 or names[-1] != "kernel" or not names[-2].startswith("dense_"):
            return leaf
        index = int(names[-2][len("dense_"):])
        factor = pick(record.scale(layer_kind(index, num_hidden), int(leaf.shape[-2]), m))
        return leaf if factor == 1.0 else leaf * factor

    return jax.tree_util.tree_map_with_path(one, params)


def to_stored(spec, params):
    """Drawn (SP) parameters as the parameterization stores them (kernels x `init`)."""
    return _kernel_map(spec, params, lambda s: s.init)


def effective(spec, params):
    """Stored parameters as the forward pass uses them (kernels x `multiplier`)."""
    return _kernel_map(spec, params, lambda s: s.multiplier)


def wrap_apply(spec, apply_fn: Callable) -> Callable:
    """`apply(variables, x, **kw)` that runs `apply_fn` on the effective parameters."""

    def apply_effective_fn(variables, x, **kwargs):
        variables = dict(variables)
        variables["params"] = effective(spec, variables["params"])
        return apply_fn(variables, x, **kwargs)

    return apply_effective_fn


def scale_rates(spec):
    """An optax transformation that multiplies each kernel's update by its `rate`
    (chained after the optimizer: a per-parameter learning rate)."""
    import optax

    def update_fn(updates, state, params=None):
        return _kernel_map(spec, updates, lambda s: s.rate), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def card_columns(spec, rows: list[dict], num_features: int) -> list[dict]:
    """The card's rows with the parameterization's columns: `multiplier`, `rate` (the
    learning rate of that parameter at the spec's first rate), `init_factor`, and `effective_std` (the std the
    forward pass sees: drawn std x multiplier); a kernel's expected std is that of the
    stored weight."""
    scalings, lr = layer_scalings(spec, num_features), spec.lr[0]
    out = []
    for row in rows:
        layer, _, leaf = row["path"].rpartition("/")
        s = scalings.get(layer) if leaf == "kernel" else None
        s = s or Scaling(1.0, 1.0, 1.0)
        row = dict(row, init_factor=s.init, multiplier=s.multiplier, rate=lr * s.rate,
                   effective_std=row["drawn_std"] * s.multiplier)
        if s.init != 1.0:
            row["rule"] = f"{row['rule']}, x {s.init:.4g} ({spec.param})"
        if row.get("expected_std") is not None:
            row["expected_std"] = row["expected_std"] * s.init
        out.append(row)
    return out
