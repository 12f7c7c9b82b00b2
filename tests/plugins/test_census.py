import tempfile
from pathlib import Path

import numpy as np
import pytest

from simrun import Dimension, Imputed, data, encode, rake
from simrun.plugins.samplers.census import CensusSampler


def test_rake_matches_every_control_on_a_hand_case():
    codes_a = np.array([0, 0, 1, 1])
    codes_b = np.array([0, 1, 0, 1])
    result = rake(np.ones(4), [Dimension(codes_a, np.array([30.0, 70.0])), Dimension(codes_b, np.array([60.0, 40.0]))])
    w = result.weights
    assert [w[:2].sum(), w[2:].sum()] == pytest.approx([30, 70])
    assert [w[[0, 2]].sum(), w[[1, 3]].sum()] == pytest.approx([60, 40])
    assert result.empty_cells == []


def test_raking_an_imputed_attribute_in_product_form_equals_raking_every_split_row():
    # three respondents; an imputed attribute with two categories;
    # respondents 0 and 1 share their probabilities and cells
    weights, prior = np.array([1.0, 2.0, 3.0]), np.array([[0.3, 0.7], [0.3, 0.7], [0.6, 0.4]])
    pairs = Imputed(
        ("yes", "no"),
        group=np.array([0, 0, 1]),
        pair_group=np.array([0, 0, 1, 1]),
        category=np.array([0, 1, 0, 1]),
        prior=np.array([0.3, 0.7, 0.6, 0.4]),
        start=np.array([0, 2, 4]),
        cells={},
    )
    own = np.array([0, 0, 1])  # a control on the respondents' own attribute
    both = np.array([0, 1, 2, 3])  # a control on (own attribute, imputed category), per pair
    targets_own, targets_both = np.array([40.0, 60.0]), np.array([10.0, 30.0, 35.0, 25.0])
    fit = rake(weights, [Dimension(own, targets_own), Dimension(both, targets_both, "x")], {"x": pairs})
    # the same, with every respondent split into one row per category
    rows = rake(
        (weights[:, None] * prior).ravel(),
        [Dimension(np.repeat(own, 2), targets_own), Dimension(np.array([0, 1, 0, 1, 2, 3]), targets_both)],
    )
    product = fit.base[:, None] * fit.pair["x"].reshape(2, 2)[pairs.group]
    assert product.ravel() == pytest.approx(rows.weights, rel=1e-6)
    assert fit.weights == pytest.approx(rows.weights.reshape(3, 2).sum(axis=1), rel=1e-6)
    drawn = fit.draw("x", np.repeat([0, 2], 20000), np.random.default_rng(0))
    assert np.mean(drawn[:20000] == 0) == pytest.approx(product[0, 0] / product[0].sum(), abs=0.01)
    assert np.mean(drawn[20000:] == 0) == pytest.approx(product[2, 0] / product[2].sum(), abs=0.01)


def test_rake_reports_a_control_cell_no_seed_row_has():
    result = rake(np.ones(2), [Dimension(np.array([0, 0]), np.array([5.0, 5.0]))])
    assert result.empty_cells == [(0, 1)]


def test_state_fit_matches_controls_within_half_a_percent():
    sampler = CensusSampler(CensusSampler.Config(states=["CA", "MT", "DC"], per_state=10))
    for state in ("CA", "MT", "DC"):
        fit = sampler.fit(state)
        for dimension, targets in sampler.controls[state].items():
            fitted = sampler.seed.totals(fit, dimension)
            for category, target in targets.items():
                assert fitted.get(category, 0.0) == pytest.approx(target, rel=0.005, abs=1), (
                    state,
                    dimension,
                    category,
                )


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
            assert share(state, "education", category, min_age=25) == pytest.approx(
                c["education"][category] / over25, abs=0.02
            )
        expected_black = c["race_ethnicity"]["black"] / sum(c["race_ethnicity"].values())
        assert share(state, "race_ethnicity", "black") == pytest.approx(expected_black, abs=0.02)
    assert share("DC", "education", "graduate degree") > 2 * share("WV", "education", "graduate degree")


def test_unknown_state_is_rejected_with_the_expected_form():
    with pytest.raises(ValueError, match="unknown state code"):
        CensusSampler.Config(states=["CA", "XX"])


def test_citizen_voting_age_population_matches_its_own_controls():
    sampler = CensusSampler(CensusSampler.Config(states=["CA", "VT"], per_state=2000, population="citizen_voting_age"))
    cvap = sampler.represented
    for state in ("CA", "VT"):
        fit = sampler.fit(state)
        for dimension, targets in cvap[state].items():
            fitted = sampler.seed.totals(fit, dimension)
            for category, target in targets.items():
                assert fitted.get(category, 0.0) == pytest.approx(target, rel=0.005), (state, dimension, category)
    personas = [p for batch in sampler.sample(np.random.default_rng(2), 500) for p in batch]
    ca = [p for p in personas if p.stratum == "CA"]
    assert sum(p.weight for p in ca) == pytest.approx(sum(cvap["CA"]["age_band"].values()))
    adults = CensusSampler(CensusSampler.Config(states=["CA"], per_state=1))
    assert sum(p.weight for p in ca) < 0.85 * adults.population("CA")  # California has many adults who are not citizens
    assert (
        "B05003" in ca[0].provenance["sex"]
        and "B29001" in ca[0].provenance["age"]
        and ca[0].provenance["age"].endswith("citizens kept")
    )
    # citizens are drawn from the raked adults, so their race mix follows the seed's race x citizenship association
    race = sampler.seed.totals(sampler.fit("CA"), "race_ethnicity")
    adult_race = adults.controls["CA"]["race_ethnicity"]
    assert race["hispanic"] / sum(race.values()) < adult_race["hispanic"] / sum(adult_race.values()) - 0.03


def write_controls(tmp_path, rows, header="state,table,dimension,category,count"):
    path = tmp_path / "controls.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return str(path)


GOOD_ROWS = [
    "VT,T1,sex,female,100",
    "VT,T1,sex,male,100",
    "VT,T2,age_band,18-29,50",
    "VT,T2,age_band,30-44,50",
    "VT,T2,age_band,45-64,50",
    "VT,T2,age_band,65+,50",
]


def test_a_users_control_table_is_raked_to():
    sampler = CensusSampler(
        CensusSampler.Config(states=["VT"], per_state=5, controls=write_controls(Path(tempfile.mkdtemp()), GOOD_ROWS))
    )
    fit = sampler.fit("VT")
    assert sampler.seed.totals(fit, "sex")["female"] == pytest.approx(100) and sampler.seed.totals(fit, "age_band")[
        "65+"
    ] == pytest.approx(50)
    [p, *_] = [p for batch in sampler.sample(np.random.default_rng(0), 5) for p in batch]
    assert p.provenance[
        "sex"
    ] == "census:T1 file controls.csv (raked GSS 2018-2024 seed)" and p.weight == pytest.approx(40)


@pytest.mark.parametrize(
    "rows,message",
    [
        (
            GOOD_ROWS[:-1] + ["VT,T2,age_band,65+,-3"],
            r"controls.csv:7: table T2, state VT, age_band=65\+: count '-3' is not a number >= 0",
        ),
        (GOOD_ROWS[:-1] + ["VT,T2,age_band,65+,many"], r"controls.csv:7: .*count 'many' is not a number"),
        (
            GOOD_ROWS + ["VT,T3,shoe_size,42,7"],
            r"controls.csv:8: table T3, state VT, shoe_size=42: unknown dimension 'shoe_size'; "
            r"the census sampler can rake age_band, citizen_education, citizenship_age",
        ),
        (GOOD_ROWS + ["VT,T1,sex,other,7"], r"controls.csv:8: .*sex=other: unknown category; sex has female, male"),
        (
            GOOD_ROWS[:-1] + ["VT,T2,age_band,65+,90"],
            r"totals for state VT disagree by more than 0.5%: T2 age_band 240, T1 sex 200",
        ),
        (GOOD_ROWS + ["WY,T1,sex,female,1", "WY,T1,sex,male,1"], r"state WY lacks control table\(s\) for age_band"),
    ],
)
def test_bad_control_tables_are_named_by_file_line_table_state_and_cell(tmp_path, rows, message):
    with pytest.raises(ValueError, match=message):
        _ = CensusSampler(
            CensusSampler.Config(states=["VT"], per_state=1, controls=write_controls(tmp_path, rows))
        ).controls


def test_a_missing_state_and_an_empty_cell_are_named(tmp_path, monkeypatch):
    path = write_controls(tmp_path, GOOD_ROWS)
    with pytest.raises(ValueError, match=r"has no rows for state\(s\) WY"):
        CensusSampler(CensusSampler.Config(states=["VT", "WY"], per_state=1, controls=path)).total()
    path = write_controls(
        tmp_path,
        [
            "VT,T1,race_ethnicity,white,10",
            "VT,T1,race_ethnicity,black,0",
            "VT,T1,race_ethnicity,hispanic,0",
            "VT,T1,race_ethnicity,asian,0",
            "VT,T1,race_ethnicity,other,0",
        ],
    )
    sampler = CensusSampler(CensusSampler.Config(states=["VT"], per_state=1, controls=path))
    seed = sampler.seed
    with monkeypatch.context() as patch:  # a seed with no white respondent
        race = seed.coded["race_ethnicity"].categories[seed.coded["race_ethnicity"].codes]
        patch.setitem(seed.coded, "race_ethnicity", encode(np.where(race == "white", "other", race)))
        with pytest.raises(
            RuntimeError, match=r"state VT: no seed respondent falls in table T1, race_ethnicity=white \(10 people\)"
        ):
            sampler.fit("VT")


def test_marital_status_is_imputed_by_age_and_raked_to_each_states_b12001():
    sampler = CensusSampler(CensusSampler.Config(states=["UT", "NY"], per_state=4000))
    personas = [p for batch in sampler.sample(np.random.default_rng(5), 1000) for p in batch]
    for state in ("UT", "NY"):
        controls = sampler.controls[state]["sex_marital"]
        target = sum(v for k, v in controls.items() if k.endswith("|married")) / sum(controls.values())
        group = [p for p in personas if p.stratum == state]
        assert np.mean([p.attributes["marital_status"] == "married" for p in group]) == pytest.approx(target, abs=0.025)
    young = [p for p in personas if p.attributes["age"] < 22]
    old = [p for p in personas if 70 <= p.attributes["age"] < 80]
    assert np.mean([p.attributes["marital_status"] == "never married" for p in young]) > 0.85
    assert (
        np.mean([p.attributes["marital_status"] == "widowed" for p in old])
        > np.mean([p.attributes["marital_status"] == "widowed" for p in young]) + 0.1
    )
    assert (
        personas[0].provenance["marital_status"].startswith("census:B12001")
        and "PUMS" in personas[0].provenance["marital_status"]
    )
    married = lambda s: (  # noqa: E731
        sum(v for k, v in sampler.controls[s]["sex_marital"].items() if k.endswith("|married"))
        / sum(sampler.controls[s]["sex_marital"].values())
    )  # noqa: E731
    assert married("UT") > married("NY") + 0.05  # the controls differ by state, and so do the personas


def share(personas, attribute, value):
    return float(np.mean([p.attributes[attribute] == value for p in personas]))


def test_employment_follows_each_states_b23001_and_education():
    sampler = CensusSampler(CensusSampler.Config(states=["ND", "WV"], per_state=6000))
    personas = [p for batch in sampler.sample(np.random.default_rng(6), 1000) for p in batch]
    employed = {}
    for state in ("ND", "WV"):
        controls = sampler.controls[state]["sex_age_employment"]
        employed[state] = sum(v for k, v in controls.items() if k.endswith("|employed")) / sum(controls.values())
        assert share([p for p in personas if p.stratum == state], "employment_status", "employed") == pytest.approx(
            employed[state], abs=0.02
        )
    assert employed["ND"] > employed["WV"] + 0.1  # North Dakota works, West Virginia much less: the personas follow
    prime = [p for p in personas if 25 <= p.attributes["age"] <= 64]
    graduates = [p for p in prime if p.attributes["education"] in ("bachelor's degree", "graduate degree")]
    dropouts = [p for p in prime if p.attributes["education"] == "less than high school"]
    assert (
        share(graduates, "employment_status", "employed") > share(dropouts, "employment_status", "employed") + 0.15
    )  # S2301's association
    assert share([p for p in personas if p.attributes["age"] >= 65], "employment_status", "not in labor force") > 0.7
    assert not any(p.attributes["employment_status"] == "armed forces" and p.attributes["age"] >= 65 for p in personas)
    assert (
        personas[0].provenance["employment_status"].startswith("census:B23001")
        and "S2301" in personas[0].provenance["employment_status"]
    )


def test_citizenship_follows_b05003_and_b29001_with_race_and_age():
    sampler = CensusSampler(CensusSampler.Config(states=["CA"], per_state=20000))
    personas = [p for batch in sampler.sample(np.random.default_rng(7), 5000) for p in batch]
    controls = sampler.controls["CA"]["sex_citizenship"]
    for status in ("born a citizen", "naturalized citizen", "not a citizen"):
        target = sum(v for k, v in controls.items() if k.endswith(status)) / sum(controls.values())
        assert share(personas, "citizenship", status) == pytest.approx(target, abs=0.01)
    by_age = sampler.controls["CA"]["citizenship_age"]
    for band, ages in (("18-29", range(18, 30)), ("65+", range(65, 120))):
        target = by_age[f"not a citizen|{band}"] / (by_age[f"not a citizen|{band}"] + by_age[f"citizen|{band}"])
        assert share(
            [p for p in personas if p.attributes["age"] in ages], "citizenship", "not a citizen"
        ) == pytest.approx(target, abs=0.015)
    foreign_born = {
        race: 1
        - share([p for p in personas if p.attributes["race_ethnicity"] == race], "citizenship", "born a citizen")
        for race in ("white", "hispanic", "asian")
    }
    assert (
        foreign_born["asian"] > foreign_born["hispanic"] > 3 * foreign_born["white"]
    )  # DP02's association, kept by the raking
    voters = CensusSampler(CensusSampler.Config(states=["CA"], per_state=2000, population="citizen_voting_age"))
    citizens = [p for batch in voters.sample(np.random.default_rng(8), 500) for p in batch]
    assert {p.attributes["citizenship"] for p in citizens} == {"born a citizen", "naturalized citizen"}
    assert citizens[0].provenance["employment_status"].startswith("census:B23001") and citizens[0].provenance[
        "employment_status"
    ].endswith("citizens kept")


def test_household_income_follows_b19001_by_state_and_the_seeds_education_and_age():
    sampler = CensusSampler(CensusSampler.Config(states=["MD", "MS"], per_state=6000))
    personas = [p for batch in sampler.sample(np.random.default_rng(9), 1000) for p in batch]
    rich = ("$100,000 to $124,999", "$125,000 to $149,999", "$150,000 to $199,999", "$200,000 or more")
    shares = {}
    for state in ("MD", "MS"):
        controls = sampler.controls[state]["household_income"]
        shares[state] = sum(controls[band] for band in rich) / sum(controls.values())
        group = [p for p in personas if p.stratum == state]
        assert np.mean([p.attributes["household_income"] in rich for p in group]) == pytest.approx(
            shares[state], abs=0.02
        )
    assert shares["MD"] > shares["MS"] + 0.15  # Maryland's households are richer than Mississippi's: B19001 says so
    graduates = [p for p in personas if p.attributes["education"] == "graduate degree"]
    dropouts = [p for p in personas if p.attributes["education"] == "less than high school"]
    assert np.mean([p.attributes["household_income"] in rich for p in graduates]) > 2 * np.mean(
        [p.attributes["household_income"] in rich for p in dropouts]
    )
    provenance = personas[0].provenance["household_income"]
    assert provenance.startswith("census:B19001") and "CPI-U" in provenance


def test_gss_incomes_are_restated_in_2018_dollars():
    split = {}
    for r in data.rows("gss_household_income.csv"):
        split.setdefault((r["gss_year"], r["family_income"]), {})[r["household_income"]] = float(r["share"])
    assert all(sum(bands.values()) == pytest.approx(1, abs=1e-5) for bands in split.values())
    assert (
        split[("2018", "$60,000 to $74,999")]["$60,000 to $74,999"] > 0.85
    )  # 2017 dollars are nearly 2018's (2.4% apart)
    # 2023's dollars bought a fifth less: a 2024 respondent's $60,000-74,999 was $49,400-61,700 in 2018 dollars
    assert set(split[("2024", "$60,000 to $74,999")]) == {
        "$45,000 to $49,999",
        "$50,000 to $59,999",
        "$60,000 to $74,999",
    }
    assert (
        "$125,000 to $149,999" not in split[("2018", "$170,000 or over")]
        and "$125,000 to $149,999" in split[("2024", "$170,000 or over")]
    )


def test_race_and_hispanic_origin_are_attributes_that_agree_with_the_raked_race_ethnicity():
    sampler = CensusSampler(CensusSampler.Config(states=["TX"], per_state=5000))
    personas = [p for batch in sampler.sample(np.random.default_rng(10), 1000) for p in batch]
    for p in personas:
        a = p.attributes
        assert (a["hispanic_origin"] == "hispanic or latino") == (a["race_ethnicity"] == "hispanic")
        if a["race_ethnicity"] in ("white", "black", "asian"):
            assert a["race"] == a["race_ethnicity"]
    hispanic = [p for p in personas if p.attributes["race_ethnicity"] == "hispanic"]
    assert (
        share(hispanic, "race", "white") + share(hispanic, "race", "some other race") > 0.8
    )  # as B03002 finds for Hispanics
    others = {p.attributes["race"] for p in personas if p.attributes["race_ethnicity"] == "other"}
    assert (
        others <= {"american indian or alaska native", "native hawaiian or other pacific islander", "some other race"}
        and others
    )
    assert (
        personas[0].provenance["race"].startswith("census:B01001B/D/H/I")
        and "racecen1" in personas[0].provenance["race"]
    )


def test_nobody_who_lives_alone_is_imputed_married():
    seed = CensusSampler(CensusSampler.Config(states=["VT"], per_state=1)).seed
    marital = seed.imputed["marital_status"]
    married = marital.categories.index("married")
    alone = np.array([r["lives_alone"] == "yes" for r in data.rows("gss_seed.csv")])
    groups_with_married = set(marital.pair_group[marital.category == married].tolist())
    assert alone.sum() > 1000
    assert not any(g in groups_with_married for g in marital.group[alone].tolist())
    assert all(
        g in groups_with_married
        for g in marital.group[~alone & np.array([r["age"] >= 30 for r in seed.records])].tolist()
    )
