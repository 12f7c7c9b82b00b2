"""The progress bar: an observer on the lifecycle hooks, registered while a command runs, as any plugin could be.

The engine draws nothing itself; it announces runs and batches through the
hooks, and this observer counts personas done (resumed batches included)
against the run's total, or a sweep's, with answers per second and, on an
executor with replicas, how many are alive.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from . import hookimpl
from .models import Answer, Persona, RunInfo
from .registry import Registry


def progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )


class ProgressObserver:
    """Personas done out of a total: the run's own (``RunInfo.total``) unless a sweep fixed one for all its runs."""

    def __init__(self, bar: Progress, description: str):
        self.bar = bar
        self.task = bar.add_task(description, total=None, status="")
        self.fixed_total = False
        self.answers, self.started = 0, time.monotonic()
        self.replicas = ""

    def set_total(self, total: int) -> None:
        """One total for several runs (a sweep's variants)."""
        self.bar.update(self.task, total=total)
        self.fixed_total = True

    def advance(self, personas: int) -> None:
        self.bar.advance(self.task, personas)

    @hookimpl
    def run_started(self, run: RunInfo) -> None:
        if not self.fixed_total:
            self.bar.update(self.task, total=run.total)

    def show_status(self) -> None:
        elapsed = time.monotonic() - self.started
        rate = f"{self.answers / elapsed:,.0f} answers/s" if self.answers and elapsed > 0 else ""
        self.bar.update(self.task, status="  ".join(part for part in (rate, self.replicas) if part))

    @hookimpl
    def batch_done(self, run: RunInfo, personas: list[Persona], answers: Sequence[Answer]) -> None:
        self.answers += len(answers)
        self.advance(len(personas))
        self.show_status()

    @hookimpl
    def replicas_changed(self, run: RunInfo, alive: int, started: int) -> None:
        self.replicas = f"{alive}/{started} replicas alive"
        self.show_status()

    @hookimpl
    def batch_resumed(self, run: RunInfo, personas: list[Persona]) -> None:
        self.advance(len(personas))


@contextmanager
def watching(registry: Registry, enabled: bool, description: str) -> Iterator[ProgressObserver]:
    """A progress bar on stderr (drawn only when ``enabled``) for as long as the block runs."""
    with progress_bar(enabled) as bar:
        observer = ProgressObserver(bar, description)
        registry.manager.register(observer)
        try:
            yield observer
        finally:
            registry.manager.unregister(observer)
