"""The ``personas``, ``answers`` and ``progress`` tables: a run's people and what they answered, batch by batch.

A batch's personas, answers and progress marker commit together (``Answers.write_batch``), so a killed run
resumes at the first batch without a marker and never duplicates a row.
"""

from __future__ import annotations

import itertools
import json
import operator
from collections.abc import Iterator
from typing import Any

from .. import models
from ..concurrency import writes
from ..migrations import persona_shape, text_hash
from ..models import ALL_STRATA, Persona, cache_key_text
from .cache import answer_fields, pack_answer
from .encoding import compact_dumps, now, plain_dumps
from .table import Table

# An answer's reply: its own (``answers.reply``), or, when the cache holds it under the answer's key, the cache's.
REPLY = "coalesce(a.reply, c.response) as reply"
CACHED = "left join llm_cache c on a.reply is null and c.key = a.cache_key"


class Personas(Table):
    def rows(self, run_id: str, batch: int | None = None) -> Iterator[Persona]:
        """A run's personas (or one batch's), by id."""
        number = self.store.runs.number(run_id)
        where, args = ("run = ?", [number]) if batch is None else ("run = ? and batch = ?", [number, batch])
        known: dict[bytes, Any] = {}
        cursor = self.db.execute(
            f'select id, stratum, weight, shape, "values" from personas where {where} order by id', args
        )
        while rows := cursor.fetchmany(1000):
            missing = {row[3] for row in rows if row[3] not in known}
            known.update((h, json.loads(text)) for h, text in self.store.texts.get(missing).items())
            for pid, stratum, weight, shape, values in rows:
                yield Persona(
                    id=pid,
                    stratum=stratum,
                    weight=weight,
                    attributes=dict(zip(known[shape]["names"], json.loads(values))),
                    provenance=known[shape]["provenance"],
                )

    def batches(self, run_id: str) -> Iterator[tuple[int, list[Persona]]]:
        """A finished run's personas, batch by batch, for another run to reuse."""
        batches = [
            r["batch"] for r in self.db.query("select batch from progress where run_id = ? order by batch", [run_id])
        ]
        for batch in batches:  # no cursor stays open while the caller writes
            yield batch, list(self.rows(run_id, batch))

    def effective_size(self, run_id: str) -> float:
        """Kish's effective sample size of the run's persona weights, (sum w)^2 / sum w^2, in SQL."""
        total, squares = self.db.execute(
            "select sum(weight), sum(weight * weight) from personas where run = ?", [self.store.runs.number(run_id)]
        ).fetchone()
        return total * total / squares if squares else 0.0


class Answers(Table):
    def done_batches(self, run_id: str) -> set[int]:
        return {r["batch"] for r in self.db["progress"].rows_where("run_id = ?", [run_id])}

    @writes
    def write_batch(self, run_id: str, batch: int, personas: list[Persona], answers: models.Answers) -> None:
        """Commit a batch's personas, answers and progress marker together.

        A persona's shape (attribute names and provenance) goes to ``texts`` once, referenced by hash; the prompt is not
        stored (``rows(prompts=True)`` re-renders it), nor the model (the run has it), nor a reply the cache
        holds under the answer's key (``Answered.held``): the answer refers to it.
        """
        number = self.store.runs.number(run_id)
        shared: dict[str, bytes] = {}  # shape -> its hash; a batch's personas mostly share one
        names: dict[tuple[str, ...], str] = {}  # attribute names -> their JSON, made once per distinct set
        rows = []
        for p in personas:
            listed = tuple(p.attributes)
            if listed not in names:
                names[listed] = plain_dumps(list(listed))
            shape = persona_shape(names[listed], plain_dumps(p.provenance))
            if shape not in shared:
                shared[shape] = text_hash(shape)
            values = compact_dumps(list(p.attributes.values()))  # in prompt order, as the names
            rows.append((number, p.id, batch, p.stratum, p.weight, shared[shape], values))
        self.store.texts.keep(shared)
        self.db.conn.executemany("insert or replace into personas values (?, ?, ?, ?, ?, ?, ?)", rows)
        packed: dict[int, bytes | str] = {}  # id of a reply -> it packed; the batch holds every reply, so ids stay
        answer_rows = []
        for a in answers.records:
            reply = a.reply
            if a.held:
                stored = None
            elif (stored := packed.get(id(reply))) is None:  # a reply more than one answer shares, packed once
                stored = packed[id(reply)] = pack_answer(reply)
            answer_rows.append(
                (number, a.persona_id, a.question_id, a.repeat, a.keys, int(a.cached), stored, reply.error)
            )
        self.db.conn.executemany("insert or replace into answers values (?, ?, ?, ?, ?, ?, ?, ?)", answer_rows)
        self.db.execute(
            "insert or replace into progress (run_id, batch, personas, done_at) values (?, ?, ?, ?)",
            [run_id, batch, len(personas), now()],
        )

    def sizes(self, run_id: str, question_id: str) -> dict[str, int]:
        """Personas who answered a question, per stratum and in all (``ALL``)."""
        counts = dict(
            self.db.execute(
                "select p.stratum, count(distinct a.persona_id) from answers a join personas p"
                " on p.run = a.run and p.id = a.persona_id where a.run = ? and a.question_id = ?"
                " group by p.stratum",
                [self.store.runs.number(run_id), question_id],
            ).fetchall()
        )
        return {**counts, ALL_STRATA: sum(counts.values())}

    def share_rows(self, run_id: str) -> Iterator[list[tuple[str, str, float, float, dict[str, float]]]]:
        """A run's answers batch by batch, in batch order, each as ``ShareSums.add_batch`` sums it: (question id,
        stratum, weight, invalid mass, distribution), in the order the log keeps them."""
        rows = self.db.execute(
            f"select p.batch, a.question_id, p.stratum, p.weight, {REPLY} from answers a"
            f" join personas p on p.run = a.run and p.id = a.persona_id {CACHED} where a.run = ?"
            ' order by p.batch, a.persona_id, a.question_id, a."repeat"',
            [self.store.runs.number(run_id)],
        )
        for _, batch in itertools.groupby(rows, key=operator.itemgetter(0)):
            yield [
                (question, stratum, weight, (fields := answer_fields(reply))["invalid"], fields["distribution"])
                for _, question, stratum, weight, reply in batch
            ]

    def rows(self, run_id: str, prompts: bool = False) -> Iterator[dict]:
        """A run's answers with their persona's stratum and weight and the run's model, by persona and question:
        each a dict of ``ModelAnswer``'s fields (``distribution`` a dict) and the answer's.

        ``prompts`` adds each answer's exact prompt: re-rendered from the persona, the run's prompt settings and
        the question texts it recorded (or, for a run logged before prompts were re-rendered, as stored then).
        """
        model = self.store.runs.get(run_id).get("model")
        columns = (
            f'a.persona_id, a.question_id, a."repeat", {REPLY}, a.cache_key, a.cached, a.error, p.stratum, p.weight'
        )
        extra, join = ("", "")
        if prompts:
            render = self.store.prompts.renderer(run_id)
            extra = ', p.shape, p."values", l.prompt'
            join = (
                " left join legacy_prompts l on l.run_id = r.id and l.persona_id = a.persona_id"
                ' and l.question_id = a.question_id and l."repeat" = a."repeat"'
            )
        cursor = self.db.execute(
            f"select {columns}{extra} from answers a join personas p on p.run = a.run and p.id = a.persona_id"
            f" join runs r on r.number = a.run {CACHED}{join}"
            ' where a.run = ? order by a.persona_id, a.question_id, a."repeat"',
            [self.store.runs.number(run_id)],
        )
        names = [d[0] for d in cursor.description]
        while rows := cursor.fetchmany(1000):
            for values in rows:
                row = dict(zip(names, values))
                row.update(answer_fields(row.pop("reply")), error=row["error"])
                row["run_id"], row["model"] = run_id, model
                row["cache_key"] = cache_key_text(row["cache_key"])
                if prompts:
                    legacy = row.pop("prompt")
                    row["prompt"] = legacy if legacy is not None else render(row.pop("shape"), row.pop("values"), row)
                yield row

    def cache_use(self, run_id: str) -> dict[str, int]:
        """How many of the run's answers the cache served, and how many the model gave (failures included)."""
        from_cache, total = self.db.execute(
            "select coalesce(sum(cached), 0), count(*) from answers where run = ?", [self.store.runs.number(run_id)]
        ).fetchone()
        return {"from_cache": from_cache, "from_model": total - from_cache}

    def errors(self, run_id: str, most: int = 3) -> tuple[int, list[tuple[str, int]]]:
        """How many answers failed, and their most common errors with counts."""
        rows = list(
            self.db.query(
                "select error, count(*) as n from answers where run = ? and error is not null"
                " group by error order by n desc, error",
                [self.store.runs.number(run_id)],
            )
        )
        return sum(r["n"] for r in rows), [(r["error"], r["n"]) for r in rows[:most]]
