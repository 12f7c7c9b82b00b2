"""The census sampler's seed: real GSS 2018-2024 respondents, with what the GSS extract lacks imputed into them.

Not a plugin: the ``census`` sampler (``census.py``) rakes this seed to each state's census controls. Marital status,
employment and citizenship are imputed fractionally from census tables (weights split, not drawn), household
income restated from each respondent's own family income (``build_seed``); each attribute's provenance says which.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from simrun import (
    CITIZENSHIP,
    DIMENSIONS,
    EDUCATION,
    EMPLOYMENT,
    HOUSEHOLD_INCOME,
    MARITAL,
    Coded,
    Controls,
    Imputed,
    RakeResult,
    age_band,
    combination_key,
    control_category,
    data,
    encode,
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
