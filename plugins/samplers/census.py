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
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
from pydantic import Field, field_validator, model_validator

from simrun import hookimpl
from simrun.components import CheckContext, Problem, Sampler, StrictConfig, batched
from simrun.models import Persona
from simrun.plugins import data

CONTROLS = {"adults": "acs2018_adult_controls.csv", "citizen_voting_age": "acs2018_cvap_controls.csv"}
SEED = "gss_seed.csv"
MARITAL_SHARES = "pums_marital_by_sex_age.csv"
EMPLOYMENT_BY_EDUCATION = "s2301_employment_by_education.csv"
FOREIGN_BORN_BY_RACE = "dp02_foreign_born_by_race.csv"
INCOME_SPLIT = "gss_household_income.csv"
SEED_PROVENANCE = "(raked GSS 2018-2024 seed)"
AGE_BANDS = ((18, 29, "18-29"), (30, 44, "30-44"), (45, 64, "45-64"), (65, 200, "65+"))
SEXES = ("female", "male")
MARITAL = ("never married", "married", "separated", "widowed", "divorced")
EMPLOYMENT = ("employed", "unemployed", "not in labor force", "armed forces")
CITIZENSHIP = ("born a citizen", "naturalized citizen", "not a citizen")
EDUCATION = ("less than high school", "high school", "associate degree", "bachelor's degree", "graduate degree")
HOUSEHOLD_INCOME = (  # B19001's bands, in 2018 dollars
    "under $10,000", "$10,000 to $14,999", "$15,000 to $19,999", "$20,000 to $24,999", "$25,000 to $29,999", "$30,000 to $34,999",
    "$35,000 to $39,999", "$40,000 to $44,999", "$45,000 to $49,999", "$50,000 to $59,999", "$60,000 to $74,999",
    "$75,000 to $99,999", "$100,000 to $124,999", "$125,000 to $149,999", "$150,000 to $199,999", "$200,000 or more")
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
    "household_income": (frozenset(HOUSEHOLD_INCOME), ("household_income",)),
}
# attributes no seed here carries: imputed into it from census tables (see build_seed), then raked where controls exist
IMPUTED_PROVENANCE = {
    "marital_status": "imputed into the seed by sex x age from ACS PUMS 2013-2017",
    "employment_status": "imputed into the seed by sex x age band (B23001 ACS 2018) with education odds from S2301 ACS 2023",
    "citizenship": "imputed into the seed by sex (B05003 ACS 2018) with race/ethnicity odds from DP02/DP05 ACS 2023",
    "household_income": "the GSS respondent's family income (income16) restated in 2018 dollars by CPI-U, over B19001's bands",
}
# attributes that follow a raked one: the raked attribute, and how they follow it
SEED_DETAIL = {
    "age_band": ("age", "the band of age: 18-29, 30-44, 45-64, 65+"),
    "race": ("race_ethnicity", "race itself from the GSS respondent's racecen1; a Hispanic race answer counts as some other race"),
    "hispanic_origin": ("race_ethnicity", "Hispanic or Latino of any race, as race_ethnicity"),
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
        for attribute, (raked, how) in SEED_DETAIL.items():
            out[attribute] = f"{out[raked]} ({how})" if raked in out else f"survey:GSS 2018-2024 ({how}; not raked here)"
        return {**out, "state": f"census:{self.label} state"}


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
    """A control dimension's categories and, for each respondent (or each pair of the imputed attribute it reads), its index into them."""

    categories: np.ndarray
    codes: np.ndarray
    imputed: str | None = None


class Seed:
    """GSS respondents with their survey weights, and the attributes imputed into them as probabilities.

    Every control dimension reads a respondent's own attributes and at most
    one imputed attribute, so raking keeps each respondent's imputed
    attributes independent given the respondent: it works on the 9,000
    respondents and their pairs, never on every combination of imputed
    categories (~1,000,000 weighted rows).
    """

    def __init__(self, records: list[dict[str, object]], weight: np.ndarray, priors: dict[str, tuple[tuple[str, ...], np.ndarray]]):
        self.records, self.weight = records, weight
        self.imputed = {a: self.impute(a, categories, probabilities) for a, (categories, probabilities) in priors.items()}
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
                known[alike] = groups.setdefault(tuple(
                    (c, p, *(control_category(d, {**record, attribute: categories[c]}) for d in dimensions)) for c, p in enumerate(row) if p > 0
                ), len(groups))
            group[r] = known[alike]
        pairs = [(g, *pair) for key, g in groups.items() for pair in key]  # in group order: groups were numbered as met
        columns = list(zip(*pairs))
        pair_group = np.array(columns[0], dtype=np.intp)
        return Imputed(categories, group, pair_group, np.array(columns[1], dtype=np.intp), np.array(columns[2]),
                       np.searchsorted(pair_group, np.arange(len(groups) + 1)), {d: np.array(columns[3 + k]) for k, d in enumerate(dimensions)})

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
        """The distinct combinations of drawn imputed categories (one shared dict each), and each draw's index into them."""
        key = combination_key([(drawn[a], len(pairs.categories)) for a, pairs in self.imputed.items()])
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        return [{a: pairs.categories[drawn[a][i]] for a, pairs in self.imputed.items()} for i in first.tolist()], inverse


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
    records = [{"age": int(r["age"]), "age_band": age_band(int(r["age"])), "sex": r["sex"], "race_ethnicity": r["race_ethnicity"], "race": r["race"],
                "hispanic_origin": r["hispanic_origin"], "education": r["education"]} for r in rows]
    priors = {
        "marital_status": (MARITAL, marital_prior(rows)), "employment_status": (EMPLOYMENT, employment_prior(records)),
        "citizenship": (CITIZENSHIP, citizenship_prior(records)), "household_income": (HOUSEHOLD_INCOME, household_income_prior(rows)),
    }
    return Seed(records, np.array([float(r["weight"]) for r in rows]), priors)


def household_income_prior(rows: tuple[dict[str, str], ...]) -> np.ndarray:
    """P(B19001 band in 2018 dollars | GSS year, family income label), derived by scripts/derive_data.py (CPI-U, Pareto top)."""
    shares: dict[tuple[str, str], np.ndarray] = {}
    for r in data.rows(INCOME_SPLIT):
        shares.setdefault((r["gss_year"], r["family_income"]), np.zeros(len(HOUSEHOLD_INCOME)))[HOUSEHOLD_INCOME.index(r["household_income"])] = float(r["share"])
    return np.array([shares[(r["gss_year"], r["family_income"])] for r in rows])


def marital_prior(rows: tuple[dict[str, str], ...]) -> np.ndarray:
    """P(marital status | sex, age capped at 85) among adults, ACS PUMS 2013-2017 (plugins/data/SOURCES.md).

    A respondent who lives alone (GSS household size 1) has no spouse at home,
    so is not married; raking then gives the married share to the others.
    """
    shares: dict[tuple[str, int], np.ndarray] = {}
    for r in data.rows(MARITAL_SHARES):
        shares.setdefault((r["sex"], int(r["age"])), np.zeros(len(MARITAL)))[MARITAL.index(r["marital_status"])] = float(r["share"])
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


class Dimension(NamedTuple):
    """One set of control totals for ``rake``: each respondent's (or imputed pair's) category, and the target per category."""

    codes: np.ndarray
    targets: np.ndarray
    imputed: str | None = None


class RakeResult:
    """Raked weights in product form: a weight per respondent times, per imputed attribute, a weight per (group, category) pair.

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
        self.mass[attribute] = np.bincount(pairs.pair_group, weights=self.pair[attribute], minlength=len(pairs.start) - 1)
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
        """A category code of an imputed attribute for each drawn respondent, in proportion to its group's pair weights."""
        pairs, pair = self.imputed[attribute], self.pair[attribute]
        mass = self.mass[attribute][pairs.pair_group]
        cumulative = np.cumsum(np.divide(pair, mass, out=np.zeros_like(pair), where=mass > 0))  # each group's pairs add 1
        groups = pairs.group[respondents]
        first, last = pairs.start[groups], pairs.start[groups + 1] - 1
        before = np.where(first > 0, cumulative[first - 1], 0.0)
        point = before + rng.random(len(respondents)) * (cumulative[last] - before)
        return pairs.category[np.clip(np.searchsorted(cumulative, point, side="right"), first, last)]


def rake(seed_weights: np.ndarray, dimensions: list[Dimension], imputed: dict[str, Imputed] | None = None,
         tolerance: float = 1e-6, max_iterations: int = 200) -> RakeResult:
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
            reached = codes[(np.bincount(pairs.group, weights=present, minlength=len(pairs.start) - 1) > 0)[pairs.pair_group]]
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


def fit_state(state: str, controls: Controls, coded: dict[str, Coded], weights: np.ndarray, imputed: dict[str, Imputed] | None = None) -> RakeResult:
    """Rake ``weights`` (one per seed row) so the rows' categories per control dimension (``coded``) match the state's controls.

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
        listed = "; ".join(f"table {controls.tables[names[d][0]]}, {names[d][0]}={names[d][1][c]} ({dimensions[d].targets[c]:,.0f} people)"
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
            return [Problem("controls", f"{config.controls} has no rows for state(s) {', '.join(missing)}: list only the states it covers in states:")]
        return []

    def provides(self) -> set[str]:
        return {"age", "age_band", "sex", "race_ethnicity", "race", "hispanic_origin", "education", "marital_status", "employment_status", "citizenship",
                "household_income", "state"}

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
        """The seed raked to the state's controls (``seed.totals(fit, dimension)`` reads it)."""
        try:
            result = fit_state(state, self.controls, {d: self.seed.coded[d] for d in self.controls[state]}, self.seed.weight, self.seed.imputed)
        except RuntimeError as exc:
            raise RuntimeError(f"census sampler: {exc}") from None
        if self.citizens_only:
            result.exclude("citizenship", "not a citizen")
        return result

    def sample(self, rng: np.random.Generator, batch_size: int) -> Iterator[list[Persona]]:
        return batched(self.personas(rng), batch_size)

    def personas(self, rng: np.random.Generator) -> Iterator[Persona]:
        names = data.states()
        seed = self.seed
        next_id = 0
        for state, n in self.allocation.items():
            fit = self.fit(state)
            weights = fit.weights
            picks = rng.choice(len(weights), size=n, replace=True, p=weights / weights.sum())
            combinations, combination = seed.combinations({a: fit.draw(a, picks, rng) for a in seed.imputed})
            weight = self.population(state) / n
            name = names[state]["name"]
            for respondent, drawn in zip(picks.tolist(), combination.tolist()):
                attributes = {"state": name, **seed.records[respondent], **combinations[drawn]}
                # trusted values from the package's own tables: skip re-validation (1M personas in seconds)
                yield Persona.model_construct(ALL_FIELDS, id=next_id, stratum=state, weight=weight, attributes=attributes, provenance=dict(self.provenance))
                next_id += 1


@hookimpl
def register_samplers(register):
    register(CensusSampler)
