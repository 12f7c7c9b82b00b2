"""``local``: the simulator's calls run in this process, one chunk after another (the default executor)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from simrun import Executor, hookimpl


class LocalExecutor(Executor):
    """Runs every call in the engine's own process, in order: what a run on one machine needs."""

    name = "local"

    def map(
        self, method: Literal["answer", "generate"], chunks: list[list[Any]], options: dict[str, Any]
    ) -> Iterator[tuple[int, list[Any]]]:
        call = getattr(self.simulator, method)
        for index, chunk in enumerate(chunks):
            yield index, call(chunk, **options)


@hookimpl
def register_executors(register):
    register(LocalExecutor)
