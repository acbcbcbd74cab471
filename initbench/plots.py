"""Figures of a run with matplotlib (Agg backend, no display): curves with CI bands, final accuracy.

One figure, four panels, one colour per initializer throughout:

- train loss, test loss and test accuracy per epoch: the mean over seeds (line) and the 95%
  confidence band of that mean. The band at each epoch is `stats.bootstrap_ci` of that epoch's
  finite values over seeds, the same percentile bootstrap (fixed seed, `BOOTSTRAP_RESAMPLES`)
  as the CIs in summary.csv, so the band at the last epoch is the CI in the table. With one
  finite seed there is no band. A loss panel is log-scaled when its mean curves span more
  than a factor of `LOG_RANGE`.
- final test accuracy per initializer (ranked as in the table): every seed as a dot, the mean
  as a bar with its 95% CI, and the paired verdict against the baseline under the name.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from initbench import stats
from initbench.errors import InitbenchError
from initbench.formatting import pct
from initbench.results import RunResult, write_output
from initbench.summary import SummaryRow

FORMATS = ("png", "svg", "pdf")
LOG_RANGE = 30.0
_CURVE_PANELS = (("train_loss", "train loss"), ("test_loss", "test loss"),
                 ("test_accuracy", "test accuracy (%)"))


def plot_format(path: Path) -> str:
    """The figure format named by `path`'s extension; InitbenchError for an unsupported one."""
    ext = Path(path).suffix.lower().lstrip(".")
    if ext not in FORMATS:
        raise InitbenchError(
            f"cannot plot to '{path}': unknown extension '{Path(path).suffix or '(none)'}'; "
            f"use one of {', '.join('.' + f for f in FORMATS)}."
        )
    return ext


def mean_and_band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, ci_low, ci_high), each [num_epochs + 1], of `values[num_seeds, num_epochs + 1]`.

    Over the finite values of each epoch; NaN where none (mean) or fewer than two (CI) are.
    """
    num_epochs = values.shape[1]
    mean, low, high = (np.full(num_epochs, np.nan) for _ in range(3))
    for epoch in range(num_epochs):
        column = values[:, epoch]
        finite = column[np.isfinite(column)]
        if finite.size:
            mean[epoch] = finite.mean()
            low[epoch], high[epoch] = stats.bootstrap_ci(finite)
    return mean, low, high


def wants_log(curves: np.ndarray) -> bool:
    """Log scale when the finite positive values span more than a factor of LOG_RANGE."""
    values = curves[np.isfinite(curves) & (curves > 0)]
    return values.size > 0 and values.max() / values.min() > LOG_RANGE


def preload() -> None:
    """Import what drawing a figure needs (~1 s). Only ever from the main thread: an import
    (a dlopen) in a background thread can deadlock with one in the main thread."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.backends.backend_agg
    import matplotlib.figure
    import matplotlib.ticker


def make_figure(result: RunResult, rows: list[SummaryRow]):
    """The figure for `result` and its summary `rows` (ranked, as from `summarize_run`)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from initbench import report

    ranked = [row.init for row in rows]
    palette = matplotlib.colormaps["tab10"].colors
    colors = {init: palette[k % len(palette)] for k, init in enumerate(ranked)}
    fig = Figure(figsize=(13, 9.2), dpi=110, layout="constrained")
    axes = fig.subplots(2, 2)
    epochs = np.arange(result.spec.epochs + 1)
    for ax, (metric, label) in zip(axes.flat, _CURVE_PANELS):
        scale = 100.0 if metric == "test_accuracy" else 1.0
        bands = {init: mean_and_band(result.metrics[metric][result.inits.index(init)] * scale)
                 for init in ranked}
        log = metric.endswith("loss") and wants_log(np.array([b[0] for b in bands.values()]))
        for init in ranked:
            mean, low, high = bands[init]
            ax.plot(epochs, mean, color=colors[init], lw=2, label=init,
                    marker="o" if len(epochs) <= 12 else None, ms=4)
            ax.fill_between(epochs, low, high, color=colors[init], alpha=0.2, lw=0)
        if log:
            ax.set_yscale("log")
        ax.set_title(label + (" — log scale" if log else ""), fontsize=12)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, which="major", alpha=0.3)
    _final_panel(axes[1, 1], result, rows, colors)
    # Accuracy curves rise, so the lower right of their panel is the free corner.
    handles, _ = axes[1, 0].get_legend_handles_labels()
    axes[1, 0].legend(handles, [_legend_label(row) for row in rows], loc="lower right",
                      title="final test accuracy, mean", fontsize=10, framealpha=0.9)
    fig.suptitle(report.title(result), fontsize=14, fontweight="bold")
    resamples = rows[0].bootstrap_resamples
    fig.text(0.5, -0.005,
             f"Lines: mean over seeds. Bands and error bars: 95% CI of the mean, percentile "
             f"bootstrap over seeds ({resamples} resamples). Verdicts: paired by seed against "
             f"{rows[0].baseline}; {report.verdict_note(rows)[len('Verdict: '):]}",
             ha="center", va="top", fontsize=9, color="0.35", wrap=True)
    return fig


def _legend_label(row: SummaryRow) -> str:
    text = f"{row.init}  {pct(row.test_accuracy_mean, '%')}"
    if row.val_accuracy_mean is not None and row.lr is not None:  # a tuned row: its rate
        text += f" at lr {row.lr:g}"
    if row.diverged:
        text += f" ({row.diverged}/{row.seeds} diverged)"
    return text


def _final_panel(ax, result: RunResult, rows: list[SummaryRow], colors: dict) -> None:
    """Final test accuracy: one dot per seed, mean with its CI, verdict under each name."""
    final = result.metrics["test_accuracy"][:, :, -1] * 100
    num_seeds = final.shape[1]
    offsets = np.linspace(-0.2, 0.15, num_seeds) if num_seeds > 1 else np.zeros(1)
    for x, row in enumerate(rows):
        values = final[result.inits.index(row.init)]
        finite = np.isfinite(values)
        color = colors[row.init]
        ax.scatter(x + offsets[finite], values[finite], s=28, color=color, alpha=0.75,
                   edgecolor="white", linewidth=0.5, zorder=3)
        mean = 100 * row.test_accuracy_mean
        if math.isfinite(mean):
            low, high = 100 * row.test_accuracy_ci_low, 100 * row.test_accuracy_ci_high
            ax.hlines(mean, x - 0.25, x + 0.3, color="black", lw=2, zorder=4)
            if math.isfinite(low):
                ax.errorbar(x + 0.3, mean, yerr=[[mean - low], [high - mean]], fmt="none",
                            ecolor="black", elinewidth=1.5, capsize=4, zorder=4)
            ax.annotate(f"{mean:.2f}", (x + 0.34, mean), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=9)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([f"{row.init}\n{_verdict_text(row)}" for row in rows], fontsize=9)
    for tick, row in zip(ax.get_xticklabels(), rows):
        tick.set_color(colors[row.init])
    ax.set_xlim(-0.5, len(rows) - 0.25)
    ax.set_ylabel("final test accuracy (%)")
    ax.set_title(f"final test accuracy, {num_seeds} seeds (dots), mean and 95% CI (bar)",
                 fontsize=12)
    ax.grid(True, axis="y", alpha=0.3)


def _verdict_text(row: SummaryRow) -> str:
    verdict = row.verdict
    diverged = f"\n{row.diverged} of {row.seeds} diverged" if row.diverged else ""
    if verdict == "baseline":
        return "(baseline)" + diverged
    diff = row.accuracy_diff_mean
    shown = f"{100 * diff:+.2f} pt\n" if isinstance(diff, float) and math.isfinite(diff) else ""
    # On one line, "no clear difference" ran into its neighbours' labels (5 initializers).
    verdict = verdict.replace("no clear ", "no clear\n")
    return f"{shown}{verdict}{diverged}"


def render(result: RunResult, rows: list[SummaryRow], fmt: str = "png") -> bytes:
    """The figure as bytes in `fmt` (png, svg or pdf)."""
    if fmt not in FORMATS:
        raise InitbenchError(f"unknown figure format '{fmt}'; use one of {', '.join(FORMATS)}.")
    fig = make_figure(result, rows)
    buffer = io.BytesIO()
    metadata = {"Software": None} if fmt == "png" else {}
    fig.savefig(buffer, format=fmt, bbox_inches="tight", metadata=metadata)
    return buffer.getvalue()


def save_plot(result: RunResult, rows: list[SummaryRow], path: Path,
              figure_of: Path | None = None) -> Path:
    """Write the figure to `path` (format by extension), atomically; return the path.
    `figure_of`: the run folder drawn, whose own curves.png may be replaced."""
    path = Path(path)
    data = render(result, rows, plot_format(path))
    write_output(path, data, figure_of)
    return path


def make_lr_figure(result: RunResult, per_rate: list[SummaryRow], tuned: list[SummaryRow]):
    """Final accuracy against learning rate (log axis) for a multi-rate run: validation
    (what chooses the rate) left, test right; one line per initializer, 95% bootstrap CI
    bands over seeds, each initializer's chosen rate marked with a star."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    from initbench import report, stats

    palette = matplotlib.colormaps["tab10"].colors
    colors = {init: palette[k % len(palette)] for k, init in enumerate(result.inits)}
    chosen = {row.init: row.lr for row in tuned}
    lrs = np.array(result.spec.lr)
    fig = Figure(figsize=(13, 5.4), dpi=110, layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, metric, label in zip(axes, ("val_accuracy", "test_accuracy"),
                                 ("final validation accuracy (%)", "final test accuracy (%)")):
        for i, init in enumerate(result.inits):
            final = result.metrics[metric][i, :, :, -1] * 100  # [lr, slot]
            summaries = [stats.summarize(values) for values in final]
            mean = np.array([x.mean for x in summaries])
            low = np.array([x.ci_low for x in summaries])
            high = np.array([x.ci_high for x in summaries])
            ax.plot(lrs, mean, color=colors[init], lw=2, marker="o", ms=4,
                    label=f"{init} (best lr {chosen.get(init) or float('nan'):g})")
            ax.fill_between(lrs, low, high, color=colors[init], alpha=0.2, lw=0)
            if chosen.get(init) is not None:
                k = result.spec.lr.index(chosen[init])
                ax.plot([lrs[k]], [mean[k]], marker="*", ms=16, color=colors[init],
                        markeredgecolor="black", zorder=5)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate (log scale)")
        ax.set_title(label, fontsize=12)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    axes[0].legend(loc="lower left", fontsize=10, framealpha=0.9)
    fig.suptitle(report.title(result), fontsize=14, fontweight="bold")
    fig.text(0.5, -0.01, "Lines: mean over seeds (a diverged cell is left out of its rate's "
             "mean and counts as 0 when choosing). Bands: 95% CI of the mean, percentile "
             "bootstrap over seeds. Star: the rate chosen on validation accuracy; test accuracy "
             "is only reported there.", ha="center", va="top", fontsize=9, color="0.35",
             wrap=True)
    return fig


def render_lr(result: RunResult, per_rate: list[SummaryRow], tuned: list[SummaryRow],
              fmt: str = "png") -> bytes:
    """`make_lr_figure` as bytes in `fmt`."""
    fig = make_lr_figure(result, per_rate, tuned)
    buffer = io.BytesIO()
    metadata = {"Software": None} if fmt == "png" else {}
    fig.savefig(buffer, format=fmt, bbox_inches="tight", metadata=metadata)
    return buffer.getvalue()


def separated_matrix(inits: list[str], pair_rows: list) -> np.ndarray:
    """[num_inits, num_inits] bool, True where the Holm-corrected test of `pair_rows`
    (`summary.PairRow`, every pair) separates the two at its level."""
    index = {name: k for k, name in enumerate(inits)}
    sep = np.zeros((len(inits), len(inits)), bool)
    for row in pair_rows:
        hit = bool(np.isfinite(row.p_value_holm) and row.p_value_holm < 1.0 - row.ci_level)
        sep[index[row.a], index[row.b]] = sep[index[row.b], index[row.a]] = hit
    return sep


def make_pairs_figure(result: RunResult, rows: list[SummaryRow], pair_rows: list):
    """The ranking figure of a `--pairs all` run: one line per initializer, ranked by mean
    final test accuracy (best on top), the mean with its 95% CI, and on the right a bar
    joining each group the Holm-corrected paired tests cannot separate (`stats.rank_groups`)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    from initbench import report

    inits = result.inits
    means = np.array([next(r.test_accuracy_mean for r in rows if r.init == name)
                      for name in inits])
    groups = stats.rank_groups(means, separated_matrix(inits, pair_rows))
    ranked = [inits.index(r.init) for r in rows]
    y_of = {i: len(ranked) - 1 - k for k, i in enumerate(ranked)}  # best on top
    fig = Figure(figsize=(9, 1.2 + 0.55 * len(ranked)), dpi=110, layout="constrained")
    ax = fig.subplots()
    for row in rows:
        y = y_of[inits.index(row.init)]
        mean = 100 * row.test_accuracy_mean
        if math.isfinite(mean):
            ax.plot(mean, y, "o", color="black", ms=6, zorder=3)
            low, high = 100 * row.test_accuracy_ci_low, 100 * row.test_accuracy_ci_high
            if math.isfinite(low):
                ax.hlines(y, low, high, color="0.4", lw=2)
            ax.annotate(f"{mean:.2f}", (mean, y), xytext=(0, 7), textcoords="offset points",
                        ha="center", fontsize=8)
    ax.set_yticks([y_of[i] for i in ranked])
    ax.set_yticklabels([f"{k + 1}. {inits[i]}" for k, i in enumerate(ranked)])
    ax.set_ylim(-0.6, len(ranked) - 0.4)
    left, right = ax.get_xlim()
    span = right - left
    for g, group in enumerate(groups):
        x = right + span * (0.04 + 0.05 * g)
        ys = [y_of[i] for i in group]
        ax.plot([x, x], [min(ys) - 0.15, max(ys) + 0.15], color=f"C{g % 10}", lw=5,
                solid_capstyle="round")
    ax.set_xlim(left, right + span * (0.08 + 0.05 * len(groups)))
    ax.set_xlabel("final test accuracy (%), mean and 95% CI over seeds")
    ax.grid(True, axis="x", alpha=0.3)
    level = pair_rows[0].ci_level if pair_rows else stats.CI_LEVEL
    ax.set_title(report.title(result), fontsize=11, fontweight="bold")
    fig.text(0.5, -0.01,
             f"Bars on the right join initializers that no paired t test over seeds separates "
             f"after Holm's correction over all {len(pair_rows)} pairs (level "
             f"{100 * (1 - level):g}%); initializers on no common bar differ.",
             ha="center", va="top", fontsize=8.5, color="0.35", wrap=True)
    return fig


def render_pairs(result: RunResult, rows: list[SummaryRow], pair_rows: list,
                 fmt: str = "png") -> bytes:
    """The ranking figure (`make_pairs_figure`) as bytes in `fmt` (png, svg or pdf)."""
    if fmt not in FORMATS:
        raise InitbenchError(f"unknown figure format '{fmt}'; use one of {', '.join(FORMATS)}.")
    buffer = io.BytesIO()
    metadata = {"Software": None} if fmt == "png" else {}
    make_pairs_figure(result, rows, pair_rows).savefig(buffer, format=fmt, bbox_inches="tight",
                                                       metadata=metadata)
    return buffer.getvalue()
