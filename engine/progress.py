"""A progress display for runs: items scored, waves sent, and running accuracy (rich, to stderr)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class WaveProgress:
    """`with WaveProgress(total) as bar:` then `bar.wave_done(...)`, `bar.item_done(correct)`, `bar.say(text)`."""

    def __init__(self, total: int, enabled: bool = True):
        self.console = Console(stderr=True, quiet=not enabled)
        self.enabled = enabled and sys.stderr is not None
        self.total, self.done, self.correct = total, 0, 0
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=self.console,
            disable=not self.enabled, transient=False,
        )
        self.task = None
        self.last_wave = ""

    def __enter__(self):
        self.progress.start()
        self.task = self.progress.add_task("items", total=self.total, status="starting")
        return self

    def __exit__(self, *exc):
        self.progress.stop()
        return False

    def say(self, message: str) -> None:
        self.progress.console.print(f"[dim]{message}[/dim]")

    def wave_done(self, number: int, requests: int, seconds: float) -> None:
        self.last_wave = f"wave {number}: {requests} requests in {seconds:.1f}s"
        self.progress.update(self.task, status=self._status())
        if self.enabled and not self.console.is_terminal:  # logs get one plain line per wave instead of a bar
            self.console.print(f"{self.last_wave}; {self.done}/{self.total} items done")

    def item_done(self, correct: bool) -> None:
        self.done += 1
        self.correct += bool(correct)
        self.progress.update(self.task, advance=1, status=self._status())

    def _status(self) -> str:
        accuracy = f"acc {self.correct / self.done:.1%}" if self.done else ""
        return "  ".join(part for part in (self.last_wave, accuracy) if part)
