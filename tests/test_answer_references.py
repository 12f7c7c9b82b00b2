"""A run log sized for 10^9 answers (migration m010): an answer whose reply the cache holds under its key refers to
it, every other answer keeps its own, and what is read back is what the run answered, whichever way it was kept."""

from __future__ import annotations

import json
import shutil
import sqlite3
import struct

from conftest import EXAMPLE, ROOT

from simrun.engine import Engine
from simrun.models import ModelAnswer
from simrun.registry import load_registry
from simrun.scenario import load_scenario
from simrun.store import Store, pack_answer, unpack_answer

OLD_LOG = ROOT / "tests" / "data" / "runlog-m009.db"  # by simrun before m010 (63f6360), towns at 24 per town: a
# finished run, and one with both option orders SIGKILLed in its 4th model call, 3 of its 6 batches committed


def kept(store: Store, run_id: str) -> dict[str, int]:
    """How the run's answers keep their replies: by reference to the cache, or their own."""
    referred, own = store.db.execute(
        "select sum(reply is null), sum(reply is not null) from answers where run = ?", [store.runs.number(run_id)]
    ).fetchone()
    return {"referred": referred, "own": own}


def read(store: Store, run_id: str) -> list[tuple]:
    return [
        (r["persona_id"], r["question_id"], r["distribution"], r["invalid"], r["raw"], r["error"])
        for r in store.answers.rows(run_id)
    ]


def test_an_answer_asked_once_refers_to_the_cache_and_one_combined_from_two_orders_keeps_its_own(tmp_path, registry):
    store = Store(tmp_path / "r.db")
    plain = Engine(registry, store).run(load_scenario(EXAMPLE / "towns.yaml", registry))
    both = Engine(registry, store).run(load_scenario(EXAMPLE / "towns.yaml", registry, ["prompt.option_order=both"]))
    assert kept(store, plain) == {"referred": 48, "own": 0}
    assert kept(store, both) == {"referred": 0, "own": 48}  # an average of two replies is no cache entry
    for run_id in (plain, both):
        answers = read(store, run_id)
        assert len(answers) == 48 and all(abs(sum(d.values()) - 1) < 1e-12 for _, _, d, _, _, _ in answers)


def test_a_reply_that_differs_from_the_cache_s_is_kept_by_its_answer_and_read_back_as_given(tmp_path, registry):
    store = Store(tmp_path / "r.db")
    loaded = load_scenario(EXAMPLE / "towns.yaml", registry)
    first = Engine(registry, store).run(loaded)
    given = read(store, first)
    # another process's reply to the same request got there first: the cache keeps it, never overwritten
    other = pack_answer(ModelAnswer(distribution={"A": 1.0, "B": 0.0, "C": 0.0}, invalid=0.0, raw="other"))
    store.db.execute("update llm_cache set response = ?", [other])
    again = Engine(registry, store, use_cache=False).run(loaded)  # every call sent again
    assert kept(store, again) == {"referred": 0, "own": 48}
    assert [row[1:] for row in read(store, again)] == [row[1:] for row in given]
    assert {row[4] for row in read(store, first)} == {"other"}  # the first run referred to the entry changed by hand
    assert store.db.execute("select count(distinct response) from llm_cache").fetchone()[0] == 1


def test_a_failed_answer_keeps_its_error_and_is_never_cached(tmp_path):
    from simrun import Simulator, failed_answer

    class Down(Simulator):
        name = "down"
        model = "down"

        def answer(self, prompts):
            return [failed_answer(p.labels, "backend down") for p in prompts]

    registry = load_registry(EXAMPLE)
    registry.add("simulator", "test", "test", "", Down)
    store = Store(tmp_path / "r.db")
    run_id = Engine(registry, store).run(load_scenario(EXAMPLE / "towns.yaml", registry, ["simulator={use: down}"]))
    assert kept(store, run_id) == {"referred": 0, "own": 48}
    assert {(row[3], row[5]) for row in read(store, run_id)} == {(1.0, "backend down")}
    assert store.db.execute("select count(*) from llm_cache").fetchone()[0] == 0


def test_a_packed_answer_keeps_only_what_is_not_zero_and_reads_the_older_format_too():
    answer = ModelAnswer(distribution={"A": 0.25, "B": 0.75}, invalid=0.0, raw="B")
    packed = pack_answer(answer)
    assert len(packed) == 3 + 2 * 8 + 1 and unpack_answer(packed) == answer
    full = answer.model_copy(update={"invalid": 0.5, "tokens": 7, "latency_ms": 3.5})
    assert len(pack_answer(full)) == 3 + 5 * 8 + 1 and unpack_answer(pack_answer(full)) == full
    older = struct.pack("<BBdqd2d", 1, 2, 0.5, 7, 3.5, 0.25, 0.75) + b"B"  # as simrun packed it before m010
    assert unpack_answer(older) == full


def test_sql_reads_a_stored_reply_with_simrun_s_functions(tmp_path, registry):
    store = Store(tmp_path / "r.db")
    run_id = Engine(registry, store).run(load_scenario(EXAMPLE / "towns.yaml", registry))
    distribution, invalid, raw = store.db.execute(
        "select simrun_distribution(coalesce(a.reply, c.response)), simrun_invalid(coalesce(a.reply, c.response)),"
        " simrun_raw(coalesce(a.reply, c.response)) from answers a"
        " left join llm_cache c on a.reply is null and c.key = a.cache_key"
        " where a.run = ? and a.persona_id = 0 and a.question_id = 'q1'",
        [store.runs.number(run_id)],
    ).fetchone()
    [row] = [r for r in store.answers.rows(run_id) if (r["persona_id"], r["question_id"]) == (0, "q1")]
    assert (json.loads(distribution), invalid, raw) == (row["distribution"], row["invalid"], row["raw"])


def test_a_log_written_before_m010_converts_and_its_killed_run_resumes_as_if_never_stopped(tmp_path, invoke):
    path = tmp_path / "old.db"
    shutil.copy(OLD_LOG, path)
    with sqlite3.connect(path) as connection:
        finished, killed = [row[0] for row in connection.execute("select id from runs order by created_at")]
        before = [
            (persona, question, json.loads(distribution), invalid, raw, error)
            for persona, question, distribution, invalid, raw, error in connection.execute(
                "select persona_id, question_id, distribution, invalid, raw, error from answers where run_id = ?"
                ' order by persona_id, question_id, "repeat"',
                [finished],
            )
        ]
    store = Store(path)
    assert read(store, finished) == before and len(before) == 96
    assert kept(store, finished) == {"referred": 0, "own": 96}  # an older answer keeps its reply, packed
    resumed = invoke("run", "--resume", killed, "--take-over", "--quiet", db=path)  # written on another host
    assert resumed.exit_code == 0, resumed.output
    scenario = tmp_path / "towns.yaml"
    scenario.write_text((EXAMPLE / "towns.yaml").read_text().replace("per_town: 12", "per_town: 24"))
    fresh = tmp_path / "fresh.db"
    whole = invoke("run", str(scenario), "--set", "prompt.option_order=both", "--quiet", db=fresh).output.strip()
    assert read(Store(path, read_only=True), killed) == read(Store(fresh, read_only=True), whole)
    exported = invoke("export", finished, "--format", "jsonl", db=path)
    rows = [json.loads(line) for line in exported.output.splitlines()]
    assert [(r["persona_id"], r["question_id"], r["p_A"]) for r in rows] == [(p, q, d["A"]) for p, q, d, *_ in before]


def test_an_entry_the_engine_rejects_is_a_miss_and_leaves_the_cache_unless_the_log_is_read_only(tmp_path):
    from simrun.engine.calls import ModelCalls

    path, key = tmp_path / "r.db", bytes(16)
    store = Store(path)
    store.cache.put({key: json.dumps({"text": ""})})  # an empty text, as an older simrun cached it

    def look_up(calls: ModelCalls) -> list[list[int]]:
        return calls.look_up([key], lambda raw: json.loads(raw)["text"], bool, chunk_size=8).chunks

    assert look_up(ModelCalls(Store(path, read_only=True))) == [[0]]  # --estimate reads a log it never writes
    assert store.db.execute("select count(*) from llm_cache").fetchone()[0] == 1
    assert look_up(ModelCalls(store)) == [[0]]
    assert store.db.execute("select count(*) from llm_cache").fetchone()[0] == 0
