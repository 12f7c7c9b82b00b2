"""``census``: adult personas per state, with a realistic joint distribution.

Marginals alone would pair attributes independently. Instead, real General
Social Survey respondents (2018-2024, with their survey weights) form a seed
whose attributes co-occur as they do in life; for each state the seed weights
are raked (iterative proportional fitting) to that state's ACS 2018 adult
controls: sex x age band, race/ethnicity, and education. Personas are then
drawn in proportion to the raked weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache, cached_property
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from simrun import hookimpl
from simrun.components import Sampler, StrictConfig, batched
from simrun.models import Persona
from simrun.plugins import data

CONTROLS = "acs2018_adult_controls.csv"
SEED = "gss_seed.csv"
PROVENANCE = {
    "age": "census:B01001 ACS 2018 1-year (raked GSS 2018-2024 seed)",
    "sex": "census:B01001 ACS 2018 1-year (raked GSS 2018-2024 seed)",
    "race_ethnicity": "census:B01001B/D/H/I,B03002 ACS 2018 1-year (raked GSS 2018-2024 seed)",
    "education": "census:B15002 ACS 2018 1-year (raked GSS 2018-2024 seed)",
    "family_income": "survey:GSS 2018-2024 income16 (carried by the seed, not raked)",
    "state": "census:ACS 2018 1-year state",
}
AGE_BANDS = ((18, 29, "18-29"), (30, 44, "30-44"), (45, 64, "45-64"), (65, 200, "65+"))


@cache
def load_controls() -> dict[str, dict[str, dict[str, float]]]:
    """state -> dimension -> category -> adults (ACS 2018 1-year, see plugins/data/SOURCES.md)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for row in data.rows(CONTROLS):
        out.setdefault(row["state"], {}).setdefault(row["dimension"], {})[row["category"]] = float(row["count"])
    return out


def control_category(dimension: str, attributes: dict) -> str | None:
    """A persona's cell in a control dimension, or None when it lacks the attributes."""
    try:
        if dimension == "sex_age":
            return f"{attributes['sex']}|{age_band(int(attributes['age']))}"
        if dimension == "education":
            return "under 25" if int(attributes["age"]) < 25 else str(attributes["education"])
        return str(attributes[dimension])
    except KeyError:
        return None


def age_band(age: int) -> str:
    return next(label for lo, hi, label in AGE_BANDS if lo <= age <= hi)


class RakeResult:
    def __init__(self, weights: np.ndarray, iterations: int, max_error: float, empty_cells: list[str]):
        self.weights, self.iterations, self.max_error, self.empty_cells = weights, iterations, max_error, empty_cells


def rake(seed_weights: np.ndarray, dimensions: list[tuple[np.ndarray, np.ndarray]], tolerance: float = 1e-6, max_iterations: int = 200) -> RakeResult:
    """Iterative proportional fitting of seed weights to several sets of control totals.

    Each dimension is (category index per seed row, target total per category).
    A category with a positive target but no seed rows cannot be matched; it is
    reported in ``empty_cells`` rather than silently ignored.
    """
    w = seed_weights.astype(float).copy()
    empty = [f"dimension {d} category {c}" for d, (codes, targets) in enumerate(dimensions)
             for c in np.flatnonzero((np.bincount(codes, minlength=len(targets)) == 0) & (targets > 0))]
    error = np.inf
    for iteration in range(1, max_iterations + 1):
        for codes, targets in dimensions:
            sums = np.bincount(codes, weights=w, minlength=len(targets))
            factors = np.divide(targets, sums, out=np.zeros_like(targets), where=sums > 0)
            w *= factors[codes]
        error = max(
            float(np.max(np.abs(np.bincount(codes, weights=w, minlength=len(t)) - t) / np.maximum(t, 1)))
            for codes, t in dimensions
        )
        if error < tolerance:
            break
    return RakeResult(w, iteration, error, empty)


class CensusSampler(Sampler):
    """Adults per state from real ACS 2018 controls, raked onto real GSS respondents."""

    name = "census"

    class Config(StrictConfig):
        states: Literal["all"] | list[str] = Field("all", description="'all' (50 states and DC) or postal codes, e.g. [CA, TX]")
        per_state: int | None = Field(20, ge=1, description="Personas per state (ignored when total is set).")
        total: int | None = Field(None, ge=1, description="Personas in all, allocated in proportion to adult population.")

        @field_validator("states")
        @classmethod
        def _known_states(cls, value: Literal["all"] | list[str]) -> Literal["all"] | list[str]:
            if value == "all":
                return value
            known = data.states()
            unknown = [s for s in value if s.upper() not in known]
            if unknown:
                raise ValueError(f"unknown state code(s) {unknown}; expected postal codes such as {sorted(known)[:5]}")
            return [s.upper() for s in value]

        @model_validator(mode="after")
        def _size(self):
            if self.total is None and self.per_state is None:
                raise ValueError("set per_state or total")
            return self

    def provides(self) -> set[str]:
        return set(PROVENANCE)

    @cached_property
    def state_codes(self) -> list[str]:
        return sorted(data.states()) if self.config.states == "all" else list(self.config.states)

    @property
    def controls(self) -> dict[str, dict[str, dict[str, float]]]:
        return load_controls()

    def population(self, state: str) -> float:
        return sum(self.controls[state]["sex_age"].values())

    @cached_property
    def allocation(self) -> dict[str, int]:
        if self.config.total is None:
            return {s: self.config.per_state for s in self.state_codes}
        pops = np.array([self.population(s) for s in self.state_codes])
        exact = self.config.total * pops / pops.sum()
        counts = np.floor(exact).astype(int)
        for i in np.argsort(-(exact - counts))[: self.config.total - counts.sum()]:
            counts[i] += 1
        return {s: int(n) for s, n in zip(self.state_codes, counts) if n > 0}

    def total(self) -> int:
        return sum(self.allocation.values())

    @cached_property
    def seed(self) -> dict[str, np.ndarray]:
        rows = data.rows(SEED)
        ages = np.array([int(r["age"]) for r in rows])
        return {
            "weight": np.array([float(r["weight"]) for r in rows]),
            "age": ages,
            "sex": np.array([r["sex"] for r in rows]),
            "race_ethnicity": np.array([r["race_ethnicity"] for r in rows]),
            "education": np.array([r["education"] if a >= 25 else "under 25" for r, a in zip(rows, ages)]),
            "education_label": np.array([r["education"] for r in rows]),
            "family_income": np.array([r["family_income"] for r in rows]),
            "sex_age": np.array([f"{r['sex']}|{age_band(a)}" for r, a in zip(rows, ages)]),
        }

    def fit(self, state: str) -> RakeResult:
        dimensions = []
        for dimension, targets in self.controls[state].items():
            categories = sorted(targets)
            index = {c: i for i, c in enumerate(categories)}
            codes = np.array([index[v] for v in self.seed[dimension]])
            dimensions.append((codes, np.array([targets[c] for c in categories])))
        result = rake(self.seed["weight"], dimensions)
        if result.empty_cells or result.max_error > 1e-3:
            raise RuntimeError(
                f"census sampler: raking for {state} did not converge (max relative error "
                f"{result.max_error:.2e}, empty cells {result.empty_cells})"
            )
        return result

    def sample(self, rng: np.random.Generator, batch_size: int) -> Iterator[list[Persona]]:
        return batched(self.personas(rng), batch_size)

    @cached_property
    def records(self) -> list[dict[str, object]]:
        """Each seed row's persona attributes, as plain Python values, built once."""
        seed = self.seed
        return [
            {"age": int(age), "sex": str(sex), "race_ethnicity": str(race), "education": str(education), "family_income": str(income)}
            for age, sex, race, education, income in zip(
                seed["age"], seed["sex"], seed["race_ethnicity"], seed["education_label"], seed["family_income"])
        ]

    def personas(self, rng: np.random.Generator) -> Iterator[Persona]:
        names = data.states()
        records = self.records
        next_id = 0
        for state, n in self.allocation.items():
            weights = self.fit(state).weights
            picks = rng.choice(len(weights), size=n, replace=True, p=weights / weights.sum())
            weight = self.population(state) / n
            name = names[state]["name"]
            for i in picks.tolist():
                # trusted values from the package's own tables: skip re-validation (1M personas in seconds)
                yield Persona.model_construct(id=next_id, stratum=state, weight=weight,
                                              attributes={"state": name, **records[i]}, provenance=dict(PROVENANCE))
                next_id += 1


@hookimpl
def register_samplers(register):
    register(CensusSampler)
