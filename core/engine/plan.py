"""Planning a run: the scenario's components built from the registry, the enrichers put in an order that gives
each what it needs, and the executor started on the simulator."""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import networkx as nx

from ..components import Enricher, Executor, Metric, Sampler, Simulator, SimulatorSpec
from ..registry import Registry
from ..scenario import LoadedScenario, ScenarioError, ScenarioIssue


class PlanError(ScenarioError):
    """The enrichers cannot be ordered: a cycle or an attribute nobody provides."""


@dataclass
class Pipeline:
    sampler: Sampler
    enrichers: list[Enricher]
    simulator: Simulator
    executor: Executor
    metrics: list[tuple[str, Metric]]
    components: list[dict] = field(default_factory=list)


def order_enrichers(provided: set[str], enrichers: list[Enricher], source: str) -> list[Enricher]:
    """Order enrichers so each runs after whatever provides what it needs."""
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(enrichers)))
    providers: dict[str, list[int]] = defaultdict(list)
    declared = [{what: enricher.declared(what) for what in ("provides", "needs", "uses")} for enricher in enrichers]
    for i, declaration in enumerate(declared):
        for attribute in declaration["provides"]:
            providers[attribute].append(i)
    issues = []
    for i, enricher in enumerate(enrichers):
        for attribute in sorted(declared[i]["needs"]):
            if attribute in provided:
                continue
            if not [
                j for j in providers[attribute] if j != i
            ]:  # an enricher that rewrites an attribute still needs it from another
                issues.append(
                    ScenarioIssue(
                        ("enrichers", i),
                        f"enricher '{enricher.name}' needs attribute '{attribute}', "
                        "which neither the sampler nor any enricher provides",
                    )
                )
            for j in providers[attribute]:
                if j != i:
                    graph.add_edge(j, i, attribute=attribute)
        for attribute in sorted(declared[i]["uses"] - declared[i]["needs"]):
            for j in providers[attribute]:
                if j != i:
                    graph.add_edge(j, i, attribute=attribute)
    if issues:
        raise PlanError(source, issues)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return [enrichers[i] for i in nx.lexicographical_topological_sort(graph)]
    names = " -> ".join(f"{enrichers[a].name} ({graph.edges[a, b]['attribute']})" for a, b in cycle)
    raise PlanError(source, [ScenarioIssue(("enrichers",), f"enrichers depend on each other in a cycle: {names}")])


def build_pipeline(loaded: LoadedScenario, registry: Registry) -> Pipeline:
    s = loaded.scenario
    components: list[dict] = []

    def make(kind: str, use: str, config: dict, label: str):
        info = registry.get(kind, use)
        components.append(
            {
                "kind": kind,
                "name": use,
                "as": label,
                "package": info.package,
                "version": info.version,
                "plugin": info.plugin,
            }
        )
        return info.build(config)

    sampler = make("sampler", s.sampler.use, s.sampler.with_, "sampler")
    enrichers = [make("enricher", e.use, e.with_, f"enrichers.{i}") for i, e in enumerate(s.enrichers)]
    simulator = make("simulator", s.simulator.use, s.simulator.with_, "simulator")
    executor = make("executor", s.executor.use, s.executor.with_, "executor")
    metrics = [(name, make("metric", spec.use, spec.with_, f"metrics.{name}")) for name, spec in s.metric_specs()]
    try:
        ordered = order_enrichers(sampler.declared("provides"), enrichers, loaded.source)
    except TypeError as exc:  # a plugin that declares what it provides or needs in a way simrun cannot read
        raise PlanError(loaded.source, [ScenarioIssue((), str(exc))]) from None
    return Pipeline(sampler, ordered, simulator, executor, metrics, components)


def planned_total(pipeline: Pipeline, loaded: LoadedScenario) -> int:
    """How many personas the sampler plans: at least one, or the run would have nothing to ask or score."""
    try:
        total = pipeline.sampler.total()
    except Exception as exc:  # noqa: BLE001 - a plugin's fault, said at its field before anything runs
        raise PlanError(
            loaded.source,
            [
                ScenarioIssue(
                    ("sampler", "with"),
                    f"sampler '{loaded.scenario.sampler.use}': total() failed: {type(exc).__name__}: {exc}",
                )
            ],
        ) from exc
    if not isinstance(total, int) or isinstance(total, bool) or total < 1:
        name = loaded.scenario.sampler.use
        why = (
            "a run needs at least one: check its config"
            if isinstance(total, int) and total == 0
            else "total() must return a whole number of at least 1"
        )
        raise PlanError(
            loaded.source, [ScenarioIssue(("sampler", "with"), f"sampler '{name}' plans {total!r} personas: {why}")]
        )
    return total


@contextlib.contextmanager
def started(loaded: LoadedScenario, pipeline: Pipeline, registry: Registry) -> Iterator[float]:
    """The executor started on the scenario's simulator for the block, which gets the seconds starting took
    (placing replicas, loading their models); both released when it ends."""
    s = loaded.scenario
    spec = SimulatorSpec(name=s.simulator.use, config=s.simulator.with_, plugins_dir=registry.plugins_dir)
    try:
        began = time.perf_counter()
        pipeline.executor.start(pipeline.simulator, spec)
        yield time.perf_counter() - began
    finally:
        pipeline.executor.close()
        pipeline.simulator.close()
