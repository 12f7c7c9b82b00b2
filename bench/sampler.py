"""Census sampler throughput and memory: personas across 51 strata, streamed in batches.

Prints one JSON line: seconds, personas per second, peak resident memory,
the worst relative error of the fitted weights against any control, and the
worst total variation distance of sampled marginals and control tables from
the controls at 100,000 personas per state (CA, WY, DC; target 0.01).

    python bench/sampler.py [--personas 1000000] [--batch-size 10000]
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from simrun.plugins.metrics.fidelity import FidelityMetric
from simrun.plugins.samplers.census import CensusSampler


class Sampled:
    """The run view the fidelity metric reads: just the personas."""

    def __init__(self, sampler: CensusSampler):
        self.sampler = sampler

    def personas(self):
        for batch in self.sampler.sample(np.random.default_rng(1), 10_000):
            yield from batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    args = parser.parse_args()
    sampler = CensusSampler(CensusSampler.Config(total=args.personas))
    started = time.perf_counter()
    count = 0
    for batch in sampler.sample(np.random.default_rng(0), args.batch_size):
        count += len(batch)
    seconds = time.perf_counter() - started
    worst = 0.0
    for state in sampler.allocation:
        fit = sampler.fit(state)
        for dimension, targets in sampler.controls[state].items():
            fitted = sampler.seed.totals(fit, dimension)
            worst = max([worst] + [abs(fitted.get(c, 0.0) - t) / max(t, 1.0) for c, t in targets.items()])
    peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # of the streamed million
    at_100k = CensusSampler(CensusSampler.Config(states=["CA", "WY", "DC"], per_state=100_000))
    tvd_max = next(v.value for v in FidelityMetric().compute(Sampled(at_100k)) if v.name == "tvd_max" and not v.stratum)
    print(
        json.dumps(
            {
                "personas": count,
                "strata": len(sampler.allocation),
                "seconds": round(seconds, 2),
                "personas_per_s": round(count / seconds),
                "peak_rss_mb": peak_rss_mb,
                "max_control_relative_error": worst,
                "tvd_max_at_100k_per_state": round(tvd_max, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
