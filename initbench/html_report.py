"""One self-contained HTML page per run: the ranked table, every figure, settings, provenance.

The page is built from the same pieces as the terminal (`report.summary_table` and its
caption, `report.per_rate_tables`, `report.pairs_table`, `plots.render*`), so its verdicts
are the terminal's: nothing is re-derived here. Figures are inline PNGs (base64 `data:`
URIs) and the stylesheet is inline with the system's own fonts, so the page makes no network
request. Every table scrolls sideways inside its own box, so the page reads at a phone's
width (~390 px) and on a wide screen.

The output is a function of the run folder alone (no clock, no absolute path), so the page
of a committed run is reproduced byte for byte on the same platform.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass

from initbench import report
from initbench.formatting import num
from initbench.results import RunResult
from initbench.spec import network_title
from initbench.summary_rows import RunSummary

# Columns that stay in view while a table scrolls sideways (the row's name).
_STICKY = ("init", "parameter", "a")
# Rich styles of the terminal tables -> CSS classes of the page.
_STYLE_CLASSES = {"bold green": "better", "bold red": "worse", "dim": "dim"}


@dataclass(frozen=True)
class Figure:
    """One figure of the page: its PNG bytes, a short title and the caption under it."""

    name: str
    png: bytes
    caption: str


def figures(summarized: RunSummary) -> list[Figure]:
    """The run's figures, rendered for its summary's rows (so a re-chosen baseline shows
    everywhere): curves.png always, lr.png for a multi-rate run, pairs.png under `--pairs
    all`."""
    from initbench import plots, summary

    view, rows = summarized.view, list(summarized.rows)
    first = rows[0].family
    found = [Figure("curves.png", plots.render(view, rows, "png"), CURVES_CAPTION)]
    if summarized.tuned is not None:
        found.append(Figure("lr.png", plots.render_lr(summarized.result,
                                                      list(summarized.per_rate), rows, "png"),
                            LR_CAPTION))
    if first.pairs == "all" and len(view.inits) > 1:
        pair_rows = summary.compare_family(view, first.baseline, "all", first.equivalence_margin)
        found.append(Figure("pairs.png", plots.render_pairs(view, rows, pair_rows, "png"),
                            PAIRS_CAPTION))
    return found


CURVES_CAPTION = (
    "Top: train loss, test loss and test accuracy per epoch, the mean over seeds (line) with "
    "the confidence band of that mean (the Student t interval of the table, so the band at "
    "the last epoch is the table's CI). Bottom left: final test accuracy per initializer, "
    "ranked as in the table: every seed as a dot, the mean as a bar with its CI, and the "
    "paired verdict against the baseline. Bottom right: each seed's final accuracy minus the "
    "baseline's on the same seed, with the mean difference and the interval that decided the "
    "verdict. An initializer far below the others is drawn as an arrow at the bottom edge.")
LR_CAPTION = ("Validation accuracy against learning rate per initializer (the rate each one "
              "is tuned to is chosen on validation); the tuned table above reports test "
              "accuracy at that rate.")
PAIRS_CAPTION = ("Every pair of initializers (--pairs all): bars join the initializers that "
                 "the Holm-corrected paired tests cannot separate.")


def network_cards(result: RunResult) -> tuple[dict[str, list[dict]], str | None]:
    """({init: card rows (`starts.init_card`)}, None), or ({}, why there is no card).

    The card is drawn for the run's first seed on the dataset the run used, as `initbench
    inspect` shows it; a dataset or model that cannot be loaded here leaves a note instead."""
    import jax

    from initbench import data, networks, starts
    from initbench.errors import InitbenchError

    if result.labels is not None:
        return {}, "runs of different settings are shown side by side: no single network."
    spec = result.spec
    try:
        dataset = data.load(result.dataset)
        if spec.val_fraction is not None:  # the split training used (LSUV reads x_train)
            dataset = data.split_validation(dataset, spec.val_fraction)
        # `starts.init_card` for every initializer at once: one draw of all the cells.
        network = networks.check(spec, dataset.num_classes, dataset.image_shape, dataset.name)
        cells = [(init, result.seeds[0]) for init in result.inits]
        params = starts.cell_starts(spec, cells, dataset).params
        cards = {init: networks.card(spec, init, jax.tree.map(lambda a, k=k: a[k], params),
                                     network)
                 for k, init in enumerate(result.inits)}
        if spec.param != "sp":  # the stored kernels' expected std, as `starts.init_card`
            from initbench import parameterize

            cards = {init: parameterize.card_columns(spec, rows, network)
                     for init, rows in cards.items()}
        return cards, None
    except InitbenchError as err:
        return {}, f"the card could not be drawn here: {err}"


def page(summarized: RunSummary, figs: list[Figure],
         cards: dict[str, list[dict]], card_note: str | None = None) -> str:
    """The whole HTML document of a run, as text."""
    result, rows, view = summarized.result, list(summarized.rows), summarized.view
    title = report.title(view)
    parts = [_HEAD.format(title=_esc(title), style=_STYLE),
             f"<header><h1>{_esc(title)}</h1>",
             "<p class=\"sub\">initbench report: ranked table, figures, the card of the "
             "network, settings and provenance of this run.</p>",
             _nav(bool(cards) or card_note is not None), "</header>",
             "<section id=\"table\"><h2>Ranked table</h2>"]
    for table in report.per_rate_tables(summarized):
        parts.append(rich_table_html(table))
    # The terminal's table first (it fits a phone with one sideways scroll), then --wide's.
    parts.append(rich_table_html(report.summary_table(view, rows), skip_title=title))
    parts.append("<details><summary>All columns (as <code>report --wide</code>: spread, "
                 "losses, best epoch, P(better))</summary>"
                 + rich_table_html(report.summary_table(view, rows, wide=True),
                                   skip_title=title) + "</details>")
    if rows[0].family.pairs == "all" and report.is_comparison(rows):
        parts.append(rich_table_html(report.pairs_table(view, rows)))
    warning = report.edge_warning(result, rows)
    if warning:
        parts.append(f"<p class=\"warn\"><strong>note:</strong> {_esc(warning)}</p>")
    parts.append("</section><section id=\"figures\"><h2>Figures</h2>")
    for fig in figs:
        data = base64.b64encode(fig.png).decode("ascii")
        name = _esc(fig.name)
        parts.append(f"<figure><div class=\"fig\"><img src=\"data:image/png;base64,{data}\" "
                     f"alt=\"{name}, described in the caption below\"></div><figcaption>"
                     f"<strong>{name}.</strong> {_esc(fig.caption)}</figcaption></figure>")
    parts.append("</section>")
    if cards or card_note:
        parts.append(card_html(result, cards, card_note))
    parts.append(settings_html(result))
    parts.append(provenance_html(result))
    parts.append("<footer>Written by <code>initbench report RUN_DIR --html</code>; one file, "
                 "no network requests.</footer></body></html>\n")
    return "\n".join(parts)


def _nav(with_card: bool) -> str:
    links = [("table", "Ranked table"), ("figures", "Figures")]
    links += [("card", "Network card")] if with_card else []
    links += [("settings", "Settings"), ("provenance", "Provenance")]
    return "<nav>" + " · ".join(f"<a href=\"#{k}\">{v}</a>" for k, v in links) + "</nav>"


def rich_table_html(table, skip_title: str | None = None) -> str:
    """A rich `Table` of the terminal as an HTML table in its own scrolling box, with its
    title above and its caption (one paragraph per line) below. Cell text and the verdict
    colours are the terminal's."""
    columns = table.columns
    head = "".join(f"<th class=\"{_align(c.justify)}"
                   f"{' sticky' if _plain(c.header) in _STICKY else ''}\">"
                   f"{_lines(_plain(c.header))}</th>" for c in columns)
    cells = [list(c.cells) for c in columns]
    body = []
    for i in range(table.row_count):
        tds = []
        for column, column_cells in zip(columns, cells):
            cell = column_cells[i]
            classes = [_align(column.justify), *_style_classes(cell),
                       *(["sticky"] if _plain(column.header) in _STICKY else [])]
            tds.append(f"<td class=\"{' '.join(classes)}\">{_lines(_plain(cell))}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    shown = _plain(table.title)
    title = f"<h3>{_esc(shown)}</h3>" if shown and shown != skip_title else ""
    caption = "".join(f"<p class=\"note\">{_esc(line)}</p>"
                      for line in _plain(table.caption).splitlines() if line.strip())
    return (f"{title}<div class=\"scroll\"><table><thead><tr>{head}</tr></thead><tbody>"
            + "".join(body) + f"</tbody></table></div>{caption}")


def card_html(result: RunResult, cards: dict[str, list[dict]], note: str | None) -> str:
    """The card of the network: one row per parameter (shape, fans) and, per initializer, the
    expected std beside the std drawn for the run's first seed; then each initializer's rule."""
    parts = ["<section id=\"card\"><h2>The card of the network</h2>"]
    if not cards:
        parts.append(f"<p class=\"note\">{_esc(note or '')}</p></section>")
        return "".join(parts)
    inits = list(cards)
    first = cards[inits[0]]
    spec = result.spec
    features = first[0]["shape"][0] if first and len(first[0]["shape"]) == 2 else None
    network = network_title(spec.model, report.net_label(result, features))
    parts.append(f"<p>{_esc(network)} on {_esc(result.dataset)}, drawn for seed "
                 f"{result.seeds[0]} as <code>initbench inspect</code> shows it. Each "
                 "initializer's column: expected std / std of this draw.</p>")
    head = ["layer", "parameter", "shape", "fan_in", "fan_out", *inits]
    rows = []
    for k, row in enumerate(first):
        cells = ["—" if row["layer"] is None else str(row["layer"]), row["path"],
                 "×".join(map(str, row["shape"])), _int(row["fan_in"]), _int(row["fan_out"])]
        for init in inits:
            other = cards[init][k]
            cells.append(f"kept: {other['kept']}" if other.get("kept") else
                         f"{num(other['expected_std'], '.4g')} / {num(other['drawn_std'], '.4g')}")
        rows.append(cells)
    parts.append(_plain_table(head, rows, left=("parameter",)))
    rules = []
    for init in inits:  # each rule names its initializer (or the bias) first
        seen = dict.fromkeys(row["rule"] for row in cards[init])
        rules.append(f"<li>{_esc('; '.join(seen))}</li>")
    parts.append("<p class=\"note\">fans: kernel [..., in, out], receptive field = product of "
                 "the leading dims; fan_in = in × rf, fan_out = out × rf. The rules:</p><ul "
                 "class=\"rules\">" + "".join(rules) + "</ul></section>")
    return "".join(parts)


def settings_html(result: RunResult) -> str:
    """Every setting of `spec.json`'s spec, one row each."""
    spec = result.spec.to_dict()
    rows = [[key, _value_text(value)] for key, value in spec.items()]
    mixed = result.meta.get("mixed_settings")
    note = (f"<p class=\"note\">Settings that differ between the rows: {_esc(', '.join(mixed))}"
            "; the values above are the first run's.</p>" if mixed else "")
    return ("<section id=\"settings\"><h2>Settings</h2>"
            + _plain_table(["setting", "value"], rows, left=("setting", "value"), wrap_last=True) + note
            + "</section>")


_PROVENANCE = (("command", "command"), ("training_key", "training key"),
               ("dataset_requested", "dataset requested"), ("dataset_notice", "dataset notice"),
               ("num_train", "training examples"), ("num_test", "test examples"),
               ("cells_trained", "cells trained"), ("cells_cached", "cells from the cache"),
               ("seconds", "seconds"), ("merged_from", "merged from"),
               ("versions", "versions"), ("python", "python"), ("device", "device"),
               ("machine", "machine"), ("git_revision", "git revision"))


def provenance_html(result: RunResult) -> str:
    """Where the numbers come from: the command, the versions, the machine (spec.json), and
    the whole spec.json document folded below."""
    meta = {"training_key": result.spec.training_key(), **result.meta}
    rows = []
    for key, label in _PROVENANCE:
        value = meta.get(key)
        if value is None:
            continue
        if key == "command" and isinstance(value, list):
            value = " ".join(value)
        rows.append([label, _value_text(value)])
    document = {"spec": result.spec.to_dict(), **meta}
    return ("<section id=\"provenance\"><h2>Provenance</h2>"
            + _plain_table(["", "value"], rows, left=("", "value"), wrap_last=True)
            + "<details><summary>spec.json (as recorded)</summary><pre>"
            + _esc(json.dumps(document, indent=2, default=str)) + "</pre></details></section>")


def _plain_table(head: list[str], rows: list[list[str]], left: tuple[str, ...] = (),
                 wrap_last: bool = False) -> str:
    aligns = [("left" if h in left else "right") + (" sticky" if h in _STICKY else "")
              for h in head]
    if wrap_last:  # long values (a command, versions) wrap instead of scrolling
        aligns[-1] += " wrap"
    header = "".join(f"<th class=\"{a}\">{_esc(h)}</th>" for h, a in zip(head, aligns))
    body = "".join("<tr>" + "".join(f"<td class=\"{a}\">{_esc(c)}</td>"
                                    for c, a in zip(cells, aligns)) + "</tr>" for cells in rows)
    return (f"<div class=\"scroll\"><table><thead><tr>{header}</tr></thead><tbody>{body}"
            "</tbody></table></div>")


def _value_text(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_value_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}" if math.isfinite(value) else "—"
    return "—" if value is None else str(value)


def _int(value) -> str:
    return "—" if value is None else str(value)


def _plain(renderable) -> str:
    if renderable is None:
        return ""
    return renderable.plain if hasattr(renderable, "plain") else str(renderable)


def _style_classes(cell) -> list[str]:
    styles = [str(cell.style)] if getattr(cell, "style", None) else []
    styles += [str(span.style) for span in getattr(cell, "spans", ())]
    return [_STYLE_CLASSES[s] for s in styles if s in _STYLE_CLASSES]


def _align(justify) -> str:
    return "right" if justify == "right" else "left"


def _lines(text: str) -> str:
    return "<br>".join(_esc(line) for line in text.split("\n"))


def _esc(text: str) -> str:
    return html.escape(str(text), quote=True)


_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style></head><body>"""

# The system's own fonts (no web fonts); tables scroll inside their box, never the page.
_STYLE = """
:root { color-scheme: light; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de;
  --head: #f6f8fa; --good: #116329; --bad: #a40e26; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 72rem; padding: 1rem; color: var(--fg); background: #fff;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
h1 { font-size: 1.35rem; line-height: 1.3; margin: 0.5rem 0; overflow-wrap: anywhere; }
h2 { font-size: 1.2rem; margin: 2rem 0 0.5rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 1rem 0 0.25rem; overflow-wrap: anywhere; }
.sub, .note, figcaption, footer { color: var(--muted); font-size: 0.9rem; }
.note { margin: 0.3rem 0; }
nav { font-size: 0.95rem; }
nav a { white-space: nowrap; }
.scroll { overflow-x: auto; width: fit-content; max-width: 100%; margin: 0.5rem 0;
  border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; font-size: 0.9rem; font-variant-numeric: tabular-nums; }
th, td { padding: 0.35rem 0.6rem; border-bottom: 1px solid var(--line); white-space: nowrap;
  vertical-align: top; }
th { background: var(--head); font-weight: 600; }
tbody tr:last-child td { border-bottom: none; }
td.wrap { white-space: normal; overflow-wrap: anywhere; min-width: 12rem; }
.left { text-align: left; } .right { text-align: right; }
td.better { color: var(--good); font-weight: 600; }
td.worse { color: var(--bad); font-weight: 600; }
td.dim { color: var(--muted); }
.warn { background: #fff8c5; padding: 0.5rem; border-radius: 6px; }
figure { margin: 1rem 0; }
.fig { overflow-x: auto; max-width: 100%; }
img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); }
th.sticky, td.sticky { position: sticky; left: 0; background: #fff; z-index: 1;
  box-shadow: 1px 0 0 var(--line); }
th.sticky { background: var(--head); }
details { margin: 0.5rem 0; } summary { cursor: pointer; color: var(--muted); }
ul.rules { font-size: 0.9rem; padding-left: 1.2rem; }
ul.rules li { overflow-wrap: anywhere; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.9em; }
pre { overflow-x: auto; font-size: 0.8rem; background: var(--head); padding: 0.5rem; }
footer { margin-top: 2rem; border-top: 1px solid var(--line); padding-top: 0.5rem; }
@media (max-width: 600px) { body { padding: 0.6rem; font-size: 15px; }
  th, td { padding: 0.3rem 0.45rem; }
  /* A five-panel figure at 390 px is unreadable: twice the width, scrolled sideways. */
  .fig img { width: 760px; max-width: none; } }
"""
