"""``attributes``: leave one persona attribute out of the prompt at a time.

Which attributes move the simulated outcome? Each variant hides one attribute
from the rendered persona (``prompt.exclude``); everything else, the sampled
personas included, stays the same.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from simrun import Ablation, StrictConfig, hookimpl


class AttributeAblation(Ablation):
    """Leave-one-out (or keep-only-one) over persona attributes in the prompt."""

    name = "attributes"

    class Config(StrictConfig):
        attributes: list[str] = Field(min_length=1, description="Attributes to ablate, one variant each.")
        mode: Literal["leave_one_out", "keep_only_one"] = "leave_one_out"

    def variants(self, scenario: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        yield "baseline", copy.deepcopy(scenario)
        for attribute in self.config.attributes:
            variant = copy.deepcopy(scenario)
            prompt = variant.setdefault("prompt", {}) or {}
            variant["prompt"] = prompt
            if self.config.mode == "leave_one_out":
                prompt["exclude"] = sorted(set(prompt.get("exclude", [])) | {attribute})
                yield f"without {attribute}", variant
            else:
                prompt["include"] = [attribute]
                yield f"only {attribute}", variant


@hookimpl
def register_ablations(register):
    register(AttributeAblation)
