"""Parameterizations (`--param`): how a layer's initialization, forward multiplier and
learning rate scale with width. One record per parameterization in `REGISTRY`.

A network's drawn kernels are of three kinds (Tensor Programs V, Yang et al. 2022, §4 and
Table 3): `input` (finite fan_in -> width), `hidden` (width -> width) and `output` (width ->
finite fan_out). Each record maps (kind, fan_in, width multiplier m) to three numbers per kernel:

- `init`: the factor on the kernel as the initializer drew it (the *stored* weight);
- `multiplier`: the constant the stored kernel is multiplied by in the forward pass
  (effective kernel = multiplier x stored; gradients flow through it);
- `rate`: the factor on the learning rate of that kernel (its optimizer update is scaled:
  exactly a per-parameter rate for Adam, SGD and the others optax builds here);

and the bias beside a kernel of a kind to one number, the factor on its stored draw
(multiplier and rate 1: Table 8's "all biases" column). m = width / base_width, where the
width of an MLP is its widest hidden layer, that of another network `spec.width` (the
built-in CNN: 64 unless set), and `--base-width` defaults to the width (m = 1: muP is SP
there, by construction).

Which kernel of a network is of which kind, and applying the factors to its parameters
(stored, effective, per-layer rates, the card): `initbench.parameterize`. This module is
the registry and the width arithmetic; it imports no network.

- `sp`: every factor 1 (the numbers of a run without --param, bitwise: `train` never wraps anything for it);
- `ntk`: stored = drawn x sqrt(fan_in), multiplier 1/sqrt(fan_in): the forward at init is
  SP's, the initializer's own scale sigma stays in the stored weight (so every initializer
  of a run shares one program), and the update of the effective kernel is 1/sqrt(fan_in)
  of SP's;
- `mup`: Table 8 of the paper (the form microsoft/mup implements: `MuReadout`,
  `set_base_shapes`, `MuAdam`): input and hidden kernels drawn as in SP, the output kernel
  stored at sqrt(m) x its SP draw with multiplier 1/m (so its effective variance is
  1/(m x fan_in), Table 3's 1/fan_in^2 relative to the base), hidden rates / m, input and
  output rates 1; the biases of hidden and output layers stored at sqrt(m) x their draw
  (width-independent, as `set_base_shapes(rescale_params=True)` makes them; a no-op for
  the default zero biases). Equivalent to Table 3 for Adam. docs/parameterizations.md has
  the tables.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from initbench.builtin_models import HIDDEN_MODELS
from initbench.errors import InitbenchError, unknown_name

KINDS = ("input", "hidden", "output")
CNN_WIDTH = 64  # the built-in CNN's default width (`networks.CNN`: dense w, channels w/8, w/4)
_MAX_WIDTH = 2**31 - 1  # an int32 shape


@dataclass(frozen=True)
class Scaling:
    """One kernel's factors: stored init, forward multiplier, learning rate."""

    init: float
    multiplier: float
    rate: float


def _bias_as_drawn(kind: str, m: float) -> float:
    return 1.0


@dataclass(frozen=True)
class Parameterization:
    """A registered parameterization: `scale(kind, fan_in, m) -> Scaling` of a kernel, and
    `bias(kind, m)`: the factor on the stored bias of a layer whose kernel is of `kind`."""

    name: str
    summary: str
    scale: Callable[[str, int, float], Scaling]
    bias: Callable[[str, float], float] = _bias_as_drawn  # for a bias drawn at 1/sqrt(fan_in)


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


def _mup_bias(kind: str, m: float) -> float:
    # Table 8: a bias's init variance is Theta(1) (its fan_in is 1); a bias drawn at
    # 1/sqrt(fan_in) (torch_default) shrinks with width where fan_in is infinite, which
    # microsoft/mup undoes (`rescale_linear_bias`, `MuReadout._rescale_parameters`:
    # x sqrt(fan_in / base fan_in)).
    return math.sqrt(m) if kind in ("hidden", "output") else 1.0


def bias_factor(spec, record: Parameterization, kind: str, fan_in: int, m: float) -> float:
    """The stored factor on a bias of a layer of `kind` and `fan_in`: the record's factor
    for a bias drawn at 1/sqrt(fan_in), applied only when `spec.bias_init`'s scale does
    depend on fan_in (zeros, constant, normal, uniform: already width-free, left alone)."""
    from initbench import initializers

    factor = record.bias(kind, m)
    if factor == 1.0 or (initializers.expected_bias_std(spec.bias_init, fan_in)
                         == initializers.expected_bias_std(spec.bias_init, 4 * fan_in)):
        return 1.0
    return factor


REGISTRY: dict[str, Parameterization] = {p.name: p for p in (
    Parameterization("sp", "standard: each kernel as the initializer draws it, one rate", _sp),
    Parameterization("ntk", "NTK: stored x sqrt(fan_in), forward x 1/sqrt(fan_in)", _ntk),
    Parameterization("mup", "muP for Adam (Tensor Programs V, Table 8 = microsoft/mup): output "
                            "x 1/m forward, stored x sqrt(m); hidden rate / m", _mup, _mup_bias),
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


def network_width(spec) -> int | None:
    """The width the spec's network is built at: the MLP's (and residual nets') widest hidden
    layer, `spec.width`, the built-in CNN's default; None for a user factory at its own
    default (unknown before it is loaded)."""
    if spec.model in HIDDEN_MODELS:
        return width_of(spec.hidden)
    if spec.width is not None:
        return spec.width
    return CNN_WIDTH if spec.model == "cnn" else None


def width_multiplier(spec) -> float:
    """m = width / base width (1 without `--base-width`)."""
    width = network_width(spec)
    if width is None or spec.base_width is None:
        return 1.0
    return width / spec.base_width


def check(spec) -> None:
    """InitbenchError for a parameterization or width setting that cannot apply (called by
    `spec.validate`, before anything is drawn)."""
    get(spec.param)
    if spec.width is not None:
        if (not isinstance(spec.width, int) or isinstance(spec.width, bool)
                or not 1 <= spec.width <= _MAX_WIDTH):
            raise InitbenchError(f"width must be a positive integer, got {spec.width}.")
        if spec.model in HIDDEN_MODELS:
            raise InitbenchError(f"a width applies to a network whose factory takes one; "
                                 f"--model {spec.model}'s widths are --hidden.")
        if spec.model == "cnn" and spec.width % 8:
            raise InitbenchError(f"the built-in CNN's width must be a multiple of 8 (its "
                                 f"convolutions have width/8 and width/4 channels), got "
                                 f"{spec.width}.")
    if spec.base_width is not None:
        if (not isinstance(spec.base_width, int) or isinstance(spec.base_width, bool)
                or spec.base_width < 1):
            raise InitbenchError(f"--base-width must be a positive integer, got "
                                 f"{spec.base_width}.")
        if spec.param == "sp":
            raise InitbenchError("--base-width has no effect with --param sp (nothing scales "
                                 "with width); drop it or give --param mup or ntk.")
        if network_width(spec) is None:
            raise InitbenchError(f"--base-width needs the width --model {spec.model} is built "
                                 "at, which only transfer and coord --widths set (its factory "
                                 "takes a width); drop --base-width.")
