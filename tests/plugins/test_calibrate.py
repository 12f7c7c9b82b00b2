import numpy as np
import pytest
from conftest import PersonasView

from simrun import data
from simrun.components import EnrichContext
from simrun.distributions import tvd
from simrun.engine import PlanError, order_enrichers
from simrun.models import Persona
from simrun.plugins.enrichers.calibrate import Calibrate, reassign
from simrun.plugins.enrichers.llm_tiers import ObjectiveTabular, SubjectiveTabular
from simrun.plugins.metrics.calibration import CalibrationMetric


def test_reassign_reaches_the_target_moving_only_the_excess():
    rng = np.random.default_rng(0)
    values = ["teacher"] * 8000 + ["farmer"] * 2000
    target = {"teacher": 0.5, "farmer": 0.3, "miner": 0.2}
    out = reassign(values, np.ones(len(values)), target, rng)
    shares = {c: out.count(c) / len(out) for c in target}
    assert shares == pytest.approx(target, abs=0.015)
    moved = sum(a != b for a, b in zip(values, out)) / len(values)
    assert moved == pytest.approx(tvd({"teacher": 0.8, "farmer": 0.2}, target), abs=0.015)  # 0.3: only the excess moves
    assert all(b == "farmer" for a, b in zip(values, out) if a == "farmer")  # under-represented values are never moved


def test_reassign_leaves_a_population_already_on_target_alone():
    values = ["a", "b", "b", "a"]
    assert (
        reassign(values, np.array([1.0, 2.0, 2.0, 1.0]), {"a": 1 / 3, "b": 2 / 3}, np.random.default_rng(1)) == values
    )


def personas(states):
    names = {
        "CA": "California",
        "DC": "District of Columbia",
    }  # as the census sampler writes them: the stratum is the code
    return [
        Persona(
            id=i,
            stratum=s,
            weight=1.0,
            attributes={"state": names[s], "industry": "education and health care"},
            provenance={"state": "census:x", "industry": "llm:m"},
        )
        for i, s in enumerate(states)
    ]


def test_calibrate_moves_industries_toward_acs_and_keeps_the_model_value():
    batch = Calibrate().enrich(personas(["CA"] * 400 + ["DC"] * 3), EnrichContext(seed=7))
    ca = [p for p in batch if p.stratum == "CA"]
    assert all(p.attributes["_industry_llm"] == "education and health care" for p in ca)
    not_working = sum(p.attributes["industry"] == "not working" for p in ca) / len(ca)
    assert not_working == pytest.approx(
        data.targets(None, ["industry"]).shares["industry"]["CA"]["not working"], abs=0.07
    )
    changed = next(p for p in ca if p.attributes["industry"] != "education and health care")
    assert changed.provenance["industry"] == "calibrate:census:DP03 ACS 2023 1-year"
    dc = [p for p in batch if p.stratum == "DC"]  # the 2023 profiles have no DC: left as written
    assert all(
        p.attributes["industry"] == "education and health care" and "_industry_llm" not in p.attributes for p in dc
    )


def test_calibrate_runs_between_the_tier_that_writes_and_the_tiers_that_read():
    objective, subjective, calibrate = ObjectiveTabular(), SubjectiveTabular(), Calibrate()
    ordered = order_enrichers({"state", "age"}, [subjective, calibrate, objective], "s.yaml")
    assert ordered == [objective, calibrate, subjective]
    with pytest.raises(PlanError, match="'calibrate' needs attribute 'industry'"):
        order_enrichers({"state"}, [calibrate], "s.yaml")


def test_calibration_metric_by_hand(tmp_path):
    targets = tmp_path / "t.csv"
    targets.write_text("group,attribute,category,share\nN,job,a,1\nN,job,b,3\nS,job,a,1\n")
    rows = [("N", "a", "a", 1.0), ("N", "a", "b", 1.0), ("S", "b", "a", 2.0), ("W", "a", None, 1.0)]
    people = []
    for i, (region, llm, now, w) in enumerate(rows):
        attributes = {"region": region, "job": now or llm}
        if now is not None:
            attributes["_job_llm"] = llm
        people.append(Persona(id=i, stratum=region, weight=w, attributes=attributes, provenance={}))
    config = CalibrationMetric.Config(attributes=["job"], targets=str(targets), by="region")
    values = {(v.name, v.stratum): v.value for v in CalibrationMetric(config).compute(PersonasView(people))}
    assert values[("tvd_llm[job]", "N")] == pytest.approx(0.75)  # model: all a; target a 1/4
    assert values[("tvd_calibrated[job]", "N")] == pytest.approx(0.25)  # half a, half b vs 1/4, 3/4
    assert values[("tvd_llm[job]", "S")] == pytest.approx(1.0) and values[("tvd_calibrated[job]", "S")] == 0
    # over all (weights 1, 1, 2): model a 2/4, b 2/4; target a (0.25+0.25+2)/4 = 0.625
    assert values[("tvd_llm[job]", "")] == pytest.approx(0.125)
    assert values[("gap[job=a]", "")] == pytest.approx(0.5 - 0.625)
    assert values[("moved_share[job]", "")] == pytest.approx(3 / 4) and values[("uncalibrated[job]", "")] == 1
    assert values[("personas_with[job]", "")] == 3


@pytest.mark.parametrize(
    "text,message",
    [
        ("group,attribute,category\nCA,industry,x\n", "missing column\\(s\\) share"),
        (
            "group,attribute,category,share\nCA,industry,x,0.5\nCA,industry,y,-1\n",
            r"t.csv:3: share for CA industry=y, .-1. is not a number >= 0",
        ),
        (
            "group,attribute,category,share\nCA,industry,x,lots\n",
            r"t.csv:2: share for CA industry=x, 'lots' is not a number",
        ),
        ("group,attribute,category,share\nCA,industry,x,0\n", "sum to 0"),
    ],
)
def test_bad_targets_are_named_by_line_and_cell(tmp_path, text, message):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        data.targets(path, ["industry"])


def test_calibration_metric_on_a_run_without_the_attribute_says_so():
    bare = Persona(id=0, stratum="CA", weight=1.0, attributes={"state": "CA"}, provenance={})
    values = {v.name: v.value for v in CalibrationMetric().compute(PersonasView([bare]))}
    assert values == {"personas_with[industry]": 0.0, "uncalibrated[industry]": 0.0}


def test_targets_without_a_calibrated_attribute_say_what_they_have():
    with pytest.raises(ValueError, match=r"acs2023_industry_targets.csv: no targets for housing \(it has industry\)"):
        _ = Calibrate(Calibrate.Config(attributes=["housing"])).targets
