"""svdcore.projections: class averages, per-neuron projections and signal vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import svdcore.zoo as zoo
from svdcore.exceptions import DataError
from svdcore.projections import class_projections, neuron_projections, signal_vectors
from svdcore.subspaces import project


def test_class_projections_average_each_class():
    W = np.random.default_rng(8).standard_normal((4, 12))
    rng = np.random.default_rng(9)
    X = rng.standard_normal((30, 12))
    y = rng.integers(0, 5, 30)
    y[y == 3] = 4  # class 3 absent
    res = class_projections(W, X, y, classes=["a", "b", "c", "d", "e"])
    assert res.labels.tolist() == [0, 1, 2, 4]
    assert res.names == ["a", "b", "c", "e"]
    for k, c in enumerate(res.labels.tolist()):
        mean = X[y == c].mean(0)
        assert int(res.counts[k]) == int((y == c).sum())
        np.testing.assert_allclose(res.means[k].numpy(), mean, atol=1e-13)
        single = project(W, mean)
        np.testing.assert_allclose(res.residual[k].numpy(), single.residual.numpy(), atol=1e-12)
        assert float(res.energy_ratio[k]) == pytest.approx(float(single.energy_ratio), rel=1e-10)
        per = project(W, X[y == c]).energy_ratio.numpy().mean()
        assert float(res.mean_sample_ratio[k]) == pytest.approx(per, rel=1e-10)
    table = res.as_table()
    assert table[3]["name"] == "e" and table[3]["label"] == 4
    assert set(table[0]) == {
        "label",
        "name",
        "count",
        "energy_removed",
        "mean_sample_energy_removed",
    }
    assert class_projections(W, X, y).names == ["0", "1", "2", "4"]


def test_class_projections_refuse_bad_labels():
    W, X = np.eye(3), np.ones((4, 3))
    with pytest.raises(DataError, match="integer class labels"):
        class_projections(W, X, np.array([0.5, 1.0, 0.0, 1.0]))
    with pytest.raises(DataError, match=r"\(3,\).*4 samples"):
        class_projections(W, X, np.array([0, 1, 0]))
    with pytest.raises(DataError, match="no name"):
        class_projections(W, X, np.array([0, 1, 2, 1]), classes=["a", "b"])


def test_neuron_projections_follow_the_formula():
    W = np.random.default_rng(10).standard_normal((5, 7))
    W[2] = 0.0  # a dead neuron
    rng = np.random.default_rng(11)
    X = rng.standard_normal((3, 7))
    res = neuron_projections(W, X)
    assert res.p.shape == (3, 5, 7) and res.residual.shape == (3, 5, 7)
    assert not torch.isnan(res.p).any() and not torch.isnan(res.energy_ratio).any()
    for i in range(3):
        for j in range(5):
            w, x = W[j], X[i]
            expected = (w @ x) / (w @ w) * w if w @ w > 0 else np.zeros(7)
            np.testing.assert_allclose(res.p[i, j].numpy(), expected, atol=1e-13)
            r = res.residual[i, j].numpy()
            np.testing.assert_allclose(r, x - expected, atol=1e-13)
            assert r @ w == pytest.approx(0.0, abs=1e-12)  # residual ⟂ w_j
            assert (expected**2).sum() + (r**2).sum() == pytest.approx((x**2).sum(), rel=1e-12)
    np.testing.assert_allclose(res.residual[:, 2].numpy(), X)  # dead neuron keeps everything
    assert res.energy_ratio[:, 2].tolist() == [1.0, 1.0, 1.0]
    one = neuron_projections(W, X[1], neurons=[4, 0])
    assert one.p.shape == (2, 7) and one.neurons.tolist() == [4, 0]
    np.testing.assert_allclose(one.p[0].numpy(), res.p[1, 4].numpy())
    with pytest.raises(DataError, match="neuron indices"):
        neuron_projections(W, X, neurons=[5])
    with pytest.raises(DataError, match="7 columns"):
        neuron_projections(W, np.ones(6))


def test_signal_vectors_are_scaled_right_singular_vectors():
    W = np.random.default_rng(12).standard_normal((10, 64))
    sv = signal_vectors(W)
    s = np.linalg.svd(W, compute_uv=False)
    assert sv.vectors.shape == (10, 64) and sv.rank == 10 and sv.image_shape is None
    np.testing.assert_allclose(sv.singular_values.numpy(), s, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(sv.vectors.numpy(), axis=1), s, rtol=1e-12)
    gram = sv.vectors.numpy() @ sv.vectors.numpy().T
    np.testing.assert_allclose(gram, np.diag(s**2), atol=1e-10)
    # each sigma_i v_i satisfies W^T W v = sigma^2 v
    for i in range(10):
        v = sv.vectors[i].numpy() / s[i]
        np.testing.assert_allclose(W.T @ (W @ v), s[i] ** 2 * v, atol=1e-9)
    assert signal_vectors(W, k=3).vectors.shape == (3, 64)
    assert signal_vectors(_rank_two()).vectors.shape == (2, 9)
    assert signal_vectors(np.zeros((3, 4))).vectors.shape == (0, 4)
    with pytest.raises(DataError, match="k must"):
        signal_vectors(W, k=0)


def test_conv_kernels_give_signal_kernels():
    net = zoo.load("digits-cnn")
    K = net.matrix("conv2", view="kernels")
    assert tuple(K.shape) == (64, 9)
    from_view = signal_vectors(K)
    from_weight = signal_vectors(net.tensor("conv2"))
    assert from_weight.image_shape == (3, 3) and from_view.image_shape is None
    assert from_weight.vectors.shape == (9, 9)
    np.testing.assert_allclose(from_weight.vectors.numpy(), from_view.vectors.numpy(), atol=1e-12)
    s = np.linalg.svd(K.double().numpy(), compute_uv=False)
    np.testing.assert_allclose(from_view.singular_values.numpy(), s, rtol=1e-10)


def _rank_two():
    rng = np.random.default_rng(0)
    return rng.standard_normal((6, 2)) @ rng.standard_normal((2, 9))
