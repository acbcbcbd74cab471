"""initbench bench: FLOP counts, the CSV log, and a tiny run without TFDS or mlxtend."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from initbench import bench

ROOT = Path(__file__).resolve().parents[1]


def test_flops_of_the_seed_net_by_hand():
    # forward + weight gradient 4ab per layer; input gradient 2ab for layers 2 and 3
    layers = 784 * 256 + 256 * 256 + 256 * 10
    expected = 4 * layers + 2 * (256 * 256 + 256 * 10)
    assert bench.train_flops_per_example((784, 256, 256, 10)) == expected == 1_211_392
    assert bench.eval_flops_per_example((784, 256, 256, 10)) == 2 * layers
    # 550 whole batches of 100, then 10,000 test examples forward: ~72.0 GFLOP
    assert bench.epoch_flops(55_050, 10_000) == 55_000 * expected + 10_000 * 2 * layers


def test_flops_of_a_tiny_net():
    assert bench.train_flops_per_example((3, 2)) == 4 * 6  # one layer: no input gradient
    assert bench.train_flops_per_example((3, 2, 5)) == 4 * (6 + 10) + 2 * 10


def test_csv_appends_rows_and_keeps_old_columns(tmp_path):
    path = tmp_path / "bench.csv"
    bench.append_csv({"machine": "a", "s_per_model_epoch": 1.5, "torch": None}, path)
    bench.append_csv({"machine": "b", "s_per_model_epoch": 0.5}, path)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["machine"] for r in rows] == ["a", "b"]
    assert rows[0]["s_per_model_epoch"] == "1.5" and rows[0]["torch"] == ""
    path.write_text("machine,old_column\nz,7\n")  # a file from an older initbench
    bench.append_csv({"machine": "c"}, path)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["machine"], r["old_column"]) for r in rows] == [("z", "7"), ("c", "")]
    assert set(bench.CSV_COLUMNS) <= set(rows[0])


def test_synthetic_data_has_mnist_shape():
    small = bench.synthetic_mnist(num_train=300, num_test=50)
    assert small.x_train.shape == (300, 784) and small.x_train.dtype.name == "float32"
    assert small.y_test.shape == (50,) and small.y_test.min() >= 0 and small.y_test.max() <= 9
    dataset, text = bench.load_data("auto", 1000)  # tests have no TFDS data dir
    assert dataset.source == "synthetic" and len(dataset.x_train) == 1000
    assert "synthetic" in text and "not on disk" in text


def test_bench_runs_without_tfds_tensorflow_or_mlxtend(tmp_path):
    """What bench/gpu.sh relies on: a Python without TFDS, TensorFlow and mlxtend."""
    csv_path = tmp_path / "bench.csv"
    code = (
        "import sys\n"
        "for name in ('tensorflow', 'tensorflow_datasets', 'mlxtend', 'torch'):\n"
        "    sys.modules[name] = None  # importing any of them now fails\n"
        "sys.argv = ['initbench', 'bench', '--examples', '300', '--epochs', '2', '--models', '2',\n"
        f"            '--csv', {str(csv_path)!r}]\n"
        "from initbench.cli import main\n"
        "main()\n"
    )
    # bench times cold compilation unless told otherwise; the test need not pay for it, and
    # conftest points INITBENCH_XLA_CACHE at the session's temporary folder
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "s / model-epoch" in done.stdout and "floor" in done.stdout
    assert "torch is not installed" in done.stdout
    # every part longer than a moment says what it does, before it starts, in order
    phases = ["starting JAX", "loading the data", "timing numpy's float32 matmul",
              "timing initbench: compiling"]
    where = [done.stderr.find(phase) for phase in phases]
    assert -1 not in where and where == sorted(where), done.stderr
    with open(csv_path, newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["data"] == "synthetic" and row["num_train"] == "300"
    assert row["num_models"] == "2"  # CPU blocks of one cell: nothing padded
    assert float(row["s_per_model_epoch"]) > 0 and float(row["floor_fraction"]) > 0
    # the floor on the step's own shapes: its rate and the share initbench reaches of it
    assert float(row["shape_gflops"]) > 0
    assert float(row["shape_floor_fraction"]) == pytest.approx(
        float(row["shape_floor_s"]) / float(row["s_per_model_epoch"]), rel=1e-2)
    assert "step's own shapes" in done.stdout
    assert row["torch_s_per_model_epoch"] == ""


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_step_matmuls_are_the_flops_the_floor_counts(model):
    """The own-shape floor times exactly the products `epoch_flops` counts for training."""
    from initbench import bench

    products = bench.step_matmuls(model)
    per_step = sum(2 * m * k * n for m, k, n in products)
    flops = (bench.cnn_epoch_flops if model == "cnn" else bench.epoch_flops)(55_000, 0)
    assert per_step * 550 == flops
    # forward, weight gradient, and an input gradient for every layer but the first
    layers = 4 if model == "cnn" else 3
    assert len(products) == 3 * layers - 1


def test_bench_rejects_bad_options(tmp_path):
    from typer.testing import CliRunner

    from initbench.cli import app

    for args, text in ((["--epochs", "1"], "at least 2"), (["--data", "cifar"], "--data"),
                       (["--examples", "10"], "--examples")):
        result = CliRunner().invoke(app, ["bench", *args, "--csv", str(tmp_path / "b.csv")])
        assert result.exit_code == 2, result.output
        assert text in result.output
    assert not (tmp_path / "b.csv").exists()


def test_bench_setting_trains_the_new_axes_net_and_records_it(tmp_path):
    """`bench --setting phase`: a 100-layer tanh net, its FLOPs counted on its own chain,
    the setting in the CSV row; a bad name or --setting with --model is one line, exit 2."""
    from typer.testing import CliRunner

    from initbench.cli import app

    csv_path = tmp_path / "b.csv"
    result = CliRunner().invoke(app, ["bench", "--setting", "phase", "--models", "1",
                                      "--examples", "200", "--no-torch", "--json",
                                      "--csv", str(csv_path)])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)
    assert row["setting"] == "phase" and row["num_train"] == 200 and row["epochs"] == 2
    widths = (784, *(32,) * 100, 10)
    assert row["gflop_per_model_epoch"] == round(
        bench.epoch_flops(200, bench.SETTING_TEST, widths=widths) / 1e9, 3)
    assert bench.SETTINGS["phase"].widths == widths
    with open(csv_path, newline="") as handle:
        assert next(csv.DictReader(handle))["setting"] == "phase"
    for args, text in ((["--setting", "wide"], "--setting must be one of"),
                       (["--setting", "bf16", "--model", "cnn"], "leave --model out")):
        result = CliRunner().invoke(app, ["bench", *args, "--csv", str(tmp_path / "c.csv")])
        assert result.exit_code == 2 and text in result.output, result.output


def test_eager_pytorch_peers_of_the_new_axes_train():
    """The resmlp, tanh and bfloat16 peers of `--setting` train (torch installed)."""
    torch = pytest.importorskip("torch", reason="torch is not installed (`make bench`)")
    small = bench.synthetic_mnist(num_train=200, num_test=100)
    for options in (bench.SETTINGS["resmlp"].torch, bench.SETTINGS["phase"].torch,
                    bench.SETTINGS["bf16"].torch):
        run = bench.time_torch(small, num_models=1, epochs=1, **options)
        assert len(run["epoch_s"]) == 1 and 0 <= run["test_accuracy"][0] <= 1
    assert torch.get_default_dtype() == torch.float32


def test_eager_pytorch_peer_trains():
    pytest.importorskip("torch", reason="torch is not installed, so the eager PyTorch peer "
                        "is untested here; `make bench` installs it and runs this test")
    small = bench.synthetic_mnist(num_train=400, num_test=100)
    run = bench.time_torch(small, num_models=1, epochs=2, hidden=(16,))
    assert len(run["epoch_s"]) == 2 and all(s > 0 for s in run["epoch_s"])
    assert len(run["test_accuracy"]) == 2
    json.dumps(run)


def test_race_phases_split_the_wall_clock_by_hand():
    marks = [["start", 11.0], ["data", 12.0], ["runner", 12.5], ["params", 14.0],
             ["epoch_0", 15.0], ["epoch_1", 19.0], ["epoch_2", 20.0], ["epoch_3", 21.5],
             ["trained", 21.6], ["summary", 22.0], ["figures", 24.0]]
    launch = {"started": 10.1, "cli_imported": 10.3, "returned": 24.5}
    phases = bench.race_phases(10.0, launch, marks, 26.0)
    assert phases == {
        "t_interpreter": 0.1, "t_cli_import": 0.2, "t_jax_setup": 0.7, "t_data": 1.0,
        "t_params": 2.0, "t_epoch_0": 1.0, "t_epoch_1": 4.0, "t_training": 2.5,
        "t_steady_epoch": 1.25, "t_compile_est": 2.75, "t_summary": 0.5, "t_print": 0.0,
        "t_figures": 2.0, "t_write_print": 0.5, "t_exit": 1.5, "t_table_at": 14.5}
    # the phases cover the whole wall clock, none twice
    parts = [v for k, v in phases.items()
             if k not in ("t_steady_epoch", "t_compile_est", "t_table_at")]
    assert sum(parts) == pytest.approx(26.0 - 10.0)
    # a second chunk: the steady state is the first chunk's, training ends at the last epoch
    two = [*marks[:8], ["params", 22.0], ["epoch_0", 22.5], ["epoch_1", 23.0],
                       ["epoch_2", 23.2], ["epoch_3", 23.4], ["summary", 23.5],
                       ["figures", 24.0]]
    phases = bench.race_phases(10.0, launch, two, 26.0)
    assert phases["t_steady_epoch"] == 1.25 and phases["t_training"] == 4.4


def test_race_runs_a_cold_compare_in_its_own_process(tmp_path):
    """`bench --race --no-torch`: the plumbing (launcher, spec.json timings, CSV row)."""
    from typer.testing import CliRunner

    from initbench.cli import app

    csv_path = tmp_path / "bench.csv"
    result = CliRunner().invoke(app, [
        "bench", "--race", "--no-torch", "--race-dataset", "digits", "--race-inits",
        "xavier", "--race-seeds", "1", "--race-epochs", "1", "--csv", str(csv_path)])
    assert result.exit_code == 0, result.output
    with open(csv_path, newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["mode"] == "race" and row["num_models"] == "1" and row["torch_wall_s"] == ""
    phases = [float(row[k]) for k in ("t_interpreter", "t_cli_import", "t_jax_setup", "t_data",
                                      "t_params", "t_epoch_0", "t_epoch_1", "t_training",
                                      "t_summary", "t_print", "t_figures", "t_write_print",
                                      "t_exit")]
    assert all(p >= 0 for p in phases)
    assert sum(phases) == pytest.approx(float(row["initbench_wall_s"]), abs=0.01)
    assert row["t_steady_epoch"] == "" and float(row["compile_events_s"]) > 0
    assert "initbench, wall clock" in result.output
    assert float(row["t_table_at"]) < float(row["initbench_wall_s"]) - float(row["t_exit"])


def test_run_experiment_records_phase_marks_in_spec_json(tmp_path):
    from initbench.experiment import run_experiment
    from initbench.runtime import Runtime
    from initbench.spec import Spec

    spec = Spec(inits=("xavier",), seeds=(0,), dataset="digits", epochs=2, hidden=(8,))
    run_experiment(spec, tmp_path / "run", Runtime(cell_cache=tmp_path / "cells"))
    timings = json.loads((tmp_path / "run" / "spec.json").read_text())["timings"]
    names = [name for name, _ in timings["marks"]]
    assert names == ["start", "data", "runner", "params", "epoch_0", "epoch_1", "epoch_2",
                     "trained", "summary", "figures"]
    times = [t for _, t in timings["marks"]]
    assert times == sorted(times)
    # a cached rerun trains nothing: no runner, no epochs
    run_experiment(spec, tmp_path / "again", Runtime(cell_cache=tmp_path / "cells"))
    again = json.loads((tmp_path / "again" / "spec.json").read_text())["timings"]
    assert [name for name, _ in again["marks"]] == ["start", "data", "trained", "summary",
                                                    "figures"]


def test_race_defaults_agree():
    from initbench.commands import bench as command

    assert command.RACE_INITS == bench.RACE_INITS == bench.RaceConfig().inits


def test_the_readme_race_is_the_last_race_row_of_the_committed_record():
    """The README's "Today's ratio" quotes the last race row of results/bench.csv: its
    revision, both wall clocks (0.1 s) and the speed-up."""
    import csv
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    with open(root / "results/bench.csv", newline="") as handle:
        row = [r for r in csv.DictReader(handle) if r["mode"] == "race"][-1]
    readme = (root / "README.md").read_text()
    quoted = re.search(r"Today's ratio \([^)]*git (\w+);.*?\*\*([\d.]+)x\*\*: initbench "
                       r"([\d.]+) s against eager PyTorch's ([\d.]+) s", readme, re.S)
    assert quoted, "the README's Speed section no longer quotes the race"
    revision, ratio, ours, theirs = quoted.groups()
    assert row["git_revision"].startswith(revision)
    assert float(ratio) == round(float(row["race_speedup"]), 2)
    assert float(ours) == round(float(row["initbench_wall_s"]), 1)
    assert float(theirs) == round(float(row["torch_wall_s"]), 1)
