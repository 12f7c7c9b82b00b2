"""``census``: adult personas per state, with a realistic joint distribution.

Marginals alone would pair attributes independently. Instead, real General
Social Survey respondents (2018-2024, with their survey weights) form a seed
whose attributes co-occur as they do in life; marital status, employment and
citizenship, which the GSS extract lacks, are imputed into it fractionally
from census tables (``build_seed``). For each state the seed is raked
(iterative proportional fitting) to that state's ACS 2018 controls: sex x age
band, race/ethnicity, education, sex x marital status, sex x age band x
employment, sex x citizenship and citizenship x age band. Personas are drawn
in proportion to the raked weights. ``population: citizen_voting_age`` keeps
the citizens of the raked adults. ``controls:`` takes a user's own table in
the same long format; every bad line or inconsistency in it is named (file,
line, table, state, cell). docs/census-sampler.md has the method and sources.
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
EMPLOYMENT_BY_EDUCATION = "s2301_employment_by_education.csv"
FOREIGN_BORN_BY_RACE = "dp02_foreign_born_by_race.csv"
SEED_PROVENANCE = "(raked GSS 2018-2024 seed)"
AGE_BANDS = ((18, 29, "18-29"), (30, 44, "30-44"), (45, 64, "45-64"), (65, 200, "65+"))
SEXES = ("female", "male")
MARITAL = ("never married", "married", "separated", "widowed", "divorced")
EMPLOYMENT = ("employed", "unemployed", "not in labor force", "armed forces")
CITIZENSHIP = ("born a citizen", "naturalized citizen", "not a citizen")
EDUCATION = ("less than high school", "high school", "associate degree", "bachelor's degree", "graduate degree")
BANDS = tuple(b for _, _, b in AGE_BANDS)
# control dimension -> its categories (what the seed can match) and the persona attributes it constrains
DIMENSIONS: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "sex_age": (frozenset(f"{s}|{b}" for s in SEXES for b in BANDS), ("sex", "age")),
    "sex": (frozenset(SEXES), ("sex",)),
    "age_band": (frozenset(BANDS), ("age",)),
    "race_ethnicity": (frozenset({"white", "black", "hispanic", "asian", "other"}), ("race_ethnicity",)),
    "education": (frozenset(EDUCATION) | {"under 25"}, ("education",)),
    "education_18plus": (frozenset(EDUCATION), ("education",)),
    "sex_marital": (frozenset(f"{s}|{m}" for s in SEXES for m in MARITAL), ("sex", "marital_status")),
    "sex_age_employment": (frozenset(f"{s}|{b}|{e}" for s in SEXES for b in BANDS for e in EMPLOYMENT), ("sex", "age", "employment_status")),
    "sex_citizenship": (frozenset(f"{s}|{c}" for s in SEXES for c in CITIZENSHIP), ("sex", "citizenship")),
    "citizenship_age": (frozenset(f"{c}|{b}" for c in ("citizen", "not a citizen") for b in BANDS), ("citizenship", "age")),
    "citizen_education": (frozenset({f"citizen|{e}" for e in EDUCATION} | {"not a citizen"}), ("citizenship", "education")),
}
# attributes no seed here carries: imputed into it from census tables (see build_seed), then raked where controls exist
IMPUTED_PROVENANCE = {
    "marital_status": "imputed into the seed by sex x age from ACS PUMS 2013-2017",
    "employment_status": "imputed into the seed by sex x age band (B23001 ACS 2018) with education odds from S2301 ACS 2023",
    "citizenship": "imputed into the seed by sex (B05003 ACS 2018) with race/ethnicity odds from DP02/DP05 ACS 2023",
}
ALL_FIELDS = set(Persona.model_fields)  # model_construct is faster told every field is set
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
        for attribute, how in IMPUTED_PROVENANCE.items():
            out[attribute] = f"{out[attribute]} ({how})" if attribute in out else f"census:{how}; not raked here"
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


class Seed:
    """GSS respondents, each split into one weighted row per combination of the imputed attributes.

    Rows alike in every control dimension form a cell; raking works on the
    cells (a few thousand) and a persona is drawn from its cell's rows.
    """

    def __init__(self, records: list[dict[str, object]], row: np.ndarray, weight: np.ndarray, imputed: dict[str, tuple[tuple[str, ...], np.ndarray]]):
        self.records, self.row, self.weight, self.imputed = records, row, weight, imputed
        base = self.base_cell[row]
        key = combination_key([(base, int(base.max()) + 1)] + [(codes, len(categories)) for categories, codes in imputed.values()])
        _, first, self.cell = np.unique(key, return_index=True, return_inverse=True)
        self.cell_weight = np.bincount(self.cell, weights=weight)
        examples = [{**records[row[i]], **self.imputed_at(i)} for i in first]
        self.cells = {d: np.array([control_category(d, e) for e in examples]) for d in DIMENSIONS}
        self.encoded = {d: encode(values) for d, values in self.cells.items()}

    @cached_property
    def statuses(self) -> tuple[list[dict[str, str]], np.ndarray]:
        """The distinct combinations of imputed attributes (shared dicts), and each row's index into them."""
        key = combination_key([(codes, len(categories)) for categories, codes in self.imputed.values()])
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        return [self.imputed_at(i) for i in first], inverse

    def imputed_at(self, i: int) -> dict[str, str]:
        """Row ``i``'s imputed attributes."""
        return {a: categories[codes[i]] for a, (categories, codes) in self.imputed.items()}

    def totals(self, cell_weights: np.ndarray, dimension: str) -> dict[str, float]:
        """People per category of a control dimension under these cell weights (e.g. ``fit(state).weights``)."""
        categories, codes = self.encoded[dimension]
        return dict(zip(categories.tolist(), np.bincount(codes, weights=cell_weights, minlength=len(categories)).tolist()))

    @cached_property
    def base_cell(self) -> np.ndarray:
        """Each respondent's cell in the dimensions that use only what the GSS says (sex, age band, race, education)."""
        keys = [(r["sex"], age_band(int(r["age"])), int(r["age"]) < 25, r["race_ethnicity"], r["education"]) for r in self.records]
        return np.unique(np.array([str(k) for k in keys]), return_inverse=True)[1]


@cache
def citizen_raking_controls() -> Controls:
    """Adults' controls plus education of citizens 18+ (B29002; non-citizens one cell): raked, then the citizens kept.

    Race is the reason: no table crosses it with citizenship, but the adults'
    race controls and the seed's race x citizenship association together give
    citizens a realistic mix, which scaling the adults' mix would not.
    """
    adults, citizens = shipped_controls("adults"), shipped_controls("citizen_voting_age")
    counts = {state: {**dimensions, "citizen_education": {
        **{f"citizen|{e}": n for e, n in citizens[state]["education_18plus"].items()},
        "not a citizen": adults.population(state) - citizens.population(state)}} for state, dimensions in adults.items()}
    return Controls(counts, {**adults.tables, "citizen_education": citizens.tables["education_18plus"]}, adults.label)


@cache
def build_seed() -> Seed:
    """GSS 2018-2024 respondents with marital status, employment and citizenship imputed fractionally.

    The GSS extract lacks these, so each respondent is split over their
    categories with probabilities from census tables (weights split, not drawn):
    marital status by sex x single age (ACS PUMS); employment by sex x age band
    (national B23001), tilted by education with S2301's odds for ages 25-64;
    citizenship by sex (national B05003), tilted by race/ethnicity with the
    foreign-born share per group (DP02 world region of birth over DP05). Each
    state's raking then fixes the margins its controls give (B12001, B23001,
    B05003, B29001); the associations with education and race come from the
    imputation, as a seed's associations should.
    """
    records = [{"age": int(r["age"]), "sex": r["sex"], "race_ethnicity": r["race_ethnicity"], "education": r["education"],
                "family_income": r["family_income"]} for r in data.rows(SEED)]
    priors = {"marital_status": (MARITAL, marital_prior(records)), "employment_status": (EMPLOYMENT, employment_prior(records)),
              "citizenship": (CITIZENSHIP, citizenship_prior(records))}
    joint = np.array([float(r["weight"]) for r in data.rows(SEED)])
    for _, probabilities in priors.values():  # respondent x marital x employment x citizenship
        joint = joint[..., None] * probabilities.reshape(len(records), *[1] * (joint.ndim - 1), -1)
    positive = np.flatnonzero(joint.ravel() > 0)
    index = np.unravel_index(positive, joint.shape)
    imputed = {a: (categories, index[k + 1].astype(np.int8)) for k, (a, (categories, _)) in enumerate(priors.items())}
    return Seed(records, index[0].astype(np.int32), joint.ravel()[positive], imputed)


def marital_prior(records: list[dict]) -> np.ndarray:
    """P(marital status | sex, age capped at 85) among adults, ACS PUMS 2013-2017 (plugins/data/SOURCES.md)."""
    shares: dict[tuple[str, int], np.ndarray] = {}
    for r in data.rows(MARITAL_SHARES):
        shares.setdefault((r["sex"], int(r["age"])), np.zeros(len(MARITAL)))[MARITAL.index(r["marital_status"])] = float(r["share"])
    return np.array([shares[(r["sex"], min(int(r["age"]), 85))] for r in records])


def national_shares(dimension: str) -> dict[str, float]:
    """A shipped control dimension summed over the states, as shares of the nation's adults."""
    totals: dict[str, float] = {}
    for counts in shipped_controls("adults").values():
        for category, n in counts[dimension].items():
            totals[category] = totals.get(category, 0.0) + n
    return {category: n / sum(totals.values()) for category, n in totals.items()}


def normalised(rows: np.ndarray) -> np.ndarray:
    return rows / rows.sum(axis=1, keepdims=True)


def employment_prior(records: list[dict]) -> np.ndarray:
    """P(employment | sex, age band) in the nation (B23001), times S2301's odds by education for the 25-64s."""
    national = national_shares("sex_age_employment")
    by_education: dict[str, dict[str, float]] = {}
    for r in data.rows(EMPLOYMENT_BY_EDUCATION):
        by_education.setdefault(r["education"], {})[r["employment_status"]] = float(r["share"])
    odds = {e: np.array([by_education[e].get(k, 1.0) / by_education["all"].get(k, 1.0) for k in EMPLOYMENT]) for e in EDUCATION}
    prior = []
    for r in records:
        band = age_band(int(r["age"]))
        shares = np.array([national[f"{r['sex']}|{band}|{k}"] for k in EMPLOYMENT])
        prior.append(shares * odds[r["education"]] if 25 <= int(r["age"]) <= 64 else shares)
    return normalised(np.array(prior))


def citizenship_prior(records: list[dict]) -> np.ndarray:
    """P(citizenship | sex) in the nation (B05003), tilted by the foreign-born share of the respondent's race/ethnicity."""
    national = national_shares("sex_citizenship")
    foreign_born = {r["race_ethnicity"]: float(r["foreign_born_share"]) for r in data.rows(FOREIGN_BORN_BY_RACE)}
    overall = foreign_born["all"]
    prior = []
    for r in records:
        share = foreign_born[r["race_ethnicity"]]
        tilt = np.array([(1 - share) / (1 - overall), share / overall, share / overall])
        prior.append(np.array([national[f"{r['sex']}|{c}"] for c in CITIZENSHIP]) * tilt)
    return normalised(np.array(prior))


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
        if dimension == "sex_age_employment":
            return f"{attributes['sex']}|{age_band(int(attributes['age']))}|{attributes['employment_status']}"
        if dimension == "sex_citizenship":
            return f"{attributes['sex']}|{attributes['citizenship']}"
        if dimension == "citizenship_age":
            citizen = "not a citizen" if attributes["citizenship"] == "not a citizen" else "citizen"
            return f"{citizen}|{age_band(int(attributes['age']))}"
        if dimension == "citizen_education":
            return "not a citizen" if attributes["citizenship"] == "not a citizen" else f"citizen|{attributes['education']}"
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
    def misfit(targets: np.ndarray, sums: np.ndarray) -> float:
        return float(np.max(np.abs(sums - targets) / np.maximum(targets, 1)))

    for iteration in range(1, max_iterations + 1):
        worst = 0.0  # measured on the sums each pass computes anyway: converged once no dimension needs adjusting
        for codes, targets in dimensions:
            sums = np.bincount(codes, weights=w, minlength=len(targets))
            worst = max(worst, misfit(targets, sums))
            factors = np.divide(targets, sums, out=np.zeros_like(targets), where=sums > 0)
            w *= factors[codes]
        if worst < tolerance:
            break
    error = max(misfit(t, np.bincount(codes, weights=w, minlength=len(t))) for codes, t in dimensions)
    return RakeResult(w, iteration, error, empty)


def encode(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, each row's index into them): what ``fit_state`` takes per dimension."""
    categories, codes = np.unique(values, return_inverse=True)
    return categories, codes


def combination_key(columns: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """One integer per row for its combination of codes, given each column's codes and how many values they take."""
    key = np.zeros(len(columns[0][0]), dtype=np.int64)
    for codes, size in columns:
        key = key * size + codes
    return key


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
    key = combination_key([(codes, len(targets)) for codes, targets in dimensions])
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
        return {"age", "sex", "race_ethnicity", "education", "marital_status", "employment_status", "citizenship", "family_income", "state"}

    @cached_property
    def state_codes(self) -> list[str]:
        codes = sorted(data.states()) if self.config.states == "all" else list(self.config.states)
        missing = [s for s in codes if s not in self.controls]
        if missing:
            raise ValueError(f"census sampler: the control table ({self.controls.label}) has no rows for state(s) {', '.join(missing)}")
        return codes

    @cached_property
    def citizens_only(self) -> bool:
        """Citizens of voting age are drawn from the raked adults (not raked on their own): no race target exists for them."""
        return self.config.population == "citizen_voting_age" and self.config.controls is None

    @cached_property
    def controls(self) -> Controls:
        """What the seed is raked to: the user's table, the adults', or for citizens the adults' and the citizens' education."""
        return citizen_raking_controls() if self.citizens_only else self.represented

    @cached_property
    def represented(self) -> Controls:
        """The population the personas stand for (their weights sum to it)."""
        return load_controls(self.config.population, self.config.controls)

    @cached_property
    def provenance(self) -> dict[str, str]:
        provenance = self.controls.provenance()
        if self.citizens_only:
            provenance = {a: f"{p}, citizens kept" for a, p in provenance.items()}
        return provenance

    def population(self, state: str) -> float:
        return self.represented.population(state)

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
    def seed(self) -> Seed:
        return build_seed()

    def fit(self, state: str) -> RakeResult:
        """The seed's cells raked to the state's controls (weights per cell of ``seed.cells``)."""
        try:
            result = fit_state(state, self.controls, {d: self.seed.encoded[d] for d in self.controls[state]}, self.seed.cell_weight)
        except RuntimeError as exc:
            raise RuntimeError(f"census sampler: {exc}") from None
        if self.citizens_only:
            result.weights = np.where(self.seed.cells["citizen_education"] == "not a citizen", 0.0, result.weights)
        return result

    def sample(self, rng: np.random.Generator, batch_size: int) -> Iterator[list[Persona]]:
        return batched(self.personas(rng), batch_size)

    def personas(self, rng: np.random.Generator) -> Iterator[Persona]:
        names = data.states()
        seed = self.seed
        combinations, combination = seed.statuses
        next_id = 0
        for state, n in self.allocation.items():
            fitted = self.fit(state).weights
            weights = seed.weight * np.divide(fitted, seed.cell_weight)[seed.cell]
            picks = rng.choice(len(weights), size=n, replace=True, p=weights / weights.sum())
            weight = self.population(state) / n
            name = names[state]["name"]
            for row, statuses in zip(seed.row[picks].tolist(), combination[picks].tolist()):
                attributes = {"state": name, **seed.records[row], **combinations[statuses]}
                # trusted values from the package's own tables: skip re-validation (1M personas in seconds)
                yield Persona.model_construct(ALL_FIELDS, id=next_id, stratum=state, weight=weight, attributes=attributes, provenance=dict(self.provenance))
                next_id += 1


@hookimpl
def register_samplers(register):
    register(CensusSampler)
