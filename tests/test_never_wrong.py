"""Never silently wrong, part two: the model fingerprint sees imported helpers, merges
compare data and every setting, labels say what was drawn, no imports in background threads,
and the remaining faults are one line with the right exit code. Tiny nets on `digits`."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from initbench import data, networks, results
from initbench.cli import app
from initbench.spec import Spec

TINY = ["--dataset", "digits", "--epochs", "1", "--hidden", "16"]
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error(result, code: int = 2) -> str:
    """The single `error:` line of a failed command (no traceback)."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


# ---------------------------------------------------------------- the model fingerprint


def test_model_fingerprint_changes_with_an_imported_helper(tmp_path, monkeypatch):
    helper = tmp_path / "ib_width_helper.py"
    factory = tmp_path / "net.py"
    factory.write_text(textwrap.dedent("""
        import flax.linen as nn
        import ib_width_helper

        class Net(nn.Module):
            num_classes: int

            @nn.compact
            def __call__(self, x):
                x = x.reshape(x.shape[0], -1)
                x = nn.relu(nn.Dense(ib_width_helper.WIDTH)(x))
                return nn.Dense(self.num_classes)(x)

        def make(num_classes):
            return Net(num_classes)
    """))
    spec = Spec(model=f"{factory}:make", dataset="digits")

    def key_with(width):
        helper.write_text(f"WIDTH = {width}\n")
        # a fresh process imports the helper afresh; here, forget both modules
        sys.modules.pop("ib_width_helper", None)
        networks._load_cached.cache_clear()
        return networks.fingerprint(spec, 10, (8, 8, 1))

    narrow, wide, narrow_again = key_with(8), key_with(64), key_with(8)
    assert narrow != wide
    assert narrow == narrow_again
    assert narrow.startswith("make@sha256:")
