"""``coverage``: how much of the real population's variety a persona set reaches.

Matching marginals does not catch a population that collapses onto a dense
centre and drops rare trait combinations. Cells are the joint categories of
sex x age band, race/ethnicity and education (``simrun.COVERAGE_DIMENSIONS``);
the population's people per cell come from the run's sampler (the census
sampler's raked seed) or from ``reference``, a sampler as ``{use: census}``,
which is how a ``library`` run (the paper's meta personas) is measured against
the census. Per state and overall: the share of cells reached, of the people
living in them, of the rarest cells' people (``tail_reached``), the effective
number of distinct profiles (exp of the entropy), the share of personas in
cells with no people, and Kish's effective sample size of the weights. For
attributes an LLM wrote (provenance ``llm:``): distinct values, their entropy
and the most common value's share, so a tier that makes every third persona a
teacher shows it. docs/coverage.md has the method.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
from pydantic import Field

from simrun import (
    COVERAGE_DIMENSIONS,
    CheckContext,
    Metric,
    MetricValue,
    Problem,
    Sampler,
    StrictConfig,
    cell_of,
    coverage_of,
    entropy,
    hookimpl,
    kish_effective_size,
)

Cell = tuple[str | None, ...]


class SamplerSpec(StrictConfig):
    """A sampler as a scenario names one: ``{use: census, with: {states: all}}``."""

    use: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")

    def as_dict(self) -> dict[str, Any]:
        return {"use": self.use, "with": self.with_}


class CoverageMetric(Metric):
    """Cells, people and rare combinations a run's personas reach; the variety of LLM-written attributes."""

    name = "coverage"

    class Config(StrictConfig):
        tail: float = Field(
            0.05, gt=0, lt=1, description="The rarest cells that together hold this share of the people."
        )
        reference: SamplerSpec | None = Field(
            None,
            description="The population as a sampler, e.g. {use: census, with: {states: all}}; default: the "
            "run's own sampler (a library run needs one).",
        )
        attributes: list[str] | None = Field(
            None, description="Attributes whose variety to report; default: every one an LLM wrote (llm: provenance)."
        )

    @classmethod
    def check(cls, config: Config, context: CheckContext) -> list[Problem]:
        """The population must be knowable before anything is simulated: a mistake here would fail the run only
        when it is scored, and a resumed run keeps its metrics."""
        spec = config.reference or SamplerSpec(
            use=context.scenario.sampler.use, **{"with": context.scenario.sampler.with_}
        )
        field = "reference" if config.reference else ""
        try:
            sampler = context.sampler(spec.use, spec.with_)
        except ValueError as exc:
            return [Problem(field, str(exc))]
        if type(sampler).population_cells is Sampler.population_cells:
            return [
                Problem(
                    field,
                    f"the {spec.use} sampler cannot tell its population's cells; "
                    "give one as reference: {use: census, with: {states: all}}",
                )
            ]
        reference = type(sampler).planned_strata(sampler.config)
        if config.reference and context.strata and reference is not None and not context.strata & reference:
            return [
                Problem(
                    field,
                    f"shares no stratum with the run ({', '.join(sorted(context.strata)[:5])}, ...): "
                    "the reference's strata must be the run's (state codes for census)",
                )
            ]
        return []

    def compute(self, run) -> list[MetricValue]:
        personas: dict[str, Counter[Cell]] = defaultdict(Counter)
        weights: dict[str, list[float]] = defaultdict(list)
        written: dict[str, Counter[str]] = defaultdict(Counter)
        for persona in run.personas():
            personas[persona.stratum][cell_of(persona.attributes)] += 1
            weights[persona.stratum].append(persona.weight)
            for key, value in persona.attributes.items():
                chosen = (
                    key in self.config.attributes
                    if self.config.attributes is not None
                    else (persona.provenance.get(key, "").startswith("llm:") and not key.startswith("_"))
                )
                if chosen:
                    written[key][str(value)] += 1
        if not personas:
            raise ValueError("coverage metric: the run has no personas")
        values: list[MetricValue] = []
        reference = self.config.reference.as_dict() if self.config.reference else None
        population = run.population_cells(COVERAGE_DIMENSIONS, reference)
        if population is None:
            raise ValueError(
                "coverage metric: the run's sampler cannot tell its population's cells; "
                "give one as reference: {use: census, with: {states: all}}"
            )
        matched = sorted(s for s in personas if s in population)
        if not matched:
            raise ValueError(
                f"coverage metric: no stratum of the run ({', '.join(sorted(personas)[:5])}) is one of the "
                f"population's ({', '.join(sorted(population)[:5])})"
            )
        everyone: Counter[Cell] = Counter()
        nation: dict[Cell, float] = defaultdict(float)
        for stratum in matched:  # overall: the matched strata's people and personas, pooled by cell
            everyone.update(personas[stratum])
            for cell, n in population[stratum].items():
                nation[cell] += n
            values.extend(self.figures(population[stratum], personas[stratum], weights[stratum], stratum))
        values.extend(self.figures(nation, everyone, [w for s in matched for w in weights[s]], ""))
        values.append(MetricValue(name="strata_without_population", value=float(len(personas) - len(matched))))
        for key, counts in sorted(written.items()):
            total = sum(counts.values())
            values += [
                MetricValue(name=f"distinct[{key}]", value=float(len(counts))),
                MetricValue(name=f"entropy[{key}]", value=entropy(np.array(list(counts.values())))),
                MetricValue(name=f"top_share[{key}]", value=counts.most_common(1)[0][1] / total),
            ]
        return values

    def figures(
        self, people: dict[Cell, float], counts: Counter[Cell], weights: list[float], stratum: str
    ) -> list[MetricValue]:
        reached = coverage_of(people, counts, self.config.tail)
        reached["effective_sample_size"] = kish_effective_size(np.array(weights))
        reached["personas"] = float(len(weights))
        return [MetricValue(name=name, value=value, stratum=stratum) for name, value in reached.items()]


@hookimpl
def register_metrics(register):
    register(CoverageMetric)
