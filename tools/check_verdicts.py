"""Check that every verdict agrees with the interval shown beside it, in every file of a run.

    python tools/check_verdicts.py RUN_DIR [RUN_DIR ...]

The rule (README, "How to read it"): "equivalent" exactly when the shown Δ interval lies
strictly inside ±margin; otherwise "better"/"worse" exactly when it excludes 0 (better when
it lies above 0); "no clear difference" when it does neither. Rows without a verdict
("baseline", "no verdict (n<3)") are skipped.

Checked per run folder: summary.csv, tuned.csv and pairs.csv as written (full precision), the
committed summary.md if there is one, and the run reopened and rendered now as the terminal
table, markdown, LaTeX and JSON (as displayed: a rounded interval that touches 0 or the margin
fails). Prints one line per folder; exits 1 when any row disagrees.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

# The initbench of this checkout, not whichever one is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SKIPPED = ("baseline", "no verdict (n<3)")
_INTERVAL = re.compile(r"([+-−]?\d+(?:\.\d+)?) \[([+-−]?\d+(?:\.\d+)?), ([+-−]?\d+(?:\.\d+)?)\]")


def problem(verdict: str, low: float, high: float, margin: float | None) -> str | None:
    """Why `verdict` disagrees with the interval [low, high] of Δ (a - b), or None."""
    if verdict in SKIPPED:
        return None
    inside = margin is not None and -margin < low and high < margin
    if (verdict == "equivalent") != inside:
        return (f"'{verdict}' beside [{low:g}, {high:g}] "
                f"({'inside' if inside else 'not inside'} ±{margin})")
    if inside:
        return None
    expected = "better" if low > 0 else "worse" if high < 0 else "no clear difference"
    if verdict != expected:
        return f"'{verdict}' beside [{low:g}, {high:g}]: the interval says '{expected}'"
    return None


def _number(text: str) -> float:
    return float(text.replace("−", "-"))


def _margin(value) -> float | None:
    return None if value in (None, "", "None") else float(value)


def check_csv(path: Path, low_col: str, high_col: str) -> tuple[int, list[str]]:
    """(rows checked, problems) of one CSV with a verdict column and a margin column
    (fractions, like the interval). Where the row has a d_z interval too, it must exclude 0
    exactly when the Δ interval does (a second interval must not tell another story)."""
    checked, problems = 0, []
    with open(path, newline="") as f:
        for i, row in enumerate(csv.DictReader(f), start=2):
            if row["verdict"] in SKIPPED:
                continue
            checked += 1
            low, high = float(row[low_col]), float(row[high_col])
            why = problem(row["verdict"], low, high, _margin(row.get("equivalence_margin")))
            if why:
                problems.append(f"{path.name} line {i}: {why}")
            if row.get("d_z_ci_low") not in (None, ""):
                d_low, d_high = float(row["d_z_ci_low"]), float(row["d_z_ci_high"])
                if (d_low > 0 or d_high < 0) != (low > 0 or high < 0):
                    problems.append(f"{path.name} line {i}: d_z [{d_low:g}, {d_high:g}] and "
                                    f"Δ [{low:g}, {high:g}] disagree about 0")
    return checked, problems


def check_table(name: str, header: list[str], body: list[list[str]],
                margin_pt: float | None) -> tuple[int, list[str]]:
    """(rows checked, problems) of a rendered table: the Δ column ("... [Holm CI]") as shown
    (points) and the verdict (last column)."""
    column = next(k for k, h in enumerate(header) if h.startswith("Δ"))
    checked, problems = 0, []
    for cells in body:
        verdict = cells[-1]
        if verdict in SKIPPED:
            continue
        found = _INTERVAL.search(cells[column])
        if not found:
            problems.append(f"{name}: no interval in '{cells[column]}'")
            continue
        checked += 1
        why = problem(verdict, _number(found[2]), _number(found[3]), margin_pt)
        if why:
            problems.append(f"{name} row '{cells[1]}': {why}")
    return checked, problems


def _markdown_table(text: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    split = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines]
    return split[0], split[2:]


def check_run(folder: Path) -> tuple[int, list[str]]:
    """(rows checked, problems) over every file and rendering of one run folder."""
    from initbench import export, report, runfolder, summary

    folder = Path(folder)
    checked, problems = 0, []

    def add(result):
        nonlocal checked
        checked += result[0]
        problems.extend(result[1])

    add(check_csv(folder / "summary.csv", "accuracy_diff_ci_low", "accuracy_diff_ci_high"))
    if (folder / "tuned.csv").exists():
        add(check_csv(folder / "tuned.csv", "accuracy_diff_ci_low", "accuracy_diff_ci_high"))
    if (folder / "pairs.csv").exists():
        add(check_csv(folder / "pairs.csv", "diff_ci_low", "diff_ci_high"))
    run = runfolder.read_run(folder)
    summarized = summary.summarize_saved(run)
    rows, view = list(summarized.rows), summarized.view  # the tuned cells of a rate grid
    margin = rows[0].family.equivalence_margin
    margin_pt = None if margin is None else 100 * margin
    if (folder / "summary.md").exists():
        add(check_table("summary.md", *_markdown_table((folder / "summary.md").read_text()),
                        margin_pt))
    columns, body = report.ranked_table(rows, detailed=True)
    add(check_table("terminal table", [h for h, _ in columns], body, margin_pt))
    add(check_table("markdown export", *_markdown_table(export.render(view, rows, "markdown")),
                    margin_pt))
    latex = export.render(view, rows, "latex")
    table_lines = [line.rstrip(" \\") for line in latex.splitlines() if line.count(" & ") > 2]
    cells = [[c.strip().replace("$\\Delta$", "Δ") for c in line.split(" & ")]
             for line in table_lines]
    add(check_table("latex export", cells[0], cells[1:], margin_pt))
    document = json.loads(export.render(view, rows, "json"))
    shown = [(row, f"json summary row '{row['init']}'", "accuracy_diff_ci")
             for row in document["summary"]]
    shown += [(row, f"json pair '{row['a']} - {row['b']}'", "diff_ci")
              for row in document.get("pairs") or []]
    for row, name, prefix in shown:
        if row["verdict"] in SKIPPED:
            continue
        checked += 1
        why = problem(row["verdict"], row[f"{prefix}_low"], row[f"{prefix}_high"],
                      row["equivalence_margin"])
        if why:
            problems.append(f"{name}: {why}")
    return checked, problems


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: python tools/check_verdicts.py RUN_DIR [RUN_DIR ...]", file=sys.stderr)
        return 2
    failed = False
    for folder in argv:
        checked, problems = check_run(Path(folder))
        failed |= bool(problems) or checked == 0
        status = "ok" if not problems and checked else "FAIL"
        print(f"{status}: {folder}: {checked} rows checked, {len(problems)} disagree"
              + ("" if checked else " (nothing to check)"))
        for line in problems:
            print(f"  {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
