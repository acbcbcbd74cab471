"""`bench/hostile.py` is run by hand (minutes: 327 cases, some train). The suite guards what
the README says of it: how many cases it runs, and that its check holds on the option
refusals, which need no training."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("hostile", ROOT / "bench" / "hostile.py")
hostile = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("hostile", hostile)  # its dataclasses look their module up
_spec.loader.exec_module(hostile)


def test_the_readme_states_how_many_cases_hostile_runs():
    stated = re.search(r"`bench/hostile\.py` runs (\d+) bad inputs", (ROOT / "README.md").read_text())
    assert stated and int(stated.group(1)) == len(hostile.cases())


@pytest.mark.parametrize("prefix", ["--seeds ", "--hidden "])
def test_option_refusals_are_one_error_line_and_exit_2(prefix, tmp_path):
    """Each bad --seeds / --hidden value: one `error:` line, exit 2, nothing written."""
    selected = [case for case in hostile.cases() if case.name.startswith(prefix)]
    assert len(selected) >= 15
    warm = tmp_path / "warm"  # an empty cell cache: these cases never reach training
    warm.mkdir()
    for case in selected:
        assert hostile.check(case, tmp_path, warm) == [], case.name
