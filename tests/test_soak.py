"""The end of a run under load, a few times over, in fresh processes: none hangs, none
imports off the main thread. `bench/soak.py` runs the long version (250 runs, about one
hang's worth of the rate once measured when the end of a run could deadlock) by hand."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("soak", ROOT / "bench" / "soak.py")
soak = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("soak", soak)
_spec.loader.exec_module(soak)


def test_the_end_of_a_run_under_load_neither_hangs_nor_imports_off_the_main_thread(tmp_path):
    """Two runs at once beside a CPU-spinning process, each with a thread churning
    garbage collections: each ends within the watchdog's time (a hang would print every
    thread's stack), with its figure and files, and no import or dlopen off the main thread."""
    from typer.testing import CliRunner

    from initbench.cli import app

    # The cell trained here, in-process, so the runs load it from the cache: what they do
    # is the end of a run (cache_key, summary, figure, files), at a few seconds each.
    warm = CliRunner().invoke(app, ["run", "--init", "xavier", *soak.TINY,
                                    "--out", str(tmp_path / "warm")])
    assert warm.exit_code == 0, warm.output
    problems = soak.soak(runs=2, parallel=2, burners=1, timeout=150, work=tmp_path)
    assert problems == [], "\n".join(problems)
    for k in range(2):
        assert json.loads((tmp_path / f"run{k}" / "spec.json").read_text())["cells_cached"] == 1


def test_the_soak_catches_a_hang_and_an_import_off_the_main_thread(tmp_path, monkeypatch):
    """The watchdog and the audit are not decoration: a child that blocks forever is
    reported HUNG with its stacks, one that imports in a thread is reported."""
    child = soak.CHILD
    blocked = child.replace("from initbench.cli import run",
                                 "threading.Event().wait()\nfrom initbench.cli import run")
    monkeypatch.setattr(soak, "CHILD", blocked)
    [hung] = soak.soak(runs=1, parallel=1, burners=0, timeout=2, work=tmp_path / "a")
    assert "HUNG" in hung and "most recent call first" in hung
    importing = child.replace(  # (no run: the audit is checked before the folder)
        "from initbench.cli import run\ncode = run()",
        "t = threading.Thread(target=lambda: __import__('json.tool'))\nt.start(); t.join()\n"
        "code = 0")
    monkeypatch.setattr(soak, "CHILD", importing)
    [imported] = soak.soak(runs=1, parallel=1, burners=0, timeout=150, work=tmp_path / "b")
    assert "json.tool" in imported
