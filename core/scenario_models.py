"""What a scenario is: the pydantic models a scenario file is validated into, and its errors, each with where it is.

``simrun.scenario`` loads files into these (YAML, ``--set`` overrides, ``{from: FILE}`` questions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .instruments import Format
from .models import Question
from .prompts import PromptSpec
from .yaml_input import PathKey


class ComponentSpec(BaseModel):
    """``use: NAME`` picks a registered component; ``with:`` is its Config."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    use: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")

    @field_validator("with_", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value


class AblationSpec(ComponentSpec):
    """``ablation: {use: NAME, with: {...}, replicates: K}``: the ablation, and how many seeds each variant runs
    under (``simrun sweep --seeds K``)."""

    replicates: int = Field(
        1,
        ge=1,
        le=100,
        description="Run every variant under this many seeds (seed, seed + 1, ...); simrun compare pools them, "
        "and its intervals include what changes from seed to seed.",
    )


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    seed: int = Field(0, ge=0, lt=2**63, description="Seeds sampling and enrichment: the same seed gives the same run.")
    batch_size: int = Field(default=64, ge=1)
    repeats: int = Field(
        default=1, ge=1, description="Ask every persona each question this many times (for the stability metric)."
    )
    sampler: ComponentSpec
    enrichers: list[ComponentSpec] = Field(default_factory=list)
    simulator: ComponentSpec
    executor: ComponentSpec = Field(
        default_factory=lambda: ComponentSpec(use="local"),
        description="Where the simulator's calls run: local (in this process, the default) or ray (a Ray cluster).",
    )
    prompt: PromptSpec = Field(default_factory=PromptSpec)
    questions: list[Question] = Field(
        default_factory=list,
        description="Asked of every persona; metrics such as opinion add their own. An item {from: FILE} brings "
        "a survey's questions (Qualtrics .qsf, Pew/OpinionQA question file, CSV bank: see `simrun questions`).",
    )
    metrics: dict[str, dict[str, Any] | None] = Field(
        default_factory=dict,
        description="metric name -> its config; a 'use' key picks the plugin when the name differs",
    )
    ablation: AblationSpec | None = None
    baselines: list[Literal["uniform", "no_persona"]] = Field(
        default_factory=lambda: ["uniform", "no_persona"],
        description="Scores beside the personas' for metrics that declare baselines (election, opinion, "
        "wasserstein): uniform answers, and the model asked with no persona in the prompt. [] for none.",
    )

    @field_validator("questions")
    @classmethod
    def _unique_ids(cls, questions: list[Question]) -> list[Question]:
        seen: set[str] = set()
        for q in questions:
            if q.id in seen:
                raise ValueError(f"question id '{q.id}' appears twice")
            seen.add(q.id)
        return questions

    def metric_specs(self) -> list[tuple[str, ComponentSpec]]:
        specs = []
        for name, config in self.metrics.items():
            config = dict(config or {})
            specs.append((name, ComponentSpec(use=config.pop("use", name), **{"with": config})))
        return specs


@dataclass
class ScenarioIssue:
    path: PathKey
    message: str
    line: int | None = None


class ScenarioError(Exception):
    """One or more problems in a scenario, each with where it is."""

    def __init__(self, source: str, issues: list[ScenarioIssue]):
        self.source, self.issues = source, issues
        super().__init__(self.render())

    def render(self) -> str:
        lines = []
        for issue in self.issues:
            where = f"{self.source}:{issue.line}" if issue.line else self.source
            field = ".".join(str(p) for p in issue.path)
            lines.append(f"{where}: {field + ': ' if field else ''}{issue.message}")
        return "\n".join(lines)


class LoadedScenario(BaseModel):
    """A validated scenario with its source text, for the run log; notices are worth saying before a run."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    scenario: Scenario
    data: dict[str, Any]
    text: str
    source: str
    notices: list[str] = []


class QuestionFile(BaseModel):
    """``questions: [{from: FILE}]``: a survey instrument's questions, read when the scenario is loaded."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from", description="A .qsf, Pew/OpinionQA question file or CSV question bank.")
    format: Format | None = Field(None, description="qualtrics, pew or csv; guessed from the file when not given.")
    only: list[str] | None = Field(None, min_length=1, description="Just these question ids, in this order.")
