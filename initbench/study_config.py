"""Study files: `--config study.toml` gives any option of the command from a TOML file.

Keys are the options' names without dashes, as on the command line or with underscores
(`batch-size` or `batch_size`), at the top level of the file. Values are TOML values of the
option's type; list-valued options (`inits`, `seeds`, `lr`, `hidden`) also take arrays
(`inits = ["xavier", "he_normal"]`, `seeds = [0, 5, 7]`). An option given on the command
line overrides the file. Unknown keys and values of the wrong type are `InitbenchError`s
naming the file, the key and (for an unknown key) the closest valid one.
"""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any

from initbench.errors import InitbenchError

# Options whose text is a comma-separated list on the command line.
LIST_OPTIONS = ("inits", "seeds", "lr", "hidden")


def read(path: Path) -> dict[str, Any]:
    """The top-level table of the TOML file `path`; InitbenchError if it cannot be read."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise InitbenchError(f"--config {path}: no such file.") from None
    except IsADirectoryError:
        raise InitbenchError(f"--config {path} is a folder; give a .toml file.") from None
    except OSError as err:
        raise InitbenchError(f"--config {path}: cannot read it: {err.strerror or err}.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InitbenchError(f"--config {path} is not valid TOML: {err}.") from None


def _key(name: str) -> str:
    return name.replace("_", "-")


def apply(path: Path, values: dict[str, Any], given: set[str], opts) -> tuple[dict, set[str]]:
    """`values` (a command's option values by parameter name) with those of the study file
    `path` filled in where the command line did not give them; also returns the names now
    given (command line or file). `opts` are the command's `options.Opt`s."""
    table = read(path)
    by_key: dict[str, Any] = {}
    shown = []  # each option's name as on the command line (`json`, not `as-json`)
    for opt in opts:
        if opt.name == "config":
            continue
        flags = [flag.lstrip("-") for flag in opt.flags if flag.startswith("--")]
        shown.append(flags[0])
        for key in {_key(opt.name), *flags}:
            by_key[key] = opt
    values = dict(values)
    given = set(given)
    for key, value in table.items():
        opt = by_key.get(_key(key))
        if opt is None:
            close = difflib.get_close_matches(_key(key), sorted(shown), n=1, cutoff=0.5)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            kind = "table" if isinstance(value, dict) else "key"
            raise InitbenchError(f"--config {path}: unknown {kind} '{key}'.{hint} Valid: "
                                 f"{', '.join(sorted(shown))}.")
        if opt.name in given:
            continue  # the command line wins
        values[opt.name] = _convert(path, key, value, opt)
        given.add(opt.name)
    return values, given


def _convert(path: Path, key: str, value: Any, opt) -> Any:
    """`value` from the file as the option's command-line value; InitbenchError if its type
    does not fit."""
    kinds = _kinds(opt.type)
    where = f"--config {path}: {key}"
    if isinstance(value, bool):
        if bool in kinds:
            return value
        raise InitbenchError(f"{where} must be {_describe(kinds)}, got {str(value).lower()}.")
    if str in kinds:
        if opt.name in LIST_OPTIONS and isinstance(value, list):
            if not value or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                    for v in value):
                raise InitbenchError(f"{where} must be a list of names or numbers, got "
                                     f"{value!r}.")
            return ",".join(_text(v) for v in value)
        if isinstance(value, str):
            return value
        if opt.name in LIST_OPTIONS and isinstance(value, (int, float)):
            return _text(value)
    if Path in kinds and isinstance(value, str):
        return Path(value)
    if int in kinds and isinstance(value, int):
        return value
    if float in kinds and isinstance(value, (int, float)):
        return float(value)
    raise InitbenchError(f"{where} must be {_describe(kinds)}, got {value!r}.")


def _text(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _kinds(annotation) -> set:
    """The non-None types of an option's annotation (`float | None` -> {float})."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return {a for a in typing.get_args(annotation) if a is not type(None)}
    return {annotation}


def _describe(kinds: set) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "text",
             Path: "a path (text)"}
    return " or ".join(names.get(k, str(k)) for k in sorted(kinds, key=str))
