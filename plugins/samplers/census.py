"""``census``: adult personas per state, with a realistic joint distribution.

Marginals alone would pair attributes independently. Instead, real General
Social Survey respondents (2018-2024, with their survey weights) form a seed
whose attributes co-occur as they do in life; for each state the seed weights
are raked (iterative proportional fitting) to that state's ACS 2018 controls:
for ``population: adults``, sex x age band, race/ethnicity, education and
sex x marital status; for
``population: citizen_voting_age``, sex, age band and education of citizens
18+ (B05003, B29001, B29002). Personas are then drawn in proportion to the
raked weights. Marital status, which the GSS extract lacks, is imputed into
the seed from ACS PUMS by sex and age and raked to B12001 (adults).
``controls:`` takes a user's own table in the same long format;
every bad line or inconsistency in it is named (file, line, table, state, cell).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache, cached_property
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from simrun import hookimpl
from simrun.components import Sampler, StrictConfig, batched
from simrun.models import Persona
from simrun.plugins import data

CONTROLS = {"adults": "acs2018_adult_controls.csv", "citizen_voting_age": "acs2018_cvap_controls.csv"}
SEED = "gss_seed.csv"
MARITAL_SHARES = "pums_marital_by_sex_age.csv"
SEED_PROVENANCE = "(raked GSS 2018-2024 seed)"
AGE_BANDS = ((18, 29, "18-29"), (30, 44, "30-44"), (45, 64, "45-64"), (65, 200, "65+"))
MARITAL = ("never married", "married", "separated", "widowed", "divorced")
EDUCATION = ("less than high school", "high school", "associate degree", "bachelor's degree", "graduate degree")
# control dimension -> its categories (what the seed can match) and the persona attributes it constrains
DIMENSIONS: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "sex_age": (frozenset(f"{s}|{b}" for s in ("female", "male") for _, _, b in AGE_BANDS), ("sex", "age")),
    "sex": (frozenset({"female", "male"}), ("sex",)),
    "age_band": (frozenset(b for _, _, b in AGE_BANDS), ("age",)),
    "race_ethnicity": (frozenset({"white", "black", "hispanic", "asian", "other"}), ("race_ethnicity",)),
    "education": (frozenset(EDUCATION) | {"under 25"}, ("education",)),
    "education_18plus": (frozenset(EDUCATION), ("education",)),
    "sex_marital": (frozenset(f"{s}|{m}" for s in ("female", "male") for m in MARITAL), ("sex", "marital_status")),
}
TOTALS_AGREE = 0.005  # relative: dimensions of one state must describe the same population


class Controls(dict):
    """state -> dimension -> category -> people, read from a long table; ``tables`` names each dimension's source."""

    def __init__(self, counts: dict[str, dict[str, dict[str, float]]], tables: dict[str, str], label: str):
        super().__init__(counts)
        self.tables, self.label = tables, label

    def population(self, state: str) -> float:
        """The people a state's controls describe (every dimension sums to it)."""
        return sum(next(iter(self[state].values())).values())

    def provenance(self) -> dict[str, str]:
        by_attribute: dict[str, list[str]] = {}
        for dimension, table in self.tables.items():
            for attribute in DIMENSIONS[dimension][1]:
                by_attribute.setdefault(attribute, []).append(table)
        out = {a: f"census:{','.join(dict.fromkeys(t))} {self.label} {SEED_PROVENANCE}" for a, t in by_attribute.items()}
        if "marital_status" in out:
            out["marital_status"] += " (imputed into the seed from ACS PUMS 2013-2017 by sex x age)"
        out.setdefault("marital_status", "survey:ACS PUMS 2013-2017 by sex x age (imputed into the seed, not raked here)")
        return {**out, "family_income": "survey:GSS 2018-2024 income16 (carried by the seed, not raked)", "state": f"census:{self.label} state"}


def read_controls(path: Path, label: str) -> Controls:
    """A control table (columns state, table, dimension, category, count), checked line by line and state by state."""
    counts: dict[str, dict[str, dict[str, float]]] = {}
    tables: dict[str, str] = {}
    for line, row in data.table_rows(path, ["state", "table", "dimension", "category", "count"]):
        where = f"{path}:{line}: table {row['table']}, state {row['state']}, {row['dimension']}={row['category']}"
        if row["dimension"] not in DIMENSIONS:
            raise ValueError(f"{where}: unknown dimension {row['dimension']!r}; the census sampler can rake {', '.join(sorted(DIMENSIONS))}")
        if row["category"] not in DIMENSIONS[row["dimension"]][0]:
            raise ValueError(f"{where}: unknown category; {row['dimension']} has {', '.join(sorted(DIMENSIONS[row['dimension']][0]))}")
        cell = counts.setdefault(row["state"], {}).setdefault(row["dimension"], {})
        cell[row["category"]] = cell.get(row["category"], 0.0) + data.non_negative(row["count"], f"{where}: count")
        tables.setdefault(row["dimension"], row["table"])
    for state, dimensions in counts.items():
        if set(dimensions) != set(tables):
            raise ValueError(f"{path}: state {state} lacks control table(s) for {', '.join(sorted(set(tables) - set(dimensions)))}")
        totals = {d: sum(c.values()) for d, c in dimensions.items()}
        low, high = min(totals.values()), max(totals.values())
        if high > 0 and (high - low) / high > TOTALS_AGREE:
            listed = ", ".join(f"{tables[d]} {d} {n:,.0f}" for d, n in sorted(totals.items()))
            raise ValueError(f"{path}: totals for state {state} disagree by more than {TOTALS_AGREE:.1%}: {listed}")
    return Controls(counts, tables, label)


def load_controls(population: str = "adults", file: str | None = None) -> Controls:
    """The shipped controls for a population (ACS 2018 1-year, plugins/data/SOURCES.md), or a user's file (read afresh)."""
    if file is not None:
        return read_controls(Path(file).expanduser(), f"file {Path(file).name}")
    return shipped_controls(population)


@cache
def shipped_controls(population: str) -> Controls:
    return read_controls(data.path(CONTROLS[population]), "ACS 2018 1-year")


@cache
def marital_shares() -> dict[tuple[str, int], list[tuple[str, float]]]:
    """(sex, age capped at 85) -> [(marital status, share)] among adults, from ACS PUMS 2013-2017 (plugins/data/SOURCES.md)."""
    out: dict[tuple[str, int], list[tuple[str, float]]] = {}
    for row in data.rows(MARITAL_SHARES):
        if float(row["share"]) > 0:
            out.setdefault((row["sex"], int(row["age"])), []).append((row["marital_status"], float(row["share"])))
    return out


def control_category(dimension: str, attributes: dict) -> str | None:
    """A persona's cell in a control dimension, or None when it lacks the attributes."""
    try:
        if dimension == "sex_age":
            return f"{attributes['sex']}|{age_band(int(attributes['age']))}"
        if dimension == "education":
            return "under 25" if int(attributes["age"]) < 25 else str(attributes["education"])
        if dimension == "age_band":
            return age_band(int(attributes["age"]))
        if dimension == "education_18plus":
            return str(attributes["education"])
        if dimension == "sex_marital":
            return f"{attributes['sex']}|{attributes['marital_status']}"
        return str(attributes[dimension])
    except KeyError:
        return None


def age_band(age: int) -> str:
    return next(label for lo, hi, label in AGE_BANDS if lo <= age <= hi)


class RakeResult:
    def __init__(self, weights: np.ndarray, iterations: int, max_error: float, empty_cells: list[tuple[int, int]]):
        self.weights, self.iterations, self.max_error, self.empty_cells = weights, iterations, max_error, empty_cells


def rake(seed_weights: np.ndarray, dimensions: list[tuple[np.ndarray, np.ndarray]], tolerance: float = 1e-6, max_iterations: int = 200) -> RakeResult:
    """Iterative proportional fitting of seed weights to several sets of control totals.

    Each dimension is (category index per seed row, target total per category).
    A category with a positive target but no seed rows cannot be matched; it is
    reported in ``empty_cells`` (dimension, category index) rather than silently ignored.
    """
    w = seed_weights.astype(float).copy()
    empty = [(d, int(c)) for d, (codes, targets) in enumerate(dimensions)
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


def encode(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, each row's index into them): what ``fit_state`` takes per dimension."""
    categories, codes = np.unique(values, return_inverse=True)
    return categories, codes


def fit_state(state: str, controls: Controls, cells: dict[str, tuple[np.ndarray, np.ndarray]], weights: np.ndarray) -> RakeResult:
    """Rake ``weights`` (one per seed row) so the rows' ``cells`` (``encode``d) per control dimension match the state's controls.

    A positive control cell no row falls in, or a fit that does not converge,
    stops with the state, table and cell named.
    """
    dimensions, names = [], []
    for dimension, (seen, codes) in cells.items():
        targets = controls[state][dimension]
        categories = sorted(set(targets) | set(seen.tolist()))
        index = {c: i for i, c in enumerate(categories)}
        remap = np.array([index[c] for c in seen.tolist()], dtype=np.intp)
        dimensions.append((remap[codes], np.array([targets.get(c, 0.0) for c in categories])))
        names.append((dimension, categories))
    # IPF multiplies a row's weight by factors that depend only on its categories, so rows alike in every
    # dimension move together: rake the distinct combinations (a few thousand), then spread the factors back.
    key = np.zeros(len(weights), dtype=np.int64)
    for codes, targets in dimensions:
        key = key * len(targets) + codes
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    combined = np.bincount(inverse, weights=weights)
    result = rake(combined, [(codes[first], targets) for codes, targets in dimensions])
    result.weights = weights * np.divide(result.weights, combined, out=np.zeros_like(combined), where=combined > 0)[inverse]
    if result.empty_cells:
        listed = "; ".join(f"table {controls.tables[names[d][0]]}, {names[d][0]}={names[d][1][c]} ({dimensions[d][1][c]:,.0f} people)"
                           for d, c in result.empty_cells)
        raise RuntimeError(f"state {state}: no seed respondent falls in {listed}; merge the cell into a neighbour or drop it")
    if result.max_error > 1e-3:
        raise RuntimeError(f"raking for state {state} did not converge (max relative error {result.max_error:.2e}"
                           f" after {result.iterations} iterations); check that the control tables describe one population")
    return result


class CensusSampler(Sampler):
    """Adults per state from real ACS 2018 controls, raked onto real GSS respondents."""

    name = "census"

    class Config(StrictConfig):
        states: Literal["all"] | list[str] = Field("all", description="'all' (50 states and DC) or postal codes, e.g. [CA, TX]")
        per_state: int | None = Field(20, ge=1, description="Personas per state (ignored when total is set).")
        total: int | None = Field(None, ge=1, description="Personas in all, allocated in proportion to the population.")
        population: Literal["adults", "citizen_voting_age"] = Field("adults", description="Whom the personas represent: all adults 18+, or citizens 18+.")
        controls: str | None = Field(None, description="Your own control table (state, table, dimension, category, count); overrides population's.")

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
        return {"age", "sex", "race_ethnicity", "education", "marital_status", "family_income", "state"}

    @cached_property
    def state_codes(self) -> list[str]:
        codes = sorted(data.states()) if self.config.states == "all" else list(self.config.states)
        missing = [s for s in codes if s not in self.controls]
        if missing:
            raise ValueError(f"census sampler: the control table ({self.controls.label}) has no rows for state(s) {', '.join(missing)}")
        return codes

    @cached_property
    def controls(self) -> Controls:
        return load_controls(self.config.population, self.config.controls)

    @cached_property
    def provenance(self) -> dict[str, str]:
        return self.controls.provenance()

    def population(self, state: str) -> float:
        return self.controls.population(state)

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
        """GSS respondents, each split into one row per marital status in proportion to P(status | sex, age) from ACS PUMS.

        GSS rows carry no marital status here; fractional imputation keeps every
        respondent (weights split, not drawn) and raking to B12001 then fixes
        each state's marital mix by sex.
        """
        shares = marital_shares()
        rows, weights, statuses = [], [], []
        for r in data.rows(SEED):
            for status, share in shares[(r["sex"], min(int(r["age"]), 85))]:
                rows.append(r)
                weights.append(float(r["weight"]) * share)
                statuses.append(status)
        ages = np.array([int(r["age"]) for r in rows])
        return {
            "weight": np.array(weights),
            "age": ages,
            "sex": np.array([r["sex"] for r in rows]),
            "race_ethnicity": np.array([r["race_ethnicity"] for r in rows]),
            "education": np.array([r["education"] if a >= 25 else "under 25" for r, a in zip(rows, ages)]),
            "education_label": np.array([r["education"] for r in rows]),
            "family_income": np.array([r["family_income"] for r in rows]),
            "marital_status": np.array(statuses),
            "sex_age": np.array([f"{r['sex']}|{age_band(a)}" for r, a in zip(rows, ages)]),
            "age_band": np.array([age_band(a) for a in ages]),
            "education_18plus": np.array([r["education"] for r in rows]),
            "sex_marital": np.array([f"{r['sex']}|{m}" for r, m in zip(rows, statuses)]),
        }

    @cached_property
    def encoded(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {dimension: encode(self.seed[dimension]) for dimension in DIMENSIONS}

    def fit(self, state: str) -> RakeResult:
        try:
            return fit_state(state, self.controls, {d: self.encoded[d] for d in self.controls[state]}, self.seed["weight"])
        except RuntimeError as exc:
            raise RuntimeError(f"census sampler: {exc}") from None

    def sample(self, rng: np.random.Generator, batch_size: int) -> Iterator[list[Persona]]:
        return batched(self.personas(rng), batch_size)

    @cached_property
    def records(self) -> list[dict[str, object]]:
        """Each seed row's persona attributes, as plain Python values, built once."""
        seed = self.seed
        return [
            {"age": int(age), "sex": str(sex), "race_ethnicity": str(race), "education": str(education),
             "marital_status": str(marital), "family_income": str(income)}
            for age, sex, race, education, marital, income in zip(
                seed["age"], seed["sex"], seed["race_ethnicity"], seed["education_label"], seed["marital_status"], seed["family_income"])
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
                                              attributes={"state": name, **records[i]}, provenance=dict(self.provenance))
                next_id += 1


@hookimpl
def register_samplers(register):
    register(CensusSampler)
