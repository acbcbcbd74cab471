"""The CLI through Typer's CliRunner: exit codes, key lines, files written."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from cli_helpers import invoke, read_csv

TINY = ["--dataset", "digits", "--epochs", "1", "--hidden", "16", "--seeds", "2"]
CURVE_COLUMNS = {"dataset", "init", "bias_init", "seed", "epoch", "train_loss", "test_loss",
                 "test_accuracy"}






def test_run_writes_curves_summary_and_spec(tmp_path):
    out = tmp_path / "run"
    result = invoke("run", "--init", "xavier", *TINY, "--out", out)
    assert result.exit_code == 0, result.output
    assert "xavier" in result.stdout and "digits" in result.stdout
    rows = read_csv(out / "curves.csv")
    assert set(rows[0]) >= CURVE_COLUMNS
    assert len(rows) == 1 * 2 * 2  # init x seed x (epochs + 1)
    assert {r["dataset"] for r in rows} == {"digits"}
    summary = read_csv(out / "summary.csv")
    assert [r["init"] for r in summary] == ["xavier"]
    spec = json.loads((out / "spec.json").read_text())
    assert spec["spec"]["epochs"] == 1 and spec["versions"]["jax"]
    assert spec["command"][:2] == ["initbench", "run"] and spec["device"]["platform"]


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the rich tables in `text`, as lists of stripped cells."""
    return [[cell.strip() for cell in line.strip().strip("│").split("│")]
            for line in text.splitlines()
            if line.startswith("│") or (" │ " in line and line.split("│")[0].strip().isdigit())]


def test_compare_ranks_and_quiet_prints_only_the_table(tmp_path):
    # normal first on the command line (and alphabetically): xavier must still rank first
    result = invoke("compare", "--inits", "normal,xavier", *TINY, "--out", tmp_path / "c",
                    "--quiet")
    assert result.exit_code == 0, result.output
    assert "epoch" not in result.stdout.split("digits ·")[0]  # no charts before the table
    assert "results written" not in result.output
    summary = read_csv(tmp_path / "c" / "summary.csv")
    means = [float(r["test_accuracy_mean"]) for r in summary]
    assert means[0] > means[1]  # ranked by mean final accuracy, best first
    assert [(r["rank"], r["init"]) for r in summary] == [("1", "xavier"), ("2", "normal")]
    assert [row[:2] for row in table_rows(result.stdout)] == [["1", "xavier"], ["2", "normal"]]


def test_json_prints_one_document(tmp_path):
    result = invoke("compare", "--inits", "xavier,he_normal", *TINY, "--out", tmp_path / "j",
                    "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["dataset"] == "digits"
    assert {row["init"] for row in document["summary"]} == {"xavier", "he_normal"}


def test_rerun_reuses_cached_cells(tmp_path):
    assert invoke("run", "--init", "xavier", *TINY, "--out", tmp_path / "a").exit_code == 0
    again = invoke("run", "--init", "xavier", *TINY, "--out", tmp_path / "b")
    assert again.exit_code == 0
    meta = json.loads((tmp_path / "b" / "spec.json").read_text())
    assert meta["cells_trained"] == 0 and meta["cells_cached"] == 2
    assert (tmp_path / "a" / "curves.csv").read_text() == (tmp_path / "b" / "curves.csv").read_text()


def test_default_dataset_falls_back_visibly(tmp_path):
    out = tmp_path / "fallback"
    result = invoke("run", "--epochs", "1", "--hidden", "8", "--seeds", "1", "--out", out)
    assert result.exit_code == 0, result.output
    notices = [line for line in result.stderr.splitlines() if "using embedded mnist-5k" in line]
    assert len(notices) == 1 and notices[0].startswith("note:")  # said once, at the start
    assert "mnist-5k" in result.stdout.splitlines()[0]  # and the table's title names it
    assert "using embedded" not in result.stdout
    assert {r["dataset"] for r in read_csv(out / "curves.csv")} == {"mnist-5k"}


@pytest.mark.parametrize("args, message", [
    (["run", "--init", "xavir"], "Did you mean 'xavier'"),
    (["compare", "--inits", "xavier,hee_normal"], "Did you mean 'he_normal'"),
    (["run", "--dataset", "mnist5k"], "Did you mean 'mnist-5k'"),
    (["run", "--optimizer", "adamm"], "Did you mean 'adam'"),
    (["run", "--epochs", "0"], "--epochs"),
    (["run", "--epochs", "abc"], "--epochs"),
    (["run", "--lr", "0"], "--lr"),
    (["run", "--lr", "-0.1"], "--lr"),
    (["run", "--batch-size", "5000", "--dataset", "digits"], "larger than the training set"),
    (["run", "--hidden", "-5"], "--hidden"),
    (["run", "--hidden", "256,,256"], "--hidden"),
    (["compare", "--inits", "xavier,,normal"], "malformed"),
    (["run", "--seeds", "a,b"], "--seeds"),
    (["run", "--seeds", "1.5"], "--seeds"),
    (["compare", "--baseline", "orthogonal", "--inits", "xavier,normal"], "--baseline"),
    (["run", "--dataset", "mnist"], "initbench data import"),
    (["data", "import", "/nonexistent/idx"], "nonexistent"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    out = tmp_path / "never"
    result = invoke(*args, "--out", out) if args[0] != "data" else invoke(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()  # nothing written


def test_offline_mnist_names_both_ways_out(tmp_path):
    result = invoke("run", "--dataset", "mnist", "--out", tmp_path / "x")
    assert result.exit_code == 2
    assert "initbench data import" in result.stderr and "mnist-5k" in result.stderr


def test_unwritable_out_fails_before_training(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    result = invoke("run", *TINY, "--out", blocker / "sub")
    assert result.exit_code == 2 and "not a folder" in result.stderr
    assert blocker.read_text() == "not a folder"


def test_out_with_other_settings_is_not_overwritten(tmp_path):
    out = tmp_path / "kept"
    assert invoke("run", *TINY, "--out", out).exit_code == 0
    before = (out / "curves.csv").read_text()
    result = invoke("run", *TINY, "--lr", "0.5", "--out", out)
    assert result.exit_code == 2 and "different settings" in result.stderr
    assert (out / "curves.csv").read_text() == before


def test_inits_lists_every_initializer_with_its_std():
    result = invoke("inits")
    assert result.exit_code == 0
    for name in ("glorot_uniform", "he_normal", "orthogonal", "torch_default", "normal", "lsuv"):
        assert name in result.stdout
    assert "0.0439" in result.stdout  # glorot_uniform on 784x256: sqrt(2/1040)
    flat = " ".join(result.stdout.replace("│", " ").split())  # cells wrap over lines
    assert "reshaped from [in·k², out]" in flat  # a formula's brackets are text, not markup


def write_tiny_mnist_idx(directory):
    """Four valid MNIST IDX files with 20 training and 10 test images."""
    directory.mkdir()
    rng = np.random.default_rng(0)
    for prefix, num in (("train", 20), ("t10k", 10)):
        for kind, magic, shape in (("images", 2051, (num, 28, 28)), ("labels", 2049, (num,))):
            array = rng.integers(0, 10 if kind == "labels" else 256, shape, dtype=np.uint8)
            header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in shape)
            suffix = "idx3-ubyte" if kind == "images" else "idx1-ubyte"
            (directory / f"{prefix}-{kind}-{suffix}").write_bytes(header + array.tobytes())


def test_datasets_lists_offline_availability(tmp_path):
    def offline_now():
        result = invoke("datasets")
        assert result.exit_code == 0, result.output
        return {row[0]: row[6] for row in table_rows(result.stdout)}

    available = offline_now()
    assert available["mnist-5k"] == available["digits"] == "yes"  # embedded
    for name in ("mnist", "fashion_mnist", "kmnist", "cifar10"):  # empty TFDS dir, no network
        assert available[name] == "no", name
    write_tiny_mnist_idx(tmp_path / "idx")
    assert invoke("data", "import", tmp_path / "idx").exit_code == 0
    available = offline_now()
    assert available["mnist"] == "yes" and available["fashion_mnist"] == "no"


def test_every_training_option_reaches_the_spec(tmp_path):
    """Each training option of the CLI lands in its Spec field (spec.json records it)."""
    out = tmp_path / "all"
    result = invoke("run", "--init", "lsuv", "--seeds", "3,5", "--dataset", "digits",
                    "--epochs", "1", "--batch-size", "50", "--lr", "0.003", "--optimizer", "sgd",
                    "--hidden", "8,8", "--activation", "tanh", "--bias-init", "normal",
                    "--gain", "1.5", "--lsuv-tol", "0.05",
                    "--lsuv-max-iter", "3", "--track-layers", "--data-seeds", "2",
                    "--val-fraction", "0.2", "--model", "mlp", "--out", out)
    assert result.exit_code == 0, result.output
    recorded = json.loads((out / "spec.json").read_text())["spec"]
    assert recorded == {
        "inits": ["lsuv(gain=1.5)"],  # --gain is written into the label it changes
        "seeds": [3, 5], "dataset": "digits", "epochs": 1, "batch_size": 50,
        "lr": 0.003, "optimizer": "sgd", "hidden": [8, 8], "activation": "tanh",
        "bias_init": "normal", "gain": None, "mode": None, "lsuv_tol": 0.05,
        "lsuv_max_iter": 3, "track_layers": True, "data_seeds": 2,
        "precision": None, "max_seeds": None,  # --seeds auto only (tests/test_seeds_auto_plan_and_pairs.py)
        "val_fraction": 0.2, "model": "mlp",  # other models: tests/test_networks.py
    }
    assert (out / "layers.csv").exists()


def test_gain_and_mode_change_the_cells_and_are_not_served_from_the_cache(tmp_path):
    """--gain and --mode reach the drawn kernels: each retrains (no cached cell of another
    setting is reused) and starts from another loss than the default he_normal."""
    def epoch0_loss(*extra):
        out = tmp_path / "-".join(["he", *extra]).replace("--", "")
        result = invoke("run", "--init", "he_normal", *TINY, *extra, "--out", out)
        assert result.exit_code == 0, result.output
        meta = json.loads((out / "spec.json").read_text())
        assert (meta["cells_trained"], meta["cells_cached"]) == (2, 0), extra
        return [r["test_loss"] for r in read_csv(out / "curves.csv") if r["epoch"] == "0"]

    default = epoch0_loss()
    gained, fan_out = epoch0_loss("--gain", "3"), epoch0_loss("--mode", "fan_out")
    assert gained != default and fan_out != default and gained != fan_out


def test_the_console_script_exits_with_the_commands_code_and_all_its_output(tmp_path):
    """`main` ends the process with os._exit (no interpreter teardown): the exit code, the
    error line and a training run's whole output and folder must survive that."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as usual
    env["INITBENCH_CACHE"] = str(tmp_path / "c")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "initbench", *args], capture_output=True,
                              text=True, timeout=240, env=env)

    bad = cli("compare", "--seeds", "x")
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1
    out = tmp_path / "run"
    good = cli("compare", *TINY, "--inits", "xavier,normal", "--out", str(out))
    assert good.returncode == 0, good.stderr
    assert "baseline" in good.stdout and good.stdout.endswith("\n")
    assert "results written to" in good.stderr
    assert {"curves.csv", "summary.csv", "spec.json", "curves.png"} <= {p.name for p in out.iterdir()}
    report = cli("report", str(out), "--json")  # plain print(): block-buffered into a pipe
    assert report.returncode == 0 and json.loads(report.stdout)


def test_python_dash_m_and_fast_help():
    done = subprocess.run([sys.executable, "-m", "initbench", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "compare" in done.stdout
    imported = subprocess.run(
        [sys.executable, "-c", "import sys, initbench.cli; "
         "print(any(m in sys.modules for m in ('jax', 'tensorflow', 'matplotlib')))"],
        capture_output=True, text=True, timeout=60)
    assert imported.stdout.strip() == "False"


def test_typed_options_read_only_declared_options():
    """Every field of a command's typed options value is an option declared once in
    `commands.options`: a misspelt field cannot silently keep its default."""
    import dataclasses

    from initbench.commands import options as o

    declared = {opt.name for opt in vars(o).values() if isinstance(opt, o.Opt)}
    for part in (o.Output, o.Cluster, o.Family):
        assert {f.name for f in dataclasses.fields(part)} <= declared, part
