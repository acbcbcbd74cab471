"""The cell cache and `safeio.write_atomic`: files appear whole or not at all; run folders
round-trip every number; paired verdicts point the right way for accuracy (higher is
better) and loss (lower is better). Whole run folders appearing at once (`write_run` over
`safeio.write_folder`) are tests/test_faults.py's."""

from __future__ import annotations

import os

import numpy as np
import pytest

from initbench import cellcache, results, runfolder, safeio, stats, summary
from initbench.errors import InitbenchError
from initbench.results import RunResult
from initbench.spec import Spec

SPEC = Spec(inits=("xavier", "he_normal", "normal"),
            seeds=(0, 1, 2, 3), dataset="digits", epochs=1, hidden=(4,))


def hand_made_result() -> RunResult:
    """xavier is the baseline; he_normal is 5 points better and its loss 0.2 lower on every
    seed (with some spread), normal 5 points worse and its loss 0.2 higher."""
    base = np.array([0.90, 0.91, 0.92, 0.93])
    noise = np.array([0.001, -0.002, 0.0015, 0.0])
    final_acc = np.stack([base, base + 0.05 + noise, base - 0.05 + noise])
    final_loss = np.stack([1 - base, 1 - base - 0.2 + noise, 1 - base + 0.2 + noise])
    acc = np.stack([np.full_like(final_acc, 0.1), final_acc], axis=-1)
    loss = np.stack([np.full_like(final_loss, 2.3), final_loss], axis=-1)
    return RunResult(SPEC, {"train_loss": loss, "test_loss": loss, "test_accuracy": acc})


def test_verdicts_point_the_right_way_for_accuracy_and_loss():
    rows = {row.init: row for row in summary.summarize_run(hand_made_result())}
    assert rows["xavier"].verdict == rows["xavier"].loss_verdict == "baseline"
    good, bad = rows["he_normal"], rows["normal"]
    assert (good.verdict, good.loss_verdict) == ("better", "better")
    assert (bad.verdict, bad.loss_verdict) == ("worse", "worse")
    assert good.versus.accuracy.mean_diff == pytest.approx(0.05 + 0.000125)
    assert good.versus.loss.mean_diff == pytest.approx(-0.2 + 0.000125)
    assert good.versus.pair.diff_ci_low > 0 and bad.versus.pair.diff_ci_high < 0
    assert good.versus.loss.ci_high < 0 and bad.versus.loss.ci_low > 0
    assert (good.versus.accuracy.p_better, bad.versus.accuracy.p_better) == (1.0, 0.0)
    assert [rows[i].rank for i in ("he_normal", "xavier", "normal")] == [1, 2, 3]


def test_baseline_choice_flips_the_verdicts():
    rows = {row.init: row for row in summary.summarize_run(hand_made_result(), "normal")}
    assert rows["normal"].verdict == "baseline"
    assert rows["xavier"].family.baseline == "normal"
    assert (rows["xavier"].verdict, rows["xavier"].loss_verdict) == ("better", "better")
    assert rows["xavier"].versus.accuracy.mean_diff == pytest.approx(0.05 - 0.000125)


def test_verdicts_point_the_right_way_when_every_pair_is_compared():
    """--pairs all compares (xavier, he_normal) as xavier - he_normal: the baseline's row
    order is turned round, so he_normal's row still says better and normal's worse."""
    rows = {row.init: row for row in summary.summarize_run(hand_made_result(), pairs="all")}
    assert (rows["he_normal"].verdict, rows["normal"].verdict) == ("better", "worse")
    assert rows["he_normal"].versus.pair.d_z > 0 > rows["normal"].versus.pair.d_z
    assert rows["he_normal"].versus.pair.d_z_ci_low > 0 and rows["normal"].versus.pair.d_z_ci_high < 0


def test_verdicts_read_the_holm_corrected_p_value():
    """he_normal's paired t test alone gives p = 0.025 ("better" at 5%), but it is one of
    three comparisons with the baseline: Holm makes it 3 x 0.025 = 0.076, no clear
    difference. The raw p-value is still reported beside the corrected one."""
    import scipy.stats

    base = np.linspace(0.90, 0.93, 8)
    diffs = {"he_normal": np.array([0.02, 0.0, 0.015, 0.005, 0.01, 0.025, -0.005, 0.01]),
             "normal": np.array([0.01, -0.01, 0.005, -0.005, 0.0, 0.002, -0.003, 0.001])}
    diffs["orthogonal"] = -0.5 * diffs["normal"][::-1] + 0.0005
    inits = ("xavier", *diffs)
    final = np.stack([base, *(base + d for d in diffs.values())])
    acc = np.stack([np.full_like(final, 0.1), final], axis=-1)
    spec = Spec(inits=inits, seeds=tuple(range(8)), dataset="digits", epochs=1, hidden=(4,))
    result = RunResult(spec, {"train_loss": 1 - acc, "test_loss": 1 - acc, "test_accuracy": acc})
    rows = {row.init: row for row in summary.summarize_run(result)}
    raw = scipy.stats.ttest_1samp(diffs["he_normal"], 0.0).pvalue
    assert rows["he_normal"].versus.pair.p_value == pytest.approx(raw) and raw < 0.05
    assert rows["he_normal"].versus.pair.p_value_holm == pytest.approx(3 * raw)
    assert rows["he_normal"].verdict == "no clear difference"
    assert stats.t_ci(diffs["he_normal"])[0] > 0  # its own 95% CI alone excludes 0 ...
    # ... but the interval shown is the one Holm's step tested (1 - 5%/3), and crosses 0.
    assert rows["he_normal"].versus.pair.holm_divisor == 3
    assert rows["he_normal"].versus.pair.diff_ci_low < 0 < rows["he_normal"].versus.pair.diff_ci_high


# ------------------------------------------------------------------ atomic writes


def test_write_atomic_writes_whole_files_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "out.csv"
    safeio.write_atomic(path, "a,b\n1,2\n")
    safeio.write_atomic(path, "c\n")
    safeio.write_atomic(tmp_path / "blob.npz", b"\x00\x01")
    assert path.read_text() == "c\n" and (tmp_path / "blob.npz").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["blob.npz", "out.csv", "sub"]


def test_a_failure_mid_write_keeps_the_old_bytes_and_no_temporary(tmp_path):
    path = tmp_path / "summary.csv"
    path.write_bytes(b"old,bytes\n")
    with pytest.raises(UnicodeEncodeError):  # fails while writing, after the file was opened
        safeio.write_atomic(path, "new,text\n" * 1000 + "\ud800")
    assert path.read_bytes() == b"old,bytes\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]


def test_a_failed_rename_keeps_the_old_bytes_and_no_temporary(tmp_path, monkeypatch):
    """The data goes to a temporary file in the same folder (a rename is atomic only within
    one file system), and only the rename makes it visible."""
    path = tmp_path / "spec.json"
    path.write_text("{}")
    renamed = []

    def failing_replace(src, dst):
        renamed.append((os.path.dirname(src), os.path.basename(src), dst))
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        safeio.write_atomic(path, '{"new": 1}')
    assert path.read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["spec.json"]
    ((folder, name, dst),) = renamed
    assert folder == str(tmp_path) and name != "spec.json" and str(dst) == str(path)


def test_write_atomic_is_what_the_cache_and_run_folders_write_with():
    assert cellcache.write_atomic is safeio.write_atomic
    assert runfolder.write_atomic is safeio.write_atomic


def test_a_cached_cell_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    """A cached cell (and a checkpoint) is written only through a temporary file: when the
    rename fails, the old bytes stay and nothing else appears."""
    root = tmp_path / "cache"
    cellcache.save_cell(root, SPEC, "xavier", 0, {m: np.zeros(2) for m in results.METRICS}, {})
    ckpt = cellcache.checkpoint_path(root, SPEC, "abc")
    cellcache.save_checkpoint(ckpt, [np.zeros(3)], 1, {m: np.zeros((2, 1)) for m in results.METRICS})
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    def failing_replace(src, dst):
        raise OSError("no space left")

    monkeypatch.setattr(os, "replace", failing_replace)
    # one line naming the file (see the full-cache test), not a bare OSError
    with pytest.raises(InitbenchError, match=r"cannot write the cell cache .*no space left"):
        cellcache.save_cell(root, SPEC, "xavier", 0, {m: np.ones(2) for m in results.METRICS}, {})
    with pytest.raises(InitbenchError, match=r"cannot write the cell cache .*no space left"):
        cellcache.save_checkpoint(ckpt, [np.ones(3)], 2, {m: np.ones((2, 1)) for m in results.METRICS})
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before


def test_every_file_of_the_cache_appears_by_a_rename(tmp_path, monkeypatch):
    renamed = []
    real_replace = os.replace

    def recording_replace(src, dst):
        renamed.append(os.path.basename(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)
    root = tmp_path / "cache"
    cellcache.save_cell(root, SPEC, "xavier", 0, {m: np.zeros(2) for m in results.METRICS}, {})
    cellcache.save_cell(root, SPEC, "xavier", 1, {m: np.zeros(2) for m in results.METRICS}, {}, 2)
    cellcache.save_checkpoint(cellcache.checkpoint_path(root, SPEC, "abc"), [np.zeros(3)], 1,
                            {m: np.zeros((2, 1)) for m in results.METRICS})
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert sorted(renamed) == sorted(p.name for p in written)
    assert sorted(renamed) == ["checkpoint-abc.npz", "xavier-seed0.npz", "xavier-seed1-data2.npz"]


def test_run_folder_round_trip_keeps_every_number(tmp_path):
    result = hand_made_result()
    runfolder.write_run(tmp_path / "r", result, summary.summarize_all(result).csv_rows())
    again = runfolder.read_run(tmp_path / "r")
    assert again.spec == result.spec
    for name in results.METRICS:
        np.testing.assert_array_equal(again.metrics[name], result.metrics[name])


# ------------------------------------------------------------------ the summary as a value


def _every_part_result(lrs=(0.01,)) -> RunResult:
    """3 weight seeds x 2 data orders with a validation split, so every part of a compared
    row is there (variance shares, validation accuracy); `lrs` adds the rate axis."""
    rng = np.random.default_rng(3)
    spec = Spec(inits=("xavier", "he_normal", "normal"), seeds=(0, 1, 2), dataset="digits",
                epochs=2, hidden=(4,), data_seeds=2, lr=lrs, val_fraction=0.1)
    shape = (3, *((len(lrs),) if len(lrs) > 1 else ()), 6, 3)
    acc = np.clip(0.5 + 0.1 * np.arange(3).reshape(3, *[1] * (len(shape) - 1))
                  + 0.05 * rng.standard_normal(shape), 0, 1)
    return RunResult(spec, {"train_loss": 1 - acc, "test_loss": 1.1 - acc, "test_accuracy": acc,
                            "val_loss": 1 - acc, "val_accuracy": acc}, {"baseline": "xavier"})


def test_flatten_writes_summary_csv_columns_in_the_documented_order():
    """summary.csv's row is one flattening of the typed row: its columns are docs/files.md's,
    in that order (the columns of the committed runs come first), each read from its part."""
    import re
    from pathlib import Path

    from initbench.summary_rows import SUMMARY_COLUMNS, TUNED_COLUMNS, flatten

    root = Path(__file__).resolve().parents[1]
    section = (root / "docs" / "files.md").read_text().split("## summary.csv")[1]
    documented = [name for line in section.split("\n## ")[0].splitlines()
                  if line.startswith("| `")
                  for name in re.findall(r"`([a-z0-9_]+)`", line.split(" | ")[0])]
    committed = (root / "results" / "reference" / "summary.csv").read_text().splitlines()[0]
    summarized = summary.summarize_all(_every_part_result(), target=0.5, margin=0.02)
    rows = {row.init: row for row in summarized.rows}
    compared, base = rows["normal"], rows["xavier"]
    flat = flatten(compared)
    assert list(flat) == SUMMARY_COLUMNS == documented
    assert TUNED_COLUMNS[2:] == documented and TUNED_COLUMNS[:2] == ["best_lr", "val_score"]
    assert ",".join(SUMMARY_COLUMNS).startswith(committed)
    # every column of a compared row comes from a part (a fixed seed count has no stop reason)
    assert [c for c, v in flat.items() if v is None] == ["stop_reason"]
    assert (flat["test_accuracy_ci_high"], flat["test_loss_std"], flat["best_epoch_mean"],
            flat["reached_target"], flat["diverged_rate"]) == (
        compared.accuracy.ci_high, compared.loss.std, compared.curves.best_epoch,
        compared.reach.reached, compared.divergence.rate)
    assert (flat["accuracy_diff_mean"], flat["accuracy_diff_ci_low"], flat["p_better"],
            flat["loss_verdict"], flat["d_z"], flat["holm_divisor"]) == (
        compared.versus.accuracy.mean_diff, compared.versus.pair.diff_ci_low,
        compared.versus.accuracy.p_better, compared.versus.loss.verdict,
        compared.versus.pair.d_z, compared.versus.pair.holm_divisor)
    assert flat["var_share_data"] == compared.variance.data_share
    assert flat["ci_level"] == flat["paired_ci_level"] == compared.family.level == 0.95
    assert (flat["baseline"], flat["equivalence_margin"], flat["target"]) == ("xavier", 0.02, 0.5)
    # the baseline's own row: every comparison column empty, its verdicts "baseline"
    empty = {c for c, v in flatten(base).items() if v is None}
    assert empty == {"accuracy_diff_mean", "accuracy_diff_ci_low", "accuracy_diff_ci_high",
                     "p_better", "loss_diff_mean", "loss_diff_ci_low", "loss_diff_ci_high",
                     "p_value", "p_value_holm", "d_z", "d_z_ci_low", "d_z_ci_high",
                     "accuracy_diff_sd", "mde_80", "accuracy_diff_ci_level", "holm_divisor",
                     "stop_reason"}
    assert flatten(base)["verdict"] == flatten(base)["loss_verdict"] == "baseline"


@pytest.mark.parametrize("lrs", [(0.01,), (0.01, 0.1)])
def test_summarizing_leaves_the_result_as_it_was(lrs):
    """`summarize_all` returns the summary (rows, per-rate rows, tuned cells) as a value: the
    `RunResult` it reads keeps its fields, metrics and meta; reopening gives equal rows."""
    import copy
    import dataclasses

    result = _every_part_result(lrs)
    before = copy.deepcopy(result)
    summarized = summary.summarize_all(result, target=0.5)
    assert summarized.result is result
    assert [f.name for f in dataclasses.fields(result)] == [
        "spec", "metrics", "meta", "layer_metrics", "labels"]  # nothing to attach a summary to
    assert vars(result).keys() == vars(before).keys() and result.meta == before.meta
    for name, values in before.metrics.items():
        np.testing.assert_array_equal(result.metrics[name], values)
    assert (summarized.tuned is not None) == (len(lrs) > 1) == bool(summarized.per_rate)
    assert summarized.view is (summarized.tuned if len(lrs) > 1 else result)
    again = summary.summarize_saved(result, target=0.5)
    columns = summarized.csv_rows()
    assert columns == [summary.flatten(row) for row in summarized.per_rate or summarized.rows]
    assert runfolder.csv_text(again.csv_rows(), list(columns[0])) == \
        runfolder.csv_text(columns, list(columns[0]))  # reopened: the same table
