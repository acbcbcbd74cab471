"""`--data-seeds K` crosses weight seeds with data orders."""

import json

import numpy as np
import pytest
from cli_helpers import invoke, read_csv

from initbench import merges, model, results, runfolder, stats, train
from initbench.errors import InitbenchError
from initbench.spec import Spec

TINY = ["--dataset", "digits", "--epochs", "2", "--hidden", "8", "--inits", "xavier,he_normal"]






def test_default_training_keys_are_pinned():
    # Values computed before --data-seeds existed: K = 1 must keep every cached cell valid.
    assert Spec().training_key() == "d614a923579012c2"
    assert Spec(dataset="digits", hidden=(16,), epochs=2).training_key() == "b02051437ec2db11"
    assert Spec(data_seeds=1).training_key() == "d614a923579012c2"
    assert Spec(data_seeds=2).training_key() != Spec().training_key()
    assert "data_seeds" not in Spec().to_dict()  # a default spec.json is unchanged too
    assert Spec.from_dict(Spec(data_seeds=3).to_dict()).data_seeds == 3


@pytest.mark.parametrize("bad", [0, -1])
def test_data_seeds_below_one_is_one_error_line(bad):
    result = invoke("compare", *TINY, "--seeds", "2", "--data-seeds", bad)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: --data-seeds must be a positive integer, got {bad}."]


def test_data_order_keys_never_depend_on_the_initializer():
    assert np.array_equal(model.jax.random.key_data(model.data_order_key(3, 0)),
                          model.jax.random.key_data(model.data_key(3)))
    keys = np.asarray(model.jax.random.key_data(train.data_keys(
        [("xavier", 3), ("xavier", 3, 0), ("he_normal", 3, 0), ("xavier", 3, 1),
         ("he_normal", 3, 1), ("orthogonal", 3, 1), ("xavier", 3, 2), ("xavier", 4, 1)])))
    assert np.array_equal(keys[0], keys[1]) and np.array_equal(keys[1], keys[2])
    assert np.array_equal(keys[3], keys[4]) and np.array_equal(keys[4], keys[5])
    assert len({k.tobytes() for k in keys[[0, 3, 6, 7]]}) == 4  # orders differ


def test_data_seeds_cross_weights_and_orders_and_keep_the_default_cells(tmp_path):
    plain, one, crossed = tmp_path / "plain", tmp_path / "one", tmp_path / "crossed"
    assert invoke("compare", *TINY, "--seeds", "2", "--out", plain, "--quiet").exit_code == 0
    result = invoke("compare", *TINY, "--seeds", "2", "--data-seeds", "1", "--no-cache",
                    "--out", one, "--quiet")
    assert result.exit_code == 0, result.output
    # (a) K = 1 is the run without the option, byte for byte (retrained, not cached).
    assert (one / "curves.csv").read_bytes() == (plain / "curves.csv").read_bytes()
    assert json.loads((one / "spec.json").read_text())["training_key"] == json.loads(
        (plain / "spec.json").read_text())["training_key"]

    result = invoke("compare", *TINY, "--seeds", "2", "--data-seeds", "2", "--no-cache",
                    "--out", crossed, "--quiet")
    assert result.exit_code == 0, result.output
    assert "2 seeds × 2 data orders" in result.stdout
    rows = read_csv(crossed / "curves.csv")
    assert list(rows[0])[:7] == ["dataset", "init", "bias_init", "lr", "seed", "data_seed",
                                 "epoch"]
    cells = {}
    for row in rows:
        key = (row["init"], int(row["seed"]), int(row["data_seed"]))
        cells.setdefault(key, []).append([row[m] for m in results.METRICS])
    assert len(cells) == 2 * 2 * 2
    old = {}
    for row in read_csv(plain / "curves.csv"):
        old.setdefault((row["init"], int(row["seed"])), []).append(
            [row[m] for m in results.METRICS])
    for init in ("xavier", "he_normal"):
        for seed in (0, 1):
            # (b) data order 0 is the cell of a run without it, bitwise; order 1 has the same weights
            # (epoch 0 equal) and another minibatch order (later epochs differ).
            assert cells[(init, seed, 0)] == old[(init, seed)]
            first, second = cells[(init, seed, 0)], cells[(init, seed, 1)]
            assert first[0] == second[0]
            assert first[1:] != second[1:]

    # (c) the shares are in summary.csv and sum to 1 where defined; absent for K = 1.
    summary_rows = read_csv(crossed / "summary.csv")
    for row in summary_rows:
        shares = [float(row[f"var_share_{p}"]) for p in ("weights", "data", "residual")]
        if all(np.isfinite(shares)):
            assert sum(shares) == pytest.approx(1.0)
            assert all(0 <= v <= 1 for v in shares)
        assert row["seeds"] == "2"  # weight seeds: the independent units
    final = {init: np.array([[float(cells[(init, s, d)][-1][2]) for d in (0, 1)]
                             for s in (0, 1)]) for init in ("xavier", "he_normal")}
    for row in summary_rows:
        parts = stats.variance_components(final[row["init"]])
        assert float(row["var_share_weights"]) == pytest.approx(parts.weight_share, nan_ok=True)
    assert {row["var_share_weights"] for row in read_csv(plain / "summary.csv")} == {""}

    # The run folder reads back (report), and the crossed cells now come from the cache.
    shown = invoke("report", crossed, "--quiet")
    assert shown.exit_code == 0, shown.output
    assert "weights/data order/rest" in shown.stdout
    loaded = runfolder.read_run(crossed)
    assert loaded.metrics["test_accuracy"].shape == (2, 4, 3)
    again = invoke("compare", *TINY, "--seeds", "2", "--data-seeds", "2",
                   "--out", tmp_path / "again", "--json")
    assert json.loads(again.stdout)["meta"]["cells_cached"] == 8
    assert (tmp_path / "again" / "curves.csv").read_bytes() == (
        crossed / "curves.csv").read_bytes()
    with pytest.raises(InitbenchError, match="data orders"):
        merges.merge_runs([loaded, runfolder.read_run(plain)])


def test_statistics_use_weight_seeds_as_units():
    """Under --data-seeds the data orders of a weight seed are averaged before any CI or
    paired test, so correlated slots never count as independent seeds."""
    from initbench import summary
    from initbench.results import RunResult

    spec = Spec(inits=("xavier", "normal"), seeds=(0, 1, 2), dataset="digits", epochs=1,
                hidden=(4,), data_seeds=2)
    acc = np.array([[0.90, 0.80, 0.70, np.nan, 0.60, 0.62],
                    [0.50, 0.52, 0.40, 0.44, 0.30, 0.36]])
    np.testing.assert_allclose(summary.seed_units(RunResult(spec, {}), acc),
                               [[0.85, 0.70, 0.61], [0.51, 0.42, 0.33]])
    curves = np.stack([np.full_like(acc, 0.1), acc], axis=-1)  # epochs 0 and 1
    loss = np.where(np.isfinite(curves), 1 - curves, np.nan)
    result = RunResult(spec, {"train_loss": loss, "test_loss": loss, "test_accuracy": curves})
    rows = {row.init: row for row in summary.summarize_run(result)}
    normal = rows["normal"]
    assert normal.seeds == 3
    diffs = np.array([0.51 - 0.85, 0.42 - 0.70, 0.33 - 0.61])
    assert normal.versus.accuracy.mean_diff == pytest.approx(diffs.mean())
    assert normal.versus.pair.diff_sd == pytest.approx(diffs.std(ddof=1))
    assert rows["xavier"].divergence.rate == pytest.approx(1 / 6)  # slots diverge, not seeds
