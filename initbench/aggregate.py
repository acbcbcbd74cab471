"""Many studies at once: initializers compared across tasks (runs that differ in dataset,
network or recipe), as rliable does it, with the honesty rules of the ranked table.

One array layout throughout: `scores[num_inits, num_seeds, num_tasks]`, the normalized
final test accuracy of each (initializer, seed, task); `scores[i]` is rliable's
`num_runs x num_tasks` matrix of initializer i. A task is one run folder.

- Normalized score: (accuracy − chance) / (1 − chance), chance = 1 / num_classes, so 0 is
  chance and 1 is perfect on every task. A diverged cell scores 0 (it ends at chance).
- IQM: the interquartile mean (25% trimmed mean) over every (seed, task) score of an
  initializer (rliable's `aggregate_iqm`), with a stratified bootstrap interval: the seeds
  of each task are resampled with replacement, each task on its own (scipy's multi-sample
  `bootstrap`, one sample per task; rliable's `StratifiedBootstrap`), percentile method.
- P(X > Y): per task, the probability that a seed of X scores above a seed of Y (ties count
  1/2; the Mann-Whitney U over n·m), averaged over tasks (rliable's
  `probability_of_improvement`), with the interval of X's and Y's seeds resampled
  independently within each task (rliable's `StratifiedIndependentBootstrap`).
- Performance profile: the share of (seed, task) scores above each threshold τ (rliable's
  `score_distributions`), with stratified bootstrap bands.

Honesty: rank alone is not a verdict. X is called better than Y only when the whole
interval of P(X > Y) lies above 1/2 (worse: below), with the intervals of all pairs at
1 − 5%/m (Bonferroni over the m pairs, 5% family-wise); otherwise "no clear difference".
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np
from scipy import stats as sstats

from initbench.errors import InitbenchError

CI_LEVEL = 0.95
FAMILY_ALPHA = 0.05
DEFAULT_REPS = 10_000
BOOTSTRAP_SEED = 0  # fixed: the same folders give the same intervals, byte for byte
NUM_TAUS = 101


@dataclass(frozen=True)
class Task:
    """One run folder as a task: its label, folder, dataset and class count, and its
    training setting's key."""

    label: str
    folder: str
    dataset: str
    num_classes: int
    num_seeds: int
    training_key: str


@dataclass(frozen=True)
class IqmRow:
    """One initializer across tasks: the IQM of its normalized scores with its stratified
    bootstrap interval (at `ci_level`), the plain mean, and the initializers it beats."""

    rank: int
    init: str
    num_tasks: int
    num_seeds: int
    num_diverged: int
    iqm: float
    iqm_ci_low: float
    iqm_ci_high: float
    ci_level: float
    mean: float
    better_than: str  # initializers it is called better than, ";"-joined; "" for none


@dataclass(frozen=True)
class ImprovementRow:
    """P(a > b) across tasks, its interval at `ci_level` (Bonferroni over the pairs) and the
    verdict that interval gives (a ranks above b by IQM)."""

    a: str
    b: str
    p_improvement: float
    ci_low: float
    ci_high: float
    ci_level: float
    verdict: str


@dataclass(frozen=True)
class Aggregate:
    """Everything `initbench aggregate` reports. `scores[num_inits, num_seeds, num_tasks]`,
    `profile[num_inits, num_taus]` with its band `profile_low/high` at `CI_LEVEL`."""

    inits: list[str]
    tasks: list[Task]
    scores: np.ndarray
    diverged: np.ndarray
    rows: list[IqmRow]
    pairs: list[ImprovementRow]
    taus: np.ndarray
    profile: np.ndarray
    profile_low: np.ndarray
    profile_high: np.ndarray
    reps: int
    dropped: dict[str, list[str]]  # initializer -> the tasks it is missing from


IQM_COLUMNS = tuple(f.name for f in dataclasses.fields(IqmRow))
IMPROVEMENT_COLUMNS = tuple(f.name for f in dataclasses.fields(ImprovementRow))


# ------------------------------------------------------------------ the estimators


def normalized_score(accuracy: np.ndarray, num_classes: int) -> np.ndarray:
    """(accuracy − 1/num_classes) / (1 − 1/num_classes); NaN (a diverged cell) becomes 0."""
    chance = 1.0 / num_classes
    score = (np.asarray(accuracy, np.float64) - chance) / (1.0 - chance)
    return np.where(np.isfinite(score), score, 0.0)


def iqm(scores: np.ndarray, axis=None) -> np.ndarray:
    """Interquartile mean: the 25% trimmed mean (rliable's `aggregate_iqm`; all axes by
    default)."""
    return sstats.trim_mean(scores, proportiontocut=0.25, axis=axis)


def improvement_probability(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) of `x[num_seeds_x, num_tasks]` over `y[num_seeds_y, num_tasks]`: per task the
    share of seed pairs where x is above (ties 1/2), averaged over tasks."""
    return float(np.mean([_task_improvement(x[:, t], y[:, t]) for t in range(x.shape[1])]))


def _task_improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(x > y) over the last axis of each (any leading batch axes), ties counting 1/2."""
    above = x[..., :, None] > y[..., None, :]
    ties = x[..., :, None] == y[..., None, :]
    return (above + 0.5 * ties).mean(axis=(-2, -1))


def score_profile(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Share of the scores (all axes) above each of `taus` (rliable's `score_distributions`)."""
    flat = np.asarray(scores).ravel()
    return (flat[None, :] > np.asarray(taus)[:, None]).mean(axis=1)


def _by_task(matrix: np.ndarray) -> list[np.ndarray]:
    """`matrix[num_seeds, num_tasks]` as one sample per task (the strata)."""
    return [matrix[:, t] for t in range(matrix.shape[1])]


def _bootstrap(samples: list[np.ndarray], statistic, level: float, reps: int, seed: int):
    """scipy's percentile bootstrap, each sample resampled on its own (the strata)."""
    result = sstats.bootstrap(samples, statistic, n_resamples=reps, confidence_level=level,
                              method="percentile", vectorized=True, axis=-1,
                              rng=np.random.default_rng(seed))
    return result.confidence_interval.low, result.confidence_interval.high


def iqm_interval(matrix: np.ndarray, level: float = CI_LEVEL, reps: int = DEFAULT_REPS,
                 seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Stratified bootstrap interval of `iqm(matrix[num_seeds, num_tasks])`."""
    def statistic(*samples, axis=-1):
        return iqm(np.concatenate(samples, axis=-1), axis=-1)

    low, high = _bootstrap(_by_task(matrix), statistic, level, reps, seed)
    return float(low), float(high)


def improvement_interval(x: np.ndarray, y: np.ndarray, level: float = CI_LEVEL,
                         reps: int = DEFAULT_REPS, seed: int = BOOTSTRAP_SEED
                         ) -> tuple[float, float]:
    """Interval of `improvement_probability(x, y)`, x's and y's seeds resampled
    independently within each task."""
    num_tasks = x.shape[1]

    def statistic(*samples, axis=-1):
        xs, ys = samples[:num_tasks], samples[num_tasks:]
        return np.mean([_task_improvement(a, b) for a, b in zip(xs, ys)], axis=0)

    low, high = _bootstrap(_by_task(x) + _by_task(y), statistic, level, reps, seed)
    return float(low), float(high)


def profile_band(matrix: np.ndarray, taus: np.ndarray, level: float = CI_LEVEL,
                 reps: int = DEFAULT_REPS, seed: int = BOOTSTRAP_SEED
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Stratified bootstrap band of `score_profile(matrix, taus)`, one interval per τ."""
    def statistic(*samples, axis=-1):
        pooled = np.concatenate(samples, axis=-1)  # [..., n]
        shares = (pooled[..., None, :] > taus[:, None]).mean(axis=-1)  # [..., num_taus]
        return np.moveaxis(shares, -1, 0)

    low, high = _bootstrap(_by_task(matrix), statistic, level, reps, seed)
    return np.asarray(low, np.float64), np.asarray(high, np.float64)


def pair_verdict(low: float, high: float) -> str:
    """'better' when the interval of P(a > b) lies above 1/2, 'worse' below, else none."""
    if low > 0.5:
        return "better"
    if high < 0.5:
        return "worse"
    return "no clear difference"


def taus_for(scores: np.ndarray) -> np.ndarray:
    """`NUM_TAUS` thresholds from just below the 5th percentile of all scores (to 0.01) to 1:
    a few far-off cells (N(0, 1) weights on a CNN) would squeeze every other curve into the
    right edge; the share above the first threshold still counts them."""
    low = float(np.floor(100 * min(float(np.quantile(scores, 0.05)), 0.99)) / 100)
    return np.linspace(low, 1.0, NUM_TAUS)


def summarize(inits: list[str], tasks: list[Task], scores: np.ndarray, diverged: np.ndarray,
              reps: int = DEFAULT_REPS, dropped: dict | None = None) -> Aggregate:
    """Rank `inits` by IQM over `scores[num_inits, num_seeds, num_tasks]` and compare every
    pair (module docstring); `diverged` has `scores`' shape."""
    if reps < 100:
        raise InitbenchError(f"--reps must be at least 100 bootstrap resamples, got {reps}.")
    num_seeds, num_tasks = scores.shape[1:]
    points = [float(iqm(scores[i])) for i in range(len(inits))]
    order = sorted(range(len(inits)), key=lambda i: (-points[i], i))
    num_pairs = len(inits) * (len(inits) - 1) // 2
    pair_level = 1 - FAMILY_ALPHA / max(num_pairs, 1)
    pairs = []
    for a, b in itertools.combinations(order, 2):  # a ranks above b
        p = improvement_probability(scores[a], scores[b])
        low, high = improvement_interval(scores[a], scores[b], pair_level, reps)
        pairs.append(ImprovementRow(inits[a], inits[b], p, low, high, pair_level,
                                    pair_verdict(low, high)))
    rows = []
    for rank, i in enumerate(order, 1):
        low, high = iqm_interval(scores[i], CI_LEVEL, reps)
        beaten = [row.b for row in pairs if row.a == inits[i] and row.verdict == "better"]
        beaten += [row.a for row in pairs if row.b == inits[i] and row.verdict == "worse"]
        rows.append(IqmRow(rank, inits[i], num_tasks, num_seeds, int(diverged[i].sum()),
                           points[i], low, high, CI_LEVEL, float(np.mean(scores[i])),
                           ";".join(beaten)))
    taus = taus_for(scores)
    profile = np.stack([score_profile(scores[i], taus) for i in range(len(inits))])
    bands = [profile_band(scores[i], taus, CI_LEVEL, reps) for i in range(len(inits))]
    return Aggregate(inits, tasks, scores, diverged, rows, pairs, taus, profile,
                     np.stack([b[0] for b in bands]), np.stack([b[1] for b in bands]),
                     reps, dropped or {})


# ------------------------------------------------------------------ from run folders


def task_scores(runs: list, folders: list[str], labels: list[str] | None = None
                ) -> tuple[list[str], list[Task], np.ndarray, np.ndarray, dict[str, list[str]]]:
    """(shared initializers, tasks, scores[num_inits, num_seeds, num_tasks], diverged,
    dropped) of `runs` (`results.RunResult`s read from `folders`; `labels` name the tasks,
    the folders by default).

    A multi-rate run counts with each initializer at its chosen rate (the tuned cells).
    Initializers missing from some run are left out (`dropped` names where they are
    missing); every run must have the same number of seeds and a different training
    setting (two runs of one setting are one task: merge them with `report A B --out`)."""
    from initbench import data, summary

    if len(runs) < 2:
        raise InitbenchError("aggregate needs at least two run folders (tasks); for one run "
                             "use initbench report.")
    views = [summary.view(run) for run in runs]
    keys: dict[str, str] = {}
    for view, folder in zip(views, folders):
        if view.labels is not None:
            raise InitbenchError(f"{folder}: runs of different settings side by side cannot "
                                 "be one task.")
        key = view.spec.training_key()
        if key in keys:
            raise InitbenchError(f"{keys[key]} and {folder} have the same training setting: "
                                 "they are one task. Merge them first (initbench report "
                                 f"{keys[key]} {folder} --out MERGED).")
        keys[key] = folder
    seeds = {folder: len(view.seeds) for view, folder in zip(views, folders)}
    if len(set(seeds.values())) > 1:
        raise InitbenchError("aggregate needs the same number of seeds in every run "
                             "(the stratified bootstrap resamples seeds within each task): "
                             + ", ".join(f"{f} has {n}" for f, n in seeds.items()) + ".")
    shared = [i for i in views[0].inits if all(i in view.inits for view in views[1:])]
    every = dict.fromkeys(i for view in views for i in view.inits)
    dropped = {i: [f for view, f in zip(views, folders) if i not in view.inits]
               for i in every if i not in shared}
    if len(shared) < 2:
        raise InitbenchError("the runs share fewer than two initializers ("
                             + (", ".join(shared) or "none") + "): nothing to compare. "
                             "Initializers per run: " + "; ".join(
                                 f"{f}: {','.join(v.inits)}" for v, f in zip(views, folders)))
    tasks, columns, flags = [], [], []
    for view, folder in zip(views, folders):
        try:
            num_classes = data.info(view.dataset).num_classes
        except InitbenchError:
            raise InitbenchError(f"{folder}: dataset '{view.dataset}' has no known class "
                                 "count, so its accuracy cannot be normalized.") from None
        # [init, weight seed] (a seed's data orders averaged), NaN when diverged
        accuracy = summary.seed_units(view, view.metrics["test_accuracy"][..., -1])
        index = [view.inits.index(i) for i in shared]
        final = accuracy[index]
        columns.append(normalized_score(final, num_classes))
        flags.append(~np.isfinite(final))
        label = labels[len(tasks)] if labels is not None else folder
        tasks.append(Task(label, folder, view.dataset, num_classes, len(view.seeds),
                          view.spec.training_key()))
    return (shared, tasks, np.stack(columns, axis=-1), np.stack(flags, axis=-1), dropped)


# ------------------------------------------------------------------ as text


def iqm_csv_rows(agg: Aggregate) -> list[dict]:
    return [dataclasses.asdict(row) for row in agg.rows]


def improvement_csv_rows(agg: Aggregate) -> list[dict]:
    return [dataclasses.asdict(row) for row in agg.pairs]


def profile_csv_rows(agg: Aggregate) -> list[dict]:
    return [{"init": init, "tau": float(tau), "share_above": float(agg.profile[i, k]),
             "ci_low": float(agg.profile_low[i, k]), "ci_high": float(agg.profile_high[i, k])}
            for i, init in enumerate(agg.inits) for k, tau in enumerate(agg.taus)]


def task_csv_rows(agg: Aggregate) -> list[dict]:
    rows = []
    for t, task in enumerate(agg.tasks):
        row = dataclasses.asdict(task)
        for i, init in enumerate(agg.inits):
            row[f"{init}_mean_score"] = float(np.mean(agg.scores[i, :, t]))
        rows.append(row)
    return rows


def verdict_note(agg: Aggregate) -> str:
    """How the pair verdicts were reached, and what the scores are."""
    m = len(agg.pairs)
    level = 100 * agg.pairs[0].ci_level if agg.pairs else 100 * CI_LEVEL
    return (f"Score: (accuracy − chance) / (1 − chance) per task, chance = 1/classes; a "
            f"diverged cell scores 0. IQM: 25% trimmed mean over {len(agg.tasks)} tasks × "
            f"{agg.scores.shape[1]} seeds, {100 * CI_LEVEL:g}% stratified bootstrap interval "
            f"(seeds resampled within each task, {agg.reps} resamples, percentile). "
            f"P(X > Y): per task the share of seed pairs where X scores above Y (ties 1/2), "
            f"averaged over tasks; its interval at {level:.4g}% (Bonferroni over the {m} "
            f"pairs, 5% family-wise). X is called better than Y only when that whole interval "
            "lies above 0.5; ranks by IQM alone are not verdicts.")


def markdown(agg: Aggregate) -> str:
    """The IQM table and the pair table as GitHub markdown, with the note."""
    lines = ["| # | init | tasks × seeds | diverged | IQM [95% CI] | mean | clearly better than |",
             "|---:|:---|---:|---:|---:|---:|:---|"]
    for row in agg.rows:
        lines.append(f"| {row.rank} | {row.init} | {row.num_tasks} × {row.num_seeds} | "
                     f"{row.num_diverged} | {iqm_text(row)} | {row.mean:.3f} | "
                     f"{row.better_than.replace(';', ', ') or '—'} |")
    level = f"{100 * agg.pairs[0].ci_level:.4g}%" if agg.pairs else ""
    lines += ["", f"| a | b | P(a > b) [{level} CI] | verdict (a vs b) |", "|:---|:---|---:|:---|"]
    lines += [f"| {p.a} | {p.b} | {pair_text(p)} | {p.verdict} |" for p in agg.pairs]
    tasks = "; ".join(f"{t.label} ({t.folder})" for t in agg.tasks)
    lines += ["", f"_Tasks: {tasks}. {verdict_note(agg)}_", ""]
    return "\n".join(lines)


def iqm_text(row: IqmRow) -> str:
    return f"{row.iqm:.3f} [{row.iqm_ci_low:.3f}, {row.iqm_ci_high:.3f}]"


def pair_text(row: ImprovementRow) -> str:
    return f"{row.p_improvement:.2f} [{row.ci_low:.2f}, {row.ci_high:.2f}]"
