"""The ``shift`` of a sweep's variant: how far its answers moved from the baseline variant's. It needs no truth.

Per question and stratum, the total variation distance (TVD) between the two
variants' answer shares (0: the same answers, 1: no option in common), and on
ordinal scales the change of the mean position, in the scale's own units;
overall and per stratum, the TVD averaged over questions. For a leave-one-out sweep it answers
"which attribute moves answers most".

A TVD is never below 0, and two samples of the same answers differ by chance, so
beside each figure ``simrun compare`` gives a noise floor: the 95th percentile
of the TVD when each persona's two answers (variant, baseline) are swapped at
random, as they would be if the variant changed nothing. A shift above its
noise floor moved the answers (a one-sided permutation test at the 5% level).
"""

from __future__ import annotations

import numpy as np

from .models import ALL_STRATA, Question

Shares = dict[str, dict[str, dict[str, float]]]  # question -> stratum -> option label -> share
Figure = tuple[str, str]  # (name, stratum): ("tvd", ""), ("tvd.q1", "CA"), ("position.q1", "")


def tvd(a: dict[str, float], b: dict[str, float]) -> float:
    return 0.5 * sum(abs(a.get(label, 0.0) - b.get(label, 0.0)) for label in set(a) | set(b))


def mean_position(question: Question, shares: dict[str, float]) -> float | None:
    """The mean place on the question's ordinal scale of its options that have one; None without a scale."""
    if not question.ordinal:
        return None
    placed = [(shares.get(label, 0.0), position) for label, position in zip(question.labels, question.ordinal)]
    mass = sum(share for share, _ in placed)
    return sum(share * position for share, position in placed) / mass if mass > 0 else None


def shift(questions: dict[str, Question], variant: Shares, baseline: Shares) -> dict[Figure, float]:
    """The variant's shift from the baseline: ``tvd`` overall, ``tvd.Q`` per question (and stratum), and
    ``position.Q`` for questions on an ordinal scale."""
    out: dict[Figure, float] = {}
    per_stratum: dict[str, list[float]] = {}  # stratum ("" for the population) -> its TVD on each question
    for qid, question in questions.items():
        if qid not in variant or qid not in baseline:
            continue
        for stratum, shares in variant[qid].items():
            if stratum not in baseline[qid]:
                continue
            where = "" if stratum == ALL_STRATA else stratum
            out[(f"tvd.{qid}", where)] = tvd(shares, baseline[qid][stratum])
            per_stratum.setdefault(where, []).append(out[(f"tvd.{qid}", where)])
            moved = mean_position(question, shares)
            before = mean_position(question, baseline[qid][stratum])
            if moved is not None and before is not None:
                out[(f"position.{qid}", where)] = moved - before
    for where, values in per_stratum.items():
        out[("tvd", where)] = float(np.mean(values))
    return out


def most_moved(question: Question, variant: dict[str, float], baseline: dict[str, float], top: int = 2) -> list:
    """The options whose share moved most, as (option text, change in share), largest first."""
    changes = [
        (option, variant.get(label, 0.0) - baseline.get(label, 0.0))
        for label, option in zip(question.labels, question.options)
    ]
    return sorted(changes, key=lambda change: -abs(change[1]))[:top]


def swapped_values(flip: np.ndarray, rows: np.ndarray, mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """One side of a random swap: each answer row is ``mine`` where its persona's ``flip`` is False, else ``theirs``."""
    return np.where(flip[rows][:, None], theirs, mine)
