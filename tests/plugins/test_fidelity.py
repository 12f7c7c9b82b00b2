import numpy as np
import pytest
from conftest import PersonasView

from simrun import load_controls
from simrun.distributions import tvd
from simrun.models import Persona
from simrun.plugins.metrics.fidelity import FidelityMetric
from simrun.plugins.samplers.census import CensusSampler


def test_tvd_by_hand():
    assert tvd({"a": 3, "b": 1}, {"a": 1, "b": 1}) == pytest.approx(0.25)
    assert tvd({"a": 1}, {"b": 5}) == pytest.approx(1.0)


def test_census_personas_are_close_to_the_controls():
    # 10,000 per state: the 16 income bands and 32 employment cells need them for sampling noise below 0.03
    sampler = CensusSampler(CensusSampler.Config(states=["NY", "WY"], per_state=10_000))
    personas = [p for batch in sampler.sample(np.random.default_rng(3), 1000) for p in batch]
    values = {(v.name, v.stratum): v.value for v in FidelityMetric().compute(PersonasView(personas))}
    assert values[("tvd_max", "")] < 0.03
    assert {
        ("tvd[sex_x_age]", "NY"),
        ("tvd[education]", "WY"),
        ("tvd[race_ethnicity]", "NY"),
        ("tvd[household_income]", "WY"),
    } <= set(values)


def test_an_all_male_population_is_half_wrong_on_sex():
    female_share = sum(v for k, v in load_controls()["VT"]["sex_age"].items() if k.startswith("female")) / sum(
        load_controls()["VT"]["sex_age"].values()
    )
    personas = [
        Persona(
            id=i,
            stratum="VT",
            weight=1.0,
            attributes={"sex": "male", "age": 40, "race_ethnicity": "white", "education": "high school"},
        )
        for i in range(10)
    ]
    values = {(v.name, v.stratum): v.value for v in FidelityMetric().compute(PersonasView(personas))}
    assert values[("tvd[sex]", "VT")] == pytest.approx(female_share)


def test_personas_outside_any_state_are_a_clear_error():
    with pytest.raises(ValueError, match="no persona's stratum is a state"):
        FidelityMetric().compute(
            PersonasView([Persona(id=0, stratum="Ashford", weight=1.0, attributes={"sex": "male"})])
        )


def test_citizen_personas_are_scored_against_citizen_controls():
    config = dict(states=["CA"], per_state=4000, population="citizen_voting_age")
    personas = [
        p
        for batch in CensusSampler(CensusSampler.Config(**config)).sample(np.random.default_rng(4), 1000)
        for p in batch
    ]
    citizens = {
        (v.name, v.stratum): v.value
        for v in FidelityMetric(FidelityMetric.Config(population="citizen_voting_age")).compute(PersonasView(personas))
    }
    assert citizens[("tvd_max", "")] < 0.03 and ("tvd[education_18plus]", "CA") in citizens
    adults = {(v.name, v.stratum): v.value for v in FidelityMetric().compute(PersonasView(personas))}
    assert (
        adults[("tvd[race_ethnicity]", "CA")] > 0.05
    )  # fewer Hispanic and Asian Californians are citizens than are adults
    assert (
        adults[("tvd[education]", "CA")] > citizens[("tvd[education_18plus]", "CA")]
    )  # citizens differ from all adults
