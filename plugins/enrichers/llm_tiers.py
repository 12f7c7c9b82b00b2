"""The seed paper's persona tiers as enrichers: an LLM writes more and more of each persona.

``objective_tabular`` fills measurable facts the census does not give,
``subjective_tabular`` personality, values and outlook, and ``descriptive`` a
free-text narrative, each conditioned on everything the persona has so far.
The paper finds that the more of a persona a model writes, the further the
simulated population drifts (left, positive, subjective); these plugins make
that measurable: every attribute they write carries provenance
``llm:<model>``, and a reply that is not valid after ``attempts`` tries is
kept, with its reason and raw text, as ``_<tier>_invalid``
(``Persona.mark_invalid``: never shown in prompts, counted by the
persona_text metric, named by ``show``, ``compare`` and ``report``) rather
than dropped or crashing the run.
Prompts are templates a scenario can override (``{persona}``, ``{schema}``).
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any, ClassVar, Literal, NamedTuple

import jsonschema
from pydantic import Field

from simrun import EnrichContext, Enricher, Persona, Rule, StrictConfig, data, hookimpl, load_rules, violations

# The ACS DP03 industry groups (so the census can calibrate them), plus not working.
INDUSTRIES = [
    "agriculture and mining",
    "construction",
    "manufacturing",
    "wholesale trade",
    "retail trade",
    "transportation and utilities",
    "information",
    "finance and real estate",
    "professional and business services",
    "education and health care",
    "arts, recreation and food services",
    "other services",
    "public administration",
    "not working",
]

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
        "openness": LEVEL,
        "conscientiousness": LEVEL,
        "extraversion": LEVEL,
        "agreeableness": LEVEL,
        "neuroticism": LEVEL,
        "core_values": {"type": "array", "items": {"type": "string", "maxLength": 40}, "minItems": 1, "maxItems": 3},
        "hobbies": {"type": "array", "items": {"type": "string", "maxLength": 40}, "minItems": 1, "maxItems": 3},
        "life_outlook": {"enum": ["optimistic", "mixed", "pessimistic"]},
        "defining_quirk": {"type": "string", "maxLength": 100},
    },
    "required": [
        "openness",
        "conscientiousness",
        "extraversion",
        "agreeableness",
        "neuroticism",
        "core_values",
        "hobbies",
        "life_outlook",
        "defining_quirk",
    ],
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
RETRY_NOTE = "\n\nYour previous reply was not usable ({error}). Reply again{form}."
DEFAULT_RULES = "consistency_rules.yaml"


class Unusable(NamedTuple):
    """Why a reply could not be used: a ``reason`` alike replies share, and the ``detail`` of this one."""

    reason: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


def persona_table(persona: Persona) -> str:
    return "\n".join(
        f"{k.replace('_', ' ')}: {', '.join(v) if isinstance(v, list) else v}"
        for k, v in persona.attributes.items()
        if not k.startswith("_")
    )


class TierConfig(StrictConfig):
    prompt: str | None = Field(
        None, description="Template with {persona} (and {schema} for the tables); default: the tier's own."
    )
    max_tokens: int = Field(256, ge=16)
    temperature: float = Field(0.0, ge=0)
    attempts: int = Field(
        3, ge=1, description="Tries before the reply is recorded as invalid (or its rule violations flagged)."
    )
    rules: list[Rule] | None = Field(
        None, description="Consistency rules the reply must keep; default: the shipped consistency_rules.yaml."
    )
    on_violation: Literal["regenerate", "flag"] = Field(
        "regenerate",
        description="regenerate: ask again (within attempts), then flag; "
        "flag: keep the reply and mark the broken rules.",
    )


class Tier(Enricher):
    """An LLM tier: prompts built from the persona so far, replies parsed, checked against rules, retried with the
    reason.

    A reply that cannot be parsed after ``attempts`` is kept as ``_<tier>_invalid``.
    One that parses but breaks a consistency rule is asked again (``regenerate``)
    and, if it still breaks it at the last attempt, kept and flagged: the rule ids
    go to ``_<tier>_violations``; those that forced a new attempt to
    ``_<tier>_regenerated`` (both counted by the persona_text metric).
    """

    tier: ClassVar[str]
    default_prompt: ClassVar[str]
    json_schema: ClassVar[dict[str, Any] | None] = None
    reply_form: ClassVar[str] = ""
    Config = TierConfig

    @cached_property
    def rules(self) -> list[Rule]:
        return self.config.rules if self.config.rules is not None else load_rules(data.path(DEFAULT_RULES))

    def parse(self, text: str) -> dict[str, Any] | Unusable:
        """The attributes a reply writes, or why it is unusable."""
        raise NotImplementedError

    def prompt(self, persona: Persona) -> str:
        return (self.config.prompt or self.default_prompt).format(
            persona=persona_table(persona), schema=json.dumps(self.json_schema)
        )

    def enrich(self, batch: list[Persona], context: EnrichContext) -> list[Persona]:
        provenance = f"llm:{context.simulator.model}"
        base = {p.id: self.prompt(p) for p in batch}
        prompts = dict(base)
        pending = {p.id: p for p in batch}
        unusable: dict[int, tuple[str, Unusable]] = {}
        broken: dict[int, tuple[dict[str, Any], list[Rule]]] = {}
        regenerated: dict[int, set[str]] = {}
        for attempt in range(1, self.config.attempts + 1):
            ids = list(pending)
            if not ids:
                break
            replies = context.generate(
                [prompts[i] for i in ids],
                max_tokens=self.config.max_tokens,
                temperature=self.config.temperature,
                json_schema=self.json_schema,
            )
            for pid, text in zip(ids, replies):
                written = self.parse(text)
                if isinstance(written, Unusable):
                    unusable[pid] = (text, written)
                    prompts[pid] = base[pid] + RETRY_NOTE.format(error=written, form=self.reply_form)
                    continue
                unusable.pop(pid, None)
                persona = pending[pid]
                broken_rules = violations(self.rules, persona.attributes, written)
                if broken_rules and self.config.on_violation == "regenerate" and attempt < self.config.attempts:
                    broken[pid] = (written, broken_rules)
                    regenerated.setdefault(pid, set()).update(rule.id for rule in broken_rules)
                    reason = "; ".join(f"{rule.why or rule.id}" for rule in broken_rules)
                    prompts[pid] = base[pid] + RETRY_NOTE.format(
                        error=f"it contradicts the person's facts: {reason}", form=self.reply_form
                    )
                    continue
                broken.pop(pid, None)
                self.accept(pending.pop(pid), written, broken_rules, provenance)
        for pid, persona in pending.items():
            if pid in broken:  # a usable but rule-breaking reply beats a later unusable one
                self.accept(persona, *broken[pid], provenance)
            else:
                text, error = unusable[pid]
                persona.mark_invalid(self.tier, error.reason, provenance, detail=error.detail, reply=text)
        by_id = {p.id: p for p in batch}
        for pid, rule_ids in regenerated.items():
            by_id[pid].set(f"_{self.tier}_regenerated", sorted(rule_ids), "rules")
        return batch

    def accept(self, persona: Persona, written: dict[str, Any], broken_rules: list[Rule], provenance: str) -> None:
        for name, value in written.items():
            persona.set(name, value, provenance)
        if broken_rules:
            persona.set(f"_{self.tier}_violations", [rule.id for rule in broken_rules], "rules")


class TableTier(Tier):
    """A tier whose reply is a JSON object of attributes, validated against a schema."""

    reply_form = ", with a JSON object only"

    def parse(self, text: str) -> dict[str, Any] | Unusable:
        if not text.strip():
            return Unusable("empty reply")
        try:
            value = json.loads(text)
            jsonschema.validate(value, self.json_schema)
        except json.JSONDecodeError as exc:
            return Unusable("not JSON", exc.msg)
        except jsonschema.ValidationError as exc:
            where = "/".join(map(str, exc.absolute_path)) or "the top level"
            return Unusable(f"out of schema at {where}: {exc.validator}", exc.message[:200])
        return value


class ObjectiveTabular(TableTier):
    """The LLM fills measurable facts (occupation, industry, household, insurance, ...) as schema-checked JSON."""

    name = "objective_tabular"
    tier = "objective"
    json_schema = OBJECTIVE_SCHEMA
    default_prompt = OBJECTIVE_PROMPT
    provides = frozenset(OBJECTIVE_SCHEMA["properties"])


class SubjectiveTabular(TableTier):
    """The LLM writes personality, values, hobbies, outlook and a quirk as schema-checked JSON."""

    name = "subjective_tabular"
    tier = "subjective"
    json_schema = SUBJECTIVE_SCHEMA
    default_prompt = SUBJECTIVE_PROMPT
    provides = frozenset(SUBJECTIVE_SCHEMA["properties"])
    uses = frozenset(OBJECTIVE_SCHEMA["properties"])


class Descriptive(Tier):
    """The LLM writes a short first-person narrative of the persona, conditioned on all its attributes."""

    name = "descriptive"
    tier = "descriptive"
    default_prompt = DESCRIPTIVE_PROMPT
    reply_form = ", with the description only"
    provides = frozenset({"description"})
    uses = frozenset(OBJECTIVE_SCHEMA["properties"]) | frozenset(SUBJECTIVE_SCHEMA["properties"])

    def parse(self, text: str) -> dict[str, Any] | Unusable:
        text = text.strip()
        return {"description": text} if len(text) >= 20 else Unusable("empty or too short")


@hookimpl
def register_enrichers(register):
    register(ObjectiveTabular)
    register(SubjectiveTabular)
    register(Descriptive)
