"""The name-to-initializer registry, with formulas in the docstrings.

A kernel has shape (fan_in, fan_out); a bias has shape (fan_out,). Initializers are
`jax.nn.initializers.Initializer`s, called as `init(key, shape, dtype)`.

Notation in the formulas:

- `U(±b)`: uniform on [-b, b].
- `N(0, s²)`: normal with std s.
- `TN(s)`: a normal truncated at ±2 of its own std and scaled so that the result's
  std is exactly s (so |w| < 2·s/0.8796). This is what jax and Keras call the
  truncated-normal variance-scaling initializers.

Names, aliases, formulas and expected stds need no JAX: JAX is imported only when
an initializer is built, so `import initbench.initializers` stays cheap.

Over 450 lines: one registry of every kernel and bias initializer with its formula,
expected std and parameter checks; each record is a few lines and they are read together.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from initbench import init_names
from initbench.errors import InitbenchError, unknown_name

if TYPE_CHECKING:
    from jax.nn.initializers import Initializer

MODES = ("fan_in", "fan_out", "fan_avg")


def _truncated_unit_std() -> float:
    """Std of N(0, 1) truncated to [-2, 2]: sqrt(1 - 4·φ(2)/(Φ(2) - Φ(-2))) ≈ 0.8796."""
    pdf = math.exp(-2.0) / math.sqrt(2.0 * math.pi)
    mass = math.erf(2.0 / math.sqrt(2.0))
    return math.sqrt(1.0 - 4.0 * pdf / mass)


TRUNCATED_UNIT_STD = _truncated_unit_std()


@dataclass(frozen=True)
class _Entry:
    """One registered initializer: its formula, parameter defaults, builder and std, and for
    a data-dependent one its after-draw hook.

    `after_draw(spec, network, params, data) -> (params, passes)` rescales the parameters
    of several seeds of one initializer (leading [seed] axis; `network`: the `networks.Network`)
    on `data` (an `initbench.data.Dataset`) and returns the passes per layer ([seed, L]
    ints). It may be given as "module:function", imported only when a start is drawn, so
    the registry stays free of JAX.
    """

    formula: str
    make: Callable[..., Initializer]
    std: Callable[..., float]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    after_draw: Callable | str | None = None
    scaling: tuple[float, str] | None = None  # variance scaling: (base, distribution)


# ---------------------------------------------------------------- kernel builders


def _fan(fan_in: int, fan_out: int, mode: str) -> float:
    """The variance-scaling denominator: fan_in, fan_out or (fan_in + fan_out)/2."""
    return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]


def _variance_scaling(base: float, default_mode: str, distribution: str, formula: str) -> _Entry:
    """A variance-scaling entry: Var(w) = gain²·base/fan(mode), drawn from `distribution`.

    `distribution` is "uniform" (U(±sqrt(3·Var))) or "truncated_normal" (TN(sqrt(Var))),
    as in `jax.nn.initializers.variance_scaling`.
    """

    def make(gain: float, mode: str) -> Initializer:
        from jax.nn import initializers

        return initializers.variance_scaling(base * gain**2, mode, distribution)

    def std(fan_in: int, fan_out: int, gain: float, mode: str) -> float:
        return gain * math.sqrt(base / _fan(fan_in, fan_out, mode))

    return _Entry(formula, make, std, {"gain": 1.0, "mode": default_mode},
                  scaling=(base, distribution))


def _orthogonal(gain: float) -> Initializer:
    """gain·Q with Q semi-orthogonal: QᵀQ = I if fan_in ≥ fan_out, else QQᵀ = I."""
    from jax.nn import initializers

    return initializers.orthogonal(gain)


def _orthogonal_std(fan_in: int, fan_out: int, gain: float) -> float:
    """Std of gain·Q: Σw² = gain²·min(fan_in, fan_out), so std = gain/sqrt(max(fan_in, fan_out))."""
    return gain / math.sqrt(max(fan_in, fan_out))


def _identity(gain: float) -> Initializer:
    """gain·eye(fan_in, fan_out): ones on the main diagonal, also for non-square kernels.

    A convolution kernel [*window, in, out] gets the Dirac (delta) kernel: gain·eye(in, out)
    at the window's centre (index size // 2 along each window axis), zeros elsewhere, so
    the convolution passes its input through (channels beyond min(in, out) dropped or zero).
    """
    import jax.numpy as jnp

    def init_fn(key, shape, dtype=None):
        dtype = jnp.result_type(float) if dtype is None else dtype
        if len(shape) == 2:
            return gain * jnp.eye(shape[0], shape[1], dtype=dtype)
        centre = tuple(size // 2 for size in shape[:-2])
        kernel = jnp.zeros(shape, dtype)
        return kernel.at[centre].set(gain * jnp.eye(shape[-2], shape[-1], dtype=dtype))

    return init_fn


def _identity_std(fan_in: int, fan_out: int, gain: float) -> float:
    """Std of gain·eye's entries: gain·sqrt(p - p²), p = min(fan_in, fan_out)/(fan_in·fan_out)."""
    p = min(fan_in, fan_out) / (fan_in * fan_out)
    return gain * math.sqrt(p - p * p)


def _normal(stddev: float) -> Initializer:
    """N(0, stddev²), as `tf.random_normal`."""
    from jax.nn import initializers

    return initializers.normal(stddev)


def _truncated_normal(stddev: float) -> Initializer:
    """TN(stddev): the result's std is `stddev` (the underlying normal's is stddev/0.8796)."""
    from jax.nn import initializers

    return initializers.truncated_normal(stddev / TRUNCATED_UNIT_STD)


def _uniform(scale: float) -> Initializer:
    """U(±scale); std = scale/sqrt(3). (`jax.nn.initializers.uniform` is U[0, scale).)"""
    import jax
    import jax.numpy as jnp

    def init_fn(key, shape, dtype=None):
        dtype = jnp.result_type(float) if dtype is None else dtype
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init_fn


def _zeros() -> Initializer:
    """All zeros."""
    from jax.nn import initializers

    return initializers.zeros


def _torch_default() -> Initializer:
    """PyTorch nn.Linear: kaiming_uniform(a=sqrt(5)) = U(±1/sqrt(fan_in)), Var = 1/(3·fan_in)."""
    from jax.nn import initializers

    return initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _fixed_std(value: Callable[[int, int], float]) -> Callable[..., float]:
    """Wrap std(fan_in, fan_out) that takes no parameters."""
    return lambda fan_in, fan_out: value(fan_in, fan_out)


_KERNELS: dict[str, _Entry] = {
    "glorot_uniform": _variance_scaling(1.0, "fan_avg", "uniform", "U(±sqrt(6/(fan_in+fan_out)))"),
    "glorot_normal": _variance_scaling(
        1.0, "fan_avg", "truncated_normal", "TN(sqrt(2/(fan_in+fan_out)))"
    ),
    "he_uniform": _variance_scaling(2.0, "fan_in", "uniform", "U(±sqrt(6/fan_in))"),
    "he_normal": _variance_scaling(2.0, "fan_in", "truncated_normal", "TN(sqrt(2/fan_in))"),
    "lecun_uniform": _variance_scaling(1.0, "fan_in", "uniform", "U(±sqrt(3/fan_in))"),
    "lecun_normal": _variance_scaling(1.0, "fan_in", "truncated_normal", "TN(sqrt(1/fan_in))"),
    "torch_default": _Entry(
        "U(±1/sqrt(fan_in))", _torch_default, _fixed_std(lambda fi, fo: 1 / math.sqrt(3 * fi))
    ),
    "orthogonal": _Entry("gain·Q, Q semi-orthogonal", _orthogonal, _orthogonal_std, {"gain": 1.0}),
    "lsuv": _Entry(
        "gain·Q, then rescaled on data to unit output variance",
        _orthogonal,
        _orthogonal_std,
        {"gain": 1.0},
        after_draw="initbench.lsuv:after_draw",
    ),
    "identity": _Entry("gain·eye(fan_in, fan_out)", _identity, _identity_std, {"gain": 1.0}),
    "normal": _Entry(
        "N(0, stddev²), stddev=1", _normal, lambda fi, fo, stddev: stddev, {"stddev": 1.0}
    ),
    "truncated_normal": _Entry(
        "TN(stddev), stddev=1",
        _truncated_normal,
        lambda fi, fo, stddev: stddev,
        {"stddev": 1.0},
    ),
    "uniform": _Entry(
        "U(±scale), scale=0.05",
        _uniform,
        lambda fi, fo, scale: scale / math.sqrt(3),
        {"scale": 0.05},
    ),
    "zeros": _Entry("0", _zeros, _fixed_std(lambda fi, fo: 0.0)),
}
"""Kernel initializers, in display order. Docstrings of the builders hold the details:

- glorot_* (Glorot & Bengio 2010; `tf.contrib.layers.xavier_initializer`): Var = 2/(fan_in+fan_out).
  glorot_normal follows jax: TN, so the final std is sqrt(2/(fan_in+fan_out)).
- he_* (He et al. 2015): Var = 2/fan_in. he_normal is TN, as in jax.
- lecun_* (LeCun et al. 1998): Var = 1/fan_in. lecun_normal is TN, as in jax.
- `gain` multiplies the std (Var scale = gain²·base); `mode` overrides the fan.
- lsuv starts as orthogonal; its after-draw hook (`lsuv.after_draw`) rescales it on data.
"""

_ALIASES: dict[str, str] = {
    "xavier": "glorot_uniform",
    "xavier_uniform": "glorot_uniform",
    "xavier_normal": "glorot_normal",
    "kaiming_uniform": "he_uniform",
    "kaiming_normal": "he_normal",
    "delta": "identity",
}


# ---------------------------------------------------------------- bias builders


def _bias_torch_default(fan_in: int) -> Initializer:
    """PyTorch nn.Linear's bias: U(±1/sqrt(fan_in))."""
    return _uniform(1.0 / math.sqrt(fan_in))


def _bias_constant(value: float) -> Initializer:
    """Every bias equal to `value` (default 0.01, a small positive start for ReLU)."""
    from jax.nn import initializers

    return initializers.constant(value)


_BIASES: dict[str, _Entry] = {
    "zeros": _Entry("0", lambda fan_in: _zeros(), lambda fan_in: 0.0),
    "normal": _Entry(
        "N(0, stddev²), stddev=1",
        lambda fan_in, stddev: _normal(stddev),
        lambda fan_in, stddev: stddev,
        {"stddev": 1.0},
    ),
    "truncated_normal": _Entry(
        "TN(stddev), stddev=1",
        lambda fan_in, stddev: _truncated_normal(stddev),
        lambda fan_in, stddev: stddev,
        {"stddev": 1.0},
    ),
    "uniform": _Entry(
        "U(±scale), scale=0.05",
        lambda fan_in, scale: _uniform(scale),
        lambda fan_in, scale: scale / math.sqrt(3),
        {"scale": 0.05},
    ),
    "torch_default": _Entry(
        "U(±1/sqrt(fan_in))", _bias_torch_default, lambda fan_in: 1 / math.sqrt(3 * fan_in)
    ),
    "constant": _Entry(
        "value, value=0.01",
        lambda fan_in, value: _bias_constant(value),
        lambda fan_in, value: 0.0,
        {"value": 0.01},
    ),
}

BIAS_NAMES: tuple[str, ...] = tuple(_BIASES)


# ---------------------------------------------------------------- validation


def _positive(param: str, value: Any) -> float:
    """`value` as a finite float > 0, or an InitbenchError naming `param`."""
    number = _finite(param, value)
    if number <= 0:
        raise InitbenchError(f"{param} must be a positive number, got {value!r}.")
    return number


def _finite(param: str, value: Any) -> float:
    """`value` as a finite float, or an InitbenchError naming `param`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise InitbenchError(f"{param} must be a finite number, got {value!r}.")
    return number


def _mode(param: str, value: Any) -> str:
    """`value` if it is one of MODES, else the did-you-mean error."""
    if value not in MODES:
        raise unknown_name(param, str(value), MODES)
    return value


# A gain, stddev or scale and its square stay normal float32 numbers (draws are float32).
SCALE_RANGE = (1.0842021724855044e-19, 1.8446742974197924e19)


def _scale(param: str, value: Any) -> float:
    """`value` as a positive float in SCALE_RANGE, or an InitbenchError naming `param`."""
    number = _positive(param, value)
    if not SCALE_RANGE[0] <= number <= SCALE_RANGE[1]:
        raise InitbenchError(f"{param} {value} is out of range: it must be in "
                             f"[{SCALE_RANGE[0]:.3g}, {SCALE_RANGE[1]:.3g}] (it and its square "
                             "normal float32 numbers).")
    return number


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "gain": _scale,
    "stddev": _scale,
    "scale": _scale,
    "mode": _mode,
    "value": _finite,
    "tau": _scale,
}


def _resolve(kind: str, name: str, entry: _Entry, given: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overridden by the given params (None means not given), each validated."""
    resolved = dict(entry.defaults)
    for param, value in given.items():
        if value is None:
            continue
        if param not in entry.defaults:
            if not entry.defaults:
                raise InitbenchError(f"{kind} '{name}' takes no parameters, got '{param}'.")
            raise unknown_name(f"{name} parameter", param, entry.defaults)
        resolved[param] = _CHECKS[param](param, value)
    return resolved


def _normalize(name: str) -> str:
    """Case- and dash-insensitive spelling: "Xavier-Uniform" -> "xavier_uniform"."""
    return str(name).strip().lower().replace("-", "_")


def _check_fan(param: str, value: Any) -> int:
    """`value` as a positive int, or an InitbenchError naming `param`."""
    try:
        number = operator.index(value)
    except TypeError:
        number = 0
    if isinstance(value, bool) or number <= 0:
        raise InitbenchError(f"{param} must be a positive integer, got {value!r}.")
    return number


# ---------------------------------------------------------------- public interface


def names() -> list[str]:
    """Canonical kernel initializer names, in display order."""
    return list(_KERNELS)


def aliases() -> dict[str, str]:
    """Alias -> canonical kernel initializer name."""
    return dict(_ALIASES)


def _lookup(name: str) -> tuple[str, _Entry, dict[str, Any]]:
    """(base name, registry entry, the validated parameters its specifier sets) of a
    specifier `name` ("normal(0.01)" -> ("normal", ..., {"stddev": 0.01}))."""
    spec = init_names.parse(name)
    key = _normalize(spec.name)
    key = _ALIASES.get(key, key)
    if key not in _KERNELS:
        raise unknown_name("initializer", spec.name, [*_KERNELS, *_ALIASES])
    entry = _KERNELS[key]
    given = init_names.bind(spec, entry.defaults, spec.name)
    try:
        return key, entry, {param: _CHECKS[param](param, value) for param, value in given.items()}
    except InitbenchError as err:
        raise InitbenchError(f"'{spec.label}': {err}") from None


def _with(name: str, given: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The specifier's parameters `given` plus keyword `params` (None: not given); one set
    in both is an InitbenchError."""
    merged = dict(given)
    for param, value in params.items():
        if value is None:
            continue
        if param in given:
            raise InitbenchError(f"'{init_names.label(name)}' sets {param} in its name and "
                                 f"again as an option ({param}={init_names.value_text(value)}); "
                                 "give it once.")
        merged[param] = value
    return merged


def base(name: str) -> str:
    """The canonical name of a specifier without its parameters ("xavier(gain=2)" ->
    "glorot_uniform"): the random stream of its cells (see `model.init_key`)."""
    return _lookup(name)[0]


def canonical(name: str) -> str:
    """The canonical identity of a specifier: its base name ("xavier" -> "glorot_uniform"),
    then the parameters that differ from their defaults, in registry order, exact
    ("normal(0.010)" -> "normal(stddev=0.01)", "normal(1)" -> "normal"). Two specifiers draw
    the same weights exactly when their identities are equal; cells are cached under it."""
    key, entry, given = _lookup(name)
    changed = [f"{param}={init_names.value_text(given[param])}" for param in entry.defaults
               if param in given and given[param] != entry.defaults[param]]
    return f"{key}({','.join(changed)})" if changed else key


def formula(name: str) -> str:
    """One-line formula of a kernel initializer, e.g. "U(±sqrt(6/(fan_in+fan_out)))", with
    the parameters its specifier sets ("normal(0.01)" -> "N(0, stddev²), stddev=0.01")."""
    _, entry, given = _lookup(name)
    resolved = {**entry.defaults, **given}
    if resolved == dict(entry.defaults):
        return entry.formula
    if entry.scaling is not None:  # Var = gain²·base/fan(mode), written out
        base_var, distribution = entry.scaling
        top = resolved["gain"] ** 2 * base_var * (2 if resolved["mode"] == "fan_avg" else 1)
        fan = {"fan_in": "fan_in", "fan_out": "fan_out",
               "fan_avg": "(fan_in+fan_out)"}[resolved["mode"]]
        if distribution == "uniform":
            return f"U(±sqrt({3 * top:.6g}/{fan}))"
        return f"TN(sqrt({top:.6g}/{fan}))"
    head = ", ".join(part for part in entry.formula.split(", ")
                     if part.partition("=")[0] not in entry.defaults)
    tail = ", ".join(f"{param}={init_names.value_text(value)}"
                     for param, value in resolved.items())
    return f"{head}, {tail}"


def params(name: str) -> dict[str, Any]:
    """The parameters a kernel initializer takes, with their defaults overridden by those
    its specifier sets."""
    _, entry, given = _lookup(name)
    return {**entry.defaults, **given}


def register(name: str, formula: str, make: Callable[..., Initializer],
             std: Callable[..., float], defaults: Mapping[str, Any] | None = None,
             after_draw: Callable | str | None = None) -> None:
    """Add a kernel initializer: `make(**params)` builds it, `std(fan_in, fan_out, **params)`
    is its theoretical std, `defaults` are the parameters it takes, and `after_draw` (see
    `_Entry`) makes it data-dependent. Every command then accepts `name`."""
    key = _normalize(name)
    if key in _KERNELS or key in _ALIASES:
        raise ValueError(f"initializer {name!r} is already registered")
    _KERNELS[key] = _Entry(formula, make, std, dict(defaults or {}), after_draw)


def is_builtin(name: str) -> bool:
    """Whether initializer `name` is built by initbench's own code (not one a user's script
    `register`ed): only then can its draw be kept across processes, keyed by initbench's
    sources (`programs.source_hash`)."""
    return _lookup(name)[1].make.__module__.startswith("initbench.")


def is_data_dependent(name: str) -> bool:
    """Whether the initializer needs data after the draw (it has an after-draw hook)."""
    return _lookup(name)[1].after_draw is not None


def after_draw(name: str) -> Callable | None:
    """The after-draw hook of initializer `name` (see `_Entry`), or None."""
    hook = _lookup(name)[1].after_draw
    if isinstance(hook, str):
        import importlib

        module, _, attribute = hook.partition(":")
        hook = getattr(importlib.import_module(module), attribute)
    return hook


def needs_branches(name: str) -> bool:
    """Whether the initializer sets residual branches (fixup, skipinit/rezero)."""
    from initbench import modern_inits

    return base(name) in modern_inits.NEEDS_BRANCHES


def accepted(name: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of `given` parameters that initializer `name` takes (`--gain` and `--mode`
    apply where they make sense)."""
    takes = _lookup(name)[1].defaults
    return {k: v for k, v in given.items() if k in takes}


def get(name: str, **params: Any) -> Initializer:
    """The kernel initializer of specifier `name` for shape (fan_in, fan_out), with
    validated params (those in the name and keyword `params`, each given once)."""
    key, entry, given = _lookup(name)
    return entry.make(**_resolve("initializer", key, entry, _with(name, given, params)))


def expected_std(name: str, fan_in: int, fan_out: int, **params: Any) -> float:
    """Theoretical std over the entries of one (fan_in, fan_out) kernel drawn by `name`."""
    key, entry, given = _lookup(name)
    resolved = _resolve("initializer", key, entry, _with(name, given, params))
    return entry.std(_check_fan("fan_in", fan_in), _check_fan("fan_out", fan_out), **resolved)


def kernel_fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a kernel [..., in, out] by the variance-scaling convention:
    receptive field = product of the leading dimensions, fan_in = in x receptive field,
    fan_out = out x receptive field (a Dense kernel [in, out] has fans in and out)."""
    if len(shape) < 2:
        raise InitbenchError(f"a kernel has rank 2 or more, got shape {tuple(shape)}.")
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def expected_kernel_std(name: str, shape, **params: Any) -> float:
    """Theoretical std over the entries of a kernel of any rank >= 2 drawn by `name`.

    Fans follow `kernel_fans`; orthogonal (and lsuv's start) reshapes the kernel to the
    matrix [prod(shape[:-1]), out]; identity of a convolution is the Dirac kernel, whose
    nonzero entries are min(in, out) of the prod(shape) entries; delta_orthogonal, zero and
    idinit hold their matrix at the window's centre, idinit(conv=patch) is I' [fan_in, out].
    """
    key, _, given = _lookup(name)
    params = _with(name, given, params)
    fan_in, fan_out = kernel_fans(shape)
    if len(shape) > 2 and key in ("orthogonal", "lsuv"):
        return expected_std(key, fan_in, shape[-1], **params)
    patch = key == "idinit" and _resolve("initializer", key, _KERNELS[key], params)["conv"] == "patch"
    if len(shape) > 2 and patch:
        return expected_std(key, fan_in, shape[-1], **params)  # the kernel is I' [in·k², out]
    if len(shape) > 2 and key in ("delta_orthogonal", "zero", "idinit"):
        centre = expected_std(key, shape[-2], shape[-1], **params)  # the window's centre
        share = 1.0 / math.prod(shape[:-2])
        mean = _centre_mean(key, shape, params)
        return math.sqrt(max((centre**2 + mean**2) * share - (mean * share) ** 2, 0.0))
    if len(shape) > 2 and key == "identity":
        gain = _resolve("initializer", key, _KERNELS[key], params)["gain"]
        p = min(shape[-2], shape[-1]) / math.prod(shape)
        return gain * math.sqrt(p - p * p)
    return expected_std(key, fan_in, fan_out, **params)


def _centre_mean(key: str, shape, params: Mapping[str, Any]) -> float:
    """Mean of the matrix a centred kernel holds (ZerO's; IDInit's τ·I'; 0 for
    delta_orthogonal)."""
    from initbench import modern_inits

    if key == "zero":
        return float(modern_inits.zero_matrix(shape[-2], shape[-1]).mean())
    if key == "idinit":
        tau = _resolve("initializer", key, _KERNELS[key], params)["tau"]
        return tau * float(modern_inits.identity_like(shape[-2], shape[-1]).mean())
    return 0.0


def _bias_entry(name: str) -> tuple[str, _Entry]:
    """The canonical bias name and its registry entry."""
    key = _normalize(name)
    if key not in _BIASES:
        raise unknown_name("bias initializer", name, BIAS_NAMES)
    return key, _BIASES[key]


def bias_formula(name: str) -> str:
    """One-line formula of a bias initializer, e.g. "U(±1/sqrt(fan_in))"."""
    return _bias_entry(name)[1].formula


def get_bias(name: str, fan_in: int, **params: Any) -> Initializer:
    """The bias initializer `name` for shape (fan_out,) of a layer with `fan_in` inputs."""
    key, entry = _bias_entry(name)
    resolved = _resolve("bias initializer", key, entry, params)
    return entry.make(_check_fan("fan_in", fan_in), **resolved)


def expected_bias_std(name: str, fan_in: int, **params: Any) -> float:
    """Theoretical std over the entries of one bias vector drawn by `name`."""
    key, entry = _bias_entry(name)
    resolved = _resolve("bias initializer", key, entry, params)
    return entry.std(_check_fan("fan_in", fan_in), **resolved)


# The initializers of the last decade live in their own module; it adds them here.
from initbench import modern_inits as _modern_inits  # noqa: E402

_modern_inits.register(_Entry, _KERNELS, _ALIASES, _orthogonal_std, _CHECKS)
