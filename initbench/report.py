"""Terminal rendering of results: ranked tables and loss curves. Reads results, never trains.

Over 450 lines: the ranked table, its notes and the JSON document are shared by every
command that prints a run (`compare`, `report`, `export`), so they stay together.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

from initbench.formatting import json_value, num, pct, plural, signed_pct
from initbench.results import RunResult
from initbench.spec import network_title
from initbench.summary import SummaryRow, mean_curves

VERDICT_STYLES = {"better": "bold green", "worse": "bold red", "baseline": "dim"}


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
    if features is None and result.meta.get("data_shape") and "dataset" not in mixed:
        features = math.prod(result.meta["data_shape"])  # a dataset by path
    net = ("(mixed)" if mixed & {"hidden", "activation"} else net_label(result, features))
    optimizer = "mixed optimizers" if "optimizer" in mixed else spec.optimizer
    lr = "mixed" if "lr" in mixed else ",".join(f"{x:g}" for x in spec.lr)
    batch = "mixed" if "batch_size" in mixed else spec.batch_size
    net = network_title(spec.model, net)
    return (f"{dataset} · {net} · {optimizer} lr {lr} · batch {batch} · "
            f"{spec.epochs} epochs · {len(spec.seeds)} seeds"
            + (f" × {spec.data_seeds} data orders" if spec.data_seeds > 1 else ""))


def _num_features(dataset: str) -> int | None:
    """Input width of a named dataset, or None when it is not a known one."""
    from initbench import data
    from initbench.errors import InitbenchError

    try:
        return math.prod(data.info(dataset).image_shape)
    except InitbenchError:
        return None


def ranked_table(rows: list[SummaryRow], detailed: bool = False):
    """The ranked table as plain text: ([(header, justify)], [[cell]]), one list per row.

    The terminal shows it `detailed` (min–max, loss at epoch 0, best epoch); markdown and
    LaTeX exports show the rest. Accuracies in percent, differences in points.
    """
    level = f"{100 * rows[0].ci_level:g}%"
    columns = [("#", "right"), ("init", "left"), ("seeds", "right"),
               ("acc % mean ± std" if detailed else "test acc % (mean ± std)", "right"),
               (f"{level} CI", "right")]
    columns += ([("min–max", "right"), ("test loss", "right"), ("loss @ ep 0", "right"),
                 ("best ep", "right")] if detailed else [("test loss", "right")])
    has_target = rows[0].target is not None
    if has_target:
        columns.append((f"epochs to {100 * rows[0].target:.4g}%", "right"))
    compared = is_comparison(rows)
    points = "" if detailed else " (pt)"
    if compared:
        columns += [(f"Δ acc vs {rows[0].baseline}{points} [Holm CI]", "right"),
                    ("P(better)", "right"), ("verdict", "left")]
    body = []
    for row in rows:
        seeds = str(row.seeds) + (f" ({row.diverged} diverged)" if row.diverged else "")
        cells = [f"{pct(row.test_accuracy_mean)} ± {pct(row.test_accuracy_std)}",
                 f"[{pct(row.test_accuracy_ci_low)}, {pct(row.test_accuracy_ci_high)}]"]
        if detailed:
            cells += [f"{pct(row.test_accuracy_min)}–{pct(row.test_accuracy_max)}",
                      num(row.test_loss_mean), num(row.epoch0_test_loss_mean, ".3g"),
                      num(row.best_epoch_mean, ".1f")]
        else:
            cells.append(num(row.test_loss_mean))
        if row.all_diverged:
            cells = ["diverged"] * len(cells)
        if has_target:
            reached = row.reached_target
            cells.append("never" if not reached else
                         f"{row.epochs_to_target_mean:.1f} ({reached}/{row.seeds})")
        if not compared:
            body.append([str(row.rank), row.init, seeds, *cells])
            continue
        if row.verdict == "baseline":
            cells += ["—", "—"]
        else:
            cells += [diff_text(row), num(row.p_better, ".2f")]
        body.append([str(row.rank), row.init, seeds, *cells, row.verdict])
    return columns, body


def is_comparison(rows: list[SummaryRow]) -> bool:
    """Whether the rows compare initializers: one initializer has no baseline, Δ or verdict."""
    return len(rows) > 1


def accuracy_text(row: SummaryRow) -> str:
    """Mean final test accuracy with its interval, in percent: '93.96 [93.48, 94.60]'."""
    return (f"{pct(row.test_accuracy_mean)} "
            f"[{pct(row.test_accuracy_ci_low)}, {pct(row.test_accuracy_ci_high)}]")


def diff_text(row: SummaryRow) -> str:
    """The paired difference to the baseline with the interval beside its verdict, in
    points: '+0.54 [-1.24, +2.32]'."""
    return (f"{signed_pct(row.accuracy_diff_mean)} [{signed_pct(row.accuracy_diff_ci_low)}, "
            f"{signed_pct(row.accuracy_diff_ci_high)}]")


def compact_table(rows: list[SummaryRow]):
    """The ranked table as it fits 100 terminal columns: rank, initializer, seeds, accuracy
    with its interval, epochs to --target (when asked), Δ with its interval and the verdict,
    as ([(header, justify)], [[cell]]). `--wide` and the files hold the rest."""
    first = rows[0]
    # Two-line headers: a header no wider than its values keeps the table in 100 columns.
    columns = [("#", "right"), ("init", "left"), ("seeds", "right"),
               (f"test acc %\n[{100 * first.ci_level:g}% CI]", "right")]
    if first.target is not None:
        columns.append((f"epochs to {100 * first.target:.4g}%", "right"))
    compared = is_comparison(rows)
    if compared:
        columns += [(f"Δ vs {first.baseline}\n(pt) [Holm CI]", "right"), ("verdict", "left")]
    body = []
    for row in rows:
        seeds = str(row.seeds) + (f" ({row.diverged} diverged)" if row.diverged else "")
        cells = [str(row.rank), row.init, seeds,
                 "diverged" if row.all_diverged else accuracy_text(row)]
        if first.target is not None:
            cells.append("never" if not row.reached_target else
                         f"{row.epochs_to_target_mean:.1f} ({row.reached_target}/{row.seeds})")
        if compared:
            cells += ["—" if row.verdict == "baseline" else diff_text(row), row.verdict]
        body.append(cells)
    return columns, body


def summary_table(result: RunResult, rows: list[SummaryRow], heading: str | None = None,
                  wide: bool = False) -> Table:
    """The ranked rich table: accuracy over seeds with its CI and the paired verdict, in 100
    columns; `wide` adds the spread, losses, best epoch and P(better). For the tuned cells
    of a multi-rate run, a column names each initializer's chosen rate (`*` at an edge of
    the rates tried)."""
    tuned = result.spec.multi_lr and heading is None
    heading = heading or (f"{title(result)} — tuned: each initializer at its best lr "
                          "(chosen on validation), test accuracy there" if tuned
                          else title(result))
    table = Table(title=Text(heading), title_style="bold", caption=Text(_caption(result, rows, wide)),
                  show_edge=False, pad_edge=False, caption_justify="left")
    columns, body = ranked_table(rows, detailed=True) if wide else compact_table(rows)
    for header, justify in columns:
        # A narrow terminal wraps cells at their spaces rather than cutting them (`fold`);
        # names have no spaces, so their column never shrinks below the longest.
        name = header == "init"
        table.add_column(Text(header), justify=justify, no_wrap=name or header == "#",
                         overflow="fold",
                         min_width=max(len(c[1]) for c in body) if name else None)
    if tuned:
        table.add_column(Text("best\nlr"), justify="right", no_wrap=True)
    verdicts = is_comparison(rows)
    for row, cells in zip(rows, body):
        texts = [Text(c) for c in cells]
        if verdicts:
            texts[-1].stylize(VERDICT_STYLES.get(cells[-1], ""))
        extra = [Text(lr_text(result, row))] if tuned else []
        table.add_row(*texts, *extra)
    return table


def lr_text(result: RunResult, row: SummaryRow) -> str:
    """A tuned row's chosen rate, starred when it is the smallest or largest tried."""
    if row.lr is None:
        return "—"
    return f"{row.lr:g}" + ("*" if at_grid_edge(result.spec.lr, row.lr) else "")


def at_grid_edge(rates, lr: float) -> bool:
    """Whether `lr` is the smallest or the largest of several rates tried."""
    return len(rates) > 1 and lr in (min(rates), max(rates))


def per_rate_tables(result: RunResult, wide: bool = False) -> list[Table]:
    """One ranked table per learning rate of a multi-rate run (none otherwise): every
    initializer against the baseline at the same rate."""
    tables = []
    for lr in result.spec.lr if result.per_rate else ():
        rows = [row for row in result.per_rate if row.lr == lr]
        tables.append(summary_table(result.at_lr(lr), rows,
                                    heading=f"at lr {lr:g} (validation accuracy "
                                    + ", ".join(f"{row.init} {pct(row.val_accuracy_mean)}"
                                                for row in rows) + ")", wide=wide))
    return tables


def verdict_note(rows: list[SummaryRow]) -> str:
    """How the verdicts were reached: the family level, the Holm family, the deciding
    interval's levels, the equivalence rule."""
    first = rows[0]
    num = sum(row.verdict != "baseline" for row in rows)
    k = len(rows)
    family = (f"all {k * (k - 1) // 2} pairs" if first.pairs == "all"
              else f"the {num} comparison{'s' * (num != 1)} with {first.baseline}")
    alpha = 100 * (1 - first.paired_ci_level)
    levels = sorted({round(100 * row.accuracy_diff_ci_level, 2) for row in rows
                     if row.accuracy_diff_ci_level is not None
                     and math.isfinite(row.accuracy_diff_ci_level)}, reverse=True)
    shown = "/".join(f"{x:g}%" for x in levels) or "n/a"
    text = (f"Verdict: paired t test, Holm-corrected over {family}, {alpha:g}% family-wise. "
            f"Δ [Holm CI]: the Student t interval that decided the verdict, at "
            f"1 − {alpha:g}%/k for its Holm step k (here {shown}); better/worse exactly when it "
            "excludes 0")
    if first.equivalence_margin is not None:
        text += (f", equivalent exactly when it lies inside ±{100 * first.equivalence_margin:g} "
                 "pt (TOST; checked first, with the interval at 1 − "
                 f"{alpha:g}%/m, Bonferroni over the family)")
    return text + "."


def sequential_note(result: RunResult) -> str | None:
    """For a merge of runs with different seeds: why the family level is above 95%."""
    from initbench import summary

    if result.spec.auto_seeds:
        return None  # seeds_note says so
    looks = summary.num_looks(result)
    if looks > 1:
        level = 100 * summary.paired_level(result)
        source = ("Continues a run folder looked at with" if result.meta.get("seed_looks")
                  and len(result.meta.get("merged_from") or []) < 2 else "Merged from runs with")
        return (f"{source} {looks} different seed sets: adding seeds after looking "
                f"is a sequential look, so the verdicts hold at {level:.4g}% (5% split over "
                f"{looks} looks; docs/statistics.md).")
    return None


def definitions(rows: list[SummaryRow]) -> dict[str, str]:
    """One line per column of the ranked table, keyed by a short column name."""
    first = rows[0]
    level = f"{100 * first.ci_level:g}%"
    own = {
        "acc": "final test accuracy over seeds, mean ± sample std (ddof 1)",
        "CI": f"{level} Student t interval of that mean over seeds, clipped to [0, 100]",
        "IQM": "interquartile mean over seeds: mean of the middle 50% (rliable's trim 25%)",
    }
    if not is_comparison(rows):  # one initializer: no baseline, Δ or verdict
        return own
    return {
        **own,
        "Δ": f"final test accuracy minus {first.baseline}'s on the same seed, mean in points",
        "Holm CI": "the interval of Δ that decided the verdict (see the verdict line)",
        "P(better)": f"share of seeds on which the initializer beats {first.baseline} "
                     "(ties count 1/2)",
        "mde_80": "the true Δ this test finds 80% of the time with these seeds "
                  "(Holm's first step over the family)",
    }


# The columns each terminal view shows (the files, markdown, LaTeX and JSON define them all).
COMPACT_DEFINED = ("CI", "Δ", "Holm CI")
WIDE_DEFINED = ("acc", "CI", "Δ", "Holm CI", "P(better)")


def definitions_note(rows: list[SummaryRow], keys: tuple[str, ...] | None = None) -> str:
    """`definitions` as text, one line per column; only `keys` when given."""
    return "\n".join(f"{name}: {text}." for name, text in definitions(rows).items()
                     if keys is None or name in keys)


def seeds_note(result: RunResult) -> str | None:
    """For a `--seeds auto` run: the seeds used, and why it stopped; else None."""
    auto = result.meta.get("seeds_auto")
    if not auto:
        return None
    widths = [h for h in auto.get("half_widths_pt") or [] if h is not None]
    widest = f"; widest {100 * auto['level']:g}% CI half-width {max(widths):.2f} pt" if widths else ""
    return (f"seeds: auto, {auto['seeds_used']} used in {plural(auto['rounds'], 'round')}, "
            f"stopped: {auto['stop_reason']} (precision {auto['precision']:g} pt, max "
            f"{auto['max_seeds']}){widest}.")


def _caption(result: RunResult, rows: list[SummaryRow], wide: bool = False) -> str:
    lines = [verdict_note(rows)] if is_comparison(rows) else []
    lines.append(definitions_note(rows, WIDE_DEFINED if wide else COMPACT_DEFINED))
    for note in (seeds_note(result), sequential_note(result)):
        if note:
            lines.append(note)
    shares = variance_note(result, rows)
    if shares:
        lines.append(shares)
    return "\n".join(lines)


def variance_note(result: RunResult, rows: list[SummaryRow]) -> str | None:
    """Under `--data-seeds K > 1`: per initializer, the shares of the variance of final
    accuracy due to the weights, the data order and the rest; None otherwise."""
    k = result.spec.data_seeds
    if k == 1:
        return None
    parts = []
    for row in rows:
        shares = (row.var_share_weights, row.var_share_data, row.var_share_residual)
        parts.append(f"{row.init} " + ("n/a" if any(v is None or not math.isfinite(v)
                                                     for v in shares)
                                       else "/".join(f"{100 * v:.0f}" for v in shares)))
        # n/a: fewer than 2 whole weight seeds, or no spread at all
    return (f"Variance of final accuracy, % weights/data order/rest ({len(result.seeds)} weight "
            f"seeds × {k} data orders, paired over all {len(result.slots)}): " + ", ".join(parts))


CHART_MARKERS = ("•", "+", "x", "o", "*", "#", "@", "%", "=", "~")


def curve_chart(result: RunResult, metric: str = "test_loss", width: int = 90,
                height: int = 18) -> Text:
    """A terminal line chart (plotext) of `metric`'s mean over seeds per initializer."""
    import plotext as plt

    curves = mean_curves(result, metric)
    percent = metric.endswith("accuracy")  # percent on every screen, like the tables
    if percent:
        curves = 100 * curves
    epochs = list(range(curves.shape[1]))
    plt.clf()
    plt.plotsize(width, height)
    plt.theme("clear")
    log = metric.endswith("loss") and _wants_log(curves)
    if log:
        plt.yscale("log")
    for k, (name, curve) in enumerate(zip(result.inits, curves)):
        finite = np.isfinite(curve) & ((curve > 0) if log else True)
        if finite.any():  # one character per initializer: legible without colour too
            plt.plot([e for e, ok in zip(epochs, finite) if ok], curve[finite].tolist(),
                     label=name, marker=CHART_MARKERS[k % len(CHART_MARKERS)])
    label = metric.replace("_", " ") + (" (%)" if percent else "") + (" (log scale)" if log else "")
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


def result_document(result: RunResult, rows: list[SummaryRow], out: str | None) -> dict:
    """The one JSON document of a run (`--json` of run/compare/report, `export --format
    json`; docs/files.md lists its keys): settings, how the intervals and verdicts were
    made, the summary rows (summary.csv's columns, fractions), mean curves, how the seeds
    were chosen (`seeds_auto`, None for a fixed count) and, for `--pairs all`, every pair
    (`summary.PairRow`)."""
    from initbench import summary

    pairs = None
    view = result.view
    if rows[0].pairs == "all":
        pairs = [{k: json_value(v) for k, v in dataclasses.asdict(row).items()}
                 for row in summary.compare_family(view, rows[0].baseline, "all",
                                                   rows[0].equivalence_margin)]
    first = rows[0]
    return {
        "out": out,
        "title": title(result),
        "dataset": result.dataset,
        "spec": result.spec.to_dict(),
        "meta": result.meta,
        "seeds": result.seeds,
        "seeds_auto": result.meta.get("seeds_auto"),
        "merged_from": result.meta.get("merged_from"),
        "baseline": first.baseline,
        "target": first.target,
        "ci_method": first.ci_method, "ci_level": first.ci_level,
        "bootstrap_resamples": first.bootstrap_resamples,
        "paired_ci_method": first.paired_ci_method,
        "paired_ci_level": first.paired_ci_level,
        "comparisons": first.pairs, "correction": first.correction,
        "equivalence_margin": first.equivalence_margin,
        "verdict_rule": verdict_note(rows) if is_comparison(rows) else None,
        "definitions": definitions(rows),
        "summary": [{k: json_value(v) for k, v in dataclasses.asdict(row).items()}
                    for row in rows],
        "pairs": pairs,
        **({"per_rate": [{k: json_value(v) for k, v in dataclasses.asdict(row).items()}
                         for row in result.per_rate]} if result.per_rate else {}),
        "mean_curves": {m: {init: [json_value(v) for v in curve]
                            for init, curve in zip(view.inits, mean_curves(view, m))}
                        for m in ("train_loss", "test_loss", "test_accuracy")},
    }



def print_result(console, result: RunResult, rows: list[SummaryRow], *, quiet: bool = False,
                 wide: bool = False, curves: bool = False) -> None:
    """A run's answer on `console`: the per-rate tables of a multi-rate run (not `quiet`),
    the ranked table, every pair for `--pairs all`, the edge warning of a multi-rate run,
    then, with `curves`, the terminal charts."""
    if not quiet:
        for table in per_rate_tables(result, wide):
            console.print(table)
    console.print(summary_table(result.view, rows, wide=wide))
    if rows[0].pairs == "all":
        console.print(pairs_table(result.view, rows))
    warning = edge_warning(result, rows)
    if warning and not quiet:
        console.print(Text.assemble(("note:", "yellow"), f" {warning}"))
    if curves and not quiet:
        console.print(curves_group(result.view))


def edge_warning(result: RunResult, rows: list[SummaryRow]) -> str | None:
    """One line when an initializer's chosen rate is the smallest or largest tried: the best
    rate may lie outside the grid, so it names the next rate to add (one grid step further,
    on the grid's own log spacing). None otherwise."""
    rates = sorted(result.spec.lr)
    if len(rates) < 2:
        return None
    edge = [(row.init, row.lr) for row in rows
            if row.lr is not None and at_grid_edge(rates, row.lr)]
    if not edge:
        return None
    parts = []
    for init, lr in edge:
        low = lr == rates[0]
        step = rates[1] / rates[0] if low else rates[-1] / rates[-2]
        parts.append(f"{init} at {lr:g}, the {'smallest' if low else 'largest'} rate tried "
                     f"(try adding {float(f'{(lr / step if low else lr * step):.2g}'):g})")
    return ("chosen rate at the edge of the grid: " + "; ".join(parts)
            + ". The best rate may lie beyond the grid (marked * in the tuned table).")


def print_run_notes(console, result: RunResult, out) -> None:
    """The line after a run's table: where the files went. (The dataset notice, if any,
    was said once, before training; the table's title names the dataset used.)"""
    cached = result.meta.get("cells_cached", 0)
    extra = f" ({plural(cached, 'cell')} reused from the cache)" if cached else ""
    files = "curves.csv, summary.csv, spec.json, curves.png"
    if (Path(out) / "pairs.csv").exists():
        files += ", pairs.csv, pairs.png"
    if (Path(out) / "tuned.csv").exists():
        files += ", tuned.csv, lr.png"
    console.print(Text(f"results written to {out}/ ({files}){extra}"))


def pairs_table(result: RunResult, rows: list[SummaryRow]) -> Table:
    """Every pair of a `--pairs all` run: Δ with its CI, p, Holm p, d_z with its CI, verdict."""
    from initbench import summary

    first = rows[0]
    pair_rows = summary.compare_family(result, first.baseline, "all", first.equivalence_margin)
    table = Table(title=Text(f"every pair (a − b), Holm-corrected over {len(pair_rows)}"),
                  title_style="bold", caption=Text(
                      "Δ and d_z [Holm CI]: the intervals that decided the verdict, at 1 − "
                      f"{100 * (1 - first.paired_ci_level):g}%/k for the comparison's Holm step k "
                      "(the two exclude 0 together)."))
    for header in ("a", "b", "Δ acc (pt) [Holm CI]", "p", "p (Holm)",
                   "d_z [Holm CI]", "verdict (a vs b)"):
        table.add_column(Text(header), justify="left" if header[0] in "abv" else "right")
    for row in pair_rows:
        table.add_row(row.a, row.b,
                      f"{signed_pct(row.diff_mean)} [{signed_pct(row.diff_ci_low)}, "
                      f"{signed_pct(row.diff_ci_high)}]",
                      num(row.p_value, ".3g"), num(row.p_value_holm, ".3g"),
                      f"{num(row.d_z, '+.2f')} [{num(row.d_z_ci_low, '+.2f')}, "
                      f"{num(row.d_z_ci_high, '+.2f')}]",
                      Text(row.verdict, style=VERDICT_STYLES.get(row.verdict, "")))
    return table


def plan_table(result: RunResult, plan_rows: list) -> Table:
    """`initbench plan`: per comparison, the sd of the paired differences, the seeds needed
    for 80% power at 5% and the minimum detectable effect at the seeds used (points)."""
    effect = plan_rows[0].effect_pt if plan_rows else float("nan")
    first = plan_rows[0] if plan_rows else None
    level = (f"{100 * first.alpha:.3g}% level (Holm's first step: "
             f"{100 * first.alpha * first.family_size:g}% over the family of "
             f"{first.family_size} comparison{'s' * (first.family_size != 1)})"
             if first else "5% level")
    table = Table(title=Text(f"seed plan · {title(result)}"), title_style="bold",
                  caption=Text(f"Paired t test, two-sided, {level}, 80% power; sd of the "
                               "per-seed differences in final test accuracy from this run. "
                               "mde_80: the true difference found 80% of the time with the "
                               "seeds used."))
    for header in ("init", "vs", "seeds", "Δ acc (pt)", "sd of Δ (pt)",
                   f"seeds for {effect:g} pt", "mde_80 (pt)"):
        table.add_column(Text(header), justify="left" if header in ("init", "vs") else "right")
    for row in plan_rows:
        table.add_row(row.init, row.baseline, str(row.seeds), num(row.diff_mean_pt, "+.2f"),
                      num(row.diff_sd_pt, ".2f"),
                      "—" if row.seeds_needed is None else str(row.seeds_needed),
                      num(row.mde_80_pt, ".2f"))
    return table
