import pytest
from conftest import EXAMPLE

from simrun.engine import Engine
from simrun.models import Answer, Question
from simrun.plugins.metrics.stability import StabilityMetric
from simrun.scenario import load_scenario
from simrun.store import Store


class ToyRun:
    questions = {"q": Question(id="q", text="?", options=["yes", "no"])}

    def __init__(self, rows):
        self.rows = rows

    def answers(self):
        return iter(
            Answer(
                persona_id=pid,
                question_id="q",
                distribution={"A": a, "B": 1 - a},
                invalid=0.0,
                model="toy",
                cache_key="",
            )
            for pid, a in self.rows
        )


def test_by_hand():
    # persona 0 answers A then B (variance 0.5 per option), persona 1 answers A twice (0):
    # run-to-run (1.0 + 0) / 2 = 0.5; persona means (0.5, 0.5) and (1, 0): 0.125 per option -> 0.25
    values = {v.label: v.value for v in StabilityMetric().compute(ToyRun([(0, 1.0), (0, 0.0), (1, 1.0), (1, 1.0)]))}
    assert values["run_to_run_variance"] == pytest.approx(0.5)
    assert values["between_persona_variance"] == pytest.approx(0.25)
    assert values["ratio"] == pytest.approx(2.0)


def test_single_answers_are_a_clear_error():
    with pytest.raises(ValueError, match="set repeats: 2"):
        StabilityMetric().compute(ToyRun([(0, 1.0), (1, 0.0)]))


def run(registry, db, *overrides):
    loaded = load_scenario(
        EXAMPLE / "towns.yaml", registry, ["metrics={stability: {}, mean_share: {question: q1}}", *overrides]
    )
    store = Store(db)
    return store, Engine(registry, store).run(loaded)


def test_repeats_are_asked_stored_and_averaged(registry, tmp_path):
    once, run_once = run(registry, tmp_path / "a.db", "metrics={mean_share: {question: q1}}")
    store, run_id = run(registry, tmp_path / "b.db", "repeats=3")
    rows = list(store.answers.rows(run_id, prompts=True))
    assert len(rows) == 24 * 2 * 3 and {r["repeat"] for r in rows} == {0, 1, 2}
    assert len({r["cache_key"] for r in rows}) == len({(r["prompt"], r["repeat"]) for r in rows})
    # a deterministic backend: repeats agree, shares equal a single run's, no run-to-run variance
    repeated, single = store.results.aggregates(run_id, "q1"), once.results.aggregates(run_once, "q1")
    assert set(repeated) == set(single)
    for stratum, shares in single.items():
        assert repeated[stratum] == pytest.approx(shares)
    metrics = {(m["metric"], m["name"]): m["value"] for m in store.results.metrics(run_id) if not m["question"]}
    assert metrics[("stability", "run_to_run_variance")] == pytest.approx(0, abs=1e-12)


def test_a_backend_that_varies_by_repeat_shows_run_to_run_variance(registry, tmp_path):
    store, run_id = run(registry, tmp_path / "c.db", "repeats=2", "simulator.with.vary_by_repeat=true")
    metrics = {(m["metric"], m["name"]): m["value"] for m in store.results.metrics(run_id) if not m["question"]}
    assert metrics[("stability", "run_to_run_variance")] > 0 and metrics[("stability", "between_persona_variance")] > 0
