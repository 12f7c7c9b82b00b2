import csv
import gzip
import json

import numpy as np
import pytest

from simrun.models import Answer, Persona
from simrun.plugins.metrics.opinion import (
    OpinionMetric,
    income_group,
    mean_position,
    representativeness,
    sampled_ceiling,
)


def test_formula_by_hand_on_non_uniform_ordinals():
    # ordinal 1, 1.5, 2, 3; CDF gaps 0.3, 0.2, 0.1 over widths 0.5, 0.5, 1 -> W = 0.35; span 2
    model = np.array([0.4, 0.1, 0.2, 0.3])
    human = np.array([0.1, 0.2, 0.3, 0.4])
    assert representativeness(model, human, np.array([1, 1.5, 2, 3])) == pytest.approx(1 - 0.35 / 2)


def test_options_without_a_scale_position_are_left_out():
    # a 'Not sure' third option: renormalise over the first two, W = |0.75 - 0.5| on a span of 1
    assert representativeness(
        np.array([0.3, 0.1, 0.6]), np.array([0.4, 0.4, 0.2]), np.array([1.0, 2.0])
    ) == pytest.approx(0.75)


@pytest.mark.parametrize(
    "label,group",
    [
        ("$25,000 to $29,999", "Less than $30,000"),
        ("$30,000 to $34,999", "$30,000-$50,000"),
        ("$45,000 to $49,999", "$30,000-$50,000"),
        ("$75,000 to $99,999", "$75,000-$100,000"),
        ("$200,000 or more", "$100,000 or more"),
        ("under $10,000", "Less than $30,000"),
    ],
)
def test_income_bands(label, group):
    assert income_group(label) == group


@pytest.fixture
def opinionqa(tmp_path):
    with (tmp_path / "opinionqa_questions.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "wave",
                "key",
                "question",
                "options",
                "option_codes",
                "option_ordinal",
                "n_options",
                "topic_fine",
                "topic_coarse",
            ]
        )
        w.writerow(
            [
                "W1",
                "Q_W1",
                "Is it good?",
                json.dumps(["Good", "So-so", "Bad", "Refused"]),
                "{}",
                "[1.0, 1.5, 3.0]",
                4,
                "",
                "",
            ]
        )
    rows = [
        ("SEX", "Male", {"Good": 30, "So-so": 10, "Bad": 60, "Refused": 5}),
        ("SEX", "Female", {"Good": 50, "So-so": 30, "Bad": 20}),
        ("EDUCATION", "High school graduate", {"Good": 10, "Bad": 10}),
        ("EDUCATION", "Some college, no degree", {"Good": 30, "So-so": 0, "Bad": 10}),
    ]
    with gzip.open(tmp_path / "opinionqa_group_counts.csv.gz", "wt", newline="") as f:
        w = csv.writer(f)
        w.writerow(["wave", "key", "attribute", "group", "option", "count"])
        for attr, group, by in rows:
            for option, n in by.items():
                w.writerow(["W1", "Q_W1", attr, group, option, n])
    (tmp_path / "raw/Pew_American_Trends_Panel_disagreement_500").mkdir(parents=True)
    (tmp_path / "raw/Pew_American_Trends_Panel_disagreement_500/info.csv").write_text("key\nQ_W1\n")
    return tmp_path


class ToyRun:
    def __init__(self, questions, personas, answers):
        self.questions = {q.id: q for q in questions}
        self._personas, self._answers = personas, answers

    def personas(self):
        return iter(self._personas)

    def answers(self):
        return iter(self._answers)


TOY = {"model": "toy", "cache_key": "", "invalid": 0.0}  # what a run log adds to an answer, not read by the metric


def test_metric_overall_per_group_and_human_baseline(opinionqa):
    metric = OpinionMetric(OpinionMetric.Config(path=str(opinionqa)))
    [q] = metric.questions()
    assert q.options == ["Good", "So-so", "Bad"] and q.ordinal == [1.0, 1.5, 3.0]
    personas = [
        Persona(id=0, stratum="X", weight=1.0, attributes={"sex": "male", "education": "high school"}),
        Persona(id=1, stratum="X", weight=3.0, attributes={"sex": "female", "education": "graduate degree"}),
    ]
    answers = [
        Answer(persona_id=0, question_id="Q_W1", weight=1.0, distribution={"A": 0.0, "B": 0.0, "C": 1.0}, **TOY),
        Answer(persona_id=1, question_id="Q_W1", weight=3.0, distribution={"A": 1.0, "B": 0.0, "C": 0.0}, **TOY),
    ]
    values = {(v.name, v.stratum): v.value for v in metric.compute(ToyRun([q], personas, answers))}
    ordinal = np.array([1.0, 1.5, 3.0])
    everyone_model = np.array([0.75, 0, 0.25])
    everyone_human = np.array([80, 40, 80]) / 200  # Male + Female, refusals left out
    assert values[("representativeness", "")] == pytest.approx(
        representativeness(everyone_model, everyone_human, ordinal)
    )
    assert values[("questions", "")] == 1
    male_human = np.array([30, 10, 60]) / 100
    assert values[("representativeness", "SEX=Male")] == pytest.approx(
        representativeness(np.array([0, 0, 1.0]), male_human, ordinal)
    )
    assert values[("human_baseline", "SEX=Male")] == pytest.approx(
        representativeness(male_human, everyone_human, ordinal)
    )
    merged = np.array([40, 0, 20]) / 60  # high school graduate + some college
    assert values[("representativeness", "EDUCATION=High school or some college")] == pytest.approx(
        representativeness(np.array([0, 0, 1.0]), merged, ordinal)
    )
    assert ("representativeness", "EDUCATION=Postgraduate") not in values  # no human counts for it here
    assert 0 < values[("sampling_ceiling", "SEX=Male")] < 1  # one real respondent is a long way from the group
    assert np.isnan(values[("position_r", "")])  # one question: no correlation across questions to report


def test_the_sampling_ceiling_rises_with_the_number_of_respondents():
    human, ordinal = np.array([0.5, 0.2, 0.3]), np.array([1.0, 2.0, 3.0])
    rng = np.random.default_rng(0)
    ceilings = [sampled_ceiling(human, ordinal, n, rng) for n in (1, 10, 100, 10_000)]
    assert ceilings == sorted(ceilings) and ceilings[0] < 0.8 and ceilings[-1] > 0.99


def test_the_mean_position_is_on_the_questions_scale_from_end_to_end():
    assert mean_position(np.array([1.0, 0.0, 1.0, 5.0]), np.array([1.0, 1.5, 3.0])) == pytest.approx(0.5)
    assert mean_position(np.array([0.0, 1.0]), np.array([1.0, 4.0])) == 1.0


def test_missing_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="opinionqa_questions.csv"):
        OpinionMetric.Config(path=str(tmp_path))
