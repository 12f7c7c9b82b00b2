"""Scenario errors: one clear message with file:line and the field, exit code 2, no traceback."""

import json

import pytest
from conftest import EXAMPLE

from simrun.scenario import ScenarioError, load_scenario

BASE = (EXAMPLE / "towns.yaml").read_text()


def write(tmp_path, text):
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def check_error(invoke, path, *expected):
    result = invoke("validate", str(path))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in expected:
        assert fragment in result.output, result.output
    return result.output


def test_valid_scenario_passes(invoke):
    result = invoke("validate", str(EXAMPLE / "towns.yaml"))
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


def test_misspelled_plugin_names_line_and_suggests(tmp_path, invoke):
    path = write(tmp_path, BASE.replace("use: instant", "use: instnat"))
    line = BASE.splitlines().index("  use: instant") + 1
    check_error(
        invoke, path, f"scenario.yaml:{line}", "simulator.use", "no simulator named 'instnat'", "did you mean 'instant'"
    )


def test_wrong_type_names_field_and_given_value(tmp_path, invoke):
    path = write(tmp_path, BASE.replace("per_town: 12", "per_town: twelve"))
    line = BASE.splitlines().index("    per_town: 12") + 1
    check_error(invoke, path, f"scenario.yaml:{line}", "sampler.with.per_town", "valid integer", "'twelve'")


def test_missing_required_field(tmp_path, invoke):
    path = write(tmp_path, BASE.replace("    question: q1\n", ""))
    check_error(invoke, path, "scenario.yaml:", "metrics.mean_share.question", "required field is missing")


def test_missing_top_level_field(tmp_path, invoke):
    text = "\n".join(line for line in BASE.splitlines() if not line.startswith("name:"))
    check_error(invoke, write(tmp_path, text), "scenario.yaml", "name: required field is missing")


def test_yaml_syntax_error_has_line(tmp_path, invoke):
    path = write(tmp_path, BASE.replace("batch_size: 8", "batch_size: [8"))
    check_error(invoke, path, "scenario.yaml:", "YAML syntax error")


def test_unknown_field_suggests_nearest(tmp_path, invoke):
    path = write(tmp_path, BASE.replace("batch_size: 8", "batch_sise: 8"))
    check_error(invoke, path, "scenario.yaml:3", "batch_sise", "unknown field", "did you mean 'batch_size'")


def test_missing_file(tmp_path, invoke):
    check_error(invoke, tmp_path / "nope.yaml", "nope.yaml", "cannot read scenario: no such file")


def test_set_override_changes_value(registry):
    loaded = load_scenario(EXAMPLE / "towns.yaml", registry, ["sampler.with.per_town=3", "seed=11"])
    assert loaded.scenario.sampler.with_["per_town"] == 3
    assert loaded.scenario.seed == 11


def test_set_override_error_says_it_came_from_set(registry):
    with pytest.raises(ScenarioError) as info:
        load_scenario(EXAMPLE / "towns.yaml", registry, ["sampler.with.per_town=lots"])
    assert "set by --set sampler.with.per_town" in info.value.render()


@pytest.mark.parametrize(
    "override,said",
    [
        ("samplr.use=census", "towns.yaml: samplr: unknown field (given {'use': 'census'}); did you mean 'sampler'?"),
        ("samplr.use=census", "(set by --set samplr.use)"),
        ("metrics.mean_shar.question=q1", "metrics.mean_shar: no metric named 'mean_shar'"),
        ("metrics.mean_shar.question=q1", "(set by --set metrics.mean_shar.question)"),
        ("seed.x=1", "towns.yaml:2: seed: Input should be a valid integer (set by --set seed.x)"),
        ("questions.5.text=hi", "'questions.5.text' does not fit the scenario's structure: questions is a list of 2"),
        ("questions.first.text=hi", "questions is a list of 2, indexed 0 to 1"),
    ],
)
def test_a_set_that_makes_or_misses_a_field_says_which_set_and_why(registry, override, said):
    with pytest.raises(ScenarioError) as info:
        load_scenario(EXAMPLE / "towns.yaml", registry, [override])
    assert said in info.value.render()


def test_enricher_needing_unknown_attribute_is_reported_before_work(tmp_path, invoke):
    text = BASE.replace("sampler:\n  use: towns", "sampler:\n  use: towns").replace(
        "  - use: generation", "  - use: generation\n  - use: region"
    )
    # region needs 'state', which the towns sampler does not provide
    out = check_error(invoke, write(tmp_path, text), "enricher 'region' needs attribute 'state'")
    assert "enrichers.1" in out


def test_template_with_unknown_placeholder(tmp_path, invoke):
    path = write(tmp_path, BASE + "prompt:\n  system: 'You are {persna}'\n")
    check_error(invoke, path, "prompt.system", "unknown placeholder", "persna")


def test_schema_includes_component_configs(invoke):
    result = invoke("schema")
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert "per_town" in json.dumps(schema["$defs"]["sampler_towns_config"])
    assert "election" in schema["properties"]["metrics"]["properties"]


def test_set_value_that_is_not_yaml_is_a_clear_error(invoke):
    result = invoke(
        "validate", str(EXAMPLE / "towns.yaml"), "--set", "questions=[{id: q, text: Why?, options: [a, b]}]"
    )
    assert result.exit_code == 2 and "not valid YAML" in result.output and "Traceback" not in result.output


def test_a_value_no_member_of_a_union_takes_is_one_error_on_its_field(registry):
    with pytest.raises(ScenarioError) as info:
        load_scenario(EXAMPLE / "towns.yaml", registry, ["executor={use: ray, with: {replicas: 0}}"])
    message = str(info.value)
    assert "executor.with.replicas: Input should be greater than or equal to 1 or 'auto' (given 0)" in message
    assert "constrained-int" not in message and message.count("replicas") == 2  # the field, and the --set
