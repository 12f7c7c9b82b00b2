"""``survey``: political and religious attributes from real survey respondents, not from a model.

A weighted hot-deck: each persona takes the answers of a real General Social
Survey respondent (2018-2024) drawn, with probability proportional to the
survey weight, from the people who share its age band, sex, race/ethnicity,
education and census region. Where fewer than ``min_donors`` respondents
share the whole cell, the most specific trait is dropped, then the next, so
the structure kept is always what the data can support. Party and ideology
are given on Pew's scales (so the opinion metric can group by them) beside
the GSS's own labels.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cached_property

import numpy as np
from pydantic import Field

from simrun import EnrichContext, Enricher, Persona, StrictConfig, age_band, data, hookimpl

SOURCE = "survey:GSS 2018-2024 (weighted hot-deck by age band, sex, race/ethnicity, education, region)"
PARTY = {
    "strong democrat": "Democrat",
    "not very strong democrat": "Democrat",
    "strong republican": "Republican",
    "not very strong republican": "Republican",
    "independent, close to democrat": "Independent",
    "independent (neither, no response)": "Independent",
    "independent, close to republican": "Independent",
    "other party": "Other",
}
IDEOLOGY = {
    "extremely liberal": "Very liberal",
    "liberal": "Liberal",
    "slightly liberal": "Liberal",
    "moderate, middle of the road": "Moderate",
    "slightly conservative": "Conservative",
    "conservative": "Conservative",
    "extremely conservative": "Very conservative",
}
# The cell, most specific trait last: it is the first dropped when donors are few.
TRAITS = ("race_ethnicity", "education", "age_band", "sex", "census_region")


def traits(attributes: dict) -> tuple:
    return tuple(age_band(int(attributes["age"])) if t == "age_band" else attributes.get(t) for t in TRAITS)


class SurveyEnricher(Enricher):
    """Party, ideology and religion from real GSS respondents like the persona (weighted hot-deck)."""

    name = "survey"
    needs = frozenset({"age", "sex", "race_ethnicity", "education"})
    uses = frozenset({"census_region"})
    provides = frozenset({"party", "party_id", "ideology", "religion"})

    class Config(StrictConfig):
        min_donors: int = Field(
            10, ge=1, description="Fewest respondents a cell needs before a trait is dropped from it."
        )

    @cached_property
    def donors(self) -> tuple[list[dict], np.ndarray, list[dict[tuple, np.ndarray]]]:
        """The respondents, their weights, and for each level of detail the cell -> respondents index."""
        rows = data.rows("gss_seed.csv")
        weights = np.array([float(r["weight"]) for r in rows])
        keys = [traits(r) for r in rows]
        levels = []
        for depth in range(len(TRAITS), -1, -1):
            cells: dict[tuple, list[int]] = defaultdict(list)
            for i, key in enumerate(keys):
                cells[key[:depth]].append(i)
            levels.append({k: np.array(v) for k, v in cells.items()})
        return list(rows), weights, levels

    def donor_pool(self, attributes: dict) -> np.ndarray:
        key = traits(attributes)
        _, _, levels = self.donors
        for level in levels:
            depth = len(next(iter(level)))
            pool = level.get(key[:depth])
            if pool is not None and len(pool) >= self.config.min_donors:
                return pool
        return levels[-1][()]

    def enrich(self, batch: list[Persona], context: EnrichContext) -> list[Persona]:
        rows, weights, _ = self.donors
        rng = np.random.default_rng(context.seed)
        for persona in batch:
            pool = self.donor_pool(persona.attributes)
            donor = rows[rng.choice(pool, p=weights[pool] / weights[pool].sum())]
            persona.set("party", PARTY[donor["partyid"]], SOURCE)
            persona.set("party_id", donor["partyid"], SOURCE)
            persona.set("ideology", IDEOLOGY[donor["polviews"]], SOURCE)
            persona.set("religion", donor["relig"], SOURCE)
        return batch


@hookimpl
def register_enrichers(register):
    register(SurveyEnricher)
