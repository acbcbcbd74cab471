"""Initializer specifiers: `NAME`, `NAME(VALUE)` or `NAME(key=VALUE, ...)`, and their labels.

A specifier is what `--inits` and `--init` take, and its label is how every table, file,
figure and card names the initializer: `normal(0.01)`, `truncated_normal(stddev=0.02)`,
`xavier(mode=fan_in)`. A label is itself a valid specifier (whitespace dropped), so any
name shown can be pasted back into `--inits` or `--baseline`.

This module knows the syntax only; which parameters a name takes, their defaults and their
checks belong to the registry (`initializers`). No JAX: the CLI parses with it at start-up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from initbench.errors import InitbenchError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VALUE = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[A-Za-z_][A-Za-z0-9_]*")
SYNTAX = "NAME, NAME(VALUE) or NAME(key=VALUE, ...)"


@dataclass(frozen=True)
class Specifier:
    """One parsed specifier: the name as written and its arguments, (key or None, value
    text) in the order written (None: a positional value)."""

    name: str
    args: tuple[tuple[str | None, str], ...] = ()

    @property
    def label(self) -> str:
        """The specifier as shown everywhere: `name(arg,key=value)`, no whitespace."""
        if not self.args:
            return self.name
        inner = ",".join(value if key is None else f"{key}={value}" for key, value in self.args)
        return f"{self.name}({inner})"


def split(text: str, option: str = "inits") -> tuple[str, ...]:
    """'xavier,normal(0.01),he_normal(gain=2, mode=fan_in)' -> its three specifiers.

    Commas inside parentheses belong to their specifier; empty items and unbalanced
    parentheses are an InitbenchError naming `--option`.
    """
    text = str(text)
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise InitbenchError(f"--{option}: a ')' without its '(' in '{_cut(text)}'.")
        elif char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth:
        raise InitbenchError(f"--{option}: a '(' without its ')' in '{_cut(text)}'.")
    items.append(text[start:])
    stripped = tuple(item.strip() for item in items)
    if not text.strip() or any(not item for item in stripped):
        raise InitbenchError(f"--{option}: malformed list '{_cut(text)}' (expected "
                             f"comma-separated initializers, each {SYNTAX}).")
    return stripped


def parse(text: str) -> Specifier:
    """The Specifier of `text`; InitbenchError for anything not of the form SYNTAX."""
    raw = str(text)
    compact = re.sub(r"\s+", "", raw)
    name, paren, rest = compact.partition("(")
    if not _NAME.fullmatch(name) or (paren and not rest.endswith(")")):
        raise _malformed(raw)
    if not paren:
        return Specifier(name)
    inner = rest[:-1]
    if not inner:
        raise InitbenchError(f"'{_cut(raw)}': empty parentheses; write {name} for its "
                             f"defaults or {name}(VALUE).")
    args: list[tuple[str | None, str]] = []
    for part in inner.split(","):
        key, eq, value = part.rpartition("=") if "=" in part else ("", "", part)
        if (eq and not _KEY.fullmatch(key)) or not _VALUE.fullmatch(value):
            raise _malformed(raw)
        args.append((key if eq else None, value))
    return Specifier(name, tuple(args))


def label(text: str) -> str:
    """The label of a specifier: as written, whitespace dropped ('normal( 0.01 )' -> 'normal(0.01)')."""
    return parse(text).label


def bind(spec: Specifier, takes: Mapping[str, Any], name: str) -> dict[str, str]:
    """The specifier's arguments as {parameter: value text}, for an initializer `name`
    taking the parameters `takes` (in order). A positional value sets the only parameter;
    with several, each must be named. Unknown or repeated parameters are an InitbenchError
    naming the ones `name` takes."""
    bound: dict[str, str] = {}
    if spec.args and not takes:
        raise InitbenchError(f"'{spec.label}': {name} takes no parameters.")
    for key, value in spec.args:
        if key is None:
            if len(takes) != 1 or bound:
                raise InitbenchError(
                    f"'{spec.label}': {name} takes {_listed(takes)}; name each value, e.g. "
                    f"{spec.name}({next(iter(takes))}=VALUE).")
            key = next(iter(takes))
        elif key not in takes:
            raise InitbenchError(f"'{spec.label}': {name} has no parameter '{key}'; it takes "
                                 f"{_listed(takes)}.")
        if key in bound:
            raise InitbenchError(f"'{spec.label}': {key} is given twice.")
        bound[key] = value
    return bound


def with_params(text: str, params: Mapping[str, Any]) -> str:
    """The label of specifier `text` with `params` added as key=value arguments, in order
    ('xavier' + {'mode': 'fan_in'} -> 'xavier(mode=fan_in)')."""
    spec = parse(text)
    added = tuple((key, value_text(value)) for key, value in params.items())
    return Specifier(spec.name, spec.args + added).label


def value_text(value: Any) -> str:
    """A parameter value as written in a label or key: exact (repr) for floats, without a
    trailing '.0' (2.0 -> '2', 0.01 -> '0.01', 1e-05 -> '1e-05'); strings as they are."""
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def _listed(takes: Mapping[str, Any]) -> str:
    return " and ".join(f"{key} (default {value_text(default)})" for key, default in takes.items())


def _malformed(text: str) -> InitbenchError:
    return InitbenchError(f"'{_cut(text)}' is not an initializer specifier: expected {SYNTAX}, "
                          "e.g. normal(0.01) or he_normal(gain=2, mode=fan_in).")


def _cut(text: str, limit: int = 80) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "..."
