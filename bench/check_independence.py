"""Check that a cell's numbers depend neither on its grid nor on the device count (bitwise).

Trains the cell (he_normal, seed 1) inside grids of several sizes, in one process whose CPU
is split into --devices XLA host devices, and saves every run's curves to --out (.npz).
Run it once per device count, then compare the files with --compare:

    for d in 1 2 4; do .venv/bin/python bench/check_independence.py --devices $d --out /tmp/ind$d.npz; done
    .venv/bin/python bench/check_independence.py --compare /tmp/ind1.npz /tmp/ind2.npz /tmp/ind4.npz

Nets: "digits" (sklearn digits, hidden 32) and "mnist" (784-256-256-10 on a small synthetic
MNIST-shaped set, so the check stays fast). tests/test_sharding.py runs a subset of it.
"""

from __future__ import annotations

import argparse
import sys

INITS = ("xavier", "he_normal", "normal", "lecun_normal", "orthogonal")
TARGET = ("he_normal", 1)


def grid_cells(size: int) -> list[tuple[str, int]]:
    """`size` cells of an inits x seeds grid, always containing TARGET (not always first)."""
    others = [(init, seed) for seed in range(5) for init in INITS if (init, seed) != TARGET]
    cells = others[: size - 1]
    cells.insert(len(cells) // 2, TARGET)
    return cells


def load_net(name: str):
    """(dataset, hidden widths) of a named check net."""
    from initbench import bench, data

    if name == "digits":
        return data.load("digits"), (32,)
    small = bench.synthetic_mnist(num_train=600, num_test=200)
    return small, (256, 256)


def run(devices: int, nets: list[str], grids: list[int], epochs: int, out: str) -> None:
    """Train every (net, grid size) and save the target cell's curves to `out`."""
    from initbench import jax_setup
    from initbench.runtime import Runtime

    runtime = jax_setup.start(Runtime(use_cache=False), devices)
    import jax
    import numpy as np

    from initbench import progress
    from initbench.runner import Runner
    from initbench.spec import Spec

    if len(jax.devices()) != devices:
        sys.exit(f"wanted {devices} devices, JAX has {len(jax.devices())}")
    saved = {}
    for net in nets:
        dataset, hidden = load_net(net)
        spec = Spec(inits=("he_normal",), seeds=(1,), dataset=dataset.name, epochs=epochs,
                    hidden=hidden)
        for size in grids:
            cells = grid_cells(size)
            runner = Runner(spec, dataset, runtime)
            outs = runner.train(cells, progress.SilentReporter())
            for name, values in outs[cells.index(TARGET)].items():
                saved[f"{net}/grid{size}/{name}"] = values
    np.savez(out, **saved)


def compare(paths: list[str]) -> bool:
    """Print whether, per net and metric, every grid of every file is bitwise the same."""
    import numpy as np

    curves = [(path, key, values) for path in paths for key, values in np.load(path).items()]
    reference: dict[tuple[str, str], np.ndarray] = {}
    same = True
    for path, key, values in curves:
        net, grid, metric = key.split("/")
        base = reference.setdefault((net, metric), values)
        if not np.array_equal(values, base):
            same = False
            print(f"DIFFERENT: {path} {net} {grid} {metric}: "
                  f"max |diff| {np.max(np.abs(values - base)):.3g}")
    print(f"{'bitwise identical' if same else 'NOT identical'}: {len(curves)} curves "
          f"from {len(paths)} runs")
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--nets", default="digits,mnist")
    parser.add_argument("--grids", default="1,2,6,20")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out")
    parser.add_argument("--compare", nargs="+")
    args = parser.parse_args()
    if args.compare:
        sys.exit(0 if compare(args.compare) else 1)
    run(args.devices, args.nets.split(","), [int(g) for g in args.grids.split(",")],
        args.epochs, args.out)


if __name__ == "__main__":
    main()
