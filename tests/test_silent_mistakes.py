"""Mistakes that used to pass without a word (issue 30): a CSV bank's truth column, options split by commas,
an --estimate that left calls out or gave no reason for a missing price, a run log made by a failed validation."""

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import EXAMPLE

from simrun import InstrumentError, Prompt, read_instrument
from simrun.cli import cli
from simrun.scenario import load_scenario


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def towns(tmp_path: Path, questions: str, metrics: str, extra: str = "") -> Path:
    """The example scenario with these questions and metrics."""
    base = (EXAMPLE / "towns.yaml").read_text()
    head = base.partition("questions:")[0]
    return write(tmp_path / "scenario.yaml", f"{head}{extra}questions:\n{questions}metrics:\n{metrics}")


# ---- a CSV bank's truth column -------------------------------------------------------------------------------


def test_a_bank_reads_truth_as_shares_counts_or_a_json_list(tmp_path):
    bank = write(
        tmp_path / "bank.csv",
        "id,text,options,truth\n"
        "q1,Like it?,Yes | No | Not sure,0.3 | 0.5 | 0.2\n"
        'q2,Build it?,Yes | No,"[120, 80]"\n'
        "q3,Again?,Yes | No,\n",
    )
    truths = [q.truth for q in read_instrument(bank).questions]
    assert truths == [[0.3, 0.5, 0.2], [120.0, 80.0], None]
    listed = json.loads(CliRunner().invoke(cli, ["questions", str(bank), "--json"]).output)
    assert [q.get("truth") for q in listed["questions"]] == truths


def test_a_banks_truth_reaches_the_scenario_and_its_metric(tmp_path, registry):
    bank = write(tmp_path / "bank.csv", "id,text,options,truth\nq1,Like it?,Yes | No | Not sure,30 | 50 | 20\n")
    loaded = load_scenario(towns(tmp_path, f"  - from: {bank}\n", "  wasserstein: {}\n"), registry)
    assert loaded.scenario.questions[0].truth == [30.0, 50.0, 20.0]
    assert loaded.data["questions"][0]["truth"] == [30.0, 50.0, 20.0]  # the run log keeps it


@pytest.mark.parametrize(
    "cell, problem",
    [
        ("0.3 | lots | 0.2", "is not a list of numbers"),
        ("0.5 | 0.5", "has 2 value(s) for 3 options"),
        ("-1 | 1 | 1", "has a negative value"),
        ("0 | 0 | 0", "is all zeros"),
        ('"[0.3, 0.5"', "is not a list of numbers"),
        ("0.3 | nan | 0.2", "is not a list of numbers"),
    ],
)
def test_a_malformed_truth_names_file_line_column_and_what_was_expected(tmp_path, cell, problem):
    bank = write(tmp_path / "bank.csv", f"id,text,options,truth\nq1,Fine?,Yes | No,\nq2,Like it?,A | B | C,{cell}\n")
    with pytest.raises(InstrumentError) as error:
        read_instrument(bank)
    message = str(error.value)
    assert message.startswith(f"{bank}:3: column truth: ") and problem in message
    assert "expected the real answer shares or counts, one per option" in message and '"0.3 | 0.5 | 0.2"' in message


# ---- options separated by commas ----------------------------------------------------------------------------


def test_comma_separated_options_in_a_bank_say_how_to_separate_them(tmp_path):
    bank = write(tmp_path / "bank.csv", 'id,text,options\nq1,Like it?,"Yes, No, Maybe"\n')
    result = CliRunner().invoke(cli, ["questions", str(bank)])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and f"{bank}:2: column options: 'Yes, No, Maybe' is one option" in said
    assert 'separated by "|" (e.g. "Yes | No | Maybe") or given as a JSON list' in said
    # a comma inside one of several options is text, as before
    fine = write(tmp_path / "fine.csv", 'id,text,options\nq1,Like it?,"Yes, a lot | No"\n')
    assert read_instrument(fine).questions[0].options == ["Yes, a lot", "No"]


@pytest.mark.parametrize("options", ['"Yes, No"', '["Yes, No"]'])
def test_a_scenarios_options_given_as_one_text_with_commas_get_the_hint(tmp_path, invoke, options):
    path = towns(
        tmp_path, f"  - id: q1\n    text: Like it?\n    options: {options}\n", "  mean_share: {question: q1}\n"
    )
    result = invoke("validate", str(path))
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and f"{path}:" in said and "questions.0.options" in said
    assert "options are a YAML list, e.g. options: [Yes, No, Maybe]" in said


# ---- --estimate ---------------------------------------------------------------------------------------------


def to_send(output: str) -> int:
    match = re.search(r"to send: ([\d,]+) call\(s\)", output)
    assert match, output
    return int(match.group(1).replace(",", ""))


def test_estimate_counts_every_call_a_run_makes_no_persona_baseline_included(tmp_path, invoke):
    calls = tmp_path / "calls.log"
    questions = (
        "  - {id: q1, text: Like the park, options: [Yes, No, Not sure], truth: [5, 3, 2]}\n"
        "  - {id: q2, text: A new library, options: [Yes, No], truth: [6, 4]}\n"
    )
    # 40 personas per town with ages 18-89 in batches of 8: the same persona (town and age) comes back in a later
    # batch, which a run answers from the cache; option_order both asks every question twice
    extra = "prompt: {option_order: both}\nbaselines: [uniform, no_persona]\n"
    path = towns(tmp_path, questions, "  wasserstein: {}\n", extra)
    text = path.read_text().replace("per_town: 12", "per_town: 40")
    path.write_text(text.replace("use: instant", f"use: instant\n  with: {{call_log: {calls}}}"))
    db = tmp_path / "m.db"
    estimated = invoke("run", str(path), "--estimate", db=db)
    assert estimated.exit_code == 0, estimated.output
    assert not calls.exists() and not db.exists()
    ran = invoke("run", str(path), "--quiet", db=db)
    assert ran.exit_code == 0, ran.output
    sent = calls.read_text().count("\x1e")
    assert to_send(estimated.output) == sent
    assert "(4 of them for the no-persona baseline)" in estimated.output  # 2 questions x 2 orders
    assert "counted per distinct request" in estimated.output  # why the calls are not the answers to get
    again = invoke("run", str(path), "--estimate", db=db)
    assert "nothing to send" in again.output, again.output  # the baseline's answers are in the cache too
    uncached = invoke("run", str(path), "--estimate", "--no-cache", db=db)
    calls.unlink()
    assert invoke("run", str(path), "--quiet", "--no-cache", db=db).exit_code == 0
    resent = calls.read_text().count("\x1e")
    assert to_send(uncached.output) == resent > sent  # without the cache a later batch's repeats are asked again


def test_estimate_counts_no_baseline_the_scenario_does_not_ask_for(invoke):
    result = invoke("run", str(EXAMPLE / "towns.yaml"), "--estimate", "--set", "baselines=[]")
    assert to_send(result.output) == 48 and "baseline" not in result.output


@pytest.mark.parametrize(
    "simulator, said",
    [
        ("{use: instant}", "no price known for this model: the instant simulator reports no price"),
        (
            "{use: litellm, with: {model: hosted_vllm/my-own-model}}",
            "no price known for this model: 'hosted_vllm/my-own-model' is not in litellm's price list, and "
            "simulator.with sets no input_cost_per_token / output_cost_per_token",
        ),
        (
            "{use: litellm, with: {model: hosted_vllm/my-own-model, input_cost_per_token: 0.000001}}",
            "(your prices in simulator.with; output_cost_per_token is not set, counted as 0)",
        ),
        (
            "{use: litellm, with: {model: openai/gpt-4o-mini, input_cost_per_token: 0, output_cost_per_token: 0}}",
            "$0.0000 (your prices in simulator.with)",
        ),
        ("{use: litellm, with: {model: openai/gpt-4o-mini}}", "(litellm's price list)"),
    ],
)
def test_estimate_says_why_a_price_is_or_is_not_known(invoke, simulator, said):
    result = invoke("run", str(EXAMPLE / "towns.yaml"), "--estimate", "--set", f"simulator={simulator}")
    assert result.exit_code == 0 and said in " ".join(result.output.split()), result.output


def test_a_local_model_is_estimated_at_no_api_cost(registry):
    embedded = registry.get("simulator", "embedded").build({})
    prompt = Prompt(persona_id=0, question_id="q1", system="You are 40.", user="Like it?", labels=["A", "B"])
    estimate = embedded.estimate([prompt, prompt])
    assert estimate.calls == 2 and estimate.cost_usd == 0.0 and "no API money" in estimate.price_note


# ---- a failed validation creates no run log -----------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_an_invalid_scenario_creates_no_run_log(tmp_path, invoke, command):
    path = write(tmp_path / "bad.yaml", (EXAMPLE / "towns_sweep.yaml").read_text().replace("use: towns", "use: twons"))
    db = tmp_path / "m.db"
    result = invoke(command, str(path), db=db)
    assert result.exit_code == 2 and "invalid scenario" in result.output and "twons" in result.output
    assert not db.exists()


def test_a_sweep_whose_variants_fail_validation_creates_no_run_log(tmp_path, invoke):
    text = (EXAMPLE / "towns_sweep.yaml").read_text().partition("ablation:")[0]
    path = write(tmp_path / "grid.yaml", text + "ablation:\n  use: grid\n  with: {fields: {seed: [1, -1]}}\n")
    db = tmp_path / "m.db"
    result = invoke("sweep", str(path), db=db)
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "invalid sweep" in said and "[variant 'seed=-1']" in said
    assert not db.exists()


@pytest.mark.parametrize(
    "per_town, said", [(0, "plans 0 personas: a run needs at least one"), (-3, "plans -6 personas")]
)
def test_a_sampler_that_plans_no_personas_is_an_error_before_any_run(tmp_path, invoke, per_town, said):
    db = tmp_path / "none.db"
    result = invoke("run", str(EXAMPLE / "towns.yaml"), "--quiet", "--set", f"sampler.with.per_town={per_town}", db=db)
    assert result.exit_code != 0 and said in result.output and "sampler.with" in result.output
    assert "KeyError" not in result.output and not db.exists()


PLANS_FROM_A_FILE = """
from pathlib import Path
from simrun import Persona, Sampler, StrictConfig, hookimpl


class FilePeople(Sampler):
    name = "file_people"

    class Config(StrictConfig):
        path: str

    @classmethod
    def planned_strata(cls, config):
        return frozenset(Path(config.path).read_text().split())

    def total(self):
        return 1

    def sample(self, rng, batch_size):
        yield [Persona(id=0, stratum="x", weight=1.0)]


@hookimpl
def register_samplers(register):
    register(FilePeople)
"""


def test_a_plugin_that_fails_on_its_config_is_named_with_the_field_and_line(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "file_people.py").write_text(PLANS_FROM_A_FILE)
    (plugins / "simrun_example.py").write_text((EXAMPLE / "simrun_example.py").read_text())  # instant, generation
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        (EXAMPLE / "towns.yaml")
        .read_text()
        .replace("  use: towns\n  with:\n    per_town: 12\n", "  use: file_people\n  with:\n    path: nope.csv\n")
    )
    result = CliRunner().invoke(cli, ["validate", str(scenario), "--plugins-dir", str(plugins)])
    assert result.exit_code != 0
    assert (
        f"{scenario}:6: sampler.with: sampler 'file_people' failed in planned_strata(): FileNotFoundError"
        in result.output
    )


def test_a_component_nobody_registered_says_how_plugins_are_found(invoke, tmp_path):
    result = CliRunner().invoke(cli, ["validate", str(EXAMPLE / "towns.yaml")])  # no --plugins-dir
    assert result.exit_code != 0
    assert "no sampler named 'towns'; installed:" in result.output
    assert "--plugins-dir FOLDER" in " ".join(result.output.split())


CARRIED_FORWARD = {
    "SurveyEntry": {"SurveyID": "SV_1", "SurveyName": "carried"},
    "SurveyElements": [
        {
            "Element": "BL",
            "Payload": [
                {
                    "Type": "Default",
                    "BlockElements": [{"Type": "Question", "QuestionID": q} for q in ("QID1", "QID21", "QID22")],
                }
            ],
        },
        {
            "Element": "SQ",
            "Payload": {
                "QuestionID": "QID1",
                "DataExportTag": "Q1",
                "QuestionType": "MC",
                "Selector": "SAVR",
                "QuestionText": "Which of these do you use?",
                "Choices": {"1": {"Display": "Radio"}, "2": {"Display": "Television"}},
            },
        },
        {
            "Element": "SQ",
            "Payload": {
                "QuestionID": "QID21",
                "DataExportTag": "Q21",
                "QuestionType": "MC",
                "Selector": "SAVR",
                "QuestionText": "Which of those do you trust most?",
                "Choices": [],
                "DynamicChoices": {"DynamicType": "ChoiceGroup", "Locator": "q://QID1/ChoiceGroup/SelectedChoices"},
            },
        },
        {
            "Element": "SQ",
            "Payload": {
                "QuestionID": "QID22",
                "DataExportTag": "Q22",
                "QuestionType": "Matrix",
                "Selector": "Likert",
                "SubSelector": "SingleAnswer",
                "QuestionText": "How much do you trust each?",
                "Choices": [],
                "Answers": {"1": {"Display": "A lot"}, "2": {"Display": "Not at all"}},
            },
        },
    ],
}


def test_a_qualtrics_question_with_carried_forward_choices_is_skipped_and_named(tmp_path):
    path = tmp_path / "carried.qsf"
    path.write_text(json.dumps(CARRIED_FORWARD))
    instrument = read_instrument(path)
    assert [q.id for q in instrument.questions] == ["Q1"]
    skipped = {s.id: s.reason for s in instrument.skipped}
    assert (
        set(skipped) == {"Q21", "Q22"} and "carried forward" in skipped["Q21"] and "carried forward" in skipped["Q22"]
    )
