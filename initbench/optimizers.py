"""The optimizers a run can train with: one record per name, read by `spec` without optax.

A record names its optax factory by attribute (`optax.<factory>`) plus fixed keyword
arguments, so validating `--optimizer` and listing the choices import no JAX; only
`factory()` (called by `train.make_optimizer`) imports optax.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Optimizer:
    """`optax.<factory>(learning_rate, **kwargs)`, described in one line."""

    factory: str
    description: str
    kwargs: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def make(self) -> Callable:
        """learning_rate -> optax.GradientTransformation (the optax function itself when
        there are no fixed arguments, so `optax.inject_hyperparams` sees its signature)."""
        import optax

        base = getattr(optax, self.factory)
        if not self.kwargs:
            return base
        kwargs = dict(self.kwargs)
        return lambda learning_rate: base(learning_rate, **kwargs)


OPTIMIZERS: dict[str, Optimizer] = {
    "adam": Optimizer("adam", "Adam"),
    "adamw": Optimizer("adamw", "AdamW"),
    "sgd": Optimizer("sgd", "plain SGD"),
    "momentum": Optimizer("sgd", "SGD with momentum 0.9", MappingProxyType({"momentum": 0.9})),
    "rmsprop": Optimizer("rmsprop", "RMSProp"),
    "nadam": Optimizer("nadam", "NAdam"),
    "adagrad": Optimizer("adagrad", "Adagrad"),
}


def names() -> tuple[str, ...]:
    """Every optimizer name, the default first."""
    return tuple(OPTIMIZERS)
