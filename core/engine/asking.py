"""Asking personas: every question of a batch, in every option order, each persona's prompt rendered once.

Answers given under another option order are mapped back to the question's own options and averaged
(``combine_orders``), so an answer is always about the options as the scenario lists them.
"""

from __future__ import annotations

import json
import string
from typing import NamedTuple

from ..components import Executor
from ..models import Answered, Answers, ModelAnswer, Persona, Prompt, Question
from ..scenario import LoadedScenario
from ..store import PromptKeys
from ..store.encoding import json_default
from .calls import ModelCalls


def combine_orders(question: Question, replies: list[tuple[list[int], ModelAnswer]]) -> ModelAnswer:
    """Map answers given under other option orders back to the original options and average them."""
    usable = [(order, r) for order, r in replies if r.error is None]
    if not usable:
        return replies[0][1]
    labels = question.labels
    distribution = dict.fromkeys(labels, 0.0)
    for order, reply in usable:
        for position, original in enumerate(order):
            distribution[labels[original]] += reply.distribution.get(labels[position], 0.0) / len(usable)
    errors = [r.error for _, r in replies if r.error]
    raw = " | ".join(r.raw for _, r in replies)
    return ModelAnswer(
        distribution=distribution,
        invalid=sum(r.invalid for _, r in usable) / len(usable),
        raw=raw + (f" | {len(errors)} order(s) failed: {errors[0]}" if errors else ""),
        tokens=sum(r.tokens for _, r in replies),
        latency_ms=sum(r.latency_ms for _, r in replies),
    )


PLAIN = (str, int, float, bool, type(None))


def as_stored(persona: Persona) -> Persona:
    """The persona as the run log will give it back: a tuple is a list, a dict key a string. Its prompt is
    rendered from this, so the prompt re-rendered from the log is the one asked."""
    if all(type(value) in PLAIN for value in persona.attributes.values()):
        return persona
    values = json.loads(json.dumps(list(persona.attributes.values()), default=json_default))
    return persona.model_copy(update={"attributes": dict(zip(persona.attributes, values))})


def question_texts(loaded: LoadedScenario) -> list[tuple[Question, list[tuple[list[int], str]]]]:
    """Per question, each option order asked and the user text it gives: rendered once, whoever asks."""
    spec, nobody = loaded.scenario.prompt, Persona(id=0, stratum="", weight=1.0)
    return [
        (q, [(order, spec.render(nobody, q, "", order).user) for order in spec.orders(len(q.options))])
        for q in loaded.scenario.questions
    ]


def asked(loaded: LoadedScenario) -> dict[str, dict]:
    """Per question, its option labels and the user text of each option order: what re-renders a stored prompt."""
    return {q.id: {"labels": q.labels, "users": [user for _, user in orders]} for q, orders in question_texts(loaded)}


class Ask(NamedTuple):
    """One question asked of every persona in a batch, in one repeat: the user text of each option order."""

    question: Question
    labels: tuple[str, ...]
    repeat: int
    users: list[str]
    orders: list[tuple[list[int], str]]
    plain: bool  # asked once, in the question's own option order


class Asking:
    """A batch's personas asked every question: made with its prompts keyed and the cache read, its misses sent a
    chunk at a time (``requests``), their replies taken as they arrive (``take``), and, once ``complete``, its
    ``answers``. The hot path of a run: a persona's system text is rendered and hashed once for all its
    questions, a question's user texts once per batch, and a ``Prompt`` is made only for a call the cache lacks."""

    def __init__(self, batch: list[Persona], loaded: LoadedScenario, executor: Executor, calls: ModelCalls):
        spec = loaded.scenario.prompt
        self.batch, self.executor, self.calls = batch, executor, calls
        self.asks = [  # what each persona is asked, in order: one per question and repeat
            Ask(
                question,
                tuple(question.labels),
                repeat,
                [user for _, user in orders],
                orders,
                len(orders) == 1 and orders[0][0] == sorted(orders[0][0]),
            )
            for question, orders in question_texts(loaded)
            for repeat in range(loaded.scenario.repeats)
        ]
        simulator = executor.simulator
        prompt_keys = PromptKeys(simulator.cache_identity(), [(a.labels, a.repeat, a.users) for a in self.asks])
        self.stored = [as_stored(persona) for persona in batch]
        self.spec = spec
        self.systems = [spec.system.format(persona=spec.render_persona(persona)) for persona in self.stored]
        keys = [key for system in self.systems for key in prompt_keys.persona(system)]
        self.prompts = [(a, user) for a in self.asks for user in a.users]  # a persona's, in the order of its keys
        # a system template without {persona} shows none: its prompts carry no attributes, as their text and key
        # have none
        self.shows_persona = any(field == "persona" for _, field, _, _ in string.Formatter().parse(spec.system))
        self.shown: dict[int, dict] = {}  # persona index -> the attributes its prompts show, made at its first miss
        self.lookup = calls.answer_lookup(keys, self.prompt, simulator.chunk_size, prompt_keys)
        self.waiting = len(self.lookup.chunks)

    def prompt(self, i: int) -> Prompt:
        which, (a, user) = i // len(self.prompts), self.prompts[i % len(self.prompts)]
        if which not in self.shown:
            self.shown[which] = dict(self.spec.shown(self.stored[which])) if self.shows_persona else {}
        return Prompt(
            persona_id=self.batch[which].id,
            question_id=a.question.id,
            system=self.systems[which],
            user=user,
            labels=a.labels,
            repeat=a.repeat,
            attributes=self.shown[which],
        )

    def requests(self, chunk: int) -> list[Prompt]:
        return [self.prompt(i) for i in self.lookup.chunks[chunk]]

    def take(self, chunk: int, replies: list[ModelAnswer]) -> None:
        self.calls.keep_answers(self.lookup, chunk, replies)
        self.waiting -= 1

    @property
    def complete(self) -> bool:
        """Every reply in: its own chunks', and those of prompts an earlier batch sent."""
        return self.waiting == 0 and not self.lookup.awaited

    def answers(self) -> Answers:
        """Every persona's answer to every question and repeat, option orders combined."""
        keys, cached, replies, held = self.lookup.keys, self.lookup.cached, self.lookup.replies, self.lookup.held
        records = []
        start = 0
        for persona, system in zip(self.batch, self.systems):
            for a in self.asks:
                if a.plain:
                    reply, key = replies[keys[start]], keys[start]
                    same = key in held
                    if tuple(reply.distribution) != a.labels:  # other labels or order: mapped back to the options
                        reply, same = combine_orders(a.question, [(a.orders[0][0], reply)]), False
                    records.append(
                        Answered(persona.id, a.question.id, a.repeat, reply, key, key in cached, system, a.users, same)
                    )
                    start += 1
                    continue
                end = start + len(a.orders)
                reply = combine_orders(
                    a.question, [(order, replies[keys[i]]) for (order, _), i in zip(a.orders, range(start, end))]
                )
                records.append(
                    Answered(
                        persona.id,
                        a.question.id,
                        a.repeat,
                        reply,
                        b"".join(keys[start:end]),
                        cached.issuperset(keys[start:end]),
                        system,
                        a.users,
                    )
                )
                start = end
        return Answers(self.executor.simulator.model, records, self.batch)


def answer(batch: list[Persona], loaded: LoadedScenario, executor: Executor, calls: ModelCalls) -> Answers:
    """Answer every question for every persona, in every option order asked for: one batch, its misses sent
    together (an executor that cannot stream; the engine streams batches through ``Asking`` otherwise)."""
    asking = Asking(batch, loaded, executor, calls)
    for index, replies in executor.map("answer", [asking.requests(c) for c in range(asking.waiting)], {}):
        asking.take(index, replies)
    return asking.answers()
