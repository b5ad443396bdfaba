"""A progress bar of environment steps, with steps/s and the recent episode return.

Shown only on an interactive terminal, and only by the main process (workers of a parallel
runner would draw over each other); elsewhere it does nothing and the log lines of each
learning-curve point remain the record. When Kedro's rich log handler is installed, the bar
shares its console so log lines scroll above it.
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
import time
from types import TracebackType

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

_REFRESH_STEPS = 500
"""Env steps between updates of the bar: cheap next to the step itself."""


def _interactive() -> bool:
    return sys.stderr.isatty() and multiprocessing.current_process().name == "MainProcess"


def _console() -> Console:
    for handler in logging.getLogger().handlers:
        if isinstance(handler, RichHandler):
            return handler.console
    return Console(stderr=True)


class StepProgress:
    """``with StepProgress("pretrain", total) as bar: bar.update(step, recent_return)``."""

    def __init__(self, label: str, total: int, start: int = 0,
                 console: Console | None = None) -> None:
        self._enabled = console is not None or _interactive()
        self._total, self._step, self._last_shown = total, start, start
        self._started = time.perf_counter()
        if self._enabled:
            self._progress = Progress(
                TextColumn(label), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>6.0f} steps/s"),
                TextColumn("return {task.fields[recent]}"), TimeRemainingColumn(),
                console=console or _console(), transient=True)
            self._task = self._progress.add_task(label, total=total, completed=start,
                                                 rate=0.0, recent="–")

    def __enter__(self) -> StepProgress:
        if self._enabled:
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._enabled:
            self._progress.stop()

    def update(self, step: int, recent_return: float | None = None) -> None:
        """Record that ``step`` env steps are done; redraws every few hundred steps."""
        if not self._enabled or (step - self._last_shown < _REFRESH_STEPS
                                 and step < self._total):
            return
        rate = (step - self._step) / max(time.perf_counter() - self._started, 1e-9)
        fields = {"rate": rate}
        if recent_return is not None:
            fields["recent"] = f"{recent_return:.1f}"
        self._progress.update(self._task, completed=step, **fields)
        self._last_shown = step
