"""The two rich consoles every command prints to: results on stdout, the rest on stderr."""

import os
import sys

from rich.console import Console

# Piped output (files, CI logs) gets wide tables instead of rich's 80-column default, unless
# COLUMNS names a width (rich reads it when the width is left to it). A closed stdout (`>&-`:
# sys.stdout is None) gets a console that drops its text; the CLI refuses to run that way
# (`cli.run`), a library caller may.
stdout = (Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200)
          if sys.stdout is not None else Console(quiet=True))
stderr = Console(stderr=True, soft_wrap=True)
