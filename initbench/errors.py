"""The one exception type for user errors; the CLI turns it into exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class InitbenchError(Exception):
    """A user error with a one-line, actionable message."""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> InitbenchError:
    """Build the error for an unknown `kind` name, naming the closest valid choice."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return InitbenchError(f"unknown {kind} '{name}'.{hint} Valid: {', '.join(choices)}.")
