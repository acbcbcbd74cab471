"""Process-wide JAX setup, done before JAX creates its devices (its first device query).

Commands that run JAX call `start` first: it asks XLA for deterministic GPU kernels and, on
a CPU, exposes the cores as several host devices that each train their own blocks of cells
(see `initbench.sharding`), joins a multi-process run when asked, turns on the persistent
compilation cache, and returns the completed `Runtime`. Importing this module does not
import JAX.
"""

from __future__ import annotations

import os
import sys

from initbench.errors import InitbenchError
from initbench.runtime import Runtime

HOST_DEVICES_FLAG = "--xla_force_host_platform_device_count"
# GPUs: XLA autotunes its GEMM algorithms per process, and two runs of the same command gave
# different numbers (measured on an H200, 3e-4 in test loss); this pins them. No effect on CPUs.
DETERMINISTIC_GPU_FLAG = "--xla_gpu_deterministic_ops=true"


def backends_started() -> bool:
    """Whether JAX has already created its devices (XLA flags set now would be ignored)."""
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        return xla_bridge.backends_are_initialized()
    except (ImportError, AttributeError):  # a JAX without this internal: assume started
        return True


def requested_host_devices() -> int | None:
    """The host device count already set in XLA_FLAGS (the user's choice), if any."""
    for flag in os.environ.get("XLA_FLAGS", "").split():
        if flag.startswith(HOST_DEVICES_FLAG + "="):
            try:
                return int(flag.split("=", 1)[1])
            except ValueError:
                return None
    return None


def check_num_devices(num_devices: int) -> None:
    """InitbenchError unless `num_devices` (`--devices`) is at least 1; no JAX needed."""
    if num_devices < 1:
        raise InitbenchError(f"--devices must be at least 1, got {num_devices}.")


def configure_xla(num_devices: int = 1) -> bool:
    """Set XLA's flags before JAX starts: deterministic GPU kernels (same command, same
    numbers) and the CPU exposed as `num_devices` host devices. True if the device split
    will take effect.

    XLA_FLAGS already naming either setting wins (the user's choice); nothing changes once
    JAX has created its devices (e.g. a second command in the same process).
    """
    check_num_devices(num_devices)
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



def enable_compilation_cache(where) -> None:
    """Keep compiled XLA programs in `where` (None: keep none), so a repeated run skips
    compilation. Measured on 2 cores: a 2-epoch digits grid took 25 s in a fresh process
    and 3 s with a warm cache."""
    if where is None:
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", str(where))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)


def start(runtime: Runtime, num_devices: int = 1, distributed: bool = False,
          coordinator_address: str | None = None, num_processes: int | None = None,
          process_id: int | None = None) -> Runtime:
    """Set XLA up for `num_devices` host devices, join a cluster if `distributed`, and
    return `runtime` completed with this process's role and the cell mesh."""
    if not distributed and any(v is not None for v in (coordinator_address, num_processes,
                                                        process_id)):
        raise InitbenchError("--coordinator-address, --num-processes and --process-id need "
                             "--distributed.")
    if distributed:  # first: it checks its options (XLA flags apply later, when devices start)
        init_distributed(coordinator_address, num_processes, process_id)
    configure_xla(num_devices)
    enable_compilation_cache(runtime.xla_cache)
    import jax

    from initbench import sharding

    return runtime.replace(main=jax.process_index() == 0, distributed=jax.process_count() > 1,
                           mesh=sharding.cell_mesh())
