"""Process-wide JAX setup, done before JAX creates its devices (its first device query).

Commands that train call `split_host` first: on a CPU, XLA then exposes the cores as
several host devices and each trains its own block of cells (see `initbench.sharding`);
on a GPU or TPU the flag changes nothing. `init_distributed` joins a multi-process run.
Importing this module does not import JAX.
"""

from __future__ import annotations

import os
import sys

from initbench.errors import InitbenchError

HOST_DEVICES_FLAG = "--xla_force_host_platform_device_count"
_state = {"distributed": False}


def backends_started() -> bool:
    """Whether JAX has already created its devices (XLA flags set now would be ignored)."""
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        return xla_bridge.backends_are_initialized()
    except (ImportError, AttributeError):  # a JAX without this internal: assume started
        return True


def num_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def host_devices_for(num_cells: int) -> int:
    """Host devices worth splitting the CPU into for a grid of `num_cells` cells.

    One per core, but no more than keeps a whole block of real cells on each device: every
    device trains whole blocks of CELLS_PER_BLOCK cells, and padding costs as much as real
    cells.
    """
    from initbench.sharding import CELLS_PER_BLOCK

    return max(1, min(num_cores(), num_cells // CELLS_PER_BLOCK))


def requested_host_devices() -> int | None:
    """The host device count already set in XLA_FLAGS (the user's choice), if any."""
    for flag in os.environ.get("XLA_FLAGS", "").split():
        if flag.startswith(HOST_DEVICES_FLAG + "="):
            try:
                return int(flag.split("=", 1)[1])
            except ValueError:
                return None
    return None


def split_host(num_devices: int) -> bool:
    """Expose the CPU as `num_devices` XLA host devices; True if that will take effect.

    Does nothing when XLA_FLAGS already sets a count (the user's choice wins) or when JAX
    has already created its devices (e.g. a second command in the same process).
    """
    if num_devices < 1:
        raise InitbenchError(f"--devices must be at least 1, got {num_devices}.")
    if requested_host_devices() is not None or backends_started():
        return False
    if num_devices > 1:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} {HOST_DEVICES_FLAG}={num_devices}".strip()
    return True


def init_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                     process_id: int | None = None) -> None:
    """Join a multi-process run with `jax.distributed.initialize`.

    With no arguments JAX reads the cluster environment (SLURM, Open MPI, Kubernetes, ...);
    otherwise all three must be given. Every process then trains its devices' share of the
    grid and process 0 writes the results.
    """
    given = [v is not None for v in (coordinator_address, num_processes, process_id)]
    if any(given) and not all(given):
        raise InitbenchError(
            "--distributed: give all of --coordinator-address, --num-processes and --process-id, "
            "or none of them (then the cluster environment, e.g. SLURM, is used)."
        )
    if num_processes is not None and not 0 <= process_id < num_processes:
        raise InitbenchError(
            f"--process-id must be in 0..{num_processes - 1}, got {process_id}."
        )
    if backends_started():
        raise InitbenchError("--distributed must be set up before JAX starts (one run per process).")
    import jax

    try:
        jax.distributed.initialize(coordinator_address=coordinator_address,
                                   num_processes=num_processes, process_id=process_id)
    except (ValueError, RuntimeError) as err:
        lines = str(err).strip().splitlines()
        raise InitbenchError(
            f"--distributed: could not join the cluster ({lines[0] if lines else type(err).__name__}); "
            "run inside a SLURM job step (srun), or pass --coordinator-address HOST:PORT, "
            "--num-processes and --process-id."
        ) from None
    _state["distributed"] = True


def is_distributed() -> bool:
    """Whether this process joined a multi-process run (`init_distributed`)."""
    return _state["distributed"]
