from simrun.components import EnrichContext
from simrun.models import Persona
from simrun.plugins.ablations.attributes import AttributeAblation
from simrun.plugins.enrichers.region import RegionEnricher


def test_leave_one_out_variants_exclude_one_attribute_each():
    scenario = {"name": "s", "prompt": {"exclude": ["household_income"]}}
    ablation = AttributeAblation(AttributeAblation.Config(attributes=["age", "sex"]))
    variants = dict(ablation.variants(scenario))
    assert list(variants) == ["baseline", "without age", "without sex"]
    assert variants["baseline"] == scenario
    assert variants["without age"]["prompt"]["exclude"] == ["age", "household_income"]
    assert scenario["prompt"]["exclude"] == ["household_income"], "the input is not changed"


def test_keep_only_one():
    ablation = AttributeAblation(AttributeAblation.Config(attributes=["age"], mode="keep_only_one"))
    label, variant = list(ablation.variants({"name": "s"}))[1]
    assert label == "only age" and variant["prompt"]["include"] == ["age"]


def test_region_from_state_with_provenance():
    persona = Persona(id=0, stratum="DC", weight=1.0, attributes={"state": "District of Columbia"})
    [out] = RegionEnricher().enrich([persona], EnrichContext(seed=0))
    assert out.attributes["census_region"] == "South" and out.attributes["census_division"] == "South Atlantic"
    assert out.provenance["census_region"].startswith("census:")
