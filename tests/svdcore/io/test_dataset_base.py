"""svdcore.io.dataset_base: the Dataset invariant and make_dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from svdcore.exceptions import DataError
from svdcore.io.dataset_base import Dataset, make_dataset


def test_dataset_checks_its_invariant():
    with pytest.raises(DataError, match="one target per sample"):
        Dataset(torch.zeros(3, 2), torch.zeros(2, dtype=torch.int64), "d")
    with pytest.raises(DataError, match="float32"):
        Dataset(torch.zeros(3, 2, dtype=torch.float64), None, "d")


def test_make_dataset_casts_checks_and_reshapes():
    ds = make_dataset(
        np.arange(12, dtype=np.int32).reshape(3, 4),
        np.array([0, 1, 1]),
        name="d",
        input_shape=(2, 2),
    )
    assert ds.x.dtype == torch.float32 and ds.x.shape == (3, 2, 2)
    assert ds.y.dtype == torch.int64 and ds.is_classification
    with pytest.raises(DataError, match="NaN"):
        make_dataset(np.array([[np.nan, 1.0]]), None, name="d", input_shape=None)
