"""Eager PyTorch's side of the end-to-end race: the same models x epochs as an initbench compare.

    /usr/bin/time -f %e .venv/bin/initbench compare --dataset mnist-5k --inits \\
        xavier,he_normal,lecun_normal,orthogonal --seeds 5 --epochs 10 --no-cache --quiet
    /usr/bin/time -f %e .venv/bin/python bench/torch_grid.py --dataset mnist-5k --models 20 --epochs 10

Trains `--models` 784-256-256-10 ReLU nets one after another (Adam lr 0.01, batch 100, a
test evaluation every epoch), on the same data initbench loads. Wall-clock time includes
Python and torch start-up and data loading, as the initbench command's does.
"""

from __future__ import annotations

import argparse
import json
import time

START = time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--json", action="store_true",
                        help="print one JSON line (what `initbench bench --race` reads)")
    args = parser.parse_args()
    from initbench import bench, data

    dataset = data.load(args.dataset)
    run = bench.time_torch(dataset, num_models=args.models, epochs=args.epochs)
    trained = sum(run["epoch_s"])
    final = run["test_accuracy"][args.epochs - 1::args.epochs]
    if args.json:
        print(json.dumps({"train_s": trained, "threads": run["threads"],
                          "version": run["version"], "device": run["device"],
                          "mean_final_accuracy": sum(final) / len(final),
                          "seconds": time.perf_counter() - START}))
        return
    print(f"eager PyTorch {run['version']} ({run['device']}, {run['threads']} "
          f"thread{'s' * (run['threads'] != 1)}): "
          f"{args.models} models x {args.epochs} epochs on {args.dataset}: training {trained:.1f} s "
          f"({trained / len(run['epoch_s']):.3f} s per model-epoch), "
          f"wall clock {time.perf_counter() - START:.1f} s; "
          f"mean final test accuracy {sum(final) / len(final):.4f}")


if __name__ == "__main__":
    main()
