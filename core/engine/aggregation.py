"""Aggregation: a run's answers summed into weighted option shares per question and stratum (``aggregates``)."""

from __future__ import annotations

import operator
from collections.abc import Iterator

from ..models import Answers, Persona, Question
from ..shares import ShareSums
from ..store import Store


def share_rows(batch: list[Persona], answers: Answers) -> Iterator[tuple[str, str, float, float, dict[str, float]]]:
    """A batch's answers as ``ShareSums.add_batch`` sums them, in the order the run log keeps them."""
    personas = {p.id: p for p in batch}
    for a in sorted(answers.records, key=operator.itemgetter(0, 1, 2)):  # persona, question id, repeat
        persona = personas[a.persona_id]
        yield a.question_id, persona.stratum, persona.weight, a.reply.invalid, a.reply.distribution


def aggregate(store: Store, run_id: str, questions: list[Question], sums: ShareSums | None = None) -> None:
    """Weighted option shares per stratum and question, plus the whole population: from ``sums`` as the run
    summed them, or read back from the log batch by batch, to the same floats."""
    if sums is None:
        labels = {q.id: q.labels for q in questions}
        sums = ShareSums()
        for batch in store.answers.share_rows(run_id):
            sums.add_batch(batch, labels)
    invalid = sums.invalid()
    rows = [
        {
            "run_id": run_id,
            "question_id": q,
            "stratum": stratum,
            "option": label,
            "share": share,
            "weight": sums.weights[(q, stratum)],
            "invalid": invalid[q][stratum],
        }
        for q, by_stratum in sums.shares().items()
        for stratum, by_label in by_stratum.items()
        for label, share in by_label.items()
    ]
    store.results.write_aggregates(run_id, rows)
