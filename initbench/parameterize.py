"""How a parameterization (`initbench.parameterizations`) applies to a network's
parameters: each drawn kernel's role, the factor of every parameter, the stored and
effective parameters, the per-layer rates (an optax transformation) and the card's columns.

Which kernel is of which kind (`roles`), for every network (the MLP included), in this
order,
1. the module's `initbench_roles` attribute: globs over "/"-joined parameter paths mapped
   to kinds (`{"stem/kernel": "input", "head/*": "output", "*": "hidden"}`), the first glob
   that matches wins, and every drawn kernel must be matched;
2. when the network has a width (`spec.width`; else the built-in CNN's 64 or the default
   of a user factory's `width` argument): its shapes at that width and at twice it, as
   microsoft/mup's `set_base_shapes` compares a base and a target model: a fan that
   doubles is infinite, one that stays is finite; (finite, infinite) is input, (infinite,
   infinite) hidden, (infinite, finite) output, and (finite, finite) scales like an input
   kernel (nothing scales);
3. otherwise the order the data reaches the drawn layers: the first input, the last (which
   must return the logits) output, those between hidden.
Where none applies, one line naming the fix (InitbenchError).
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Callable, Mapping

from initbench import networks, parameterizations
from initbench.errors import InitbenchError
from initbench.parameterizations import KINDS, Scaling

# ---------------------------------------------------------------- layer roles


def roles(spec, network) -> dict[tuple[str, ...], str]:
    """{kernel path: kind} of every drawn kernel of `network` (a resolved `networks.Network`
    of `spec`), from its `initbench_roles`, its shapes at two widths or the order of its
    layers (the module docstring); InitbenchError (one line) when none tells."""
    return _roles(spec, network)


@functools.lru_cache(maxsize=64)
def _roles(spec, network) -> dict[tuple[str, ...], str]:
    kernels = [rule for rule in network.rules if rule.kind == "kernel"]
    declared = getattr(network.module, "initbench_roles", None)
    if declared is not None:
        return _declared_roles(network.model, kernels, declared)
    width = networks.built_width(spec)
    if width is not None:
        return _shape_roles(spec, network, kernels, width)
    return _order_roles(spec, network, kernels)


def _declared_roles(model: str, kernels, declared) -> dict[tuple[str, ...], str]:
    if not isinstance(declared, Mapping) or not all(isinstance(g, str) for g in declared):
        raise InitbenchError(f"--model {model}: initbench_roles must map parameter-path globs "
                             f"to {', '.join(KINDS)}, got {type(declared).__name__}.")
    for glob, kind in declared.items():
        if kind not in KINDS:
            raise InitbenchError(f"--model {model}: initbench_roles['{glob}'] is {kind!r}; "
                                 f"a role is one of {', '.join(KINDS)}.")
    out = {}
    for rule in kernels:
        kind = next((k for g, k in declared.items() if fnmatch.fnmatchcase(rule.name, g)), None)
        if kind is None:
            raise InitbenchError(f"--model {model}: initbench_roles gives no role to "
                                 f"'{rule.name}'; add a glob that matches it "
                                 f"({', '.join(KINDS)}).")
        out[rule.path] = kind
    return out


_FANS_TO_KIND = {(False, True): "input", (True, True): "hidden", (True, False): "output",
                 (False, False): "input"}


def _shape_roles(spec, network, kernels, width: int) -> dict[tuple[str, ...], str]:
    fix = "declare each kernel's role in the module's initbench_roles"
    try:
        wider = networks.resolve(spec.replace(width=2 * width), network.num_classes,
                                 network.image_shape)
        theirs = {rule.path: rule for rule in wider.rules if rule.kind == "kernel"}
    except Exception as err:  # the user's factory at another width
        from initbench import user_code

        raise InitbenchError(f"--param {spec.param}: cannot read --model {spec.model}'s "
                             f"layer roles from its shapes at width {2 * width} "
                             f"({user_code.one_line(err)}); {fix}.") from None
    if set(theirs) != {rule.path for rule in kernels}:
        raise InitbenchError(f"--param {spec.param}: --model {spec.model} draws other "
                             f"weights at width {2 * width} than at {width}; {fix}.")
    out = {}
    for rule in kernels:
        grows = []
        for name, mine, other in (("fan_in", rule.fan_in, theirs[rule.path].fan_in),
                                  ("fan_out", rule.fan_out, theirs[rule.path].fan_out)):
            if other not in (mine, 2 * mine):
                raise InitbenchError(f"--param {spec.param}: '{rule.name}' has {name} {mine} "
                                     f"at width {width} and {other} at {2 * width}, not in "
                                     f"proportion to the width; {fix}.")
            grows.append(other != mine)
        out[rule.path] = _FANS_TO_KIND[tuple(grows)]
    return out


def _order_roles(spec, network, kernels) -> dict[tuple[str, ...], str]:
    layers = network.layers
    fix = ("declare each kernel's role in the module's initbench_roles, or give the factory "
           "a width argument")
    if len(layers) < 2:
        raise InitbenchError(f"--param {spec.param}: cannot tell --model {spec.model}'s input "
                             f"layer from its output layer (one drawn layer); {fix}.")
    last = [rule for rule in kernels if rule.path[:-1] == layers[-1]]
    if any(rule.fan_out != network.num_classes for rule in last):
        raise InitbenchError(f"--param {spec.param}: the last layer --model {spec.model} "
                             f"reaches ('{'/'.join(layers[-1])}') does not return the "
                             f"{network.num_classes} logits, so its output layer is unknown; "
                             f"{fix}.")
    kind_of = {layer: "input" if i == 0 else "output" if i == len(layers) - 1 else "hidden"
               for i, layer in enumerate(layers)}
    return {rule.path: kind_of[rule.path[:-1]] for rule in kernels}


# ---------------------------------------------------------------- the factors


def _network_table(spec, network) -> dict[tuple[str, ...], Scaling]:
    record = parameterizations.get(spec.param)
    m, kinds = parameterizations.width_multiplier(spec), roles(spec, network)
    table = {}
    for rule in network.rules:
        if rule.kind == "kernel":
            table[rule.path] = record.scale(kinds[rule.path], rule.fan_in, m)
        elif rule.kind == "bias":
            kind = kinds[(*rule.path[:-1], "kernel")]
            table[rule.path] = Scaling(parameterizations.bias_factor(spec, record, kind, rule.fan_in, m),
                                       1.0, 1.0)
    return table


def scalings(spec, network) -> dict[tuple[str, ...], Scaling]:
    """{parameter path: Scaling} of every drawn kernel of the resolved `network` and the
    bias beside it (a bias's Scaling holds its stored factor, multiplier and rate 1); other
    parameters: factor 1."""
    return _network_table(spec, network)


def check_network(spec, network) -> None:
    """InitbenchError (one line) when `spec.param` needs layer roles that `network` does not
    tell; nothing for sp. Called before anything is drawn or traced."""
    if spec.param != "sp":
        roles(spec, network)


def _scaled(spec, params, pick: Callable[[Scaling], float], network):
    """`params` (or updates, shaped alike) with each drawn kernel and its bias multiplied
    by pick(its Scaling). Shapes are read from the network's rules, not from the leaves, so
    this works on one cell's tree and on trees with leading cell axes alike. Factors of 1
    are skipped (the leaf is returned as is)."""
    import jax

    table = scalings(spec, network)

    def one(path, leaf):
        s = table.get(tuple(str(getattr(k, "key", k)) for k in path))
        factor = 1.0 if s is None else pick(s)
        return leaf if factor == 1.0 else leaf * factor

    return jax.tree_util.tree_map_with_path(one, params)


def to_stored(spec, params, network):
    """Drawn (SP) parameters as the parameterization stores them (x `init`)."""
    return _scaled(spec, params, lambda s: s.init, network)


def effective(spec, params, network):
    """Stored parameters as the forward pass uses them (kernels x `multiplier`)."""
    return _scaled(spec, params, lambda s: s.multiplier, network)


def wrap_apply(spec, apply_fn: Callable, network) -> Callable:
    """`apply(variables, x, **kw)` that runs `apply_fn` on the effective parameters."""
    check_network(spec, network)  # here, not at trace time

    def apply_effective_fn(variables, x, **kwargs):
        variables = dict(variables)
        variables["params"] = effective(spec, variables["params"], network)
        return apply_fn(variables, x, **kwargs)

    return apply_effective_fn


def scale_rates(spec, network):
    """An optax transformation that multiplies each kernel's update by its `rate`
    (chained after the optimizer: a per-parameter learning rate)."""
    import optax

    check_network(spec, network)

    def update_fn(updates, state, params=None):
        return _scaled(spec, updates, lambda s: s.rate, network), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def card_columns(spec, rows: list[dict], network) -> list[dict]:
    """The card's rows with the parameterization's columns: `multiplier`, `rate` (the
    learning rate of that parameter at the spec's first rate), `init_factor`, and
    `effective_std` (the std the forward pass sees: drawn std x multiplier); a drawn
    parameter's expected std is that of the stored one; `role` (input, hidden, output) on
    each kernel's row."""
    table, lr = scalings(spec, network), spec.lr[0]
    kinds = roles(spec, network)
    out = []
    for row in rows:
        path = tuple(row["path"].split("/"))
        s = table.get(path) or Scaling(1.0, 1.0, 1.0)
        row = dict(row, init_factor=s.init, multiplier=s.multiplier, rate=lr * s.rate,
                   effective_std=row["drawn_std"] * s.multiplier)
        if path in kinds:
            row["role"] = kinds[path]
        if s.init != 1.0:
            row["rule"] = f"{row['rule']}, x {s.init:.4g} ({spec.param})"
        if row.get("expected_std") is not None:
            row["expected_std"] = row["expected_std"] * s.init
        out.append(row)
    return out
