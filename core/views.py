"""What a metric's ``compute(run)`` reads: the run log's view of one run, or a bootstrap resample of its shares.

Both offer ``questions``, ``shares(question_id)`` and ``invalid(question_id)``;
``RunView`` also ``personas()`` and ``answers()``. A metric that reads only the
first three is ``resamplable``: ``simrun compare`` recomputes it on resamples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .coverage import Cell
from .models import Answer, Persona, Question
from .store import Store

# builds a sampler from a {use, with} spec; None: the run's own sampler
SamplerFactory = Callable[[dict[str, Any] | None], Any]


class RunView:
    """A read-only view of one run, handed to metrics."""

    def __init__(self, store: Store, run_id: str, questions: list[Question], samplers: SamplerFactory | None = None):
        self.store = store
        self.run_id = run_id
        self.questions = {q.id: q for q in questions}
        self._samplers = samplers

    def shares(self, question_id: str) -> dict[str, dict[str, float]]:
        return self.store.results.aggregates(self.run_id, question_id)

    def invalid(self, question_id: str) -> dict[str, float]:
        return self.store.results.invalid(self.run_id, question_id)

    def sizes(self, question_id: str) -> dict[str, int]:
        return self.store.answers.sizes(self.run_id, question_id)

    def personas(self) -> Iterator[Persona]:
        return self.store.personas.rows(self.run_id)

    def answers(self) -> Iterator[Answer]:
        """The run's answers by persona, question and repeat, each with its persona's stratum and weight."""
        for row in self.store.answers.rows(self.run_id):
            yield Answer.model_construct(  # read back from the log simrun wrote: already valid
                distribution=row["distribution"],
                invalid=row["invalid"],
                raw=row["raw"] or "",
                tokens=row["tokens"] or 0,
                latency_ms=row["latency_ms"] or 0.0,
                error=row["error"],
                persona_id=row["persona_id"],
                question_id=row["question_id"],
                repeat=row["repeat"],
                prompt="",
                model=row["model"] or "",
                cache_key=row["cache_key"],
                cached=bool(row["cached"]),
                stratum=row["stratum"],
                weight=row["weight"],
            )

    def population_cells(
        self, dimensions: tuple[str, ...], reference: dict[str, Any] | None = None
    ) -> dict[str, dict[Cell, float]] | None:
        """People per joint cell of ``dimensions`` in each stratum of the population the run's sampler draws from,
        or ``reference``'s (a sampler as ``{use: census, with: {...}}``); None when that sampler cannot tell."""
        if self._samplers is None:
            return None
        return self._samplers(reference).population_cells(dimensions)


class SharesView:
    """What a metric sees of one bootstrap resample: the questions and the answer shares."""

    def __init__(
        self,
        questions: dict,
        shares: dict[str, dict[str, dict[str, float]]],
        invalid: dict[str, dict[str, float]],
        sizes: dict[str, dict[str, int]],
    ):
        self.questions, self._shares, self._invalid, self._sizes = questions, shares, invalid, sizes

    def shares(self, question_id: str) -> dict[str, dict[str, float]]:
        return self._shares[question_id]

    def invalid(self, question_id: str) -> dict[str, float]:
        return self._invalid[question_id]

    def sizes(self, question_id: str) -> dict[str, int]:
        return self._sizes[question_id]
