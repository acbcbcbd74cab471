"""--seeds auto, plan, --equivalence-margin, --pairs and the robust summary columns,
through the CLI."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import invoke, read_csv

from initbench import runfolder, sequential, stats, summary
from initbench import spec as spec_lib
from initbench.results import RunResult
from initbench.spec import Spec
from initbench.summary_rows import SUMMARY_COLUMNS

TINY = ["--dataset", "digits", "--epochs", "1", "--hidden", "8"]
REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"






def test_spec_first_round_is_the_sequential_one():
    assert spec_lib.AUTO_FIRST_ROUND == sequential.FIRST_ROUND


def test_seeds_auto_stops_by_itself_and_records_why(tmp_path):
    out = tmp_path / "auto"
    result = invoke("compare", "--inits", "xavier,he_normal", *TINY, "--seeds", "auto",
                    "--precision", "60", "--out", out, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["seeds"] == [0, 1, 2, 3, 4]  # the first round was precise enough
    assert document["seeds_auto"]["stop_reason"] == sequential.STOP_PRECISION
    assert document["seeds_auto"]["half_widths_pt"][0] <= 60
    assert {row["stop_reason"] for row in document["summary"]} == {"precision reached"}
    assert {row["paired_ci_level"] for row in document["summary"]} == {0.97}
    saved = json.loads((out / "spec.json").read_text())
    assert saved["spec"]["seeds"] == [0, 1, 2, 3, 4] and saved["spec"]["precision"] == 60
    assert saved["seeds_auto"]["stop_reason"] == "precision reached"
    rows = read_csv(out / "summary.csv")
    assert {r["seeds"] for r in rows} == {"5"} and {r["seeds_rule"] for r in rows} == {"auto"}
    shown = invoke("report", out, "--quiet")
    assert shown.exit_code == 0 and "stopped: precision reached" in shown.stdout
    assert "97% CI" in shown.stdout


def test_seeds_auto_adds_rounds_until_max_seeds_training_only_new_seeds(tmp_path):
    out = tmp_path / "max"
    result = invoke("compare", "--inits", "xavier,normal", *TINY, "--seeds", "auto",
                    "--precision", "0.001", "--max-seeds", "10", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert "stopped: max seeds" in result.stdout
    meta = json.loads((out / "spec.json").read_text())
    assert meta["spec"]["seeds"] == list(range(10)) and meta["cells_trained"] == 20
    assert meta["seeds_auto"]["rounds"] == 2 and meta["seeds_auto"]["max_seeds"] == 10
    again = invoke("compare", "--inits", "xavier,normal", *TINY, "--seeds", "auto",
                   "--precision", "0.001", "--max-seeds", "10", "--out", tmp_path / "again",
                   "--quiet")
    assert again.exit_code == 0, again.output
    meta = json.loads((tmp_path / "again" / "spec.json").read_text())
    assert meta["cells_trained"] == 0 and meta["cells_cached"] == 20
    assert read_csv(out / "curves.csv") == read_csv(tmp_path / "again" / "curves.csv")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds_auto") / "run"
    result = invoke("compare", "--inits", "xavier,he_normal,normal", *TINY, "--seeds", "4",
                    "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    return out


def test_plan_writes_a_table_and_plan_csv(small_run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(small_run, folder)
    result = invoke("plan", folder, "--effect", "2", "--out", folder / "plan.csv")
    assert result.exit_code == 0, result.output
    assert "seeds for 2 pt" in result.stdout and "mde_80" in result.stdout
    rows = read_csv(folder / "plan.csv")
    assert [r["init"] for r in rows if r["init"]] and len(rows) == 2
    assert set(rows[0]) == set(summary.PLAN_COLUMNS)
    summary_rows = {r["init"]: r for r in read_csv(folder / "summary.csv")}
    for row in rows:  # the plan's mde_80 is summary.csv's, in points
        assert float(row["mde_80_pt"]) == pytest.approx(
            100 * float(summary_rows[row["init"]]["mde_80"]))
        assert int(row["seeds_needed"]) >= 3


def test_plan_on_the_committed_reference_run(tmp_path):
    folder = tmp_path / "reference"
    shutil.copytree(REFERENCE, folder)
    result = invoke("plan", folder, "--out", folder / "plan.csv")
    assert result.exit_code == 0, result.output
    rows = {r["init"]: r for r in read_csv(folder / "plan.csv")}
    assert set(rows) == {"lecun_normal", "orthogonal", "he_normal", "normal"}
    # README, "How many seeds?": planned at Holm's first step over the 4 comparisons (1.25%)
    assert rows["orthogonal"]["seeds_needed"] == "186"
    assert rows["he_normal"]["seeds_needed"] == "96"
    assert float(rows["lecun_normal"]["mde_80_pt"]) == pytest.approx(5.16, abs=0.005)
    assert rows["he_normal"]["family_size"] == "4"


def test_reference_run_keeps_every_existing_summary_column():
    """With default options, summary.csv's existing columns are unchanged (new ones appended)."""
    committed = read_csv(REFERENCE / "summary.csv")
    summarized = summary.summarize_saved(runfolder.read_run(REFERENCE))
    fresh = list(csv.DictReader(runfolder.csv_text(summarized.csv_rows(),
                                                 SUMMARY_COLUMNS).splitlines()))
    assert SUMMARY_COLUMNS[:len(committed[0])] == list(committed[0])
    for old, new in zip(committed, fresh):
        assert {k: new[k] for k in old} == old


def test_equivalence_margin_is_a_report_time_choice(small_run):
    plain = invoke("export", small_run, "--format", "json")
    wide = invoke("export", small_run, "--format", "json", "--equivalence-margin", "99")
    assert plain.exit_code == 0 and wide.exit_code == 0, wide.output
    before = {r["init"]: r for r in json.loads(plain.stdout)["summary"]}
    after = {r["init"]: r for r in json.loads(wide.stdout)["summary"]}
    assert after["he_normal"]["verdict"] == "equivalent"  # 99 points: every CI is inside
    assert before["he_normal"]["verdict"] != "equivalent"
    assert after["he_normal"]["equivalence_margin"] == pytest.approx(0.99)
    assert before["he_normal"]["equivalence_margin"] is None
    markdown = invoke("export", small_run, "--equivalence-margin", "99")
    assert "±99 pt (TOST" in markdown.stdout and "Holm" in markdown.stdout


def test_pairs_all_writes_pairs_files_and_names_holm(tmp_path):
    out = tmp_path / "all"
    result = invoke("compare", "--inits", "xavier,he_normal,normal", *TINY, "--seeds", "4",
                    "--pairs", "all", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert "Holm-corrected over all 3 pairs" in result.stdout
    pairs = read_csv(out / "pairs.csv")
    assert [(p["a"], p["b"]) for p in pairs] == [("xavier", "he_normal"), ("xavier", "normal"),
                                                  ("he_normal", "normal")]
    for p in pairs:
        assert float(p["p_value_holm"]) >= float(p["p_value"])
        assert float(p["d_z_ci_low"]) <= float(p["d_z"]) <= float(p["d_z_ci_high"])
    assert (out / "pairs.png").read_bytes()[:4] == b"\x89PNG"
    rows = read_csv(out / "summary.csv")
    assert {r["pairs"] for r in rows} == {"all"} and {r["correction"] for r in rows} == {"holm"}
    merged = invoke("report", out, "--out", tmp_path / "copy", "--quiet")
    assert merged.exit_code == 0, merged.output
    assert (tmp_path / "copy" / "pairs.csv").exists()
    baseline_only = invoke("report", out, "--pairs", "baseline", "--json")
    assert json.loads(baseline_only.stdout)["pairs"] is None


def _grid(final: np.ndarray) -> RunResult:
    """A run whose curves are flat at `final[init, seed]` (loss = 1 - accuracy)."""
    acc = np.repeat(final[:, :, None], 2, axis=2)
    metrics = {"test_accuracy": acc, "test_loss": 1 - acc, "train_loss": 1 - acc}
    spec = Spec(inits=("xavier", "normal"), seeds=tuple(range(final.shape[1])),
                dataset="digits", epochs=1, hidden=(8,))
    return RunResult(spec, metrics, {})


def test_divergence_rate_iqm_and_holm_columns_by_hand():
    final = np.array([[0.90, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99],
                      [0.5, np.nan, 0.6, np.nan, 0.7, np.nan, 0.8, 0.8, 0.8, 0.8]])
    rows = {r.init: summary.flatten(r) for r in summary.summarize_run(_grid(final))}
    normal = rows["normal"]  # summary.csv's row
    assert normal["diverged"] == 3 and normal["diverged_rate"] == pytest.approx(0.3)
    assert normal["diverged_rate_ci_low"] == pytest.approx(0.0667, abs=1e-4)  # Clopper-Pearson
    assert normal["diverged_rate_ci_high"] == pytest.approx(0.6525, abs=1e-4)
    assert rows["xavier"]["test_accuracy_iqm"] == pytest.approx(np.mean(final[0, 2:8]))
    assert normal["test_accuracy_median"] == pytest.approx(0.8)
    assert normal["p_value"] == normal["p_value_holm"]  # one comparison: Holm changes nothing
    assert normal["verdict"] == "worse" and normal["d_z"] < 0


def test_holm_over_baseline_comparisons():
    """Three comparisons with the baseline form one Holm family; verdicts read p_holm."""
    rng = np.random.default_rng(0)
    base = rng.normal(0.9, 0.01, 8)
    noise = np.array([0.004, -0.002, 0.003, 0.001, -0.001, 0.0045, 0.002, -0.0005])
    final = np.stack([base, base + 0.0015 + noise, base + noise[::-1], base - noise])
    metrics_final = final
    acc = np.repeat(metrics_final[:, :, None], 2, axis=2)
    spec = Spec(inits=("xavier", "he_normal", "normal", "orthogonal"), seeds=tuple(range(8)),
                dataset="digits", epochs=1, hidden=(8,))
    run = RunResult(spec, {"test_accuracy": acc, "test_loss": 1 - acc, "train_loss": 1 - acc})
    rows = {r.init: r for r in summary.summarize_run(run)}
    others = [rows[name] for name in ("he_normal", "normal", "orthogonal")]
    expected = stats.holm([r.versus.pair.p_value for r in others])
    np.testing.assert_allclose([r.versus.pair.p_value_holm for r in others], expected)
    for r in others:
        assert r.verdict == stats.paired_verdict(r.versus.accuracy.mean_diff,
                                                 r.versus.pair.p_value_holm, 8)


@pytest.mark.parametrize("args, message", [
    (["--seeds", "auto"], "--seeds auto needs --precision"),
    (["--seeds", "auto", "--precision", "0"], "--precision must be a positive"),
    (["--seeds", "auto", "--precision", "-1"], "--precision must be a positive"),
    (["--seeds", "3", "--precision", "0.5"], "--precision applies only with --seeds auto"),
    (["--seeds", "auto", "--precision", "0.5", "--max-seeds", "4"], "--max-seeds must be"),
    (["--seeds", "2", "--pairs", "some"], "unknown --pairs value 'some'"),
    (["--seeds", "2", "--equivalence-margin", "-0.5"], "--equivalence-margin must be"),
    (["--seeds", "2", "--equivalence-margin", "0"], "--equivalence-margin must be"),
])
def test_bad_seeds_auto_plan_and_pairs_values_are_one_error_line(tmp_path, args, message):
    result = invoke("compare", "--inits", "xavier,normal", *TINY, *args, "--out", tmp_path / "x")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in result.output
    assert not (tmp_path / "x").exists()


def test_bad_plan_and_report_values(small_run):
    assert invoke("plan", small_run, "--effect", "0").exit_code == 2
    bad = invoke("report", small_run, "--pairs", "every")
    assert bad.exit_code == 2 and bad.output.startswith("error:")
    assert invoke("export", small_run, "--equivalence-margin", "-1").exit_code == 2
