import json

import numpy as np
import pytest
from conftest import ROOT

from simrun import load_controls
from simrun.plugins.samplers.library import LibrarySampler

META = ROOT.parent / "shared" / "data" / "personas" / "li2025_census_meta_personas_50states.csv.gz"


def draw(**config):
    sampler = LibrarySampler(LibrarySampler.Config(**config))
    return sampler, [p for batch in sampler.sample(np.random.default_rng(0), 32) for p in batch]


def test_the_papers_meta_personas_by_state_with_census_weights():
    sampler, personas = draw(
        path=str(META),
        stratum="STATE_ABBR",
        per_stratum=5,
        columns={"age": "AGE", "sex": "SEX", "education": "EDUCATION", "state": "STATE_NAME"},
        recode={"sex": {"Male": "male", "Female": "female"}},
    )
    assert len(personas) == 250 == sampler.total()
    assert {p.stratum for p in personas} == set(load_controls()) - {"DC"}  # the paper's file has no DC
    ca = [p for p in personas if p.stratum == "CA"]
    assert sum(p.weight for p in ca) == pytest.approx(sum(load_controls()["CA"]["sex_age"].values()))
    assert {p.attributes["sex"] for p in personas} <= {"male", "female"}
    assert list(ca[0].attributes) == ["age", "sex", "education", "state"]
    assert ca[0].provenance["age"] == "library:li2025_census_meta_personas_50states.csv.gz"


def test_jsonl_with_a_weight_column_and_every_column(tmp_path):
    path = tmp_path / "panel.jsonl"
    path.write_text(
        "\n".join(json.dumps({"id": i, "w": 2.5, "mood": "ok" if i % 2 else "fine"}) for i in range(5)) + "\n"
    )
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


AGE_MIDPOINTS = {
    "18 to 19 years": 18,
    "20 to 24 years": 22,
    "25 to 34 years": 30,
    "35 to 44 years": 40,
    "45 to 54 years": 50,
    "55 to 59 years": 57,
    "60 to 64 years": 62,
    "65 to 74 years": 70,
    "75 to 84 years": 80,
    "85 years and over": 88,
}
RACE = {"White": "white", "Black or African American": "black", "Asian": "asian", "Hispanic": "hispanic"}
EDUCATION = {
    "Less than 9th grade": "less than high school",
    "9th to 12th grade, no diploma": "less than high school",
    "High school graduate": "high school",
    "Some college, no degree": "high school",
    "Associate's degree": "associate degree",
    "Bachelor's degree": "bachelor's degree",
    "Graduate or professional degree": "graduate degree",
}


def meta_subset(tmp_path, states=("CA", "WV")):
    import csv
    import gzip

    path = tmp_path / "meta.csv"
    with gzip.open(META, "rt", newline="") as f, path.open("w", newline="") as out:
        reader = csv.DictReader(f)
        writer = csv.DictWriter(out, reader.fieldnames)
        writer.writeheader()
        writer.writerows(r for r in reader if r["STATE_ABBR"] in states)
    return str(path)


def test_the_papers_personas_raked_to_each_states_census_mix(tmp_path):
    path = meta_subset(tmp_path)
    races = sorted({r for r in RACE.values()})
    config = dict(
        path=path,
        stratum="STATE_ABBR",
        columns={"age": "AGE", "race_ethnicity": "RACE", "education": "EDUCATION"},
        recode={
            "age": AGE_MIDPOINTS,
            "race_ethnicity": {
                **RACE,
                **{
                    k: "other"
                    for k in [
                        "White and Asian",
                        "Some Other Race",
                        "White and Some Other Race",
                        "American Indian and Alaska Native",
                        "White and American Indian and Alaska Native",
                        "White and Black or African American",
                        "Native Hawaiian and Other Pacific Islander",
                        "Black or African American and Some Other Race",
                        "Black or African American and American Indian and Alaska Native",
                    ]
                },
            },
            "education": EDUCATION,
        },
    )
    _, plain = draw(**config)
    sampler, raked = draw(**config, rake=["race_ethnicity", "education"])
    controls = load_controls()["CA"]

    def shares(personas, attribute, categories):
        ca = [p for p in personas if p.stratum == "CA"]
        total = sum(p.weight for p in ca)
        return {c: sum(p.weight for p in ca if p.attributes[attribute] == c) / total for c in categories}

    target = {c: n / sum(controls["race_ethnicity"].values()) for c, n in controls["race_ethnicity"].items()}
    assert shares(raked, "race_ethnicity", races + ["other"]) == pytest.approx(target, abs=1e-3)
    assert (
        abs(shares(plain, "race_ethnicity", ["hispanic"])["hispanic"] - target["hispanic"]) > 0.01
    )  # the file's own mix is off
    assert sum(p.weight for p in raked if p.stratum == "CA") == pytest.approx(sum(controls["sex_age"].values()))
    assert raked[0].provenance["education"].startswith("library:meta.csv raked to census:B01001B/D/H/I,B03002,B15002")
    _, drawn = draw(**config, rake=["education"], per_stratum=3)
    assert len(drawn) == 6 and len({p.weight for p in drawn if p.stratum == "WV"}) == 1


def test_rows_that_are_not_census_cells_are_named(tmp_path):
    path = meta_subset(tmp_path, states=("WV",))
    sampler = LibrarySampler(
        LibrarySampler.Config(
            path=path,
            stratum="STATE_ABBR",
            columns={"age": "AGE", "education": "EDUCATION"},
            recode={"age": AGE_MIDPOINTS},
            rake=["education"],
        )
    )
    with pytest.raises(
        ValueError,
        match=r"row 1 \(WV\) has \{'education': 'Graduate or professional degree', 'age': 30\}, "
        r"not a census education cell .*; recode it",
    ):
        next(sampler.sample(np.random.default_rng(0), 4))
    unrecoded_age = LibrarySampler(
        LibrarySampler.Config(
            path=path,
            stratum="STATE_ABBR",
            columns={"age": "AGE", "sex": "SEX"},
            recode={"sex": {"Male": "male", "Female": "female"}},
            rake=["sex_age"],
        )
    )
    with pytest.raises(
        ValueError, match=r"has \{'sex': '.*', 'age': '.* years'\}, not a census sex_age cell .*age as a whole number"
    ):
        next(unrecoded_age.sample(np.random.default_rng(0), 4))
    no_such_table = LibrarySampler(
        LibrarySampler.Config(path=path, stratum="STATE_ABBR", columns={"age": "AGE"}, rake=["age_band"])
    )
    with pytest.raises(ValueError, match=r"the controls \(ACS 2018 1-year\) have no age_band; they have sex_age"):
        next(no_such_table.sample(np.random.default_rng(0), 4))
