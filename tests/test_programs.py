"""The program cache (initbench.programs): kept programs run bitwise as traced ones, and an
entry that cannot be used is traced again."""

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cli_helpers import invoke

from initbench import data, programs, progress
from initbench import grid as grid_lib
from initbench.runner import Runner
from initbench.runtime import Runtime
from initbench.spec import Spec

# A network no other test file uses, so its entries are this file's own.
SPEC = Spec(inits=("xavier", "orthogonal"), seeds=(0, 1), dataset="digits", epochs=2,
            hidden=(11,))
COMPARE = ["compare", "--dataset", "digits", "--inits", "he_normal,lsuv", "--seeds", "2",
           "--epochs", "2", "--hidden", "13", "--no-cache", "--quiet"]


def _train(runtime: Runtime):
    """(metrics, the runner's traces) of SPEC on digits through `runtime`."""
    built = []
    original = Runner.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        built.append(self)

    Runner.__init__ = spy
    try:
        grid = grid_lib.train_grid(SPEC, data.load("digits"), runtime,
                                   progress.SilentReporter())
    finally:
        Runner.__init__ = original
    return grid.metrics, dict(built[0].traces)


@pytest.fixture(scope="module")
def traced():
    """SPEC's metrics through plain `jax.jit` (no program cache)."""
    return _train(Runtime(use_cache=False))


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_kept_programs_run_bitwise_as_traced_ones_and_are_not_traced_again(traced, tmp_path):
    runtime = Runtime(use_cache=False, xla_cache=tmp_path / "xla")
    exported, traces = _train(runtime)
    assert traces == {"init": 1, "eval": 1, "epoch": 1}
    kept = sorted(p.name.split("-")[0] for p in (tmp_path / "xla" / programs.FOLDER).iterdir())
    assert kept == ["epoch", "eval", "init"]
    loaded, traces = _train(runtime)
    assert traces == {}  # read back: nothing traced
    _same(traced[0], exported)
    _same(traced[0], loaded)


@pytest.mark.parametrize("damage", ["garbage", "empty", "another program"])
def test_an_entry_that_cannot_be_used_is_traced_again(traced, tmp_path, damage):
    """Damaged bytes, an empty file, or another program's entry under this one's name (a
    stale signature): traced again, the same numbers, the entry rewritten."""
    runtime = Runtime(use_cache=False, xla_cache=tmp_path / "xla")
    _train(runtime)
    folder = tmp_path / "xla" / programs.FOLDER
    entries = {p.name.split("-")[0]: p for p in folder.iterdir()}
    for name in ("epoch", "eval"):
        if damage == "another program":
            other = entries["init" if name == "epoch" else "epoch"].read_bytes()
            entries[name].write_bytes(other)
        else:
            entries[name].write_bytes(b"" if damage == "empty" else os.urandom(300))
    metrics, traces = _train(runtime)
    assert traces == {"eval": 1, "epoch": 1}
    _same(traced[0], metrics)
    assert _train(runtime)[1] == {}  # rewritten, usable again


def test_a_folder_that_cannot_be_written_keeps_nothing_and_still_runs(tmp_path):
    blocker = tmp_path / "xla"
    blocker.write_text("a file, not a folder")
    program = programs.Program("double", lambda x: 2 * x, programs.folder_for(blocker),
                               lambda: "test")
    np.testing.assert_array_equal(program(jnp.arange(3.0)), [0.0, 2.0, 4.0])


def test_a_program_keeps_its_pytrees_weak_types_and_donation(tmp_path):
    """Results as `jax.jit` gives them (structure, values), across two 'processes' (two
    Program objects), with the donated argument consumed as jit would."""
    def fn(state, scale):
        return {"sum": state["a"] + state["b"], "scaled": state["a"] * scale}, scale + 1

    folder = tmp_path / programs.FOLDER
    state = {"a": jnp.arange(4.0), "b": jnp.ones(4)}
    expected = jax.jit(fn)(state, 3)
    first = programs.Program("fn", fn, folder, lambda: "test", donate_argnums=(0,))
    got = first({"a": jnp.arange(4.0), "b": jnp.ones(4)}, 3)
    second = programs.Program("fn", fn, folder, lambda: "test", donate_argnums=(0,))
    donated = {"a": jnp.arange(4.0), "b": jnp.ones(4)}
    again = second(donated, 3)
    assert (first.traced, second.traced) == (1, 0)
    for result in (got, again):
        assert jax.tree.structure(result) == jax.tree.structure(expected)
        jax.tree.map(np.testing.assert_array_equal, result, expected)
    assert donated["a"].is_deleted()
    assert second.out_shapes(state, 3)[0]["sum"].shape == (4,)


def test_without_a_folder_a_program_is_plain_jit():
    program = programs.Program("fn", lambda x: x + 1, None, lambda: "unused")
    assert program.out_shapes(jnp.zeros(2)) is None
    assert "stablehlo" in program.lower(jnp.zeros(2)).as_text()


def test_compare_curves_are_byte_identical_with_and_without_kept_programs(tmp_path, monkeypatch):
    """The CLI: no program cache ($INITBENCH_XLA_CACHE=off), then programs exported, then
    read back: the same curves.csv, byte for byte."""
    session_cache = os.environ["INITBENCH_XLA_CACHE"]  # the tests' own (conftest)
    runs = {}
    for run, cache in (("off", "off"), ("exported", session_cache), ("loaded", session_cache)):
        monkeypatch.setenv("INITBENCH_XLA_CACHE", cache)
        result = invoke(*COMPARE, "--out", tmp_path / run)
        assert result.exit_code == 0, result.output
        runs[run] = (tmp_path / run / "curves.csv").read_bytes()
    assert runs["exported"] == runs["off"] and runs["loaded"] == runs["off"]
    assert any(Path(session_cache, programs.FOLDER).glob("epoch-*" + programs.SUFFIX))
