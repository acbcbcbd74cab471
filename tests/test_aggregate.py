"""`initbench aggregate`: initializers across tasks. Tiny arrays with hand-computed answers,
rliable's reference implementation on the three committed runs, the honesty rule, the CLI."""

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from initbench import aggregate as A
from initbench import runfolder
from initbench.cli import app

ROOT = Path(__file__).resolve().parents[1]
RUNS = [ROOT / "results" / name for name in ("reference", "cnn-reference", "digits")]
COMMITTED = ROOT / "results" / "aggregate"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def committed_tasks():
    runs = [runfolder.read_run(folder) for folder in RUNS]
    return A.task_scores(runs, [str(folder) for folder in RUNS])


# ------------------------------------------------------------------ hand-computed


def test_estimators_on_tiny_arrays_by_hand():
    assert A.iqm(np.arange(1.0, 9.0)) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert A.normalized_score(np.array([0.1, 1.0, 0.55, np.nan]), 10) == pytest.approx(
        [0.0, 1.0, 0.5, 0.0])  # chance, perfect, halfway, a diverged cell at chance
    x = np.array([[1.0, 5.0], [3.0, 5.0]])  # [seed, task]
    y = np.array([[2.0, 5.0], [2.0, 4.0]])
    # task 0: 1<2, 1<2, 3>2, 3>2 -> 1/2; task 1: 5=5 (1/2), 5>4, 5=5 (1/2), 5>4 -> 3/4
    assert A.improvement_probability(x, y) == pytest.approx((0.5 + 0.75) / 2)
    assert A.improvement_probability(x, x) == pytest.approx(0.5)
    assert A.score_profile(x, np.array([0.0, 2.0, 5.0])) == pytest.approx([1.0, 0.75, 0.0])
    assert A.pair_verdict(0.51, 0.9) == "better" and A.pair_verdict(0.1, 0.49) == "worse"
    assert A.pair_verdict(0.3, 0.7) == "no clear difference"
    assert A.pair_verdict(0.5, 0.9) == "no clear difference"  # touching 1/2 is not a call


def test_a_higher_iqm_is_not_a_winner_when_the_intervals_say_so():
    """Two initializers a hair apart (ranks differ) are 'no clear difference', not better;
    one far below is called worse by the others, and the intervals are Bonferroni's."""
    rng = np.random.default_rng(0)
    base = rng.normal(0.9, 0.02, size=(5, 3))
    scores = np.stack([base + 0.001, base + rng.normal(0, 0.02, (5, 3)), base - 0.3])
    agg = A.summarize(["a", "b", "c"], [], scores, np.zeros_like(scores, bool), reps=2000)
    pairs = {(p.a, p.b): p for p in agg.pairs}
    top, second = agg.rows[0].init, agg.rows[1].init
    assert pairs[(top, second)].verdict == "no clear difference"
    assert second not in agg.rows[0].better_than.split(";")
    assert all(pairs[(x, "c")].verdict == "better" for x in ("a", "b"))
    assert agg.rows[-1].init == "c" and agg.rows[-1].better_than == ""
    assert all(p.ci_level == pytest.approx(1 - 0.05 / 3) for p in agg.pairs)


# ------------------------------------------------------------------ against rliable


def test_point_estimates_equal_rliables_on_the_committed_runs(committed_tasks):
    """IQM, P(X > Y) for every pair and the performance profile, on the three committed
    runs as three tasks, are rliable's own functions' numbers."""
    from rliable import library as rly
    from rliable import metrics

    inits, tasks, scores, diverged, _ = committed_tasks
    agg = A.summarize(inits, tasks, scores, diverged, reps=200)
    assert [t.folder for t in tasks] == [str(f) for f in RUNS] and scores.shape == (5, 5, 3)
    for row in agg.rows:
        assert row.iqm == pytest.approx(metrics.aggregate_iqm(scores[inits.index(row.init)]),
                                        abs=1e-12)
    for pair in agg.pairs:
        expected = metrics.probability_of_improvement(scores[inits.index(pair.a)],
                                                      scores[inits.index(pair.b)])
        assert pair.p_improvement == pytest.approx(expected, abs=1e-12)
    for i in range(len(inits)):
        assert agg.profile[i] == pytest.approx(rly.score_distributions(scores[i], agg.taus),
                                               abs=1e-12)


def _rliable_bootstrap_runs() -> str | None:
    """Why rliable's own bootstrap cannot run here, or None."""
    import arch

    if int(arch.__version__.split(".")[0]) >= 8:
        return (f"rliable 1.2's bootstrap does not run under arch {arch.__version__} (it needs "
                "arch<8; the dev extra installs arch 7 by pinning pandas<3)")
    return None


@pytest.mark.filterwarnings("ignore::FutureWarning")  # arch 7 on rliable's random_state
def test_intervals_match_rliables_stratified_bootstrap(committed_tasks):
    """The stratified bootstrap intervals (scipy's multi-sample bootstrap, one sample per
    task) match rliable's `StratifiedBootstrap` and `StratifiedIndependentBootstrap` within
    Monte Carlo error: IQM bounds within a quarter of the interval's width, P(X > Y) bounds
    within 0.04 (measured spread over rliable's seeds: 0.13 of the width and 0.013)."""
    why = _rliable_bootstrap_runs()
    if why:
        pytest.skip(why)
    from rliable import library as rly
    from rliable import metrics

    inits, _, scores, _, _ = committed_tasks
    checked = ("xavier", "normal")  # the widest interval and the lowest (rliable is slow)
    _, intervals = rly.get_interval_estimates(
        {init: scores[inits.index(init)] for init in checked},
        lambda x: np.array([metrics.aggregate_iqm(x)]), reps=1000,
        random_state=np.random.RandomState(0))
    for init in checked:
        low, high = A.iqm_interval(scores[inits.index(init)])
        ref_low, ref_high = intervals[init].ravel()
        width = ref_high - ref_low
        assert abs(low - ref_low) < 0.25 * width and abs(high - ref_high) < 0.25 * width, init
    x, y = scores[inits.index("xavier")], scores[inits.index("he_normal")]
    _, intervals = rly.get_interval_estimates(
        {"pair": [x, y]}, lambda a, b: np.array([metrics.probability_of_improvement(a, b)]),
        reps=1000, random_state=np.random.RandomState(0))
    assert A.improvement_interval(x, y) == pytest.approx(tuple(intervals["pair"].ravel()),
                                                         abs=0.04)


# ------------------------------------------------------------------ the command


def test_aggregate_writes_the_committed_tables_and_figure(tmp_path):
    """`aggregate` over the three committed runs prints both tables and writes every file;
    the tables are the committed results/aggregate/ byte for byte (a fixed bootstrap seed);
    the figure is a PNG."""
    out = tmp_path / "agg"
    result = invoke("aggregate", *RUNS, "--out", out)
    assert result.exit_code == 0, result.output
    assert "IQM [95% CI]" in result.output and "P(a > b) [99.5% CI]" in result.output
    for name in ("aggregate.csv", "improvement.csv", "profile.csv", "aggregate.md",
                 "tasks.csv"):  # the folders as make aggregate names them, from the root
        written = (out / name).read_text().replace(f"{ROOT}/", "")
        assert written == (COMMITTED / name).read_text(), name
    assert (out / "aggregate.png").read_bytes().startswith(b"\x89PNG")


def test_aggregate_refuses_bad_input_in_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "agg"
    cases = [
        ((RUNS[0],), "at least two run folders"),
        ((RUNS[0], RUNS[0]), "given twice"),
        ((RUNS[0], tmp_path / "missing"), "missing"),
    ]
    copy = tmp_path / "copy"
    shutil.copytree(RUNS[0], copy)
    cases.append(((RUNS[0], copy), "same training setting"))
    for args, needed in cases:
        result = invoke("aggregate", *args, "--out", out)
        assert result.exit_code == 2 and result.output.count("error:") == 1, result.output
        assert needed in result.output, result.output
        assert not out.exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    result = invoke("aggregate", *RUNS, "--out", tmp_path / "full")
    assert result.exit_code == 2 and "already holds files" in result.output
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["x"]
    result = invoke("aggregate", *RUNS, "--reps", "5")
    assert result.exit_code == 2 and "--reps" in result.output


def test_unequal_seeds_and_too_few_shared_initializers_are_refused(committed_tasks):
    runs = [runfolder.read_run(folder) for folder in RUNS[:2]]
    names = [str(f) for f in RUNS[:2]]
    fewer = dataclasses.replace(runs[1], spec=runs[1].spec.replace(seeds=(0, 1, 2)),
                                metrics={k: v[:, :3] for k, v in runs[1].metrics.items()})
    with pytest.raises(A.InitbenchError, match=r"same number of seeds.*has 5.*has 3"):
        A.task_scores([runs[0], fewer], names)
    inits = ("xavier", "normal")
    other = dataclasses.replace(
        runs[1], spec=runs[1].spec.replace(inits=inits),
        metrics={k: v[[0, 4]] for k, v in runs[1].metrics.items()})
    shared, _, scores, _, dropped = A.task_scores([runs[0], other], names)
    assert shared == ["xavier", "normal"] and scores.shape == (2, 5, 2)
    assert dropped["he_normal"] == [names[1]]  # left out, and said where it is missing
    lone = dataclasses.replace(
        runs[1], spec=runs[1].spec.replace(inits=("xavier",)),
        metrics={k: v[[0]] for k, v in runs[1].metrics.items()})
    with pytest.raises(A.InitbenchError, match="fewer than two initializers"):
        A.task_scores([runs[0], lone], names)


def test_every_aggregate_column_is_documented():
    section = (ROOT / "docs" / "files.md").read_text().split("## aggregate/")[1].split("\n## ")[0]
    columns = {*A.IQM_COLUMNS, *A.IMPROVEMENT_COLUMNS, "tau", "share_above", "label", "folder",
               "dataset", "num_classes", "training_key"}
    for name in ("aggregate.csv", "improvement.csv", "profile.csv", "tasks.csv"):
        header = (COMMITTED / name).read_text().splitlines()[0].split(",")
        columns |= {c for c in header if not c.endswith("_mean_score")}
    for column in columns:
        assert f"`{column}`" in section, column
