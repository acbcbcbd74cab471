"""Grid sharding: padding, memory plan, and the same numbers on 1, 2 or 4 devices or processes.

Device counts are fixed when JAX starts, so those checks run fresh processes with
--xla_force_host_platform_device_count.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from initbench import data, plan, sharding
from initbench.errors import InitbenchError
from initbench.runtime import Runtime
from initbench.spec import Spec

ROOT = Path(__file__).resolve().parents[1]
COMPARE = ["compare", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "--seeds", "2",
           "--inits", "xavier,he_normal", "--quiet", "--no-cache"]


def _env(cache: Path, devices: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["INITBENCH_CACHE"] = str(cache)
    return env


def _compare_in_subprocess(devices: int, out: Path, xla_cache: str = "off",
                           count_compiles: bool = True) -> None:
    """`initbench compare` through typer's CliRunner, in a process with `devices` devices
    and no persistent XLA cache (or `xla_cache`, with the program cache in it). Also
    checks that the runner's programs (init, evaluation, epoch) were each compiled once,
    however many host devices run them, all ahead of their first call, in the compile
    threads (a device waits for its program); not with `count_compiles` False (a read from a
    warm persistent cache is a compile event too)."""
    code = (
        "import sys, threading, jax\n"
        "from typer.testing import CliRunner\n"
        "from initbench.cli import app\n"
        f"assert len(jax.devices()) == {devices}, jax.devices()\n"
        "threads = []\n"
        "def listen(event, seconds, **kw):\n"
        "    if (event.endswith('backend_compile_duration') and 'initbench_' in kw['fun_name']\n"
        "            and 'initbench_draw' not in kw['fun_name']):  # the draw: main thread, once\n"
        "        threads.append((kw['fun_name'], threading.current_thread().name))\n"
        "jax.monitoring.register_event_duration_secs_listener(listen)\n"
        f"result = CliRunner().invoke(app, {[*COMPARE, '--out', str(out)]!r})\n"
        "assert result.exit_code == 0, result.output\n"
        "names = sorted(f.split('initbench_')[1].rstrip(')') for f, t in threads)\n"
        + ("assert names == ['epoch', 'eval', 'init'], threads\n"
           "assert all(t.startswith('initbench-compile') for f, t in threads), threads\n"
           if count_compiles else "")
    )
    env = {**_env(out.parent / "cache", devices), "INITBENCH_XLA_CACHE": xla_cache}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture(scope="module")
def one_device_run(tmp_path_factory) -> Path:
    """The folder of COMPARE run on one device."""
    out = tmp_path_factory.mktemp("one") / "run"
    _compare_in_subprocess(1, out)
    return out


def test_compare_on_4_devices_writes_the_same_csv_as_on_1(tmp_path, one_device_run):
    four = tmp_path / "four"
    _compare_in_subprocess(4, four)
    assert (four / "curves.csv").read_bytes() == (one_device_run / "curves.csv").read_bytes()
    assert (four / "summary.csv").read_bytes() == (one_device_run / "summary.csv").read_bytes()


def test_kept_programs_on_2_devices_write_the_same_csv_as_on_1(tmp_path, one_device_run):
    """The program cache's exported programs, compiled once and loaded on both devices; run
    again with the persistent cache warm, and a third time, the same bits. (An executable
    read back from the cache cannot be moved to another device: its copy failed when run,
    "Function wrapped_broadcast not found", so the second run compiles device 1's own once
    and the third compiles nothing.)"""
    xla = tmp_path / "xla"
    entries = []
    for run in ("cold", "warm", "warmer"):
        _compare_in_subprocess(2, tmp_path / run, xla_cache=str(xla),
                               count_compiles=run == "cold")
        assert ((tmp_path / run / "curves.csv").read_bytes()
                == (one_device_run / "curves.csv").read_bytes()), run
        entries.append({p.name for p in xla.iterdir() if p.is_file()})
    assert len(entries[1] - entries[0]) == 3  # device 1's init, evaluation, epoch: once
    assert entries[2] == entries[1]  # from then on, every program is read back


def test_a_cell_is_the_same_in_any_grid():
    """The cell (he_normal, 1) of the 784-256-256 net alone and among 20 cells, bitwise.

    The full check (grids 1, 2, 6, 20 on 1, 2 and 4 devices, digits and 784-256-256) is
    bench/check_independence.py; BENCHMARKS.md records its result.
    """
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import check_independence as check
    finally:
        sys.path.remove(str(ROOT / "bench"))
    from initbench import progress
    from initbench.runner import Runner

    dataset, hidden = check.load_net("mnist")
    spec = Spec(inits=("he_normal",), seeds=(1,), dataset=dataset.name, epochs=1, hidden=hidden)
    curves = []
    for size in (1, 20):
        cells = check.grid_cells(size)
        runner = Runner(spec, dataset, Runtime(use_cache=False))
        outs = runner.train(cells, progress.SilentReporter())
        curves.append(outs[cells.index(check.TARGET)])
    for name in curves[0]:
        np.testing.assert_array_equal(curves[0][name], curves[1][name])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def test_two_processes_train_together_and_only_process_0_writes(tmp_path, one_device_run):
    """--distributed with a localhost coordinator: the CSV equals a single-process run."""
    port = _free_port()
    args = [sys.executable, "-m", "initbench", *COMPARE, "--distributed",
            "--coordinator-address", f"localhost:{port}", "--num-processes", "2"]
    env = _env(tmp_path / "cache", 1)
    procs = [subprocess.Popen([*args, "--process-id", str(rank), "--out", str(tmp_path / f"out{rank}")],
                              env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for rank in (0, 1)]
    try:
        outputs = [proc.communicate(timeout=240) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-2000:]
    assert not (tmp_path / "out1").exists()  # process 1 writes nothing
    assert ((tmp_path / "out0" / "curves.csv").read_bytes()
            == (one_device_run / "curves.csv").read_bytes())


def test_distributed_options_are_checked_before_jax_starts(tmp_path):
    from typer.testing import CliRunner

    from initbench.cli import app

    result = CliRunner().invoke(app, [*COMPARE, "--process-id", "0", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "need --distributed" in result.output
    result = CliRunner().invoke(app, [*COMPARE, "--distributed", "--num-processes", "2",
                                      "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "--coordinator-address" in result.output
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(("num_cells", "num_devices", "expected"),
                         [(1, 1, 8), (8, 1, 8), (9, 1, 16), (20, 1, 24), (1, 2, 16), (20, 2, 32),
                          (20, 4, 32), (33, 4, 64)])
def test_cells_are_padded_to_whole_blocks_per_device(num_cells, num_devices, expected,
                                                     monkeypatch):
    monkeypatch.setattr(sharding, "cells_per_block", lambda: 8)  # accelerators pad too

    class FakeMesh:
        class devices:  # mimics Mesh.devices.size
            size = num_devices

    cells = [("xavier", seed) for seed in range(num_cells)]
    padded = sharding.pad_cells(cells, FakeMesh() if num_devices > 1 else None)
    assert len(padded) == expected
    assert padded[:num_cells] == cells
    assert set(padded[num_cells:]) <= {cells[-1]}


def test_cpu_blocks_are_one_cell_so_a_grid_never_pads():
    assert plan.cells_per_block("cpu") == 1 and plan.cells_per_block("gpu") == 128

    class FakeMesh:
        class devices:
            size = 2

    cells = [("xavier", seed) for seed in range(20)]
    assert sharding.pad_cells(cells, None) == cells
    assert sharding.pad_cells(cells, FakeMesh()) == cells
    assert len(sharding.pad_cells(cells[:3], FakeMesh())) == 4  # one per device, whole


def test_blocks_run_in_order_and_gather_back(monkeypatch):
    monkeypatch.setattr(sharding, "cells_per_block", lambda: 8)
    calls = []

    def fn(tree, scale):
        calls.append(tree["x"].shape)
        return {"y": tree["x"] * scale}

    cells = list(range(10))
    padded = sharding.pad_cells(cells, None)  # 10 cells -> two blocks of 8
    x = np.asarray(padded, np.float32)[:, None] * np.ones((1, 2), np.float32)
    out = sharding.blockwise({None: fn}, None)(sharding.to_blocks({"x": x}, None), 2.0)
    np.testing.assert_array_equal(sharding.gather(out, len(cells))["y"], x[:10] * 2)
    assert calls == [(8, 2), (8, 2)]
    with pytest.raises(ValueError, match="whole blocks"):
        sharding.to_blocks({"x": x[:10]}, None)


def test_bytes_per_cell_counts_parameters_and_activations():
    spec = Spec(inits=("xavier",), seeds=(0,), hidden=(4,), batch_size=2)
    num_params = 3 * 4 + 4 + 4 * 2 + 2  # 3 -> 4 -> 2
    batch_acts = 2 * (3 + 3 * (4 + 2))
    eval_acts = 1000 * 2 * 4
    assert plan.bytes_per_cell(spec, 3, 2) == 4 * (10 * num_params + batch_acts + eval_acts)


def test_chunks_shrink_to_fit_memory(monkeypatch):
    monkeypatch.setattr(plan, "CELLS_PER_BLOCK", 8)  # whole blocks, however big a block is
    digits = data.Dataset("tiny", np.zeros((100, 64), np.float32), np.zeros(100, np.int32),
                          np.zeros((20, 64), np.float32), np.zeros(20, np.int32), 10, (8, 8, 1), "test")
    spec = Spec(inits=("xavier",), seeds=(0,), hidden=(256, 256))
    per_cell = plan.bytes_per_cell(spec, 64, 10)
    free = (plan.data_bytes(digits) + 20 * per_cell) / plan.MEMORY_FRACTION
    monkeypatch.setattr(sharding, "free_bytes", lambda device: free)
    assert sharding.cells_per_chunk(spec, digits, 128) == 16  # 20 fit: whole blocks of 8
    one_block = plan.data_bytes(digits) + 8 * per_cell
    monkeypatch.setattr(sharding, "free_bytes", lambda device: one_block * 1.5)
    assert sharding.cells_per_chunk(spec, digits, 128) == 8  # never below one block
    monkeypatch.setattr(sharding, "free_bytes", lambda device: one_block * 0.9)
    with pytest.raises(InitbenchError, match="does not fit"):  # not even one block: refused
        sharding.cells_per_chunk(spec, digits, 128)
    monkeypatch.setattr(sharding, "free_bytes", lambda device: 10**15)
    assert sharding.cells_per_chunk(spec, digits, 128) == 128
    monkeypatch.setattr(sharding, "free_bytes", lambda device: None)
    assert sharding.cells_per_chunk(spec, digits, 40) == 40


def test_host_devices_split_only_when_padding_does_not_eat_the_gain(monkeypatch):
    chosen = {n: plan.host_devices_for(n, cores=2) for n in (1, 2, 3, 5, 7, 20, 25, 100)}
    assert chosen == {1: 1, 2: 2, 3: 1, 5: 1, 7: 2, 20: 2, 25: 2, 100: 2}  # blocks of 1
    assert plan.host_devices_for(100, cores=1) == 1
    monkeypatch.setattr(plan, "CELLS_PER_BLOCK", 8)
    chosen = {n: plan.host_devices_for(n, cores=2) for n in (1, 8, 9, 16, 17, 20, 24, 25, 100)}
    assert chosen == {1: 1, 8: 1, 9: 2, 16: 2, 17: 1, 20: 1, 24: 1, 25: 2, 100: 2}


def test_configure_xla_respects_the_users_flag(monkeypatch):
    from initbench import jax_setup

    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=3")
    assert jax_setup.requested_host_devices() == 3
    monkeypatch.setattr(jax_setup, "backends_started", lambda: False)
    assert jax_setup.configure_xla(2) is False
    assert os.environ["XLA_FLAGS"].split() == ["--xla_force_host_platform_device_count=3",
                                               jax_setup.DETERMINISTIC_GPU_FLAG]


def test_configure_xla_asks_for_deterministic_gpu_kernels_unless_the_user_chose(monkeypatch):
    from initbench import jax_setup

    monkeypatch.setattr(jax_setup, "backends_started", lambda: False)
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    assert jax_setup.configure_xla(1) is True
    assert os.environ["XLA_FLAGS"] == jax_setup.DETERMINISTIC_GPU_FLAG
    monkeypatch.setenv("XLA_FLAGS", "--xla_gpu_deterministic_ops=false")
    jax_setup.configure_xla(1)
    assert os.environ["XLA_FLAGS"] == "--xla_gpu_deterministic_ops=false"
