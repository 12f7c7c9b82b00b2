"""Survey instruments in: a .qsf with mixed question types, Pew/OpinionQA files, CSV banks, and broken files."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import EXAMPLE, ROOT

from simrun import InstrumentError, read_instrument
from simrun.cli import cli
from simrun.scenario import ScenarioError, load_scenario

DATA = Path(__file__).parent / "data"
QSF = DATA / "politics-media.qsf"
OPINIONQA = ROOT.parent / "shared" / "data" / "opinionqa"  # CI has ../shared beside the clone


def test_a_qsf_with_mixed_types_brings_the_single_answer_questions_in_survey_order():
    instrument = read_instrument(QSF)
    assert instrument.format == "qualtrics"
    assert [q.id for q in instrument.questions] == [
        "interest",
        "pid3",
        "trust_inst_1",
        "trust_inst_2",
        "trust_inst_3",
        "news_trust",
        "news_source",
        "fact_checks",
    ]
    by_id = {q.id: q for q in instrument.questions}
    # HTML gone, entities decoded; a matrix row is the stem then the statement, every row on the shared scale
    assert by_id["interest"].text == "Generally, how interested are you in politics?"
    assert by_id["fact_checks"].text == 'About how often would you say you encounter "fact checks"?'
    assert by_id["trust_inst_3"].text == (
        "How much do you agree with the following statements? The courts treat everyone equally."
    )
    assert by_id["trust_inst_1"].options == by_id["trust_inst_2"].options
    assert by_id["trust_inst_1"].options[-1] == "Don't know"
    # ordinals from the choice order; a trailing don't-know has no place on the scale
    assert by_id["trust_inst_1"].ordinal == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert by_id["news_trust"].ordinal == [1.0, 2.0, 3.0, 4.0]
    assert by_id["interest"].options[0] == "Extremely interested"  # choice order, not the recode values
    assert by_id["pid3"].options == ["Republican", "Democrat", "Independent", "Something else"]


def test_every_question_left_out_is_listed_with_its_type_and_why():
    skipped = {s.id: s for s in read_instrument(QSF).skipped}
    assert set(skipped) == {
        "old_q",
        "consent_intro",
        "age_text",
        "issues_mat",
        "topics",
        "thermo",
        "outparty_q",
        "Q12",
        "rank_media",
    }
    assert (skipped["old_q"].type, skipped["old_q"].reason) == ("in trash", "deleted")
    assert skipped["age_text"].type == "TE" and "text entry" in skipped["age_text"].reason
    assert skipped["topics"].type == "MC/MAVR" and "more than one answer" in skipped["topics"].reason
    assert skipped["issues_mat"].type == "Matrix/Likert/MultipleAnswer"
    assert "piped text" in skipped["outparty_q"].reason
    assert skipped["rank_media"].type == "RO" and skipped["thermo"].type == "Slider"


def test_simrun_questions_prints_the_questions_and_the_skipped():
    result = CliRunner().invoke(cli, ["questions", str(QSF)])
    assert result.exit_code == 0, result.output
    assert "8 question(s)" in result.output and "9 skipped" in result.output
    assert "A. Extremely interested [1]" in result.output
    assert "more than one answer allowed" in result.output
    listed = json.loads(CliRunner().invoke(cli, ["questions", str(QSF), "--json"]).output)
    assert len(listed["questions"]) == 8 and len(listed["skipped"]) == 9


def broken(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("s.qsf", '{"SurveyEntry": {},\n "SurveyElements": [\n  {"Element": "SQ",}]}', "s.qsf:3: not valid JSON"),
        ("s.qsf", '{"SurveyEntry": {}}', "no SurveyElements list: not a Qualtrics survey export"),
        ("s.qsf", '{"SurveyElements": [{"Element": "SQ", "Payload": {}}]}', "SurveyElements[0]"),
        ("s.qsf", '{"SurveyElements": [3]}', "SurveyElements[0]: expected an object with an Element field"),
        (
            "s.qsf",
            '{"SurveyElements": [{"Element": "BL", "Payload": [{"Type": "Default", "BlockElements": '
            '[{"Type": "Question", "QuestionID": "QID9"}]}]}]}',
            "a block lists QID9, which no SurveyElements question defines",
        ),
        (
            "s.qsf",
            '{"SurveyElements": [{"Element": "SQ", "Payload": {"QuestionID": "QID1", "DataExportTag": "q1", '
            '"QuestionType": "MC", "Selector": "SAVR", "QuestionText": "Q?", "Choices": {"1": {"Display": "a"}}, '
            '"ChoiceOrder": [1, 2]}}]}',
            "question QID1 (q1): Choices order names ['2'], which Choices lacks",
        ),
        ("bank.csv", "id,text,options\nq1,Like it?,Yes | No\nq1,Again?,Yes | No\n", "bank.csv:3: id 'q1' was already"),
        ("bank.csv", "id,text,options\nq1,Like it?,Yes\n", "bank.csv:2: options: List should have at least 2"),
        ("bank.csv", "id,text,options,ordinal\nq1,Like it?,Yes | No,1 | x\n", "bank.csv:2: could not convert"),
        ("bank.csv", "id,text,options\nbad id!,Like it?,Yes | No\n", "bank.csv:2: id: String should match pattern"),
        ("bank.csv", "name,prompt\nq1,Like it?\n", "bank.csv:1: cannot tell the format"),
        ("bank.csv", "id,text,options\n", "no question simrun can ask"),
        ("bank.csv", b"id,text,options\n\xff\xfe,x,y\n", "not UTF-8 text"),
    ],
)
def test_a_broken_file_is_named_with_its_element_or_line(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(InstrumentError) as error:
        read_instrument(path)
    assert expected in str(error.value)
    result = CliRunner().invoke(cli, ["questions", str(path)])
    assert result.exit_code != 0 and expected in result.output and "Traceback" not in result.output


def test_a_question_bank_takes_bars_json_lists_and_auto_ordinals(tmp_path):
    path = broken(
        tmp_path,
        "bank [v2].csv",
        'id,text,options,ordinal\nq1,"Like it, really?",Yes | No | Not sure,auto\n'
        'q2,Which?,"[""A, or a"", ""B""]",\nq3,Rate it,Low | Mid | High,1 | 2 | 3\n',
    )
    questions = read_instrument(path).questions
    assert [q.options for q in questions] == [["Yes", "No", "Not sure"], ["A, or a", "B"], ["Low", "Mid", "High"]]
    assert [q.ordinal for q in questions] == [[1.0, 2.0], None, [1.0, 2.0, 3.0]]
    assert questions[0].text == "Like it, really?"


def test_pew_files_raw_and_derived_agree_and_never_offer_refused():
    raw = {q.id: q for q in read_instrument(OPINIONQA / "raw" / "American_Trends_Panel_W26" / "info.csv").questions}
    derived = {q.id: q for q in read_instrument(OPINIONQA / "opinionqa_questions.csv").questions}
    assert raw and set(raw) <= set(derived)
    assert all(raw[k] == derived[k] for k in raw)
    assert raw["WORLDDANGER_W26"].ordinal == [1.0, 2.0, 1.5]
    assert not any("Refused" in q.options for q in derived.values())
    skipped = {s.id for s in read_instrument(OPINIONQA / "opinionqa_questions.csv").skipped}
    assert "IDIMPORT_W43" in skipped and "IDIMPORT_W43" not in derived  # one key, five questions


def scenario_with(tmp_path, questions_yaml: str) -> Path:
    base = (EXAMPLE / "towns.yaml").read_text()
    head, _, tail = base.partition("questions:")
    tail = tail[tail.index("metrics:") :].replace("question: q1", "question: interest")
    path = tmp_path / "scenario.yaml"
    path.write_text(head + questions_yaml + tail)
    return path


def test_a_scenario_takes_questions_from_a_file_and_logs_them_themselves(tmp_path, registry, invoke):
    path = scenario_with(tmp_path, f"questions:\n  - from: {QSF}\n    only: [interest, trust_inst_2]\n")
    loaded = load_scenario(path, registry)
    assert [q.id for q in loaded.scenario.questions] == ["interest", "trust_inst_2"]
    # the run log keeps the questions, not the file name: a resumed run never reads the file again
    assert [q["id"] for q in loaded.data["questions"]] == ["interest", "trust_inst_2"]
    assert "from" not in json.dumps(loaded.data["questions"])
    assert loaded.notices and "9 skipped" in loaded.notices[0] and "simrun questions" in loaded.notices[0]
    result = invoke("validate", str(path))
    said = " ".join(result.output.split())
    assert result.exit_code == 0 and "2 question(s) taken, 9 skipped" in said and ", 2 question(s), metrics" in said


def test_a_scenario_mixes_its_own_questions_with_a_file(tmp_path, registry):
    bank = broken(tmp_path, "bank.csv", "id,text,options\nq9,Like it?,Yes | No\n")
    own = "  - id: interest\n    text: Interested?\n    options: [Yes, No]\n"
    loaded = load_scenario(scenario_with(tmp_path, f"questions:\n{own}  - from: {bank}\n"), registry)
    assert [q.id for q in loaded.scenario.questions] == ["interest", "q9"]
    alone = broken(tmp_path, "alone.csv", "id,text,options\ninterest,Interested?,Yes | No\n")
    loaded = load_scenario(scenario_with(tmp_path, f"questions: {{from: {alone}}}\n"), registry)
    assert [q.id for q in loaded.scenario.questions] == ["interest"]


@pytest.mark.parametrize(
    "questions_yaml, field, expected",
    [
        ("questions:\n  - from: {qsf}\n    only: [intrest]\n", "only", "did you mean 'interest'"),
        ("questions:\n  - from: nowhere.qsf\n", "from", "nowhere.qsf: no such file"),
        ("questions:\n  - from: {qsf}\n    format: spss\n", "format", "questions.0.format"),
        ("questions:\n  - from: {qsf}\n    ask: all\n", "ask", "questions.0.ask"),
    ],
)
def test_a_bad_question_file_entry_names_its_line_and_field(tmp_path, registry, questions_yaml, field, expected):
    path = scenario_with(tmp_path, questions_yaml.format(qsf=QSF))
    with pytest.raises(ScenarioError) as error:
        load_scenario(path, registry)
    rendered = error.value.render()
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if text.strip(" -").startswith(field))
    assert expected in rendered and f"scenario.yaml:{line}" in rendered, rendered


def qsf(*questions: dict, blocks: list | None = None) -> str:
    """A minimal .qsf holding these question payloads (QuestionID, DataExportTag, ... as Qualtrics writes them)."""
    elements = [{"Element": "SQ", "PrimaryAttribute": q["QuestionID"], "Payload": q} for q in questions]
    if blocks is not None:
        elements.insert(0, {"Element": "BL", "Payload": blocks})
    return json.dumps({"SurveyEntry": {}, "SurveyElements": elements})


def mc(qid: str, *choices, text: str | None = "Which?", tag: str | None = None) -> dict:
    return {
        "QuestionID": qid,
        "DataExportTag": tag or qid.lower(),
        "QuestionType": "MC",
        "Selector": "SAVR",
        "QuestionText": text,
        "Choices": {str(i + 1): {"Display": c} for i, c in enumerate(choices)},
        "ChoiceOrder": [i + 1 for i in range(len(choices))],
    }


def test_an_unaskable_question_is_skipped_with_why_and_the_rest_still_come(tmp_path):
    matrix = {
        "QuestionID": "QID5",
        "DataExportTag": "grid",
        "QuestionType": "Matrix",
        "Selector": "Likert",
        "SubSelector": "SingleAnswer",
        "QuestionText": "Agree?",
        "Choices": {},
        "Answers": {"1": {"Display": "Agree"}, "2": {"Display": "Disagree"}},
        "DynamicChoices": {"Locator": "q://QID1/ChoiceGroup/SelectedChoices"},
    }
    piped_row = {
        **matrix,
        "QuestionID": "QID6",
        "DataExportTag": "grid2",
        "Choices": {"1": {"Display": "I like ${q://QID1/ChoiceTextEntryValue}"}},
    }
    path = broken(
        tmp_path,
        "s.qsf",
        qsf(
            mc("QID1", "Yes", "yes "),  # two options that are one answer
            mc("QID2", "Yes", None),  # an image-only choice
            mc("QID3", "Yes", "No", text=None),  # no question text
            mc("QID4", "Improved", "Stayed the same", "Declined", "Declined to answer"),
            matrix,
            piped_row,
        ),
    )
    instrument = read_instrument(path)
    assert [q.id for q in instrument.questions] == ["qid4"]
    assert instrument.questions[0].ordinal == [1.0, 2.0, 3.0]  # "Declined" is on the scale, "Declined to answer" not
    why = {s.id: s.reason for s in instrument.skipped}
    assert "appears twice" in why["qid1"] and "no text" in why["qid2"] and "text" in why["qid3"]
    assert "no rows of its own" in why["grid"] and "piped text" in why["grid2"]


def test_a_question_a_live_block_lists_is_asked_even_if_the_trash_lists_it_too(tmp_path):
    blocks = [
        {"Type": "Trash", "BlockElements": [{"Type": "Question", "QuestionID": "QID1"}]},
        {"Type": "Default", "BlockElements": [{"Type": "Question", "QuestionID": "QID1"}]},
    ]
    path = broken(tmp_path, "s.qsf", qsf(mc("QID1", "Yes", "No"), blocks=blocks))
    assert [q.id for q in read_instrument(path).questions] == ["qid1"] and not read_instrument(path).skipped


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("s.qsf", qsf(mc("QID1", "Yes", "No"), mc("QID1", "A", "B")), "a second question QID1"),
        ("s.qsf", "[" * 100_000, "nested too deeply"),
        (
            "bank.csv",
            'id,text,options,ordinal\nq1,Rate,"Low | High","[[1], 2]"\n',
            "bank.csv:2: ordinal: expected a list",
        ),
        ("bank.csv", 'id,text,options,ordinal\nq1,Rate,"Low | High","[NaN, 2]"\n', "bank.csv:2: ordinal: NaN"),
        ("bank.csv", "id,text,options,id\nq1,Rate,Low | High,q2\n", "column 'id' appears twice"),
        ("pew.csv", 'key,question,options,option_ordinal\nK1,Q?,"[""a"", ""b""]","[[1]]"\n', "pew.csv:2"),
    ],
)
def test_hostile_files_are_named_not_tracebacks(tmp_path, name, text, expected):
    with pytest.raises(InstrumentError) as error:
        read_instrument(broken(tmp_path, name, text))
    assert expected in str(error.value)


def test_a_bank_keeps_quoted_line_breaks_and_skips_blank_rows(tmp_path):
    text = 'id,text,options\r\nq1,"Line one\nline two",Yes | No\r\n,,\r\n\r\nq2,Again?,Yes | No\r\n'
    questions = read_instrument(broken(tmp_path, "bank.csv", text)).questions
    assert [q.text for q in questions] == ["Line one\nline two", "Again?"]
