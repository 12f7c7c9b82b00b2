"""``swap``: the same scenario with one part replaced by each of several alternatives.

The seed paper's main experiment is a swap: the same personas and questions
with the enricher tiers meta / objective / subjective / descriptive. Any
scenario field can be swapped: ``enrichers``, ``simulator``, ``prompt.style``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from pydantic import Field, model_validator

from simrun import Ablation, StrictConfig, hookimpl, set_path


class SwapAblation(Ablation):
    """Replace one scenario field with each of several alternatives (e.g. enricher tiers, models)."""

    name = "swap"

    class Config(StrictConfig):
        field: str = Field(description="Dotted path of the field to replace, e.g. enrichers or simulator.")
        options: dict[str, Any] = Field(min_length=1, description="Variant label -> the value put at field.")
        baseline: str | None = Field(
            None, description="The option to compare the others with; default: the scenario as written."
        )

        @model_validator(mode="after")
        def _baseline_is_an_option(self):
            if self.baseline is not None and self.baseline not in self.options:
                raise ValueError(f"baseline '{self.baseline}' is not one of the options {sorted(self.options)}")
            return self

    def variants(self, scenario: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        labels = list(self.config.options)
        if self.config.baseline is None:
            yield "baseline", copy.deepcopy(scenario)
        else:
            labels.remove(self.config.baseline)
            labels.insert(0, self.config.baseline)
        for label in labels:
            variant = copy.deepcopy(scenario)
            set_path(variant, self.config.field, copy.deepcopy(self.config.options[label]))
            yield label, variant


@hookimpl
def register_ablations(register):
    register(SwapAblation)
