"""The package's shape: imports flow one way, and a run builds its programs once."""

import ast
from pathlib import Path

import numpy as np
from cli_helpers import runners_built

from initbench import data, progress
from initbench import grid as grid_lib
from initbench.runtime import Runtime
from initbench.spec import Spec

PACKAGE = Path(__file__).resolve().parents[1] / "initbench"
NO_JAX = ("plan", "runtime", "spec", "initializers", "errors", "paths", "jax_setup", "results",
          "runfolder", "merges", "api", "user_data", "user_code", "study_config", "live")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every initbench module `path` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("initbench")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("initbench"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if (PACKAGE.parent / (sub.replace(".", "/") + ".py")).exists()
                          or (PACKAGE.parent / sub.replace(".", "/")).is_dir() else node.module)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name}
            for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` as [a, b, ..., a], or None (depth-first search)."""
    done: set[str] = set()

    def visit(stack: list[str]) -> list[str] | None:
        for nxt in sorted(graph[stack[-1]]):
            if nxt in stack:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in done:
                found = visit([*stack, nxt])
                if found:
                    return found
        done.add(stack[-1])
        return None

    for node in sorted(graph):
        if node not in done and (found := visit([node])):
            return found
    return None


def test_imports_have_no_cycle():
    graph = _graph()
    assert graph["initbench.cli"] and "initbench.api" in graph["initbench.commands.train"]
    assert "initbench.experiment" in graph["initbench.api"]  # the commands train through the API
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_finds_a_cycle():
    """The check can fail: an import back up the layers (inside a function counts) is found."""
    graph = _graph()
    graph["initbench.spec"] = graph["initbench.spec"] | {"initbench.experiment"}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert {"initbench.spec", "initbench.experiment"} <= set(cycle)


def test_planning_modules_do_not_import_jax():
    for name in NO_JAX:
        tree = ast.parse((PACKAGE / f"{name}.py").read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = {a.name for n in top if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in top if isinstance(n, ast.ImportFrom) and n.module}
        assert not any(n.split(".")[0] in ("jax", "flax", "optax") for n in names), name


def test_reading_and_writing_run_folders_loads_no_jax():
    """The run-folder side (read, validate, merge, the replace guard) and planning import no
    JAX, not even inside the functions a report calls."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from initbench import plan, runfolder; "
            "runfolder.check_output_path(Path('x.csv')); "
            "print(sorted(m for m in ('jax', 'flax', 'optax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=PACKAGE.parent, check=True).stdout
    assert out.strip() == "[]"


def test_a_grid_of_several_chunks_traces_each_program_once():
    """20 cells in chunks of 8: three chunks, one runner, every program traced once (the
    draw once per set of initializers) and the data placed once; the cells equal a
    one-chunk run bitwise."""
    digits = data.load("digits")
    spec = Spec(inits=("xavier", "he_normal", "normal", "orthogonal"), seeds=tuple(range(5)),
                dataset="digits", epochs=2, hidden=(8,))
    runtime = Runtime(use_cache=False)
    with runners_built() as built:
        chunked = grid_lib.train_grid(spec, digits, runtime, progress.SilentReporter(),
                                      max_cells_per_chunk=8)
        whole = grid_lib.train_grid(spec, digits, runtime, progress.SilentReporter(),
                                    max_cells_per_chunk=128)
    assert len(built) == 2  # one runner per run, not per chunk
    # the draw once per set of initializers a chunk holds: {xavier, he_normal}, {he_normal,
    # normal, orthogonal}, {orthogonal}; the whole grid's one set once
    assert dict(built[0].traces) == {"init": 1, "eval": 1, "epoch": 1, "draw": 3}
    assert dict(built[1].traces) == {"init": 1, "eval": 1, "epoch": 1, "draw": 1}
    for name in chunked.metrics:
        np.testing.assert_array_equal(chunked.metrics[name], whole.metrics[name])


# The MLP is a `networks.Network` like the CNN and user modules: what makes it the MLP (its
# module, names, keys, activation, titles, layer count) is said in the network registry and
# the spec's names, and nowhere else branches on it. `bench` is no part of the tool's network
# path: it times two fixed networks whose FLOPs it counts by hand (its --model mlp|cnn).
MLP_BRANCHES = ("is_mlp", "network is None", "network is not None", 'model == "mlp"',
                "model == 'mlp'", 'model != "mlp"', "model != 'mlp'", 'in ("mlp"')
MLP_REGISTRY = ("networks.py", "spec.py", "bench.py")


def _mlp_branches(source: str) -> list[str]:
    return [f"{n}: {line.strip()}" for n, line in enumerate(source.splitlines(), start=1)
            if any(pattern in line for pattern in MLP_BRANCHES)]


def test_no_module_outside_the_registry_branches_on_the_mlp():
    found = {path.name: hits for path in sorted(PACKAGE.rglob("*.py"))
             if path.name not in MLP_REGISTRY and (hits := _mlp_branches(path.read_text()))}
    assert found == {}, found


def test_the_mlp_branch_check_can_fail():
    """A branch of the kinds the check looks for is found (it read the old probe's)."""
    old = '    arch = f"MLP {net}" if spec.model == "mlp" else f"model {spec.model}"\n'
    assert _mlp_branches("x = 1\n" + old) == [f"2: {old.strip()}"]
    assert _mlp_branches("if network is None:\n    pass\n")


# Each module has one job, which the first line of its docstring states; a module over
# about 450 lines says at its top why it is one module ("Over 450 lines: ...").
LONG_MODULE = 450


def _module_problems(path) -> list[str]:
    import ast

    source = path.read_text()
    doc = ast.get_docstring(ast.parse(source)) or ""
    problems = [] if doc.strip() else [f"{path.name}: no docstring"]
    if len(source.splitlines()) > LONG_MODULE and "Over 450 lines:" not in doc:
        problems.append(f"{path.name}: {len(source.splitlines())} lines, no reason at its top")
    return problems


def test_every_module_states_its_job_and_a_long_one_why_it_is_long():
    found = [p for path in sorted(PACKAGE.rglob("*.py")) if path.name != "__main__.py"
             for p in _module_problems(path)]
    assert found == [], found


def test_the_module_check_can_fail(tmp_path):
    long = tmp_path / "long.py"
    long.write_text('"""Does one thing."""\n' + "x = 1\n" * LONG_MODULE)
    bare = tmp_path / "bare.py"
    bare.write_text("x = 1\n")
    assert _module_problems(long) == [f"long.py: {LONG_MODULE + 1} lines, no reason at its top"]
    assert _module_problems(bare) == ["bare.py: no docstring"]
