"""Baselines: the scores a run's metrics reach with the personas taken away, so a score can be read.

``uniform`` gives every option the same probability. ``no_persona`` asks the
simulator each question with the persona left out of the prompt (the same
system template with an empty persona: one call per question and option order,
cached) and gives every persona that answer. A metric that declares
``baselines`` is scored on a view of the run in which every answer is the
baseline's, and the values are stored as metric ``NAME@BASELINE``.
"""

from __future__ import annotations

from collections.abc import Iterator

from .models import Answer, ModelAnswer, Persona, Question
from .views import RunView

BASELINES = ("uniform", "no_persona")
SEPARATOR = "@"  # metric "election@uniform": the election metric scored on the uniform baseline


def uniform(questions: dict[str, Question]) -> dict[str, ModelAnswer]:
    return {
        qid: ModelAnswer(distribution=dict.fromkeys(q.labels, 1 / len(q.labels)), invalid=0.0)
        for qid, q in questions.items()
    }


class BaselineView:
    """The run as a metric would see it had every persona given the baseline's answer to each question."""

    def __init__(self, run: RunView, answers: dict[str, ModelAnswer]):
        self.run, self.answers_by_question = run, answers
        self.questions = run.questions

    def shares(self, question_id: str) -> dict[str, dict[str, float]]:
        answer = self.answers_by_question[question_id]
        return {stratum: dict(answer.distribution) for stratum in self.run.shares(question_id)}

    def invalid(self, question_id: str) -> dict[str, float]:
        answer = self.answers_by_question[question_id]
        return dict.fromkeys(self.run.shares(question_id), answer.invalid)

    def sizes(self, question_id: str) -> dict[str, int]:
        return self.run.sizes(question_id)

    def personas(self) -> Iterator[Persona]:
        return self.run.personas()

    def answers(self) -> Iterator[Answer]:
        for row in self.run.answers():
            answer = self.answers_by_question.get(row.question_id)
            if answer is not None:
                yield row.model_copy(update={"distribution": dict(answer.distribution), "invalid": answer.invalid})


class FixedSharesView:
    """The run as a metric would see it had each stratum answered with given shares: a metric's own baseline,
    such as the election metric's earlier result as a naive forecast (``Metric.own_baselines``)."""

    def __init__(self, run: RunView, shares: dict[str, dict[str, dict[str, float]]]):
        self.run, self._shares = run, shares  # question -> stratum -> label -> share
        self.questions = run.questions

    def shares(self, question_id: str) -> dict[str, dict[str, float]]:
        return {stratum: dict(given) for stratum, given in self._shares[question_id].items()}

    def invalid(self, question_id: str) -> dict[str, float]:
        return dict.fromkeys(self._shares[question_id], 0.0)

    def sizes(self, question_id: str) -> dict[str, int]:
        return self.run.sizes(question_id)

    def personas(self) -> Iterator[Persona]:
        return self.run.personas()

    def answers(self) -> Iterator[Answer]:
        """Each persona's answer is its stratum's shares; personas of strata with none given are left out."""
        for row in self.run.answers():
            given = self._shares.get(row.question_id, {}).get(row.stratum)
            if given is not None:
                yield row.model_copy(update={"distribution": dict(given), "invalid": 0.0})


def split(metric: str) -> tuple[str, str]:
    """(metric, baseline) of a stored metric name; baseline "" for the personas' own score."""
    name, _, baseline = metric.partition(SEPARATOR)
    return name, baseline
