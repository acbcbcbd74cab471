"""Intervals that agree with the verdicts, CIs that cover what they claim, power that is
never NaN, and the simulated rates docs/statistics.md quotes (fixed seeds, small runs)."""

import csv
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from initbench import power, simulations, stats, summary
from initbench.results import RunResult
from initbench.runfolder import write_run
from initbench.spec import Spec

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_verdicts", ROOT / "tools" / "check_verdicts.py")
check_verdicts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_verdicts)


# --- The interval beside a verdict is the one that decided it -------------------------------


def test_holm_divisors_by_hand():
    # m = 4, alpha 0.05: steps test p < 0.0125, 0.0167, 0.025, 0.05 on the sorted p's.
    p = np.array([0.04, 0.001, 0.3, 0.012])
    # 0.001 < 0.0125 (k 4), 0.012 < 0.0167 (k 3), 0.04 >= 0.025 fails at k 2: the rest k 2.
    np.testing.assert_array_equal(stats.holm_divisors(p), [2.0, 4.0, 2.0, 3.0])
    np.testing.assert_array_equal(stats.holm(p) < 0.05, p < 0.05 / stats.holm_divisors(p))
    assert np.isnan(stats.holm_divisors([0.01, np.nan])[1])
    assert stats.holm_divisors([0.01, np.nan])[0] == 1.0  # NaN is not in the family


def test_holm_divisors_decide_exactly_like_holm_on_random_families():
    rng = np.random.default_rng(7)
    p = rng.uniform(0, 0.08, size=(5000, 6)) ** rng.uniform(0.5, 2, size=(5000, 1))
    k = stats.holm_divisors(p)
    np.testing.assert_array_equal(stats.holm(p) < 0.05, p < 0.05 / k)


def test_decision_intervals_exclude_zero_exactly_when_holm_rejects():
    rng = np.random.default_rng(3)
    diffs = rng.normal(rng.uniform(-1.5, 1.5, size=(2000, 4, 1)), 1.0, size=(2000, 4, 6))
    shown = stats.decision_intervals(diffs)
    rejected = stats.holm(stats.paired_t_test(diffs).p_value) < 0.05
    excludes = (shown.ci_low > 0) | (shown.ci_high < 0)
    np.testing.assert_array_equal(excludes, rejected)
    assert 0.1 < rejected.mean() < 0.9  # both kinds of rows are present
    np.testing.assert_allclose(shown.level, 1 - 0.05 / shown.divisor)
    # Row by row it is the plain t interval at that level.
    np.testing.assert_allclose(stats.t_ci(diffs[0, 1], shown.level[0, 1]),
                               (shown.ci_low[0, 1], shown.ci_high[0, 1]), rtol=1e-12)


def test_equivalent_exactly_when_the_shown_interval_lies_inside_the_margin():
    rng = np.random.default_rng(5)
    diffs = rng.normal(rng.uniform(-1, 1, size=(2000, 4, 1)), 0.3, size=(2000, 4, 8))
    margin = 0.6
    shown = stats.decision_intervals(diffs, margin=margin)
    n = np.full(shown.ci_low.shape, 8)
    verdicts = np.vectorize(stats.interval_verdict)(shown.ci_low, shown.ci_high, n, margin)
    inside = (shown.ci_low > -margin) & (shown.ci_high < margin)
    np.testing.assert_array_equal(verdicts == "equivalent", inside)
    assert 0.05 < inside.mean() < 0.95
    # Equivalent rows show the Bonferroni interval (k = m = 4): TOST at alpha / (2m) each.
    np.testing.assert_array_equal(shown.divisor[inside], 4.0)
    # Better/worse only where Holm rejects.
    better_or_worse = np.isin(verdicts, ["better", "worse"])
    assert np.all(stats.holm(stats.paired_t_test(diffs).p_value)[better_or_worse] < 0.05)


@pytest.mark.parametrize("verdict, low, high, margin, ok", [
    ("better", 0.1, 2.0, None, True), ("no clear difference", 0.1, 2.0, None, False),
    ("worse", -2.0, -0.1, None, True), ("better", -2.0, -0.1, None, False),
    ("no clear difference", -0.1, 2.0, None, True), ("equivalent", -0.5, 0.5, 1.0, True),
    ("equivalent", -0.5, 1.5, 1.0, False), ("better", 0.2, 0.8, 1.0, False),
    ("baseline", 5.0, 6.0, None, True), ("no verdict (n<3)", 5.0, 6.0, None, True),
])
def test_check_verdicts_rule(verdict, low, high, margin, ok):
    assert (check_verdicts.problem(verdict, low, high, margin) is None) == ok


def _run(final, inits, meta=None, auto=False) -> RunResult:
    """A run whose curves are flat at `final[init, seed]` (loss = 1 - accuracy)."""
    acc = np.repeat(np.asarray(final, float)[:, :, None], 2, axis=2)
    spec = Spec(inits=tuple(inits), seeds=tuple(range(acc.shape[1])), dataset="digits",
                epochs=1, hidden=(8,))
    if auto:
        spec = spec.replace(precision=0.5, max_seeds=30)
    return RunResult(spec, {"test_accuracy": acc, "test_loss": 1 - acc, "train_loss": 1 - acc},
                     dict(meta or {}))


def _family_grid(seed=0):
    """Five initializers on 6 seeds: one far better, one a little, two alike."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.90, 0.01, 6)
    return np.stack([base, base + 0.03 + rng.normal(0, 0.004, 6),
                     base + 0.004 + rng.normal(0, 0.004, 6), base + rng.normal(0, 0.0015, 6),
                     base - 0.0005 + rng.normal(0, 0.0015, 6)])


INITS = ("xavier", "he_normal", "lecun_normal", "orthogonal", "normal")


@pytest.mark.parametrize("pairs, margin_pt", [("baseline", None), ("all", 1.0),
                                              ("baseline", 0.3)])
def test_every_file_and_rendering_of_a_run_agrees(tmp_path, pairs, margin_pt):
    """summary.csv, pairs.csv, the terminal table, markdown, LaTeX and JSON: every verdict
    agrees with the interval shown beside it (tools/check_verdicts.py)."""
    from initbench import experiment, export

    run = _run(_family_grid(), INITS, {"pairs": pairs, "equivalence_margin": margin_pt})
    summarized = summary.summarize_saved(run)
    rows = list(summarized.rows)
    verdicts = {row.verdict for row in rows}
    assert {"better"} <= verdicts and len(verdicts) >= 3  # not a trivial table
    if margin_pt:
        assert "equivalent" in verdicts or pairs == "all"
    files = experiment.pair_files(run, rows)
    files.pop("pairs.png", None)
    write_run(tmp_path / "run", run, summarized.csv_rows(), None, files)
    (tmp_path / "run" / "summary.md").write_text(export.render(run, rows, "markdown"))
    checked, problems = check_verdicts.check_run(tmp_path / "run")
    assert problems == []
    assert checked >= 6 * (len(INITS) - 1)
    # The fields the figure and table code reads: the deciding interval and its level.
    for row in rows:
        if row.verdict != "baseline":
            assert row.versus.pair.diff_ci_level == pytest.approx(
                1 - 0.05 / row.versus.pair.holm_divisor)
            assert row.versus.pair.diff_ci_level >= 0.95


def test_check_verdicts_catches_a_disagreeing_row(tmp_path):
    run = _run(_family_grid(), INITS)
    write_run(tmp_path / "run", run, summary.summarize_all(run).csv_rows())
    path = tmp_path / "run" / "summary.csv"
    with open(path, newline="") as f:
        table = list(csv.DictReader(f))
    better = next(row for row in table if row["verdict"] == "better")
    better["verdict"] = "no clear difference"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    _, problems = check_verdicts.check_run(tmp_path / "run")
    assert len(problems) == 1 and "summary.csv" in problems[0]


@pytest.mark.parametrize("folder", ["reference", "lr-mnist-5k", "cnn-reference"])
def test_committed_runs_agree(folder):
    checked, problems = check_verdicts.check_run(ROOT / "results" / folder)
    assert problems == [] and checked > 0


def test_reference_normal_row_no_longer_contradicts_itself():
    """The case that started this: -2.36 [-4.10, -0.62] "no clear difference"."""
    rows = {row.init: row for row in check_verdicts_rows("reference")}
    normal = rows["normal"]
    assert normal.verdict == "no clear difference"
    assert normal.versus.pair.diff_ci_low < 0 < normal.versus.pair.diff_ci_high
    pair = normal.versus.pair
    assert pair.holm_divisor == 4 and pair.diff_ci_level == pytest.approx(0.9875)


def check_verdicts_rows(folder):
    from initbench import runfolder

    return summary.summarize_saved(runfolder.read_run(ROOT / "results" / folder)).rows


# --- Levels: one per table; merged runs and --seeds auto --------------------------------------


def test_one_level_per_table_and_definitions(tmp_path):
    from initbench import export, report

    run = _run(_family_grid(), INITS, auto=True)
    rows = summary.summarize_run(run)
    columns = [summary.flatten(row) for row in rows]
    assert {c["ci_level"] for c in columns} == {c["paired_ci_level"] for c in columns} == {0.97}
    document = json.loads(export.render(run, rows, "json"))
    assert {"P(better)", "IQM", "CI", "Δ", "Holm CI", "mde_80"} <= set(document["definitions"])
    assert "97% Student t" in document["definitions"]["CI"]
    md = export.render(run, rows, "markdown")
    assert "| 97% CI |" in md and "P(better): share of seeds" in md and "IQM:" in md
    assert "3% family-wise" in md
    caption = report._caption(run, rows, wide=True)  # the terminal defines what it shows
    assert "P(better): " in caption and "CI: 97% Student t" in caption and "95%" not in caption
    compact = report._caption(run, rows)
    assert "Holm CI: " in compact and "P(better)" not in compact  # not shown: not defined


def test_merged_runs_with_different_seeds_use_a_level_split_over_the_looks():
    from initbench import report

    merged = {"merged_from": [{"run": "a", "seeds": [0, 1, 2]}, {"run": "b", "seeds": [3, 4, 5]}]}
    run = _run(_family_grid(), INITS, merged)
    assert summary.num_looks(run) == 2 and summary.paired_level(run) == pytest.approx(0.975)
    assert "97.5%" in report.sequential_note(run)
    assert [row.family.level for row in summary.summarize_run(run)] == [pytest.approx(0.975)] * 5
    same_seeds = {"merged_from": [{"run": "a", "seeds": [0, 1]}, {"run": "b", "seeds": [0, 1]}]}
    assert summary.paired_level(_run(_family_grid(), INITS, same_seeds)) == 0.95
    assert report.sequential_note(_run(_family_grid(), INITS)) is None


# --- Power never NaN, checked against statsmodels ---------------------------------------------


def test_power_against_statsmodels_at_few_seeds_and_large_effects():
    TTestPower = pytest.importorskip("statsmodels.stats.power").TTestPower
    checked = 0
    for n in (2, 3, 5, 30):
        for d in (0.1, 0.5, 1.0, 2.0, 5.0, 8.0, 20.0, 1e3):
            ours = power.paired_power(n, d, 1.0)
            assert math.isfinite(ours)
            ref = TTestPower().power(effect_size=d, nobs=n, alpha=0.05)
            if math.isfinite(ref):  # statsmodels is NaN too at e.g. (2, 8.0)
                assert ours == pytest.approx(ref, abs=1e-9)
                checked += 1
    assert checked >= 20
    assert power.paired_power(2, 8.0, 1.0) == pytest.approx(0.6253, abs=1e-4)  # was NaN
    assert power.paired_power(6, 5.0, 1.0) == pytest.approx(1.0, abs=1e-12)
    assert power.paired_power(30, 2.0, 1.0) == pytest.approx(1.0, abs=1e-12)


def test_power_at_n2_against_monte_carlo():
    rng = np.random.default_rng(11)
    d = rng.normal(8.0, 1.0, size=(40_000, 2))
    t = d.mean(1) / (d.std(1, ddof=1) / np.sqrt(2))
    assert np.mean(np.abs(t) > 12.706204736174698) == pytest.approx(
        power.paired_power(2, 8.0, 1.0), abs=0.008)  # se 0.0024


def test_power_is_never_nan_on_a_grid():
    n = np.arange(2, 60)[:, None]
    effect = np.concatenate([np.linspace(0, 40, 81), np.geomspace(40, 1e5, 20)])[None, :]
    p = power.paired_power(n, effect, 1.0)
    assert np.isfinite(p).all()
    assert np.all(np.diff(p, axis=1) >= -1e-9)  # power rises with the effect


def test_minimum_detectable_effect_at_two_seeds_against_statsmodels():
    TTestPower = pytest.importorskip("statsmodels.stats.power").TTestPower
    for n in (2, 3, 5, 30):
        ref = TTestPower().solve_power(effect_size=None, nobs=n, alpha=0.05, power=0.8)
        assert power.minimum_detectable_effect(n, 1.0) == pytest.approx(ref, rel=1e-6)
    assert power.minimum_detectable_effect(2, 1.0) == pytest.approx(11.5499, abs=1e-3)  # was 5.36
    ref = TTestPower().solve_power(effect_size=None, nobs=5, alpha=0.0125, power=0.8)
    assert power.minimum_detectable_effect(5, 1.0, alpha=0.0125) == pytest.approx(ref, rel=1e-6)
    assert power.seeds_needed(11.5499, 1.0) == 3  # never below 3
    ref_n = TTestPower().solve_power(effect_size=0.5, nobs=None, alpha=0.0125, power=0.8)
    assert power.seeds_needed(0.5, 1.0, alpha=0.0125) == math.ceil(ref_n)


def test_plan_on_a_two_seed_run_plans_for_holm_over_the_family():
    TTestPower = pytest.importorskip("statsmodels.stats.power").TTestPower
    final = np.array([[0.90, 0.92], [0.91, 0.95], [0.88, 0.91]])
    run = _run(final, ("xavier", "he_normal", "normal"))
    rows = summary.summarize_run(run)
    plan = {row.init: row for row in summary.plan_rows(run, rows, 1.0)}
    he = plan["he_normal"]
    assert he.family_size == 2 and he.alpha == pytest.approx(0.025)
    sd_pt = 100 * np.std([0.01, 0.03], ddof=1)
    # statsmodels' solve_power gives up here (returns its start, 10.0); its power function
    # confirms ours: 80% at 23.08 sd with 2 seeds at alpha 0.025.
    assert he.mde_80_pt / sd_pt == pytest.approx(23.082, abs=1e-3)
    assert TTestPower().power(effect_size=he.mde_80_pt / sd_pt, nobs=2, alpha=0.025) == \
        pytest.approx(0.8, abs=1e-6)
    one = summary.plan_rows(_run(final[:2], ("xavier", "he_normal")), rows[:0] or
                            summary.summarize_run(_run(final[:2], ("xavier", "he_normal"))), 1.0)
    ref1 = TTestPower().solve_power(effect_size=None, nobs=2, alpha=0.05, power=0.8)
    assert one[0].mde_80_pt == pytest.approx(ref1 * sd_pt, rel=1e-6)  # 11.55 sd, not 5.36


# --- The coverage tables of docs/statistics.md, pinned with fixed seeds ----------------------


@pytest.mark.parametrize("num_seeds", [2, 3, 5, 10, 30])
def test_per_initializer_t_interval_covers_95_percent(num_seeds):
    assert simulations.mean_ci_coverage(num_seeds, "normal", num_runs=8000, seed=1) == \
        pytest.approx(0.95, abs=0.008)  # se 0.0024
    assert simulations.mean_ci_coverage(num_seeds, "skewed", num_runs=8000, seed=1) > 0.92


def test_the_old_bootstrap_interval_covered_far_less():
    assert simulations.mean_ci_coverage(3, "normal", "bootstrap", num_runs=400, seed=1) < 0.82


@pytest.mark.parametrize("effects", [[0, 0, 0, 0, 0], [0, 3, 0, 0, 0], [0, 3, 3, 3, 0.5]])
def test_holm_intervals_agree_with_holm_and_cover(effects):
    r = simulations.holm_interval_rates(effects, 5, num_runs=4000, seed=2)
    assert r.mismatches == 0
    assert r.false_claim <= 0.06  # 4.4-4.9% at 20,000 runs (docs); se 0.0035 here
    assert r.row_coverage >= 0.97
    assert r.coverage >= 0.90  # family-wise: 92-96% measured (docs), not a simultaneous 95%


def test_looking_then_adding_seeds():
    plain = simulations.peeking_false_claims(0.95, max_seeds=15, num_runs=8000, seed=3)
    split = simulations.peeking_false_claims(1 - 0.05 / 3, max_seeds=15, num_runs=8000, seed=3)
    assert plain > 0.09  # 11% measured: why merges need a stricter level
    assert split <= 0.05


def test_equivalence_over_a_family_stays_below_alpha_over_two():
    for sd, n in ((0.25, 10), (0.5, 30)):
        assert simulations.equivalence_family_error(5, n, 0.5, sd, num_runs=4000, seed=4) <= 0.03


def test_a_fresh_compare_with_every_pair_and_a_margin_agrees(tmp_path):
    """Done when: a fresh `compare --pairs all --equivalence-margin 1` passes the check, and
    so does its re-rendering with a margin wide enough for "equivalent" rows."""
    from typer.testing import CliRunner

    from initbench.cli import app

    out = tmp_path / "all"
    result = CliRunner().invoke(app, [
        "compare", "--inits", "xavier,he_normal,normal", "--dataset", "digits",
        "--epochs", "1", "--hidden", "8", "--seeds", "4", "--pairs", "all",
        "--equivalence-margin", "1", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    checked, problems = check_verdicts.check_run(out)
    assert problems == [] and checked == 2 * 5 + 3 * 2  # 2 rows x (csv + 4 renderings), 3 pairs x (csv, json)
    wide = tmp_path / "wide"
    result = CliRunner().invoke(app, ["report", str(out), "--equivalence-margin", "30",
                                      "--out", str(wide), "--quiet"])
    assert result.exit_code == 0, result.output
    with open(wide / "pairs.csv", newline="") as f:
        verdicts = [row["verdict"] for row in csv.DictReader(f)]
    assert "equivalent" in verdicts
    checked, problems = check_verdicts.check_run(wide)
    assert problems == []


def test_report_merging_runs_with_different_seeds_says_its_level(tmp_path):
    """Through the CLI: `report run-a run-b` with seeds added later holds its verdicts at
    97.5% and says why in the caption; the merged folder keeps that level when reopened."""
    from typer.testing import CliRunner

    from initbench import runfolder
    from initbench.cli import app

    grid = _family_grid()
    for name, seeds in (("a", slice(0, 3)), ("b", slice(3, 6))):
        part = _run(grid[:, seeds], INITS)
        part = RunResult(part.spec.replace(seeds=tuple(range(6))[seeds]), part.metrics, {})
        write_run(tmp_path / name, part, summary.summarize_all(part).csv_rows())
    shown = CliRunner().invoke(app, ["report", str(tmp_path / "a"), str(tmp_path / "b"),
                                     "--out", str(tmp_path / "ab")])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())  # the caption wraps at the terminal's width
    assert "verdicts hold at 97.5%" in text and "sequential look" in text
    with open(tmp_path / "ab" / "summary.csv", newline="") as f:
        levels = {row["paired_ci_level"] for row in csv.DictReader(f)}
    assert levels == {"0.975"}
    reopened = runfolder.read_run(tmp_path / "ab")
    assert summary.paired_level(reopened) == pytest.approx(0.975)


def test_per_initializer_ci_is_clipped_to_the_accuracy_range():
    """With 2 seeds near 100% the t interval runs past 1; the row's CI stops at 1 and 0
    (fractions), never beyond."""
    rows = summary.summarize_run(_run([[0.999, 0.97], [0.03, 0.001]], ["xavier", "normal"]))
    by_init = {row.init: row for row in rows}
    assert by_init["xavier"].accuracy.ci_high == 1.0
    assert by_init["normal"].accuracy.ci_low == 0.0
    assert by_init["xavier"].accuracy.ci_low < 0.97  # clipped only at the range's ends


@pytest.mark.parametrize("auto", [False, True])
def test_per_initializer_ci_is_at_the_tables_one_level(auto):
    """The accuracy CI is the Student t interval at the row's `ci_level` (97% under --seeds
    auto), computed here with scipy."""
    from scipy import stats as sps

    final = [[0.90, 0.92, 0.95, 0.91], [0.80, 0.85, 0.83, 0.86]]
    rows = summary.summarize_run(_run(final, ["xavier", "normal"], auto=auto))
    for row in rows:
        values = np.asarray(final[["xavier", "normal"].index(row.init)])
        assert row.family.level == (0.97 if auto else 0.95)
        low, high = sps.t.interval(row.family.level, len(values) - 1, loc=values.mean(),
                                   scale=sps.sem(values))
        assert row.accuracy.ci_low == pytest.approx(low, abs=1e-12)
        assert row.accuracy.ci_high == pytest.approx(high, abs=1e-12)


def test_plan_for_an_auto_run_tests_at_its_family_level():
    """`plan` on a `--seeds auto` run plans for the verdict that run gives: Holm's first step
    at (1 - 97%) / m, not at the fixed-seed 5%."""
    final = [[0.90, 0.92, 0.95, 0.91, 0.93], [0.88, 0.90, 0.96, 0.89, 0.91],
             [0.80, 0.85, 0.83, 0.86, 0.84]]
    inits = ["xavier", "he_normal", "normal"]
    for auto, level in ((False, 0.95), (True, 0.97)):
        run = _run(final, inits, auto=auto)
        plan = summary.plan_rows(run, summary.summarize_run(run), 1.0)
        assert [row.alpha for row in plan] == pytest.approx([(1 - level) / 2] * 2)


def test_compact_header_names_the_tables_level():
    """The compact table's accuracy header states the level of the CIs below it (97% under
    --seeds auto), not a fixed 95%."""
    import io

    from rich.console import Console

    from initbench import report

    final = [[0.90, 0.92, 0.95, 0.91], [0.80, 0.85, 0.83, 0.86]]
    for auto, label in ((False, "[95% CI]"), (True, "[97% CI]")):
        run = _run(final, ["xavier", "normal"], auto=auto)
        console = Console(width=200, file=io.StringIO(), color_system=None)
        console.print(report.summary_table(run, summary.summarize_run(run)))
        header = console.file.getvalue().split("━")[0]
        assert label in header and ("[95% CI]" in header) == (not auto)


def test_figure_accuracy_band_ends_at_the_tables_ci_in_percent():
    """curves.png's accuracy band, at the last epoch, is the row's CI (its level: 97% under
    --seeds auto) in percent."""
    from initbench import plots

    final = [[0.90, 0.92, 0.95, 0.91], [0.80, 0.85, 0.83, 0.86]]
    run = _run(final, ["xavier", "normal"], auto=True)
    rows = summary.summarize_run(run)
    fig = plots.make_figure(run, rows)
    panel = next(ax for ax in fig.axes if ax.get_title().startswith("test accuracy"))
    last = run.spec.epochs
    for row in rows:
        colour = plots.init_color(row.init)
        band = next(c for c in panel.collections
                    if np.allclose(c.get_facecolor()[0][:3], np.asarray(colour)[:3]))
        ys = sorted(y for x, y in band.get_paths()[0].vertices if x == last)
        assert (ys[0], ys[-1]) == pytest.approx(
            (100 * row.accuracy.ci_low, 100 * row.accuracy.ci_high), rel=1e-9)


def test_pairs_figure_separates_pairs_called_better_or_worse():
    """pairs.png's bars join only initializers the corrected tests cannot separate: a pair
    called better or worse (whichever way round it is written) is separated."""
    from types import SimpleNamespace

    from initbench import plots

    pair = lambda a, b, verdict: SimpleNamespace(a=a, b=b, verdict=verdict)  # noqa: E731
    sep = plots.separated_matrix(["x", "y", "z"], [pair("x", "y", stats.VERDICT_WORSE),
                                                   pair("x", "z", stats.VERDICT_BETTER),
                                                   pair("y", "z", "no clear difference")])
    assert sep.tolist() == [[False, True, True], [True, False, False], [True, False, False]]


def test_a_run_folder_rewritten_with_more_seeds_is_a_second_look(tmp_path):
    """`compare --out DIR` over DIR's own run with more seeds continues it: the seed sets
    are recorded as looks and the verdicts hold at 1 - 5%/2 = 97.5%, said in the caption;
    writing the same seeds again is no new look."""
    import json

    from typer.testing import CliRunner

    from initbench.cli import app

    out = tmp_path / "run"
    common = ["compare", "--inits", "xavier,normal", "--dataset", "digits", "--epochs", "1",
              "--hidden", "8", "--out", str(out)]
    first = CliRunner().invoke(app, [*common, "--seeds", "3", "--quiet"])
    assert first.exit_code == 0, first.output
    assert "seed_looks" not in json.loads((out / "spec.json").read_text())
    for _ in range(2):  # the second time with the same seeds: still two looks
        more = CliRunner().invoke(app, [*common, "--seeds", "5"])
        assert more.exit_code == 0, more.output
        assert json.loads((out / "spec.json").read_text())["seed_looks"] == [[0, 1, 2],
                                                                             [0, 1, 2, 3, 4]]
        text = " ".join(more.output.split())
        assert "Continues a run folder looked at with 2 different seed sets" in text
        assert "verdicts hold at 97.5%" in text
        with open(out / "summary.csv", newline="") as f:
            assert {row["paired_ci_level"] for row in csv.DictReader(f)} == {"0.975"}


@pytest.mark.parametrize("num_inits, pairs, family", [
    (3, "all", "all 3 pairs"), (4, "all", "all 6 pairs"),
    (4, "baseline", "the 3 comparisons with xavier")])
def test_verdict_line_names_the_family_it_corrected_over(num_inits, pairs, family):
    """The caption's (and JSON's `verdict_rule`'s) family size is k(k-1)/2 for every pair,
    k - 1 for the baseline's comparisons."""
    from initbench import report

    inits = ["xavier", "he_normal", "lecun_normal", "orthogonal"][:num_inits]
    final = [[0.90 - 0.01 * k + 0.003 * s for s in range(4)] for k in range(num_inits)]
    rows = summary.summarize_run(_run(final, inits), pairs=pairs)
    assert f"Holm-corrected over {family}," in report.verdict_note(rows)
