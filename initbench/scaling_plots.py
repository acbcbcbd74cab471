"""Figures of the width studies: transfer.png (metric against rate, one curve per width,
minima marked with their intervals, one panel per parameterization) and coord.png (size of
each layer's coordinates against width, one line per step, as in Tensor Programs V)."""

from __future__ import annotations

import io

import numpy as np

from initbench.spec import depth_title


def _figure(num_rows: int, num_cols: int, width: float, height: float):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.backends.backend_agg
    import matplotlib.figure

    fig = matplotlib.figure.Figure(figsize=(width * num_cols, height * num_rows))
    matplotlib.backends.backend_agg.FigureCanvasAgg(fig)
    axes = fig.subplots(num_rows, num_cols, squeeze=False)
    return fig, axes


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", dpi=110, metadata={"Software": None})
    return buffer.getvalue()


def _width_colors(num: int):
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    return [cmap(0.1 + 0.75 * k / max(num - 1, 1)) for k in range(num)]


METRIC_LABELS = {"train_loss": "final train loss (mean over seeds)",
                 "val_loss": "final validation loss (mean over seeds)",
                 "val_accuracy": "final validation accuracy (mean over seeds)"}


def render_transfer(run) -> bytes:
    """transfer.png of a `width_study.TransferRun`."""
    fig, axes = _figure(1, len(run.params), 5.2, 4.2)
    colors = _width_colors(len(run.widths))
    lrs = np.asarray(run.spec.lr, float)
    lower = run.metric != "val_accuracy"
    all_means = np.concatenate([np.nanmean(run.values[p], axis=-1).ravel() for p in run.params])
    finite = all_means[np.isfinite(all_means)]
    from initbench import transfer

    sign = 1.0 if lower else -1.0
    for ax, param in zip(axes[0], run.params):
        result = run.results[param]
        means = np.mean(run.values[param], axis=-1)  # [width, lr]; NaN if a seed diverged
        _, _, fitted = transfer.best_points(np.log(lrs), sign * means)
        for i, width in enumerate(run.widths):
            ax.plot(lrs, means[i], "-", color=colors[i], lw=1.6, label=f"width {width}")
            best = result.best_lr[i]
            if np.isfinite(best):
                ax.errorbar([best], [sign * fitted[i]], xerr=[[best - result.best_lr_low[i]],
                                               [result.best_lr_high[i] - best]],
                            fmt="o", color=colors[i], ms=6, mec="black", mew=0.8, capsize=3,
                            zorder=5)
        ax.set_xscale("log")
        if lower and finite.size and finite.min() > 0:
            ax.set_yscale("log")
            # the minima are the story: at most a factor 8 above the lowest mean
            ax.set_ylim(finite.min() * 0.8, min(finite.max(), 8 * finite.min()) * 1.1)
        ax.set_xlabel("learning rate (base rate under mup/ntk)")
        ax.set_ylabel(METRIC_LABELS[run.metric])
        interval = f"[{result.slope_low:+.2f}, {result.slope_high:+.2f}]"
        ax.set_title(f"--param {param}: slope {result.slope:+.2f} {interval}\n"
                     f"log best rate vs log width: {result.verdict}", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=9,
                       title="dots: best rate,\nbars: 95% interval", title_fontsize=8)
    depth = depth_title(run.spec.model, run.depth)
    fig.suptitle(f"Does the best rate move with width? {run.spec.dataset}, {depth}, "
                 f"{run.spec.optimizer}, {run.spec.epochs} epoch{'s' * (run.spec.epochs != 1)}, "
                 f"{len(run.spec.seeds)} seeds"
                 + (f", base width {run.base_width}" if any(p != "sp" for p in run.params)
                    else ""), fontsize=11, y=1.04)
    return _png(fig)


def render_coord(run) -> bytes:
    """coord.png of a `coord.CoordRun`: one row per parameterization, one panel per layer,
    mean |coordinate| (log) against width (log), one line per step."""
    fig, axes = _figure(len(run.params), len(run.layers), 3.3, 3.0)
    steps = run.steps
    import matplotlib

    cmap = matplotlib.colormaps["plasma"]
    widths = np.asarray(run.widths, float)
    for r, param in enumerate(run.params):
        sizes = run.sizes[param].mean(axis=1)  # [width, step, layer]
        for j, layer in enumerate(run.layers):
            ax = axes[r][j]
            for t in range(steps + 1):
                ax.plot(widths, sizes[:, t, j], "o-", ms=3, lw=1.2,
                        color=cmap(0.85 * t / max(steps, 1)), label=f"t={t}")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            slope, low, high, verdict, at_step = run.verdicts[param][j]
            ax.set_title(f"{param} · {layer}: {verdict}\nslope at t={at_step}: {slope:+.2f} "
                         f"[{low:+.2f}, {high:+.2f}]", fontsize=8.5)
            ax.tick_params(labelsize=7)
            if r == len(run.params) - 1:
                ax.set_xlabel("width", fontsize=8)
            if j == 0:
                ax.set_ylabel("mean |coordinate|", fontsize=8)
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=7,
                       title="step", title_fontsize=7)
    fig.tight_layout()
    fig.suptitle(f"Coordinate check: {run.spec.dataset}, {run.spec.optimizer} at lr "
                 f"{run.spec.lr[0]:g}, {len(run.spec.seeds)} seeds (mean over seeds; "
                 f"verdict: the steepest step of 1..{steps})", fontsize=10, y=1.02)
    return _png(fig)
