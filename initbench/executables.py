"""One compiled executable loaded on every host device: compile a program once, run it anywhere.

Every program of a run (init, evaluation, epoch) is a single-device program, run on each
host device for that device's blocks of cells (`initbench.sharding`). XLA:CPU executables
carry their device assignment, and JAX's persistent-cache key includes it on CPUs, so a plain
`jax.jit` compiles each program once per device: the same code, compiled again. `load_on`
instead takes the executable compiled for one device and loads a copy of it, byte for byte
the same machine code, on another (what JAX's own persistent cache does on GPUs, where it
strips the device assignment from its key): no XLA compilation, and bitwise the same numbers
(tests/test_sharding.py). A `shard_map`ped program over the mesh would also compile once, but
the SPMD partitioner it brings in moved a cell by an ulp (BENCHMARKS.md, issue 27).
"""

from __future__ import annotations

import io
import pickle
import threading

# At import, on the main thread (`programs.Program.compile_job`): `load_on` runs in the
# compile threads, and an import there can deadlock with one in the main thread.
import jax
from jax.experimental import serialize_executable

try:  # JAX internals; without them, `load_on` returns None and programs compile per device
    from jax._src import compiler as _compiler
    from jax._src.lib import xla_client as _xla_client
except ImportError:
    _compiler = _xla_client = None


# Persistent-cache hits of the thread that records them (JAX calls its event listeners
# synchronously, in the thread that compiles), so each compile job sees its own.
_this_thread = threading.local()


def _count_cache_hits(event: str, **kwargs) -> None:
    if event == "/jax/compilation_cache/cache_hits":
        _this_thread.hits = getattr(_this_thread, "hits", 0) + 1


jax.monitoring.register_event_listener(_count_cache_hits)


def compile_fresh(lower_fn):
    """(`lower_fn().compile()`, whether XLA compiled it here rather than reading it from the
    persistent cache). Only a freshly compiled executable may be moved by `load_on`: one read
    back from the cache serializes without its kernels, and its copy on another device fails
    when run ("Function wrapped_broadcast not found"), so the caller compiles for that device
    instead (its own cache entry, read back from then on)."""
    before = getattr(_this_thread, "hits", 0)
    compiled = lower_fn().compile()
    return compiled, getattr(_this_thread, "hits", 0) == before


def relocatable(device) -> bool:
    """Whether `load_on` may move an executable to `device`: host (CPU) devices only, where
    every device runs the same machine code; accelerators keep one compilation each."""
    return device is not None and device.platform == "cpu"


def load_on(compiled, device):
    """`compiled` (a single-device `jax.stages.Compiled`) loaded on `device`, as a
    `jax.stages.Compiled` that takes and returns arrays on `device`; nothing is compiled.
    None when this JAX cannot (it relies on `serialize_executable`'s format and on
    `jax._src.compiler.get_compile_options`): the caller then compiles for `device`, and
    tests/test_sharding.py, which counts compilations, says so.

    The executable travels through `jax.experimental.serialize_executable`'s format; on the
    way back it is loaded with `device` as its device assignment (the compile options'
    device assignment is all that differs between two host devices' compilations; CPUs never
    tuple their arguments) and every device the program names becomes `device`.
    """
    if len(compiled.runtime_executable().local_devices()) != 1:
        raise ValueError("only a single-device program can be loaded on another device")
    try:
        payload, in_tree, out_tree = serialize_executable.serialize(compiled)
        options = _compiler.get_compile_options(num_replicas=1, num_partitions=1,
                                                device_assignment=[device])
        unloaded, args_info_flat, no_kwargs = _Unpickler(io.BytesIO(payload), device,
                                                         options).load()
        return jax.stages.Compiled(unloaded.load(), [], in_tree.unflatten(args_info_flat),
                                   out_tree, no_kwargs=no_kwargs)
    except (ImportError, AttributeError, TypeError, ValueError, NotImplementedError,
            RuntimeError, pickle.UnpicklingError):  # another JAX's internals: compile instead
        return None


class _Unpickler(pickle.Unpickler):
    """Reads `serialize_executable.serialize`'s payload back onto one device: its
    persistent ids are ('exec', bytes), ('device', id) and ('client',)."""

    def __init__(self, file, device, options):
        super().__init__(file)
        self.device, self.options = device, options

    def persistent_load(self, pid):
        kind = pid[0]
        if kind == "exec":
            return self.device.client.deserialize_executable(
                pid[1], _xla_client.DeviceList((self.device,)), self.options)
        if kind == "device":
            return self.device
        if kind == "client":
            return self.device.client
        raise pickle.UnpicklingError(f"unknown persistent id {kind!r}")
