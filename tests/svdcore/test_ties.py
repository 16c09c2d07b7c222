"""Near-ties of adjacent singular values (svdcore.ties)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from svdcore import DataError
from svdcore.ties import near_ties


def test_groups_are_maximal_runs_of_small_relative_gaps() -> None:
    s = np.array([10.0, 9.95, 9.9, 5.0, 4.99, 1.0, 0.0])
    groups = near_ties(s, rtol=0.01)
    assert [(g.start, g.stop) for g in groups] == [(0, 3), (3, 5)]
    assert groups[0].label() == "σ1–σ3" and groups[0].size == 3
    assert groups[0].gap == pytest.approx(0.05 / 9.95)
    assert groups[0].separation == pytest.approx(4.9 / 9.9)
    assert groups[1].separation == pytest.approx(min(4.9 / 9.9, 3.99 / 4.99))
    # only groups that start among the top 2; the group is followed to its end
    assert [(g.start, g.stop) for g in near_ties(s, rtol=0.01, top=2)] == [(0, 3)]
    assert near_ties(s, rtol=0.001) == []


def test_every_tied_pair_is_in_one_group_on_random_spectra() -> None:
    rng = np.random.default_rng(0)
    s = np.sort(rng.uniform(1, 2, 200))[::-1]
    groups = near_ties(s, rtol=0.005)
    rel = (s[:-1] - s[1:]) / s[:-1]
    inside = np.zeros(rel.size, dtype=bool)
    for g in groups:
        inside[g.start : g.stop - 1] = True
        assert g.gap <= 0.005
        assert g.separation > 0.005 or math.isinf(g.separation)
    np.testing.assert_array_equal(inside, rel <= 0.005)


def test_bad_input() -> None:
    with pytest.raises(DataError, match="descending"):
        near_ties(np.array([1.0, 2.0]))
    with pytest.raises(DataError, match="finite"):
        near_ties(np.array([np.nan, 1.0]))
    with pytest.raises(DataError, match="rtol"):
        near_ties(np.array([2.0, 1.0]), rtol=1.5)
    assert near_ties(np.array([3.0])) == []
