"""Sweeps: one scenario run as several variants, each a child run of one sweep record.

Variants that keep the baseline's sampler, enrichers, seed and batch size reuse
its personas instead of sampling and enriching again; the model cache means an
unchanged prompt is never asked twice; running the same sweep again resumes it.
"""

from __future__ import annotations

import copy
from typing import Any

from .engine import Engine, build_pipeline
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
    loaded: LoadedScenario, registry: Registry, store: Store, engine: Engine, progress: ProgressObserver | None = None
) -> str:
    """Run every variant (and replicate) not finished yet, each a child run of one sweep; ``progress`` counts all
    of them."""
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
    for (label, variant), size in zip(variants, sizes):
        seed = variant.scenario.seed
        record = existing.get((label, seed))
        if record is not None and record["status"] == "finished":
            if progress is not None:
                progress.advance(size)
            run_id = record["id"]
        else:
            base = baselines.get(seed)
            reuse = base[1] if base is not None and shares_personas(base[0], variant) else None
            run_id = engine.run(
                variant, resume=record["id"] if record else None, personas_from=reuse, sweep=(sweep_id, label)
            )
        if label == labels[0]:
            baselines[seed] = (variant, run_id)
    store.sweeps.finish(sweep_id)
    return sweep_id
