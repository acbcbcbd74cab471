"""Initializers of the last decade: ZerO, IDInit, delta-orthogonal, Fixup, SkipInit/ReZero,
MetaInit; their registry entries, the rules they apply to a residual network's branches,
and the property each one promises, as the card shows it.

Kernels are [..., in, out] (flax), the transpose of PyTorch's [out, in]. Checked against
the papers and the authors' code:

- `zero`, ZerO (Zhao, Schäfer and Anandkumar 2021, "ZerO initialization: initializing
  neural networks with only zeros and ones"; authors' `example_mnist.ipynb`,
  `ZerO_Init_on_matrix`): with W [out, in], W = eye(out, in) when out <= in, else
  eye(out, p) · H_p / 2^(k/2) · eye(p, in) with k = ceil(log2 out), p = 2^k, H_p the
  Sylvester Hadamard matrix (the paper's Algorithm 1 writes c = 2^(-(k-1)/2); the
  authors' code, followed here, uses 2^(-k/2), which makes H_p/2^(k/2) orthogonal). No
  random key is used: every seed gets the same parameters. In a residual network the last
  layer of every branch is 0 (the paper's residual variant), so each block starts as the
  identity. A convolution kernel gets the matrix at its window's centre.
- `idinit`, IDInit (Pan et al. 2025, "IDInit: a universal and stable initialization method
  for neural network training", §3): τ·I' with I'[i, j] = 1 where i ≡ j (mod min(in, out)):
  the identity repeated along the longer side (the paper's padded identity-like matrix),
  τ = 1. The last layer of a residual branch gets IDIZ_ε: ε·I' with ε = 1e-6. A
  convolution kernel [k, k, in, out]: `idinit` (conv=channel) puts τ·I' [in, out] at the
  window's centre (the paper's "channel-maintain" setting, §3.3.1, as delta-orthogonal
  places its Q); `idinit(conv=patch)` is the paper's patch-maintain convolution: τ·I' of
  the kernel reshaped to the matrix [in·k², out] (PyTorch's [out, in·k²], as OpenReview's
  reviewers of the paper describe it), the rows in PyTorch's order of flattening (in, kh,
  kw): the paper gives the shape, the order is ours, as the authors work in PyTorch. Each
  output channel then sums inputs of several channels at several offsets.
- `delta_orthogonal` (Xiao et al. 2018, "Dynamical isometry and a mean field theory of
  CNNs: how to train 10,000-layer vanilla convolutional neural networks", Algorithm 2; as
  `jax.nn.initializers.delta_orthogonal` and TensorFlow's `ConvolutionDeltaOrthogonal`):
  every entry of a conv kernel zero except the window's centre ((k-1)//2 along each
  window axis), which is gain·Q, Q [in, out] semi-orthogonal. A dense kernel is gain·Q
  (it is its own centre). `delta` stays what it always was, an alias of `identity`
  (the Dirac kernel, torch.nn.init.dirac_), not this.
- `fixup` (Zhang, Dauphin and Ma 2019, "Fixup initialization: residual learning without
  normalization", §3 rules 1-3; authors' `cifar/models/fixup_resnet_cifar.py`): every
  kernel N(0, 2/fan_out) (the authors' code: std sqrt(2/(out·k·k))); a branch's layers
  before its last scaled by L^(-1/(2m-2)) (L branches of m layers; m = 2 here: L^(-1/2));
  each branch's last layer 0; the classification layer (kernel and bias) 0; the scalar
  multiplier (the gate) 1. The dense layers' own biases (--bias-init, default 0) stand in
  for Fixup's scalar biases.
- `skipinit` (De and Smith 2020, "Batch normalization biases residual blocks towards the
  identity function in deep networks") and its alias `rezero` (Bachlechner et al. 2020,
  "ReZero is all you need"): x + α·F(x) with α = 0 at the start; the kernels as he_normal.
  The two papers place the same scalar at the same place and start it at 0.
- `metainit`, MetaInit (Dauphin and Schoenholz 2019, "MetaInit: initializing learning by
  learning to initialize"; the paper's Algorithm 1 and its PyTorch listing): from the
  he_normal draw, the norm of every kernel is learned by sign-SGD with momentum (lr 0.1,
  momentum 0.9) to minimize the gradient quotient GQ = mean |(g - Hg)/g - 1| on a batch
  (`initbench.metainit`); the norms of the step with the lowest GQ are kept. The paper
  draws x ~ N(0, 1) and random labels; here the batch is
  the first training examples (fixed, as LSUV's), so the method is data-dependent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from jax.nn.initializers import Initializer

CITATIONS = {
    "zero": "Zhao, Schäfer & Anandkumar 2021 (ZerO)",
    "idinit": "Pan et al. 2025 (IDInit, ICLR)",
    "delta_orthogonal": "Xiao et al. 2018 (delta-orthogonal, ICML)",
    "fixup": "Zhang, Dauphin & Ma 2019 (Fixup, ICLR)",
    "skipinit": "De & Smith 2020 (SkipInit); Bachlechner et al. 2020 (ReZero)",
    "metainit": "Dauphin & Schoenholz 2019 (MetaInit, NeurIPS)",
    "glorot_uniform": "Glorot & Bengio 2010", "glorot_normal": "Glorot & Bengio 2010",
    "he_uniform": "He et al. 2015", "he_normal": "He et al. 2015",
    "lecun_uniform": "LeCun et al. 1998", "lecun_normal": "LeCun et al. 1998",
    "orthogonal": "Saxe, McClelland & Ganguli 2014", "lsuv": "Mishkin & Matas 2016 (LSUV)",
    "torch_default": "PyTorch nn.Linear", "identity": "Dirac/identity (torch.nn.init.dirac_)",
}
IDINIT_EPSILON = 1e-6  # IDIZ_ε of a branch's last layer (the paper's ε)
NEEDS_BRANCHES = ("fixup", "skipinit")  # meaningless without residual branches
DETERMINISTIC = ("zero", "idinit")  # no random key is used: every seed draws the same
IDINIT_CONV = ("channel", "patch")  # idinit(conv=...): I' at a conv window's centre, or reshaped


# ---------------------------------------------------------------- matrices (NumPy, exact)


def zero_matrix(fan_in: int, fan_out: int) -> np.ndarray:
    """ZerO's [fan_in, fan_out] kernel (float64): the transpose of the authors'
    `ZerO_Init_on_matrix` of W [out, in]."""
    import numpy as np

    if fan_out <= fan_in:
        return np.eye(fan_out, fan_in).T
    from scipy.linalg import hadamard

    k = math.ceil(math.log2(fan_out))
    p = 2 ** k
    w = np.eye(fan_out, p) @ (hadamard(p).astype(np.float64) / 2 ** (k / 2)) @ np.eye(p, fan_in)
    return w.T


def identity_like(fan_in: int, fan_out: int) -> np.ndarray:
    """IDInit's padded identity-like I' [fan_in, fan_out]: 1 where i ≡ j (mod min(in, out))."""
    import numpy as np

    rows = np.arange(fan_in)[:, None] % min(fan_in, fan_out)
    cols = np.arange(fan_out)[None, :] % min(fan_in, fan_out)
    return (rows == cols).astype(np.float64)


def _at_centre(matrix: np.ndarray, shape) -> np.ndarray:
    """A kernel of `shape` [*window, in, out]: `matrix` at the window's centre, 0 elsewhere."""
    import numpy as np

    if len(shape) == 2:
        return matrix
    kernel = np.zeros(shape)
    kernel[tuple((k - 1) // 2 for k in shape[:-2])] = matrix
    return kernel


def _constant_init(build: Callable[[int, int], np.ndarray]) -> Initializer:
    """An initializer that ignores its key: `build(in, out)` at the centre of any kernel."""
    import jax.numpy as jnp
    import numpy as np

    def init_fn(key, shape, dtype=None):
        dtype = jnp.result_type(float) if dtype is None else dtype
        values = _at_centre(build(shape[-2], shape[-1]), tuple(shape))
        return jnp.asarray(values.astype(np.float32)).astype(dtype)

    return init_fn


# ---------------------------------------------------------------- kernel builders


def make_zero() -> Initializer:
    """ZerO (`zero_matrix`), no key used."""
    return _constant_init(zero_matrix)


def idinit_kernel(shape, tau: float, conv: str = "channel") -> np.ndarray:
    """IDInit's kernel of `shape` [*window, in, out] (float64): τ·I' at the window's centre
    (conv="channel"; a dense kernel is τ·I'), or τ·I' of [in·prod(window), out] with rows
    in PyTorch's flattening order (in, *window), moved to flax's layout (conv="patch")."""
    import numpy as np

    shape = tuple(shape)
    if len(shape) == 2 or conv == "channel":
        return _at_centre(tau * identity_like(shape[-2], shape[-1]), shape)
    window, (fan_in, fan_out) = shape[:-2], shape[-2:]
    matrix = tau * identity_like(fan_in * math.prod(window), fan_out)
    kernel = matrix.reshape(fan_in, *window, fan_out)  # [in, *window, out]
    return np.moveaxis(kernel, 0, -2)  # [*window, in, out]


def make_idinit(tau: float, conv: str = "channel") -> Initializer:
    """IDInit (`idinit_kernel`), no key used."""
    import jax.numpy as jnp
    import numpy as np

    def init_fn(key, shape, dtype=None):
        dtype = jnp.result_type(float) if dtype is None else dtype
        values = idinit_kernel(shape, tau, conv)
        return jnp.asarray(values.astype(np.float32)).astype(dtype)

    return init_fn


def make_delta_orthogonal(gain: float) -> Initializer:
    """gain·Q at the window's centre ((k-1)//2 per window axis), zeros elsewhere; a dense
    kernel is gain·Q. Any in/out (jax's own refuses in > out; Q is then QQᵀ = I)."""
    import jax.numpy as jnp
    from jax.nn import initializers

    orthogonal = initializers.orthogonal(gain)

    def init_fn(key, shape, dtype=None):
        dtype = jnp.result_type(float) if dtype is None else dtype
        matrix = orthogonal(key, tuple(shape[-2:]), jnp.float32)
        if len(shape) == 2:
            return matrix.astype(dtype)
        centre = tuple((k - 1) // 2 for k in shape[:-2])
        return jnp.zeros(shape, jnp.float32).at[centre].set(matrix).astype(dtype)

    return init_fn


def make_fixup() -> Initializer:
    """N(0, 2/fan_out), the authors' draw; the branch rules come after (`apply_branch_rules`)."""
    from jax.nn import initializers

    return initializers.variance_scaling(2.0, "fan_out", "normal")


def make_he_normal() -> Initializer:
    """he_normal (TN(sqrt(2/fan_in))): SkipInit's and MetaInit's start."""
    from jax.nn import initializers

    return initializers.variance_scaling(2.0, "fan_in", "truncated_normal")


def zero_std(fan_in: int, fan_out: int) -> float:
    """The std over the entries of ZerO's kernel (exact: it is one matrix)."""
    return float(zero_matrix(fan_in, fan_out).std())


def idinit_std(fan_in: int, fan_out: int, tau: float, conv: str = "channel") -> float:
    """Std of τ·I': max(in, out) entries are τ, p = 1/min(in, out) of them, std = τ·sqrt(p - p²)."""
    p = 1.0 / min(fan_in, fan_out)
    return tau * math.sqrt(p - p * p)


def check_conv(param: str, value: Any) -> str:
    """idinit's `conv` if it is one of IDINIT_CONV, else the did-you-mean error."""
    from initbench.errors import unknown_name

    if value not in IDINIT_CONV:
        raise unknown_name(param, str(value), IDINIT_CONV)
    return value


def register(entry: Callable[..., Any], kernels: dict, aliases: dict,
             orthogonal_std: Callable[..., float], checks: dict) -> None:
    """Add this module's initializers to the registry (`initializers._KERNELS`, built by
    `entry`, its record type), their aliases and the checks of their own parameters."""
    he_std = lambda fi, fo: math.sqrt(2.0 / fi)  # noqa: E731
    kernels.update({
        "zero": entry("ZerO: eye(fan_in, fan_out) if fan_out <= fan_in, else partial "
                      "Hadamard H/sqrt(p); deterministic; a branch's last layer 0",
                      make_zero, zero_std),
        "idinit": entry("IDInit: τ·I', I'[i,j] = 1 where i ≡ j mod min(fan_in, fan_out); a "
                        "branch's last layer 1e-6·I'; a conv kernel: I' at its centre "
                        "(conv=channel) or reshaped from [in·k², out] (conv=patch)",
                        make_idinit, idinit_std, {"tau": 1.0, "conv": "channel"}),
        "delta_orthogonal": entry("gain·Q at the window's centre, zeros elsewhere (dense: "
                                  "gain·Q)", make_delta_orthogonal, orthogonal_std,
                                  {"gain": 1.0}),
        "fixup": entry("N(0, 2/fan_out); branch layers ·L^(-1/(2m-2)), each branch's last "
                       "layer and the head 0, gates 1", make_fixup,
                       lambda fi, fo: math.sqrt(2.0 / fo)),
        "skipinit": entry("he_normal; every branch's scalar gate 0 (x + 0·F(x))",
                          make_he_normal, he_std),
        "metainit": entry("he_normal, then each kernel's norm learned on data to minimize "
                          "the gradient quotient", make_he_normal, he_std,
                          after_draw="initbench.metainit:after_draw"),
    })
    aliases.update({"rezero": "skipinit"})
    checks.update({"conv": check_conv})


# ---------------------------------------------------------------- branch rules


def apply_branch_rules(init: str, structure, flat: dict) -> dict:
    """`flat` ({path: array} of one cell) after `init`'s rules for a residual network's
    `structure` (`initbench.resmlp.Structure`); initializers without rules pass unchanged.

    fixup: inner branch kernels · L^(-1/(2m-2)), last branch kernels 0, head kernel and
    bias 0. skipinit: gates 0. zero: last branch kernels 0. idinit: last branch kernels
    · IDINIT_EPSILON.
    """
    import jax.numpy as jnp

    if structure is None:
        return flat
    out = dict(flat)
    lasts = [branch[-1] for branch in structure.branches]
    if init == "fixup":
        factor = fixup_factor(structure)
        for branch in structure.branches:
            for layer in branch[:-1]:
                kernel = out[(*layer, "kernel")]
                out[(*layer, "kernel")] = (kernel.astype(jnp.float32) * factor).astype(kernel.dtype)
        for path in [(*layer, "kernel") for layer in lasts] + [(*structure.head, "kernel"),
                                                                (*structure.head, "bias")]:
            if path in out:
                out[path] = jnp.zeros_like(out[path])
    elif init == "skipinit":
        for gate in structure.gates:
            out[gate] = jnp.zeros_like(out[gate])
    elif init == "zero":
        for layer in lasts:
            out[(*layer, "kernel")] = jnp.zeros_like(out[(*layer, "kernel")])
    elif init == "idinit":
        for layer in lasts:
            kernel = out[(*layer, "kernel")]
            out[(*layer, "kernel")] = (kernel.astype(jnp.float32)
                                       * IDINIT_EPSILON).astype(kernel.dtype)
    return out


def fixup_factor(structure) -> float:
    """Fixup's L^(-1/(2m-2)) for L branches of m layers."""
    m = structure.branch_layers
    return structure.num_branches ** (-1.0 / (2 * m - 2))


def card_rule(init: str, structure, path: tuple[str, ...], kind: str,
              expected: float | None) -> tuple | None:
    """(rule, expected std, short rule, legend) of parameter `path` of a residual network
    under `init`'s branch rules, or None where the generic row stands. The short rule is the
    card column's text: the legend's key and this layer's factor on it ("kernel ·0.5",
    "kernel ·0" for a zeroed one); the legend
    is (key, formula), said once under the card, or None where the generic one stands."""
    if structure is None:
        return None
    if path in structure.gates:
        start = 0 if init == "skipinit" else 1
        return (f"branch gate (scalar multiplier): starts at {start}", 0.0, f"gate: {start}",
                ("gate", "a branch's scalar multiplier: the block is x + gate·F(x)"))
    role = structure.role(path[:-1])
    if kind == "bias" and init == "fixup" and role == "head":
        return "fixup: the head's bias 0", 0.0, "bias ·0", None
    if kind != "kernel":
        return None
    if init == "fixup" and role == "branch_inner":
        factor = fixup_factor(structure)
        return (f"fixup: N(0, 2/fan_out)·L^(-1/(2m-2)), L={structure.num_branches}, "
                f"m={structure.branch_layers}: ·{factor:.4g}", expected * factor,
                f"kernel ·{factor:.4g}", None)
    if (init in ("fixup", "zero") and role == "branch_last") or (init == "fixup" and role == "head"):
        return (f"{init}: 0 ({'the head' if role == 'head' else 'a branch’s last layer'})", 0.0,
                "kernel ·0", None)
    if init == "idinit" and role == "branch_last":
        return (f"idinit: IDIZ_ε = {IDINIT_EPSILON:g}·I' (a branch's last layer)",
                expected * IDINIT_EPSILON, f"kernel ·{IDINIT_EPSILON:g}", None)
    return None


def card_note(init: str, structure) -> str:
    """What the card adds to `init`'s formula for this `structure`: fixup's L and m and
    the factor they give ("" for any other initializer or a network without branches)."""
    if init != "fixup" or structure is None:
        return ""
    return (f"; here L={structure.num_branches}, m={structure.branch_layers}: "
            f"·{fixup_factor(structure):.4g}")


# ---------------------------------------------------------------- the property each promises


def properties(init: str, params: dict, other_seed: dict | None, structure=None,
               record: Any = None) -> list[str]:
    """The defining property of `init`, checked on one cell's drawn `params` (nested dict,
    unstacked), as lines for the card. `other_seed`: the same cell at another seed (for the
    deterministic initializers); `record`: the after-draw record (MetaInit's [steps,
    GQ before, GQ after])."""
    import numpy as np

    flat = {path: np.asarray(v, np.float64) for path, v in _flatten(params)}
    lines = []
    if init == "fixup" and structure is not None:
        factor = fixup_factor(structure)
        ratios = [float(flat[(*layer, "kernel")].std()
                        / (math.sqrt(2.0 / _fan_out(flat[(*layer, "kernel")].shape)) * factor))
                  for branch in structure.branches for layer in branch[:-1]]
        zeros = all(not flat[(*branch[-1], "kernel")].any() for branch in structure.branches)
        lines.append(f"fixup: branch-layer std / (sqrt(2/fan_out)·L^(-1/2)) in "
                     f"[{min(ratios):.4f}, {max(ratios):.4f}] over {len(ratios)} layers; "
                     f"every branch's last layer and the head zero: "
                     f"{'yes' if zeros and not flat[(*structure.head, 'kernel')].any() else 'no'}")
    if init == "skipinit" and structure is not None:
        gates = [float(flat[g]) for g in structure.gates]
        lines.append(f"skipinit: {sum(g == 0 for g in gates)} of {len(gates)} branch gates "
                     "start at 0 (every block is the identity)")
    if init in DETERMINISTIC and other_seed is not None:
        other = {path: np.asarray(v, np.float64) for path, v in _flatten(other_seed)}
        same = all(np.array_equal(flat[p], other[p]) for p in flat)
        lines.append(f"{init}: deterministic: every parameter bitwise equal to another seed's "
                     f"draw: {'yes' if same else 'no'} (weight-seed variance exactly 0)")
    if init == "delta_orthogonal":
        worst_off, worst_orth, count = 0.0, 0.0, 0
        for path, values in flat.items():
            if path[-1] != "kernel" or values.ndim < 3:
                continue
            centre = tuple((k - 1) // 2 for k in values.shape[:-2])
            mask = np.ones(values.shape[:-2], bool)
            mask[centre] = False
            worst_off = max(worst_off, float(np.abs(values[mask]).max(initial=0.0)))
            q = values[centre]
            gram = q.T @ q if q.shape[0] >= q.shape[1] else q @ q.T
            scale = gram.trace() / len(gram)
            worst_orth = max(worst_orth, float(np.abs(gram / scale - np.eye(len(gram))).max()))
            count += 1
        if count:
            lines.append(f"delta_orthogonal: {count} conv kernels; largest off-centre |w| "
                         f"{worst_off:.3g}; centre orthogonal, max |QᵀQ/g² - I| {worst_orth:.2g}")
        else:
            lines.append("delta_orthogonal: no conv kernel here; dense kernels are gain·Q")
    if init == "metainit" and record is not None:
        steps, before, after, kept = (float(v) for v in np.ravel(record)[:4])
        lines.append(f"metainit: gradient quotient {before:.4g} -> {after:.4g} (the norms "
                     f"of step {int(kept)} of {int(steps)}, the lowest)")
    return lines


def _fan_out(shape) -> int:
    """out x receptive field of a kernel [..., in, out] (a conv's fan_out counts its window)."""
    return shape[-1] * math.prod(shape[:-2])


def _flatten(tree, prefix: tuple[str, ...] = ()):
    """(path, leaf) of a nested dict of parameters."""
    for name, value in tree.items():
        if hasattr(value, "items"):
            yield from _flatten(value, (*prefix, name))
        else:
            yield (*prefix, name), value
