"""The phase diagram's figure (of an `initbench.phase.PhaseResult`): trainability as a heat
map over (sigma_w^2, depth), with the mean-field depth scales drawn over it (matplotlib,
Agg)."""

from __future__ import annotations

import io

import numpy as np

from initbench import mean_field


def make_figure(result):
    """Mean final test accuracy over seeds per (sigma_w^2, depth) cell; 3, 6 and 12 xi_c as
    lines (6 xi_c: the paper's boundary); the critical sigma_w^2 as a dotted line."""
    from initbench import plots

    plots.preload()
    import matplotlib.figure

    spec = result.spec
    sw2 = np.asarray(spec.sigma_w2, float)
    depths = np.asarray(spec.depths, float)
    mean = np.nanmean(np.nan_to_num(result.accuracy, nan=0.0), axis=2).T * 100  # [depth, sw2]
    fig = matplotlib.figure.Figure(figsize=(7.5, 5.2), dpi=110)
    ax = fig.add_subplot(1, 1, 1)

    def edges(values):
        mids = (values[1:] + values[:-1]) / 2
        first = values[0] - (mids[0] - values[0]) if len(values) > 1 else values[0] - 0.5
        last = values[-1] + (values[-1] - mids[-1]) if len(values) > 1 else values[-1] + 0.5
        return np.concatenate([[first], mids, [last]])

    mesh = ax.pcolormesh(edges(sw2), edges(depths), mean, cmap="viridis", vmin=0, vmax=100,
                         shading="flat")
    fig.colorbar(mesh, ax=ax, label=f"final test accuracy (%), mean of {len(spec.seeds)} seeds")
    fine = np.linspace(sw2.min(), sw2.max(), 80)
    xi = np.array([mean_field.xi_c(spec.activation, v, spec.sigma_b2) for v in fine])
    for factor, style, width in ((3, "--", 1.2), (6, "-", 2.2), (12, ":", 1.6)):
        ax.plot(fine, np.minimum(factor * xi, 1e6), style, color="white", lw=width,
                label=f"{factor} ξ_c" + (" (paper's boundary)" if factor == 6 else ""))
    critical = mean_field.critical_sigma_w2(spec.activation, spec.sigma_b2)
    if sw2.min() <= critical <= sw2.max():
        ax.axvline(critical, color="red", lw=1, ls="-.",
                   label=f"critical σ_w² = {critical:.3g} (χ₁ = 1)")
    ax.set_ylim(edges(depths)[0], edges(depths)[-1])
    ax.set_xlim(edges(sw2)[0], edges(sw2)[-1])
    ax.set_xlabel("σ_w²  (weights N(0, σ_w²/fan_in))")
    ax.set_ylabel("depth (hidden layers)")
    ax.set_title(f"{spec.activation}, σ_b² = {spec.sigma_b2:g}, width {spec.width}, "
                 f"{spec.epochs} epoch{'s' * (spec.epochs != 1)} {spec.optimizer} lr "
                 f"{spec.lr:g} on {result.dataset}", fontsize=9)
    ax.legend(loc="upper right", fontsize=7, framealpha=0.5)
    a = result.agreement()
    fig.text(0.01, 0.005, (f"below 3 ξ_c: {a['below_3xi_trained']}/{a['below_3xi']} cells "
                           f"train; beyond 12 ξ_c: {a['beyond_12xi_trained']}/"
                           f"{a['beyond_12xi']} (trainable: accuracy ≥ "
                           f"{100 * spec.threshold:g}%)"), fontsize=7)
    return fig


def render(result) -> bytes:
    """The figure as PNG bytes."""
    fig = make_figure(result)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()
