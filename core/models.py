"""The data that crosses every boundary between the engine and its plugins."""

from __future__ import annotations

import functools
import string
from collections.abc import Sequence
from typing import Any, NamedTuple, overload

from pydantic import BaseModel, Field, computed_field, field_validator, model_validator

from .redaction import redact

OPTION_LABELS = string.ascii_uppercase
ALL_STRATA = "ALL"  # the stratum name of the whole population in aggregates and metrics
INVALID_THRESHOLD = 0.10  # show, compare and report mark a step that wrote nothing usable for more personas than this


class SharedProvenance(dict[str, str]):
    """One provenance that many personas share (every census persona's is the same), so a sampler making
    millions allocates it once: read-only, and ``Persona.set`` gives the persona its own copy before changing it."""

    def _shared(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("this provenance is shared by many personas: change it with persona.set(name, value, source)")

    __setitem__ = __delitem__ = update = pop = popitem = setdefault = clear = __ior__ = _shared  # type: ignore[assignment]

    def __reduce__(self) -> tuple[type, tuple[dict[str, str]]]:
        return SharedProvenance, (dict(self),)


class Persona(BaseModel):
    """One simulated person: attributes, where each came from, and a weight.

    ``weight`` is the number of real people this persona stands for, so
    weighted sums over personas are population totals.
    """

    id: int
    stratum: str
    weight: float = Field(gt=0)
    attributes: dict[str, Any] = Field(default_factory=dict)
    provenance: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def trusted(
        cls, id: int, stratum: str, weight: float, attributes: dict[str, Any], provenance: dict[str, str]
    ) -> Persona:
        """A persona from values already known to be valid (a sampler's own tables), not validated: a
        sampler making millions of personas spends a microsecond on each instead of ~7 in ``model_construct``.
        The dicts are kept, not copied: give every persona its own ``attributes``, and one ``SharedProvenance``
        to all the personas whose provenance is the same."""
        persona = object.__new__(cls)
        # what pydantic's __setstate__ sets, without its call (a third of the time)
        set_slot = object.__setattr__
        set_slot(
            persona,
            "__dict__",
            {"id": id, "stratum": stratum, "weight": weight, "attributes": attributes, "provenance": provenance},
        )
        set_slot(persona, "__pydantic_fields_set__", PERSONA_FIELDS)
        set_slot(persona, "__pydantic_extra__", None)
        set_slot(persona, "__pydantic_private__", None)
        return persona

    def set(self, name: str, value: Any, source: str) -> None:
        """Set an attribute and record which data or model it came from."""
        if type(self.provenance) is SharedProvenance:
            self.provenance = dict(self.provenance)
        self.attributes[name] = value
        self.provenance[name] = source

    def group(self, by: str) -> str:
        """The persona's group for ``by``: its stratum, or the value of the attribute so named."""
        return self.stratum if by == "stratum" else str(self.attributes.get(by))

    def mark_invalid(self, step: str, reason: str, source: str, detail: str = "", reply: str = "") -> None:
        """Record that ``step`` (e.g. an enricher's tier) wrote nothing usable for this persona.

        ``reason`` groups failures ("out of schema at household_size: maximum"),
        so ``show``, ``compare`` and ``report`` can name the most common one;
        ``detail`` and the start of the ``reply`` say what exactly went wrong.
        Kept as the hidden attribute ``_<step>_invalid``, never shown in prompts.
        """
        self.set(invalid_key(step), {"reason": reason, "detail": detail, "reply": reply[:500]}, source)


PERSONA_FIELDS = set(Persona.model_fields)  # every field is set; shared, as model_construct shares the set it is given
INVALID_PREFIX, INVALID_SUFFIX = "_", "_invalid"


def invalid_key(step: str) -> str:
    return f"{INVALID_PREFIX}{step}{INVALID_SUFFIX}"


class InvalidOutput(BaseModel):
    """How many of a run's personas one enrichment step wrote nothing usable for, and the most common reason."""

    step: str
    invalid: int = Field(ge=0)
    personas: int = Field(ge=0)
    reason: str
    reason_count: int = Field(ge=0)
    threshold: float = Field(INVALID_THRESHOLD, ge=0, le=1)

    @computed_field
    @property
    def share(self) -> float:
        return self.invalid / self.personas if self.personas else 0.0

    @computed_field
    @property
    def mostly_failed(self) -> bool:
        """More personas than ``threshold`` got nothing usable from this step: its effect is not measured."""
        return self.share > self.threshold

    def summary(self) -> str:
        """The sentence show, compare and report all print."""
        return (
            f"{self.step} wrote nothing usable for {self.invalid} of {self.personas} personas ({self.share:.0%}), "
            f"most often {self.reason} ({self.reason_count})"
        )


class Question(BaseModel):
    """A multiple-choice question; options are shown with letters A, B, ..."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    text: str = Field(min_length=1)
    options: list[str] = Field(min_length=2, max_length=len(OPTION_LABELS))
    ordinal: list[float] | None = Field(
        None,
        description="Positions of the leading options on an ordinal scale; options past its end "
        "(e.g. 'Not sure') have none and are left out of ordinal scores.",
    )

    truth: list[float] | None = Field(
        None,
        description="A real answer distribution over the options (shares or counts), for metrics such as wasserstein.",
    )

    @field_validator("options")
    @classmethod
    def _distinct_options(cls, options: list[str]) -> list[str]:
        seen: set[str] = set()
        for option in options:
            if option.strip().casefold() in seen:
                raise ValueError(f"option '{option}' appears twice: each option must be a different answer")
            seen.add(option.strip().casefold())
        return options

    @model_validator(mode="after")
    def _truth_fits_options(self) -> Question:
        if self.truth is not None:
            if len(self.truth) != len(self.options):
                raise ValueError(f"truth has {len(self.truth)} values but there are {len(self.options)} options")
            if min(self.truth) < 0 or sum(self.truth) <= 0:
                raise ValueError("truth must be non-negative shares or counts with a positive sum")
        return self

    @model_validator(mode="after")
    def _ordinal_fits_options(self) -> Question:
        if self.ordinal is not None and not 1 <= len(self.ordinal) <= len(self.options):
            raise ValueError(
                f"ordinal has {len(self.ordinal)} values; expected 1 to {len(self.options)} "
                "(one per option, leading options first)"
            )
        return self

    @property
    def labels(self) -> list[str]:
        return list(OPTION_LABELS[: len(self.options)])


class Prompt(BaseModel):
    """What a simulator is asked: one persona, one question, as chat messages."""

    persona_id: int
    question_id: str
    system: str
    user: str
    labels: list[str]
    repeat: int = Field(0, ge=0, description="Which repeat of this prompt (scenario repeats); seeds sampling backends.")
    attributes: dict[str, Any] = Field(
        default_factory=dict,
        description="The persona's attributes this prompt shows, name -> value in prompt order (none the prompt "
        "leaves out, an ablation's included): for a simulator that reads them rather than the text. Not part of "
        "the cache key: the system text already shows them.",
    )

    @property
    def text(self) -> str:
        """The prompt as stored in the run log."""
        return f"[system]\n{self.system}\n[user]\n{self.user}"


def failed_answer(labels: list[str], error: str, raw: str = "") -> ModelAnswer:
    """An answer that carries no information: all mass invalid, with the reason (secrets masked, at most 500
    characters).
    """
    return ModelAnswer(distribution=dict.fromkeys(labels, 0.0), invalid=1.0, raw=raw, error=redact(error)[:500])


class ModelAnswer(BaseModel):
    """A simulator's reply to one prompt.

    ``distribution`` maps each option label to its probability among the
    options (sums to 1 unless every option got zero mass); ``invalid`` is the
    probability mass the model put outside the options.
    """

    distribution: dict[str, float]
    invalid: float = Field(ge=0, le=1)
    raw: str = ""
    tokens: int = 0
    latency_ms: float = 0.0
    error: str | None = Field(None, description="Why the backend gave no usable answer; such answers are never cached.")


class Answer(ModelAnswer):
    """A model answer placed in its run: persona (and its stratum and weight), question, repeat, prompt, cache key.
    ``run.answers()`` leaves ``prompt`` empty (``simrun show RUN --prompt`` and ``export`` render it)."""

    persona_id: int
    question_id: str
    repeat: int = 0
    prompt: str = ""
    model: str
    cache_key: str
    cached: bool = False
    stratum: str = ""
    weight: float = 1.0


def cache_key_text(keys: bytes) -> str:
    """An answer's cache keys as ``Answer.cache_key`` shows them: 32 hex digits per option order, comma-separated."""
    return ",".join(keys[i : i + 16].hex() for i in range(0, len(keys), 16))


def prompt_text(system: str, users: list[str]) -> str:
    """A prompt as the run log shows it: one ``[system]``/``[user]`` pair per option order asked."""
    return "\n\n".join(f"[system]\n{system}\n[user]\n{user}" for user in users)


class Answered(NamedTuple):
    """One answer as the engine keeps it on its way to the run log: what an ``Answer`` is made from."""

    persona_id: int
    question_id: str
    repeat: int
    reply: ModelAnswer
    keys: bytes  # the cache key of each option order asked, 16 bytes each
    cached: bool
    system: str
    users: list[str]
    held: bool = False  # the cache holds this very reply under ``keys``: the run log stores it there only


class Answers(Sequence[Answer]):
    """A batch's answers. The engine writes them from plain records; each ``Answer``, prompt text and all, is
    made only when an observer reads it, so a run nobody reads answers of never pays for them."""

    def __init__(self, model: str, records: list[Answered], personas: Sequence[Persona] = ()):
        self.model, self.records, self.personas = model, records, personas

    @functools.cached_property
    def people(self) -> dict[int, tuple[str, float]]:
        """Persona id -> (stratum, weight), for the answers an observer reads (never on the engine's own path)."""
        return {p.id: (p.stratum, p.weight) for p in self.personas}

    def __len__(self) -> int:
        return len(self.records)

    @overload
    def __getitem__(self, index: int) -> Answer: ...

    @overload
    def __getitem__(self, index: slice) -> list[Answer]: ...

    def __getitem__(self, index: int | slice) -> Answer | list[Answer]:
        if isinstance(index, slice):
            return [self.made(record) for record in self.records[index]]
        return self.made(self.records[index])

    def made(self, record: Answered) -> Answer:
        reply = record.reply
        stratum, weight = self.people.get(record.persona_id, ("", 1.0))
        return Answer(
            distribution=reply.distribution,
            invalid=reply.invalid,
            raw=reply.raw,
            tokens=reply.tokens,
            latency_ms=reply.latency_ms,
            error=reply.error,
            persona_id=record.persona_id,
            question_id=record.question_id,
            repeat=record.repeat,
            prompt=prompt_text(record.system, record.users),
            model=self.model,
            cache_key=cache_key_text(record.keys),
            cached=record.cached,
            stratum=stratum,
            weight=weight,
        )


class RunInfo(BaseModel):
    """What lifecycle hooks learn about the run they observe."""

    id: str
    name: str
    seed: int
    db_path: str
    resumed: bool = False
    total: int = Field(0, ge=0, description="Personas the run will have, resumed ones included (for progress).")
