"""The summary of a run as paste-ready text: markdown, CSV, JSON or LaTeX (booktabs).

Every format carries, per initializer: seeds, mean final test accuracy ± std, its CI at the
table's one level, the final test loss, the paired difference against the baseline with the
interval that decided its verdict, P(better), and the verdict; the verdict rule and a
one-line definition of every column go with the table.
CSV and JSON hold every column of summary.csv at full precision; markdown and LaTeX show
accuracies in percent and differences in percentage points, rounded to 2 decimals. With
several rates, markdown, CSV and LaTeX hold the ranked table (each initializer at its chosen
rate); JSON is `report --json`'s document, which adds every (initializer, rate) row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from initbench.errors import unknown_name
from initbench.results import RunResult
from initbench.runfolder import csv_text
from initbench.summary_rows import SUMMARY_COLUMNS, RunSummary, SummaryRow, flatten


@dataclass(frozen=True)
class Format:
    """One export format: the file extensions that choose it, other spellings of its name,
    and `render(result, rows) -> text`."""

    extensions: tuple[str, ...]
    render: Callable[[RunResult, list[SummaryRow]], str]
    aliases: tuple[str, ...] = ()
    # A format that holds more than the ranked table (JSON: a multi-rate run's per-rate
    # rows too) renders the whole `RunSummary` instead, where one is at hand.
    render_summary: Callable[[RunSummary], str] | None = None


FORMATS: dict[str, Format] = {}  # filled below, once the renderers exist; markdown first


def register(name: str, fmt: Format) -> None:
    """Add an export format: `export --format NAME` and `--out FILE.EXT` then choose it."""
    if name in FORMATS:
        raise ValueError(f"export format {name!r} is already registered")
    FORMATS[name] = fmt


def choose_format(fmt: str | None, out: str | None) -> str:
    """The format asked for, else the one `out`'s extension names, else markdown."""
    if fmt is not None:
        fmt = fmt.lower()
        for name, entry in FORMATS.items():
            if fmt == name or fmt in entry.aliases:
                return name
        raise unknown_name("export format", fmt, FORMATS)
    if out is not None:
        suffix = "." + str(out).rsplit(".", 1)[-1].lower() if "." in str(out) else ""
        for name, entry in FORMATS.items():
            if suffix in entry.extensions:
                return name
    return "markdown"


def render(result: RunResult, rows: list[SummaryRow], fmt: str) -> str:
    """The summary `rows` of `result` (ranked, from `summarize_run`) as text in `fmt`."""
    if fmt not in FORMATS:
        raise unknown_name("export format", fmt, FORMATS)
    return FORMATS[fmt].render(result, rows)


def render_summary(summarized: RunSummary, fmt: str) -> str:
    """`summarized` (`summary.summarize_saved`) as text in `fmt`: the format's whole-summary
    renderer where it has one (JSON: the per-rate rows of a multi-rate run included), else
    its ranked table of `summarized.view`."""
    if fmt not in FORMATS:
        raise unknown_name("export format", fmt, FORMATS)
    entry = FORMATS[fmt]
    if entry.render_summary is not None:
        return entry.render_summary(summarized)
    return entry.render(summarized.view, list(summarized.rows))


def csv_table(result: RunResult, rows: list[SummaryRow]) -> str:
    """Every column of summary.csv at full precision."""
    return csv_text([flatten(row) for row in rows], SUMMARY_COLUMNS)


def json_text(result: RunResult, rows: list[SummaryRow]) -> str:
    """`json_document`, indented."""
    return json.dumps(json_document(result, rows), indent=2) + "\n"


def json_summary_text(summarized: RunSummary) -> str:
    """The run's JSON document of the whole summary (per-rate rows included), indented:
    what `report --json` prints."""
    from initbench import report

    return json.dumps(report.result_document(summarized, None), indent=2) + "\n"


def json_document(result: RunResult, rows: list[SummaryRow]) -> dict:
    """The run's JSON document (`report.result_document`, docs/files.md): the same one
    `report --json` and `compare --json` print, without an output folder."""
    from initbench import report

    return report.result_document(RunSummary(result, tuple(rows)), None)


_LEFT = ("init", "verdict")  # text columns; the rest are right-aligned numbers


def _table(rows: list[SummaryRow]) -> tuple[list[str], list[list[str]]]:
    """Header and cells shared by markdown and LaTeX (plain text, no escaping)."""
    from initbench import report

    columns, body = report.ranked_table(rows)
    return [header for header, _ in columns], body


def _note(rows: list[SummaryRow], result: RunResult | None = None) -> str:
    from initbench import report

    auto = report.seeds_note(result) if result is not None else None
    notes = [report.verdict_note(rows)] if report.is_comparison(rows) else []
    notes.append(report.definitions_note(rows).replace("\n", " "))
    if result is not None:
        notes += [n for n in (auto, report.sequential_note(result)) if n]
    return " ".join(notes)


def markdown(result: RunResult, rows: list[SummaryRow]) -> str:
    """A GitHub-flavoured markdown table with a title line and a note on the CIs."""
    from initbench import report

    header, body = _table(rows)
    lines = [f"**{report.title(result)}**", "",
             "| " + " | ".join(header) + " |",
             "|" + "|".join(":---" if h in _LEFT else "---:" for h in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in body]
    lines += ["", f"_{_note(rows, result)}_", ""]
    return "\n".join(lines)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}


def _tex(text: str) -> str:
    text = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    return (text.replace("±", r"$\pm$").replace("Δ", r"$\Delta$").replace("—", "---")
            .replace("·", r"$\cdot$").replace("−", "-"))


def latex(result: RunResult, rows: list[SummaryRow]) -> str:
    """A booktabs table (needs \\usepackage{booktabs}) with the title and CI note as caption."""
    from initbench import report

    header, body = _table(rows)
    align = "".join("l" if h in _LEFT else "r" for h in header)
    lines = [r"% initbench export; needs \usepackage{booktabs}",
             r"\begin{table}[t]", r"\centering", r"\small",
             rf"\caption{{{_tex(report.title(result))}. {_tex(_note(rows, result))}}}",
             rf"\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(_tex(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(_tex(c) for c in cells) + r" \\" for cells in body]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


for _name, _format in (("markdown", Format((".md", ".markdown"), markdown, ("md",))),
                       ("csv", Format((".csv",), csv_table)),
                       ("json", Format((".json",), json_text,
                                       render_summary=json_summary_text)),
                       ("latex", Format((".tex",), latex, ("tex",)))):
    register(_name, _format)
