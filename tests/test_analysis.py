"""The run log as pandas DataFrames: simrun.open, for notebooks."""

import pytest
from conftest import EXAMPLE

import simrun


@pytest.fixture
def finished(invoke, tmp_path):
    db = tmp_path / "a.db"
    result = invoke("run", str(EXAMPLE / "towns.yaml"), "--quiet", db=db)
    assert result.exit_code == 0, result.output
    return db, result.output.strip()


def test_runs_personas_answers_and_metrics_as_dataframes(finished):
    path, run_id = finished
    db = simrun.open(path)
    runs = db.runs()
    assert list(runs["id"]) == [run_id] and runs.loc[0, "status"] == "finished"
    personas = db.personas(run_id)
    assert len(personas) == 24 and {"id", "stratum", "weight", "town", "age", "generation"} <= set(personas.columns)
    answers = db.answers(run_id)
    assert len(answers) == 48 and {"p_A", "p_B", "invalid", "prompt", "error"} <= set(answers.columns)
    q1 = answers[answers.question_id == "q1"]
    share = (q1.p_A * q1.weight).sum() / q1.weight.sum()
    metrics = db.metrics(run_id)
    overall = metrics[(metrics.metric == "mean_share") & (metrics.stratum == "")]["value"].item()
    assert share == pytest.approx(overall)  # the docs' worked example: a metric recomputed from the answers


def test_a_per_question_figure_has_its_question_in_show_compare_and_the_dataframe(invoke, tmp_path):
    db = tmp_path / "q.db"
    towns = str(EXAMPLE / "towns.yaml")
    run_id = invoke("run", towns, "--quiet", "--set", "repeats=2", "--set", "metrics={stability: {}}", db=db).output
    shown = invoke("show", run_id.strip(), db=db).output
    assert "stability.run_to_run_variance[q1]" in shown and "stability.run_to_run_variance[q2]" in shown
    metrics = simrun.open(db).metrics(run_id.strip())
    per_question = metrics[(metrics.name == "run_to_run_variance") & (metrics.question != "")]
    assert sorted(per_question.question) == ["q1", "q2"] and list(metrics.columns)[:3] == ["metric", "name", "question"]


def test_an_unknown_run_or_a_missing_file_is_said(finished, tmp_path):
    path, _ = finished
    with pytest.raises(KeyError):
        simrun.open(path).answers("nope")
    with pytest.raises(simrun.store.StoreError, match="no run log at"):
        simrun.open(tmp_path / "typo.db")
    assert not (tmp_path / "typo.db").exists()
