"""The ray executor against the local one on this machine: Ray's overhead per answer, and model throughput.

Starts a real two-node Ray cluster on this host (``ray.cluster_utils.Cluster``, one CPU per node). Run as
root, it first moves itself into a network namespace with only loopback (``unshare -n``), so Ray binds
127.0.0.1 and nothing leaves the machine. Measures, on the example plugin's towns scenario:

- ``ray_overhead_ms_per_answer``: the instant simulator (a hash, no model) on 2 replicas, minus the same run
  on the local executor, per answer (target <= 0.3);
- ``embedded_throughput_ratio``: embedded SmolLM2 answers/s on 2 one-thread replicas over the local executor
  with 2 threads (target >= 0.9). Both include loading the model.
- ``replica_utilization``: 8 replicas of a simulator that sleeps 10 ms a prompt, at the default ``batch_size``
  (64 personas, every one distinct: 128 prompts, 4 chunks of 32 a batch; 4,080 personas): model time (prompts
  the replicas answered, from their call log, x 10 ms) / 8 over the wall time after the replicas are up (the
  run's ``simulate_s`` less its ``executor_start_s``, both in its timings). Target >= 0.9: streaming dispatch
  keeps every replica fed across batch boundaries, where a batch at a time kept 4 of 8 busy.
- ``parallel_sweep_ratio``: a sweep of 4 variants (the baseline and 3 other seeds, 1,000 personas and 2,000
  prompts of 10 ms each) on 2 replicas each, with ``--parallel 2`` over one by one, wall time, replicas' start-up
  included (target <= 0.6).

Prints one JSON line.

    python bench/executor.py [--instant-answers 20000] [--embedded-answers 640] [--sleeping-personas 4080]
                             [--sweep-personas 1000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import ray
from loopback_cluster import isolate, two_node_cluster

from simrun.engine import Engine
from simrun.registry import load_registry
from simrun.scenario import load_scenario
from simrun.store import Store
from simrun.sweep import run_sweep

EXAMPLE = Path(__file__).resolve().parent.parent / "tests" / "example_plugin"
SLEEP_S = 0.01  # the sleeping simulator's model time per prompt


def timed_run(folder: Path, name: str, overrides: list[str]) -> tuple[float, float, int]:
    """(seconds simulating, of which starting the executor, answers) of the towns scenario in its own run log."""
    registry = load_registry(EXAMPLE)
    store = Store(folder / f"{name}.db")
    run_id = Engine(registry, store).run(load_scenario(EXAMPLE / "towns.yaml", registry, overrides))
    timings = json.loads(store.runs.get(run_id)["timings"])
    return timings["simulate_s"], timings["executor_start_s"], store.runs.counts(run_id)["answers"]


def timed_sweep(folder: Path, name: str, overrides: list[str], parallel: int) -> float:
    """Wall seconds of a sweep of the towns scenario in a run log of its own."""
    registry = load_registry(EXAMPLE)
    store = Store(folder / f"{name}.db")
    loaded = load_scenario(EXAMPLE / "towns.yaml", registry, overrides)
    started = time.perf_counter()
    run_sweep(loaded, registry, store, Engine(registry, store), None, parallel)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instant-answers", type=int, default=20_000)
    parser.add_argument("--embedded-answers", type=int, default=640)
    parser.add_argument("--sleeping-personas", type=int, default=4080)
    parser.add_argument("--sweep-personas", type=int, default=1000)
    args = parser.parse_args()
    isolate(__file__)
    cluster = two_node_cluster()
    ray.init(address=cluster.address, log_to_driver=False)
    on_ray = ["executor.use=ray", "executor.with.replicas=2"]
    instant = [f"sampler.with.per_town={args.instant_answers // 4}", "batch_size=1024"]  # 2 towns, 2 questions
    embedded = [
        f"sampler.with.per_town={args.embedded_answers // 4}",
        "batch_size=64",  # 128 prompts: 8 chunks, twice what 2 replicas x 2 in flight take (README, Scaling out)
        "simulator.use=embedded",
    ]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            local_s, _, answers = timed_run(folder, "instant-local", instant)
            ray_s, _, _ = timed_run(folder, "instant-ray", instant + on_ray)
            local_model_s, _, model_answers = timed_run(
                folder, "embedded-local", embedded + ["simulator.with.n_threads=2"]
            )
            ray_model_s, _, _ = timed_run(folder, "embedded-ray", embedded + on_ray + ["simulator.with.n_threads=1"])
            eight = ["executor.use=ray", "executor.with.replicas=8", "executor.with.resources={num_cpus: 0.25}"]
            sleeping = ["batch_size=64", "sampler.with.numbered=true", f"simulator.with.delay_s={SLEEP_S}", *eight]
            calls = folder / "calls.log"
            per_town = f"sampler.with.per_town={args.sleeping_personas // 2}"
            sleep_s, up_s, _ = timed_run(folder, "sleeping", [per_town, f"simulator.with.call_log={calls}", *sleeping])
            prompts = calls.read_text().count("\x1e")
            sweep = ["ablation={use: grid, with: {fields: {seed: [8, 9, 10]}}}", "sampler.with.numbered=true"]
            sweep += [f"sampler.with.per_town={args.sweep_personas // 2}", f"simulator.with.delay_s={SLEEP_S}"]
            sweep += ["executor.use=ray", "executor.with.replicas=2", "executor.with.resources={num_cpus: 0.25}"]
            one_by_one_s = timed_sweep(folder, "sweep-1", sweep, 1)
            side_by_side_s = timed_sweep(folder, "sweep-2", sweep, 2)
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(
        json.dumps(
            {
                "ray_overhead_ms_per_answer": round((ray_s - local_s) / answers * 1000, 4),
                "instant_answers": answers,
                "instant_local_s": round(local_s, 2),
                "instant_ray_s": round(ray_s, 2),
                "embedded_throughput_ratio": round(local_model_s / ray_model_s, 3),
                "embedded_answers": model_answers,
                "embedded_local_answers_per_s": round(model_answers / local_model_s, 2),
                "embedded_ray_answers_per_s": round(model_answers / ray_model_s, 2),
                "replica_utilization": round(prompts * SLEEP_S / 8 / (sleep_s - up_s), 3),
                "sleeping_prompts": prompts,
                "sleeping_wall_s": round(sleep_s, 2),
                "replicas_up_s": round(up_s, 2),
                "parallel_sweep_ratio": round(side_by_side_s / one_by_one_s, 3),
                "sweep_one_by_one_s": round(one_by_one_s, 2),
                "sweep_parallel_2_s": round(side_by_side_s, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
