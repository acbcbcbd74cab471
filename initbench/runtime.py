"""Process-wide settings of one command, as a value passed down (no module-level state).

The CLI builds a `Runtime` (command line, cache locations, checkpoint period) and
`jax_setup.start` completes it once JAX runs (main process or not, the device mesh). The
library never reads these from globals or environment variables on its own, and never builds
one: it asks for it. The Python API's entry points (`initbench.compare`, `initbench.rerun`)
build one with `from_environment` when the caller gives none, as the CLI would.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from initbench.paths import user_cache_dir

CELL_CACHE_ENV = "INITBENCH_CACHE"
XLA_CACHE_ENV = "INITBENCH_XLA_CACHE"
DEFAULT_CELL_CACHE = Path("results/.cache")
CHECKPOINT_EVERY_S = 20.0


@dataclass(frozen=True)
class Runtime:
    """Where a command keeps things and how it runs; see `from_environment`."""

    command: tuple[str, ...] = ("initbench",)
    cell_cache: Path = DEFAULT_CELL_CACHE  # finished cells and checkpoints
    xla_cache: Path | None = None          # compiled programs; None: not kept
    checkpoint_every_s: float = CHECKPOINT_EVERY_S
    use_cache: bool = True                 # False: retrain (and ignore checkpoints)
    main: bool = True                      # this process writes results (process 0)
    distributed: bool = False              # joined a jax.distributed run
    mesh: Any = None                       # 1-D "cells" mesh over every device, or None

    def replace(self, **changes) -> Runtime:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_environment(cls, command: list[str] | tuple[str, ...] = ("initbench",),
                         **changes) -> Runtime:
        """Defaults, with cache locations from $INITBENCH_CACHE and $INITBENCH_XLA_CACHE
        ("off" keeps no compiled programs; default ~/.cache/initbench/xla)."""
        where = os.environ.get(CELL_CACHE_ENV)
        if where is not None and not where.strip():
            from initbench.errors import InitbenchError

            raise InitbenchError(f"${CELL_CACHE_ENV} is set but empty; set it to a folder or "
                                 f"unset it (default: {DEFAULT_CELL_CACHE}).")
        cell_cache = Path(where) if where is not None else DEFAULT_CELL_CACHE
        xla = os.environ.get(XLA_CACHE_ENV)
        xla_cache = None if xla == "off" else Path(xla) if xla else user_cache_dir("xla")
        return cls(command=tuple(command), cell_cache=cell_cache, xla_cache=xla_cache,
                   **changes)
