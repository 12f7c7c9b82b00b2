"""The compact run log (migration m007): a log written before it converts with nothing lost, and what a run
writes now is every figure and the exact prompt, re-rendered and checked against the answer's cache key."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3

import numpy as np
import pytest
from conftest import EXAMPLE, ROOT

import simrun.components
from simrun.engine import Engine
from simrun.models import ModelAnswer, Prompt
from simrun.registry import load_registry
from simrun.scenario import load_scenario
from simrun.store import PromptKeys, Store, cache_key_of, dumps, pack_answer, unpack_answer

OLD_LOG = ROOT / "tests" / "data" / "runlog-m006.db"  # written by simrun before m007: 3 runs, 80 answers


def old_rows(path) -> tuple[list, list, dict]:
    with sqlite3.connect(path) as connection:
        personas = connection.execute(
            "select run_id, id, stratum, weight, attributes, provenance from personas order by run_id, id"
        ).fetchall()
        answers = connection.execute(
            'select run_id, persona_id, question_id, "repeat", prompt, raw, distribution, invalid, model, cache_key,'
            ' cached, error from answers order by run_id, persona_id, question_id, "repeat"'
        ).fetchall()
        cache = dict(connection.execute("select key, response from llm_cache"))
    return personas, answers, cache


@pytest.fixture
def keys_without_code(monkeypatch):
    """The logs here were written before a simulator's code was part of its cache keys (and the example plugin's
    file has changed since): what these tests check is the keys' format, so the code's part is left out."""
    monkeypatch.setattr(simrun.components, "plugin_source", lambda cls: {})


def all_metrics(store: Store) -> list[dict]:
    return [m for run in store.runs.all() for m in store.results.metrics(run["id"])]


def test_a_log_written_before_m007_converts_with_nothing_lost(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(OLD_LOG, path)
    personas, answers, cache = old_rows(path)
    store = Store(path)
    runs = sorted(r["id"] for r in store.runs.all())
    assert len(runs) == 3
    assert [
        (run, p.id, p.stratum, p.weight, json.dumps(p.attributes), json.dumps(p.provenance))
        for run in runs
        for p in store.personas.rows(run)
    ] == [tuple(row) for row in personas]
    converted = [
        (
            run,
            r["persona_id"],
            r["question_id"],
            r["repeat"],
            r["prompt"],
            r["raw"],
            r["distribution"],
            r["invalid"],
            r["model"],
            r["cache_key"],
            r["cached"],
            r["error"],
        )
        for run in runs
        for r in store.answers.rows(run, prompts=True)
    ]
    old = [
        (*row[:6], json.loads(row[6]), *row[7:9], ",".join(k[:32] for k in row[9].split(",")), *row[10:])
        for row in answers
    ]
    assert converted == old and len(old) == 80
    found = store.cache.get(bytes.fromhex(key[:32]) for key in cache)  # every key, by its first 16 bytes
    assert {bytes.fromhex(key[:32]): response for key, response in cache.items()} == found
    with sqlite3.connect(OLD_LOG) as connection:
        metrics = sorted(connection.execute("select run_id, metric, name, '', stratum, value from metrics"))
    columns = ("run_id", "metric", "name", "question", "stratum", "value")
    read = [tuple(m[c] for c in columns) for m in all_metrics(store)]
    assert sorted(read) == metrics and len(metrics) == 9  # every figure, for all questions


def test_a_converted_log_serves_its_cache_to_the_same_scenario(tmp_path, invoke, keys_without_code):
    path = tmp_path / "old.db"
    shutil.copy(OLD_LOG, path)
    run_id = invoke("run", str(EXAMPLE / "towns.yaml"), "--quiet", db=path).output.strip()
    rows = list(Store(path, read_only=True).answers.rows(run_id, prompts=True))
    assert len(rows) == 48 and all(r["cached"] for r in rows)  # keys computed now match keys stored then


def test_the_prompt_is_re_rendered_exactly_and_checked_against_its_cache_key(invoke, tmp_path):
    db = tmp_path / "r.db"
    run_id = invoke(
        "run", str(EXAMPLE / "towns.yaml"), "--set", "prompt.option_order=both", "--quiet", db=db
    ).output.strip()
    shown = invoke("show", run_id, "--prompt", "3", "q1", db=db)
    assert shown.exit_code == 0, shown.output
    [row] = [
        r
        for r in Store(db, read_only=True).answers.rows(run_id, prompts=True)
        if (r["persona_id"], r["question_id"]) == (3, "q1")
    ]
    assert shown.output.strip() == row["prompt"]
    assert row["prompt"].count("[system]") == 2 and "A. Not sure" in row["prompt"]  # both option orders
    with sqlite3.connect(db) as connection:  # as if a later simrun rendered personas differently
        connection.execute("update run_questions set users = replace(users, 'town park', 'city park')")
    changed = invoke("show", run_id, "--prompt", "3", "q1", db=db)
    assert changed.exit_code == 1
    assert "does not match the prompt this answer was asked with" in changed.output


def test_a_cached_answer_round_trips_exactly():
    answer = ModelAnswer(
        distribution={"A": 0.1 + 0.2, "B": 1 / 3, "C": 0.0}, invalid=1e-17, raw="Ü B", tokens=2**40, latency_ms=12.5
    )
    packed = pack_answer(answer)
    assert isinstance(packed, bytes) and len(packed) < len(answer.model_dump_json()) / 2
    assert unpack_answer(packed) == answer
    other = ModelAnswer(distribution={"yes": 0.5, "no": 0.5}, invalid=0.0)
    assert unpack_answer(pack_answer(other)) == other  # labels that are not A, B, ...: kept as JSON


def test_a_users_view_on_the_old_tables_does_not_stop_the_conversion(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(OLD_LOG, path)
    with sqlite3.connect(path) as connection:
        connection.execute("create view my_answers as select persona_id, question_id from answers")
    store = Store(path)
    assert len(store.db.execute("select * from my_answers").fetchall()) == 80


def test_a_prompt_is_asked_as_the_log_gives_it_back_whatever_the_attribute_types(tmp_path):
    from simrun import Enricher

    class Tags(Enricher):
        name = "tags"
        provides = frozenset({"tags"})

        def enrich(self, batch, context):
            for persona in batch:
                persona.set("tags", ("a", ("b", 1)), "test")
                persona.set("count", np.int64(3), "test")  # a NumPy number is read back as the number
            return batch

    registry = load_registry(EXAMPLE)
    registry.add("enricher", "test", "test", "", Tags)
    store = Store(tmp_path / "t.db")
    run_id = Engine(registry, store).run(load_scenario(EXAMPLE / "towns.yaml", registry, ["enrichers=[{use: tags}]"]))
    for row in store.answers.rows(run_id, prompts=True):
        text, matches = store.prompts.get(run_id, row["persona_id"], row["question_id"], row["repeat"])
        assert matches and text == row["prompt"] and "['b', 1]" in text
    assert {type(p.attributes["count"]) for p in store.personas.rows(run_id)} == {int}


def test_prompt_keys_are_the_system_texts_hash_then_the_whole_requests():
    """The engine hashes a request as it is written (a persona's system text once for all its questions): every
    key must be 4 bytes of the system text's hash then 12 of the whole request's, and the legacy key the 16 bytes
    an older simrun wrote, or a cache written before would serve nothing."""
    identity = {"model": "m", "simulator": "s", "options": {"é": [1, "x"]}}
    asks = [
        (labels, repeat, ["Do you vote?\n\nA. Yes\nB. No", 'Say "maybe" — or not'])
        for labels in (["A", "B"], ["A", "B", "C"])
        for repeat in (0, 3)
    ]
    keys = PromptKeys(identity, asks)
    systems = ['age: 40\ntown: "Ashford"', "ville: Zürich ✓ \\ \u2028", 'age: 40\ntown: "Ashford"']
    for system in systems:
        cluster = hashlib.sha256(dumps(system).encode()).digest()[:4]
        expected = []
        for labels, repeat, users in asks:
            for user in users:
                request = {"labels": labels, "model": identity, "sample": repeat, "system": system, "user": user}
                whole = cache_key_of(dumps(request))
                prompt = Prompt(persona_id=0, question_id="q", system=system, user=user, labels=labels, repeat=repeat)
                assert keys.of(prompt) == cluster + whole[:12]
                assert keys.of(prompt, legacy=True) == whole
                expected.append(cluster + whole[:12])
        assert keys.persona(system) == expected


def test_a_persona_s_replies_sit_side_by_side_in_the_cache(tmp_path, registry):
    store = Store(tmp_path / "c.db")
    loaded = load_scenario(EXAMPLE / "towns.yaml", registry, ["sampler.with.numbered=true"])
    run_id = Engine(registry, store).run(loaded)
    keys = [row[0] for row in store.db.execute("select key from llm_cache order by key")]
    clusters = [key[:4] for key in keys]
    # numbered personas: every prompt new; and the 2 questions asked with no persona (the no_persona baseline)
    assert len(keys) == 2 * store.runs.counts(run_id)["personas"] + 2
    assert len(set(clusters)) == len(keys) // 2 and clusters[::2] == clusters[1::2]  # each persona's two, together


OLD_CACHE_LOG = ROOT / "tests" / "data" / "runlog-m007.db"  # written by simrun before m008: towns, both option orders


def test_a_log_written_before_m008_serves_its_cache_and_checks_its_prompts(tmp_path, invoke, keys_without_code):
    path = tmp_path / "m007.db"
    shutil.copy(OLD_CACHE_LOG, path)
    [old_run] = [r["id"] for r in Store(path, read_only=True).runs.all()]
    args = ("--set", "prompt.option_order=both", "--set", "sampler.with.per_town=6", "--quiet")
    run_id = invoke("run", str(EXAMPLE / "towns.yaml"), *args, db=path).output.strip()
    store = Store(path, read_only=True)
    assert store.cache.legacy_keys
    rows = list(store.answers.rows(run_id, prompts=True))
    assert len(rows) == 24 and all(r["cached"] for r in rows)  # every reply found under its old key
    # nothing asked again but the 2 questions in 2 orders with no persona, a baseline the old run did not ask
    assert store.db.execute("select count(*) from llm_cache").fetchone()[0] == 48 + 4
    old = list(store.answers.rows(old_run, prompts=True))
    assert [(r["persona_id"], r["question_id"], r["distribution"], r["prompt"]) for r in old] == [
        (r["persona_id"], r["question_id"], r["distribution"], r["prompt"]) for r in rows
    ]
    for persona, question in ((0, "q1"), (5, "q2")):  # an old answer's prompt still matches the key it was asked under
        shown = invoke("show", old_run, "--prompt", str(persona), question, db=path)
        assert shown.exit_code == 0, shown.output
    new = Store(tmp_path / "new.db")
    assert not new.cache.legacy_keys  # a new log has no old keys to look up
