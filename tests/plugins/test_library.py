import json

import numpy as np
import pytest

from conftest import ROOT
from simrun.plugins.samplers.census import load_controls
from simrun.plugins.samplers.library import LibrarySampler

META = ROOT.parent / "shared" / "data" / "personas" / "li2025_census_meta_personas_50states.csv.gz"


def draw(**config):
    sampler = LibrarySampler(LibrarySampler.Config(**config))
    return sampler, [p for batch in sampler.sample(np.random.default_rng(0), 32) for p in batch]


def test_the_papers_meta_personas_by_state_with_census_weights():
    sampler, personas = draw(path=str(META), stratum="STATE_ABBR", per_stratum=5,
                             columns={"age": "AGE", "sex": "SEX", "education": "EDUCATION", "state": "STATE_NAME"},
                             recode={"sex": {"Male": "male", "Female": "female"}})
    assert len(personas) == 250 == sampler.total()
    assert {p.stratum for p in personas} == set(load_controls()) - {"DC"}  # the paper's file has no DC
    ca = [p for p in personas if p.stratum == "CA"]
    assert sum(p.weight for p in ca) == pytest.approx(sum(load_controls()["CA"]["sex_age"].values()))
    assert {p.attributes["sex"] for p in personas} <= {"male", "female"}
    assert list(ca[0].attributes) == ["age", "sex", "education", "state"]
    assert ca[0].provenance["age"] == "library:li2025_census_meta_personas_50states.csv.gz"


def test_jsonl_with_a_weight_column_and_every_column(tmp_path):
    path = tmp_path / "panel.jsonl"
    path.write_text("\n".join(json.dumps({"id": i, "w": 2.5, "mood": "ok" if i % 2 else "fine"}) for i in range(5)) + "\n")
    sampler, personas = draw(path=str(path), weight="w")
    assert len(personas) == 5 and {p.stratum for p in personas} == {"ALL"}
    assert all(p.weight == 2.5 for p in personas) and sampler.provides() == {"id", "mood"}


def test_unknown_column_and_missing_file_are_clear_errors(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("a,b\n1,2\n")
    sampler = LibrarySampler(LibrarySampler.Config(path=str(path), columns={"age": "AGE"}))
    with pytest.raises(ValueError, match=r"no column\(s\) \['AGE'\]; it has \['a', 'b'\]"):
        sampler.total()
    with pytest.raises(ValueError, match="no file at"):
        LibrarySampler.Config(path=str(tmp_path / "none.csv"))
