"""Terminal rendering of results: ranked tables and loss curves. Reads results, never trains."""

from __future__ import annotations

import math

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

from initbench.results import RunResult
from initbench.summary import mean_curves

VERDICT_STYLES = {"better": "bold green", "worse": "bold red", "baseline": "dim"}


def _num(value, fmt: str = ".4f") -> str:
    return "—" if value is None or value == "" or not math.isfinite(value) else format(value, fmt)


def _pct(value) -> str:
    return "—" if not math.isfinite(value) else f"{100 * value:.2f}"


def net_label(result: RunResult, num_features: int | None = None) -> str:
    """'784-256-256-10 relu' style description of the network."""
    spec = result.spec
    widths = [str(w) for w in spec.hidden]
    prefix = f"{num_features}-" if num_features else ""
    if len(set(spec.hidden)) == 1 and len(spec.hidden) > 3:
        widths = [f"{spec.hidden[0]}x{len(spec.hidden)}"]
    return f"{prefix}{'-'.join(widths)}-10 {spec.activation}"


def title(result: RunResult) -> str:
    """One line naming the dataset, the net, the optimizer and the budget.

    Settings that differ between the rows of a side-by-side merge read "mixed" here; the row
    labels carry their values.
    """
    spec = result.spec
    mixed = set(result.meta.get("mixed_settings") or ())
    dataset = "mixed datasets" if "dataset" in mixed else result.dataset
    features = None if "dataset" in mixed else _num_features(result.dataset)
    net = ("(mixed)" if mixed & {"hidden", "activation"} else net_label(result, features))
    optimizer = "mixed optimizers" if "optimizer" in mixed else spec.optimizer
    lr = "mixed" if "lr" in mixed else f"{spec.lr:g}"
    batch = "mixed" if "batch_size" in mixed else spec.batch_size
    return (f"{dataset} · MLP {net} · {optimizer} lr {lr} · batch {batch} · "
            f"{spec.epochs} epochs · {len(spec.seeds)} seeds")


def _num_features(dataset: str) -> int | None:
    """Input width of a named dataset, or None when it is not a known one."""
    from initbench import data
    from initbench.errors import InitbenchError

    try:
        return math.prod(data.info(dataset).image_shape)
    except InitbenchError:
        return None


def summary_table(result: RunResult, rows: list[dict]) -> Table:
    """The ranked table: accuracy over seeds with its CI, losses, and the paired verdict."""
    table = Table(title=title(result), title_style="bold", caption=_caption(result, rows))
    for header, justify in [("#", "right"), ("init", "left"), ("seeds", "right"),
                            ("acc % mean ± std", "right"), ("95% CI", "right"),
                            ("min–max", "right"), ("test loss", "right"),
                            ("loss @ ep 0", "right"), ("best ep", "right")]:
        table.add_column(header, justify=justify, no_wrap=True)
    has_target = any(row.get("target") not in ("", None) for row in rows)
    if has_target:
        table.add_column(f"epochs to {100 * rows[0]['target']:.4g}%", justify="right")
    baseline = rows[0]["baseline"]
    table.add_column(f"Δ acc vs {baseline} [95% CI]", justify="right", no_wrap=True)
    table.add_column("P(better)", justify="right")
    table.add_column("verdict", no_wrap=True)
    for row in rows:
        seeds = str(row["seeds"])
        if row["diverged"]:
            seeds += f" ({row['diverged']} diverged)"
        if row["diverged"] == row["seeds"]:
            cells = ["diverged"] * 6
        else:
            cells = [
                f"{_pct(row['test_accuracy_mean'])} ± {_pct(row['test_accuracy_std'])}",
                f"[{_pct(row['test_accuracy_ci_low'])}, {_pct(row['test_accuracy_ci_high'])}]",
                f"{_pct(row['test_accuracy_min'])}–{_pct(row['test_accuracy_max'])}",
                _num(row["test_loss_mean"]), _num(row["epoch0_test_loss_mean"], ".3g"),
                _num(row["best_epoch_mean"], ".1f"),
            ]
        if has_target:
            reached = row.get("reached_target", 0)
            cells.append("never" if not reached else
                         f"{row['epochs_to_target_mean']:.1f} ({reached}/{row['seeds']})")
        verdict = row.get("verdict", "")
        if verdict == "baseline":
            diff = p_better = "—"
        else:
            diff = (f"{100 * row['accuracy_diff_mean']:+.2f} "
                    f"[{_signed_pct(row['accuracy_diff_ci_low'])}, "
                    f"{_signed_pct(row['accuracy_diff_ci_high'])}]")
            p_better = _num(row["p_better"], ".2f")
        table.add_row(str(row["rank"]), row["init"], seeds, *cells, diff, p_better,
                      Text(verdict, style=VERDICT_STYLES.get(verdict, "")))
    return table


def _signed_pct(value) -> str:
    return "—" if not math.isfinite(value) else f"{100 * value:+.2f}"


def _caption(result: RunResult, rows: list[dict]) -> str:
    notice = result.meta.get("dataset_notice")
    lines = [f"95% CIs: {rows[0]['ci_method']}, {rows[0]['bootstrap_resamples']} resamples; "
             f"Δ: {rows[0]['paired_ci_method']} (same seed, same minibatches). "
             "Verdict: the CI of Δ excludes 0 or not."]
    if notice:
        lines.append(f"dataset: {result.dataset} — {notice}")
    return "\n".join(lines)


def curve_chart(result: RunResult, metric: str = "test_loss", width: int = 90,
                height: int = 18) -> Text:
    """A terminal line chart (plotext) of `metric`'s mean over seeds per initializer."""
    import plotext as plt

    curves = mean_curves(result, metric)
    epochs = list(range(curves.shape[1]))
    plt.clf()
    plt.plotsize(width, height)
    plt.theme("clear")
    log = metric.endswith("loss") and _wants_log(curves)
    if log:
        plt.yscale("log")
    for name, curve in zip(result.inits, curves):
        finite = np.isfinite(curve) & ((curve > 0) if log else True)
        if finite.any():
            plt.plot([e for e, ok in zip(epochs, finite) if ok], curve[finite].tolist(),
                     label=name, marker="braille")
    label = metric.replace("_", " ") + (" (log scale)" if log else "")
    plt.title(f"{label}, mean over {len(result.seeds)} seeds")
    plt.xlabel("epoch")
    return Text.from_ansi(plt.build())


def _wants_log(curves: np.ndarray) -> bool:
    """Log scale when the finite positive values span more than a factor of 30."""
    values = curves[np.isfinite(curves) & (curves > 0)]
    return values.size > 0 and values.max() / values.min() > 30


def curves_group(result: RunResult) -> Group:
    """Train loss, test loss and test accuracy charts, one below the other."""
    return Group(*(curve_chart(result, m) for m in ("train_loss", "test_loss", "test_accuracy")))


def result_document(result: RunResult, rows: list[dict], out: str | None) -> dict:
    """The JSON document printed by --json: settings, summary rows and mean curves."""
    return {
        "out": out,
        "dataset": result.dataset,
        "spec": result.spec.to_dict(),
        "meta": result.meta,
        "summary": [{k: _json_value(v) for k, v in row.items()} for row in rows],
        "mean_curves": {m: {init: [_json_value(v) for v in curve]
                            for init, curve in zip(result.inits, mean_curves(result, m))}
                        for m in ("train_loss", "test_loss", "test_accuracy")},
    }


def _json_value(value):
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
