import math

import pytest

from simrun.distributions import from_logprobs, from_samples, parse_choice


def test_label_variants_are_summed_and_renormalised():
    lp = {"A": math.log(0.3), " A": math.log(0.1), "B": math.log(0.2), " B": math.log(0.2), "The": math.log(0.2)}
    answer = from_logprobs(lp, ["A", "B"])
    assert answer.distribution == pytest.approx({"A": 0.5, "B": 0.5})
    assert answer.invalid == pytest.approx(0.2)


def test_no_option_mass_is_all_invalid():
    answer = from_logprobs({"The": 0.0}, ["A", "B"])
    assert answer.invalid == pytest.approx(1.0)
    assert answer.distribution == {"A": 0.0, "B": 0.0}


def test_samples_are_counted_and_junk_is_invalid():
    answer = from_samples(["A", "B. No", "(A)", "I cannot answer that", "A"], ["A", "B"])
    assert answer.distribution == pytest.approx({"A": 0.75, "B": 0.25})
    assert answer.invalid == pytest.approx(0.2)


@pytest.mark.parametrize(
    "text,expected", [("B", "B"), (" C.", "C"), ("Answer: A", "A"), ("A or B", None), ("", None), ("Z", None)]
)
def test_parse_choice(text, expected):
    assert parse_choice(text, ["A", "B", "C"]) == expected
