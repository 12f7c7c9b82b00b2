"""Answer distributions from a model's next-token log-probabilities, or from samples.

One implementation for every backend (the OpinionQA / SubPOP recipe): sum the
probability of each option label's token variants ("A", " A"), renormalise
over the options, and report the mass that fell outside them as ``invalid``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence

from .models import ModelAnswer


def label_of(token: str, labels: Iterable[str]) -> str | None:
    """The option label a token stands for: 'A', ' A', '(A' and 'A.' all mean A."""
    stripped = token.strip().strip("(").rstrip(").:")
    return stripped if stripped in set(labels) else None


def from_logprobs(logprobs: Mapping[str, float], labels: list[str], raw: str = "", tokens: int = 0) -> ModelAnswer:
    """``logprobs`` maps candidate next tokens to their log-probability."""
    mass = dict.fromkeys(labels, 0.0)
    for token, logprob in logprobs.items():
        label = label_of(token, labels)
        if label is not None:
            mass[label] += math.exp(logprob)
    total = sum(mass.values())
    invalid = min(1.0, max(0.0, 1.0 - total))
    distribution = {k: v / total for k, v in mass.items()} if total > 0 else dict.fromkeys(labels, 0.0)
    return ModelAnswer(distribution=distribution, invalid=invalid, raw=raw, tokens=tokens)


_STANDALONE_LABEL = re.compile(r"\b([A-Z])\b")


def parse_choice(text: str, labels: list[str]) -> str | None:
    """The option a free-text answer picked, or None when it is not clear.

    A leading label wins ("B. No"), unless the first line names another
    label too ("A or B"); otherwise a label must be the only one mentioned.
    """
    head = text.strip()
    if not head:
        return None
    mentioned = {m for m in _STANDALONE_LABEL.findall(head.splitlines()[0]) if m in labels}
    first = label_of(head.split()[0], labels)
    if first is not None:
        return first if mentioned <= {first} else None
    found = {m for m in _STANDALONE_LABEL.findall(head[:200]) if m in labels}
    return found.pop() if len(found) == 1 else None


def from_samples(texts: list[str], labels: list[str], tokens: int = 0) -> ModelAnswer:
    """Count k sampled answers; unparseable ones count as invalid."""
    counts = dict.fromkeys(labels, 0)
    for text in texts:
        choice = parse_choice(text, labels)
        if choice is not None:
            counts[choice] += 1
    valid = sum(counts.values())
    distribution = {k: v / valid for k, v in counts.items()} if valid else dict.fromkeys(labels, 0.0)
    invalid = 1.0 - valid / len(texts) if texts else 1.0
    return ModelAnswer(distribution=distribution, invalid=invalid, raw="\n---\n".join(texts), tokens=tokens)


def tvd(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Total variation distance between two distributions given as unnormalised weights per category."""
    total_a, total_b = sum(a.values()), sum(b.values())
    keys = set(a) | set(b)
    return 0.5 * sum(abs(a.get(k, 0.0) / total_a - b.get(k, 0.0) / total_b) for k in keys)


def correlation(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation of paired values; NaN with fewer than 3 pairs or when either side does not vary (a
    simulation that says the same everywhere has no correlation to report, not a zero)."""
    import numpy as np

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(a) < 3 or np.ptp(a) < 1e-12 or np.ptp(b) < 1e-12:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])
