"""What a new user meets first: a table that fits the terminal, one unit for accuracies,
reading commands that write nothing, one-initializer runs without comparison columns, and
a warning when a chosen learning rate sits at the edge of the grid."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from cli_helpers import invoke
from rich.console import Console

from initbench import report, runfolder, summary
from initbench.summary_rows import SUMMARY_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "results" / "reference"
LR_RUN = ROOT / "results" / "lr-mnist-5k"




def rendered(table, width: int) -> str:
    """`table` as a terminal of `width` columns shows it (no colour)."""
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(table)
    return console.file.getvalue()


@pytest.fixture(scope="module")
def reference():
    result = runfolder.read_run(REFERENCE)
    return result, list(summary.summarize_saved(result).rows)


@pytest.mark.parametrize("width", [100, 200])
def test_reference_table_fits_and_shows_every_value_in_full(reference, width):
    """At 100 columns (and wider) each row shows on one line its rank, name, seeds, accuracy
    with its interval, Δ with its interval and the verdict, none of them cut."""
    result, rows = reference
    text = rendered(report.summary_table(result, rows), width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert "…" not in text
    for row in rows:
        line = next(line for line in lines if f"│ {row.init} " in line)
        assert line.lstrip().startswith(f"{row.rank} ")
        assert report.accuracy_text(row) in line
        assert f" {row.seeds} " in line
        assert row.verdict in line
        if row.verdict != "baseline":
            assert report.diff_text(row) in line
    assert "P(better)" not in text and "min–max" not in text  # behind --wide


def test_reference_table_at_80_columns_wraps_but_cuts_nothing(reference):
    result, rows = reference
    text = rendered(report.summary_table(result, rows), 80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    words = text.split()
    for row in rows:
        assert row.init in words  # names are never folded
        for part in [*report.accuracy_text(row).split(), *row.verdict.split()]:
            assert part in words


def test_wide_table_adds_the_rest(reference):
    result, rows = reference
    text = rendered(report.summary_table(result, rows, wide=True), 250)
    for header in ("P(better)", "min–max", "test loss", "best ep", "acc % mean ± std"):
        assert header in text


def test_cli_table_follows_columns():
    """The CLI's console takes its width from COLUMNS even when piped."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "100", "PYTHONPATH": str(ROOT)}  # this checkout's package
    out = subprocess.run([sys.executable, "-m", "initbench", "report", str(REFERENCE), "-q"],
                         capture_output=True, text=True, env=env, check=True)
    assert max(len(line) for line in out.stdout.splitlines()) <= 100
    assert "no clear difference" in out.stdout and "lecun_normal" in out.stdout


def test_target_is_in_percent_and_the_old_fraction_is_refused(reference, tmp_path):
    folder = tmp_path / "ref"
    shutil.copytree(REFERENCE, folder)
    ok = invoke("report", folder, "--target", "93", "-q")
    assert ok.exit_code == 0, ok.output
    assert "epochs to 93%" in ok.output
    old = invoke("report", folder, "--target", "0.93")
    assert old.exit_code == 2
    lines = [line for line in old.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "--target 93" in lines[0]
    assert invoke("export", folder, "--target", "150").exit_code == 2


def test_reading_commands_leave_the_run_folder_unchanged(tmp_path):
    folder = tmp_path / "ref"
    shutil.copytree(REFERENCE, folder)
    before = {p: p.read_bytes() for p in folder.rglob("*")}
    for args in (["plan", folder], ["report", folder], ["export", folder],
                 ["export", folder, "--format", "json"]):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
    plot = invoke("plot", folder)  # plot needs a named file
    assert plot.exit_code == 2 and "--out" in plot.output
    assert {p: p.read_bytes() for p in folder.rglob("*")} == before
    assert sorted(tmp_path.iterdir()) == [folder]
    written = invoke("plan", folder, "--out", tmp_path / "plan.csv")
    assert written.exit_code == 0 and (tmp_path / "plan.csv").read_text().startswith("init,")


def test_edge_of_the_grid_is_marked_and_warned_once():
    """The committed rate run chose 0.03, its largest rate, for normal."""
    result = runfolder.read_run(LR_RUN)
    summarized = summary.summarize_saved(result)
    rows = list(summarized.rows)
    warning = report.edge_warning(result, rows)
    assert warning.count("normal at 0.03, the largest rate tried") == 1
    assert "try adding 0.09" in warning and "xavier" not in warning
    table = rendered(report.summary_table(summarized.view, rows), 100)
    normal = next(line for line in table.splitlines() if "│ normal " in line)
    assert normal.rstrip().endswith("0.03*")
    xavier = next(line for line in table.splitlines() if "│ xavier " in line)
    assert xavier.rstrip().endswith("0.003")
    output = invoke("report", LR_RUN).output
    assert output.count("edge of the grid") == 1
    single = runfolder.read_run(REFERENCE)
    assert report.edge_warning(single, summary.summarize_saved(single).rows) is None


def test_run_with_one_initializer_has_no_comparison(tmp_path):
    out = tmp_path / "one"
    result = invoke("run", "--init", "xavier", "--dataset", "digits", "--hidden", "16",
                    "--epochs", "1", "--seeds", "3", "--out", out)
    assert result.exit_code == 0, result.output
    for word in ("baseline", "Δ", "verdict", "Holm", "comparisons"):
        assert word not in result.stdout
    assert "xavier" in result.stdout and "test acc %" in result.stdout
    markdown = invoke("export", out).output
    assert "Δ" not in markdown and "verdict" not in markdown and "xavier" in markdown


def _line_colours(fig, names) -> dict[str, tuple]:
    """{initializer: RGB} of the labelled lines of `fig` (a label may add text after a space)."""
    from matplotlib.colors import to_rgb

    found: dict[str, set] = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            name = str(line.get_label()).split(" ")[0]
            if name in names:
                found.setdefault(name, set()).add(to_rgb(line.get_color()))
    assert all(len(c) == 1 for c in found.values()), found  # one colour per name in a figure
    return {name: next(iter(c)) for name, c in found.items()}


def test_an_initializer_has_one_colour_in_every_figure_and_run():
    """curves.png, lr.png and pairs.png of one run give each initializer one colour, by its
    name: xavier ranks 1st in the rate run and 3rd in the reference run, same colour."""
    from initbench import plots

    run = runfolder.read_run(LR_RUN)
    summarized = summary.summarize_saved(run)
    rows, view = list(summarized.rows), summarized.view
    every = list(summary.summarize_saved(run, pairs="all").rows)
    pair_rows = summary.compare_family(view, every[0].family.baseline, "all", None)
    names = set(run.inits)
    figures = [plots.make_figure(view, rows),
               plots.make_lr_figure(run, list(summarized.per_rate), rows),
               plots.make_pairs_figure(view, every, pair_rows)]
    colours = [_line_colours(fig, names) for fig in figures]
    for found in colours:
        assert set(found) == names
        assert found == colours[0]
    assert len(set(colours[0].values())) == len(names)  # told apart
    reference = runfolder.read_run(REFERENCE)
    other = _line_colours(plots.make_figure(reference, summary.summarize_saved(reference).rows),
                          set(reference.inits))
    for name in names & set(other):
        assert other[name] == colours[0][name]


def test_a_collapsed_initializer_does_not_squeeze_the_others():
    """On the CNN reference N(0, 1) ends at 28-81%: the final panels keep to the other four
    (their spread stays readable) and point at it with a labelled arrow."""
    from initbench import plots

    run = runfolder.read_run(ROOT / "results" / "cnn-reference")
    fig = plots.make_figure(run, summary.summarize_saved(run).rows)
    final = next(ax for ax in fig.axes if ax.get_title().startswith("final test accuracy"))
    low, high = final.get_ylim()
    assert low > 90 and high < 100
    assert any(t.get_text().startswith("below: mean 67.1%") for t in final.texts)
    paired = next(ax for ax in fig.axes if ax.get_title().startswith("paired"))
    assert paired.get_ylim()[0] > -10  # normal's -28 points is an arrow, not the scale
    legend_axes = [ax for ax in fig.axes if ax.get_legend() is not None]
    assert [ax.axison for ax in legend_axes] == [False]  # the legend has its own, empty cell


def test_the_card_says_what_a_kept_parameter_holds():
    """A LayerNorm's scale is 'kept: ones', not a 'drawn std' of 0."""
    from initbench.networks import kept_values

    net = ROOT / "tests" / "fixtures" / "user_net.py"
    result = invoke("inspect", "--model", f"{net}:make_net", "--dataset", "digits", "--json")
    assert result.exit_code == 0, result.output
    import json

    rows = {row["path"]: row for row in json.loads(result.stdout)["parameters"]}
    assert rows["norm/scale"]["kept"] == "ones" and rows["norm/bias"]["kept"] == "zeros"
    assert "kept" not in rows["head/kernel"]
    import numpy as np

    assert kept_values(np.full(3, 0.5)) == "constant 0.5"
    assert kept_values(np.array([0.0, 2.0])) == "mean 1, std 1"


def test_report_json_and_export_json_are_one_document():
    import json

    reported = json.loads(invoke("report", REFERENCE, "--json").stdout)
    exported = json.loads(invoke("export", REFERENCE, "--format", "json").stdout)
    assert reported == exported
    documented = (ROOT / "docs" / "files.md").read_text()
    for key in reported:  # every key is documented
        assert f"`{key}`" in documented, key
    for column in SUMMARY_COLUMNS:
        assert f"`{column}`" in documented, column


def test_every_phase_of_a_run_is_named_and_quiet_names_none(tmp_path):
    """On a terminal a run names what it does before each long step (user text verbatim,
    never markup); --quiet and --json print none of it."""
    from initbench import experiment
    from initbench.progress import RichReporter
    from initbench.runtime import Runtime
    from initbench.spec import Spec

    console = Console(file=io.StringIO(), force_terminal=True, width=200, color_system=None)
    spec = Spec(inits=("xavier", "normal"), seeds=(0, 1), dataset="digits", hidden=(8,),
                epochs=2)
    out = tmp_path / "a[/]b"
    experiment.run_experiment(spec, out, Runtime.from_environment(), RichReporter(console))
    text = console.file.getvalue()
    phases = ["loading digits", "looking for 4 cells in the cache", "placing the data",
              "compiling", "drawing the starting parameters of 4 cells", "training 4 cells",
              "drawing figures", f"writing {out}"]
    where = [text.find(phase) for phase in phases]
    assert -1 not in where and where == sorted(where), (where, text[-2000:])
    assert "ETA" in text
    for flag in ("--quiet", "--json"):
        result = invoke("compare", "--inits", "xavier,normal", "--dataset", "digits",
                        "--hidden", "8", "--epochs", "2", "--seeds", "2", flag,
                        "--out", tmp_path / flag.strip("-"))
        assert result.exit_code == 0 and result.stderr == "", result.stderr


def test_no_blank_lines_where_stderr_is_no_terminal(tmp_path):
    """Piped or logged, a run's progress leaves no blank lines where spinners were drawn and
    erased (the phases are shown on terminals only); the bar's last frame remains."""
    from initbench import experiment
    from initbench.progress import RichReporter
    from initbench.runtime import Runtime
    from initbench.spec import Spec

    console = Console(file=io.StringIO(), force_terminal=False, width=200, color_system=None)
    spec = Spec(inits=("xavier", "normal"), seeds=(0, 1), dataset="digits", hidden=(8,),
                epochs=2)
    experiment.run_experiment(spec, tmp_path / "run", Runtime.from_environment(),
                              RichReporter(console))
    lines = console.file.getvalue().splitlines()
    assert lines and all(line.strip() for line in lines), lines
    assert any(line.startswith("training 4 cells") for line in lines), lines


def _readme_commands() -> list[str]:
    """The `initbench ...` command lines of the README's code blocks (continuations joined)."""
    import re

    text = (ROOT / "README.md").read_text()
    blocks, block, fenced = [], [], False
    for line in text.splitlines():  # fences pair in order: ```python ... ``` is one block
        if line.startswith("```"):
            if fenced:
                blocks.append("\n".join(block))
            block, fenced = [], not fenced
        elif fenced:
            block.append(line)
    commands = []
    for code in blocks:
        joined = re.sub(r"\\\n\s*", " ", code)
        for line in joined.splitlines():
            line = line.strip().removeprefix("$ ").removeprefix(".venv/bin/")
            if line.startswith("initbench "):
                commands.append(line.split("  #")[0].strip())
    return commands


def test_readme_commands_write_only_where_git_does_not_look():
    """Every file a README command names (--out, --csv) lies in an ignored place (a run
    folder under results/), never the repository root or a committed result."""
    import subprocess

    commands = _readme_commands()
    assert len(commands) > 20
    named = [arg for command in commands for flag, arg in zip(command.split(), command.split()[1:])
             if flag in ("--out", "--csv")]
    assert "results/my-run/curves.svg" in named and "results/my-bench.csv" in named
    for path in named:
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        assert ignored.returncode == 0, f"{path} would show in git status"
    assert not any(command.startswith("initbench bench") and "--csv" not in command
                   for command in commands)  # its default appends to the committed bench.csv


def test_readme_network_is_the_shipped_example():
    """`--model examples/my_nets.py:make_net` runs as written: the file is the README's code."""
    import re

    text = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(import flax.linen as nn\n\nclass SmallNet.*?)```", text,
                      flags=re.S).group(1)
    assert (ROOT / "examples" / "my_nets.py").read_text() == block
    assert any("--model examples/my_nets.py:make_net" in c for c in _readme_commands())


def test_terminal_curves_tell_initializers_apart_without_colour():
    """`--curves`: each initializer's legend entry has its own character, in percent."""
    run = runfolder.read_run(REFERENCE)
    text = report.curve_chart(run, "test_accuracy").plain
    assert "test accuracy (%)" in text
    shown = [marker for marker in report.CHART_MARKERS[:len(run.inits)]]
    assert len(set(shown)) == len(run.inits)
    for marker, name in zip(shown, run.inits):
        assert f"{marker}{marker} {name}" in text


def test_a_table_narrower_than_its_words_folds_rather_than_cuts(reference):
    """Where the table must shrink below its longest words (50 columns), cells fold onto the
    next line; no value is cut with an ellipsis."""
    result, rows = reference
    text = rendered(report.summary_table(result, rows), 50)
    assert max(len(line) for line in text.splitlines()) <= 50
    assert "…" not in text
    digits = sum(ch.isdigit() for ch in text)  # every digit of every interval still shows
    wide = rendered(report.summary_table(result, rows), 200)
    assert digits == sum(ch.isdigit() for ch in wide)


def test_lr_figure_legend_lies_outside_every_panel():
    """lr.png's legend sits beside the panels, never over their data."""
    from initbench import plots

    run = runfolder.read_run(LR_RUN)
    summarized = summary.summarize_saved(run)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = plots.make_lr_figure(run, list(summarized.per_rate), list(summarized.rows))
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    assert all(ax.get_legend() is None for ax in fig.axes)  # no legend inside a panel
    assert len(fig.legends) == 1
    legend_box = fig.legends[0].get_window_extent(renderer)
    for ax in fig.axes:
        assert not legend_box.overlaps(ax.get_window_extent(renderer)), ax.get_title()


def test_the_json_document_has_exactly_the_documented_keys():
    """docs/files.md's table of the JSON document and `report --json` name the same keys:
    none missing from the document, none undocumented."""
    import json
    import re

    reported = {key for run in (REFERENCE, LR_RUN)  # per_rate: several rates only
                for key in json.loads(invoke("report", run, "--json").stdout)}
    section = (ROOT / "docs" / "files.md").read_text().split("## The JSON document")[1]
    section = section.split("\n## ")[0]
    documented = {key for line in section.splitlines() if line.startswith("| `")
                  for key in re.findall(r"`([a-z_0-9]+)`", line.split("|")[1])}
    assert reported == documented


def test_the_training_bar_counts_every_model_epoch():
    """The bar appears after the first finished step and still counts it: it ends at
    total/total."""
    from initbench.progress import RichReporter

    console = Console(file=io.StringIO(), force_terminal=True, width=120, color_system=None)
    reporter = RichReporter(console)
    reporter.start(6, "training")
    for _ in range(3):
        reporter.advance(2)
    task = reporter._progress.tasks[0]
    assert (task.completed, task.total) == (6, 6)
    reporter.stop()
