"""``grid``: every combination of values for several scenario fields.

Any field ``--set`` can change: model, temperature, prompt style, seed,
option order. The scenario as written is the baseline, and a combination of the values it already has, written
or by default, is not run again (``leave_out_twins``).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from typing import Any

from pydantic import Field

from simrun import Ablation, StrictConfig, hookimpl, set_path


class GridAblation(Ablation):
    """The cartesian product over values of any --set-able fields."""

    name = "grid"
    leave_out_twins = True

    class Config(StrictConfig):
        fields: dict[str, list[Any]] = Field(min_length=1, description="Dotted field path -> the values to try.")

    def variants(self, scenario: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        yield "baseline", copy.deepcopy(scenario)
        paths = list(self.config.fields)
        for values in itertools.product(*(self.config.fields[p] for p in paths)):
            variant = copy.deepcopy(scenario)
            for path, value in zip(paths, values):
                set_path(variant, path, copy.deepcopy(value))
            yield ", ".join(f"{p}={v}" for p, v in zip(paths, values)), variant


@hookimpl
def register_ablations(register):
    register(GridAblation)
