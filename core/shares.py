"""Answer shares: the one computation of weighted option shares and invalid mass per question and stratum.

The engine feeds it a run's answers chunk by chunk as it streams them (memory
stays flat in N); ``simrun compare`` feeds it each bootstrap resample's
weights. Either way a stratum's share of an option is the weighted mean of the
personas' probabilities for it, and ``ALL_STRATA`` holds the whole population.
"""

from __future__ import annotations

from collections import defaultdict

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
        ``labels`` followed by its invalid mass."""
        self.labels.setdefault(question_id, labels)
        weighted = values * weights[:, None]
        per_stratum = np.column_stack(
            [np.bincount(codes, weights=weighted[:, k], minlength=len(strata)) for k in range(values.shape[1])]
        )
        totals = np.bincount(codes, weights=weights, minlength=len(strata))
        for name, row_sums, total in [*zip(strata, per_stratum, totals), (ALL_STRATA, weighted.sum(0), weights.sum())]:
            key = (question_id, name)
            self.sums[key] = self.sums.get(key, 0.0) + row_sums
            self.weights[key] += float(total)

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
