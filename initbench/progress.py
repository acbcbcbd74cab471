"""A rich progress bar over model-epochs, implementing experiment.Reporter."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class RichReporter:
    """Progress and notices on `console` (stderr in the CLI); silent when `show` is False."""

    def __init__(self, console: Console, show: bool = True):
        self.console, self.show = console, show
        self._progress: Progress | None = None
        self._task = None

    def notice(self, text: str) -> None:
        if self.show:
            from rich.markup import escape

            self.console.print(f"[yellow]note:[/] {escape(text)}", highlight=False)

    def start(self, total: int, description: str) -> None:
        if not self.show:
            return
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("model-epochs"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=self.console, transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total)

    def advance(self, amount: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, amount)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
