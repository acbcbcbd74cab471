"""report / plot / export on saved runs, merging, bad input, and resuming an interrupted run.

One tiny real run (digits, hidden 16, 2 epochs) is trained once for the module; the other
run folders are real CLI runs or hand-edited copies of it.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import scipy.stats
from cli_helpers import invoke

from initbench import experiment, progress, results, runfolder, summary
from initbench.runtime import Runtime
from initbench.spec import Spec

INITS = ("xavier", "normal")  # every initializer costs seconds of XLA compile
SPEC = Spec(inits=INITS, seeds=(0, 1, 2, 3), dataset="digits", hidden=(16,), epochs=2)




def one_error_line(result) -> str:
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Run `a` (seeds 0-3, trained), `b` (seeds 4-5, the same setting: a's first two seeds
    relabelled) and `c` (seeds 0-1 by the CLI compare, from the cell cache)."""
    root = tmp_path_factory.mktemp("runs")
    with mock.patch.dict(os.environ, {"INITBENCH_CACHE": str(root / "cache")}):
        a = experiment.run_experiment(SPEC, root / "a", Runtime.from_environment()).result
        result = invoke("compare", "--dataset", "digits", "--hidden", "16", "--epochs", "2",
                        "--seeds", "0-1", "--inits", ",".join(INITS), "--out", root / "c", "-q")
        assert result.exit_code == 0, result.output
    b = results.RunResult(SPEC.replace(seeds=(4, 5)),
                          {k: v[:, :2] for k, v in a.metrics.items()}, dict(a.meta))
    runfolder.write_run(root / "b", b, summary.summarize_all(b).csv_rows())
    return {"a": root / "a", "b": root / "b", "c": root / "c", "cache": root / "cache"}


def copy_run(src: Path, dst: Path, **spec_changes) -> Path:
    """A copy of a run folder, with some spec.json settings changed."""
    shutil.copytree(src, dst)
    document = json.loads((dst / "spec.json").read_text())
    document["spec"].update(spec_changes)
    (dst / "spec.json").write_text(json.dumps(document))
    return dst


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# ------------------------------------------------------------------ report


def test_report_rerenders_the_table_without_training(runs, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("report trained")

    for target in ("initbench.train.make_cell_fns", "initbench.runner.Runner",
                   "initbench.grid.train_grid", "initbench.experiment.train_grid",
                   "initbench.experiment.run_experiment"):
        monkeypatch.setattr(target, no_training)
    watched = [p for p in (*runs["a"].rglob("*"), *runs["cache"].rglob("*")) if p.is_file()]
    before = {p: p.read_bytes() for p in watched}
    result = invoke("report", runs["a"], "--curves")
    assert result.exit_code == 0, result.output
    assert "digits · MLP 64-16-10 relu" in result.output
    assert "4 seeds" in result.output
    assert "test loss, mean over 4 seeds" in result.output  # the terminal chart
    assert "test accuracy (%), mean over 4 seeds" in result.output  # percent, like the table
    assert result.output.index("verdict") < result.output.index("test loss, mean")  # after
    for init in INITS:
        assert init in result.output
    assert "Δ vs xavier" in result.output
    after = [p for p in (*runs["a"].rglob("*"), *runs["cache"].rglob("*")) if p.is_file()]
    assert sorted(after) == sorted(watched)  # nothing written, in the run or the cache
    assert {p: p.read_bytes() for p in after} == before


def test_report_json_and_baseline(runs):
    result = invoke("report", runs["a"], "--json", "--baseline", "normal", "--target", "50")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    rows = {row["init"]: row for row in document["summary"]}
    assert rows["normal"]["verdict"] == "baseline"
    assert rows["xavier"]["baseline"] == "normal"
    assert rows["xavier"]["target"] == 0.5
    assert one_error_line(invoke("report", runs["a"], "--baseline", "orthogonal")).count(
        "orthogonal") == 1


def test_report_merges_runs_of_one_setting(runs, tmp_path):
    result = invoke("report", runs["a"], runs["b"], "--out", tmp_path / "ab")
    assert result.exit_code == 0, result.output
    assert "6 seeds" in result.output
    assert "merged 2 runs: 2 rows x 6 seeds (seeds 0-5)" in result.output
    merged = runfolder.read_run(tmp_path / "ab")
    assert merged.seeds == [0, 1, 2, 3, 4, 5]
    a, b = runfolder.read_run(runs["a"]), runfolder.read_run(runs["b"])
    for name in results.METRICS:
        np.testing.assert_array_equal(merged.metrics[name][:, :4], a.metrics[name])
        np.testing.assert_array_equal(merged.metrics[name][:, 4:], b.metrics[name])
    assert (tmp_path / "ab" / "curves.png").stat().st_size > 10_000
    assert [row["seeds"] for row in read_csv(tmp_path / "ab" / "summary.csv")] == ["6"] * 2
    # A merged folder is never written over an existing run.
    before = (tmp_path / "ab" / "summary.csv").read_bytes()
    assert "already holds a run" in one_error_line(
        invoke("report", runs["a"], runs["b"], "--out", tmp_path / "ab"))
    assert (tmp_path / "ab" / "summary.csv").read_bytes() == before


def test_report_merges_identical_overlapping_cells_and_refuses_differing_ones(runs, tmp_path):
    # c (seeds 0-1 from the cache) overlaps a (seeds 0-3) with bitwise the same cells
    result = invoke("report", runs["a"], runs["c"], "--out", tmp_path / "ac")
    assert result.exit_code == 0, result.output
    merged, a = runfolder.read_run(tmp_path / "ac"), runfolder.read_run(runs["a"])
    assert merged.seeds == a.seeds
    for name in results.METRICS:
        np.testing.assert_array_equal(merged.metrics[name], a.metrics[name])
    # one number changed in one copy: refused, naming the cell, metric and epoch
    changed = runfolder.read_run(runs["c"])
    changed.metrics["test_accuracy"][0, 1, 2] += 0.01
    runfolder.write_run(tmp_path / "changed", changed, summary.summarize_all(changed).csv_rows())
    line = one_error_line(invoke("report", runs["a"], tmp_path / "changed"))
    assert "both hold xavier seed 1 with different numbers (test_accuracy at epoch 2" in line
    assert "given twice" in one_error_line(invoke("report", runs["a"], runs["a"]))


def test_report_refuses_mixed_settings_unless_asked(runs, tmp_path):
    other = copy_run(runs["a"], tmp_path / "lr", lr=0.1)
    line = one_error_line(invoke("report", runs["a"], other))
    assert "different training settings (lr 0.01 vs 0.1)" in line and "--allow-mixed" in line
    result = invoke("report", runs["a"], other, "--allow-mixed", "--json")
    assert result.exit_code == 0, result.output
    labels = [row["init"] for row in json.loads(result.output)["summary"]]
    assert sorted(labels) == sorted([f"{i} lr={lr}" for i in INITS for lr in ("0.01", "0.1")])
    result = invoke("report", runs["a"], other, "--allow-mixed", "-q")
    assert "lr mixed" in result.output
    # Side by side needs the same seeds; it is never saved as one run.
    assert "seeds differ" in one_error_line(invoke("report", runs["b"], other, "--allow-mixed"))
    assert "side by side" in one_error_line(
        invoke("report", runs["a"], other, "--allow-mixed", "--out", tmp_path / "mixed"))
    assert not (tmp_path / "mixed").exists()


def test_bad_folders_are_one_line_errors(runs, tmp_path):
    assert "not an initbench run" in one_error_line(invoke("report", tmp_path))
    assert "not a folder" in one_error_line(invoke("plot", tmp_path / "missing"))
    truncated = copy_run(runs["a"], tmp_path / "truncated")
    text = (truncated / "curves.csv").read_text()
    (truncated / "curves.csv").write_text(text[: len(text) // 2])
    for command in ("report", "plot", "export"):
        assert "curves.csv is" in one_error_line(invoke(command, truncated))
    assert not (truncated / "curves.png").exists() or (
        (truncated / "curves.png").read_bytes() == (runs["a"] / "curves.png").read_bytes())
    short = copy_run(runs["a"], tmp_path / "short")  # whole rows missing at the end
    lines = (short / "curves.csv").read_text().splitlines(keepends=True)
    (short / "curves.csv").write_text("".join(lines[:-3]))
    line = one_error_line(invoke("report", short))
    assert "curves.csv is truncated" in line and "3" in line and "rows are missing" in line
    cut = copy_run(runs["a"], tmp_path / "cut")  # last row cut inside its last number
    text = (cut / "curves.csv").read_text()
    (cut / "curves.csv").write_text(text.rstrip("\n")[:-2])
    assert "curves.csv is truncated: its last line is incomplete" in one_error_line(
        invoke("report", cut))
    broken = copy_run(runs["a"], tmp_path / "broken")
    (broken / "spec.json").write_text('{"spec": {"inits": ')
    assert "spec.json is corrupted" in one_error_line(invoke("export", broken))
    for target in (97.5, 0, "high", True):  # a recorded target is a fraction in (0, 1]
        edited = copy_run(runs["a"], tmp_path / f"target-{target}")
        document = json.loads((edited / "spec.json").read_text())
        document["target"] = target
        (edited / "spec.json").write_text(json.dumps(document))
        line = one_error_line(invoke("report", edited))
        assert "spec.json is corrupted: target" in line and "(0, 1]" in line, line


# ------------------------------------------------------------------ plot


def test_plot_writes_png_svg_pdf(runs, tmp_path):
    import matplotlib.image

    for name, magic in (("c.png", b"\x89PNG"), ("c.svg", b"<?xml"), ("c.pdf", b"%PDF")):
        result = invoke("plot", runs["a"], "--out", tmp_path / name)
        assert result.exit_code == 0, result.output
        assert (tmp_path / name).read_bytes().startswith(magic)
    image = matplotlib.image.imread(tmp_path / "c.png")
    assert image.shape[0] > 300 and image.shape[1] > 600  # a real figure, not a stub
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 20  # with content
    svg = (tmp_path / "c.svg").read_text()
    assert all(init in svg for init in INITS)  # every initializer is labelled
    assert (runs["c"] / "curves.png").read_bytes().startswith(b"\x89PNG")  # written by compare
    meta = json.loads((runs["c"] / "spec.json").read_text())
    assert (meta["cells_trained"], meta["cells_cached"]) == (0, 4)  # a finished cell never retrains


def test_plot_bad_output_leaves_nothing(runs, tmp_path):
    assert ".png, .svg, .pdf" in one_error_line(
        invoke("plot", runs["a"], "--out", tmp_path / "c.jpg"))
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    assert "cannot write" in one_error_line(
        invoke("plot", runs["a"], "--out", blocker / "c.png"))
    (tmp_path / "dir.png").mkdir()
    assert "is a folder" in one_error_line(invoke("plot", runs["a"], "--out", tmp_path / "dir.png"))
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["dir.png", "file"]
    assert blocker.read_text() == "keep"


def test_plot_bands_are_the_table_cis(runs):
    """The band at each epoch is the documented Student t CI of the seeds' values, written out
    again here; at the last epoch it is the table's CI."""
    from initbench import plots

    result = runfolder.read_run(runs["a"])
    table = {row["init"]: row for row in read_csv(runs["a"] / "summary.csv")}
    for i, init in enumerate(result.inits):
        values = result.metrics["test_accuracy"][i]
        mean, low, high = plots.mean_and_band(values, bounds=(0.0, 1.0))
        np.testing.assert_allclose(mean, values.mean(axis=0), rtol=1e-12)
        for epoch in range(SPEC.epochs + 1):
            assert (low[epoch], high[epoch]) == pytest.approx(t_interval(values[:, epoch]),
                                                              rel=1e-9)
        assert (low[-1], high[-1]) == pytest.approx(
            (float(table[init]["test_accuracy_ci_low"]), float(table[init]["test_accuracy_ci_high"])),
            rel=1e-12)
    assert plots.wants_log(np.array([[2.0, 0.05]])) and not plots.wants_log(np.array([[2.0, 0.1]]))


# ------------------------------------------------------------------ export


def test_export_formats(runs, tmp_path):
    markdown = invoke("export", runs["a"])
    assert markdown.exit_code == 0, markdown.output
    assert "| # | init | seeds |" in markdown.output and "| baseline |" in markdown.output
    assert "95% Student t interval of that mean over seeds" in markdown.output
    table = read_csv(runs["a"] / "summary.csv")
    exported = list(csv.DictReader(invoke("export", runs["a"], "-f", "csv").output.splitlines()))
    assert exported == table  # same numbers as summary.csv, full precision
    document = json.loads(invoke("export", runs["a"], "--format", "json").output)
    assert document["ci_method"] == "Student t over seeds" and len(document["summary"]) == 2
    assert {row["verdict"] for row in document["summary"]} <= {
        "baseline", "better", "worse", "no clear difference"}
    result = invoke("export", runs["a"], "--out", tmp_path / "table.tex")
    assert result.exit_code == 0, result.output
    latex = (tmp_path / "table.tex").read_text()
    for needle in (r"\toprule", r"\midrule", r"\bottomrule", r"95\% CI", r"$\pm$"):
        assert needle in latex


def test_export_bad_format_overwrites_nothing(runs, tmp_path):
    out = tmp_path / "table.md"
    out.write_text("old")
    line = one_error_line(invoke("export", runs["a"], "--format", "yaml", "--out", out))
    assert "unknown export format 'yaml'" in line and "latex" in line
    assert out.read_text() == "old"


# ------------------------------------------------------------------ the numbers


def t_interval(x: np.ndarray) -> tuple[float, float]:
    """The 95% Student t CI of an accuracy's mean documented in stats.py, written out again
    (clipped to [0, 1] as the table does)."""
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    half = scipy.stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return float(max(x.mean() - half, 0.0)), float(min(x.mean() + half, 1.0))


def test_summary_csv_agrees_with_hand_computation_from_curves(runs):
    final: dict[str, dict[int, tuple[float, float]]] = {}
    for row in read_csv(runs["a"] / "curves.csv"):
        if int(row["epoch"]) == SPEC.epochs:
            final.setdefault(row["init"], {})[int(row["seed"])] = (
                float(row["test_accuracy"]), float(row["test_loss"]))
    acc = {init: np.array([final[init][s][0] for s in SPEC.seeds]) for init in INITS}
    summary = {row["init"]: row for row in read_csv(runs["a"] / "summary.csv")}
    for init in INITS:
        row = summary[init]
        assert float(row["test_accuracy_mean"]) == pytest.approx(acc[init].mean(), rel=1e-12)
        assert float(row["test_accuracy_std"]) == pytest.approx(acc[init].std(ddof=1), rel=1e-9)
        low, high = t_interval(acc[init])
        assert float(row["test_accuracy_ci_low"]) == pytest.approx(low, rel=1e-9)
        assert float(row["test_accuracy_ci_high"]) == pytest.approx(high, rel=1e-9)
        if init == "xavier":
            assert row["verdict"] == "baseline"
            continue
        diff = acc[init] - acc["xavier"]
        if np.all(diff == diff[0]):
            low = high = float(diff[0])
        else:  # Student t interval of the mean paired difference, by hand
            half = scipy.stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
            low, high = diff.mean() - half, diff.mean() + half
        assert float(row["accuracy_diff_mean"]) == pytest.approx(diff.mean(), rel=1e-9, abs=1e-12)
        assert float(row["accuracy_diff_ci_low"]) == pytest.approx(low, rel=1e-9, abs=1e-12)
        assert float(row["accuracy_diff_ci_high"]) == pytest.approx(high, rel=1e-9, abs=1e-12)
        p_better = (np.sum(diff > 0) + 0.5 * np.sum(diff == 0)) / len(diff)
        assert float(row["p_better"]) == pytest.approx(p_better)
        expected = ("better" if low > 0 else "worse" if high < 0 else "no clear difference")
        assert row["verdict"] == expected


# ------------------------------------------------------------------ resume


class InterruptingReporter(progress.SilentReporter):
    """Raises KeyboardInterrupt on the `after`-th call to advance (like Ctrl-C mid-run)."""

    def __init__(self, after: int | None = None):
        self.after, self.calls, self.notices = after, 0, []

    def notice(self, text: str) -> None:
        self.notices.append(text)

    def advance(self, amount: int) -> None:
        self.calls += 1
        if self.after is not None and self.calls == self.after:
            raise KeyboardInterrupt


def assert_same_cells(result: results.RunResult, reference: results.RunResult) -> None:
    """`result`'s cells equal the same (init, seed) cells of `reference`."""
    for name in results.METRICS:
        for i, init in enumerate(result.inits):
            for s, seed in enumerate(result.seeds):
                np.testing.assert_array_equal(
                    result.metrics[name][i, s],
                    reference.metrics[name][reference.inits.index(init),
                                            reference.seeds.index(seed)])


def test_interrupted_run_resumes_only_what_is_missing(runs, tmp_path, monkeypatch):
    """Seed 1's cell is finished (cached); seed 2's is stopped by Ctrl-C in epoch 2. The
    rerun trains only seed 2's cell, from its epoch-1 checkpoint, and the numbers equal
    those of run `a`, which trained every cell in one go."""
    runtime = Runtime.from_environment(checkpoint_every_s=0.0)  # checkpoint after every epoch
    cache = runtime.cell_cache
    spec = SPEC.replace(inits=("normal",), seeds=(2, 1))
    for path in runs["cache"].glob("*/*-seed1.npz"):  # one cache key: same data, same device
        target = cache / path.relative_to(runs["cache"])
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    with pytest.raises(KeyboardInterrupt):
        experiment.run_experiment(spec, tmp_path / "run", runtime, InterruptingReporter(after=2))
    assert not (tmp_path / "run" / "spec.json").exists()
    assert len(list(cache.glob("*/checkpoint-*"))) == 1
    reporter = InterruptingReporter()
    resumed = experiment.run_experiment(spec, tmp_path / "run", runtime, reporter).result
    assert (resumed.meta["cells_trained"], resumed.meta["cells_cached"]) == (1, 1)
    assert reporter.notices == ["resuming 1 cell from epoch 1 (checkpoint)"]
    assert not list(cache.glob("*/checkpoint-*"))
    assert_same_cells(resumed, runfolder.read_run(runs["a"]))
    again = experiment.run_experiment(spec, tmp_path / "run", runtime).result
    assert (again.meta["cells_trained"], again.meta["cells_cached"]) == (0, 2)
