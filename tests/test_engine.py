"""The engine end to end on the example plugin: determinism, cache, resume after SIGKILL."""

import json
import signal
import subprocess
import sys

import pytest
import sqlite_utils
from conftest import EXAMPLE, in_process

from simrun import hookimpl
from simrun.components import Enricher
from simrun.engine import Engine, PlanError, order_enrichers
from simrun.engine.asking import answer
from simrun.engine.calls import ModelCalls
from simrun.prompts import DEFAULT_SYSTEM
from simrun.scenario import load_scenario
from simrun.store import Store


def run_towns(registry, db_path, *overrides, use_cache=True):
    loaded = load_scenario(EXAMPLE / "towns.yaml", registry, list(overrides))
    store = Store(db_path)
    run_id = Engine(registry, store, use_cache=use_cache).run(loaded)
    return store, run_id


def answers(store, run_id):
    return [
        (r["persona_id"], r["question_id"], r["distribution"], r["invalid"], r["prompt"])
        for r in store.answers.rows(run_id, prompts=True)
    ]


def test_run_logs_everything(registry, tmp_path):
    store, run_id = run_towns(registry, tmp_path / "a.db")
    record = store.runs.get(run_id)
    assert record["status"] == "finished"
    assert store.runs.counts(run_id) == {"personas": 24, "answers": 48, "metrics": 3}
    components = {c["as"]: c for c in json.loads(record["components"])}
    assert components["simulator"]["name"] == "instant"
    persona = next(store.personas.rows(run_id))
    assert list(persona.attributes) == ["town", "age", "generation"], "stored in the order prompts show them"
    assert persona.provenance == {"town": "example:towns", "age": "example:towns", "generation": "example:generation"}
    row = next(store.answers.rows(run_id, prompts=True))
    assert "age: " in row["prompt"] and "Do you like the town park?" in row["prompt"] and "A. Yes" in row["prompt"]
    assert abs(sum(row["distribution"].values()) - 1) < 1e-9


def test_weighted_aggregates_match_hand_computation(registry, tmp_path):
    store, run_id = run_towns(registry, tmp_path / "a.db")
    by_town: dict[str, list[tuple[float, dict]]] = {}
    for r in store.answers.rows(run_id, prompts=True):
        if r["question_id"] == "q1":
            by_town.setdefault(r["stratum"], []).append((r["weight"], r["distribution"]))
    shares = store.results.aggregates(run_id, "q1")
    for town, rows in by_town.items():
        expected = sum(w * d["A"] for w, d in rows) / sum(w for w, _ in rows)
        assert shares[town]["A"] == pytest.approx(expected)
    everyone = [x for rows in by_town.values() for x in rows]
    assert shares["ALL"]["A"] == pytest.approx(sum(w * d["A"] for w, d in everyone) / sum(w for w, _ in everyone))
    metric = {(m["name"], m["stratum"]): m["value"] for m in store.results.metrics(run_id)}
    assert metric[("share", "")] == pytest.approx(shares["ALL"]["A"])


def test_same_seed_same_results_other_seed_differs(registry, tmp_path):
    a, run_a = run_towns(registry, tmp_path / "a.db")
    b, run_b = run_towns(registry, tmp_path / "b.db")
    c, run_c = run_towns(registry, tmp_path / "c.db", "seed=8")
    assert answers(a, run_a) == answers(b, run_b)
    assert answers(a, run_a) != answers(c, run_c)


def test_second_run_is_served_from_cache(registry, tmp_path):
    log = tmp_path / "calls.log"
    store, first = run_towns(registry, tmp_path / "a.db", f"simulator.with.call_log={log}")
    calls = log.read_text().count("\x1e")
    asked = len({r["prompt"] for r in store.answers.rows(first, prompts=True)})
    assert calls == asked + 2, "the personas' prompts, and the 2 questions with no persona (the no_persona baseline)"
    store, second = run_towns(registry, tmp_path / "a.db", f"simulator.with.call_log={log}")
    assert log.read_text().count("\x1e") == calls  # no new model calls
    assert all(r["cached"] for r in store.answers.rows(second, prompts=True))
    assert answers(store, first)[0][2:] == answers(store, second)[0][2:]
    run_towns(registry, tmp_path / "a.db", f"simulator.with.call_log={log}", use_cache=False)
    assert log.read_text().count("\x1e") == 2 * calls


def test_prompt_exclude_hides_attribute(registry, tmp_path):
    store, run_id = run_towns(registry, tmp_path / "a.db", "prompt.exclude=[age]")
    row = next(store.answers.rows(run_id, prompts=True))
    assert "age:" not in row["prompt"] and "generation:" in row["prompt"]


class Needs(Enricher):
    name = "needs"

    def __init__(self, needs, provides):
        super().__init__()
        self.needs, self.provides = frozenset(needs), frozenset(provides)


def test_enrichers_are_ordered_by_needs():
    a, b, c = Needs({"y"}, {"z"}), Needs({"x"}, {"y"}), Needs(set(), {"x"})
    assert order_enrichers({"age"}, [a, b, c], "s.yaml") == [c, b, a]


def test_optional_inputs_order_enrichers_but_need_no_provider():
    reader, provider = Needs(set(), {"y"}), Needs(set(), {"x"})
    reader.uses = frozenset({"x", "absent"})
    assert order_enrichers(set(), [reader, provider], "s.yaml") == [provider, reader]


def test_enricher_cycle_is_an_error():
    with pytest.raises(PlanError, match="cycle"):
        order_enrichers(set(), [Needs({"x"}, {"y"}), Needs({"y"}, {"x"})], "s.yaml")


def test_migrations_are_recorded_once_in_order(tmp_path):
    from simrun.migrations import MIGRATIONS

    Store(tmp_path / "m.db")
    Store(tmp_path / "m.db")
    db = sqlite_utils.Database(tmp_path / "m.db")
    assert [r["name"] for r in db["_migrations"].rows] == [fn.__name__ for fn in MIGRATIONS]
    assert db.journal_mode == "wal"


def test_an_old_database_is_upgraded(tmp_path):
    from simrun.migrations import m001_initial

    db = sqlite_utils.Database(tmp_path / "old.db")
    m001_initial(db)
    db["_migrations"].insert({"name": "m001_initial", "applied_at": "2026-01-01"}, pk="name")
    db["runs"].insert({"id": "r1", "name": "old", "status": "finished"})
    store = Store(tmp_path / "old.db")
    assert "simulator_stats" in store.db["runs"].columns_dict
    store.runs.add_stats("r1", {"retries": 2})
    store.runs.add_stats("r1", {"retries": 1, "http_429": 1})
    assert json.loads(store.runs.get("r1")["simulator_stats"]) == {"retries": 3, "http_429": 1}


def simrun(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "simrun", *args, "--plugins-dir", str(EXAMPLE)], capture_output=True, text=True, **kwargs
    )


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    scenario = tmp_path / "big.yaml"
    scenario.write_text((EXAMPLE / "towns.yaml").read_text().replace("per_town: 12", "per_town: 60"))
    killed_db, log, flag = tmp_path / "killed.db", tmp_path / "calls.log", tmp_path / "armed"
    flag.touch()
    crash = [
        "--set",
        f"simulator.with.call_log={log}",
        "--set",
        "simulator.with.kill_at_call=9",
        "--set",
        f"simulator.with.kill_flag={flag}",
    ]
    killed = simrun("run", str(scenario), "--db", str(killed_db), "--quiet", *crash)
    assert killed.returncode == -signal.SIGKILL
    db = sqlite_utils.Database(killed_db)
    run_id, status = db.execute("select id, status from runs").fetchone()
    assert status == "running"
    finished_batches = db.execute("select count(*) from progress").fetchone()[0]
    assert 0 < finished_batches < 15, "the kill lands mid-run"

    resumed = simrun("run", "--resume", run_id, "--db", str(killed_db), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    calls = log.read_text().split("\x1e")[:-1]
    asked = {
        r["prompt"].replace("[system]\n", "").replace("\n[user]\n", "")
        for r in Store(killed_db).answers.rows(run_id, prompts=True)
    }
    assert len(calls) == len(set(calls)), "no completed model call is repeated across kill and resume"
    empty = DEFAULT_SYSTEM.format(persona="")  # the no_persona baseline: each question with no persona
    no_persona = {call for call in calls if not call.removeprefix(empty).startswith("town: ")}
    assert len(no_persona) == 2 and set(calls) == asked | no_persona

    clean_db = tmp_path / "clean.db"
    clean = simrun("run", str(scenario), "--db", str(clean_db), "--quiet")
    assert clean.returncode == 0, clean.stderr
    clean_id = clean.stdout.strip()
    killed, fresh = Store(killed_db), Store(clean_db)
    assert answers(killed, run_id) == answers(fresh, clean_id)
    strip = lambda ms: [(m["metric"], m["name"], m["stratum"], m["value"]) for m in ms]  # noqa: E731
    assert strip(killed.results.metrics(run_id)) == strip(fresh.results.metrics(clean_id))
    assert killed.runs.counts(run_id) == {"personas": 120, "answers": 240, "metrics": 3}
    assert killed.runs.get(run_id)["status"] == "finished"


def test_lifecycle_hooks_see_the_run(tmp_path):
    from simrun import hookimpl
    from simrun.registry import load_registry

    seen = []

    class Observer:
        @hookimpl
        def run_started(self, run):
            seen.append(("started", run.name, run.resumed))

        @hookimpl
        def batch_done(self, run, personas, answers):
            seen.append(("batch", len(personas), len(answers)))
            prompts.update({(a.persona_id, a.question_id): a.prompt for a in answers})

        @hookimpl
        def run_finished(self, run, metrics):
            seen.append(("finished", sorted(metrics)))

    prompts = {}
    registry = load_registry(EXAMPLE)
    registry.manager.register(Observer())
    store, run_id = run_towns(registry, tmp_path / "h.db")
    assert seen[0] == ("started", "towns", False)
    assert [s for s in seen if s[0] == "batch"] == [("batch", 8, 16)] * 3
    assert seen[-1] == ("finished", ["mean_share.share"])
    # an answer's prompt, built when a hook reads it, is the one the run log gives back
    logged = {(r["persona_id"], r["question_id"]): r["prompt"] for r in store.answers.rows(run_id, prompts=True)}
    assert prompts == logged and all(p.startswith("[system]") for p in prompts.values())


@pytest.mark.parametrize(
    "order,expected_q1,calls_per_persona",
    [
        ("original", {"A": 0.7, "B": 0.15, "C": 0.15}, 2),
        ("reversed", {"A": 0.15, "B": 0.15, "C": 0.7}, 2),
        ("both", {"A": 0.425, "B": 0.15, "C": 0.425}, 4),
        ("cyclic", {"A": 1 / 3, "B": 1 / 3, "C": 1 / 3}, 5),
    ],
)
def test_option_orders_map_back_and_average(registry, tmp_path, order, expected_q1, calls_per_persona):
    store, run_id = run_towns(
        registry, tmp_path / "o.db", "simulator.with.first_option_bias=0.7", f"prompt.option_order={order}"
    )
    rows = [r for r in store.answers.rows(run_id, prompts=True)]
    q1 = [r for r in rows if r["question_id"] == "q1"]
    for r in q1:
        assert r["distribution"] == pytest.approx(expected_q1)
    assert sum(len(r["cache_key"].split(",")) for r in rows) == 24 * calls_per_persona
    if order == "both":
        first, second = q1[0]["prompt"].split("\n\n[system]")
        assert "A. Yes\nB. No\nC. Not sure" in first and "A. Not sure\nB. No\nC. Yes" in second


def test_failed_answers_are_recorded_but_never_cached(registry, tmp_path):
    import numpy as np

    from simrun.engine import build_pipeline
    from simrun.models import failed_answer

    class Flaky:
        name, model, chunk_size = "flaky", "flaky-model", 32

        def cache_identity(self):
            return {"model": self.model}

        def answer(self, prompts):
            return [failed_answer(p.labels, "HTTP 503 after 5 retries") for p in prompts]

    loaded = load_scenario(EXAMPLE / "towns.yaml", registry)
    batch = next(build_pipeline(loaded, registry).sampler.sample(np.random.default_rng(0), 4))
    store = Store(tmp_path / "f.db")
    answers = answer(batch, loaded, in_process(Flaky()), ModelCalls(store))
    assert len(answers) == 8
    assert all(a.invalid == 1.0 and a.error == "HTTP 503 after 5 retries" for a in answers)
    assert store.db["llm_cache"].count == 0


class Counter:
    """An observer counting personas through the lifecycle hooks, as the progress bar does."""

    def __init__(self):
        self.total, self.done, self.resumed = None, 0, 0
        self.placed: set[tuple[str, float]] = set()  # each answer's stratum and weight, as its persona's

    @hookimpl
    def run_started(self, run):
        self.total = run.total

    @hookimpl
    def batch_done(self, run, personas, answers):
        self.done += len(personas)
        own = {p.id: (p.stratum, p.weight) for p in personas}
        self.placed |= {(a.stratum, a.weight) for a in answers if (a.stratum, a.weight) == own[a.persona_id]}

    @hookimpl
    def batch_resumed(self, run, personas):
        self.resumed += len(personas)


def test_observers_count_every_persona_of_a_resumed_run(registry, tmp_path):
    store, run_id = run_towns(registry, tmp_path / "o.db")
    kept = sorted(store.answers.done_batches(run_id))[:1]
    store.db.execute("delete from progress where run_id = ? and batch > ?", [run_id, kept[-1]])
    store.db.execute("update runs set status = 'failed' where id = ?", [run_id])
    store.db.conn.commit()
    counter = Counter()
    registry.manager.register(counter)
    try:
        loaded = load_scenario(EXAMPLE / "towns.yaml", registry)
        Engine(registry, store).run(loaded, resume=run_id)
    finally:
        registry.manager.unregister(counter)
    assert counter.total == 24 and counter.resumed == 8 and counter.done == 16
    assert {stratum for stratum, _ in counter.placed} == {"Ashford", "Brook"}  # answers carry their persona's place


def test_batched_pauses_collection_only_while_a_batch_is_built():
    import gc

    from simrun import Persona, batched

    def stream(fail_at=None):
        for i in range(5):
            assert not gc.isenabled()  # building a batch: no collection rescanning everything alive
            if i == fail_at:
                raise RuntimeError("sampler broke")
            yield Persona(id=i, stratum="A", weight=1.0)

    assert [len(b) for b in batched(stream(), 2)] == [2, 2, 1] and gc.isenabled()
    with pytest.raises(RuntimeError):
        list(batched(stream(fail_at=3), 2))
    assert gc.isenabled()
    gc.disable()
    try:
        list(batched(stream(), 2))
        assert not gc.isenabled()  # a caller that had turned collection off keeps it off
    finally:
        gc.enable()


def test_a_run_puts_the_cycle_collector_back_as_it_found_it(registry, tmp_path):
    import gc

    threshold = gc.get_threshold()
    run_towns(registry, tmp_path / "gc.db")
    assert gc.get_threshold() == threshold and gc.get_freeze_count() == 0
    gc.freeze()  # the caller's own freeze is left alone
    try:
        run_towns(registry, tmp_path / "gc.db")
        assert gc.get_freeze_count() > 0 and gc.get_threshold() == threshold
    finally:
        gc.unfreeze()


def test_a_metric_reads_answers_as_the_docs_say_on_the_run_and_its_baselines(tmp_path):
    from simrun import Answer, Metric, MetricValue
    from simrun.registry import load_registry

    seen: dict[str, list] = {}

    class WeightedFirst(Metric):
        """The weighted share of option A, read answer by answer."""

        name = "weighted_first"
        baselines = True

        def compute(self, run):
            answers = list(run.answers())
            seen.setdefault("calls", []).append(answers)
            total = sum(a.weight for a in answers)
            return [MetricValue("share_a", sum(a.distribution["A"] * a.weight for a in answers) / total)]

    registry = load_registry(EXAMPLE)
    registry.add("metric", "test", "test", "", WeightedFirst)
    store = Store(tmp_path / "m.db")
    loaded = load_scenario(EXAMPLE / "towns.yaml", registry, ["metrics={weighted_first: {}}"])
    run_id = Engine(registry, store).run(loaded)
    own, *baselines = seen["calls"]
    assert len(own) == 48 and len(baselines) == 2  # the run, then the uniform and no-persona baselines
    first = own[0]
    assert isinstance(first, Answer) and isinstance(first.distribution, dict)
    assert first.stratum in {"Ashford", "Brook"} and first.weight == pytest.approx(1000 / 12) and first.repeat == 0
    assert sorted({round(a.distribution["A"], 9) for a in baselines[0]}) == [round(1 / 3, 9), 0.5]  # uniform
    values = {m["metric"]: m["value"] for m in store.results.metrics(run_id)}
    assert set(values) == {"weighted_first", "weighted_first@uniform", "weighted_first@no_persona"}
