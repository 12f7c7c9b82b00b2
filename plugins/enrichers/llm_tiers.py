"""The seed paper's persona tiers as enrichers: an LLM writes more and more of each persona.

``objective_tabular`` fills measurable facts the census does not give,
``subjective_tabular`` personality, values and outlook, and ``descriptive`` a
free-text narrative, each conditioned on everything the persona has so far.
The paper finds that the more of a persona a model writes, the further the
simulated population drifts (left, positive, subjective); these plugins make
that measurable: every attribute they write carries provenance
``llm:<model>``, and a reply that is not valid after ``attempts`` tries is
kept, with its raw text, as ``_<tier>_invalid`` (never shown in prompts,
counted by the persona_text metric) rather than dropped or crashing the run.
Prompts are templates a scenario can override (``{persona}``, ``{schema}``).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import jsonschema
from pydantic import Field

from simrun import hookimpl
from simrun.components import EnrichContext, Enricher, StrictConfig
from simrun.models import Persona

INDUSTRIES = ["agriculture", "construction", "manufacturing", "retail and wholesale trade", "transportation",
              "information and technology", "finance and real estate", "professional services", "education",
              "health care", "hospitality and food service", "public administration", "other", "not working"]

OBJECTIVE_SCHEMA = {
    "type": "object",
    "properties": {
        "occupation": {"type": "string", "minLength": 2, "maxLength": 60},
        "industry": {"enum": INDUSTRIES},
        "household_size": {"type": "integer", "minimum": 1, "maximum": 12},
        "health_insurance": {"enum": ["employer", "individual", "medicare", "medicaid", "military", "none"]},
        "urbanicity": {"enum": ["urban", "suburban", "rural"]},
        "housing": {"enum": ["owns", "rents", "lives with family", "other"]},
    },
    "required": ["occupation", "industry", "household_size", "health_insurance", "urbanicity", "housing"],
    "additionalProperties": False,
}
LEVEL = {"enum": ["low", "medium", "high"]}
SUBJECTIVE_SCHEMA = {
    "type": "object",
    "properties": {
        "openness": LEVEL, "conscientiousness": LEVEL, "extraversion": LEVEL, "agreeableness": LEVEL, "neuroticism": LEVEL,
        "core_values": {"type": "array", "items": {"type": "string", "maxLength": 40}, "minItems": 1, "maxItems": 3},
        "hobbies": {"type": "array", "items": {"type": "string", "maxLength": 40}, "minItems": 1, "maxItems": 3},
        "life_outlook": {"enum": ["optimistic", "mixed", "pessimistic"]},
        "defining_quirk": {"type": "string", "maxLength": 100},
    },
    "required": ["openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism", "core_values", "hobbies", "life_outlook", "defining_quirk"],
    "additionalProperties": False,
}

OBJECTIVE_PROMPT = (
    "Here is a person living in the United States:\n{persona}\n\n"
    "Fill in measurable facts about this person that fit everything above. "
    "Reply with a JSON object only, matching this JSON Schema:\n{schema}"
)
SUBJECTIVE_PROMPT = (
    "Here is a person living in the United States:\n{persona}\n\n"
    "Describe this person's personality (Big Five levels), core values, hobbies, outlook on life "
    "and one defining quirk, consistent with everything above. "
    "Reply with a JSON object only, matching this JSON Schema:\n{schema}"
)
DESCRIPTIVE_PROMPT = (
    "Here is a person living in the United States:\n{persona}\n\n"
    "Write a short first-person description of this person's life, background and views, in at most "
    "five sentences, consistent with everything above. Reply with the description only."
)
RETRY_NOTE = "\n\nYour previous reply was not valid ({error}). Reply again, with a JSON object only."


def persona_table(persona: Persona) -> str:
    return "\n".join(f"{k.replace('_', ' ')}: {', '.join(v) if isinstance(v, list) else v}"
                     for k, v in persona.attributes.items() if not k.startswith("_"))


class TierConfig(StrictConfig):
    prompt: str | None = Field(None, description="Template with {persona} (and {schema} for the tables); default: the tier's own.")
    max_tokens: int = Field(256, ge=16)
    temperature: float = Field(0.0, ge=0)
    attempts: int = Field(3, ge=1, description="Tries before the reply is recorded as invalid.")


class TableTier(Enricher):
    """A tier whose reply is a JSON object of attributes, validated against a schema."""

    tier: ClassVar[str]
    schema: ClassVar[dict[str, Any]]
    default_prompt: ClassVar[str]
    Config = TierConfig

    def enrich(self, batch: list[Persona], context: EnrichContext) -> list[Persona]:
        template = self.config.prompt or self.default_prompt
        schema_text = json.dumps(self.schema)
        base = {p.id: template.format(persona=persona_table(p), schema=schema_text) for p in batch}
        prompts = dict(base)
        pending = {p.id: p for p in batch}
        last: dict[int, tuple[str, str]] = {}
        for _ in range(self.config.attempts):
            ids = list(pending)
            if not ids:
                break
            replies = context.generate([prompts[i] for i in ids], max_tokens=self.config.max_tokens,
                                       temperature=self.config.temperature, json_schema=self.schema)
            for pid, text in zip(ids, replies):
                error = self.check(text)
                if error is None:
                    persona = pending.pop(pid)
                    for name, value in json.loads(text).items():
                        persona.set(name, value, f"llm:{context.simulator.model}")
                else:
                    last[pid] = (text, error)
                    prompts[pid] = base[pid] + RETRY_NOTE.format(error=error)
        for pid, persona in pending.items():
            text, error = last[pid]
            persona.set(f"_{self.tier}_invalid", f"{error}: {text[:500]}", f"llm:{context.simulator.model}")
        return batch

    def check(self, text: str) -> str | None:
        """Why a reply is unusable, or None."""
        if not text.strip():
            return "empty reply"
        try:
            jsonschema.validate(json.loads(text), self.schema)
        except json.JSONDecodeError as exc:
            return f"not JSON: {exc.msg}"
        except jsonschema.ValidationError as exc:
            return f"out of schema: {exc.message[:200]}"
        return None


class ObjectiveTabular(TableTier):
    """The LLM fills measurable facts (occupation, industry, household, insurance, ...) as schema-checked JSON."""

    name = "objective_tabular"
    tier = "objective"
    schema = OBJECTIVE_SCHEMA
    default_prompt = OBJECTIVE_PROMPT
    provides = frozenset(OBJECTIVE_SCHEMA["properties"])


class SubjectiveTabular(TableTier):
    """The LLM writes personality, values, hobbies, outlook and a quirk as schema-checked JSON."""

    name = "subjective_tabular"
    tier = "subjective"
    schema = SUBJECTIVE_SCHEMA
    default_prompt = SUBJECTIVE_PROMPT
    provides = frozenset(SUBJECTIVE_SCHEMA["properties"])
    uses = frozenset(OBJECTIVE_SCHEMA["properties"])


class Descriptive(Enricher):
    """The LLM writes a short first-person narrative of the persona, conditioned on all its attributes."""

    name = "descriptive"
    provides = frozenset({"description"})
    uses = frozenset(OBJECTIVE_SCHEMA["properties"]) | frozenset(SUBJECTIVE_SCHEMA["properties"])
    Config = TierConfig

    def enrich(self, batch: list[Persona], context: EnrichContext) -> list[Persona]:
        template = self.config.prompt or DESCRIPTIVE_PROMPT
        texts = context.generate([template.format(persona=persona_table(p)) for p in batch],
                                 max_tokens=self.config.max_tokens, temperature=self.config.temperature)
        for persona, text in zip(batch, texts):
            text = text.strip()
            if len(text) < 20:
                persona.set("_descriptive_invalid", f"empty or too short: {text[:200]}", f"llm:{context.simulator.model}")
            else:
                persona.set("description", text, f"llm:{context.simulator.model}")
        return batch


@hookimpl
def register_enrichers(register):
    register(ObjectiveTabular)
    register(SubjectiveTabular)
    register(Descriptive)
