"""`python -m initbench` (and the `initbench` script) run the CLI."""

import os
import sys


def main() -> None:
    """Import the CLI, then run it; a Ctrl-C while importing is one line and exit 130."""
    try:
        from initbench.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted while starting; nothing was done.\n")
        sys.stderr.flush()
        os._exit(130)
    cli_main()


if __name__ == "__main__":
    main()
