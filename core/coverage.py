"""Coverage: which of the population's trait combinations a persona set reaches, and drawing the rare ones on purpose.

Matching marginals does not stop a persona set from collapsing onto a dense,
generic centre. Cells are the joint categories of a few census control
dimensions (sex x age band, race/ethnicity, education: 200 cells); a sampler
that knows its population's people per cell (``Sampler.population_cells``) lets
the ``coverage`` metric say how much of it a run reaches, and ``design:
coverage`` draws rare cells more often with the design weight that undoes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np

from .census import control_category

Cell = tuple[str | None, ...]
Design = Literal["proportional", "coverage"]
COVERAGE_DIMENSIONS: tuple[str, ...] = ("sex_age", "race_ethnicity", "education_18plus")


def cell_of(attributes: Mapping, dimensions: tuple[str, ...] = COVERAGE_DIMENSIONS) -> Cell:
    """A persona's joint cell: its category in each dimension (None where it lacks the attributes or they are not
    census-coded, such as an age of '60 to 64 years')."""
    attributes = dict(attributes)
    return tuple(_category(d, attributes) for d in dimensions)


def _category(dimension: str, attributes: dict) -> str | None:
    try:
        return control_category(dimension, attributes)
    except (TypeError, ValueError, StopIteration):  # StopIteration: an age no band holds (under 18)
        return None


def draw_by_design(
    weights: np.ndarray, cells: np.ndarray, n: int, rng: np.random.Generator, design: Design, floor: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` rows of a weighted population: the rows picked, and the share of the population each stands for.

    ``proportional`` draws rows in proportion to their weights; each stands for 1/n. ``coverage`` gives every
    cell (``cells``: each row's cell code) that has people ``floor`` draws (fewer if n is too small for them all)
    and spreads the rest
    over the cells in proportion to the square root of their people, so rare cells are reached; within a cell
    rows are drawn by weight. A persona in cell c stands for pi_c / E[draws in c]: weighted sums estimate the
    population's without bias, whatever the allocation (Hansen-Hurwitz).
    """
    p = weights / weights.sum()
    if design == "proportional":
        return rng.choice(len(weights), size=n, replace=True, p=p), np.full(n, 1.0 / n)
    codes, cell = np.unique(cells, return_inverse=True)
    pi = np.bincount(cell, weights=p, minlength=len(codes))
    alive = pi > 0
    floor = min(floor, n // max(int(alive.sum()), 1))  # the largest floor n allows, never all or nothing
    fixed = np.where(alive, floor, 0)
    rest = n - int(fixed.sum())
    q = np.sqrt(pi) / np.sqrt(pi).sum()
    counts = fixed + rng.multinomial(rest, q)
    expected = fixed + rest * q
    picks = np.empty(n, dtype=np.intp)
    share = np.empty(n)
    start = 0
    for c in np.flatnonzero(counts):
        rows = np.flatnonzero(cell == c)
        k = int(counts[c])
        picks[start : start + k] = rng.choice(rows, size=k, replace=True, p=p[rows] / pi[c])
        share[start : start + k] = pi[c] / expected[c]
        start += k
    order = rng.permutation(n)  # personas of one cell are not left next to each other in the batches
    return picks[order], share[order]


def kish_effective_size(weights: np.ndarray) -> float:
    """Kish's effective sample size, (sum w)^2 / sum w^2: the n an unweighted sample of equal precision needs."""
    weights = np.asarray(weights, dtype=float)
    return float(weights.sum() ** 2 / (weights**2).sum()) if len(weights) else 0.0


def entropy(counts: np.ndarray) -> float:
    """Shannon entropy (nats) of a distribution given as counts or weights."""
    p = np.asarray(counts, dtype=float)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log(p)).sum())


def coverage_of(
    population: Mapping[Cell, float], personas: Mapping[Cell, float], tail: float = 0.05
) -> dict[str, float]:
    """How much of a population (people per cell) a persona set (personas per cell) reaches.

    ``cells_reached``: share of the population's cells with at least one persona. ``population_reached``: share
    of the people who live in a reached cell. ``tail_reached``: the same among the people of the rarest cells that
    together hold ``tail`` of the population. ``effective_profiles``: exp of the entropy of the personas' cells
    (``population_profiles``, the population's own). ``outside``: share of personas in cells with no people.
    """
    living = {c: n for c, n in population.items() if n > 0}
    total = sum(living.values())
    reached = {c for c, n in personas.items() if n > 0 and c in living}
    # the tail: exactly `tail` of the people, from the rarest cell up; the cell that crosses the line counts in part
    tail_people = tail * total
    held = tail_reached = 0.0
    for c, n in sorted(living.items(), key=lambda item: (item[1], str(item[0]))):
        part = min(n, tail_people - held)
        if part <= 0:
            break
        held += part
        tail_reached += part if c in reached else 0.0
    counted = sum(personas.values())
    return {
        "cells": float(len(living)),
        "cells_reached": len(reached) / len(living) if living else float("nan"),
        "population_reached": sum(living[c] for c in reached) / total if total else float("nan"),
        "tail_reached": tail_reached / held if held else float("nan"),
        "effective_profiles": float(np.exp(entropy(np.array(list(personas.values()))))) if counted else 0.0,
        "population_profiles": float(np.exp(entropy(np.array(list(living.values()))))) if living else 0.0,
        "outside": sum(n for c, n in personas.items() if c not in living) / counted if counted else 0.0,
    }
