"""Executors without a cluster: the contract the engine relies on, the progress bar, resume's rules."""

from __future__ import annotations

import importlib.util
import sqlite3
from collections.abc import Iterator
from typing import Any

from conftest import EXAMPLE

from simrun import CheckContext, Executor, build_simulator, hookimpl
from simrun.engine import Engine, build_pipeline, started
from simrun.models import RunInfo
from simrun.plugins.executors.ray_cluster import RayExecutor
from simrun.plugins.executors.ray_replicas import fitting
from simrun.progress import ProgressObserver, progress_bar
from simrun.registry import load_registry
from simrun.scenario import load_scenario
from simrun.store import Store


class Backwards(Executor):
    """Finishes chunks last to first and loses one of its two pretend replicas after the first batch."""

    name = "backwards"

    def start(self, simulator, spec):
        super().start(simulator, spec)
        self.spec, self.calls = spec, 0

    def map(self, method: str, chunks: list[list[Any]], options: dict[str, Any]) -> Iterator[tuple[int, list]]:
        call = getattr(self.simulator, method)
        for index in reversed(range(len(chunks))):
            self.calls += 1
            yield index, call(chunks[index], **options)

    def replicas(self) -> tuple[int, int]:
        return (2 if self.calls == 0 else 1), 2


class Replicas:
    def __init__(self):
        self.seen: list[tuple[int, int]] = []

    @hookimpl
    def replicas_changed(self, run, alive, started):
        self.seen.append((alive, started))


def answers(store: Store, run_id: str) -> list[tuple]:
    return [
        (r["persona_id"], r["question_id"], r["distribution"], r["prompt"])
        for r in store.answers.rows(run_id, prompts=True)
    ]


def test_replies_in_any_order_give_the_local_run_and_replica_changes_reach_the_hooks(tmp_path):
    registry = load_registry(EXAMPLE)
    registry.add("executor", "test", "test", "", Backwards)
    observer = Replicas()
    registry.manager.register(observer)
    runs = {}
    for use in ("local", "backwards"):  # a run log each: no answer comes from the other's cache
        store = Store(tmp_path / f"{use}.db")
        scenario = load_scenario(EXAMPLE / "towns.yaml", registry, [f"executor.use={use}", "batch_size=16"])
        runs[use] = answers(store, Engine(registry, store).run(scenario))
    assert runs["backwards"] == runs["local"] and len(runs["local"]) == 48
    assert observer.seen == [(2, 2), (1, 2)]  # at the start, then once when one was lost; local reports nothing


def test_the_replica_spec_carries_the_plugins_folder_so_replicas_can_build_a_local_simulator(tmp_path):
    registry = load_registry(EXAMPLE)
    registry.add("executor", "test", "test", "", Backwards)
    overrides = ["executor.use=backwards", "simulator.with.first_option_bias=0.3"]
    loaded = load_scenario(EXAMPLE / "towns.yaml", registry, overrides)
    pipeline = build_pipeline(loaded, registry)
    with started(loaded, pipeline, registry):
        spec = pipeline.executor.spec
    assert spec.name == "instant" and spec.config == {"first_option_bias": 0.3}
    assert spec.plugins_dir == str(EXAMPLE.resolve())
    rebuilt = build_simulator(spec)
    assert rebuilt.identity() == pipeline.simulator.identity()


def test_the_progress_bar_shows_answers_per_second_and_replicas_alive():
    bar = progress_bar(True)
    observer = ProgressObserver(bar, "simulating")
    run = RunInfo(id="r", name="n", seed=0, db_path="d", resumed=False, total=10)
    observer.run_started(run=run)
    observer.replicas_changed(run=run, alive=1, started=2)
    observer.batch_done(run=run, personas=[object()] * 5, answers=[object()] * 10)
    status = bar.tasks[0].fields["status"]
    assert "answers/s" in status and "1/2 replicas alive" in status
    assert bar.tasks[0].completed == 5


def test_the_ray_executor_without_ray_says_how_to_install_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    [problem] = RayExecutor.check(RayExecutor.Config(), CheckContext(scenario=None))
    assert "pip install 'simrun[ray]'" in problem.message


def test_a_negative_resource_is_refused_at_its_field(invoke):
    result = invoke(
        "validate", str(EXAMPLE / "towns.yaml"), "--set", "executor={use: ray, with: {resources: {num_gpus: -1}}}"
    )
    assert result.exit_code == 2
    assert "executor.with.resources" in result.output and "0 or more: num_gpus" in result.output


def test_replicas_auto_counts_what_each_node_holds_of_every_resource_a_replica_asks():
    gpu_node = {"Resources": {"CPU": 32.0, "GPU": 8.0, "memory": 2e11, "node:10.0.0.2": 1.0}}
    assert fitting(gpu_node, {"num_cpus": 4, "num_gpus": 1}) == 8
    assert fitting(gpu_node, {"num_cpus": 6, "num_gpus": 1}) == 5  # the CPUs run out first
    assert fitting(gpu_node, {"num_gpus": 4, "memory": 1e11}) == 2  # tensor parallel 4
    assert fitting({"Resources": {"CPU": 1.0}}, {"num_cpus": 0.25}) == 4
    assert fitting({"Resources": {"CPU": 1.0}}, {"num_cpus": 0.3}) == 3
    assert fitting(gpu_node, {"num_cpus": 1, "worker": 1}) == 0  # a custom resource the node lacks
    assert fitting(gpu_node, {"num_cpus": 1, "num_gpus": 0}) == 32  # asking none of one counts nothing for it


def test_replicas_auto_with_nothing_asked_has_nothing_to_count_by(invoke):
    result = invoke(
        "validate",
        str(EXAMPLE / "towns.yaml"),
        "--set",
        "executor={use: ray, with: {replicas: auto, resources: {num_cpus: 0}}}",
    )
    assert result.exit_code != 0
    assert "replicas: auto counts replicas by their resources" in " ".join(result.output.split())
    wrong = invoke("validate", str(EXAMPLE / "towns.yaml"), "--set", "executor={use: ray, with: {replicas: all}}")
    assert wrong.exit_code == 2 and "executor.with.replicas" in wrong.output


def test_a_resumed_run_may_move_to_another_executor_but_not_change_its_scenario(invoke, tmp_path):
    db = tmp_path / "r.db"
    run_id = invoke("run", str(EXAMPLE / "towns.yaml"), "--quiet", db=db).output.strip()
    with sqlite3.connect(db) as connection:  # as if it had failed after its first batch
        connection.execute("delete from progress where batch > 0")
        connection.execute("update runs set status = 'failed'")
    refused = invoke("run", "--resume", run_id, "--set", "sampler.with.per_town=3", db=db)
    assert refused.exit_code != 0
    assert "only executor (where the calls run) and baselines (scored after)" in " ".join(refused.output.split())
    moved = invoke("run", "--resume", run_id, "--set", "executor.use=local", "--quiet", db=db)
    assert moved.exit_code == 0, moved.output
