"""``fidelity``: how far the sampled population is from the census it claims to represent.

Per state, the total variation distance between the personas' weighted
distribution and the census controls, for every attribute's marginal (sex,
age band, race/ethnicity, education) and every two-way control table (sex x
age band); reported per table, as the per-state max and mean, and over all
states. Large values mean unrealistic populations before any model speaks.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from simrun import hookimpl
from simrun.components import Metric, MetricValue
from simrun.distributions import tvd
from simrun.plugins.samplers.census import control_category, load_controls

# table -> (control dimension, how a control cell maps to the table's category)
TABLES = {
    "sex_x_age": ("sex_age", lambda cell: cell),
    "sex": ("sex_age", lambda cell: cell.split("|")[0]),
    "age_band": ("sex_age", lambda cell: cell.split("|")[1]),
    "race_ethnicity": ("race_ethnicity", lambda cell: cell),
    "education": ("education", lambda cell: cell),
}


class FidelityMetric(Metric):
    """Total variation distance of the personas' marginals and two-way tables from the census controls, per state."""

    name = "fidelity"

    def compute(self, run) -> list[MetricValue]:
        controls = load_controls()
        sampled: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
        for persona in run.personas():
            if persona.stratum not in controls:
                continue
            for table, (dimension, collapse) in TABLES.items():
                cell = control_category(dimension, persona.attributes)
                if cell is not None:
                    sampled[persona.stratum][table][collapse(cell)] += persona.weight
        if not sampled:
            raise ValueError("fidelity metric: no persona's stratum is a state with census controls")
        values: list[MetricValue] = []
        maxima, means = [], []
        for state, tables in sorted(sampled.items()):
            distances = {}
            for table, counts in tables.items():
                dimension, collapse = TABLES[table]
                target: dict[str, float] = defaultdict(float)
                for cell, n in controls[state][dimension].items():
                    target[collapse(cell)] += n
                distances[table] = tvd(counts, target)
                values.append(MetricValue(name=f"tvd[{table}]", value=distances[table], stratum=state))
            maxima.append(max(distances.values()))
            means.append(float(np.mean(list(distances.values()))))
            values += [MetricValue(name="tvd_max", value=maxima[-1], stratum=state), MetricValue(name="tvd_mean", value=means[-1], stratum=state)]
        return [MetricValue(name="tvd_max", value=max(maxima)), MetricValue(name="tvd_mean", value=float(np.mean(means))), *values]


@hookimpl
def register_metrics(register):
    register(FidelityMetric)
