"""Iterative proportional fitting (raking) of seed weights to census control totals, in product form.

A seed of real respondents keeps the associations of its attributes; raking
scales their weights until every control table of a state is matched.
Attributes the seed lacks are imputed fractionally (``Imputed``) and raked as
one weight per (group, category) pair, so nothing is split into rows.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .census import Controls


class Imputed(NamedTuple):
    """An attribute the seed lacks, as probabilities per category for groups of respondents.

    Respondents alike in these probabilities and in every control cell the
    attribute enters form a group: raking moves their categories' weights
    alike, so it keeps one weight per (group, category) pair. Pairs are sorted
    by group; group g's are ``start[g]:start[g + 1]``.
    """

    categories: tuple[str, ...]
    group: np.ndarray  # per respondent
    pair_group: np.ndarray
    category: np.ndarray
    prior: np.ndarray
    start: np.ndarray
    cells: dict[str, np.ndarray]  # control dimension -> each pair's category in it


class Coded(NamedTuple):
    """A control dimension's categories and, for each respondent (or each pair of the imputed attribute it reads), its
    index into them.
    """

    categories: np.ndarray
    codes: np.ndarray
    imputed: str | None = None


class Dimension(NamedTuple):
    """One set of control totals for ``rake``: each respondent's (or imputed pair's) category, and the target per
    category.
    """

    codes: np.ndarray
    targets: np.ndarray
    imputed: str | None = None


class RakeResult:
    """Raked weights in product form: a weight per respondent times, per imputed attribute, a weight per
    (group, category) pair.

    A respondent stands for ``base`` x its group's summed pair weights of each
    imputed attribute (``weights``); a persona drawn from it takes each imputed
    category in proportion to its pair weight (``draw``).
    """

    def __init__(self, base: np.ndarray, imputed: dict[str, Imputed]):
        self.base, self.imputed = base, imputed
        self.pair = {a: pairs.prior.astype(float) for a, pairs in imputed.items()}
        self.mass: dict[str, np.ndarray] = {}
        self.factor: dict[str, np.ndarray] = {}  # per respondent: its group's mass
        for attribute in imputed:
            self.update_mass(attribute)
        self.iterations, self.max_error, self.empty_cells = 0, 0.0, []

    def update_mass(self, attribute: str) -> None:
        pairs = self.imputed[attribute]
        self.mass[attribute] = np.bincount(
            pairs.pair_group, weights=self.pair[attribute], minlength=len(pairs.start) - 1
        )
        self.factor[attribute] = self.mass[attribute][pairs.group]

    def weights_without(self, attribute: str | None) -> np.ndarray:
        """Each respondent's weight, leaving out one imputed attribute's factor (None: the whole weight)."""
        weights = self.base.copy()
        for a, factor in self.factor.items():
            if a != attribute:
                weights *= factor
        return weights

    @property
    def weights(self) -> np.ndarray:
        return self.weights_without(None)

    def sums(self, codes: np.ndarray, imputed: str | None, size: int) -> np.ndarray:
        """People per category of a dimension whose codes are per respondent, or per pair of ``imputed``."""
        if imputed is None:
            return np.bincount(codes, weights=self.weights, minlength=size)
        pairs = self.imputed[imputed]
        groups = np.bincount(pairs.group, weights=self.weights_without(imputed), minlength=len(pairs.start) - 1)
        return np.bincount(codes, weights=groups[pairs.pair_group] * self.pair[imputed], minlength=size)

    def scale(self, dimension: Dimension, factors: np.ndarray) -> None:
        if dimension.imputed is None:
            self.base *= factors[dimension.codes]
        else:
            self.pair[dimension.imputed] *= factors[dimension.codes]
            self.update_mass(dimension.imputed)

    def exclude(self, attribute: str, category: str) -> None:
        """Nobody in ``category`` of an imputed attribute (e.g. keep citizens only)."""
        pairs = self.imputed[attribute]
        self.pair[attribute][pairs.category == pairs.categories.index(category)] = 0.0
        self.update_mass(attribute)

    def draw(self, attribute: str, respondents: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A category code of an imputed attribute for each drawn respondent, in proportion to its group's pair
        weights.
        """
        pairs, pair = self.imputed[attribute], self.pair[attribute]
        mass = self.mass[attribute][pairs.pair_group]
        cumulative = np.cumsum(
            np.divide(pair, mass, out=np.zeros_like(pair), where=mass > 0)
        )  # each group's pairs add 1
        groups = pairs.group[respondents]
        first, last = pairs.start[groups], pairs.start[groups + 1] - 1
        before = np.where(first > 0, cumulative[first - 1], 0.0)
        point = before + rng.random(len(respondents)) * (cumulative[last] - before)
        return pairs.category[np.clip(np.searchsorted(cumulative, point, side="right"), first, last)]


def rake(
    seed_weights: np.ndarray,
    dimensions: list[Dimension],
    imputed: dict[str, Imputed] | None = None,
    tolerance: float = 1e-6,
    max_iterations: int = 200,
) -> RakeResult:
    """Iterative proportional fitting of seed weights (and imputed attributes' pair weights) to several sets of totals.

    A category with a positive target that no seed respondent (or possible
    imputed category) reaches cannot be matched; it is reported in
    ``empty_cells`` (dimension, category index) rather than silently ignored.
    """
    result = RakeResult(seed_weights.astype(float), imputed or {})
    present = seed_weights > 0
    for d, (codes, targets, attribute) in enumerate(dimensions):
        if attribute is None:
            reached = codes[present]
        else:
            pairs = result.imputed[attribute]
            reached = codes[
                (np.bincount(pairs.group, weights=present, minlength=len(pairs.start) - 1) > 0)[pairs.pair_group]
            ]
        counts = np.bincount(reached, minlength=len(targets))
        result.empty_cells += [(d, int(c)) for c in np.flatnonzero((counts == 0) & (targets > 0))]

    def misfit(dimension: Dimension, sums: np.ndarray) -> float:
        return float(np.max(np.abs(sums - dimension.targets) / np.maximum(dimension.targets, 1)))

    for iteration in range(1, max_iterations + 1):
        worst = 0.0  # measured on the sums each pass computes anyway: converged once no dimension needs adjusting
        for dimension in dimensions:
            sums = result.sums(dimension.codes, dimension.imputed, len(dimension.targets))
            worst = max(worst, misfit(dimension, sums))
            result.scale(dimension, np.divide(dimension.targets, sums, out=np.zeros_like(sums), where=sums > 0))
        result.iterations = iteration
        if worst < tolerance:
            break
    result.max_error = max(misfit(d, result.sums(d.codes, d.imputed, len(d.targets))) for d in dimensions)
    return result


def encode(values: np.ndarray) -> Coded:
    """A dimension's distinct values, and each row's index into them: what ``fit_state`` takes per dimension."""
    categories, codes = np.unique(values, return_inverse=True)
    return Coded(categories, codes)


def combination_key(columns: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """One integer per row for its combination of codes, given each column's codes and how many values they take."""
    key = np.zeros(len(columns[0][0]), dtype=np.int64)
    for codes, size in columns:
        key = key * size + codes
    return key


def fit_state(
    state: str,
    controls: Controls,
    coded: dict[str, Coded],
    weights: np.ndarray,
    imputed: dict[str, Imputed] | None = None,
) -> RakeResult:
    """Rake ``weights`` (one per seed row) so the rows' categories per control dimension (``coded``) match the state's
    controls.

    A positive control cell no row falls in, or a fit that does not converge,
    stops with the state, table and cell named.
    """
    dimensions, names = [], []
    for dimension, (seen, codes, attribute) in coded.items():
        targets = controls[state][dimension]
        categories = sorted(set(targets) | set(seen.tolist()))
        index = {c: i for i, c in enumerate(categories)}
        remap = np.array([index[c] for c in seen.tolist()], dtype=np.intp)
        dimensions.append(Dimension(remap[codes], np.array([targets.get(c, 0.0) for c in categories]), attribute))
        names.append((dimension, categories))
    result = rake(weights, dimensions, imputed)
    if result.empty_cells:
        listed = "; ".join(
            f"table {controls.tables[names[d][0]]}, {names[d][0]}={names[d][1][c]} "
            f"({dimensions[d].targets[c]:,.0f} people)"
            for d, c in result.empty_cells
        )
        raise RuntimeError(
            f"state {state}: no seed respondent falls in {listed}; merge the cell into a neighbour or drop it"
        )
    if result.max_error > 1e-3:
        raise RuntimeError(
            f"raking for state {state} did not converge (max relative error {result.max_error:.2e}"
            f" after {result.iterations} iterations); check that the control tables describe one population"
        )
    return result
