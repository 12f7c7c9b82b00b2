"""``wasserstein``: alignment with a real answer distribution, for any question that has one.

A question carries ``truth`` (shares or counts per option, e.g. from a
survey). Alignment is 1 - W(simulated, real) / (max - min) on the question's
ordinal scale, or on the options' positions when it has none; total variation
distance is reported beside it, which needs no order. Options past the end of
an ordinal scale are left out of W.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from simrun import ALL_STRATA, CheckContext, Metric, MetricValue, Problem, StrictConfig, hookimpl


class WassersteinMetric(Metric):
    """1 - normalised Wasserstein distance (and TVD) to each question's real answer distribution."""

    name = "wasserstein"
    baselines = True  # also scored on uniform answers and on the model with no persona
    resamplable = True  # reads answer shares only: bootstrap intervals in compare

    class Config(StrictConfig):
        questions: list[str] | None = Field(
            None, description="Only these question ids; default: every question with truth."
        )

    @classmethod
    def check(cls, config: Config, context: CheckContext) -> list[Problem]:
        if config.questions is None:
            if any(q.truth is not None for q in context.scenario.questions):
                return []
            return [Problem("", "no question has truth: give one a truth distribution, or drop this metric")]
        problems = []
        for i, qid in enumerate(config.questions):
            question = context.question(qid)
            if question is None or question.truth is None:
                problems.append(
                    Problem(
                        f"questions.{i}",
                        f"no question '{qid}' in the scenario"
                        if question is None
                        else f"question '{qid}' has no truth to compare with",
                    )
                )
        return problems

    def compute(self, run) -> list[MetricValue]:
        from scipy.stats import wasserstein_distance

        wanted = self.config.questions
        unknown = [q for q in wanted or [] if q not in run.questions]
        if unknown:
            raise ValueError(f"wasserstein metric: no question(s) {unknown} in this run")
        values: list[MetricValue] = []
        alignments, distances = [], []
        for qid, q in run.questions.items():
            if q.truth is None or (wanted is not None and qid not in wanted):
                continue
            shares = run.shares(qid)[ALL_STRATA]
            model = np.array([shares.get(label, 0.0) for label in q.labels])
            truth = np.array(q.truth, dtype=float)
            model, truth = model / model.sum(), truth / truth.sum()
            scale = np.array(q.ordinal if q.ordinal is not None else range(len(q.options)), dtype=float)
            k = len(scale)
            w = wasserstein_distance(scale, scale, model[:k] / model[:k].sum(), truth[:k] / truth[:k].sum())
            alignment = 1 - w / (scale.max() - scale.min())
            tvd = 0.5 * float(np.abs(model - truth).sum())
            alignments.append(alignment)
            distances.append(tvd)
            values += [
                MetricValue(name="alignment", value=float(alignment), question=qid),
                MetricValue(name="tvd", value=tvd, question=qid),
            ]
        if not alignments:
            raise ValueError(
                "wasserstein metric: no question has a truth distribution (add truth: [...] to a question)"
            )
        return [
            MetricValue(name="alignment", value=float(np.mean(alignments))),
            MetricValue(name="tvd", value=float(np.mean(distances))),
            *values,
        ]


@hookimpl
def register_metrics(register):
    register(WassersteinMetric)
