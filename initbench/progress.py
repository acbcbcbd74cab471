"""Where progress goes: the `Reporter` protocol, a silent one, and the terminal's.

`RichReporter` shows a spinner naming the phase that runs now (loading data, compiling,
drawing starting parameters, writing, ...) and a bar over model-epochs while training."""

from __future__ import annotations

from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Reporter(Protocol):
    """Where progress goes (a rich progress bar in the CLI, nothing in tests)."""

    def notice(self, text: str) -> None: ...
    def phase(self, text: str) -> None: ...  # what runs now, until the next phase or step
    def start(self, total: int, description: str) -> None: ...
    def advance(self, amount: int) -> None: ...
    def stop(self) -> None: ...


class SilentReporter:
    """A Reporter that reports nothing."""

    def notice(self, text: str) -> None:
        pass

    def phase(self, text: str) -> None:
        pass

    def start(self, total: int, description: str) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def stop(self) -> None:
        pass



class RichReporter:
    """Progress and notices on `console` (stderr in the CLI); silent when `show` is False.

    The bar appears at the first finished epoch, not at `start`: started earlier, it sat at
    0 with no ETA through compilation and then jumped. Until then the current phase shows."""

    def __init__(self, console: Console, show: bool = True):
        self.console, self.show = console, show
        self._progress: Progress | None = None
        self._task = None
        self._phase: Progress | None = None
        self._pending: tuple[int, str] | None = None

    def notice(self, text: str) -> None:
        if self.show:
            from rich.markup import escape

            self.console.print(f"[yellow]note:[/] {escape(text)}", highlight=False)

    def phase(self, text: str) -> None:
        """Show `text` with a spinner and its elapsed time until the next phase, the first
        training step or `stop` (not while the bar runs: it moves by itself)."""
        if not self.show or self._progress is not None:
            return
        self._end_phase()
        if not self.console.is_terminal:
            # A log file or a pipe: a live spinner there leaves only a blank line (drawn in
            # place, erased when the phase ends), and a plain line per phase would break
            # "a mistake is one error line" for scripts; so nothing, as on a terminal at the end.
            return
        self._phase = Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False),
                               TimeElapsedColumn(), console=self.console, transient=True)
        self._phase.start()
        self._phase.add_task(text, total=None)

    def start(self, total: int, description: str) -> None:
        if self.show:
            self._pending = (total, description)

    def advance(self, amount: int) -> None:
        if self._progress is None and self._pending is not None:
            self._end_phase()
            total, description = self._pending
            self._progress = Progress(
                TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                TextColumn("model-epochs"), TimeElapsedColumn(), TextColumn("ETA"),
                TimeRemainingColumn(), console=self.console, transient=False,
            )
            self._task = self._progress.add_task(description, total=total)
            self._progress.advance(self._task, amount)
            self._progress.start()  # after the first step: its first frame is not 0/total
            return
        if self._progress is not None:
            self._progress.advance(self._task, amount)

    def stop(self) -> None:
        self._end_phase()
        self._pending = None
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _end_phase(self) -> None:
        if self._phase is not None:
            self._phase.stop()
            self._phase = None
