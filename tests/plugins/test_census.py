import numpy as np
import pytest

from simrun.plugins.samplers.census import CensusSampler, rake
from simrun.plugins import data


def test_rake_matches_every_control_on_a_hand_case():
    codes_a = np.array([0, 0, 1, 1])
    codes_b = np.array([0, 1, 0, 1])
    result = rake(np.ones(4), [(codes_a, np.array([30.0, 70.0])), (codes_b, np.array([60.0, 40.0]))])
    w = result.weights
    assert [w[:2].sum(), w[2:].sum()] == pytest.approx([30, 70])
    assert [w[[0, 2]].sum(), w[[1, 3]].sum()] == pytest.approx([60, 40])
    assert result.empty_cells == []


def test_rake_reports_a_control_cell_no_seed_row_has():
    result = rake(np.ones(2), [(np.array([0, 0]), np.array([5.0, 5.0]))])
    assert result.empty_cells == ["dimension 0 category 1"]


def test_state_fit_matches_controls_within_half_a_percent():
    sampler = CensusSampler(CensusSampler.Config(states=["CA", "MT", "DC"], per_state=10))
    for state in ("CA", "MT", "DC"):
        weights = sampler.fit(state).weights
        for dimension, targets in sampler.controls[state].items():
            for category, target in targets.items():
                fitted = weights[sampler.seed[dimension] == category].sum()
                assert fitted == pytest.approx(target, rel=0.005), (state, dimension, category)


def test_weights_sum_to_adult_population_and_total_is_allocated():
    sampler = CensusSampler(CensusSampler.Config(total=500))
    personas = [p for batch in sampler.sample(np.random.default_rng(0), 64) for p in batch]
    assert len(personas) == 500 == sampler.total()
    adults = sum(float(r["count"]) for r in data.rows("acs2018_adult_controls.csv") if r["dimension"] == "sex_age")
    assert sum(p.weight for p in personas) == pytest.approx(adults)
    counts = {}
    for p in personas:
        counts[p.stratum] = counts.get(p.stratum, 0) + 1
    assert counts["CA"] > counts["WY"]
    assert all(p.provenance["education"].startswith("census:B15002") for p in personas)


def test_sampled_marginals_follow_the_state_not_the_nation():
    sampler = CensusSampler(CensusSampler.Config(states=["DC", "WV"], per_state=3000))
    personas = [p for batch in sampler.sample(np.random.default_rng(1), 500) for p in batch]
    def share(state, attr, value, min_age=18):
        group = [p for p in personas if p.stratum == state and p.attributes["age"] >= min_age]
        return np.mean([p.attributes[attr] == value for p in group])

    for state in ("DC", "WV"):
        c = sampler.controls[state]
        over25 = sum(v for k, v in c["education"].items() if k != "under 25")
        for category in ("graduate degree", "less than high school"):
            assert share(state, "education", category, min_age=25) == pytest.approx(c["education"][category] / over25, abs=0.02)
        expected_black = c["race_ethnicity"]["black"] / sum(c["race_ethnicity"].values())
        assert share(state, "race_ethnicity", "black") == pytest.approx(expected_black, abs=0.02)
    assert share("DC", "education", "graduate degree") > 2 * share("WV", "education", "graduate degree")


def test_unknown_state_is_rejected_with_the_expected_form():
    with pytest.raises(ValueError, match="unknown state code"):
        CensusSampler.Config(states=["CA", "XX"])
