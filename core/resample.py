"""One run's answers as arrays, and the bootstrap draws ``simrun compare`` reweights them with.

Personas are resampled with replacement within their stratum. A variant run
under several seeds (replicates) is resampled in two stages: K seeds drawn with
replacement from its K, then, for each seed drawn, its personas within strata,
drawn anew for every copy; a figure is the mean over the copies, so its
interval includes what changes from seed to seed. Variants with the same
sampled people share the draws (a paired bootstrap).
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from .models import ALL_STRATA
from .shares import ShareSums
from .shift import Shares

Draw = list[tuple[int, np.ndarray]]  # one bootstrap resample: each seed copy drawn, as (replicate, persona counts)


class Answers:
    """One run's answers as arrays, for fast reweighting. A failed answer (an error, all its mass invalid) is left
    out: it says nothing about the variant, and would shrink every share."""

    def __init__(self, store, run_id: str):
        personas: list[tuple[str, int]] = []  # (stratum, persona id), in the log's order
        index: dict[int, int] = {}
        weights: list[float] = []
        by_question: dict[str, tuple[list[int], list[dict[str, float]], list[float]]] = defaultdict(
            lambda: ([], [], [])
        )
        self.failed = 0
        for row in store.answers.rows(run_id):
            pid = row["persona_id"]
            if pid not in index:
                index[pid] = len(personas)
                personas.append((row["stratum"], pid))
                weights.append(row["weight"])
            if row["error"] is not None:
                self.failed += 1
                continue
            rows, dists, invalid = by_question[row["question_id"]]
            rows.append(index[pid])
            dists.append(row["distribution"])
            invalid.append(row["invalid"])
        self.personas = personas
        self.weights = np.array(weights)
        self.strata = sorted({s for s, _ in personas})
        self.stratum_index = np.array([self.strata.index(s) for s, _ in personas], dtype=int)
        self.members = [np.flatnonzero(self.stratum_index == s) for s in range(len(self.strata))]
        self.questions: dict[str, tuple[np.ndarray, list[str], np.ndarray]] = {}
        self.sizes: dict[str, dict[str, int]] = {}
        for qid, (rows, dists, invalid) in by_question.items():
            members = {personas[r] for r in rows}
            counts = Counter(stratum for stratum, _ in members)
            self.sizes[qid] = {**counts, ALL_STRATA: len(members)}
            labels = sorted({label for d in dists for label in d})
            probs = np.array([[d.get(label, 0.0) for label in labels] for d in dists])
            self.questions[qid] = (np.array(rows), labels, np.column_stack([probs, invalid]))

    def per_stratum(self) -> dict[str, int]:
        return {stratum: len(members) for stratum, members in zip(self.strata, self.members)}

    def resample(self, rng: np.random.Generator) -> np.ndarray:
        """How often each persona is drawn in one resample within strata."""
        counts = np.zeros(len(self.personas))
        for members in self.members:
            counts[members] = rng.multinomial(len(members), np.full(len(members), 1 / len(members)))
        return counts

    def shares(self, counts: np.ndarray, values: dict[str, np.ndarray] | None = None) -> tuple[Shares, dict]:
        """Option shares and invalid mass per question and stratum, personas weighted by ``counts``; ``values``
        replaces a question's answer rows (a random swap with another variant's)."""
        sums = ShareSums()
        w = counts * self.weights
        for qid, (rows, labels, stored) in self.questions.items():
            chosen = stored if values is None else values[qid]
            sums.add(qid, labels, self.strata, self.stratum_index[rows], w[rows], chosen)
        return sums.shares(), sums.invalid()

    def aligned(self, other: Answers) -> bool:
        """The same personas answering the same questions in the same rows: answers can be swapped persona by
        persona."""
        return self.personas == other.personas and all(
            qid in other.questions
            and np.array_equal(rows, other.questions[qid][0])
            and labels == other.questions[qid][1]
            for qid, (rows, labels, _) in self.questions.items()
        )

    def swapped(self, other: Answers, flip: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Both sides of a random swap with an ``aligned`` run: each persona whose ``flip`` is set trades answers."""
        mine, theirs = {}, {}
        for qid, (rows, _, values) in self.questions.items():
            other_values, swap = other.questions[qid][2], flip[rows][:, None]
            mine[qid] = np.where(swap, other_values, values)
            theirs[qid] = np.where(swap, values, other_values)
        return mine, theirs


def draws(rng: np.random.Generator, replicates: list[Answers], reps: int) -> list[Draw]:
    """``reps`` bootstrap resamples of a variant's replicates: the seeds first (when there are several), then the
    personas of each seed copy within strata."""
    k = len(replicates)
    out = []
    for _ in range(reps):
        picks = rng.integers(k, size=k).tolist() if k > 1 else [0]
        out.append([(pick, replicates[pick].resample(rng)) for pick in picks])
    return out
