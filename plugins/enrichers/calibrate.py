"""``calibrate``: move LLM-written categorical attributes to the population's known shares.

A model asked to invent a person's industry over-produces some (teachers,
nurses, tech) and forgets others; where the census knows the shares, this
enricher corrects them with the smallest possible change. Within each batch
and group (``by``, default the persona's stratum: its state), with ``p`` the personas' weighted
distribution as the model wrote it and ``q`` the target, a persona in an
over-represented category ``c`` keeps its value with probability ``q_c/p_c``;
the rest move to under-represented categories in proportion to their
shortfall. The expected result is exactly ``q``, and only the excess mass,
the total variation distance between ``p`` and ``q``, is reassigned.

Weights are not raked: a persona's weight already carries the census
calibration of its demographics, and reweighting would undo it. The model's
own value stays on the persona as ``_<attribute>_llm``; the ``calibration``
metric reports how far the model was from the targets, before and after.
Strata without targets (DC for the shipped ACS 2023 industry shares) are
left as written and counted.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cached_property

import numpy as np
from pydantic import Field

from simrun import EnrichContext, Enricher, Persona, StrictConfig, data, hookimpl


class CalibrateConfig(StrictConfig):
    attributes: list[str] = Field(
        ["industry"], min_length=1, description="Categorical attributes to calibrate; each needs targets."
    )
    targets: str | None = Field(
        None,
        description="CSV with columns group, attribute, category, share[, source]; "
        "default: ACS 2023 industry by state.",
    )
    by: str = Field(
        "stratum",
        description="What picks a persona's targets (the file's group): its stratum "
        "(a state code for census personas) or an attribute.",
    )


def reassign(values: list[str], weights: np.ndarray, target: dict[str, float], rng: np.random.Generator) -> list[str]:
    """Values moved the least so that their weighted distribution becomes ``target`` in expectation."""
    total = float(weights.sum())
    p: dict[str, float] = defaultdict(float)
    for value, weight in zip(values, weights):
        p[value] += weight / total
    shortfall = {c: q - p.get(c, 0.0) for c, q in target.items() if q > p.get(c, 0.0)}
    if not shortfall:
        return list(values)
    receivers = list(shortfall)
    odds = np.array([shortfall[c] for c in receivers])
    odds /= odds.sum()
    out = []
    for value in values:
        keep = min(1.0, target.get(value, 0.0) / p[value])
        out.append(value if rng.random() < keep else receivers[rng.choice(len(receivers), p=odds)])
    return out


class Calibrate(Enricher):
    """Reassigns the fewest personas so LLM-written categories match census shares; keeps the model's value."""

    name = "calibrate"
    Config = CalibrateConfig

    def __init__(self, config: CalibrateConfig | None = None):
        super().__init__(config)
        # It rewrites what it needs, so enrichers that read these attributes run after it.
        self.needs = frozenset(self.config.attributes) | ({self.config.by} - {"stratum"})
        self.provides = frozenset(self.config.attributes)

    @cached_property
    def targets(self) -> data.Targets:
        return data.targets(self.config.targets, self.config.attributes)

    def enrich(self, batch: list[Persona], context: EnrichContext) -> list[Persona]:
        rng = np.random.default_rng([context.seed, min(p.id for p in batch)])
        for attribute in self.config.attributes:
            groups: dict[str, list[Persona]] = defaultdict(list)
            for persona in batch:
                stratum = persona.group(self.config.by)
                if attribute in persona.attributes and stratum in self.targets.shares[attribute]:
                    groups[stratum].append(persona)
            for stratum, members in sorted(groups.items()):
                written = [str(p.attributes[attribute]) for p in members]
                weights = np.array([p.weight for p in members], dtype=float)
                for persona, before, after in zip(
                    members, written, reassign(written, weights, self.targets.shares[attribute][stratum], rng)
                ):
                    persona.set(f"_{attribute}_llm", before, persona.provenance.get(attribute, ""))
                    if after != before:
                        persona.set(attribute, after, f"calibrate:{self.targets.source[attribute]}")
        return batch


@hookimpl
def register_enrichers(register):
    register(Calibrate)
