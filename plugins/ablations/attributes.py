"""``attributes``: leave one persona attribute out of the prompt at a time.

Which attributes move the simulated outcome? Each variant hides one attribute
from the rendered persona (``prompt.exclude``); everything else, the sampled
personas included, stays the same.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from simrun import Ablation, CheckContext, Problem, StrictConfig, hookimpl


class AttributeAblation(Ablation):
    """Leave-one-out (or keep-only-one) over persona attributes in the prompt."""

    name = "attributes"

    class Config(StrictConfig):
        attributes: list[str] = Field(min_length=1, description="Attributes to ablate, one variant each.")
        mode: Literal["leave_one_out", "keep_only_one"] = "leave_one_out"

    @classmethod
    def check(cls, config: Config, context: CheckContext) -> list[Problem]:
        """An attribute no persona has, or one the prompt never shows, makes a variant equal to the baseline: its
        shift of 0 would read as "this attribute does not matter"."""
        provided, prompt = context.provided(), context.scenario.prompt
        problems = []
        for i, attribute in enumerate(config.attributes):
            if provided is not None and attribute not in provided:
                near = difflib.get_close_matches(attribute, sorted(provided), n=1)
                problems.append(
                    Problem(
                        f"attributes.{i}",
                        f"no persona has an attribute '{attribute}'"
                        + (f"; did you mean '{near[0]}'?" if near else "")
                        + f" The sampler and enrichers provide: {', '.join(sorted(provided))}",
                    )
                )
            elif attribute in prompt.exclude or (prompt.include is not None and attribute not in prompt.include):
                problems.append(
                    Problem(
                        f"attributes.{i}",
                        f"'{attribute}' is never shown in the prompt (prompt.exclude or prompt.include), so leaving "
                        "it out changes nothing",
                    )
                )
        return problems

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
