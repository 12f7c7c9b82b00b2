"""Answer shares: the one computation of weighted option shares and invalid mass per question and stratum.

The engine feeds it a run's answers chunk by chunk as it streams them (memory
stays flat in N); ``simrun compare`` feeds it each bootstrap resample's
weights. Either way a stratum's share of an option is the weighted mean of the
personas' probabilities for it, and ``ALL_STRATA`` holds the whole population.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from .models import ALL_STRATA


class ShareSums:
    """Weighted sums of (option probabilities, invalid mass) per question and stratum."""

    def __init__(self) -> None:
        self.labels: dict[str, list[str]] = {}
        self.sums: dict[tuple[str, str], np.ndarray] = {}
        self.weights: dict[tuple[str, str], float] = defaultdict(float)

    def add(
        self,
        question_id: str,
        labels: list[str],
        strata: list[str],
        codes: np.ndarray,
        weights: np.ndarray,
        values: np.ndarray,
    ) -> None:
        """Answers to one question: each row's stratum (``strata[codes[i]]``), weight, and probabilities over
        ``labels`` followed by its invalid mass. Labels are matched by name across calls, in any order."""
        known = self.labels.setdefault(question_id, [])
        known += [label for label in labels if label not in known]
        spread = np.zeros((len(values), len(known) + 1))  # this call's columns placed at the question's labels
        spread[:, [known.index(label) for label in labels]] = values[:, :-1]
        spread[:, -1] = values[:, -1]
        weighted = spread * weights[:, None]
        per_stratum = np.column_stack(
            [np.bincount(codes, weights=weighted[:, k], minlength=len(strata)) for k in range(weighted.shape[1])]
        )
        totals = np.bincount(codes, weights=weights, minlength=len(strata))
        for name, sums, total in zip(strata, per_stratum, totals):
            if name != ALL_STRATA:  # a stratum so named is the whole population, added once below
                self.accumulate((question_id, name), sums, float(total))
        self.accumulate((question_id, ALL_STRATA), weighted.sum(0), float(weights.sum()))

    def add_batch(self, answers: Iterable[tuple[str, str, float, float, dict[str, float]]], labels: dict) -> None:
        """One batch's answers, each (question id, stratum, weight, invalid mass, distribution), in the order the run
        log keeps them (persona, question id, repeat); ``labels`` maps question ids to their options. The batch is
        summed first, then added: a run summed batch by batch in order, from memory or from the log, comes to the
        same floats however its batches were split between the processes that ran them."""
        partial: dict[tuple[str, str], list[float]] = {}  # (question, stratum) -> weight, per option, invalid
        for question_id, stratum, weight, invalid, distribution in answers:
            if (sums := partial.get((question_id, stratum))) is None:
                sums = partial[(question_id, stratum)] = [0.0] * (len(labels[question_id]) + 2)
            sums[0] += weight
            for i, label in enumerate(labels[question_id], 1):
                sums[i] += weight * distribution.get(label, 0.0)
            sums[-1] += weight * invalid
        for (question_id, stratum), sums in partial.items():
            self.add_sums(question_id, labels[question_id], stratum, sums[0], np.array(sums[1:]))

    def add_sums(self, question_id: str, labels: list[str], stratum: str, weight: float, sums: np.ndarray) -> None:
        """A stratum's answers to one question already summed: the weighted probability of
        each of ``labels`` followed by the weighted invalid mass, and the weight behind them."""
        self.labels.setdefault(question_id, list(labels))
        if stratum != ALL_STRATA:  # a stratum so named is the whole population, added for every stratum below
            self.accumulate((question_id, stratum), sums, weight)
        self.accumulate((question_id, ALL_STRATA), sums, weight)

    def accumulate(self, key: tuple[str, str], sums: np.ndarray, total: float) -> None:
        """Add to a (question, stratum)'s sums, widening earlier ones when a later call brought a new label."""
        before = self.sums.get(key)
        if before is not None and len(before) < len(sums):
            before = np.concatenate([before[:-1], np.zeros(len(sums) - len(before)), before[-1:]])
        self.sums[key] = sums if before is None else before + sums
        self.weights[key] += total

    def shares(self) -> dict[str, dict[str, dict[str, float]]]:
        """question -> stratum -> option -> share; strata with no weight are left out."""
        out: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
        for (qid, stratum), total in self.sums.items():
            if self.weights[(qid, stratum)] > 0:
                out[qid][stratum] = dict(zip(self.labels[qid], (total[:-1] / self.weights[(qid, stratum)]).tolist()))
        return dict(out)

    def invalid(self) -> dict[str, dict[str, float]]:
        """question -> stratum -> the weighted share of answer mass outside the options."""
        out: dict[str, dict[str, float]] = defaultdict(dict)
        for (qid, stratum), total in self.sums.items():
            if self.weights[(qid, stratum)] > 0:
                out[qid][stratum] = float(total[-1] / self.weights[(qid, stratum)])
        return dict(out)
