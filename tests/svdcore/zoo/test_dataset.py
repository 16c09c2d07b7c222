"""svdcore.zoo.dataset: the data an example network was made for."""

from __future__ import annotations

import pytest
import torch

import svdcore as sc
from svdcore import zoo
from svdcore.exceptions import DataError, LoadError


def test_zoo_dataset_shapes_and_errors():
    digits = zoo.dataset("digits")
    assert digits.x.shape == (359, 64) and digits.y.dtype == torch.int64
    assert digits.name == "digits (test)"
    cnn = zoo.dataset("digits-cnn", split="train", n=10)
    assert cnn.x.shape == (10, 1, 8, 8)
    deer = zoo.dataset("deernet", n=20)
    assert deer.x.shape == (20, 256) and deer.y.shape == (20, 256)
    assert deer.y.dtype == torch.float32
    with pytest.raises(LoadError, match="no example network"):
        zoo.dataset("mnist")
    with pytest.raises(DataError, match="split"):
        zoo.dataset("digits", split="validation")


def test_zoo_dataset_matches_make_data_and_is_seeded():
    x, y = zoo.get("digits").make_data(split="train", seed=0)
    ds = zoo.dataset("digits", split="train", seed=0)
    torch.testing.assert_close(ds.x, torch.as_tensor(x, dtype=torch.float32).reshape(ds.x.shape))
    assert torch.equal(ds.y, torch.as_tensor(y, dtype=torch.int64))
    a = zoo.dataset("deernet", n=8, seed=1)
    b = zoo.dataset("deernet", n=8, seed=1)
    torch.testing.assert_close(a.x, b.x, atol=0, rtol=0)
    assert isinstance(a, sc.Dataset)
    assert not hasattr(sc, "zoo_dataset")
