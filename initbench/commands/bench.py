"""CLI command: bench (speed of the seed's setting against the matmul floor and eager PyTorch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from initbench.commands import options as o
from initbench.runtime import Runtime

# `initbench.bench.RACE_INITS` (not imported here: it would load NumPy for `--help`)
RACE_INITS = "xavier,he_normal,lecun_normal,orthogonal"

MODELS = o.Opt("models", ("--models",), int | None, None,
               "Models trained together (padded to whole blocks per device; default 16, with "
               "--setting 4).")
EPOCHS = o.EPOCHS.but(default=None, help="Epochs; the first includes compilation, the others "
                                         "are the steady state (default 3, with --setting 2).")
EXAMPLES = o.Opt("examples", ("--examples",), int | None, None,
                 "Training examples per epoch (default MNIST's seed split, 55,000; with "
                 "--setting mnist-5k's 4,000).")
DATA = o.Opt("data", ("--data",), str, "auto",
             "auto (MNIST if on disk, else synthetic), synthetic or mnist.")
DEVICES = o.Opt("devices", ("--devices",), int | None, None,
                "Split the CPU into this many XLA host devices (default: as for `compare` with "
                "this many models; no effect on GPUs).")
TORCH = o.Opt("torch", ("--torch/--no-torch",), bool, True,
              "Also time eager PyTorch (when installed).")
TORCH_EPOCHS = o.Opt("torch_epochs", ("--torch-epochs",), int | None, None,
                     "Eager PyTorch epochs (one model; default 2, with --setting 1).")
SETTING = o.Opt("setting", ("--setting",), str | None, None,
                "Instead of the seed's net, one of the new axes at a representative size: "
                "transfer (width 1024, muP), resmlp (50 blocks of 128), phase (100 tanh layers "
                "of 32) or bf16 (the seed's net in bfloat16); synthetic mnist-5k-shaped data.")
MODEL = o.MODEL.but(default="mlp", help="mlp (784-256-256-10) or cnn (the built-in CNN of "
                                        "`--model cnn`).")
CSV = o.Opt("csv", ("--csv",), Path, Path("results/bench.csv"), "Append one row per run to this file.")
JSON = o.JSON.but(help="Print the measured row as JSON instead of the table.")
RACE = o.Opt("race", ("--race",), bool, False,
             "Instead: the end-to-end race, a whole cold `compare` (fresh cell and XLA caches, "
             "own process) against the same model-epochs of eager PyTorch "
             "(bench/torch_grid.py, own process), with initbench's fixed-cost breakdown.")
RACE_DATASET = o.Opt("race_dataset", ("--race-dataset",), str, "mnist-5k",
                     "--race: the compare's --dataset.")
RACE_INITS_OPT = o.Opt("race_inits", ("--race-inits",), str, RACE_INITS,
                       "--race: the compare's --inits.")
RACE_SEEDS = o.Opt("race_seeds", ("--race-seeds",), int, 5, "--race: the compare's --seeds.")
RACE_EPOCHS = o.Opt("race_epochs", ("--race-epochs",), int, 10, "--race: the compare's --epochs.")
REPEATS = o.Opt("repeats", ("--repeats",), int, 1,
                "--race: run both sides this many times, interleaved.")


@dataclass(frozen=True)
class BenchOptions:
    """What `bench` was given: what to time (`bench.BenchConfig`, checked), or the race
    instead (`bench.RaceConfig`; None: no race), the XLA host devices (None: as for
    `compare`), the CSV appended to and whether the row is printed as JSON."""

    config: Any  # bench.BenchConfig (its module loads NumPy: not imported for --help)
    race: Any    # bench.RaceConfig or None
    devices: int | None
    csv: Path
    as_json: bool


def bench_options(values: dict[str, Any]) -> BenchOptions:
    """The typed options of `bench`, checked before JAX starts (`bench.validate`,
    `jax_setup.check_num_devices`; the race's own counts are checked by `bench.race`)."""
    from initbench import bench as bench_lib

    race = (bench_lib.RaceConfig(values["race_dataset"], values["race_inits"],
                                 values["race_seeds"], values["race_epochs"], values["repeats"],
                                 values["torch"]) if values["race"] else None)
    small = values["setting"] is not None  # deep or wide nets: a smaller default run

    def given(name: str, default: int, with_setting: int) -> int:
        return values[name] if values[name] is not None else with_setting if small else default

    config = bench_lib.BenchConfig(
        num_models=given("models", 16, 4), epochs=given("epochs", 3, 2),
        num_train=given("examples", bench_lib.NUM_TRAIN, bench_lib.SETTING_TRAIN),
        data=values["data"], torch=values["torch"],
        torch_epochs=given("torch_epochs", 2, 1), model=values["model"],
        setting=values["setting"])
    devices = values["devices"]
    if race is None:
        bench_lib.validate(config)
        if devices is not None:  # jax_setup's rule, before JAX starts
            from initbench import jax_setup

            jax_setup.check_num_devices(devices)
    return BenchOptions(config=config, race=race, devices=devices, csv=values["csv"],
                        as_json=values["as_json"])


@o.command_options(MODELS, EPOCHS, EXAMPLES, DATA, DEVICES, TORCH, TORCH_EPOCHS, MODEL, SETTING,
                   CSV, JSON, RACE, RACE_DATASET, RACE_INITS_OPT, RACE_SEEDS, RACE_EPOCHS, REPEATS,
                   typed=bench_options)
def bench(options: BenchOptions, runtime: Runtime) -> None:
    """Time training of the seed's setting (784-256-256-10, Adam, batch 100): s per
    model-epoch, GFLOP/s and fraction of this machine's matmul floor, against eager PyTorch."""
    import json
    import os

    from initbench import bench as bench_lib
    from initbench import jax_setup, plan
    from initbench.console import stderr, stdout

    def notice(text: str) -> None:
        from rich.markup import escape

        if not options.as_json:
            stderr.print(f"[dim]{escape(text)}[/]", highlight=False)

    if options.race is not None:  # no JAX in this process: both sides run in their own
        rows = bench_lib.race(options.race, notice)
        for row in rows:
            path = bench_lib.append_csv(row, options.csv)
        if options.as_json:
            print(json.dumps(rows, indent=2, default=str))
            return
        stdout.print(race_table(rows))
        stderr.print(f"appended to {path}", markup=False, highlight=False)
        return

    config = options.config
    # Before JAX starts: on a GPU let torch share the device memory JAX would otherwise
    # preallocate. Compilation is timed cold: no persistent XLA cache.
    if not jax_setup.backends_started():
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    notice("starting JAX")
    devices = options.devices
    runtime = jax_setup.start(runtime.replace(xla_cache=None),
                              devices if devices is not None else
                              plan.host_devices_for(config.num_models))

    row = bench_lib.run_bench(config, runtime=runtime, notice=notice)
    path = bench_lib.append_csv(row, options.csv)
    if options.as_json:
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
           if row.get("model") == "cnn" else "784-256-256-10 ReLU, Adam lr 0.01, batch 100")
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
