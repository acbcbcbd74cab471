"""Process-wide JAX setup, done before JAX creates its devices (its first device query).

Commands that run JAX call `configure_xla` first: it asks for deterministic GPU kernels and,
on a CPU, exposes the cores as several host devices that each train their own blocks of
cells (see `initbench.sharding`). `init_distributed` joins a multi-process run.
Importing this module does not import JAX.
"""

from __future__ import annotations

import math
import os
import sys

from initbench.errors import InitbenchError

HOST_DEVICES_FLAG = "--xla_force_host_platform_device_count"
# GPUs: XLA autotunes its GEMM algorithms per process, and two runs of the same command gave
# different numbers (measured on an H200, 3e-4 in test loss); this pins them. No effect on CPUs.
DETERMINISTIC_GPU_FLAG = "--xla_gpu_deterministic_ops=true"
SPLIT_GAIN_EXPONENT = 0.2  # d host devices ~ d**0.2 x the throughput of one (2 cores: 1.15x)
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

    Every device trains whole blocks of CELLS_PER_BLOCK cells (padding costs as much as
    real cells), and d devices train about d**0.2 times more model-epochs per second than
    one (measured on 2 cores: 1.15x; beyond 2 cores a guess). The count with the least
    estimated time wins, ties going to fewer devices: on 2 cores 1 device for up to 8 cells
    and for 17-24, 2 devices for 9-16 and from 25 on.
    """
    from initbench.sharding import CELLS_PER_BLOCK

    def cost(num_devices: int) -> float:
        blocks_per_device = math.ceil(num_cells / (CELLS_PER_BLOCK * num_devices))
        return blocks_per_device * num_devices / num_devices**SPLIT_GAIN_EXPONENT

    return min(range(1, num_cores() + 1), key=lambda d: (round(cost(d), 6), d))


def requested_host_devices() -> int | None:
    """The host device count already set in XLA_FLAGS (the user's choice), if any."""
    for flag in os.environ.get("XLA_FLAGS", "").split():
        if flag.startswith(HOST_DEVICES_FLAG + "="):
            try:
                return int(flag.split("=", 1)[1])
            except ValueError:
                return None
    return None


def configure_xla(num_devices: int = 1) -> bool:
    """Set XLA's flags before JAX starts: deterministic GPU kernels (same command, same
    numbers) and the CPU exposed as `num_devices` host devices. True if the device split
    will take effect.

    XLA_FLAGS already naming either setting wins (the user's choice); nothing changes once
    JAX has created its devices (e.g. a second command in the same process).
    """
    if num_devices < 1:
        raise InitbenchError(f"--devices must be at least 1, got {num_devices}.")
    if backends_started():
        return False
    if "xla_gpu_deterministic_ops" not in os.environ.get("XLA_FLAGS", ""):
        _add_xla_flag(DETERMINISTIC_GPU_FLAG)
    if requested_host_devices() is not None:
        return False
    if num_devices > 1:
        _add_xla_flag(f"{HOST_DEVICES_FLAG}={num_devices}")
    return True


def _add_xla_flag(flag: str) -> None:
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()


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
    if num_processes is not None and num_processes < 1:
        raise InitbenchError(f"--num-processes must be at least 1, got {num_processes}.")
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
