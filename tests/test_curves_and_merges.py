"""Row-level promises of the run files and of merges, with designs where a wrong index gives
a different answer: a cell that diverges mid-run, every pair Holm-corrected together, runs
that list their initializers in different orders."""

from __future__ import annotations

import numpy as np
import pytest

from initbench import merges, runfolder, summary
from initbench.results import RunResult
from initbench.spec import Spec


def _run(acc: np.ndarray, inits, seeds) -> RunResult:
    """A run whose accuracy curves are `acc[init, seed, epoch]` (loss = 1 - accuracy)."""
    acc = np.asarray(acc, float)
    spec = Spec(inits=tuple(inits), seeds=tuple(seeds), dataset="digits",
                epochs=acc.shape[2] - 1, hidden=(8,))
    return RunResult(spec, {"test_accuracy": acc, "test_loss": 1 - acc, "train_loss": 1 - acc}, {})


def test_curves_csv_flags_a_diverged_cell_from_its_first_bad_epoch_on():
    acc = np.full((2, 2, 5), 0.5)
    acc[1, 0, 2:] = np.nan  # normal, seed 0 diverges at epoch 2
    rows = runfolder.curve_rows(_run(acc, ["xavier", "normal"], [0, 1]))
    flags = [int(r["diverged"]) for r in rows if r["init"] == "normal" and int(r["seed"]) == 0]
    assert flags == [0, 0, 1, 1, 1]
    assert all(int(r["diverged"]) == 0 for r in rows
               if not (r["init"] == "normal" and int(r["seed"]) == 0))


def test_pairs_all_corrects_every_row_over_every_pair():
    """With --pairs all, summary.csv's Holm p-values and verdicts are those of the whole
    family of k(k-1)/2 pairs, the same as pairs.csv's, not of the k-1 baseline pairs."""
    rng = np.random.default_rng(4)
    final = 0.9 + np.array([[0.0], [0.004], [0.008]]) + 0.006 * rng.standard_normal((3, 6))
    acc = np.repeat(final[:, :, None], 2, axis=2)
    run = _run(acc, ["xavier", "he_normal", "normal"], range(6))
    rows = {row.init: row for row in summary.summarize_run(run, pairs="all")}
    family = summary.compare_family(run, "xavier", "all")
    assert len(family) == 3
    for pair in family:
        if "xavier" in (pair.a, pair.b):
            other = pair.b if pair.a == "xavier" else pair.a
            assert rows[other].versus.pair.p_value_holm == pytest.approx(pair.p_value_holm, rel=1e-12)
    baseline_only = summary.compare_family(run, "xavier", "baseline")
    assert any(rows[pair.b if pair.a == "xavier" else pair.a].versus.pair.p_value_holm
               != pytest.approx(pair.p_value_holm, rel=1e-9) for pair in baseline_only)


def test_a_merge_takes_each_initializers_own_cells_whatever_the_order():
    """`report A B` where B lists the initializers the other way round: each initializer's
    seeds come from its own cells in both runs."""
    a = np.stack([np.full((2, 3), 0.1), np.full((2, 3), 0.2)])   # xavier 0.1, normal 0.2
    b = np.stack([np.full((2, 3), 0.2), np.full((2, 3), 0.1)])   # normal 0.2, xavier 0.1
    run_a = _run(a, ["xavier", "normal"], [0, 1])
    run_b = _run(b, ["normal", "xavier"], [2, 3])
    merged = merges.merge_runs([run_a, run_b])
    acc = merged.metrics["test_accuracy"]
    for name, value in (("xavier", 0.1), ("normal", 0.2)):
        assert np.all(acc[merged.inits.index(name)] == value), name
