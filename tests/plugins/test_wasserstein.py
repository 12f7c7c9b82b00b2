import pytest

from simrun.models import Question
from simrun.plugins.metrics.wasserstein import WassersteinMetric


class ToyRun:
    def __init__(self, questions, shares):
        self.questions = {q.id: q for q in questions}
        self._shares = shares

    def shares(self, qid):
        return self._shares[qid]


def test_by_hand_on_an_ordinal_and_a_positional_question():
    ordinal = Question(id="o", text="?", options=["a", "b", "c", "d"], ordinal=[1, 1.5, 2, 3], truth=[10, 20, 30, 40])
    positional = Question(id="p", text="?", options=["x", "y"], truth=[0.5, 0.5])
    plain = Question(id="n", text="?", options=["x", "y"])
    shares = {
        "o": {"ALL": {"A": 0.4, "B": 0.1, "C": 0.2, "D": 0.3}},
        "p": {"ALL": {"A": 0.8, "B": 0.2}},
        "n": {"ALL": {"A": 1.0, "B": 0.0}},
    }
    values = {v.label: v.value for v in WassersteinMetric().compute(ToyRun([ordinal, positional, plain], shares))}
    assert values["alignment[o]"] == pytest.approx(1 - 0.35 / 2)  # the OpinionQA hand case
    assert values["tvd[o]"] == pytest.approx(0.5 * (0.3 + 0.1 + 0.1 + 0.1))
    assert values["alignment[p]"] == pytest.approx(1 - 0.3)
    assert values["alignment"] == pytest.approx((1 - 0.175 + 0.7) / 2)
    assert "alignment[n]" not in values


def test_truth_must_fit_the_options():
    with pytest.raises(ValueError, match="truth has 1 values"):
        Question(id="q", text="?", options=["a", "b"], truth=[1])


def test_no_truth_anywhere_is_a_clear_error():
    with pytest.raises(ValueError, match="no question has a truth"):
        WassersteinMetric().compute(ToyRun([Question(id="n", text="?", options=["x", "y"])], {}))
