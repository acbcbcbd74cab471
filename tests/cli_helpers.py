"""Helpers the tests share: run the CLI in-process, read a CSV it wrote, take its one error
line, see the runners a run built."""

from __future__ import annotations

import contextlib
import csv

from typer.testing import CliRunner

from initbench.cli import app


def invoke(*args):
    """Run `initbench ARGS` in-process (`CliRunner`); every argument is passed as text."""
    return CliRunner().invoke(app, [str(a) for a in args])


def read_csv(path) -> list[dict]:
    """The rows of a CSV file as dicts."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def one_error(result, code: int = 2, after_results: bool = False) -> str:
    """The single `error:` line of a failed command (and nothing else, no traceback).

    `after_results`: the failure came after training (writing the run folder), when the
    tables are already on stdout (they are printed before the figure is drawn and the
    folder written); stderr must still hold the one line and nothing else."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception,
                                                                      SystemExit)
    text = result.stderr if after_results else result.output
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    if after_results:
        assert "verdict" in result.stdout  # the results the user waited for were shown
    return lines[0]


def error_line(result, code: int = 2) -> str:
    """The single `error:` line among a failed command's output (no traceback)."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


@contextlib.contextmanager
def runners_built():
    """Every `Runner` built inside the block, in order (its traces say what it traced)."""
    from initbench.runner import Runner

    built, original = [], Runner.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        built.append(self)

    Runner.__init__ = spy
    try:
        yield built
    finally:
        Runner.__init__ = original
