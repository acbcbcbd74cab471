"""README promises about run folders, through the CLI with tiny runs: spec.json's training
key and what a rewritten folder keeps."""

import json

from cli_helpers import invoke

from initbench import runfolder

TINY = ["--dataset", "digits", "--hidden", "16", "--epochs", "1"]




def test_spec_json_records_the_true_training_key_under_data_seeds(tmp_path):
    """Re-running the identical --data-seeds command into its own folder is accepted, and
    spec.json's training_key is the run's (not its K = 1 cells')."""
    out = tmp_path / "run"
    command = ["compare", *TINY, "--inits", "xavier,he_normal", "--seeds", "3",
               "--data-seeds", "2", "--out", out]
    first = invoke(*command)
    assert first.exit_code == 0, first.output
    document = json.loads((out / "spec.json").read_text())
    spec = runfolder.read_run(out).spec
    assert spec.data_seeds == 2
    assert document["training_key"] == spec.training_key()
    assert document["training_key"] != spec.replace(data_seeds=1).training_key()
    # spec.json: every setting, the training key, the command line, versions, device, git.
    assert {"spec", "training_key", "command", "versions", "device",
            "git_revision"} <= set(document)
    assert document["command"][:2] == ["initbench", "compare"]
    # curves.csv: the README's columns in its order, data_seed after seed;
    # 2 inits x 3 seeds x 2 orders x 2 epochs.
    lines = (out / "curves.csv").read_text().splitlines()
    assert lines[0].split(",") == ["dataset", "init", "bias_init", "lr", "seed", "data_seed",
                                   "epoch", "train_loss", "test_loss", "test_accuracy",
                                   "diverged"]
    assert len(lines) - 1 == 2 * 3 * 2 * 2
    again = invoke(*command)
    assert again.exit_code == 0, again.output


def test_rewriting_with_pairs_baseline_leaves_no_stale_pairs_files(tmp_path):
    out = tmp_path / "run"
    command = ["compare", *TINY, "--inits", "xavier,he_normal,lecun_normal", "--seeds", "3",
               "--out", out]
    first = invoke(*command, "--pairs", "all")
    assert first.exit_code == 0, first.output
    assert (out / "pairs.csv").is_file() and (out / "pairs.png").is_file()
    (out / "notes.txt").write_text("mine")  # a file the user added is kept
    again = invoke(*command, "--pairs", "baseline")
    assert again.exit_code == 0, again.output
    assert not (out / "pairs.csv").exists()
    assert not (out / "pairs.png").exists()
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "summary.csv").is_file()


def test_curves_csv_puts_validation_metrics_before_diverged():
    from initbench.spec import Spec

    spec = Spec(dataset="digits", hidden=(4,), lr=(0.01, 0.1))  # several rates: a split
    assert spec.val_fraction == 0.1
    assert runfolder.curve_columns(spec) == (
        "dataset", "init", "bias_init", "lr", "seed", "epoch", "train_loss", "test_loss",
        "test_accuracy", "val_loss", "val_accuracy", "diverged")
