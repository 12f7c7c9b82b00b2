"""``local``: the simulator's calls run in this process, one chunk after another (the default executor)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal

from simrun import Executor, hookimpl


class LocalExecutor(Executor):
    """Runs every call in the engine's own process, in order: what a run on one machine needs."""

    name = "local"
    streams = True

    def map(
        self, method: Literal["answer", "generate"], chunks: Iterable[list[Any] | None], options: dict[str, Any]
    ) -> Iterator[tuple[int, list[Any]]]:
        call = getattr(self.simulator, method)
        index = 0
        for chunk in chunks:
            if chunk is None:  # each reply is yielded before the next chunk is asked for: nothing can be pending
                raise RuntimeError("the engine has no chunk ready and none is in flight")
            yield index, call(chunk, **options)
            index += 1


@hookimpl
def register_executors(register):
    register(LocalExecutor)
