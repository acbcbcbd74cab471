"""The built-in residual CNN (`--model rescnn`) and the record of its branches and skips.

The convolutional sibling of `initbench.resmlp`, small enough for a CPU: `--hidden 16x8` is
8 residual blocks of 16 channels (one channel count for every block: the skip adds a
block's input to its output). Pre-activation blocks of two 3x3 convolutions:

    stem        x = Conv(width, 3x3, stride s)(image)              (no activation; s = 2 for
                                                                   images of 16 pixels or more
                                                                   a side, 28x28 -> 14x14; else
                                                                   1, 8x8 stays 8x8)
    block_i     h = conv_1(act(norm_1(conv_0(act(norm_0(x))))))    (3x3, stride 1, SAME)
                x = x + gate · h                                   (gate: a scalar, 1 at the start)
    head        logits = Dense(classes)(flatten(act(norm(x))))

`--norm none|layer|batch` as for resmlp (`batch`: the statistics of the batch seen, over
the batch and both image axes). The head reads the flattened feature map, as the built-in
CNN's does: with a handful of channels, global average pooling threw away where a stroke
is (a 2-block, 8-channel net on digits reached 10 to 51% after 2 epochs under he_normal,
fixup, skipinit, delta_orthogonal and idinit(conv=patch); with the flattened map the first
four reach 91 to 96%: tests/test_rescnn.py); no max pooling either (XLA:CPU's max-pool
gradient under the cell axis is slow, see the built-in CNN).

Its record is `resmlp.Structure`: the stem, each branch's two convolutions (the last one is
what Fixup, ZerO and IDInit set to 0 or ε), the per-branch scalar gate and the head, so every
rule of `initbench.modern_inits` applies to it as to resmlp; delta-orthogonal draws every
3x3 kernel as an orthogonal matrix at its centre.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax

from initbench import resmlp

RESCNN_VERSION = "rescnn-v1"  # bump when the network changes (it is in the cache key)
KERNEL = (3, 3)
STRIDE_FROM = 16  # images at least this many pixels high get a stride-2 stem


class ConvBlock(nn.Module):
    """One pre-activation residual block: x + gate · conv_1(act(conv_0(act(x))))."""

    width: int
    activation: str
    norm: str

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = resmlp._activation(self.activation)
        h = nn.Conv(self.width, KERNEL, padding="SAME", name="conv_0")(
            act(resmlp._norm(self.norm, "norm_0")(x)))
        h = nn.Conv(self.width, KERNEL, padding="SAME", name="conv_1")(
            act(resmlp._norm(self.norm, "norm_1")(h)))
        gate = self.param("gate", nn.initializers.ones, ())
        return x + gate.astype(h.dtype) * h


class ResCNN(nn.Module):
    """The residual CNN of `num_blocks` blocks of `width` channels; images in, logits out."""

    width: int
    num_blocks: int
    num_classes: int
    activation: str = "relu"
    norm: str = "none"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        stride = 2 if x.shape[1] >= STRIDE_FROM else 1
        x = nn.Conv(self.width, KERNEL, strides=stride, padding="SAME", name="stem")(x)
        for i in range(self.num_blocks):
            x = ConvBlock(self.width, self.activation, self.norm, name=f"block_{i}")(x)
        x = resmlp._activation(self.activation)(resmlp._norm(self.norm, "norm_out")(x))
        return nn.Dense(self.num_classes, name="head")(x.reshape(x.shape[0], -1))

    def structure(self) -> resmlp.Structure:
        """The record of this network's branches, skips and scalars."""
        return resmlp.structure(self.num_blocks, layers=("conv_0", "conv_1"))


def make(hidden: Sequence[int], activation: str, norm: str, num_classes: int) -> ResCNN:
    """The `ResCNN` of `--hidden` (CHANNELSxBLOCKS), `--activation` and `--norm`."""
    width, num_blocks = resmlp.blocks(hidden, "rescnn")
    return ResCNN(width, num_blocks, num_classes, activation, norm)
