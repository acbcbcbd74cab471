"""The program cache (initbench.programs): kept programs run bitwise as traced ones, and an
entry that cannot be used is traced again."""

import dataclasses
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cli_helpers import invoke, runners_built

from initbench import data, initializers, programs, progress, starts
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
    with runners_built() as built:
        grid = grid_lib.train_grid(SPEC, data.load("digits"), runtime,
                                   progress.SilentReporter())
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
    assert traces == {"draw": 1, "init": 1, "eval": 1, "epoch": 1}
    kept = sorted(p.name.split("-")[0] for p in (tmp_path / "xla" / programs.FOLDER).iterdir())
    assert kept == ["draw", "epoch", "eval", "init"]
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


def _starts(spec: Spec, cells: list, runtime: Runtime | None):
    """(`cell_starts` of `cells` on digits, the draw's traces): through a fresh runner's
    draw program (as `Runner.init_state` draws; a fresh runner is a fresh process's), or
    through plain `jax.jit` when `runtime` is None."""
    digits = data.load("digits")
    if runtime is None:
        return starts.cell_starts(spec, cells, digits), 0
    runner = Runner(spec, digits, runtime)
    built = starts.cell_starts(spec, cells, digits, runner._draw_program)
    return built, runner.traces["draw"]


def test_kept_draws_are_bitwise_the_traced_draws_and_not_traced_again(tmp_path):
    """The starting parameters (a QR draw and LSUV's after-draw hook among them) are
    bitwise the same with the cache off, freshly exported, read back by a second runner, and
    called a second time by that runner, which traces the draw only in the first."""
    spec = SPEC.replace(inits=("xavier", "orthogonal", "lsuv"), seeds=(0, 1, 2))
    cells = [(name, seed) for name in spec.inits for seed in spec.seeds]
    plain, _ = _starts(spec, cells, None)
    off, traces_off = _starts(spec, cells, Runtime(use_cache=False))
    runtime = Runtime(use_cache=False, xla_cache=tmp_path / "xla")
    exported, traces_exported = _starts(spec, cells, runtime)
    digits = data.load("digits")
    second = Runner(spec, digits, runtime)
    loaded = starts.cell_starts(spec, cells, digits, second._draw_program)
    again = starts.cell_starts(spec, cells, digits, second._draw_program)
    assert (traces_off, traces_exported, second.traces["draw"]) == (1, 1, 0)
    assert [p.name.split("-")[0] for p in (tmp_path / "xla" / programs.FOLDER).iterdir()] \
        == ["draw"]
    for built in (off, exported, loaded, again):
        jax.tree.map(np.testing.assert_array_equal, built.params, plain.params)
        assert [None if p is None else p.tolist() for p in built.lsuv_passes] \
            == [None if p is None else p.tolist() for p in plain.lsuv_passes]
    assert plain.lsuv_passes[-1] is not None  # the hook ran


def test_every_builtin_initializer_draws_bitwise_through_a_kept_program(tmp_path):
    """One kept draw program of every built-in initializer the MLP takes (uneven seeds, as
    a padded grid draws) gives jax.jit's starts, exported and read back. (The after-draw
    hooks run outside the draw program: LSUV's in the test above.)"""
    names = [name for name in initializers.names()  # fixup, skipinit: residual nets only
             if not initializers.is_data_dependent(name) and not initializers.needs_branches(name)]
    assert {"orthogonal", "identity", "torch_default", "delta_orthogonal"} <= set(names)
    spec = SPEC.replace(inits=tuple(names))
    cells = [(name, seed) for i, name in enumerate(names) for seed in range(1 + i % 2)]
    plain, _ = _starts(spec, cells, None)
    runtime = Runtime(use_cache=False, xla_cache=tmp_path / "xla")
    for expected_traces in (1, 0):
        kept, traces = _starts(spec, cells, runtime)
        assert traces == expected_traces
        jax.tree.map(np.testing.assert_array_equal, kept.params, plain.params)


def test_the_draw_shapes_come_from_the_kept_program(tmp_path):
    """`start_shapes` through a runner's draw program: the shapes `jax.eval_shape` gives,
    read from the program `cell_starts` then calls, which is traced once in all."""
    digits = data.load("digits")
    names = ("xavier", "orthogonal")
    expected = starts.start_shapes(SPEC, digits, 3)
    runner = Runner(SPEC, digits, Runtime(use_cache=False, xla_cache=tmp_path / "xla"))
    shapes = starts.start_shapes(SPEC, digits, 3, names, runner._draw_program)
    assert jax.tree.map(lambda a: (a.shape, a.dtype), shapes) \
        == jax.tree.map(lambda a: (a.shape, a.dtype), expected)
    starts.cell_starts(SPEC, [(name, 0) for name in names], digits, runner._draw_program)
    assert runner.traces["draw"] == 1


def test_a_draw_of_a_user_registered_initializer_is_not_kept(tmp_path, monkeypatch):
    """Its code is not in the entry's key, so its draw is traced in every process."""
    entry = initializers._KERNELS["normal"]
    monkeypatch.setitem(initializers._KERNELS, "mine", dataclasses.replace(
        entry, make=lambda **params: entry.make(**params)))  # made here, not in initbench
    assert not initializers.is_builtin("mine") and initializers.is_builtin("normal")
    spec = SPEC.replace(inits=("mine",))
    runtime = Runtime(use_cache=False, xla_cache=tmp_path / "xla")
    assert _starts(spec, [("mine", 0)], runtime)[1] == 1
    assert _starts(spec, [("mine", 0)], runtime)[1] == 1
    assert not (tmp_path / "xla" / programs.FOLDER).exists()


def test_each_set_of_initializers_keeps_its_own_draw(tmp_path):
    """Two grids of as many initializers (the same program shapes) in one folder: the second
    is traced and kept on its own, never read back from the first's entry."""
    runtime = Runtime(use_cache=False, xla_cache=tmp_path / "xla")
    for names in (("xavier", "orthogonal"), ("he_normal", "orthogonal")):
        spec = SPEC.replace(inits=names)
        cells = [(name, 0) for name in names]
        kept, traces = _starts(spec, cells, runtime)
        assert traces == 1
        jax.tree.map(np.testing.assert_array_equal, kept.params,
                     _starts(spec, cells, None)[0].params)
    assert len(list((tmp_path / "xla" / programs.FOLDER).glob("draw-*"))) == 2


def test_a_draw_of_initializers_out_of_order_gives_each_its_own_starts(tmp_path):
    """The runner first reads the draw's shapes, then draws: with initializers listed out of
    alphabetical order each cell still gets its own initializer's start, bitwise jax.jit's."""
    digits = data.load("digits")
    names = ("orthogonal", "he_normal", "xavier")
    spec = SPEC.replace(inits=names)
    cells = [(name, seed) for name in names for seed in (0, 1)]
    runner = Runner(spec, digits, Runtime(use_cache=False, xla_cache=tmp_path / "xla"))
    starts.start_shapes(spec, digits, len(cells), starts.init_names(cells),
                        runner._draw_program)
    kept = starts.cell_starts(spec, cells, digits, runner._draw_program)
    jax.tree.map(np.testing.assert_array_equal, kept.params,
                 starts.cell_starts(spec, cells, digits).params)


def test_a_draw_mixing_user_and_builtin_initializers_is_not_kept(tmp_path, monkeypatch):
    """One initializer whose code is not initbench's (a user's script, or a --model or
    --dataset file loaded as a module named initbench_user_...) keeps the whole draw out."""
    entry = initializers._KERNELS["normal"]

    def made_elsewhere(**params):
        return entry.make(**params)

    made_elsewhere.__module__ = "initbench_user_0123abcd"  # how a --model file is loaded
    monkeypatch.setitem(initializers._KERNELS, "mine", dataclasses.replace(
        entry, make=made_elsewhere))
    assert not initializers.is_builtin("mine")
    spec = SPEC.replace(inits=("normal", "mine"))
    runtime = Runtime(use_cache=False, xla_cache=tmp_path / "xla")
    cells = [("normal", 0), ("mine", 0)]
    assert _starts(spec, cells, runtime)[1] == 1
    assert _starts(spec, cells, runtime)[1] == 1
    assert not (tmp_path / "xla" / programs.FOLDER).exists()


def test_an_entry_of_other_code_or_settings_is_not_read_back(tmp_path, monkeypatch):
    """A kept program's key holds what shapes it beyond its settings (initbench's sources,
    the JAX versions and settings): changed sources are traced again, into a new entry."""
    runtime = Runtime(use_cache=False, xla_cache=tmp_path / "xla")
    cells = [("xavier", 0)]
    assert _starts(SPEC, cells, runtime)[1] == 1
    assert _starts(SPEC, cells, runtime)[1] == 0
    monkeypatch.setattr(programs, "source_hash", lambda: "edited sources")
    assert _starts(SPEC, cells, runtime)[1] == 1
    assert len(list((tmp_path / "xla" / programs.FOLDER).glob("draw-*"))) == 2
