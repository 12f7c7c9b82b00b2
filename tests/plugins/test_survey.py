import numpy as np

from simrun import data
from simrun.components import EnrichContext
from simrun.models import Persona
from simrun.plugins.enrichers.survey import IDEOLOGY, PARTY, SurveyEnricher


def personas(n, **attributes):
    base = {"age": 45, "sex": "female", "race_ethnicity": "white", "education": "high school", "census_region": "South"}
    return [Persona(id=i, stratum="X", weight=1.0, attributes={**base, **attributes}) for i in range(n)]


def test_values_are_on_pews_scales_with_provenance_and_repeatable():
    enricher = SurveyEnricher()
    a = enricher.enrich(personas(50), EnrichContext(seed=4))
    b = SurveyEnricher().enrich(personas(50), EnrichContext(seed=4))
    assert [p.attributes for p in a] == [p.attributes for p in b]
    assert {p.attributes["party"] for p in a} <= set(PARTY.values())
    assert {p.attributes["ideology"] for p in a} <= set(IDEOLOGY.values())
    assert a[0].provenance["party"].startswith("survey:GSS")


def test_imputed_party_follows_the_donor_cell():
    """Black respondents are far more often Democrats than white ones in the GSS; imputation keeps that."""

    def share(race):
        rows = [r for r in data.rows("gss_seed.csv") if r["race_ethnicity"] == race]
        weights = np.array([float(r["weight"]) for r in rows])
        return float(weights[[PARTY[r["partyid"]] == "Democrat" for r in rows]].sum() / weights.sum())

    enricher = SurveyEnricher(SurveyEnricher.Config(min_donors=1))
    drawn = {
        race: np.mean(
            [
                p.attributes["party"] == "Democrat"
                for p in enricher.enrich(
                    personas(3000, race_ethnicity=race, education="bachelor's degree"), EnrichContext(seed=1)
                )
            ]
        )
        for race in ("black", "white")
    }
    assert drawn["black"] > drawn["white"] + 0.25
    assert share("black") > share("white") + 0.25


def test_a_cell_with_too_few_donors_falls_back_to_a_coarser_one():
    enricher = SurveyEnricher(SurveyEnricher.Config(min_donors=10_000))  # no cell is that large: everyone is a donor
    assert len(enricher.donor_pool(personas(1)[0].attributes)) == len(data.rows("gss_seed.csv"))
    fine = SurveyEnricher(SurveyEnricher.Config(min_donors=5))
    pool = fine.donor_pool(personas(1, race_ethnicity="other", education="graduate degree", age=19)[0].attributes)
    assert len(pool) >= 5


def test_opinion_groups_by_the_imputed_party():
    from simrun.plugins.metrics.opinion import GROUPS

    key, to_group = GROUPS["POLPARTY"]
    [p] = SurveyEnricher().enrich(personas(1), EnrichContext(seed=0))
    assert to_group(p.attributes[key]) in {"Republican", "Democrat", "Independent", "Other"}
    key, to_group = GROUPS["POLIDEOLOGY"]
    assert to_group(p.attributes[key]) in set(IDEOLOGY.values())


def test_survey_runs_after_the_region_it_uses(registry):
    from conftest import ROOT

    from simrun.engine import build_pipeline
    from simrun.scenario import load_scenario

    loaded = load_scenario(ROOT / "scenarios" / "election.yaml", registry, ["enrichers=[{use: survey}, {use: region}]"])
    assert [e.name for e in build_pipeline(loaded, registry).enrichers] == ["region", "survey"], (
        "survey uses census_region"
    )
