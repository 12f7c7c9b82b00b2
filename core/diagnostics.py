"""What to distrust in a run: the checks shown beside every score, and the plain warnings they raise.

A score can look meaningful and be an artefact. These checks, read from the run
log (old logs included), say when:

- **personas per stratum**: intervals and per-stratum figures from a handful of
  personas are noise;
- **failed answers**: calls that failed after their retries carry no answer;
- **off-option mass**: the probability the model put outside the options, which
  answer shares leave out;
- **position bias**: from the option orders a question was asked in. For each
  answer, how far its orders disagree about each option's *content* and how far
  about each *place*; the index is content disagreement over the sum of both: 0
  when answers follow content (the same option chosen wherever it is listed), 1
  when they follow place (the first listed chosen whatever it says). A model
  that answers at random disagrees about both alike (about 0.5);
- **persona effect**: how far each persona's answer is from the model's answer
  with no persona in the prompt (total variation distance, weighted mean);
- **persona spread**: how far each persona's answer is from the personas'
  average answer; near 0, the model answers every persona alike.

Position bias and the persona figures read the replies the model cache holds,
for every answer of at most ``SAMPLE`` personas spread evenly over the run.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from itertools import combinations

from pydantic import BaseModel, Field

from .models import Prompt
from .prompts import PromptSpec
from .shift import distance
from .store import KEY_BYTES, PromptKeys, Store, unpack_answer
from .store.answers import CACHED

SAMPLE = 5_000  # personas whose answers position bias and the persona figures read
MIN_PER_STRATUM = 30  # fewer personas than this in a stratum: its figures are noise
POSITION_DOMINATES = 0.6  # an index above this (random answers give about 0.5): answers follow places
POSITION_MATTERS = 0.05  # ... and the orders disagree about content by more than this (TVD): the bias is material
OFF_OPTION = 0.10  # more answer mass than this outside the options
PERSONAS_MATTER = 0.02  # personas' answers closer than this (TVD) to the no-persona answer, or to each other


class Diagnostics(BaseModel):
    """One run's checks, and the warnings they raise."""

    personas_per_stratum: dict[str, int]
    answers: int = 0
    failed_answers: int = Field(0, description="Answers whose call failed after its retries: no answer, all invalid.")
    off_option: float | None = Field(
        None, description="Weighted mean answer mass outside the options, over questions (failed answers left out)."
    )
    off_option_max: float | None = None
    off_option_question: str | None = Field(None, description="The question with the most mass outside the options.")
    orders: int = Field(1, description="The most option orders a question was asked in.")
    position_bias: float | None = Field(
        None, description="0: answers follow the options' content; 1: their place. None: see position_note."
    )
    content_disagreement: float | None = Field(
        None, description="Mean TVD between an answer's option orders, read by content: how much order matters."
    )
    position_answers: int = Field(0, description="Answers asked in several option orders that position_bias read.")
    position_note: str = ""
    persona_effect: float | None = Field(
        None, description="Mean TVD between a persona's answer and the model's with no persona; None: not asked."
    )
    persona_spread: float | None = Field(None, description="Mean TVD between a persona's answer and the average.")
    persona_answers: int = 0
    warnings: list[str] = Field(default_factory=list)

    @property
    def smallest(self) -> tuple[str, int]:
        return min(self.personas_per_stratum.items(), key=lambda item: (item[1], item[0]), default=("", 0))


def by_content(labels: list[str], order: list[int], distribution: dict[str, float]) -> list[float]:
    """A reply asked with options in ``order`` (position i showed original option order[i]), per original option."""
    out = [0.0] * len(labels)
    for position, original in enumerate(order):
        out[original] = distribution.get(labels[position], 0.0)
    return out


def position_disagreement(
    labels: list[str], orders: list[list[int]], replies: list[dict[str, float]]
) -> tuple[float, float]:
    """(content disagreement, place disagreement): mean pairwise TVD of the replies read by content and by place."""
    content = [by_content(labels, order, reply) for order, reply in zip(orders, replies)]
    place = [[reply.get(label, 0.0) for label in labels] for reply in replies]
    pairs = list(combinations(range(len(replies)), 2))
    return (
        sum(distance(content[i], content[j]) for i, j in pairs) / len(pairs),
        sum(distance(place[i], place[j]) for i, j in pairs) / len(pairs),
    )


Sampled = list[tuple[str, bytes, str, float]]  # (question, cache keys, distribution JSON, persona weight)


def diagnose(store: Store, run_id: str) -> Diagnostics:
    """The checks of one run, from its log."""
    record = store.runs.get(run_id)
    db, number = store.db, store.runs.number(run_id)
    per_stratum = dict(
        db.execute("select stratum, count(*) from personas where run = ? group by stratum", [number]).fetchall()
    )
    answers, failed = db.execute("select count(*), count(error) from answers where run = ?", [number]).fetchone()
    off = db.execute(
        "select a.question_id, sum(p.weight * simrun_invalid(coalesce(a.reply, c.response))) / sum(p.weight)"
        f" from answers a join personas p on p.run = a.run and p.id = a.persona_id {CACHED}"
        " where a.run = ? and a.error is null group by a.question_id",
        [number],
    ).fetchall()
    worst = max(off, key=lambda row: row[1], default=None)
    asked = {
        qid: json.loads(text)
        for qid, text in db.execute("select question_id, users from run_questions where run_id = ?", [run_id])
    }
    spec = PromptSpec.model_validate(json.loads(record["scenario_json"]).get("prompt") or {})
    identity = json.loads(record.get("simulator_identity") or "null")
    rows = sampled_answers(store, run_id)
    result = Diagnostics(
        personas_per_stratum=per_stratum,
        answers=answers,
        failed_answers=failed,
        off_option=sum(v for _, v in off) / len(off) if off else None,
        off_option_max=worst[1] if worst else None,
        off_option_question=worst[0] if worst else None,
        orders=max((len(keys) // KEY_BYTES for _, keys, _, _ in rows), default=1),
    )
    position_bias(result, store, rows, asked, spec)
    persona_figures(result, store, rows, asked, spec, identity)
    result.warnings = warnings_of(result)
    return result


def sampled_answers(store: Store, run_id: str) -> Sampled:
    """Every answer that did not fail of at most ``SAMPLE`` personas, every k-th in the log's order."""
    number = store.runs.number(run_id)
    personas = store.db.execute("select count(*) from personas where run = ?", [number]).fetchone()[0]
    stride = max(1, math.ceil(personas / SAMPLE))
    return store.db.execute(
        "select question_id, cache_key, distribution, weight from ("
        " select a.question_id, a.cache_key, simrun_distribution(coalesce(a.reply, c.response)) as distribution,"
        " p.weight, dense_rank() over (order by a.persona_id) as n"
        f" from answers a join personas p on p.run = a.run and p.id = a.persona_id {CACHED}"
        " where a.run = ? and a.error is null) where (n - 1) % ? = 0",
        [number, stride],
    ).fetchall()


def replies_of(store: Store, keys: list[bytes]) -> dict[bytes, dict[str, float]]:
    return {key: unpack_answer(value).distribution for key, value in store.cache.get(keys).items()}


def split_keys(keys: bytes) -> list[bytes]:
    """An answer's cache keys, one per option order asked."""
    return [keys[i : i + KEY_BYTES] for i in range(0, len(keys), KEY_BYTES)]


def position_bias(result: Diagnostics, store: Store, rows: Sampled, asked: dict, spec: PromptSpec) -> None:
    """The index over the sampled answers asked in several orders whose every order's reply is cached."""
    several = [(qid, split_keys(keys)) for qid, keys, _, _ in rows if len(keys) > KEY_BYTES and qid in asked]
    if result.orders < 2:
        result.position_note = "each question was asked in one option order"
        return
    if not asked:
        result.position_note = "the run log does not record the questions as asked (an older simrun wrote it)"
        return
    replies = replies_of(store, [key for _, keys in several for key in keys])
    content = place = 0.0
    used = 0
    for qid, keys in several:
        labels = asked[qid]["labels"]
        if all(key in replies for key in keys):
            c, p = position_disagreement(labels, spec.orders(len(labels)), [replies[key] for key in keys])
            content, place, used = content + c, place + p, used + 1
    result.position_answers = used
    if not used:
        result.position_note = "the replies of each option order are not in the model cache"
    elif content + place == 0:
        result.position_note = "every option order got the same answer, spread evenly: nothing to tell apart"
    else:
        result.position_bias = content / (content + place)
        result.content_disagreement = content / used


def persona_figures(
    result: Diagnostics, store: Store, rows: Sampled, asked: dict, spec: PromptSpec, identity: dict | None
) -> None:
    """Weighted mean TVD between the sampled answers and the model's answer with no persona (the ``no_persona``
    baseline's cached calls; None when they were never asked), and between the answers and their average."""
    labels = {qid: question["labels"] for qid, question in asked.items()}
    answers = [
        (qid, [json.loads(d).get(label, 0.0) for label in labels[qid]], w) for qid, _, d, w in rows if qid in labels
    ]
    totals: dict[str, float] = defaultdict(float)  # question -> the weight of its answers
    sums: dict[str, list[float]] = {}  # question -> weighted sum of its answers, per option
    for qid, answer, w in answers:
        totals[qid] += w
        sums[qid] = [s + w * x for s, x in zip(sums.get(qid, [0.0] * len(answer)), answer)]
    average = {qid: [x / totals[qid] for x in sums[qid]] for qid in sums}
    weight = sum(w for _, _, w in answers)
    if weight:
        result.persona_spread = sum(w * distance(answer, average[qid]) for qid, answer, w in answers) / weight
        result.persona_answers = len(answers)
    empty = no_persona_answers(store, asked, spec, identity) if identity is not None else {}
    compared = [(qid, answer, w) for qid, answer, w in answers if qid in empty]
    if compared:
        result.persona_effect = sum(w * distance(a, empty[qid]) for qid, a, w in compared) / sum(
            w for _, _, w in compared
        )


def no_persona_answers(store: Store, asked: dict, spec: PromptSpec, identity: dict) -> dict[str, list[float]]:
    """Each question's answer with no persona in the prompt, averaged over its option orders, where cached."""
    keys = PromptKeys(identity)
    system = spec.system.format(persona="")
    out = {}
    for qid, question in asked.items():
        labels, orders = question["labels"], spec.orders(len(question["labels"]))
        wanted = [
            keys.of(Prompt(persona_id=-1, question_id=qid, system=system, user=user, labels=labels))
            for user in question["users"]
        ]
        replies = replies_of(store, wanted)
        if len(replies) == len(wanted):
            combined = [by_content(labels, order, replies[key]) for order, key in zip(orders, wanted)]
            out[qid] = [sum(column) / len(combined) for column in zip(*combined)]
    return out


def unsaid(warnings: list[str], said: set[str]) -> list[str]:
    """The warnings of a kind (the words before the colon: "few personas") not in ``said`` yet, which now are: a
    sweep or a run's seeds say each kind once."""
    out = []
    for warning in warnings:
        kind = warning.split(":", 1)[0]
        if kind not in said:
            said.add(kind)
            out.append(warning)
    return out


def warnings_of(d: Diagnostics) -> list[str]:
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
    if d.failed_answers:
        out.append(
            f"failed answers: {d.failed_answers} of {d.answers} calls failed after their retries "
            f"({d.failed_answers / d.answers:.0%}); they count as all-invalid in the run's shares and metrics, and "
            "are left out of shifts: `simrun show` names the most common error"
        )
    if (
        d.position_bias is not None
        and d.position_bias > POSITION_DOMINATES
        and (d.content_disagreement or 0) > POSITION_MATTERS
    ):
        out.append(
            f"position bias: answers follow where an option is listed more than what it says (index "
            f"{d.position_bias:.2f}; 0 = content only, 1 = place only); shares mostly show the order of the options, "
            "not what the personas think: use a larger model"
        )
    elif d.orders < 2:
        out.append(
            "position bias not measured: each question was asked in one option order, so an answer that only "
            "follows the first option looks like an opinion; prompt.option_order: both measures it and averages it out"
        )
    if d.off_option is not None and d.off_option > OFF_OPTION:
        out.append(
            f"off-option answers: {d.off_option:.0%} of the probability fell outside the options on average (up to "
            f"{d.off_option_max:.0%} on {d.off_option_question}); shares are renormalised over what is left"
        )
    if d.persona_effect is not None and d.persona_effect < PERSONAS_MATTER:
        out.append(
            f"personas ≈ no persona: a persona's answer differs from the model's answer with no persona by "
            f"{d.persona_effect * 100:.1f} points on average; the model hardly reads the personas, so a variant that "
            "changes them cannot move much"
        )
    elif d.persona_spread is not None and d.persona_spread < PERSONAS_MATTER:
        out.append(
            f"personas answer alike: a persona's answer differs from the personas' average by "
            f"{d.persona_spread * 100:.1f} points; the model barely tells them apart"
        )
    return out
