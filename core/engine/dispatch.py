"""Streaming dispatch: the next batches' prompts go to the executor while earlier ones are still answered, so a
replica never waits at a batch boundary, and batches still commit whole and in order, as a resume expects.

The engine hands a streaming executor one lazy sequence of chunks for the whole run. A ``None`` in it means the
window of batches in memory is full: the executor yields a reply (the oldest batch may then commit) before it
asks for another chunk.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

from ..models import Answers, ModelAnswer, Persona, Prompt
from .asking import Asking

WINDOW_PERSONAS = 4096  # personas of uncommitted batches a run holds at most (two batches, if they are larger)


class Window:
    """The batches sent and not yet committed, oldest first; ``commit`` gets each, complete, in order."""

    def __init__(self, batch_size: int, commit: Callable[[int, list[Persona], Answers], None]):
        self.limit = max(2, WINDOW_PERSONAS // batch_size)
        self.batches: deque[tuple[int, Asking]] = deque()
        self.sent: dict[int, tuple[Asking, int]] = {}  # the executor's chunk index -> (its batch, its chunk)
        self.chunks = 0  # chunks handed to the executor so far
        self.commit = commit

    @property
    def full(self) -> bool:
        return len(self.batches) >= self.limit

    def add(self, index: int, asking: Asking) -> Iterator[list[Prompt]]:
        """Take a batch in; yield its chunks for the executor (none when the cache had every answer)."""
        self.batches.append((index, asking))
        for chunk in range(asking.waiting):
            self.sent[self.chunks] = (asking, chunk)
            self.chunks += 1
            yield asking.requests(chunk)
        self.flush()

    def take(self, chunk: int, replies: list[ModelAnswer]) -> None:
        asking, within = self.sent.pop(chunk)
        asking.take(within, replies)
        self.flush()

    def flush(self) -> None:
        """Commit the oldest batches that have every answer."""
        while self.batches and self.batches[0][1].complete:
            index, asking = self.batches.popleft()
            self.commit(index, asking.batch, asking.answers())
