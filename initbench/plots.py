"""Figures of a run with matplotlib (Agg backend, no display): curves with CI bands, final accuracy.

One figure, five panels and a legend beside them. Every figure of every run gives an
initializer the same colour, chosen by its name (`init_color`), never by its rank:

- train loss, test loss and test accuracy per epoch: the mean over seeds (line) and the
  confidence band of that mean. The band at each epoch is `stats.t_ci` of that epoch's
  finite values over seeds at the table's level, the same Student t interval
  as the CIs in summary.csv, so the band at the last epoch is the CI in the table. With one
  finite seed there is no band. A loss panel is log-scaled when its mean curves span more
  than a factor of `LOG_RANGE`.
- final test accuracy per initializer (ranked as in the table): every seed as a dot, the mean
  as a bar with its 95% CI, and the paired verdict against the baseline under the name.
- the paired design: each seed's final accuracy minus the baseline's on the same seed, the
  mean difference and the interval beside the verdict (`accuracy_diff_ci_*`).
In both final panels an initializer far below the others (e.g. N(0, 1) weights on the CNN)
is not allowed to squeeze them together: the axis keeps to the others, and the outlier is
drawn as an arrow at the bottom edge labelled with its mean and range.

Over 450 lines: the five panels share the colour rule, the outlier-arrow rule and the legend
placement, so a run's figure is one module; the figures of other commands have their own modules
(`scaling_plots`, `phase_plot`, `aggregate_plot`).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from initbench import stats
from initbench.errors import InitbenchError
from initbench.formatting import pct
from initbench.results import RunResult
from initbench.runfolder import write_output
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


def mean_and_band(values: np.ndarray, level: float = stats.CI_LEVEL,
                  bounds: tuple[float, float] = (-np.inf, np.inf)
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, ci_low, ci_high), each [num_epochs + 1], of `values[num_seeds, num_epochs + 1]`.

    Over the finite values of each epoch; NaN where none (mean) or fewer than two (CI) are.
    The band is the Student t CI at `level` (`stats.t_ci`, the table's), clipped to `bounds`
    (an accuracy's [0, 100]: clipping never loses coverage).
    """
    num_epochs = values.shape[1]
    mean, low, high = (np.full(num_epochs, np.nan) for _ in range(3))
    for epoch in range(num_epochs):
        column = values[:, epoch]
        finite = column[np.isfinite(column)]
        if finite.size:
            mean[epoch] = finite.mean()
            low[epoch], high[epoch] = np.clip(stats.t_ci(finite, level), *bounds)
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


# Fixed colours for the initializers met most (tab10 order); other names hash into tab20.
_NAMED_COLORS = {"xavier": 0, "glorot_uniform": 0, "he_normal": 1, "lecun_normal": 2,
                 "normal": 3, "orthogonal": 4, "he_uniform": 5, "lecun_uniform": 6,
                 "lsuv": 8, "torch_default": 9, "glorot_normal": 7}


def init_color(name: str) -> tuple:
    """The colour of initializer `name` in every figure of every run (RGB)."""
    import zlib

    import matplotlib

    if name in _NAMED_COLORS:
        return matplotlib.colormaps["tab10"].colors[_NAMED_COLORS[name]]
    base = name.split(" ")[0]  # a side-by-side label such as "xavier lr=0.1"
    if base != name:
        return init_color(base)
    palette = matplotlib.colormaps["tab20"].colors
    return palette[zlib.crc32(name.encode()) % len(palette)]


def _outliers(values: dict[str, np.ndarray]) -> set[str]:
    """Initializers whose values lie far below the others' (more than max(5 points, 4x the
    widest spread of the others) under the median of the means), given as {init: finite
    values in points}; never more than half of them."""
    means = {k: float(np.mean(v)) for k, v in values.items() if v.size}
    if len(means) < 3:
        return set()
    middle = float(np.median(list(means.values())))
    spreads = [float(np.ptp(v)) for k, v in values.items() if v.size]
    limit = middle - max(5.0, 4 * float(np.median(spreads)))
    low = {k for k, m in means.items() if m < limit}
    return low if len(low) <= len(means) // 2 else set()


def _keep_readable(ax, values: dict[str, np.ndarray], xs: dict[str, float], unit: str) -> None:
    """Limit the y axis to the initializers that are not outliers and draw each outlier as an
    arrow at the bottom edge with its mean and range (`_outliers`)."""
    low = _outliers(values)
    if not low:
        return
    kept = np.concatenate([v for k, v in values.items() if k not in low and v.size])
    pad = max(0.5, 0.15 * float(np.ptp(kept)))
    bottom, top = float(kept.min()) - 2.5 * pad, float(kept.max()) + pad
    ax.set_ylim(bottom, top)
    for name in low:
        v = values[name]
        y = bottom + 0.04 * (top - bottom)
        ax.annotate("", (xs[name], bottom), xytext=(xs[name], y + 0.12 * (top - bottom)),
                    arrowprops={"arrowstyle": "-|>", "color": init_color(name), "lw": 2})
        ax.annotate(f"below: mean {np.mean(v):.1f}{unit}\n({v.min():.1f} to {v.max():.1f})",
                    (xs[name], y + 0.14 * (top - bottom)), ha="center", va="bottom",
                    fontsize=8, color="0.2")


def make_figure(result: RunResult, rows: list[SummaryRow]):
    """The figure for `result` and its summary `rows` (ranked, as from `summarize_run`)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from initbench import report

    ranked = [row.init for row in rows]
    colors = {init: init_color(init) for init in ranked}
    fig = Figure(figsize=(16, 9.2), dpi=110, layout="constrained")
    axes = fig.subplot_mosaic([["train_loss", "test_loss", "test_accuracy"],
                               ["final", "paired", "legend"]])
    epochs = np.arange(result.spec.epochs + 1)
    for ax, (metric, label) in zip((axes[m] for m, _ in _CURVE_PANELS), _CURVE_PANELS):
        scale = 100.0 if metric == "test_accuracy" else 1.0
        bounds = (0.0, 100.0) if metric == "test_accuracy" else (-np.inf, np.inf)
        bands = {init: mean_and_band(result.metrics[metric][result.inits.index(init)] * scale,
                                     rows[0].ci_level, bounds)
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
    _final_panel(axes["final"], result, rows, colors)
    _paired_panel(axes["paired"], result, rows, colors)
    # The legend has a cell of its own: in a panel it covered data (a band, a low point).
    handles, _ = axes["test_accuracy"].get_legend_handles_labels()
    axes["legend"].axis("off")
    axes["legend"].legend(handles, [_legend_label(row) for row in rows], loc="center",
                          title="final test accuracy, mean", fontsize=11, frameon=False)
    fig.suptitle(report.title(result), fontsize=14, fontweight="bold")
    fig.text(0.5, -0.005,
             f"Lines: mean over seeds. Bands and accuracy error bars: {100 * rows[0].ci_level:g}% "
             f"CI of the mean, Student t over seeds. Verdicts: paired by seed against "
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
    _keep_readable(ax, {row.init: _finite(final[result.inits.index(row.init)]) for row in rows},
                   {row.init: x for x, row in enumerate(rows)}, "%")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([f"{_tick_name(row.init)}\n{_verdict_text(row)}" for row in rows],
                       fontsize=9)
    for tick, row in zip(ax.get_xticklabels(), rows):
        tick.set_color(colors[row.init])
    ax.set_xlim(-0.5, len(rows) - 0.25)
    ax.set_ylabel("final test accuracy (%)")
    ax.set_title(f"final test accuracy, {num_seeds} seeds (dots), mean and "
                 f"{100 * rows[0].ci_level:g}% CI (bar)",
                 fontsize=12)
    ax.grid(True, axis="y", alpha=0.3)


def _tick_name(label: str) -> str:
    """A label under a narrow column: its parameters on a line of their own."""
    return label.replace("(", "\n(", 1)


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def _paired_panel(ax, result: RunResult, rows: list[SummaryRow], colors: dict) -> None:
    """The paired design: per seed, this initializer's final accuracy minus the baseline's on
    the same seed (dots), the mean difference and the interval beside its verdict (bar)."""
    final = result.metrics["test_accuracy"][:, :, -1] * 100
    first = rows[0]
    base = final[result.inits.index(first.baseline)]
    others = [row for row in rows if row.verdict != "baseline"]
    num_seeds = final.shape[1]
    offsets = np.linspace(-0.2, 0.15, num_seeds) if num_seeds > 1 else np.zeros(1)
    diffs = {}
    for x, row in enumerate(others):
        d = final[result.inits.index(row.init)] - base
        finite = np.isfinite(d)
        diffs[row.init] = d[finite]
        ax.scatter(x + offsets[finite], d[finite], s=28, color=colors[row.init], alpha=0.75,
                   edgecolor="white", linewidth=0.5, zorder=3)
        mean = row.accuracy_diff_mean
        if isinstance(mean, float) and math.isfinite(mean):
            ax.hlines(100 * mean, x - 0.25, x + 0.3, color="black", lw=2, zorder=4)
            low, high = row.accuracy_diff_ci_low, row.accuracy_diff_ci_high
            if isinstance(low, float) and math.isfinite(low):
                ax.errorbar(x + 0.3, 100 * mean, yerr=[[100 * (mean - low)], [100 * (high - mean)]],
                            fmt="none", ecolor="black", elinewidth=1.5, capsize=4, zorder=4)
    ax.axhline(0, color="0.3", lw=1, ls="--")
    _keep_readable(ax, diffs, {row.init: x for x, row in enumerate(others)}, " pt")
    ax.set_xticks(range(len(others)))
    ax.set_xticklabels([f"{_tick_name(row.init)}\n"
                        f"{row.verdict.replace('no clear ', 'no clear' + chr(10))}"
                        for row in others], fontsize=9)
    for tick, row in zip(ax.get_xticklabels(), others):
        tick.set_color(colors[row.init])
    ax.set_xlim(-0.5, max(len(others), 1) - 0.25)
    ax.set_ylabel(f"Δ final test accuracy vs {first.baseline} (pt)")
    ax.set_title(f"paired: each seed minus {first.baseline} on the same seed,\n"
                 "mean and the Holm CI that decided the verdict (bar)", fontsize=12)
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
    (what chooses the rate) left, test right; one line per initializer, 95% Student t CI
    bands over seeds, each initializer's chosen rate marked with a star."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    from initbench import report, stats

    colors = {init: init_color(init) for init in result.inits}
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
    # Outside the panels: inside, it covered the lowest points of a rising curve.
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=10, frameon=False)
    fig.suptitle(report.title(result), fontsize=14, fontweight="bold")
    fig.text(0.5, -0.01, "Lines: mean over seeds (a diverged cell is left out of its rate's "
             "mean and counts as 0 when choosing). Bands: 95% CI of the mean, Student t "
             "over seeds. Star: the rate chosen on validation accuracy; test accuracy "
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
    (`summary.PairRow`, every pair) separates the two: its verdict, read off the interval shown
    beside it, is better or worse."""
    index = {name: k for k, name in enumerate(inits)}
    sep = np.zeros((len(inits), len(inits)), bool)
    for row in pair_rows:
        hit = row.verdict in (stats.VERDICT_BETTER, stats.VERDICT_WORSE)
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
            ax.plot(mean, y, "o", color=init_color(row.init), ms=7, zorder=3, label=row.init)
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
    # Grey bars, not initializer-like colours: a bar is a group, not an initializer.
    for g, group in enumerate(groups):
        x = right + span * (0.04 + 0.05 * g)
        ys = [y_of[i] for i in group]
        ax.plot([x, x], [min(ys) - 0.15, max(ys) + 0.15], color="0.45", lw=5,
                solid_capstyle="round", label="_group" if g else
                "not separated (Holm-corrected\npaired t tests): one bar per group")
    ax.set_xlim(left, right + span * (0.08 + 0.05 * len(groups)))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8.5, frameon=False)
    ax.set_xlabel(f"final test accuracy (%), mean and {100 * rows[0].ci_level:g}% CI over seeds")
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
