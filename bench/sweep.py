"""What a sweep costs against running its variants one by one.

A V-variant attribute sweep over census personas (shared, one store) against V
independent runs of the same variant scenarios (each sampling its own
personas, each in a fresh store). The simulator is the example plugin's
instant one with a fixed delay per prompt standing in for a model, so the
ratio shows simrun's own overhead around the simulate step. Prints one JSON line.

    python bench/sweep.py [--personas 2000] [--delay-ms 0.2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from simrun.engine import Engine
from simrun.registry import load_registry
from simrun.scenario import load_scenario
from simrun.store import Store
from simrun.sweep import plan_sweep, run_sweep

EXAMPLE = Path(__file__).resolve().parent.parent / "tests" / "example_plugin"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=int, default=2000)
    parser.add_argument("--delay-ms", type=float, default=0.2)
    args = parser.parse_args()
    registry = load_registry(EXAMPLE)
    overrides = [
        f"sampler={{use: census, with: {{total: {args.personas}}}}}",
        "enrichers=[]",
        "batch_size=256",
        f"simulator.with.delay_s={args.delay_ms / 1000}",
        "ablation.with.attributes=[age, sex, education]",
    ]
    loaded = load_scenario(EXAMPLE / "towns_sweep.yaml", registry, overrides)
    variants = plan_sweep(loaded, registry)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "sweep.db")
        started = time.perf_counter()
        run_sweep(loaded, registry, store, Engine(registry, store))
        sweep_s = time.perf_counter() - started
        independent_s = 0.0
        for i, (_, variant) in enumerate(variants):
            own = Store(Path(tmp) / f"alone{i}.db")
            started = time.perf_counter()
            Engine(registry, own).run(variant)
            independent_s += time.perf_counter() - started
    prompts = args.personas * len(variants)
    print(
        json.dumps(
            {
                "sweep_to_independent_ratio": round(sweep_s / independent_s, 3),
                "variants": len(variants),
                "sweep_s": round(sweep_s, 2),
                "independent_s": round(independent_s, 2),
                "model_delay_s": round(prompts * args.delay_ms / 1000, 2),
                "personas_per_variant": args.personas,
            }
        )
    )


if __name__ == "__main__":
    main()
