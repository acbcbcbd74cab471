"""`python -m initbench` runs the CLI."""

from initbench.cli import main

main()
