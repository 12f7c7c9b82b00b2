"""What to distrust in a run: the checks shown beside every score, and the plain warnings they raise.

A score can look meaningful and be an artefact. Four checks, read from the run
log (old logs included), say when:

- **personas per stratum**: intervals and per-stratum figures from a handful of
  personas are noise;
- **off-option mass**: the probability the model put outside the options, which
  answer shares leave out;
- **position bias**: from the option orders a question was asked in. For each
  answer, how far its orders disagree about each option's *content* and how far
  about each *place*; the index is content disagreement over the sum of both: 0
  when answers follow content (the same option chosen wherever it is listed), 1
  when they follow place (the first listed chosen whatever it says);
- **persona effect**: how far each persona's answer is from the model's answer
  with no persona in the prompt (total variation distance, weighted mean); near 0,
  the model does not read the personas.

Position bias and persona effect read the replies the model cache holds, at most
``SAMPLE`` answers spread evenly over the run.
"""

from __future__ import annotations

import json
import math
from itertools import combinations

from pydantic import BaseModel, Field

from .models import ALL_STRATA, Prompt
from .prompts import PromptSpec
from .store import PromptKeys, Store, unpack_answer

SAMPLE = 20_000  # answers read for position bias and persona effect
MIN_PER_STRATUM = 30  # fewer personas than this in a stratum: its figures are noise
POSITION_DOMINATES = 0.5  # a position-bias index above this: answers follow places more than content
OFF_OPTION = 0.10  # more answer mass than this outside the options
PERSONA_EFFECT = 0.02  # personas' answers closer than this (TVD) to the no-persona answer: personas ignored


class Diagnostics(BaseModel):
    """One run's checks, and the warnings they raise."""

    personas_per_stratum: dict[str, int]
    off_option: float | None = Field(description="Weighted mean answer mass outside the options, over questions.")
    off_option_max: float | None = None
    off_option_question: str | None = Field(None, description="The question with the most mass outside the options.")
    position_bias: float | None = Field(
        None, description="0: answers follow the options' content; 1: their place. None: one option order asked."
    )
    position_answers: int = Field(0, description="Answers asked in several option orders that position_bias read.")
    persona_effect: float | None = Field(
        None, description="Mean TVD between a persona's answer and the model's with no persona; None: not asked."
    )
    persona_answers: int = 0
    warnings: list[str] = Field(default_factory=list)

    @property
    def smallest(self) -> tuple[str, int]:
        return min(self.personas_per_stratum.items(), key=lambda item: (item[1], item[0]), default=("", 0))


def tvd(p: list[float], q: list[float]) -> float:
    return 0.5 * sum(abs(a - b) for a, b in zip(p, q))


def by_content(labels: list[str], order: list[int], distribution: dict[str, float]) -> list[float]:
    """A reply asked with options in ``order`` (position i showed original option order[i]), per original option."""
    out = [0.0] * len(labels)
    for position, original in enumerate(order):
        out[original] = distribution.get(labels[position], 0.0)
    return out


def position_disagreement(labels: list[str], orders: list[list[int]], replies: list[dict[str, float]]) -> tuple:
    """(content disagreement, place disagreement): mean pairwise TVD of the replies read by content and by place."""
    content = [by_content(labels, order, reply) for order, reply in zip(orders, replies)]
    place = [[reply.get(label, 0.0) for label in labels] for reply in replies]
    pairs = list(combinations(range(len(replies)), 2))
    return (
        sum(tvd(content[i], content[j]) for i, j in pairs) / len(pairs),
        sum(tvd(place[i], place[j]) for i, j in pairs) / len(pairs),
    )


def diagnose(store: Store, run_id: str) -> Diagnostics:
    """The checks of one run, from its log."""
    record = store.run(run_id)
    db = store.db
    per_stratum = dict(
        db.execute("select stratum, count(*) from personas where run_id = ? group by stratum", [run_id]).fetchall()
    )
    off = db.execute(
        "select question_id, max(invalid) from aggregates where run_id = ? and stratum = ? group by question_id",
        [run_id, ALL_STRATA],
    ).fetchall()
    worst = max(off, key=lambda row: row[1], default=None)
    asked = {
        qid: json.loads(text)
        for qid, text in db.execute("select question_id, users from run_questions where run_id = ?", [run_id])
    }
    spec = PromptSpec.model_validate(json.loads(record["scenario_json"]).get("prompt") or {})
    identity = json.loads(record.get("simulator_identity") or "null")
    rows = sampled_answers(store, run_id)
    bias, bias_n = position_bias(store, rows, asked, spec)
    effect, effect_n = persona_effect(store, rows, asked, spec, identity) if identity is not None else (None, 0)
    result = Diagnostics(
        personas_per_stratum=per_stratum,
        off_option=sum(v for _, v in off) / len(off) if off else None,
        off_option_max=worst[1] if worst else None,
        off_option_question=worst[0] if worst else None,
        position_bias=bias,
        position_answers=bias_n,
        persona_effect=effect,
        persona_answers=effect_n,
    )
    result.warnings = warnings(result, several_orders=any(len(a["users"]) > 1 for a in asked.values()))
    return result


def sampled_answers(store: Store, run_id: str) -> list[tuple[str, bytes, str, float]]:
    """Up to ``SAMPLE`` answers spread evenly over the run: (question, cache keys, distribution JSON, weight)."""
    total = store.db.execute("select count(*) from answers where run_id = ? and error is null", [run_id]).fetchone()[0]
    stride = max(1, math.ceil(total / SAMPLE))
    return store.db.execute(
        "select question_id, cache_key, distribution, weight from ("
        " select a.question_id, a.cache_key, a.distribution, p.weight,"
        ' row_number() over (order by a.persona_id, a.question_id, a."repeat") as n'
        " from answers a join personas p on p.run_id = a.run_id and p.id = a.persona_id"
        " where a.run_id = ? and a.error is null) where (n - 1) % ? = 0",
        [run_id, stride],
    ).fetchall()


def replies_of(store: Store, keys: list[bytes]) -> dict[bytes, dict[str, float]]:
    return {key: unpack_answer(value).distribution for key, value in store.cached(keys).items()}


def position_bias(store: Store, rows: list, asked: dict[str, dict], spec: PromptSpec) -> tuple[float | None, int]:
    """The index over the sampled answers asked in several orders whose every order's reply is cached."""
    several = [(qid, keys) for qid, keys, _, _ in rows if qid in asked and len(asked[qid]["users"]) > 1]
    replies = replies_of(store, [k[i : i + 16] for _, k in several for i in range(0, len(k), 16)])
    content = place = 0.0
    used = 0
    for qid, keys in several:
        labels = asked[qid]["labels"]
        split = [keys[i : i + 16] for i in range(0, len(keys), 16)]
        if not all(key in replies for key in split):
            continue
        c, p = position_disagreement(labels, spec.orders(len(labels)), [replies[key] for key in split])
        content, place, used = content + c, place + p, used + 1
    if not used or content + place == 0:
        return None, used
    return content / (content + place), used


def persona_effect(
    store: Store, rows: list, asked: dict[str, dict], spec: PromptSpec, identity: dict
) -> tuple[float | None, int]:
    """Weighted mean TVD between the sampled answers and the model's answer to the same question with no persona
    (the ``no_persona`` baseline's cached calls); None when the model was never asked without a persona."""
    keys = PromptKeys(identity)
    system = spec.system.format(persona="")
    empty: dict[str, list[float]] = {}
    for qid, question in asked.items():
        labels, orders = question["labels"], spec.orders(len(question["labels"]))
        wanted = [
            keys.of(Prompt(persona_id=-1, question_id=qid, system=system, user=user, labels=labels))
            for user in question["users"]
        ]
        replies = replies_of(store, wanted)
        if len(replies) != len(wanted):
            continue
        combined = [by_content(labels, order, replies[key]) for order, key in zip(orders, wanted)]
        empty[qid] = [sum(column) / len(combined) for column in zip(*combined)]
    total = weight = 0.0
    used = 0
    for qid, _, distribution, w in rows:
        if qid not in empty:
            continue
        answer = json.loads(distribution)
        total += w * tvd([answer.get(label, 0.0) for label in asked[qid]["labels"]], empty[qid])
        weight, used = weight + w, used + 1
    return (total / weight if weight else None), used


def warnings(d: Diagnostics, several_orders: bool) -> list[str]:
    """The checks that undermine the run's figures, each in a sentence a reader can act on."""
    out = []
    name, fewest = d.smallest
    small = sum(1 for n in d.personas_per_stratum.values() if n < MIN_PER_STRATUM)
    if small:
        out.append(
            f"few personas: {small} of {len(d.personas_per_stratum)} strata have fewer than {MIN_PER_STRATUM} "
            f"(fewest: {fewest} in {name}); their figures and intervals rest on too few people to trust: "
            "sample more per stratum"
        )
    if d.position_bias is not None and d.position_bias > POSITION_DOMINATES:
        out.append(
            f"position bias: answers follow where an option is listed more than what it says (index "
            f"{d.position_bias:.2f}; 0 = content only, 1 = place only); shares mostly show the order of the options, "
            "not what the personas think: use a larger model"
        )
    elif not several_orders:
        out.append(
            "position bias not measured: each question was asked in one option order, so an answer that only "
            "follows the first option looks like an opinion; prompt.option_order: both measures it and averages it out"
        )
    if d.off_option is not None and d.off_option > OFF_OPTION:
        out.append(
            f"off-option answers: {d.off_option:.0%} of the probability fell outside the options on average (up to "
            f"{d.off_option_max:.0%} on {d.off_option_question}); shares are renormalised over what is left"
        )
    if d.persona_effect is not None and d.persona_effect < PERSONA_EFFECT:
        out.append(
            f"personas ≈ no persona: a persona's answer differs from the model's answer with no persona by "
            f"{d.persona_effect:.3f} on average (TVD, 0 to 1); the model hardly reads the personas, so a variant that "
            "changes them cannot move much"
        )
    return out
