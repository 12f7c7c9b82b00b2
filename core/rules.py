"""Declarative consistency rules: what an LLM may not write about a persona, given what the census says.

A rule names conditions on attributes the persona already has (``when``, all
must hold) and tests on attributes a model has just written (``forbid``, any
one that holds is a violation). Rules are data, so a scenario can list its
own, and enrichers that write attributes check their replies against them::

    - id: retired_too_young
      why: under 35 and retired
      when: {age: {lt: 35}}
      forbid: {occupation: {matches: "\\\\bretire"}}

A rule whose ``when`` attributes are missing does not apply; a ``forbid`` test
on an attribute the reply does not contain does not fire. Lists (hobbies)
violate when any element does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class Check(BaseModel):
    """One check of one attribute's value; give exactly one operator."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    equals: Any = None
    in_: list[Any] | None = Field(None, alias="in")
    not_in: list[Any] | None = None
    lt: float | None = None
    le: float | None = None
    gt: float | None = None
    ge: float | None = None
    matches: str | None = Field(None, description="Regular expression searched case-insensitively.")

    @model_validator(mode="after")
    def one_operator(self) -> Check:
        given = [name for name, value in self if value is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of equals, in, not_in, lt, le, gt, ge, matches (given: {', '.join(given) or 'none'})"
            )
        return self

    @field_validator("matches")
    @classmethod
    def compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from exc
        return pattern

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.matches or "", re.IGNORECASE)

    def holds(self, value: Any) -> bool:
        if isinstance(value, list):
            return any(self.holds(item) for item in value)
        if self.matches is not None:
            return bool(self.pattern.search(str(value)))
        if self.equals is not None:
            return value == self.equals
        if self.in_ is not None:
            return value in self.in_
        if self.not_in is not None:
            return value not in self.not_in
        try:
            number = float(value)
        except (TypeError, ValueError):
            return False
        bound, compare = next(
            (b, c)
            for b, c in (
                (self.lt, float.__lt__),
                (self.le, float.__le__),
                (self.gt, float.__gt__),
                (self.ge, float.__ge__),
            )
            if b is not None
        )
        return compare(number, bound)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    why: str = ""
    when: dict[str, Check] = Field(
        default_factory=dict, description="Conditions on the persona's existing attributes; all must hold."
    )
    forbid: dict[str, Check] = Field(
        min_length=1, description="Tests on newly written attributes; any that holds is a violation."
    )

    def applies(self, attributes: dict[str, Any]) -> bool:
        return all(name in attributes and test.holds(attributes[name]) for name, test in self.when.items())

    def violated_by(self, attributes: dict[str, Any], written: dict[str, Any]) -> bool:
        return self.applies(attributes) and any(
            name in written and test.holds(written[name]) for name, test in self.forbid.items()
        )


def violations(rules: Iterable[Rule], attributes: dict[str, Any], written: dict[str, Any]) -> list[Rule]:
    """The rules that ``written`` (a model's new attributes) breaks, given the persona's ``attributes``."""
    return [rule for rule in rules if rule.violated_by(attributes, written)]


def load_rules(path: str | Path) -> list[Rule]:
    """Rules from a YAML list; an invalid rule names its position and field."""
    with Path(path).open() as f:
        raw = yaml.safe_load(f) or []
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a list of rules, got {type(raw).__name__}")
    rules = []
    for index, item in enumerate(raw):
        try:
            rules.append(Rule.model_validate(item))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(map(str, error["loc"]))
            name = item.get("id", "no id") if isinstance(item, dict) else repr(item)
            raise ValueError(f"{path}: rule {index + 1} ({name}), {where}: {error['msg']}") from None
    return rules
