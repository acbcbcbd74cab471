"""The command layer: every option is an `Opt` record, each command reads a frozen options
value, only the CLI builds a `Runtime`, and the help shows no value type beside a flag."""

import ast
import dataclasses
import typing
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from initbench.cli import app
from initbench.commands import options as o

PACKAGE = Path(__file__).resolve().parents[1] / "initbench"


def _commands():
    """(path, click command) of every command of the app, sub-groups walked."""
    found = []

    def walk(command, path):
        subs = getattr(command, "commands", None)
        if subs is None:
            found.append((path, command))
            return
        for name, sub in subs.items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


def _calls(tree: ast.AST):
    """(enclosing function name or None, call node) of every call in `tree`."""
    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield from visit(child, function or child.name)
                continue
            if isinstance(child, ast.Call):
                yield function, child
            yield from visit(child, function)

    yield from visit(tree, None)


def _name(call: ast.Call) -> str:
    return ast.unparse(call.func)


def test_no_option_is_written_outside_the_option_records():
    """`typer.Option`/`typer.Argument` appear only in `commands/options.py` (inside `Opt`):
    a command restating an option would drift from its declaration."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "commands" / "options.py":
            continue
        for _, call in _calls(ast.parse(path.read_text())):
            if _name(call) in ("typer.Option", "typer.Argument", "Option", "Argument"):
                offenders.append(f"{path.relative_to(PACKAGE)}:{call.lineno}")
    assert not offenders, offenders


def test_every_command_takes_its_parameters_from_opt_records_and_a_frozen_value():
    commands = _commands()
    assert len(commands) >= 17  # run, compare, ..., data import
    for path, command in commands:
        callback = command.callback
        if not command.params:  # inits, datasets: no options
            continue
        assert hasattr(callback, "options"), path
        assert [p.name for p in command.params] == [opt.name for opt in callback.options], path
        made = typing.get_type_hints(callback.typed)["return"]
        assert dataclasses.is_dataclass(made) and made.__dataclass_params__.frozen, path


def test_a_shared_option_keeps_its_declaration_wherever_it_is_used():
    """An option whose flag `commands.options` declares (same type) is a declaration or its
    `Opt.but` variant (another default or help): same parameter name, Spec field and parser,
    so a command cannot quietly read it differently."""
    declared = {}
    for opt in vars(o).values():
        if isinstance(opt, o.Opt):
            for flag in opt.flags:
                declared.setdefault(flag, []).append(opt)
    checked = 0
    for path, command in _commands():
        for opt in getattr(command.callback, "options", ()):
            same_type = [d for flag in opt.flags for d in declared.get(flag, ())
                         if d.type == opt.type]  # phase's --lr, one number, is another option
            if not same_type:
                continue
            checked += 1
            assert any((opt.name, opt.field, opt.parse) == (d.name, d.field, d.parse)
                       for d in same_type), (path, opt.flags)
    assert checked > 100


def test_an_options_variant_changes_only_its_default_and_help():
    variant = o.BASELINE.but(help="another help", default="xavier")
    assert (variant.name, variant.flags, variant.type) == (o.BASELINE.name, o.BASELINE.flags,
                                                           o.BASELINE.type)
    with pytest.raises(TypeError, match="flags"):
        o.BASELINE.but(flags=("--base",))


def test_only_the_cli_builds_a_runtime():
    """The library asks for a `Runtime` and never builds one; the CLI's group builds it from
    the command line and the environment, and the Python API's entry points (`compare`,
    `rerun`) build one where a notebook has no command line."""
    allowed = {("cli.py", "main"), ("api.py", "compare"), ("api.py", "rerun")}
    found = set()
    for path in PACKAGE.rglob("*.py"):
        relative = str(path.relative_to(PACKAGE))
        if relative == "runtime.py":
            continue
        for function, call in _calls(ast.parse(path.read_text())):
            name = _name(call)
            if name == "Runtime" or name.endswith("from_environment"):
                found.add((relative, function))
    assert found - allowed == set()
    assert ("cli.py", "main") in found


@pytest.mark.parametrize("path", [p for p, _ in _commands()] + [()], ids=" ".join)
def test_help_shows_no_value_type_beside_a_flag(path):
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "--help" in result.output and "<bool>" not in result.output
