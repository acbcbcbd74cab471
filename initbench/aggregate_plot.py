"""The figure of `initbench aggregate`: IQM intervals, P(X > Y) intervals and the
performance profile, side by side (matplotlib, Agg). Colours are `plots.init_color`'s."""

from __future__ import annotations

import io

from initbench.aggregate import Aggregate


def make_figure(agg: Aggregate):
    """Three panels: IQM of the normalized score per initializer with its 95% stratified
    bootstrap interval; P(a > b) per pair with its Bonferroni interval and the 0.5 line;
    the share of (seed, task) scores above each threshold with its 95% band."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    from initbench.plots import init_color

    fig = Figure(figsize=(16, 5.6), dpi=110, layout="constrained")
    ax_iqm, ax_pairs, ax_profile = fig.subplots(1, 3, width_ratios=[1, 1.15, 1.25])
    ranked = [row.init for row in agg.rows]
    for y, row in enumerate(agg.rows):
        color = init_color(row.init)
        ax_iqm.errorbar(row.iqm, y, xerr=[[row.iqm - row.iqm_ci_low], [row.iqm_ci_high - row.iqm]],
                        fmt="o", color=color, capsize=5, lw=2, ms=7)
        ax_iqm.annotate(f"{row.iqm:.3f}", (row.iqm_ci_high, y), xytext=(6, 0),
                        textcoords="offset points", va="center", fontsize=9, color="0.25")
    ax_iqm.set_yticks(range(len(ranked)), ranked)
    ax_iqm.invert_yaxis()
    ax_iqm.set_xlabel("IQM of normalized score (0 = chance, 1 = perfect)")
    ax_iqm.set_title("IQM across tasks, 95% stratified bootstrap CI", fontsize=11)
    ax_iqm.grid(True, axis="x", alpha=0.3)
    ax_iqm.margins(x=0.25)

    labels = []
    for y, pair in enumerate(agg.pairs):
        color = {"better": "tab:green", "worse": "tab:red"}.get(pair.verdict, "0.45")
        ax_pairs.errorbar(pair.p_improvement, y, xerr=[[pair.p_improvement - pair.ci_low],
                                                       [pair.ci_high - pair.p_improvement]],
                          fmt="s", color=color, capsize=4, lw=2, ms=6)
        labels.append(f"{pair.a} > {pair.b}")
    ax_pairs.axvline(0.5, color="0.3", ls="--", lw=1)
    ax_pairs.set_yticks(range(len(labels)), labels, fontsize=9)
    ax_pairs.invert_yaxis()
    ax_pairs.set_xlim(-0.02, 1.02)
    ax_pairs.set_xlabel("P(a > b): a seed of a scores above a seed of b, averaged over tasks")
    level = 100 * agg.pairs[0].ci_level if agg.pairs else 95.0
    ax_pairs.set_title(f"probability of improvement, {level:.4g}% CI (Bonferroni)\ngreen: a "
                       "better, grey: no clear difference", fontsize=11)
    ax_pairs.grid(True, axis="x", alpha=0.3)

    for i, init in enumerate(agg.inits):
        color = init_color(init)
        ax_profile.plot(agg.taus, agg.profile[i], color=color, lw=2, label=init)
        ax_profile.fill_between(agg.taus, agg.profile_low[i], agg.profile_high[i], color=color,
                                alpha=0.18, lw=0)
    ax_profile.set_xlabel("normalized score τ")
    ax_profile.set_ylabel("share of (seed, task) scores > τ")
    ax_profile.set_title("performance profile, 95% stratified bootstrap band", fontsize=11)
    ax_profile.set_xlim(agg.taus[0], 1.0)
    ax_profile.set_ylim(-0.02, 1.02)
    ax_profile.grid(True, alpha=0.3)
    ax_profile.legend(fontsize=9, loc="lower left")
    fig.suptitle(f"{len(agg.inits)} initializers across {len(agg.tasks)} tasks × "
                 f"{agg.scores.shape[1]} seeds", fontsize=13, fontweight="bold")
    return fig


def render(agg: Aggregate) -> bytes:
    """The figure as PNG bytes (no software metadata, so the same numbers give the same
    bytes on one platform)."""
    buffer = io.BytesIO()
    make_figure(agg).savefig(buffer, format="png", bbox_inches="tight",
                             metadata={"Software": None})
    return buffer.getvalue()

