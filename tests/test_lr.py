"""An initializer x learning-rate x seed grid with verdicts at each initializer's
own best rate, chosen on a validation split."""

import json

import numpy as np
import pytest
from cli_helpers import invoke, read_csv

from initbench import results, runfolder, summary
from initbench.spec import Spec

TINY = ["--dataset", "digits", "--epochs", "2", "--hidden", "8", "--seeds", "3"]






def test_single_rate_keys_and_spec_json_are_unchanged():
    # Pinned before --lr lists existed: one rate without a split keeps every cached cell.
    assert Spec().training_key() == "d614a923579012c2"
    assert Spec(lr=0.01).lr == (0.01,)
    assert Spec().to_dict()["lr"] == 0.01 and "val_fraction" not in Spec().to_dict()
    assert Spec(val_fraction=0.1).training_key() != Spec().training_key()
    several = Spec(lr=(0.001, 0.01))
    assert several.val_fraction == 0.1  # several rates: a validation split by default
    assert Spec.from_dict(json.loads(json.dumps(several.to_dict()))) == several
    assert Spec.from_dict({"lr": 0.03}).lr == (0.03,)  # an old spec.json


@pytest.mark.parametrize("text, expected", [
    ("0.01", (0.01,)), ("1e-3, 0.01", (0.001, 0.01)),
    ("1e-4:1e-1:4", (1e-4, 1e-3, 1e-2, 1e-1)),
])
def test_lr_lists_parse(text, expected):
    from initbench.spec import parse_lrs

    assert parse_lrs(text) == pytest.approx(expected)


@pytest.mark.parametrize("bad, says", [
    ("0.01,0.01", "twice"), ("0.01,0", "positive"), ("0.01,-1", "positive"),
    ("0.01,abc", "positive number"), ("0.01,", "malformed"), ("nan", "positive"),
    ("1e-1:1e-4:3", "range"), ("1:2", "range"), ("1e-40", "float32"),
])
def test_bad_lr_lists_are_one_error_line(bad, says):
    result = invoke("compare", *TINY, "--inits", "xavier", "--lr", bad)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], result.output


@pytest.mark.parametrize("bad", ["0", "1", "-0.1", "1.5"])
def test_bad_val_fraction_is_one_error_line(bad):
    result = invoke("run", *TINY, "--val-fraction", bad)
    assert result.exit_code == 2 and result.output.startswith("error:")
    assert len(result.output.strip().splitlines()) == 1


def test_choice_uses_validation_not_test():
    # Two rates; on test the first looks best, on validation the second: the second wins.
    val = np.array([[[0.80, 0.82, 0.81], [0.90, 0.91, 0.89]]])    # [init, lr, seed]
    test = np.array([[[0.95, 0.96, 0.94], [0.85, 0.86, 0.84]]])
    assert summary.choose_lrs(val) == [1]
    assert summary.choose_lrs(test) == [0]  # what choosing on test would (wrongly) give
    metrics = {m: np.zeros((1, 2, 3, 2)) for m in (*results.METRICS, *results.VAL_METRICS)}
    metrics["val_accuracy"][..., -1], metrics["test_accuracy"][..., -1] = val, test
    run = results.RunResult(Spec(inits=("xavier",), lr=(0.001, 0.01)), metrics)
    tuned, rates = summary.tuned_result(run)
    assert rates == [0.01]
    np.testing.assert_array_equal(tuned.metrics["test_accuracy"][0, :, -1], test[0, 1])


def test_diverged_cells_count_against_their_rate_and_an_all_diverged_rate_is_never_chosen():
    nan = np.nan
    val = np.array([
        [[nan, nan, nan], [0.50, 0.50, 0.50]],   # every seed diverged at rate 0: never chosen
        [[0.99, nan, nan], [0.60, 0.60, 0.60]],  # one lucky survivor does not win its rate
        [[nan, nan, nan], [nan, nan, nan]],      # nothing trained: no rate at all
    ])
    assert summary.choose_lrs(val) == [1, 1, None]
    assert np.isneginf(summary.lr_scores(val)[0, 0])


def test_multi_rate_cells_equal_single_runs_bitwise(tmp_path):
    from initbench import experiment
    from initbench.runtime import Runtime

    runtime = Runtime.from_environment().replace(use_cache=False)
    grid = Spec(inits=("xavier", "normal"), seeds=(0, 1), dataset="digits", epochs=2,
                hidden=(8,), lr=(0.003, 0.03, 0.3))
    multi = experiment.run_experiment(grid, tmp_path / "grid", runtime).result
    assert multi.metrics["test_loss"].shape == (2, 3, 2, 3)
    for lr in (0.03, 0.3):
        alone = experiment.run_experiment(
            Spec(inits=("normal",), seeds=(1,), dataset="digits", epochs=2, hidden=(8,),
                 lr=lr, val_fraction=0.1), tmp_path / f"alone-{lr}", runtime).result
        for name in (*results.METRICS, *results.VAL_METRICS):
            np.testing.assert_array_equal(multi.metrics[name][1, grid.lr.index(lr), 1],
                                          alone.metrics[name][0, 0], err_msg=name)


def test_compare_with_rates_end_to_end(tmp_path):
    out = tmp_path / "run"
    result = invoke("compare", *TINY, "--inits", "xavier,normal", "--lr", "0.001,0.01,0.1",
                    "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert {"tuned.csv", "lr.png", "curves.png", "summary.csv"} <= {p.name for p in out.iterdir()}
    curves = read_csv(out / "curves.csv")
    assert {"lr", "val_loss", "val_accuracy"} <= set(curves[0])
    assert len(read_csv(out / "summary.csv")) == 2 * 3  # one row per (init, lr)
    tuned = read_csv(out / "tuned.csv")
    for row in tuned:  # best_lr is the argmax of the mean final validation accuracy
        final = {}
        for c in curves:
            if c["init"] == row["init"] and c["epoch"] == "2":
                final.setdefault(float(c["lr"]), []).append(float(c["val_accuracy"]))
        assert float(row["best_lr"]) == max(final, key=lambda lr: np.mean(final[lr]))
    assert "best" in result.output  # the tuned table's chosen-rate column
    # report re-renders it from disk; export and plot too
    again = invoke("report", out)
    assert again.exit_code == 0, again.output
    assert "at lr 0.01" in again.output and "best" in again.output
    exported = invoke("export", out, "--format", "csv")
    assert exported.exit_code == 0 and "xavier" in exported.output
    # export --format json is report --json's document: the per-rate rows included
    reported = json.loads(invoke("report", out, "--json").stdout)
    document = json.loads(invoke("export", out, "--format", "json").stdout)
    assert document == reported
    assert len(document["per_rate"]) == 2 * 3
    assert {(row["init"], row["lr"]) for row in document["per_rate"]} == {
        (row["init"], float(row["lr"])) for row in read_csv(out / "summary.csv")}


def test_old_folders_without_lr_column_still_load(tmp_path):
    out = tmp_path / "run"
    assert invoke("run", *TINY, "--out", out, "--quiet").exit_code == 0
    rows = read_csv(out / "curves.csv")
    columns = [c for c in rows[0] if c != "lr"]
    (out / "curves.csv").write_text(runfolder.csv_text(rows, columns))
    before = runfolder.read_run(out)
    assert before.metrics["test_loss"].shape == (1, 3, 3)
    assert invoke("report", out).exit_code == 0
