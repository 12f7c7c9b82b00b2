"""One computation of answer shares, fed answer by answer in chunks (the engine) or all at once (compare)."""

import numpy as np
import pytest

from simrun.shares import ShareSums


def test_shares_are_weighted_means_per_stratum_and_over_everyone():
    sums = ShareSums()
    values = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.2], [0.5, 0.5, 0.0]])  # A, B, then invalid mass
    sums.add("q", ["A", "B"], ["OH", "TX"], np.array([0, 1, 1]), np.array([1.0, 3.0, 1.0]), values)
    shares, invalid = sums.shares()["q"], sums.invalid()["q"]
    assert shares["OH"] == {"A": 1.0, "B": 0.0}
    assert shares["TX"]["A"] == pytest.approx(0.5 / 4) and invalid["TX"] == pytest.approx(0.6 / 4)
    assert shares["ALL"]["A"] == pytest.approx(1.5 / 5) and invalid["ALL"] == pytest.approx(0.6 / 5)


def test_chunks_add_up_to_the_whole():
    rng = np.random.default_rng(1)
    values, weights, codes = rng.random((50, 3)), rng.random(50), rng.integers(0, 4, 50)
    whole, chunked = ShareSums(), ShareSums()
    whole.add("q", ["A", "B"], ["a", "b", "c", "d"], codes, weights, values)
    for start in range(0, 50, 7):
        part = slice(start, start + 7)
        chunked.add("q", ["A", "B"], ["a", "b", "c", "d"], codes[part], weights[part], values[part])
    for stratum, shares in whole.shares()["q"].items():
        assert chunked.shares()["q"][stratum] == pytest.approx(shares)
