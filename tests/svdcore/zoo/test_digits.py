"""The digits data of the Pattichis examples: fixed stratified split, ranges, subsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from svdcore.exceptions import DataError
from svdcore.zoo import digits


def test_split_is_a_fixed_stratified_80_20_partition():
    train_idx, test_idx = digits.split_indices()
    assert len(train_idx) == 1438 and len(test_idx) == 359
    assert len(np.intersect1d(train_idx, test_idx)) == 0
    assert np.array_equal(np.union1d(train_idx, test_idx), np.arange(1797))
    _, y_all = digits.make_data(split="all")
    counts = np.bincount(y_all.numpy(), minlength=10)
    test_counts = np.bincount(y_all.numpy()[test_idx], minlength=10)
    assert np.all(np.abs(test_counts - 0.2 * counts) <= 0.5)


def test_make_data_shapes_dtypes_and_range():
    x, y = digits.make_data(split="test")
    assert x.shape == (359, 64) and y.shape == (359,)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert set(y.tolist()) == set(range(10))
    # row-major 8x8 images: the sklearn images divided by 16
    from sklearn.datasets import load_digits

    images = load_digits().images[digits.split_indices()[1]] / 16.0
    assert np.allclose(x.reshape(-1, 8, 8).numpy(), images)


def test_subsets_are_deterministic_in_seed():
    a = digits.make_data(n=50, seed=1, split="train")
    b = digits.make_data(n=50, seed=1, split="train")
    c = digits.make_data(n=50, seed=2, split="train")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_make_data_rejects_bad_arguments():
    with pytest.raises(DataError, match="split"):
        digits.make_data(split="validation")
    with pytest.raises(DataError, match="between 1 and 359"):
        digits.make_data(n=400, split="test")


def test_architectures_are_the_papers():
    single = digits.build_single()
    assert [n for n, _ in single.named_children()] == ["fc1", "act1"]
    assert tuple(single.fc1.weight.shape) == (10, 64)
    assert isinstance(single.act1, torch.nn.SELU)
    five = digits.build_5layer()
    names = [n for n, _ in five.named_children()]
    assert names == [f"{k}{i}" for i in range(1, 6) for k in ("fc", "act")]
    outs = [getattr(five, f"fc{i}").out_features for i in range(1, 6)]
    assert outs == [256, 256, 128, 32, 10]
    assert five.fc1.in_features == 64
    assert all(isinstance(getattr(five, f"act{i}"), torch.nn.SELU) for i in range(1, 6))
