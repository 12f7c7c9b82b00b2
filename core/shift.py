"""The ``shift`` of a sweep's variant: how far its answers moved from the baseline variant's. It needs no truth.

Per question and stratum, the total variation distance (TVD) between the two
variants' answer shares (0: the same answers, 1: no option in common), each
option's change of share, and on ordinal scales the change of the mean
position, in the scale's own units; overall and per stratum, the TVD averaged
over questions. For a leave-one-out sweep it answers "which attribute moves
answers most". Only questions asked with the same options in both variants are
compared.

A TVD is never below 0, and two samples of the same answers differ by chance, so
beside each figure ``simrun compare`` gives a noise floor: the 95th percentile
of the TVD when each persona's two answers (variant, baseline) are swapped at
random, as they would be if the variant changed nothing. A shift above its
noise floor moved the answers (a one-sided permutation test at the 5% level).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .models import ALL_STRATA, Question

Shares = dict[str, dict[str, dict[str, float]]]  # question -> stratum -> option label -> share
Figure = tuple[str, str]  # (name, stratum): ("tvd", ""), ("tvd.q1", "CA"), ("position.q1", ""), ("change.q1.A", "")


def distance(p: Sequence[float], q: Sequence[float]) -> float:
    """Total variation distance between two distributions over the same options."""
    return 0.5 * sum(abs(a - b) for a, b in zip(p, q))


def tvd(a: dict[str, float], b: dict[str, float]) -> float:
    labels = sorted(set(a) | set(b))
    return distance([a.get(label, 0.0) for label in labels], [b.get(label, 0.0) for label in labels])


def mean_position(question: Question, shares: dict[str, float]) -> float | None:
    """The mean place on the question's ordinal scale of its options that have one; None without a scale."""
    if not question.ordinal:
        return None
    placed = [(shares.get(label, 0.0), position) for label, position in zip(question.labels, question.ordinal)]
    mass = sum(share for share, _ in placed)
    return sum(share * position for share, position in placed) / mass if mass > 0 else None


def comparable(variant: dict[str, Question], baseline: dict[str, Question]) -> dict[str, Question]:
    """The questions both variants asked with the same options (and scale): their answers can be compared."""
    return {
        qid: q
        for qid, q in variant.items()
        if qid in baseline and q.options == baseline[qid].options and q.ordinal == baseline[qid].ordinal
    }


def shift(questions: dict[str, Question], variant: Shares, baseline: Shares) -> dict[Figure, float]:
    """The variant's shift from the baseline over ``questions`` (see ``comparable``): ``tvd`` overall and per
    stratum, ``tvd.Q`` per question, ``position.Q`` on ordinal scales, ``change.Q.LABEL`` per option."""
    out: dict[Figure, float] = {}
    per_stratum: dict[str, list[float]] = {}  # stratum ("" for the population) -> its TVD on each question
    for qid, question in questions.items():
        if qid not in variant or qid not in baseline:
            continue
        for stratum, shares in variant[qid].items():
            if stratum not in baseline[qid]:
                continue
            before = baseline[qid][stratum]
            where = "" if stratum == ALL_STRATA else stratum
            out[(f"tvd.{qid}", where)] = tvd(shares, before)
            per_stratum.setdefault(where, []).append(out[(f"tvd.{qid}", where)])
            moved, was = mean_position(question, shares), mean_position(question, before)
            if moved is not None and was is not None:
                out[(f"position.{qid}", where)] = moved - was
            if not where:
                for label in question.labels:
                    out[(f"change.{qid}.{label}", "")] = shares.get(label, 0.0) - before.get(label, 0.0)
    for where, values in per_stratum.items():
        out[("tvd", where)] = float(np.mean(values))
    return out


def mean_figures(figures: list[dict[Figure, float]]) -> dict[Figure, float]:
    """Each figure's mean over several (one per seed); a figure some lack is left out."""
    common = set.intersection(*(set(f) for f in figures)) if figures else set()
    return {name: float(np.mean([f[name] for f in figures])) for name in common}
