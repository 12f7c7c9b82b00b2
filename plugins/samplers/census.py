"""``census``: adult personas per state, with a realistic joint distribution.

Marginals alone would pair attributes independently. Instead, real General
Social Survey respondents (2018-2024, with their survey weights) form a seed
whose attributes co-occur as they do in life; marital status, employment and
citizenship, which the GSS extract lacks, are imputed into it fractionally
from census tables, and household income is each respondent's family income
in 2018 dollars (``census_seed.build_seed``). For each state the seed is raked (iterative
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
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from simrun import (
    CheckContext,
    Controls,
    Persona,
    Problem,
    RakeResult,
    Sampler,
    SharedProvenance,
    StrictConfig,
    batched,
    cell_of,
    data,
    draw_by_design,
    fit_state,
    hookimpl,
    load_controls,
    shipped_controls,
)

from .census_seed import Seed, build_seed, control_provenance


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

    @cached_property
    def records_with_state(self) -> list[dict[str, Any]]:
        """Each seed respondent's attributes after a ``state`` (to be filled in): the order of a persona's prompt."""
        return [{"state": None, **record} for record in self.seed.records]

    def sample(self, rng: np.random.Generator, batch_size: int) -> Iterator[list[Persona]]:
        return batched(self.personas(rng), batch_size)

    def personas(self, rng: np.random.Generator) -> Iterator[Persona]:
        names = data.states()
        seed = self.seed
        records, trusted = self.records_with_state, Persona.trusted
        provenance = SharedProvenance(self.provenance)
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
                attributes = records[respondent].copy()  # a copy is quicker than a dict built key by key
                attributes["state"] = name
                attributes.update(combinations[drawn])
                # trusted values from the package's own tables: not validated again (1M personas in seconds)
                yield trusted(next_id, state, weight, attributes, provenance)
                next_id += 1


@hookimpl
def register_samplers(register):
    register(CensusSampler)
