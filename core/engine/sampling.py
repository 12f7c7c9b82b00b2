"""Sampling: the personas of a run, batch by batch."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..models import Persona
from ..scenario import LoadedScenario
from ..store import Store
from .plan import Pipeline


def batches(
    store: Store, loaded: LoadedScenario, pipeline: Pipeline, personas_from: str | None
) -> Iterator[tuple[int, list[Persona], bool]]:
    """(batch index, personas, whether they still need enriching): sampled with the scenario's seed, or
    ``personas_from`` a finished run, batch by batch (a sweep's variants that change neither)."""
    if personas_from is not None:
        for index, batch in store.personas.batches(personas_from):
            yield index, batch, False
        return
    rng = np.random.default_rng(loaded.scenario.seed)
    try:
        for index, batch in enumerate(pipeline.sampler.sample(rng, loaded.scenario.batch_size)):
            yield index, batch, True
    except Exception as exc:
        exc.add_note(f"in sampler '{loaded.scenario.sampler.use}' (sample)")
        raise
