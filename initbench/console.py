"""The two rich consoles every command prints to: results on stdout, the rest on stderr."""

import sys

from rich.console import Console

# Piped output (files, CI logs) gets wide tables instead of rich's 80-column default.
stdout = Console(width=None if sys.stdout.isatty() else 200)
stderr = Console(stderr=True, soft_wrap=True)
