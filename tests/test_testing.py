"""simrun.testing: what a plugin author's tests call to run a scenario and read it back."""

import gc
from pathlib import Path

import pytest
from conftest import EXAMPLE

from simrun.scenario import ScenarioError
from simrun.testing import run_scenario

TOWNS = {
    "name": "towns",
    "sampler": {"use": "towns", "with": {"per_town": 12}},
    "simulator": {"use": "instant"},
    "questions": [{"id": "q1", "text": "Do you like the town park?", "options": ["Yes", "No", "Not sure"]}],
    "metrics": {"mean_share": {"question": "q1"}},
}


def test_a_scenario_file_runs_into_a_log_of_its_own_and_reads_back(tmp_path):
    run = run_scenario(EXAMPLE / "towns.yaml", plugins_dir=EXAMPLE, db=tmp_path / "t.db", overrides=["seed=3"])
    assert run.db == str(tmp_path / "t.db") and run.loaded.scenario.seed == 3
    assert 0 < run.metrics["mean_share.share"] < 1
    assert set(run.metrics_by_stratum) == {"Ashford", "Brook"}
    assert sum(run.shares("q1")["ALL"].values()) == pytest.approx(1.0)
    answers = list(run.answers())
    assert len(answers) == 48 and {a.stratum for a in answers} == {"Ashford", "Brook"}
    assert len(list(run.personas())) == 24


def test_a_scenario_given_as_a_dict_runs_in_a_temporary_log_removed_with_it():
    scenario = dict(TOWNS)
    run = run_scenario(scenario, plugins_dir=EXAMPLE, overrides=["sampler.with.per_town=3"])
    folder = Path(run.db).parent
    assert len(list(run.personas())) == 6 and folder.is_dir()
    del run
    gc.collect()
    assert not folder.exists()


def test_an_invalid_scenario_raises_what_simrun_validate_says():
    scenario = dict(TOWNS)
    with pytest.raises(ScenarioError, match="sampler.with.per_town: Input should be a valid integer"):
        run_scenario(scenario, plugins_dir=EXAMPLE, overrides=["sampler.with.per_town=many"])
