"""How a persona and a question become prompt text.

The templates are data: a scenario's ``prompt:`` block overrides any of them,
and an ablation can drop attributes through ``exclude``.
"""

from __future__ import annotations

import string
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .models import Persona, Prompt, Question

DEFAULT_SYSTEM = (
    "You are role-playing as the person described below. Answer every question as this "
    "person would, based on who they are.\n\n{persona}"
)
DEFAULT_QUESTION = "{question}\n\n{options}\n\nAnswer with the letter of one option only."

FIELDS = {"system": {"persona"}, "question": {"question", "options"}}


def _label(attribute: str) -> str:
    return attribute.replace("_", " ")


def _verb(value: object) -> str:
    return "are" if isinstance(value, (list, tuple)) and len(value) > 1 else "is"


def _text(value: object, last: str = ", ") -> str:
    """A value as prose: a list's items joined (never Python's repr of the list)."""
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
        return ", ".join(items[:-1]) + last + items[-1] if len(items) > 1 else "".join(items)
    return str(value)


class PromptSpec(BaseModel):
    """The ``prompt:`` block of a scenario."""

    model_config = ConfigDict(extra="forbid")

    style: Literal["table", "first_person"] = "table"
    include: list[str] | None = Field(default=None, description="Attributes to show, in order; default: all of them.")
    exclude: list[str] = Field(default_factory=list, description="Attributes never shown.")
    system: str = DEFAULT_SYSTEM
    question: str = DEFAULT_QUESTION
    option_order: Literal["original", "reversed", "both", "cyclic"] = Field(
        "original",
        description="Debias position effects: ask each question in several option orders and average "
        "('both' = original and reversed; 'cyclic' = every rotation).",
    )

    @field_validator("system", "question")
    @classmethod
    def _known_placeholders(cls, template: str, info) -> str:
        allowed = FIELDS[info.field_name]
        used = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        unknown = used - allowed
        if unknown:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; this template may use {sorted(allowed)}")
        return template

    def shown(self, persona: Persona) -> list[tuple[str, object]]:
        """The attributes the prompt shows; names starting with '_' are bookkeeping, never shown."""
        names = self.include if self.include is not None else [a for a in persona.attributes if not a.startswith("_")]
        return [
            (name, persona.attributes[name])
            for name in names
            if name in persona.attributes and name not in self.exclude
        ]

    def render_persona(self, persona: Persona) -> str:
        shown = self.shown(persona)
        if self.style == "table":
            return "\n".join(f"{_label(name)}: {_text(value)}" for name, value in shown)
        return " ".join(f"My {_label(name)} {_verb(value)} {_text(value, ' and ')}." for name, value in shown)

    def orders(self, n: int) -> list[list[int]]:
        """The option orders to ask in: each a list of original option indexes, by position."""
        original = list(range(n))
        if self.option_order == "original":
            return [original]
        if self.option_order == "reversed":
            return [original[::-1]]
        if self.option_order == "both":
            return [original, original[::-1]]
        return [original[k:] + original[:k] for k in range(n)]

    def render(
        self, persona: Persona, question: Question, persona_text: str | None = None, order: list[int] | None = None
    ) -> Prompt:
        """``persona_text`` lets callers render a persona once for all its questions;
        ``order`` shows the options in another order (labels stay A, B, ... by position)."""
        persona_text = persona_text if persona_text is not None else self.render_persona(persona)
        order = order if order is not None else list(range(len(question.options)))
        options = "\n".join(f"{label}. {question.options[i]}" for label, i in zip(question.labels, order))
        return Prompt(
            persona_id=persona.id,
            question_id=question.id,
            system=self.system.format(persona=persona_text),
            user=self.question.format(question=question.text, options=options),
            labels=question.labels,
        )
