"""The built-in residual MLP (`--model resmlp`) and the record of its branches and skips.

`--hidden 256x50` is 50 residual blocks of width 256 (every width must be the same: the
skip connection adds a block's input to its output). Pre-activation blocks, as in He et al.
2016 ("Identity mappings in deep residual networks"):

    stem        x = Dense(width)(flat image)                      (no activation)
    block_i     h = dense_1(act(norm_b(dense_0(act(norm_a(x))))))
                x = x + gate · h                                   (gate: a scalar, 1 at the start)
    head        logits = Dense(classes)(act(norm(x)))

`--norm none|layer|batch` (default none): `layer` is flax's LayerNorm; `batch` normalizes
over the batch a call sees (the training minibatch; an evaluation chunk), with a learned
scale and offset and no running averages, so training needs no mutable state.

The record `structure(num_blocks)` says what every parameter is, so rules such as Fixup's
can apply (`initbench.modern_inits`): the stem, each branch's inner and last layer, the
per-branch scalar gate (Fixup's multiplier, SkipInit's and ReZero's alpha), and the head.
Every initializer trains the same network: the gate is a parameter for all of them; only
its starting value differs (1, or 0 for skipinit/rezero).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp

from initbench.errors import InitbenchError

RESMLP_VERSION = "resmlp-v1"  # bump when the network changes (it is in the cache key)
NORMS = ("none", "layer", "batch")


def _activation(name: str):
    from initbench.model import activation_fn

    return activation_fn(name)


class BatchStatsNorm(nn.Module):
    """Batch normalization with the statistics of the batch it is called on (no running
    averages): (x - mean) / sqrt(var + 1e-5) · scale + bias, over every axis but the
    features' (the batch; for images, the batch and the image axes)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
        bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
        axes = tuple(range(x.ndim - 1))  # (0,) for [N, D]: the same program as axis=0
        mean = jnp.mean(x, axis=axes, keepdims=True)
        var = jnp.var(x, axis=axes, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + 1e-5) * scale + bias


def _norm(kind: str, name: str):
    if kind == "layer":
        return nn.LayerNorm(name=name)
    if kind == "batch":
        return BatchStatsNorm(name=name)
    return lambda x: x


class Block(nn.Module):
    """One pre-activation residual block: x + gate · dense_1(act(dense_0(act(x))))."""

    width: int
    activation: str
    norm: str

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = _activation(self.activation)
        h = nn.Dense(self.width, name="dense_0")(act(_norm(self.norm, "norm_0")(x)))
        h = nn.Dense(self.width, name="dense_1")(act(_norm(self.norm, "norm_1")(h)))
        gate = self.param("gate", nn.initializers.ones, ())
        return x + gate.astype(h.dtype) * h


class ResMLP(nn.Module):
    """The residual MLP of `num_blocks` blocks of `width`; images in, logits out."""

    width: int
    num_blocks: int
    num_classes: int
    activation: str = "relu"
    norm: str = "none"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[0], -1)
        x = nn.Dense(self.width, name="stem")(x)
        for i in range(self.num_blocks):
            x = Block(self.width, self.activation, self.norm, name=f"block_{i}")(x)
        x = _activation(self.activation)(_norm(self.norm, "norm_out")(x))
        return nn.Dense(self.num_classes, name="head")(x)

    def structure(self) -> Structure:
        """The record of this network's branches, skips and scalars."""
        return structure(self.num_blocks)


@dataclass(frozen=True)
class Structure:
    """Which parameter is what in a residual network (paths as tuples of names).

    `branches[i]` lists branch i's dense layers (module paths) in order, input to output;
    its last one is the layer Fixup, ZerO and SkipInit-style rules set to zero (or scale).
    `gates[i]` is branch i's scalar multiplier (the parameter's path). `stem` and `head` are
    the layers outside every branch; `num_branches` is L in Fixup's L^(-1/(2m-2)) and
    `branch_layers` its m.
    """

    stem: tuple[str, ...]
    head: tuple[str, ...]
    branches: tuple[tuple[tuple[str, ...], ...], ...]
    gates: tuple[tuple[str, ...], ...]

    @property
    def num_branches(self) -> int:
        return len(self.branches)

    @property
    def branch_layers(self) -> int:
        return len(self.branches[0]) if self.branches else 0

    def role(self, layer: tuple[str, ...]) -> str | None:
        """"stem", "head", "branch_inner", "branch_last" or None for a module path."""
        if layer == self.stem:
            return "stem"
        if layer == self.head:
            return "head"
        for branch in self.branches:
            if layer in branch:
                return "branch_last" if layer == branch[-1] else "branch_inner"
        return None


def structure(num_blocks: int, layers: Sequence[str] = ("dense_0", "dense_1")) -> Structure:
    """The `Structure` of `num_blocks` blocks named block_i, each branch the modules
    `layers` (input to output): a `ResMLP`'s by default, `rescnn.ResCNN`'s with its convs."""
    return Structure(
        stem=("stem",), head=("head",),
        branches=tuple(tuple((f"block_{i}", layer) for layer in layers)
                       for i in range(num_blocks)),
        gates=tuple((f"block_{i}", "gate") for i in range(num_blocks)))


def blocks(hidden: Sequence[int], model: str = "resmlp") -> tuple[int, int]:
    """(width, number of blocks) of `--hidden` for a residual model: 256x50 -> (256, 50).
    InitbenchError when the widths differ (a skip adds a block's input to its output)."""
    widths = set(hidden)
    if len(widths) != 1:
        raise InitbenchError(f"--model {model} needs one width for every block (WIDTHxBLOCKS, "
                             f"e.g. 256x50), got widths {sorted(widths)}.")
    return widths.pop(), len(hidden)


def make(hidden: Sequence[int], activation: str, norm: str, num_classes: int) -> ResMLP:
    """The `ResMLP` of `--hidden`, `--activation` and `--norm`."""
    width, num_blocks = blocks(hidden)
    return ResMLP(width, num_blocks, num_classes, activation, norm)
