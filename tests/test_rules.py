import pytest
from pydantic import ValidationError

from simrun.rules import Check, Rule, load_rules, violations


@pytest.mark.parametrize(
    "check,value,holds",
    [
        ({"equals": "male"}, "male", True),
        ({"in": ["high school", "less than high school"]}, "high school", True),
        ({"not_in": ["a"]}, "a", False),
        ({"lt": 35}, 34, True),
        ({"lt": 35}, "35", False),
        ({"ge": 65}, 65, True),
        ({"gt": 1}, "not a number", False),
        ({"matches": r"\bretire"}, "Retired teacher", True),
        ({"matches": r"\bretire"}, "tire shop owner", False),
        ({"matches": "chess"}, ["gardening", "Chess"], True),
    ],
)
def test_checks(check, value, holds):
    assert Check.model_validate(check).holds(value) is holds


def test_a_check_needs_exactly_one_operator_and_a_valid_pattern():
    with pytest.raises(ValidationError, match="exactly one"):
        Check.model_validate({"lt": 1, "gt": 0})
    with pytest.raises(ValidationError, match="not a regular expression"):
        Check.model_validate({"matches": "(unclosed"})


def test_a_rule_fires_only_when_it_applies_and_only_on_what_was_written():
    rule = Rule.model_validate(
        {"id": "young_retired", "when": {"age": {"lt": 35}}, "forbid": {"occupation": {"matches": "retire"}}}
    )
    assert violations([rule], {"age": 22}, {"occupation": "retired nurse"}) == [rule]
    assert violations([rule], {"age": 70}, {"occupation": "retired nurse"}) == []
    assert violations([rule], {}, {"occupation": "retired nurse"}) == []  # census age unknown: does not apply
    assert (
        violations([rule], {"age": 22, "occupation": "retired"}, {"hobbies": ["chess"]}) == []
    )  # not this reply's attribute


def test_shipped_rules_catch_the_papers_examples():
    rules = load_rules(__import__("simrun.data", fromlist=["path"]).path("consistency_rules.yaml"))
    young_dropout = {"age": 22, "sex": "male", "education": "less than high school"}
    broken = {
        r.id
        for r in violations(
            rules,
            young_dropout,
            {
                "occupation": "retired professor",
                "description": "I have been retired for 20 years since finishing my PhD.",
            },
        )
    }
    assert {"retired_too_young", "retired_for_decades", "degree_without_education"} <= broken
    fine = violations(
        rules,
        {"age": 70, "sex": "female", "education": "graduate degree"},
        {"occupation": "retired professor", "description": "I am a woman who retired after my PhD."},
    )
    assert fine == []


def test_a_bad_rules_file_names_the_rule_and_field(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(
        "- id: ok\n  forbid: {x: {equals: 1}}\n- id: bad\n  when: {age: {lt: 3, gt: 1}}\n  forbid: {x: {equals: 1}}\n"
    )
    with pytest.raises(ValueError, match=r"rule 2 \(bad\), when\.age: .*exactly one"):
        load_rules(path)


def test_shipped_rules_catch_a_narrative_that_changes_the_persona_s_sex():
    # SmolLM2 wrote both of these in scenarios/tiers.yaml
    rules = load_rules(__import__("simrun.data", fromlist=["path"]).path("consistency_rules.yaml"))
    assert [
        r.id
        for r in violations(
            rules, {"age": 22, "sex": "male"}, {"description": "I'm Sarah Johnson, a 22-year-old woman from Alabama."}
        )
    ] == ["male_writes_as_woman"]
    assert [
        r.id
        for r in violations(
            rules, {"age": 66, "sex": "female"}, {"description": "Liam, a 66-year-old man, stands out."}
        )
    ] == ["female_writes_as_man"]
    assert (
        violations(rules, {"age": 66, "sex": "female"}, {"description": "I am a 66-year-old woman from Alaska."}) == []
    )
