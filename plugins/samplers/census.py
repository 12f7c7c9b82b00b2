"""``census``: adult personas per state, with a realistic joint distribution.

Marginals alone would pair attributes independently. Instead, real General
Social Survey respondents (2018-2024, with their survey weights) form a seed
whose attributes co-occur as they do in life; marital status, employment and
citizenship, which the GSS extract lacks, are imputed into it fractionally
from census tables, and household income is each respondent's family income
in 2018 dollars (``build_seed``). For each state the seed is raked (iterative
proportional fitting) to that state's ACS 2018 controls: sex x age band,
race/ethnicity, education, sex x marital status, sex x age band x employment,
sex x citizenship, citizenship x age band and household income. Personas are
drawn in proportion to the raked weights. ``population: citizen_voting_age`` keeps
the citizens of the raked adults. ``controls:`` takes a user's own table in
the same long format; every bad line or inconsistency in it is named (file,
line, table, state, cell). docs/census-sampler.md has the method and sources.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache, cached_property
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from simrun import (
    CITIZENSHIP,
    DIMENSIONS,
    EDUCATION,
    EMPLOYMENT,
    HOUSEHOLD_INCOME,
    MARITAL,
    CheckContext,
    Coded,
    Controls,
    Imputed,
    Persona,
    Problem,
    RakeResult,
    Sampler,
    StrictConfig,
    age_band,
    batched,
    cell_of,
    combination_key,
    control_category,
    data,
    draw_by_design,
    encode,
    fit_state,
    hookimpl,
    load_controls,
    shipped_controls,
)

SEED = "gss_seed.csv"
MARITAL_SHARES = "pums_marital_by_sex_age.csv"
EMPLOYMENT_BY_EDUCATION = "s2301_employment_by_education.csv"
FOREIGN_BORN_BY_RACE = "dp02_foreign_born_by_race.csv"
INCOME_SPLIT = "gss_household_income.csv"
SEED_PROVENANCE = "(raked GSS 2018-2024 seed)"
# attributes no seed here carries: imputed into it from census tables (see build_seed), then raked where controls exist
IMPUTED_PROVENANCE = {
    "marital_status": "imputed into the seed by sex x age from ACS PUMS 2013-2017",
    "employment_status": (
        "imputed into the seed by sex x age band (B23001 ACS 2018) with education odds from S2301 ACS 2023"
    ),
    "citizenship": "imputed into the seed by sex (B05003 ACS 2018) with race/ethnicity odds from DP02/DP05 ACS 2023",
    "household_income": (
        "the GSS respondent's family income (income16) restated in 2018 dollars by CPI-U, over B19001's bands"
    ),
}
# attributes that follow a raked one: the raked attribute, and how they follow it
SEED_DETAIL = {
    "age_band": ("age", "the band of age: 18-29, 30-44, 45-64, 65+"),
    "race": (
        "race_ethnicity",
        "race itself from the GSS respondent's racecen1; a Hispanic race answer counts as some other race",
    ),
    "hispanic_origin": ("race_ethnicity", "Hispanic or Latino of any race, as race_ethnicity"),
}
ALL_FIELDS = set(Persona.model_fields)  # model_construct is faster told every field is set


def control_provenance(controls: Controls) -> dict[str, str]:
    """Each attribute's provenance: the tables it is raked to, and how the seed or an imputation gives it."""
    by_attribute: dict[str, list[str]] = {}
    for dimension, table in controls.tables.items():
        for attribute in DIMENSIONS[dimension][1]:
            by_attribute.setdefault(attribute, []).append(table)
    out = {
        a: f"census:{','.join(dict.fromkeys(t))} {controls.label} {SEED_PROVENANCE}" for a, t in by_attribute.items()
    }
    for attribute, how in IMPUTED_PROVENANCE.items():
        out[attribute] = f"{out[attribute]} ({how})" if attribute in out else f"census:{how}; not raked here"
    for attribute, (raked, how) in SEED_DETAIL.items():
        out[attribute] = f"{out[raked]} ({how})" if raked in out else f"survey:GSS 2018-2024 ({how}; not raked here)"
    return {**out, "state": f"census:{controls.label} state"}


class Seed:
    """GSS respondents with their survey weights, and the attributes imputed into them as probabilities.

    Every control dimension reads a respondent's own attributes and at most
    one imputed attribute, so raking keeps each respondent's imputed
    attributes independent given the respondent: it works on the 9,000
    respondents and their pairs, never on every combination of imputed
    categories (~1,000,000 weighted rows).
    """

    def __init__(
        self,
        records: list[dict[str, object]],
        weight: np.ndarray,
        priors: dict[str, tuple[tuple[str, ...], np.ndarray]],
    ):
        self.records, self.weight = records, weight
        self.imputed = {
            a: self.impute(a, categories, probabilities) for a, (categories, probabilities) in priors.items()
        }
        self.coded = {d: self.code(d) for d in DIMENSIONS}

    def impute(self, attribute: str, categories: tuple[str, ...], probabilities: np.ndarray) -> Imputed:
        """Group the respondents for one imputed attribute (respondents x categories probabilities; 0 = impossible)."""
        dimensions = [d for d, (_, reads) in DIMENSIONS.items() if attribute in reads]
        groups: dict[tuple, int] = {}
        known: dict[tuple, int] = {}  # respondents alike in every attribute and probability need no new cells
        group = np.empty(len(self.records), dtype=np.intp)
        for r, (record, row) in enumerate(zip(self.records, probabilities.tolist())):
            alike = (*record.values(), *row)
            if alike not in known:
                known[alike] = groups.setdefault(
                    tuple(
                        (c, p, *(control_category(d, {**record, attribute: categories[c]}) for d in dimensions))
                        for c, p in enumerate(row)
                        if p > 0
                    ),
                    len(groups),
                )
            group[r] = known[alike]
        pairs = [(g, *pair) for key, g in groups.items() for pair in key]  # in group order: groups were numbered as met
        columns = list(zip(*pairs))
        pair_group = np.array(columns[0], dtype=np.intp)
        return Imputed(
            categories,
            group,
            pair_group,
            np.array(columns[1], dtype=np.intp),
            np.array(columns[2]),
            np.searchsorted(pair_group, np.arange(len(groups) + 1)),
            {d: np.array(columns[3 + k]) for k, d in enumerate(dimensions)},
        )

    def code(self, dimension: str) -> Coded:
        """Each respondent's (or imputed pair's) category in a control dimension."""
        reads = [a for a in DIMENSIONS[dimension][1] if a in self.imputed]
        if not reads:
            cells: dict[tuple, str | None] = {}
            for record in self.records:
                alike = tuple(record.values())
                if alike not in cells:
                    cells[alike] = control_category(dimension, record)
            return encode(np.array([cells[tuple(r.values())] for r in self.records]))
        [attribute] = reads  # the product form rake relies on: never two imputed attributes in one dimension
        return encode(self.imputed[attribute].cells[dimension])._replace(imputed=attribute)

    def totals(self, fit: RakeResult, dimension: str) -> dict[str, float]:
        """People per category of a control dimension in a fitted state (``CensusSampler.fit``)."""
        categories, codes, imputed = self.coded[dimension]
        return dict(zip(categories.tolist(), fit.sums(codes, imputed, len(categories)).tolist()))

    def combinations(self, drawn: dict[str, np.ndarray]) -> tuple[list[dict[str, str]], np.ndarray]:
        """The distinct combinations of drawn imputed categories (one shared dict each), and each draw's index into
        them.
        """
        key = combination_key([(drawn[a], len(pairs.categories)) for a, pairs in self.imputed.items()])
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        return [
            {a: pairs.categories[drawn[a][i]] for a, pairs in self.imputed.items()} for i in first.tolist()
        ], inverse


@cache
def citizen_raking_controls() -> Controls:
    """Adults' controls plus education of citizens 18+ (B29002; non-citizens one cell): raked, then the citizens kept.

    Race is the reason: no table crosses it with citizenship, but the adults'
    race controls and the seed's race x citizenship association together give
    citizens a realistic mix, which scaling the adults' mix would not.
    """
    adults, citizens = shipped_controls("adults"), shipped_controls("citizen_voting_age")
    counts = {
        state: {
            **dimensions,
            "citizen_education": {
                **{f"citizen|{e}": n for e, n in citizens[state]["education_18plus"].items()},
                "not a citizen": adults.population(state) - citizens.population(state),
            },
        }
        for state, dimensions in adults.items()
    }
    return Controls(counts, {**adults.tables, "citizen_education": citizens.tables["education_18plus"]}, adults.label)


@cache
def build_seed() -> Seed:
    """GSS 2018-2024 respondents with marital status, employment, citizenship and household income imputed.

    The GSS extract lacks the first three, so each respondent gets a
    probability per category from census tables (weights split, not drawn):
    marital status by sex x single age (ACS PUMS); employment by sex x age band
    (national B23001), tilted by education with S2301's odds for ages 25-64;
    citizenship by sex (national B05003), tilted by race/ethnicity with the
    foreign-born share per group (DP02 world region of birth over DP05). Household
    income is the respondent's own family income, restated in 2018 dollars and
    spread over B19001's bands (``gss_household_income.csv``). Each state's
    raking then fixes the margins its controls give (B12001, B23001, B05003,
    B29001, B19001); the associations with education, race and the rest come
    from the seed, as a seed's associations should.
    """
    rows = data.rows(SEED)
    records = [
        {
            "age": int(r["age"]),
            "age_band": age_band(int(r["age"])),
            "sex": r["sex"],
            "race_ethnicity": r["race_ethnicity"],
            "race": r["race"],
            "hispanic_origin": r["hispanic_origin"],
            "education": r["education"],
        }
        for r in rows
    ]
    priors = {
        "marital_status": (MARITAL, marital_prior(rows)),
        "employment_status": (EMPLOYMENT, employment_prior(records)),
        "citizenship": (CITIZENSHIP, citizenship_prior(records)),
        "household_income": (HOUSEHOLD_INCOME, household_income_prior(rows)),
    }
    return Seed(records, np.array([float(r["weight"]) for r in rows]), priors)


def household_income_prior(rows: tuple[dict[str, str], ...]) -> np.ndarray:
    """P(B19001 band in 2018 dollars | GSS year, family income label), derived by scripts/derive_data.py
    (CPI-U, Pareto top).
    """
    shares: dict[tuple[str, str], np.ndarray] = {}
    for r in data.rows(INCOME_SPLIT):
        shares.setdefault((r["gss_year"], r["family_income"]), np.zeros(len(HOUSEHOLD_INCOME)))[
            HOUSEHOLD_INCOME.index(r["household_income"])
        ] = float(r["share"])
    return np.array([shares[(r["gss_year"], r["family_income"])] for r in rows])


def marital_prior(rows: tuple[dict[str, str], ...]) -> np.ndarray:
    """P(marital status | sex, age capped at 85) among adults, ACS PUMS 2013-2017 (core/data/SOURCES.md).

    A respondent who lives alone (GSS household size 1) has no spouse at home,
    so is not married; raking then gives the married share to the others.
    """
    shares: dict[tuple[str, int], np.ndarray] = {}
    for r in data.rows(MARITAL_SHARES):
        shares.setdefault((r["sex"], int(r["age"])), np.zeros(len(MARITAL)))[MARITAL.index(r["marital_status"])] = (
            float(r["share"])
        )
    prior = np.array([shares[(r["sex"], min(int(r["age"]), 85))] for r in rows])
    prior[[r["lives_alone"] == "yes" for r in rows], MARITAL.index("married")] = 0.0
    return normalised(prior)


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
    odds = {
        e: np.array([by_education[e].get(k, 1.0) / by_education["all"].get(k, 1.0) for k in EMPLOYMENT])
        for e in EDUCATION
    }
    prior = []
    for r in records:
        band = age_band(int(r["age"]))
        shares = np.array([national[f"{r['sex']}|{band}|{k}"] for k in EMPLOYMENT])
        prior.append(shares * odds[r["education"]] if 25 <= int(r["age"]) <= 64 else shares)
    return normalised(np.array(prior))


def citizenship_prior(records: list[dict]) -> np.ndarray:
    """P(citizenship | sex) in the nation (B05003), tilted by the foreign-born share of the respondent's
    race/ethnicity.
    """
    national = national_shares("sex_citizenship")
    foreign_born = {r["race_ethnicity"]: float(r["foreign_born_share"]) for r in data.rows(FOREIGN_BORN_BY_RACE)}
    overall = foreign_born["all"]
    prior = []
    for r in records:
        share = foreign_born[r["race_ethnicity"]]
        tilt = np.array([(1 - share) / (1 - overall), share / overall, share / overall])
        prior.append(np.array([national[f"{r['sex']}|{c}"] for c in CITIZENSHIP]) * tilt)
    return normalised(np.array(prior))


class CensusSampler(Sampler):
    """Adults per state from real ACS 2018 controls, raked onto real GSS respondents."""

    name = "census"

    class Config(StrictConfig):
        states: Literal["all"] | list[str] = Field(
            "all", description="'all' (50 states and DC) or postal codes, e.g. [CA, TX]"
        )
        per_state: int | None = Field(20, ge=1, description="Personas per state (ignored when total is set).")
        total: int | None = Field(None, ge=1, description="Personas in all, allocated in proportion to the population.")
        population: Literal["adults", "citizen_voting_age"] = Field(
            "adults", description="Whom the personas represent: all adults 18+, or citizens 18+."
        )
        controls: str | None = Field(
            None,
            description="Your own control table (state, table, dimension, category, count); overrides population's.",
        )
        design: Literal["proportional", "coverage"] = Field(
            "proportional",
            description="proportional: personas in proportion to the population. coverage: every sex x age x "
            "race/ethnicity x education cell gets `floor` personas when per_state allows, the rest go by the square "
            "root of each cell's people, and design weights undo it (docs/coverage.md).",
        )
        floor: int = Field(
            1, ge=0, description="With design: coverage, the personas each cell gets at least (as per_state allows)."
        )

        @field_validator("states")
        @classmethod
        def _known_states(cls, value: Literal["all"] | list[str]) -> Literal["all"] | list[str]:
            if value == "all":
                return value
            if not value:
                raise ValueError("no states: list postal codes, e.g. [CA, TX], or use 'all'")
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

        @field_validator("controls")
        @classmethod
        def _readable(cls, value: str | None) -> str | None:
            if value is not None:  # read (and checked line by line) now, not after the run has started
                load_controls(file=value)
            return value

    @classmethod
    def planned_strata(cls, config: Config) -> frozenset[str]:
        return frozenset(data.states() if config.states == "all" else config.states)

    @classmethod
    def check(cls, config: Config, context: CheckContext) -> list[Problem]:
        if config.controls is None:
            return []
        missing = sorted(cls.planned_strata(config) - load_controls(file=config.controls).keys())
        if missing:
            return [
                Problem(
                    "controls",
                    f"{config.controls} has no rows for state(s) {', '.join(missing)}: "
                    "list only the states it covers in states:",
                )
            ]
        return []

    def provides(self) -> set[str]:
        return {
            "age",
            "age_band",
            "sex",
            "race_ethnicity",
            "race",
            "hispanic_origin",
            "education",
            "marital_status",
            "employment_status",
            "citizenship",
            "household_income",
            "state",
        }

    @cached_property
    def state_codes(self) -> list[str]:
        codes = sorted(data.states()) if self.config.states == "all" else list(self.config.states)
        missing = [s for s in codes if s not in self.controls]
        if missing:
            raise ValueError(
                f"census sampler: the control table ({self.controls.label}) "
                f"has no rows for state(s) {', '.join(missing)}"
            )
        return codes

    @cached_property
    def citizens_only(self) -> bool:
        """Citizens of voting age are drawn from the raked adults (not raked on their own): no race target exists for
        them.
        """
        return self.config.population == "citizen_voting_age" and self.config.controls is None

    @cached_property
    def controls(self) -> Controls:
        """What the seed is raked to: the user's table, the adults', or for citizens the adults' and the citizens'
        education.
        """
        return citizen_raking_controls() if self.citizens_only else self.represented

    @cached_property
    def represented(self) -> Controls:
        """The population the personas stand for (their weights sum to it)."""
        return load_controls(self.config.population, self.config.controls)

    @cached_property
    def provenance(self) -> dict[str, str]:
        provenance = control_provenance(self.controls)
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
        """The seed raked to the state's controls (``seed.totals(fit, dimension)`` reads it)."""
        try:
            result = fit_state(
                state,
                self.controls,
                {d: self.seed.coded[d] for d in self.controls[state]},
                self.seed.weight,
                self.seed.imputed,
            )
        except RuntimeError as exc:
            raise RuntimeError(f"census sampler: {exc}") from None
        if self.citizens_only:
            result.exclude("citizenship", "not a citizen")
        return result

    @cached_property
    def seed_cells(self) -> np.ndarray:
        """Each seed respondent's coverage cell, as a code (cells are the seed's own attributes: never imputed)."""
        codes: dict[tuple, int] = {}
        return np.array([codes.setdefault(cell_of(r), len(codes)) for r in self.seed.records])

    def population_cells(self, dimensions: tuple[str, ...]) -> dict[str, dict[tuple[str | None, ...], float]]:
        """People per cell in each state: the raked seed's weights summed by cell, scaled to the represented."""
        cells = [cell_of(r, dimensions) for r in self.seed.records]
        out = {}
        for state in self.allocation:
            weights = self.fit(state).weights
            scale = self.population(state) / weights.sum()
            people: dict[tuple[str | None, ...], float] = {}
            for cell, w in zip(cells, weights.tolist()):
                people[cell] = people.get(cell, 0.0) + w * scale
            out[state] = people
        return out

    def sample(self, rng: np.random.Generator, batch_size: int) -> Iterator[list[Persona]]:
        return batched(self.personas(rng), batch_size)

    def personas(self, rng: np.random.Generator) -> Iterator[Persona]:
        names = data.states()
        seed = self.seed
        next_id = 0
        for state, n in self.allocation.items():
            fit = self.fit(state)
            picks, share = draw_by_design(fit.weights, self.seed_cells, n, rng, self.config.design, self.config.floor)
            combinations, combination = seed.combinations({a: fit.draw(a, picks, rng) for a in seed.imputed})
            population = self.population(state)
            # proportional: population / n exactly, as before designs existed (same seed, same weights)
            weights = [population / n] * n if self.config.design == "proportional" else (population * share).tolist()
            name = names[state]["name"]
            for respondent, drawn, weight in zip(picks.tolist(), combination.tolist(), weights):
                attributes = {"state": name, **seed.records[respondent], **combinations[drawn]}
                # trusted values from the package's own tables: skip re-validation (1M personas in seconds)
                yield Persona.model_construct(
                    ALL_FIELDS,
                    id=next_id,
                    stratum=state,
                    weight=weight,
                    attributes=attributes,
                    provenance=dict(self.provenance),
                )
                next_id += 1


@hookimpl
def register_samplers(register):
    register(CensusSampler)
