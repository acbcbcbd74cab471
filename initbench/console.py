"""The two rich consoles every command prints to: results on stdout, the rest on stderr."""

import sys

from rich.console import Console

# Piped output (files, CI logs) gets wide tables instead of rich's 80-column default. A closed
# stdout (`>&-`: sys.stdout is None) gets a console that drops its text; the CLI refuses to
# run that way (`cli.run`), a library caller may.
_STDOUT_OPEN = sys.stdout is not None
stdout = (Console(width=None if sys.stdout.isatty() else 200) if _STDOUT_OPEN
          else Console(quiet=True))
stderr = Console(stderr=True, soft_wrap=True)
