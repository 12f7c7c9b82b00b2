"""Sweeps: one scenario run as several variants, each a child run of one sweep record.

Variants that keep the baseline's sampler, enrichers, seed and batch size reuse
its personas instead of sampling and enriching again; the model cache means an
unchanged prompt is never asked twice; running the same sweep again resumes it.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from . import hookimpl
from .engine import Engine, build_pipeline
from .models import RunInfo
from .progress import ProgressObserver
from .registry import Registry
from .scenario import LoadedScenario, ScenarioError, ScenarioIssue, validate_data
from .scenario_models import ComponentSpec
from .store import Store

PERSONA_FIELDS = ("sampler", "enrichers", "seed", "batch_size")
SAMPLED_FIELDS = ("sampler", "seed", "batch_size")


def plan_sweep(loaded: LoadedScenario, registry: Registry) -> list[tuple[str, LoadedScenario]]:
    """Every variant, validated (and its enrichers planned) before any work; the first is the baseline. With
    ``replicates: K`` each variant comes K times, under seeds seed, seed + 1, ..., seed + K - 1."""
    spec = loaded.scenario.ablation
    if spec is None:
        raise ScenarioError(
            loaded.source,
            [
                ScenarioIssue(
                    ("ablation",),
                    "a sweep needs an ablation block, e.g. ablation: {use: attributes, with: {attributes: [age, sex]}}",
                )
            ],
        )
    info = registry.get("ablation", spec.use)
    ablation = info.build(spec.with_)
    base = {k: v for k, v in copy.deepcopy(loaded.data).items() if k != "ablation"}
    labelled: list[tuple[str, dict]] = []
    for label, data in ablation.variants(base):
        if any(label == seen for seen, _ in labelled):
            raise ScenarioError(
                loaded.source,
                [ScenarioIssue(("ablation",), f"ablation '{spec.use}' produced the variant label '{label}' twice")],
            )
        labelled.append((label, data))
    if not labelled:
        raise ScenarioError(
            loaded.source, [ScenarioIssue(("ablation",), f"ablation '{spec.use}' produced no variants")]
        )
    if ablation.leave_out_twins:
        labelled = without_twins(labelled, loaded, registry)
    variants: list[tuple[str, LoadedScenario]] = []
    for replicate in range(spec.replicates):
        for label, data in labelled:
            data = copy.deepcopy(data)
            data["seed"] = data.get("seed", loaded.scenario.seed) + replicate
            where = f"variant '{label}'" + (f", seed {data['seed']}" if spec.replicates > 1 else "")
            variant = validate_data(data, loaded.text, f"{loaded.source} [{where}]", registry)
            build_pipeline(variant, registry)
            variants.append((label, variant))
    return variants


def without_twins(
    labelled: list[tuple[str, dict]], loaded: LoadedScenario, registry: Registry
) -> list[tuple[str, dict]]:
    """The variants but those that run exactly as the first (each left out with a note): a grid value that only
    writes out a default the scenario leaves unsaid."""
    baseline = as_run(validate_data(labelled[0][1], loaded.text, loaded.source, registry), registry)
    kept = labelled[:1]
    for label, data in labelled[1:]:
        variant = validate_data(data, loaded.text, f"{loaded.source} [variant '{label}']", registry)
        if as_run(variant, registry) == baseline:
            loaded.notices.append(
                f"variant '{label}' runs exactly as '{labelled[0][0]}' (what it sets is already so): not run twice"
            )
        else:
            kept.append((label, data))
    return kept


def as_run(loaded: LoadedScenario, registry: Registry) -> dict[str, Any]:
    """The scenario with every default filled in, each component's config as it validates: two variants equal
    here run alike, though one writes out a default the other leaves unsaid."""
    s = loaded.scenario

    def resolved(kind: str, spec: ComponentSpec) -> dict[str, Any]:
        config = registry.get(kind, spec.use).cls.Config.model_validate(spec.with_)
        return {"use": spec.use, "with": config.model_dump(mode="json")}

    return {
        **s.model_dump(mode="json", exclude={"sampler", "enrichers", "simulator", "executor", "ablation"}),
        "sampler": resolved("sampler", s.sampler),
        "enrichers": [resolved("enricher", e) for e in s.enrichers],
        "simulator": resolved("simulator", s.simulator),
        "executor": resolved("executor", s.executor),
    }


def shares_personas(a: LoadedScenario, b: LoadedScenario) -> bool:
    """The same personas, enriched alike: a variant can reuse the baseline's."""
    return all(a.data.get(k) == b.data.get(k) for k in PERSONA_FIELDS)


def same_people(a: LoadedScenario, b: LoadedScenario) -> bool:
    """The same sampled people, however they were enriched: their answers can be compared person by person."""
    return all(a.data.get(k) == b.data.get(k) for k in SAMPLED_FIELDS)


def run_sweep(
    loaded: LoadedScenario,
    registry: Registry,
    store: Store,
    engine: Engine,
    progress: ProgressObserver | None = None,
    parallel: int = 1,
) -> str:
    """Run every variant (and replicate) not finished yet, each a child run of one sweep; ``progress`` counts all
    of them. With ``parallel`` above 1, up to that many run side by side, each on a thread of this process with its
    own connection to the run log and its own executor (on a cluster, its own replicas): first the baselines and
    the variants with personas of their own, then those that reuse a baseline's personas."""
    variants = plan_sweep(loaded, registry)
    labels = list(dict.fromkeys(label for label, _ in variants))
    sweep_id = store.sweeps.unfinished(loaded.data) or store.sweeps.create(
        loaded.scenario.name, loaded.text, loaded.data, loaded.data["ablation"], labels
    )
    existing = {(r["variant"], r["seed"]): r for runs in store.sweeps.runs(sweep_id).values() for r in runs}
    sizes = [build_pipeline(v, registry).sampler.total() for _, v in variants]
    baselines: dict[int, tuple[LoadedScenario, str]] = {}  # seed -> the baseline variant and its run
    if progress is not None:
        progress.set_total(sum(sizes))

    def run(label: str, variant: LoadedScenario, size: int, runner: Engine) -> str:
        seed = variant.scenario.seed
        record = existing.get((label, seed))
        if record is not None and record["status"] == "finished":
            if progress is not None:
                progress.advance(size)
            return record["id"]
        base = baselines.get(seed)
        reuse = base[1] if base is not None and shares_personas(base[0], variant) else None
        resume = record["id"] if record else None
        return runner.run(variant, resume=resume, personas_from=reuse, sweep=(sweep_id, label))

    if parallel == 1:
        for (label, variant), size in zip(variants, sizes):
            run_id = run(label, variant, size, engine)
            if label == labels[0]:
                baselines[variant.scenario.seed] = (variant, run_id)
    else:
        base_of = {v.scenario.seed: v for label, v in variants if label == labels[0]}
        first, reusing = [], []
        for (label, variant), size in zip(variants, sizes):
            base = base_of.get(variant.scenario.seed)
            sharing = label != labels[0] and base is not None and shares_personas(base, variant)
            (reusing if sharing else first).append((label, variant, size))
        for (label, variant, _), run_id in zip(first, side_by_side(first, run, engine, parallel)):
            if label == labels[0]:
                baselines[variant.scenario.seed] = (variant, run_id)
        side_by_side(reusing, run, engine, parallel)
    store.sweeps.finish(sweep_id)
    return sweep_id


def side_by_side(
    variants: list[tuple[str, LoadedScenario, int]],
    run: Callable[[str, LoadedScenario, int, Engine], str],
    engine: Engine,
    parallel: int,
) -> list[str]:
    """``run`` each variant on one of ``parallel`` threads, each with an engine (and run log connection) of its
    own; their run ids, in order. A failure, or Ctrl-C, ends the variants still running at their next batch (they
    resume as any interrupted run); ``engine.run_id`` names the run that failed, for the resume hint."""
    engines: dict[int, Engine] = {}
    failed: list[str | None] = []  # the run that failed first; the others only stopped because it did
    stopping = StopAtNextBatch()

    def one(label: str, variant: LoadedScenario, size: int) -> str:
        thread = threading.get_ident()
        if thread not in engines:
            engines[thread] = Engine(engine.registry, Store(engine.store.path), use_cache=engine.use_cache)
        try:
            return run(label, variant, size, engines[thread])
        except BaseException:
            if not stopping.stop.is_set():
                failed.append(engines[thread].run_id)
            raise

    engine.registry.manager.register(stopping)
    pool = ThreadPoolExecutor(parallel, thread_name_prefix="variant")
    try:
        futures = [pool.submit(one, *v) for v in variants]
        try:
            for future in as_completed(futures):
                future.result()
            return [future.result() for future in futures]
        except BaseException:
            stopping.stop.set()
            for future in futures:
                future.cancel()
            engine.run_id = failed[0] if failed else engine.run_id
            raise
    finally:
        while True:  # the variants still running end at their next batch: wait for them, however often Ctrl-C comes
            try:
                pool.shutdown(wait=True)
                break
            except KeyboardInterrupt:
                stopping.stop.set()
        engine.registry.manager.unregister(stopping)


class StopAtNextBatch:
    """Ends every run side by side at its next committed batch once ``stop`` is set: threads cannot be
    interrupted, but a run ended by KeyboardInterrupt is marked interrupted and resumes."""

    def __init__(self) -> None:
        self.stop = threading.Event()

    @hookimpl
    def batch_done(self, run: RunInfo) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt
