"""Coverage of the population's trait combinations: census proportional vs design: coverage, and the paper's personas.

At 1,000 personas per state, for the census sampler's two designs and for the
seed paper's 50,000 meta personas (the library sampler on their file, recoded
as scenarios/meta-personas.yaml does), each measured against the census
population (the raked seed's people per sex x age x race/ethnicity x education
cell): the share of each state's populated cells reached, of its people, of its
rarest cells' people (5% of adults), the effective number of profiles, the
share of personas in cells with no people, and Kish's effective sample size,
averaged over the states; and the cells reached nationally. Prints one JSON line.

    python bench/coverage.py [--per-state 1000]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import yaml

from simrun import COVERAGE_DIMENSIONS
from simrun.plugins.metrics.coverage import CoverageMetric
from simrun.plugins.samplers.census import CensusSampler
from simrun.plugins.samplers.library import LibrarySampler

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ("cells_reached", "population_reached", "tail_reached", "effective_profiles", "outside")


class Drawn:
    """What the coverage metric reads: the personas, and the census population's cells."""

    def __init__(self, personas: list, cells: dict):
        self._personas, self.cells = personas, cells

    def personas(self):
        return iter(self._personas)

    def population_cells(self, dimensions, reference=None):
        return self.cells


def figures(personas: list, cells: dict) -> dict[str, float]:
    values = CoverageMetric(CoverageMetric.Config()).compute(Drawn(personas, cells))
    by_state = [v for v in values if v.stratum]
    out = {name: round(float(np.mean([v.value for v in by_state if v.name == name])), 4) for name in FIGURES}
    out["effective_sample_size_per_state"] = round(
        float(np.mean([v.value for v in by_state if v.name == "effective_sample_size"])), 1
    )
    out["cells_reached_nationally"] = next(v.value for v in values if not v.stratum and v.name == "cells_reached")
    return out


def drawn(sampler) -> list:
    return [p for batch in sampler.sample(np.random.default_rng(0), 10_000) for p in batch]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-state", type=int, default=1000)
    args = parser.parse_args()
    started = time.perf_counter()
    census = CensusSampler(CensusSampler.Config(states="all", per_state=args.per_state))
    cells = census.population_cells(COVERAGE_DIMENSIONS)
    result: dict[str, object] = {
        "per_state": args.per_state,
        "cells_per_state": round(float(np.mean([sum(1 for n in c.values() if n > 0) for c in cells.values()])), 1),
    }
    for design in ("proportional", "coverage"):
        sampler = CensusSampler(CensusSampler.Config(states="all", per_state=args.per_state, design=design))
        result[f"census_{design}"] = figures(drawn(sampler), cells)
    scenario = yaml.safe_load((ROOT / "scenarios" / "meta-personas.yaml").read_text())
    config = {**scenario["sampler"]["with"], "per_stratum": None}
    config["path"] = str((ROOT / config["path"]).resolve())
    result["paper_meta_personas"] = figures(drawn(LibrarySampler(LibrarySampler.Config(**config))), cells)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
