"""CLI command: bench (speed of the seed's setting against the matmul floor and eager PyTorch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# `initbench.bench.RACE_INITS` (not imported here: it would load NumPy for `--help`)
RACE_INITS = "xavier,he_normal,lecun_normal,orthogonal"


def bench(
    ctx: typer.Context,
    models: Annotated[int | None, typer.Option(
        "--models", help="Models trained together (padded to whole blocks per device; "
        "default 16, with --setting 4).")] = None,
    epochs: Annotated[int | None, typer.Option(
        "--epochs", help="Epochs; the first includes compilation, the others are the "
        "steady state (default 3, with --setting 2).")] = None,
    examples: Annotated[int | None, typer.Option(
        "--examples", help="Training examples per epoch (default MNIST's seed split, 55,000; "
        "with --setting mnist-5k's 4,000).")] = None,
    data: Annotated[str, typer.Option(
        "--data", help="auto (MNIST if on disk, else synthetic), synthetic or mnist.")] = "auto",
    devices: Annotated[int | None, typer.Option(
        "--devices", help="Split the CPU into this many XLA host devices (default: as for "
        "`compare` with this many models; no effect on GPUs).")] = None,
    torch: Annotated[bool, typer.Option(
        "--torch/--no-torch", help="Also time eager PyTorch (when installed).")] = True,
    torch_epochs: Annotated[int | None, typer.Option(
        "--torch-epochs", help="Eager PyTorch epochs (one model; default 2, with --setting 1).")
    ] = None,
    setting: Annotated[str | None, typer.Option(
        "--setting", help="Instead of the seed's net, one of the new axes at a representative "
        "size: transfer (width 1024, muP), resmlp (50 blocks of 128), phase (100 tanh layers "
        "of 32) or bf16 (the seed's net in bfloat16); synthetic mnist-5k-shaped data.")] = None,
    model: Annotated[str, typer.Option(
        "--model", help="mlp (784-256-256-10) or cnn (the built-in CNN of `--model cnn`).")
    ] = "mlp",
    csv: Annotated[Path, typer.Option(
        "--csv", help="Append one row per run to this file.")] = Path("results/bench.csv"),
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the measured row as JSON instead of the table.")] = False,
    race: Annotated[bool, typer.Option(
        "--race", help="Instead: the end-to-end race, a whole cold `compare` (fresh cell and "
        "XLA caches, own process) against the same model-epochs of eager PyTorch "
        "(bench/torch_grid.py, own process), with initbench's fixed-cost breakdown.")] = False,
    race_dataset: Annotated[str, typer.Option(
        "--race-dataset", help="--race: the compare's --dataset.")] = "mnist-5k",
    race_inits: Annotated[str, typer.Option(
        "--race-inits", help="--race: the compare's --inits.")] = RACE_INITS,
    race_seeds: Annotated[int, typer.Option(
        "--race-seeds", help="--race: the compare's --seeds.")] = 5,
    race_epochs: Annotated[int, typer.Option(
        "--race-epochs", help="--race: the compare's --epochs.")] = 10,
    repeats: Annotated[int, typer.Option(
        "--repeats", help="--race: run both sides this many times, interleaved.")] = 1,
) -> None:
    """Time training of the seed's setting (784-256-256-10, Adam, batch 100): s per
    model-epoch, GFLOP/s and fraction of this machine's matmul floor, against eager PyTorch."""
    import json
    import os

    from initbench import bench as bench_lib
    from initbench import jax_setup, plan
    from initbench.console import stderr, stdout
    from initbench.runtime import Runtime

    def notice(text: str) -> None:
        from rich.markup import escape

        if not as_json:
            stderr.print(f"[dim]{escape(text)}[/]", highlight=False)

    if race:  # no JAX in this process: both sides run in their own
        config = bench_lib.RaceConfig(race_dataset, race_inits, race_seeds, race_epochs,
                                      repeats, torch)
        rows = bench_lib.race(config, notice)
        for row in rows:
            path = bench_lib.append_csv(row, csv)
        if as_json:
            print(json.dumps(rows, indent=2, default=str))
            return
        stdout.print(race_table(rows))
        stderr.print(f"appended to {path}", markup=False, highlight=False)
        return

    small = setting is not None  # the new axes' nets are deep or wide: a smaller default run
    models = models if models is not None else 4 if small else 16
    config = bench_lib.BenchConfig(
        num_models=models, epochs=epochs if epochs is not None else 2 if small else 3,
        num_train=(examples if examples is not None
                   else bench_lib.SETTING_TRAIN if small else bench_lib.NUM_TRAIN),
        data=data, torch=torch,
        torch_epochs=torch_epochs if torch_epochs is not None else 1 if small else 2,
        model=model, setting=setting)
    bench_lib.validate(config)
    if devices is not None and devices < 1:
        from initbench.errors import InitbenchError

        raise InitbenchError(f"--devices must be at least 1, got {devices}.")
    # Before JAX starts: on a GPU let torch share the device memory JAX would otherwise
    # preallocate. Compilation is timed cold: no persistent XLA cache.
    if not jax_setup.backends_started():
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    runtime = ctx.find_object(Runtime) or Runtime.from_environment()
    notice("starting JAX")
    runtime = jax_setup.start(runtime.replace(xla_cache=None),
                              devices if devices is not None else plan.host_devices_for(models))

    row = bench_lib.run_bench(config, runtime, notice)
    path = bench_lib.append_csv(row, csv)
    if as_json:
        print(json.dumps(row, indent=2, default=str))
        return
    stdout.print(bench_table(row))
    stderr.print(f"appended to {path}", markup=False, highlight=False)


def bench_table(row: dict):
    """The rich table of one `run_bench` row."""
    from rich.table import Table

    def mb(value) -> str:
        return "—" if value in (None, "") else f"{float(value):,.0f} MB"

    from initbench import bench as bench_lib

    setting = bench_lib.SETTINGS.get(row.get("setting") or "")
    net = (f"--setting {row['setting']}: {setting.summary}" if setting is not None
           else "built-in CNN (conv 8, conv 16, dense 64), Adam lr 0.01, batch 100"
           if row.get("model") == "cnn"
           else "784-256-256-10 ReLU, Adam lr 0.01, batch 100")
    table = Table(title=f"initbench bench: {net} — "
                        f"{row['gflop_per_model_epoch']:.1f} GFLOP per model-epoch")
    for header in ("", "s / model-epoch", "examples/s", "GFLOP/s", "of floor", "compile",
                   "peak memory"):
        table.add_column(header, justify="left" if not header else "right")
    n = row["num_train"]
    floor_s = row["floor_s"]
    table.add_row(f"floor: {row.get('floor_source') or 'numpy float32 matmul'}",
                  f"{floor_s:.3f}", f"{n / floor_s:,.0f}", f"{row['matmul_gflops']:.1f}",
                  "100%", "—", "—")
    if row.get("shape_gflops"):
        shape_s = row["shape_floor_s"]
        table.add_row("floor on the step's own shapes (numpy, batch 100)", f"{shape_s:.3f}",
                      f"{n / shape_s:,.0f}", f"{row['shape_gflops']:.1f}",
                      f"{floor_s / shape_s:.0%}", "—", "—")
    devices = f"{row['device_count']} {row['platform']} device{'s' * (row['device_count'] > 1)}"
    device_mem = f" (device {mb(row['peak_device_mb'])})" if row.get("peak_device_mb") else ""
    table.add_row(f"initbench, JAX {row['jax']}: {row['num_models']} models, {devices}",
                  f"{row['s_per_model_epoch']:.3f}", f"{row['examples_per_s']:,.0f}",
                  f"{row['gflops']:.1f}", f"{row['floor_fraction']:.0%}",
                  f"{row['compile_s']:.1f} s", f"RSS {mb(row['peak_rss_mb'])}{device_mem}")
    if row.get("torch_s_per_model_epoch"):
        t = row["torch_s_per_model_epoch"]
        table.add_row(f"eager PyTorch {row['torch']}: 1 model, {row.get('torch_device', 'cpu')}, "
                      f"{row.get('torch_threads', '?')} threads",
                      f"{t:.3f}", f"{n / t:,.0f}", f"{row['torch_gflops']:.1f}",
                      f"{row['torch_floor_fraction']:.0%}", "none (eager)",
                      f"RSS {mb(row['torch_peak_rss_mb'])} (both)")
        speedup = row["speedup_vs_torch"]
        table.caption = (f"initbench is {speedup:.2f}x faster than eager PyTorch per model-epoch. "
                         if speedup >= 1 else f"initbench is {1 / speedup:.2f}x slower than "
                         "eager PyTorch per model-epoch. ")
    else:
        table.caption = row.get("torch_note", "")
    if row.get("shape_floor_fraction"):
        table.caption += (f"initbench reaches {row['shape_floor_fraction']:.0%} of the floor on "
                          "the step's own shapes. ")
    table.caption += (f"Data: {row['data_text']}. Steady state = median of epochs 2..{row['epochs']}"
                      f" (epoch seconds {row['epoch_s']}); compile = epoch 1 minus that. "
                      f"Machine: {row['machine']}, {row['cpu_count']} CPUs, load {row['load_1m']}, "
                      f"git {row['git_revision']}.")
    return table


RACE_PHASES = (
    ("t_interpreter", "interpreter start"), ("t_cli_import", "import initbench.cli"),
    ("t_jax_setup", "JAX import and setup"), ("t_data", "data"),
    ("t_params", "initial parameters (runner, data placed)"),
    ("t_epoch_0", "epoch 0 (evaluation; compiles it)"),
    ("t_epoch_1", "epoch 1 (compiles the epoch)"), ("t_training", "epochs 2..N"),
    ("t_summary", "cells saved, summary"), ("t_print", "tables printed"),
    ("t_figures", "figures"),
    ("t_write_print", "folder written (before 14: and tables printed)"), ("t_exit", "interpreter exit"),
)


def race_table(rows: list[dict]):
    """The rich table of `bench --race` rows: one column per repeat."""
    from rich.table import Table

    def seconds(value) -> str:
        return "—" if value in (None, "") else f"{float(value):.2f}"

    first = rows[0]
    table = Table(title=f"initbench bench --race: {first['race_command']} "
                        f"({first['num_models']} models x {first['epochs']} epochs)")
    table.add_column("seconds")
    for i, row in enumerate(rows):
        table.add_column(f"run {i + 1} (load {row['load_1m']})", justify="right")
    table.add_row("[bold]initbench, wall clock[/]", *(seconds(r["initbench_wall_s"]) for r in rows))
    for key, label in RACE_PHASES:
        table.add_row(f"  {label}", *(seconds(r.get(key)) for r in rows))
    table.add_row("  (steady epoch; compile estimate = epoch 1 minus it)",
                  *(f"{seconds(r.get('t_steady_epoch'))}; {seconds(r.get('t_compile_est'))}"
                    for r in rows))
    table.add_row("  (summary table on screen, since spawn)",
                  *(seconds(r.get("t_table_at")) for r in rows))
    table.add_row("  (JAX compile events, summed over threads)",
                  *(seconds(r.get("compile_events_s")) for r in rows))
    if any(r.get("torch_wall_s") for r in rows):
        table.add_row("[bold]eager PyTorch, wall clock[/]", *(seconds(r.get("torch_wall_s")) for r in rows))
        table.add_row("  training", *(f"{seconds(r.get('torch_train_s'))} "
                                      f"({r.get('torch_threads')} thr)" for r in rows))
        table.add_row("[bold]initbench speed-up[/]",
                      *(f"{float(r['race_speedup']):.2f}x" if r.get("race_speedup") else "—"
                        for r in rows))
    table.caption = (f"Machine: {first['machine']}, {first['cpu_count']} CPUs, git "
                     f"{first['git_revision']}; cold: fresh cell cache and empty XLA cache "
                     "(the parsed-dataset cache stays warm). Noisy on a shared machine.")
    return table


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("bench")(bench)
