"""The Typer app: commands registered from `initbench.commands`, errors turned into exit codes.

Every `InitbenchError` (and every usage error) becomes one line on stderr and exit code 2,
here and nowhere else. The group builds the command's `Runtime` (the command line, cache
locations) and hands it to the command through Typer's context. JAX and TensorFlow are
imported only inside commands that need them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

import typer

from initbench import interrupts
from initbench.commands import aggregate, bench, catalog, inspect, phase, probe, report, rerun, train
from initbench.commands import transfer as transfer_commands
from initbench.console import stderr
from initbench.errors import InitbenchError
from initbench.runtime import Runtime

try:  # typer >= 0.20 vendors click; older typer raises click's own exceptions
    from typer import TyperException as _CliError
except ImportError:  # pragma: no cover
    from click import ClickException as _CliError


class _Interrupted(Exception):
    """Ctrl-C inside a command (Typer would turn KeyboardInterrupt into a silent exit 130)."""


class _Group(typer.core.TyperGroup):
    """Turns user and usage errors into one line on stderr and exit code 2."""

    def get_params(self, ctx):
        return _plain_flags(super().get_params(ctx))

    def get_command(self, ctx, cmd_name):
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _plain_flags_of(command, ctx)
        return command

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise _Interrupted() from None

    def main(self, args=None, *rest, **kwargs):
        kwargs["standalone_mode"] = False
        command = ["initbench", *(sys.argv[1:] if args is None else args)]
        try:
            kwargs.setdefault("obj", Runtime.from_environment(command))
            code = super().main(args, *rest, **kwargs)
        except InitbenchError as err:
            _fail(str(err), 2)
        except _CliError as err:
            # No command at all: the help is the message (rich printed it already).
            _fail(err.format_message(), getattr(err, "exit_code", 2))
        except (typer.Abort, KeyboardInterrupt, _Interrupted):
            _fail_interrupted()
        except OSError as err:  # the safety net: every expected one is an InitbenchError
            from initbench.safeio import describe_os_error

            _fail(describe_os_error(err), 2)
        except MemoryError:
            _fail("out of host memory; use fewer seeds or initializers, or a smaller --hidden "
                  "(finished cells are cached).", 2)
        except Exception as err:
            if "RESOURCE_EXHAUSTED" not in str(err):
                raise
            _fail("the device ran out of memory; use a smaller --hidden or --batch-size "
                  "(finished cells are cached).", 2)
        sys.exit(code if isinstance(code, int) else 0)


def _plain_flags(params: list) -> list:
    """`params` with every flag (`--quiet`, `--torch/--no-torch`, `--help`) given an empty
    metavar: Typer's rich help otherwise shows a value type (`<bool>`) beside options that
    take no value."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


def _plain_flags_of(command, ctx) -> None:
    """`_plain_flags` for `command` and, for a group (`data`), its own commands."""
    _plain_flags(command.get_params(ctx))
    for sub in getattr(command, "commands", {}).values():
        _plain_flags_of(sub, ctx)


def _fail_interrupted():
    """The one line and exit code of a Ctrl-C (130) or a SIGTERM (143 = 128 + 15)."""
    if interrupts.received() == signal.SIGTERM:  # a scheduler's preemption
        _fail("terminated (SIGTERM): finished cells and the last epoch are cached; the same "
              "command resumes.", 143)
    _fail("interrupted: finished cells are cached; the same command resumes.", 130)


_failed = False  # whether `_fail` printed its line


def _fail(message: str, code: int):
    """One line on stderr (user text printed verbatim, never as markup), then exit."""
    from rich.text import Text

    global _failed
    _failed = True
    if message.strip() and not message.lstrip().startswith("Usage:"):
        stderr.print(Text.assemble(("error:", "bold red"), f" {message}"), highlight=False)
    elif message.strip():
        stderr.print(Text(message), highlight=False)
    sys.exit(code)


app = typer.Typer(cls=_Group, no_args_is_help=True, add_completion=False,
                  rich_markup_mode="rich", pretty_exceptions_enable=False,
                  help="Compare neural-network weight initializers over seeds, honestly.")

for _module in (train, catalog, report, probe, inspect, bench, aggregate, rerun,
                transfer_commands, phase):
    _module.register(app)


def run() -> int:
    """The CLI on `sys.argv`; returns the exit status instead of exiting."""
    interrupts.install()
    try:
        if sys.stdout is None:  # started with stdout closed (`>&-`): results would vanish
            _fail("standard output is closed; redirect it to a file or /dev/null instead "
                  "(e.g. > out.txt).", 2)
        app()
    except KeyboardInterrupt:  # while Typer builds the command, before any of ours runs
        try:
            _fail_interrupted()
        except SystemExit as again:
            return again.code
    except SystemExit as stop:
        if stop.code == 130 and not _failed and interrupts.received() is not None:
            # Typer turns a KeyboardInterrupt outside the command (while parsing) into a
            # silent exit 130: say what happened, as inside it.
            try:
                _fail_interrupted()
            except SystemExit as again:
                return again.code
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        print(stop.code, file=sys.stderr)
        return 1
    return 0


def finish(code: int) -> None:
    """End the process with `code`, skipping the interpreter's teardown: with JAX and
    matplotlib loaded it took 0.3-0.8 s (measured), after every result was
    already written and closed. Output is flushed first. A `--distributed` process exits
    normally, so that jax.distributed's shutdown still runs."""
    if "--distributed" in sys.argv:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # closed: nothing to show
            stream.flush()
    os._exit(code)


def main() -> None:
    """Console-script entry point."""
    finish(run())


if __name__ == "__main__":
    main()
