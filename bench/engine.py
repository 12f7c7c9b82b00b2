"""Engine overhead per persona x question, with SQLite logging on.

Uses the example plugin's instant simulator (a hash, no model), so what is
measured is simrun itself: sampling, prompt rendering, cache look-ups and
writes, batch commits, aggregation and metrics. Prints one JSON line.

Two populations: the towns sampler's own, whose 144 kinds of persona repeat, so
after the first batches nearly every prompt is a cache hit (the engine's CPU
cost), and ``distinct``, where each persona has a house number and every prompt
is new, as in a real run (each reply then also lands in the cache).

    python bench/engine.py [--personas 20000] [--questions 5]
    python bench/engine.py --sizes 2000,20000,200000   # each in its own process: is the cost flat in N?
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simrun.engine import Engine
from simrun.registry import load_registry
from simrun.scenario import load_scenario
from simrun.store import Store

EXAMPLE = Path(__file__).resolve().parent.parent / "tests" / "example_plugin"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=int, default=20000)
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--sizes", help="Persona counts to measure one after another, each in a fresh process.")
    args = parser.parse_args()
    if args.sizes:
        runs = [
            json.loads(
                subprocess.run(
                    [sys.executable, __file__, "--personas", size, "--questions", str(args.questions)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.splitlines()[-1]
            )
            for size in args.sizes.split(",")
        ]
        print(json.dumps({"sizes": runs}))
        return
    registry = load_registry(EXAMPLE)
    questions = [
        {"id": f"q{i}", "text": f"Question number {i}?", "options": ["Yes", "No"]} for i in range(args.questions)
    ]
    overrides = [
        f"sampler.with.per_town={args.personas // 2}",
        "batch_size=256",
        f"questions={json.dumps(questions)}",
        "metrics.mean_share.question=q0",
    ]  # q0 exists whatever --questions is
    figures = {}
    for population, extra in (("", []), ("distinct_", ["sampler.with.numbered=true"])):
        loaded = load_scenario(EXAMPLE / "towns.yaml", registry, overrides + extra)
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / "bench.db")
            engine = Engine(registry, store)
            started = time.perf_counter()
            run_id = engine.run(loaded)
            fresh = time.perf_counter() - started
            started = time.perf_counter()
            engine.run(loaded)  # every answer now comes from the cache
            cached = time.perf_counter() - started
            answers = store.runs.counts(run_id)["answers"]
            figures[f"{population}overhead_ms_per_answer"] = round(fresh / answers * 1000, 4)
            figures[f"{population}cached_rerun_ms_per_answer"] = round(cached / answers * 1000, 4)
            figures[f"{population}cache_entries"] = store.db.execute("select count(*) from llm_cache").fetchone()[0]
    figures["answers"] = answers
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
