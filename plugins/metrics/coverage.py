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
    Metric,
    MetricValue,
    StrictConfig,
    cell_of,
    coverage_of,
    entropy,
    hookimpl,
    kish_effective_size,
)

Cell = tuple[str | None, ...]


class CoverageMetric(Metric):
    """Cells, people and rare combinations a run's personas reach; the variety of LLM-written attributes."""

    name = "coverage"

    class Config(StrictConfig):
        tail: float = Field(
            0.05, gt=0, lt=1, description="The rarest cells that together hold this share of the people."
        )
        reference: dict[str, Any] | None = Field(
            None,
            description="The population as a sampler, e.g. {use: census, with: {states: all}}; default: the "
            "run's own sampler (a library run needs one).",
        )
        attributes: list[str] | None = Field(
            None, description="Attributes whose variety to report; default: every one an LLM wrote (llm: provenance)."
        )

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
        population = run.population_cells(COVERAGE_DIMENSIONS, self.config.reference)
        if population is None:
            raise ValueError(
                "coverage metric: the run's sampler cannot tell its population's cells; "
                "give one as reference: {use: census, with: {states: all}}"
            )
        everyone: Counter[Cell] = Counter()
        nation: dict[Cell, float] = defaultdict(float)
        for stratum, counts in sorted(personas.items()):
            everyone.update(counts)
            people = population.get(stratum)
            if people is None:
                continue
            for cell, n in people.items():
                nation[cell] += n
            values.extend(self.figures(people, counts, weights[stratum], stratum))
        all_weights = [w for ws in weights.values() for w in ws]
        values.extend(self.figures(nation, everyone, all_weights, ""))
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
