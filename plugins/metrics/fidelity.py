"""``fidelity``: how far the sampled population is from the census it claims to represent.

Per state, the total variation distance between the personas' weighted
distribution and the census controls, for every control table (sex x age
band, race/ethnicity, education, sex x marital status, sex x age band x
employment, sex x citizenship, citizenship x age band, household income; for
citizens of voting age sex x citizenship, age band, education) and the
one-way marginals of the multi-way tables; reported per table, as the
per-state max and mean, and over all states. Large values mean unrealistic
populations before any model speaks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Literal

import numpy as np
from pydantic import Field

from simrun import (
    CheckContext,
    Metric,
    MetricValue,
    Problem,
    StrictConfig,
    control_category,
    hookimpl,
    load_controls,
    tvd,
)

# two-way control dimensions also yield their one-way marginals: dimension -> [(table name, collapse)]
TABLES = {
    "sex_age": [
        ("sex_x_age", lambda cell: cell),
        ("sex", lambda cell: cell.split("|")[0]),
        ("age_band", lambda cell: cell.split("|")[1]),
    ],
    "sex_marital": [("sex_x_marital_status", lambda cell: cell), ("marital_status", lambda cell: cell.split("|")[1])],
    "sex_age_employment": [
        ("sex_x_age_x_employment_status", lambda cell: cell),
        ("employment_status", lambda cell: cell.split("|")[2]),
    ],
    "sex_citizenship": [("sex_x_citizenship", lambda cell: cell), ("citizenship", lambda cell: cell.split("|")[1])],
    "citizenship_age": [("citizen_x_age_band", lambda cell: cell)],
}


def tables(dimension: str) -> list[tuple[str, Callable[[str], str]]]:
    return TABLES.get(dimension, [(dimension, lambda cell: cell)])


class FidelityMetric(Metric):
    """Total variation distance of the personas' marginals and two-way tables from the census controls, per state."""

    name = "fidelity"

    class Config(StrictConfig):
        population: Literal["adults", "citizen_voting_age"] = Field("adults", description="As the census sampler's.")
        controls: str | None = Field(None, description="As the census sampler's: your own control table.")

    @classmethod
    def check(cls, config: Config, context: CheckContext) -> list[Problem]:
        controls = load_controls(config.population, config.controls)  # a bad file is named here, line by line
        if context.strata is not None and not context.strata & controls.keys():
            return [
                Problem(
                    "controls" if config.controls else "", "no state with census controls among the sampler's strata"
                )
            ]
        return []

    def compute(self, run) -> list[MetricValue]:
        controls = load_controls(self.config.population, self.config.controls)
        sampled: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
        for persona in run.personas():
            if persona.stratum not in controls:
                continue
            for dimension in controls[persona.stratum]:
                cell = control_category(dimension, persona.attributes)
                if cell is not None:
                    for table, collapse in tables(dimension):
                        sampled[persona.stratum][table][collapse(cell)] += persona.weight
        if not sampled:
            raise ValueError("fidelity metric: no persona's stratum is a state with census controls")
        values: list[MetricValue] = []
        maxima, means = [], []
        for state, by_table in sorted(sampled.items()):
            distances = {}
            targets: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
            for dimension, cells in controls[state].items():
                for table, collapse in tables(dimension):
                    for cell, n in cells.items():
                        targets[table][collapse(cell)] += n
            for table, counts in by_table.items():
                target = targets[table]
                distances[table] = tvd(counts, target)
                values.append(MetricValue(name=f"tvd[{table}]", value=distances[table], stratum=state))
            maxima.append(max(distances.values()))
            means.append(float(np.mean(list(distances.values()))))
            values += [
                MetricValue(name="tvd_max", value=maxima[-1], stratum=state),
                MetricValue(name="tvd_mean", value=means[-1], stratum=state),
            ]
        return [
            MetricValue(name="tvd_max", value=max(maxima)),
            MetricValue(name="tvd_mean", value=float(np.mean(means))),
            *values,
        ]


@hookimpl
def register_metrics(register):
    register(FidelityMetric)
