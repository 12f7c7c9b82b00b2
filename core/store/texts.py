"""The ``texts`` table and the prompts re-rendered from it.

Long texts that many rows share (a persona's shape: its attribute names and provenance) are kept once in
``texts`` and referenced by hash. A prompt is not stored at all: ``Prompts`` renders it again from the persona,
the run's prompt settings and the question texts the run recorded (``run_questions``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from ..migrations import text_hash
from ..models import Persona, Prompt, prompt_text
from ..prompts import PromptSpec
from .cache import PromptKeys
from .table import Table


class Texts(Table):
    def keep(self, texts: Iterable[str]) -> None:
        self.db.conn.executemany("insert or ignore into texts values (?, ?)", {text_hash(t): t for t in texts}.items())

    def get(self, hashes: Iterable[bytes]) -> dict[bytes, str]:
        wanted = list(set(hashes))
        found: dict[bytes, str] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(self.db.execute(f"select hash, text from texts where hash in ({marks})", chunk).fetchall())
        return found


class Prompts(Table):
    def renderer(self, run_id: str) -> Callable[[bytes, str, dict], str]:
        """(persona shape hash, attribute values, answer row) -> the exact prompt text the answer was asked with."""
        parts = self.parts(run_id)
        return lambda shape, values, row: prompt_text(*parts(shape, values, row["question_id"]))

    def parts(self, run_id: str) -> Callable[[bytes, str, str], tuple[str, list[str]]]:
        """(persona shape hash, attribute values, question id) -> (system text, user text of each option order),
        rendered from the run's prompt settings and the question texts it recorded."""
        record = self.store.runs.get(run_id)
        spec = PromptSpec.model_validate(json.loads(record["scenario_json"]).get("prompt") or {})
        asked = {
            question_id: json.loads(users)
            for question_id, users in self.db.execute(
                "select question_id, users from run_questions where run_id = ?", [run_id]
            )
        }
        names_by_hash: dict[bytes, list[str]] = {}
        last: list[Any] = [None, ""]  # (persona, its system text): rows come persona by persona

        def parts(shape: bytes, values: str, question_id: str) -> tuple[str, list[str]]:
            if shape not in names_by_hash:
                names_by_hash.update((h, json.loads(t)["names"]) for h, t in self.store.texts.get([shape]).items())
            if last[0] != (shape, values):
                attributes = dict(zip(names_by_hash[shape], json.loads(values)))
                persona = Persona(id=0, stratum="", weight=1.0, attributes=attributes)
                last[:] = [(shape, values), spec.system.format(persona=spec.render_persona(persona))]
            return last[1], asked[question_id]["users"]

        return parts

    def get(self, run_id: str, persona_id: int, question_id: str, repeat: int = 0) -> tuple[str, bool]:
        """One answer's exact prompt, and whether it hashes to the cache key the answer was asked under (False
        when another simrun version renders personas differently). A run logged before m007 kept its prompts."""
        row = self.db.execute(
            'select a.cache_key, p.shape, p."values", l.prompt from answers a'
            " join personas p on p.run = a.run and p.id = a.persona_id"
            " left join legacy_prompts l on l.run_id = ? and l.persona_id = a.persona_id"
            ' and l.question_id = a.question_id and l."repeat" = a."repeat"'
            ' where a.run = ? and a.persona_id = ? and a.question_id = ? and a."repeat" = ?',
            [run_id, self.store.runs.number(run_id), persona_id, question_id, repeat],
        ).fetchone()
        if row is None:
            raise KeyError((run_id, persona_id, question_id, repeat))
        keys, shape, values, legacy = row
        if legacy is not None:
            return legacy, True
        system, users = self.parts(run_id)(shape, values, question_id)
        identity = json.loads(self.store.runs.get(run_id)["simulator_identity"])
        labels = json.loads(
            self.db.execute(
                "select users from run_questions where run_id = ? and question_id = ?", [run_id, question_id]
            ).fetchone()[0]
        )["labels"]
        prompt_keys = PromptKeys(identity)
        asked = [
            Prompt(
                persona_id=persona_id, question_id=question_id, system=system, user=user, labels=labels, repeat=repeat
            )
            for user in users
        ]
        expected = {b"".join(prompt_keys.of(prompt, legacy) for prompt in asked) for legacy in (False, True)}
        return prompt_text(system, users), keys in expected
