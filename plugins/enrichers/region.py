"""``region``: the Census Bureau region and division of each persona's state.

OpinionQA and most surveys break results down by census region; this adds it
from data, not from a model.
"""

from __future__ import annotations

from simrun import EnrichContext, Enricher, Persona, data, hookimpl

SOURCE = "census:regions and divisions (Census Bureau population estimates, vintage 2021)"


class RegionEnricher(Enricher):
    """Adds census_region and census_division from the persona's state."""

    name = "region"
    needs = frozenset({"state"})
    provides = frozenset({"census_region", "census_division"})

    def enrich(self, batch: list[Persona], context: EnrichContext) -> list[Persona]:
        by_name = {row["name"]: row for row in data.states().values()}
        for persona in batch:
            row = by_name.get(persona.attributes["state"])
            if row is None:
                raise ValueError(f"persona {persona.id}: unknown state {persona.attributes['state']!r}")
            persona.set("census_region", row["region"], SOURCE)
            persona.set("census_division", row["division"], SOURCE)
        return batch


@hookimpl
def register_enrichers(register):
    register(RegionEnricher)
