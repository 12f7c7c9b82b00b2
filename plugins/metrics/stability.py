"""``stability``: is the simulated population's answer a property of the personas, or of chance?

With ``repeats: R`` in the scenario every persona answers every question R
times (sampling backends draw with a different seed each time). For each
question, the run-to-run variance is the variance of a persona's answer
distribution across its repeats, averaged over personas; the between-persona
variance is the variance of personas' mean answers. Both sum over options.
The seed research finds run-to-run variance can rival between-persona
variance; a ratio near or above 1 means the population's differences are
mostly noise. Exact log-probability scoring has no run-to-run variance.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from simrun import CheckContext, Metric, MetricValue, Problem, StrictConfig, hookimpl


class StabilityMetric(Metric):
    """Run-to-run variance of answers (scenario repeats) against variance across personas."""

    name = "stability"

    @classmethod
    def check(cls, config: StrictConfig, context: CheckContext) -> list[Problem]:
        if context.scenario.repeats < 2:
            return [Problem("", "every answer would be asked once: set repeats: 2 or more in the scenario")]
        return []

    def compute(self, run) -> list[MetricValue]:
        answers: dict[str, dict[int, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
        for row in run.answers():
            q = run.questions[row.question_id]
            answers[q.id][row.persona_id].append(np.array([row.distribution.get(label, 0.0) for label in q.labels]))
        if not answers:
            raise ValueError("stability metric: the run has no answers")
        repeats = {len(r) for by_persona in answers.values() for r in by_persona.values()}
        if max(repeats) < 2:
            raise ValueError("stability metric: every answer was asked once; set repeats: 2 or more in the scenario")
        values: list[MetricValue] = []
        within_all, between_all = [], []
        for qid, by_persona in sorted(answers.items()):
            draws = [np.array(r) for r in by_persona.values()]  # each (repeats, options)
            within = float(np.mean([d.var(axis=0, ddof=1).sum() for d in draws if len(d) > 1]))
            between = (
                float(np.array([d.mean(axis=0) for d in draws]).var(axis=0, ddof=1).sum())
                if len(draws) > 1
                else float("nan")
            )
            within_all.append(within)
            between_all.append(between)
            values += [
                MetricValue(name="run_to_run_variance", value=within, question=qid),
                MetricValue(name="between_persona_variance", value=between, question=qid),
            ]
        within, between = float(np.mean(within_all)), float(np.nanmean(between_all))
        return [
            MetricValue(name="run_to_run_variance", value=within),
            MetricValue(name="between_persona_variance", value=between),
            MetricValue(name="ratio", value=within / between if between > 0 else float("inf")),
            *values,
        ]


@hookimpl
def register_metrics(register):
    register(StabilityMetric)
