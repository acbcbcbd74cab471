"""Numbers as text, written once for every table, export, figure and JSON document."""

from __future__ import annotations

import math


def finite(value) -> bool:
    """Whether `value` is a finite number (None, "" and text are not)."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def num(value, fmt: str = ".4f") -> str:
    """`value` in `fmt`, or an em dash when it is missing or not finite."""
    return format(value, fmt) if finite(value) else "—"


def pct(value, suffix: str = "") -> str:
    """A fraction as percent with 2 decimals (0.9728 -> '97.28')."""
    return f"{100 * value:.2f}{suffix}" if finite(value) else "—"


def signed_pct(value) -> str:
    """A difference of fractions as signed percentage points (0.0018 -> '+0.18')."""
    return f"{100 * value:+.2f}" if finite(value) else "—"


def plural(count: int, noun: str) -> str:
    """'1 cell', '3 cells'."""
    return f"{count} {noun}{'s' * (count != 1)}"


def json_value(value):
    """A JSON-ready scalar: NumPy scalars become Python ones, NaN and inf become None."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # NumPy scalars
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
