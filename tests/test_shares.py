"""One computation of answer shares, fed answer by answer in chunks (the engine) or all at once (compare)."""

import shutil

import numpy as np
import pytest
from conftest import EXAMPLE

from simrun.engine import Engine
from simrun.engine.aggregation import aggregate
from simrun.registry import load_registry
from simrun.scenario import load_scenario
from simrun.shares import ShareSums
from simrun.store import Store


def test_shares_are_weighted_means_per_stratum_and_over_everyone():
    sums = ShareSums()
    values = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.2], [0.5, 0.5, 0.0]])  # A, B, then invalid mass
    sums.add("q", ["A", "B"], ["OH", "TX"], np.array([0, 1, 1]), np.array([1.0, 3.0, 1.0]), values)
    shares, invalid = sums.shares()["q"], sums.invalid()["q"]
    assert shares["OH"] == {"A": 1.0, "B": 0.0}
    assert shares["TX"]["A"] == pytest.approx(0.5 / 4) and invalid["TX"] == pytest.approx(0.6 / 4)
    assert shares["ALL"]["A"] == pytest.approx(1.5 / 5) and invalid["ALL"] == pytest.approx(0.6 / 5)


def test_chunks_add_up_to_the_whole():
    rng = np.random.default_rng(1)
    values, weights, codes = rng.random((50, 3)), rng.random(50), rng.integers(0, 4, 50)
    whole, chunked = ShareSums(), ShareSums()
    whole.add("q", ["A", "B"], ["a", "b", "c", "d"], codes, weights, values)
    for start in range(0, 50, 7):
        part = slice(start, start + 7)
        chunked.add("q", ["A", "B"], ["a", "b", "c", "d"], codes[part], weights[part], values[part])
    for stratum, shares in whole.shares()["q"].items():
        assert chunked.shares()["q"][stratum] == pytest.approx(shares)


def test_labels_are_matched_by_name_whatever_order_or_chunk_brings_them():
    sums = ShareSums()
    sums.add("q", ["A", "B"], ["OH"], np.array([0]), np.array([1.0]), np.array([[0.2, 0.8, 0.0]]))
    sums.add("q", ["B", "A"], ["OH"], np.array([0]), np.array([1.0]), np.array([[0.6, 0.4, 0.0]]))
    sums.add("q", [], ["OH"], np.array([0]), np.array([2.0]), np.array([[1.0]]))  # a failed answer: all invalid
    shares = sums.shares()["q"]["OH"]
    assert shares == pytest.approx({"A": 0.6 / 4, "B": 1.4 / 4})
    assert sums.invalid()["q"]["OH"] == pytest.approx(2 / 4)


def test_a_stratum_named_all_is_the_whole_population_counted_once():
    sums = ShareSums()
    sums.add("q", ["A"], ["ALL"], np.array([0, 0]), np.array([1.0, 3.0]), np.array([[1.0, 0.0], [0.0, 0.0]]))
    assert sums.weights[("q", "ALL")] == 4.0 and sums.shares()["q"]["ALL"] == {"A": 0.25}


def python_shares(store, run_id: str) -> dict:
    """The run's shares summed answer by answer in Python, as compare's resamples do."""
    sums = ShareSums()
    for row in store.answers.rows(run_id):
        distribution = row["distribution"]
        labels = sorted(distribution)
        values = np.array([[*(distribution[k] for k in labels), row["invalid"]]])
        sums.add(
            row["question_id"], labels, [row["stratum"]], np.zeros(1, dtype=np.intp), np.array([row["weight"]]), values
        )
    return sums.shares()


def test_the_engine_sums_shares_in_sql_as_python_sums_them_answer_by_answer(tmp_path, registry):
    store = Store(tmp_path / "s.db")
    loaded = load_scenario(EXAMPLE / "towns.yaml", registry, ["prompt.option_order=both"])
    run_id = Engine(registry, store).run(loaded)
    expected = python_shares(store, run_id)
    for question_id, by_stratum in expected.items():
        stored = store.results.aggregates(run_id, question_id)
        assert set(stored) == set(by_stratum)
        for stratum, shares in by_stratum.items():
            assert stored[stratum] == pytest.approx(shares, rel=1e-12)


REVERSE = """
from simrun import hookimpl
from simrun.components import Enricher


class Reverse(Enricher):
    name = "reverse"

    def enrich(self, batch, context):
        return batch[::-1]


@hookimpl
def register_enrichers(register):
    register(Reverse)
"""


def test_shares_summed_as_the_batches_are_written_are_the_ones_the_log_gives_back(tmp_path):
    """A run sums its shares in memory; a resumed one reads them back from the log. Metrics of a resumed run must
    equal an uninterrupted one's to the last bit, so both must add the same floats in the same order, whatever
    order an enricher left a batch's personas in or the scenario lists its questions in."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copy(EXAMPLE / "simrun_example.py", plugins)
    (plugins / "reverse.py").write_text(REVERSE)
    registry = load_registry(plugins)
    store = Store(tmp_path / "s.db")
    overrides = ["prompt.option_order=cyclic", "repeats=2", "questions.0.id=zz", "metrics.mean_share.question=zz"]
    overrides += ["sampler.with.per_town=40", "batch_size=16", "enrichers=[{use: reverse}]"]
    loaded = load_scenario(EXAMPLE / "towns.yaml", registry, overrides)
    engine = Engine(registry, store)
    run_id = engine.run(loaded)
    summed = {q.id: store.results.aggregates(run_id, q.id) for q in loaded.scenario.questions}
    aggregate(store, run_id, loaded.scenario.questions)
    assert {q.id: store.results.aggregates(run_id, q.id) for q in loaded.scenario.questions} == summed
    assert summed["zz"]["ALL"] == pytest.approx(python_shares(store, run_id)["zz"]["ALL"], rel=1e-12)


def test_a_nan_probability_from_a_buggy_simulator_still_aggregates(tmp_path, registry):
    store = Store(tmp_path / "s.db")
    loaded = load_scenario(EXAMPLE / "towns.yaml", registry)
    engine = Engine(registry, store)
    run_id = engine.run(loaded)
    number = store.runs.number(run_id)
    persona = store.db.execute("select persona_id from answers where run = ? limit 1", [number]).fetchone()[0]
    store.db.execute(
        "update answers set reply = ? where run = ? and persona_id = ? and question_id = 'q2'",
        ['{"distribution":{"A":NaN,"B":0.5},"invalid":0.0}', number, persona],
    )
    store.db.conn.commit()
    aggregate(store, run_id, loaded.scenario.questions)
    shares = store.results.aggregates(run_id, "q2")["ALL"]
    assert shares["A"] is None and shares["B"] > 0  # that answer's NaN shows (SQLite stores it as NULL)
    expected = python_shares(store, run_id)["q1"]
    assert all(store.results.aggregates(run_id, "q1")[s] == pytest.approx(expected[s]) for s in expected)
