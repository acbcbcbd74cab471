"""Networks by name (`--model`): the MLP, the built-in CNN, or a user's Flax module factory;
and the draw of every eligible parameter of any network by a named initializer.

Every network is a `Network`, the MLP included: it takes the dataset's flat rows reshaped
to its `image_shape` inside `apply` (images [N, H, W, C] for the CNN and user modules; the
MLP's `image_shape` is [D], so its rows pass unchanged). The probe, `--track-layers`, LSUV
and the card read only the `Network`.

Which parameters an initializer draws (`param_rules`):

- every `kernel` of rank >= 2 (Dense, Conv, ...), and every parameter of rank >= 2 whose
  "/"-joined path matches a glob of the module's `initbench_params` attribute (e.g.
  `("*/embedding",)`): drawn by the initializer with the variance-scaling fans
  (`initializers.kernel_fans`: for [..., in, out], receptive field = product of the leading
  dimensions, fan_in = in x receptive field, fan_out = out x receptive field);
- the `bias` beside a drawn kernel: `--bias-init`, with that kernel's fan_in;
- everything else (normalization scales and offsets, unmarked embeddings): the module's own
  initialization, drawn with the cell's key.

Each drawn parameter's key is `model.init_key(init, seed)` folded with a CRC of its path, so
a cell's start depends only on its own (initializer, seed) and the network. The MLP keeps
the draw it has had since its first runs (`Network.module_draw`: its module built with the
initializer, keyed by flax), so its parameters and cache keys never move.

Over 450 lines: resolving `--model` (built-in or user factory, with its fingerprint),
the per-parameter draw and the initialization card share one rule table (`param_rules`),
which splitting would put in two places.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import inspect
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from initbench import initializers, modern_inits, rescnn, resmlp, user_code
from initbench import model as model_lib
from initbench.errors import InitbenchError, unknown_name
from initbench.parameterizations import CNN_WIDTH
from initbench.spec import BUILTIN_MODELS, HIDDEN_MODELS, Spec, kernel_params

CNN_VERSION = "cnn-v1"  # bump when the built-in CNN changes (it is in the cache key)


class CNN(nn.Module):
    """The built-in small CNN for 28x28 and 32x32 images (any H, W >= 4 works), of width w
    (default 64; `transfer --model cnn --widths ...` varies it, every layer in proportion):

    conv_0  3x3 conv, w/8 channels, stride 2, SAME   -> ReLU   (28x28x1 -> 14x14x8)
    conv_1  3x3 conv, w/4 channels, stride 2, SAME   -> ReLU   (14x14x8 -> 7x7x16)
    flatten                                                    (7x7x16 -> 784)
    dense_0 784 -> w                                 -> ReLU
    dense_1 w -> classes (logits)

    Strided convolutions instead of pooling: XLA:CPU's max-pool gradient under the cell
    axis (vmap) costs ~10x the whole rest of a step.
    """

    num_classes: int
    width: int = CNN_WIDTH  # at the default, the computation (and cache key) of cnn-v1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.relu(nn.Conv(self.width // 8, (3, 3), strides=2, padding="SAME", name="conv_0")(x))
        x = nn.relu(nn.Conv(self.width // 4, (3, 3), strides=2, padding="SAME", name="conv_1")(x))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(self.width, name="dense_0")(x))
        return nn.Dense(self.num_classes, name="dense_1")(x)


@dataclass(frozen=True)
class ParamRule:
    """How one parameter starts: `kind` is "kernel" (drawn by the initializer), "bias"
    (`--bias-init`) or "own" (the module's own initialization)."""

    path: tuple[str, ...]
    shape: tuple[int, ...]
    kind: str
    fan_in: int | None = None
    fan_out: int | None = None

    @property
    def name(self) -> str:
        return "/".join(self.path)


@dataclass(frozen=True, eq=False)
class Network:
    """A resolved `--model` for inputs of `image_shape` ([H, W, C]; [D] for the MLP) and
    `num_classes`.

    `module_draw`, where set, is how the network draws a cell (init_name -> (key ->
    params)) instead of `draw`'s per-path keys: the MLP's, kept so that its numbers never
    move. `activation`, where set, is the elementwise activation between consecutive drawn
    layers (the MLP's `--activation`): the probe's dead units are then those where its
    derivative is 0 (`diagnostics`).
    """

    model: str
    module: nn.Module
    image_shape: tuple[int, ...]
    num_classes: int
    # A built-in's version, or the user factory's source and name (`fingerprint()` builds
    # the cache key's from them); None for the MLP, whose key holds none.
    fingerprint: str | None
    marked: tuple[str, ...] = ()
    module_draw: Callable[[str], Callable[[jax.Array], dict]] | None = None
    activation: str | None = None

    def images(self, x: jax.Array) -> jax.Array:
        """Flat rows [N, D] as inputs [N, *image_shape] (inputs of that shape pass unchanged,
        so the MLP's program has no reshape)."""
        if tuple(x.shape[1:]) == self.image_shape:
            return x
        return x.reshape(x.shape[0], *self.image_shape)

    def apply(self, variables, x, **kwargs):
        """The module's logits [N, classes] for flat rows x [N, D]."""
        return self.module.apply(variables, self.images(x), **kwargs)

    def dummy(self) -> jax.Array:
        return jnp.zeros((1, *self.image_shape), jnp.float32)

    @functools.cached_property
    def template(self) -> dict:
        """Shapes of the parameters (jax.ShapeDtypeStruct leaves), nothing computed."""
        variables = jax.eval_shape(self.module.init, jax.random.key(0), self.dummy())
        return variables["params"]

    @functools.cached_property
    def rules(self) -> list[ParamRule]:
        return param_rules(self.template, self.marked)

    @functools.cached_property
    def layers(self) -> list[tuple[str, ...]]:
        """Paths of the modules whose kernels are drawn, in the order the data reaches them
        (the first call of each, found by intercepting module calls)."""
        owners = {rule.path[:-1] for rule in self.rules if rule.kind == "kernel"}
        order: list[tuple[str, ...]] = []

        def interceptor(next_fn, args, kwargs, context):
            path = tuple(context.module.scope.path)
            if context.method_name == "__call__" and path in owners and path not in order:
                order.append(path)
            return next_fn(*args, **kwargs)

        params = self.template
        with nn.intercept_methods(interceptor):
            jax.eval_shape(lambda p: self.module.apply({"params": p}, self.dummy()), params)
        return order + sorted(owners - set(order))  # never called: last, by name

    def layer_names(self) -> list[str]:
        return ["/".join(p) for p in self.layers]

    @functools.cached_property
    def structure(self):
        """The module's record of its residual branches (`resmlp.Structure`), or None."""
        record = getattr(self.module, "structure", None)
        return record() if callable(record) else None

    def run_layers(self, params, x, shifts: dict | None = None):
        """(logits, inputs, outputs) on flat rows x: `inputs[i]` and `outputs[i]` are what
        drawn layer i (`layers[i]`) received and returned on its first call; `shifts[i]`,
        if given, is added to that output (d loss / d shift = d loss / d output)."""
        index = {path: i for i, path in enumerate(self.layers)}
        inputs: dict[int, Any] = {}
        outputs: dict[int, Any] = {}

        def interceptor(next_fn, args, kwargs, context):
            i = index.get(tuple(context.module.scope.path))
            if context.method_name != "__call__" or i is None or i in outputs:
                return next_fn(*args, **kwargs)
            inputs[i] = args[0] if args else next(iter(kwargs.values()))
            out = next_fn(*args, **kwargs)
            if shifts is not None:
                out = out + shifts[i]
            outputs[i] = out
            return out

        with nn.intercept_methods(interceptor):
            logits = self.apply({"params": params}, x)
        return logits, inputs, outputs


def param_rules(params, marked: tuple[str, ...] = ()) -> list[ParamRule]:
    """The rule of every parameter of `params` (a param pytree or its shapes), in flatten
    order; see the module docstring."""
    flat = {tuple(str(getattr(k, "key", k)) for k in path): tuple(np.shape(leaf))
            for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}
    drawn = {path for path, shape in flat.items() if len(shape) >= 2 and (
        path[-1] == "kernel" or any(fnmatch.fnmatchcase("/".join(path), g) for g in marked))}
    rules = []
    for path, shape in flat.items():
        if path in drawn:
            rules.append(ParamRule(path, shape, "kernel", *initializers.kernel_fans(shape)))
        elif path[-1] == "bias" and (*path[:-1], "kernel") in drawn:
            fan_in, fan_out = initializers.kernel_fans(flat[(*path[:-1], "kernel")])
            rules.append(ParamRule(path, shape, "bias", fan_in, fan_out))
        else:
            rules.append(ParamRule(path, shape, "own"))
    return rules


def path_key(key: jax.Array, path: tuple[str, ...]) -> jax.Array:
    """The key of one parameter: the cell's key folded with a CRC of the parameter's path."""
    return jax.random.fold_in(key, zlib.crc32("/".join(path).encode()) & 0x7FFFFFFF)


def cell_draw(spec: Spec, network: Network, init_name: str) -> Callable[[jax.Array], dict]:
    """A cell's draw under `init_name`: the function from its `model.init_key` to its
    parameters (the network's own `module_draw`, else `draw`)."""
    if network.module_draw is not None:
        return network.module_draw(init_name)
    return functools.partial(draw, spec, network, init_name)


def draw(spec: Spec, network: Network, init_name: str, key: jax.Array) -> dict:
    """One cell's parameters: the module's own init (with `key`), then every drawn kernel
    and bias replaced by `init_name` and `spec.bias_init`, each with its `path_key`."""
    params = network.module.init(key, network.dummy())["params"]
    kernel_init = initializers.get(init_name, **kernel_params(spec, init_name))
    flat = dict(_flatten(params))
    for rule in network.rules:
        leaf = flat[rule.path]
        if rule.kind == "kernel":
            flat[rule.path] = kernel_init(path_key(key, rule.path), rule.shape, leaf.dtype)
        elif rule.kind == "bias":
            bias_init = initializers.get_bias(spec.bias_init, rule.fan_in)
            flat[rule.path] = bias_init(path_key(key, rule.path), rule.shape, leaf.dtype)
    flat = modern_inits.apply_branch_rules(initializers.base(init_name),
                                           network.structure, flat)
    return _unflatten(flat)


def _flatten(tree, prefix: tuple[str, ...] = ()):
    for name, value in tree.items():
        if isinstance(value, dict) or hasattr(value, "items"):
            yield from _flatten(value, (*prefix, name))
        else:
            yield (*prefix, name), value


def _unflatten(flat: dict) -> dict:
    out: dict = {}
    for path, value in flat.items():
        node = out
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = value
    return out


# ---------------------------------------------------------------- resolving --model


def resolve(spec: Spec, num_classes: int, image_shape) -> Network:
    """The `Network` of `spec.model` for the dataset's images `image_shape` and `num_classes`.

    InitbenchError (one line) for a missing file or attribute, a factory that raises or
    returns something other than a flax.linen Module."""
    image_shape = tuple(int(d) for d in image_shape)
    if spec.model == "mlp":
        return _mlp(spec, num_classes, math.prod(image_shape))
    if spec.model == "cnn":
        module = CNN(num_classes) if spec.width is None else CNN(num_classes, spec.width)
        return Network("cnn", module, image_shape, num_classes, CNN_VERSION)
    if spec.model == "resmlp":
        module = resmlp.make(spec.hidden, spec.activation, spec.norm, num_classes)
        return Network("resmlp", module, image_shape, num_classes, resmlp.RESMLP_VERSION)
    if spec.model == "rescnn":
        module = rescnn.make(spec.hidden, spec.activation, spec.norm, num_classes)
        return Network("rescnn", module, image_shape, num_classes, rescnn.RESCNN_VERSION)
    factory, fingerprint = load_factory(spec.model)
    kwargs = width_kwargs(spec, factory)
    call = f"{_call_name(spec.model)}({num_classes}{''.join(f', {k}={v}' for k, v in kwargs.items())})"
    try:
        module = factory(num_classes, **kwargs)
    except Exception as err:
        raise InitbenchError(f"--model {spec.model}: {call} raised "
                             f"{user_code.one_line(err)}") from None
    if not isinstance(module, nn.Module):
        kind = type(module).__module__ + "." + type(module).__qualname__
        hint = (" (flax.nnx modules: wrap with flax.nnx.bridge.to_linen)"
                if "nnx" in kind else "")
        raise InitbenchError(f"--model {spec.model}: {call} returned {kind}, not a "
                             f"flax.linen Module{hint}.")
    marked = tuple(getattr(module, "initbench_params", ()) or ())
    return Network(spec.model, module, image_shape, num_classes, fingerprint, marked)


def _mlp(spec: Spec, num_classes: int, num_features: int) -> Network:
    """The MLP (`initbench.model`) on flat rows of `num_features`: parameters `dense_i`,
    drawn by its module built with the initializer (flax's keys, as in every run since the
    first), and no fingerprint (its cache keys never change)."""
    return Network(
        "mlp", model_lib.make_model(spec, num_classes), (num_features,), num_classes, None,
        module_draw=lambda init_name: model_lib.cell_draw(spec, init_name, num_features,
                                                          num_classes),
        activation=spec.activation)


def _computation_fingerprint(network: Network) -> str:
    """"NAME@sha256:DIGEST" of what the user's network computes, wherever its code lives.

    The factory file's hash alone misses the modules it imports (a helper's WIDTH edited
    from 8 to 64 gave back the 8-wide network's cells), so the digest also covers the
    lowered StableHLO (without source locations) of the module's `init` and `apply` for
    these images and classes, and the parameters it marks for the initializers: a change
    anywhere that changes the numbers changes the key. InitbenchError if the network cannot
    be lowered (the same error `check` reports)."""
    name, _, digest = network.fingerprint.rpartition("@sha256:")
    hasher = hashlib.sha256(digest.encode())
    try:
        key = jax.random.key(0)
        variables = jax.eval_shape(network.module.init, key, network.dummy())
        for lowered in (jax.jit(network.module.init).lower(key, network.dummy()),
                        jax.jit(network.module.apply).lower(variables, network.dummy())):
            hasher.update(b"\0" + lowered.as_text(debug_info=False).encode())
    except Exception as err:
        raise InitbenchError(f"--model {network.model} cannot take images "
                             f"[N, {', '.join(map(str, network.image_shape))}]: "
                             f"{user_code.one_line(err)}") from None
    hasher.update(("\0" + "\0".join(network.marked)).encode())
    roles = getattr(network.module, "initbench_roles", None)
    if roles is not None:  # they set the --param factors (absent: every key as before)
        hasher.update(("\0roles\0" + repr(roles)).encode())
    return f"{name}@sha256:{hasher.hexdigest()[:16]}"


def make_apply(spec: Spec, num_classes: int, image_shape) -> Callable:
    """`apply(variables, x, **kwargs) -> logits` for flat rows x [N, D] of images of
    `image_shape`: the network's `apply`, which reshapes them to its inputs."""
    apply = resolve(spec, num_classes, image_shape).apply
    if spec.dtype == "float32":
        return apply  # the plain program: no wrapper, so sp's bits cannot move
    from initbench import precision

    dtype = precision.jax_dtype(spec.dtype)

    def low_precision_apply(variables, x, **kwargs):  # computation in `dtype`, logits float32
        out = apply(variables, x.astype(dtype), **kwargs)
        return out.astype(jnp.float32) if not isinstance(out, tuple) else out

    return low_precision_apply


def fingerprint(spec: Spec, num_classes: int, image_shape) -> str | None:
    """What the cache key holds about the model: a built-in's version (None for the MLP:
    its keys never change; resmlp's --hidden, --activation and --norm are in the training
    key), or for a user factory a hash of its source file, its name and the lowered
    computation of the network it builds for `num_classes` and `image_shape`
    (`_computation_fingerprint`)."""
    network = resolve(spec, num_classes, image_shape)
    if spec.model in BUILTIN_MODELS:
        return network.fingerprint
    return _computation_fingerprint(network)


def check(spec: Spec, num_classes: int, image_shape, dataset_name: str = "the dataset") -> Network:
    """Resolve and check the model before training: it takes a batch of [1, *image_shape]
    images, returns logits [1, num_classes] and has a parameter an initializer can draw.
    InitbenchError (one line) otherwise."""
    network = resolve(spec, num_classes, image_shape)
    shape = "x".join(map(str, network.image_shape))
    try:
        variables = jax.eval_shape(network.module.init, jax.random.key(0), network.dummy())
        logits = jax.eval_shape(network.module.apply, variables, network.dummy())
    except Exception as err:
        raise InitbenchError(f"--model {spec.model} cannot take {dataset_name}'s images "
                             f"[N, {shape.replace('x', ', ')}]: {user_code.one_line(err)}") from None
    if "params" not in variables:
        raise InitbenchError(f"--model {spec.model} has no parameters.")
    if not hasattr(logits, "shape") or tuple(logits.shape) != (1, num_classes):
        got = tuple(logits.shape) if hasattr(logits, "shape") else type(logits).__name__
        raise InitbenchError(f"--model {spec.model} returns logits of shape {got} for one "
                             f"image; expected (1, {num_classes}) ([N, classes]).")
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise InitbenchError(f"--model {spec.model} returns logits of dtype {logits.dtype}; "
                             "expected floating point (the loss and its gradient need it).")
    if not any(rule.kind == "kernel" for rule in network.rules):
        raise InitbenchError(f"--model {spec.model} has no weight an initializer can draw (a "
                             "'kernel' of rank >= 2, or a parameter named in the module's "
                             "initbench_params).")
    return network


@functools.lru_cache(maxsize=32)
def _load_cached(model: str, source_hash: str) -> Callable:
    return _load(model)


def load_factory(model: str) -> tuple[Callable, str]:
    """(factory, fingerprint) of "FILE.py:NAME" or "package.module:NAME"; the fingerprint is
    a hash of the source file and the factory name (a file loads again when it changes)."""
    where, _, name = model.rpartition(":")
    source = _source_of(model, where)
    digest = hashlib.sha256(source + b"\0" + name.encode()).hexdigest()[:16]
    return _load_cached(model, digest), f"{name}@sha256:{digest}"


def _source_of(model: str, where: str) -> bytes:
    """The bytes of the factory's source file."""
    if user_code.is_file(where):
        path = Path(where)
        if not path.is_file():
            raise InitbenchError(f"--model {model}: no such file '{where}'.")
        try:
            return path.read_bytes()
        except OSError as err:
            raise InitbenchError(f"--model {model}: cannot read '{where}': "
                                 f"{err.strerror or err}.") from None
    module = user_code.import_module(f"--model {model}", where, "initbench_user_")
    file = getattr(module, "__file__", None)
    try:
        return Path(file).read_bytes() if file else where.encode()
    except OSError:
        return where.encode()


def _load(model: str) -> Callable:
    where, _, name = model.rpartition(":")
    module = user_code.import_module(f"--model {model}", where, "initbench_user_")
    factory = getattr(module, name, None)
    if factory is None:
        choices = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        err = unknown_name(f"factory in '{where}'", name, choices)
        raise InitbenchError(f"--model {model}: {err}")
    if not callable(factory):
        raise InitbenchError(f"--model {model}: '{name}' in '{where}' is not callable.")
    return factory


def _call_name(model: str) -> str:
    return model.rpartition(":")[2]


# ---------------------------------------------------------------- width


def takes_width(factory: Callable) -> bool:
    """Whether a user factory takes the width to build at: a parameter named `width`
    (`def make(num_classes, width=64)`, a Module class with a `width` field)."""
    try:
        parameter = inspect.signature(factory).parameters.get("width")
    except (TypeError, ValueError):  # no signature to read (a builtin, some C callables)
        return False
    return parameter is not None and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def built_width(spec: Spec) -> int | None:
    """The width a non-MLP `spec.model` is built at: `spec.width`, else the built-in CNN's
    default or a user factory's default `width` (an int in its signature); None when the
    network has no width to read."""
    if spec.width is not None:
        return spec.width
    if spec.model == "cnn":
        return CNN_WIDTH
    if spec.model in HIDDEN_MODELS:
        return None
    factory, _ = load_factory(spec.model)
    if not takes_width(factory):
        return None
    default = inspect.signature(factory).parameters["width"].default
    return default if isinstance(default, int) and not isinstance(default, bool) else None


def width_kwargs(spec: Spec, factory: Callable) -> dict:
    """{"width": spec.width} for a factory that takes it, {} without a width; InitbenchError
    (one line) for a width asked of a factory that takes none."""
    if spec.width is None:
        return {}
    if not takes_width(factory):
        name = _call_name(spec.model)
        raise InitbenchError(f"--model {spec.model}: {name}() takes no width, so it cannot be "
                             f"built at --widths; give it one: def {name}(num_classes, "
                             f"width): ... (docs/parameterizations.md).")
    return {"width": spec.width}


# ---------------------------------------------------------------- the card


def card(spec: Spec, init_name: str, params: dict, network: Network) -> list[dict]:
    """The initialization card: one row per parameter of one cell's `params` (unstacked),
    with its path, shape, fans, the rule applied, the expected std (None where it depends
    on the module) and the std actually drawn."""
    from initbench.spec import kernel_params as accepted

    rules = network.rules
    flat = dict(_flatten(params))
    layers = network.layers
    order = {path: i for i, path in enumerate(layers)}
    rows = []
    for rule in rules:
        values = np.asarray(flat[rule.path], np.float64)
        row = {"path": rule.name, "shape": list(rule.shape), "fan_in": rule.fan_in,
               "fan_out": rule.fan_out, "drawn_std": float(values.std()),
               "drawn_mean": float(values.mean())}
        if rule.kind == "kernel":
            canonical = initializers.base(init_name)
            key, formula, matrix = "kernel", f"{init_name}: {initializers.formula(init_name)}", ""
            if canonical == "identity" and len(rule.shape) > 2:
                key = "conv kernel"
                formula = f"{init_name}: gain·Dirac (eye(in, out) at the window's centre)"
            if canonical in ("orthogonal", "lsuv") and len(rule.shape) > 2:
                key, matrix = "conv kernel", f"{rule.fan_in}x{rule.shape[-1]}"
            row["expected_std"] = initializers.expected_kernel_std(
                init_name, rule.shape, **accepted(spec, init_name))
            if canonical == "metainit":
                formula = (f"{init_name}: he_normal (expected std), then its norm learned "
                           "on data to minimize the gradient quotient (drawn std)")
            elif initializers.is_data_dependent(init_name):
                formula = (f"{init_name}: gain·Q (expected std), then rescaled on data to "
                           "unit output variance (drawn std)")
            row["rule"] = formula + (f", as a {matrix} matrix" if matrix else "")
            if matrix:  # the matrix is fan_in x out, which each row shows: said once here
                formula += ", of the kernel as a fan_in x out matrix"
            short = key
            formula += modern_inits.card_note(canonical, network.structure)
        elif rule.kind == "bias":
            key = short = "bias"
            formula = f"{spec.bias_init}: {initializers.bias_formula(spec.bias_init)}"
            row["rule"] = f"bias {formula}"
            row["expected_std"] = initializers.expected_bias_std(spec.bias_init, rule.fan_in)
        else:
            key = short = "own"
            formula = row["rule"] = "module's own initialization (not drawn)"
            row["expected_std"] = None
            row["kept"] = kept_values(values)
        branch_rule = modern_inits.card_rule(initializers.base(init_name), network.structure,
                                             rule.path, rule.kind, row["expected_std"])
        if branch_rule is not None:
            row["rule"], row["expected_std"], short, legend = branch_rule
            key, formula = legend or (key, formula)
        row["rule_short"], row["rule_legend"] = short, [key, formula]
        row["layer"] = order.get(rule.path[:-1])
        rows.append(row)
    kinds = {"kernel": 0, "bias": 1, "own": 2}
    by_path = {r.name: r for r in rules}
    return sorted(rows, key=lambda row: (
        row["layer"] if row["layer"] is not None else len(order),
        kinds[by_path[row["path"]].kind], row["path"]))


def kept_values(values: np.ndarray) -> str:
    """What a parameter the initializer left alone holds: 'ones', 'zeros', 'constant 0.5',
    or 'mean m, std s' for a module's own random draw (a std of 0 alone misread as a draw)."""
    flat = np.ravel(values)
    if flat.size and np.all(flat == flat[0]):
        return {0.0: "zeros", 1.0: "ones"}.get(float(flat[0]), f"constant {float(flat[0]):.4g}")
    return f"mean {float(flat.mean()):.4g}, std {float(flat.std()):.4g}"
