"""Enrichment: the scenario's enrichers run on a batch in their planned order; what they ask the model goes
through the cache like every other call."""

from __future__ import annotations

import functools

import numpy as np

from ..components import EnrichContext
from ..models import Persona
from ..scenario import LoadedScenario
from .calls import ModelCalls
from .plan import Pipeline


def enrich(
    batch: list[Persona], index: int, loaded: LoadedScenario, pipeline: Pipeline, calls: ModelCalls
) -> list[Persona]:
    """Run the ordered enrichers on a batch, with a seed of its own (so resumes agree)."""
    seed = int(np.random.SeedSequence([loaded.scenario.seed, index]).generate_state(1)[0])
    context = EnrichContext(
        seed=seed, simulator=pipeline.simulator, generate=functools.partial(calls.generate, pipeline.executor)
    )
    for enricher in pipeline.enrichers:
        try:
            batch = enricher.enrich(batch, context)
        except Exception as exc:
            exc.add_note(f"in enricher '{enricher.name}' (enrich)")
            raise
    return batch
