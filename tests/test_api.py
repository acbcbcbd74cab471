"""The library API (`initbench.compare`, `initbench.load`): the CLI's own path, the same files,
tables as the files' DataFrames, the figure of curves.png, errors as InitbenchError."""

import ast
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import initbench as ib
from initbench.cli import app

ROOT = Path(__file__).resolve().parents[1]
# Two rates and every pair: tuned.csv, lr.png, pairs.csv and pairs.png are written too.
CLI_OPTIONS = ["--inits", "xavier,normal", "--seeds", "2", "--dataset", "digits", "--epochs", "1",
               "--hidden", "16", "--lr", "0.01,0.1", "--pairs", "all"]
# Provenance that differs between any two runs of the same setting, and the command line.
PROVENANCE = ("command", "seconds", "timings", "cells_trained", "cells_cached", "dataset_notice")


@pytest.fixture(scope="module")
def twin_runs(tmp_path_factory):
    """The same comparison through the CLI and through `ib.compare`, sharing one cell cache:
    the API's run finds every cell the CLI trained only if it built the same setting."""
    import os

    root = tmp_path_factory.mktemp("twins")
    old = os.environ.get("INITBENCH_CACHE")
    try:
        os.environ["INITBENCH_CACHE"] = str(root / "cache")
        result = CliRunner().invoke(app, ["compare", *CLI_OPTIONS, "--out", str(root / "cli"),
                                          "--quiet"])
        assert result.exit_code == 0, result.output
        run = ib.compare(inits=["xavier", "normal"], seeds=2, dataset="digits", epochs=1,
                         hidden=[16], lr=[0.01, 0.1], pairs="all", out=root / "api")
    finally:
        if old is None:
            os.environ.pop("INITBENCH_CACHE", None)
        else:
            os.environ["INITBENCH_CACHE"] = old
    return root / "cli", run


def test_compare_and_the_cli_write_identical_files(twin_runs):
    cli, run = twin_runs
    names = sorted(p.name for p in cli.iterdir())
    assert names == sorted(p.name for p in run.folder.iterdir())
    assert {"tuned.csv", "lr.png", "pairs.csv", "pairs.png", "curves.png"} <= set(names)
    for name in names:
        if name != "spec.json":
            assert (cli / name).read_bytes() == (run.folder / name).read_bytes(), name
    a, b = (json.loads((f / "spec.json").read_text()) for f in (cli, run.folder))
    assert a["command"][:2] == ["initbench", "compare"]
    assert b["command"][0].startswith("initbench.compare(inits=['xavier', 'normal'], seeds=2")
    assert (a["cells_trained"], b["cells_trained"], b["cells_cached"]) == (8, 0, 8)
    for key in PROVENANCE:
        a.pop(key, None), b.pop(key, None)
    assert a == b


def test_run_tables_are_the_files_as_dataframes(twin_runs):
    _, run = twin_runs
    import pandas as pd

    for table, name in ((run.summary, "summary.csv"), (run.curves, "curves.csv"),
                        (run.pairs, "pairs.csv"), (run.tuned, "tuned.csv")):
        assert isinstance(table, pd.DataFrame), name
        header = (run.folder / name).read_text().splitlines()[0].split(",")
        assert list(table.columns) == header, name
        assert len(table) == len((run.folder / name).read_text().splitlines()) - 1, name
    assert set(run.curves["init"]) == {"xavier", "normal"} and set(run.curves["lr"]) == {0.01, 0.1}
    assert run.layers is None  # no --track-layers
    assert run.spec.inits == ("xavier", "normal") and run.spec.lr == (0.01, 0.1)
    assert run.meta["data_fingerprint"]


def test_load_gives_the_same_run(twin_runs):
    _, run = twin_runs
    again = ib.load(run.folder)
    for name in ("summary", "curves", "pairs", "tuned"):
        assert getattr(again, name).equals(getattr(run, name)), name
    assert again.spec == run.spec
    assert [r.init for r in again.rows] == [r.init for r in run.rows]
    assert again._repr_html_() == run._repr_html_()


def test_figure_is_the_figure_of_curves_png(twin_runs):
    _, run = twin_runs
    buffer = io.BytesIO()
    run.figure().savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    assert buffer.getvalue() == (run.folder / "curves.png").read_bytes()


def test_repr_html_is_the_ranked_table(twin_runs):
    _, run = twin_runs
    page = run._repr_html_()
    ranked = [r.init for r in run.rows]
    cells = re.findall(r"<tr><td[^>]*>(\d+)</td><td[^>]*>([^<]+)</td>", page)
    assert [init for _, init in cells] == ranked and [n for n, _ in cells] == ["1", "2"]
    assert "baseline" in page and "Holm" in page and run.title() in page


@pytest.mark.parametrize("keywords, message", [
    ({"inits": ["xavir"]}, "Did you mean 'xavier'"),
    ({"seeds": "auto"}, "needs --precision"),
    ({"epochs": 0}, "epochs"),
    ({"target": 0.9}, "in percent"),
    ({"pairs": "some"}, "--pairs value"),
    ({"dataset": "nope.npz"}, "no such file"),
])
def test_errors_raise_initbench_error_before_training(tmp_path, keywords, message):
    options = {"inits": ["xavier"], "seeds": 1, "dataset": "digits", "epochs": 1, "hidden": [4],
               "out": tmp_path / "out", **keywords}
    with pytest.raises(ib.InitbenchError, match=re.escape(message)):
        ib.compare(**options)
    assert not (tmp_path / "out").exists()


def test_load_of_a_folder_that_is_no_run_raises(tmp_path):
    with pytest.raises(ib.InitbenchError, match="not an initbench run"):
        ib.load(tmp_path)


def test_every_compare_option_is_a_keyword():
    import inspect

    from initbench.commands import train

    keywords = set(inspect.signature(ib.compare).parameters)
    options = {p.name for p in inspect.signature(train.compare).parameters.values()} - {"ctx"}
    cli_only = {"quiet", "as_json", "wide", "curves", "no_cache", "config"}  # rendering; cache=
    assert options - cli_only <= keywords, options - cli_only - keywords
    assert "cache" in keywords and "progress" in keywords


def test_the_cli_starts_without_pandas():
    code = ("import sys; import initbench, initbench.cli, initbench.api, initbench.commands.train;"
            "print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == "False"


def test_pandas_is_a_dependency_with_a_lower_bound():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'"pandas>=\d', text)


def test_the_readme_from_python_example_runs_as_written(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## From Python", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    ast.parse(code)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
    assert (tmp_path / "results" / "from-python" / "summary.csv").is_file()
