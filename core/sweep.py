"""Sweeps: one scenario run as several variants, each a child run of one sweep record.

Variants that keep the baseline's sampler, enrichers, seed and batch size reuse
its personas instead of sampling and enriching again; the model cache means an
unchanged prompt is never asked twice; running the same sweep again resumes it.
"""

from __future__ import annotations

import copy

from .engine import Engine, build_pipeline
from .progress import ProgressObserver
from .registry import Registry
from .scenario import LoadedScenario, ScenarioError, ScenarioIssue, validate_data
from .store import Store

PERSONA_FIELDS = ("sampler", "enrichers", "seed", "batch_size")


def plan_sweep(loaded: LoadedScenario, registry: Registry) -> list[tuple[str, LoadedScenario]]:
    """Every variant, validated (and its enrichers planned) before any work; the first is the baseline."""
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
    variants: list[tuple[str, LoadedScenario]] = []
    for label, data in ablation.variants(base):
        if any(label == seen for seen, _ in variants):
            raise ScenarioError(
                loaded.source,
                [ScenarioIssue(("ablation",), f"ablation '{spec.use}' produced the variant label '{label}' twice")],
            )
        variant = validate_data(data, loaded.text, f"{loaded.source} [variant '{label}']", registry)
        build_pipeline(variant, registry)
        variants.append((label, variant))
    if not variants:
        raise ScenarioError(
            loaded.source, [ScenarioIssue(("ablation",), f"ablation '{spec.use}' produced no variants")]
        )
    return variants


def shares_personas(a: LoadedScenario, b: LoadedScenario) -> bool:
    return all(a.data.get(k) == b.data.get(k) for k in PERSONA_FIELDS)


def run_sweep(
    loaded: LoadedScenario, registry: Registry, store: Store, engine: Engine, progress: ProgressObserver | None = None
) -> str:
    """Run every variant not finished yet, each a child run of one sweep; ``progress`` counts all of them."""
    variants = plan_sweep(loaded, registry)
    sweep_id = store.unfinished_sweep(loaded.data) or store.create_sweep(
        loaded.scenario.name, loaded.text, loaded.data, loaded.data["ablation"], [label for label, _ in variants]
    )
    existing = store.sweep_runs(sweep_id)
    sizes = [build_pipeline(v, registry).sampler.total() for _, v in variants]
    baseline_label, baseline = variants[0]
    baseline_run: str | None = None
    if progress is not None:
        progress.set_total(sum(sizes))
    for (label, variant), size in zip(variants, sizes):
        record = existing.get(label)
        if record is not None and record["status"] == "finished":
            if progress is not None:
                progress.advance(size)
            run_id = record["id"]
        else:
            reuse = baseline_run if label != baseline_label and shares_personas(baseline, variant) else None
            run_id = engine.run(
                variant, resume=record["id"] if record else None, personas_from=reuse, sweep=(sweep_id, label)
            )
        if label == baseline_label:
            baseline_run = run_id
    store.finish_sweep(sweep_id)
    return sweep_id
