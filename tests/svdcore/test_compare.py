"""svdcore.compare: principal angles against scipy, overlaps, diff norms, network pairing."""

import itertools
import math
from collections import OrderedDict

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

import svdcore as sc
from svdcore.compare import (
    LayerComparison,
    NetworkComparison,
    compare_layers,
    compare_networks,
    subspace_angles,
)


def _rand(m, n, seed=0):
    return np.random.default_rng(seed).standard_normal((m, n))


def _with_spectrum(m, n, s, seed=0):
    """A matrix (m, n) with singular values s and random singular vectors."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((m, len(s))))
    V, _ = np.linalg.qr(rng.standard_normal((n, len(s))))
    return (U * s) @ V.T, U, V


@pytest.mark.parametrize("p, q, seed", [(3, 3, 0), (5, 2, 1), (2, 6, 2), (8, 8, 3)])
def test_subspace_angles_match_scipy(p, q, seed):
    A, B = _rand(40, p, seed), _rand(40, q, seed + 10)
    got = subspace_angles(A, B)
    ref = np.sort(scipy.linalg.subspace_angles(A, B))
    assert got.shape == (min(p, q),)
    np.testing.assert_allclose(got, ref, atol=1e-12)
    assert bool(np.all(np.diff(got) >= 0))
    assert bool(np.all((got >= 0) & (got <= np.pi / 2 + 1e-15)))


def test_subspace_angles_small_angles_are_accurate():
    # span(A) tilted by a tiny known angle: arccos alone would lose it
    e = np.eye(10)
    eps = 1e-9
    A = e[:, :2]
    B = np.column_stack([e[:, 0], np.cos(eps) * e[:, 1] + np.sin(eps) * e[:, 5]])
    got = subspace_angles(A, B)
    np.testing.assert_allclose(got, [0.0, eps], atol=1e-20, rtol=1e-6)
    np.testing.assert_allclose(got, np.sort(scipy.linalg.subspace_angles(A, B)), rtol=1e-6)
    # the same span given by other vectors: all angles 0
    M = _rand(30, 4, seed=4)
    R = _rand(4, 4, seed=5)
    np.testing.assert_allclose(subspace_angles(M, M @ R), 0.0, atol=1e-7)


def test_matrix_against_itself():
    W = _rand(40, 25, seed=1)
    c = compare_layers(W, W.copy(), k=6)
    assert isinstance(c, LayerComparison) and c.k == 6 and c.shape == (40, 25)
    np.testing.assert_array_equal(c.diff, 0.0)
    assert c.diff_fro == 0.0 and c.rel_diff == 0.0
    np.testing.assert_allclose(c.left_angles, 0.0, atol=1e-7)
    np.testing.assert_allclose(c.right_angles, 0.0, atol=1e-7)
    np.testing.assert_allclose(c.left_overlap, np.eye(6), atol=1e-12)
    np.testing.assert_allclose(c.right_overlap, np.eye(6), atol=1e-12)
    np.testing.assert_allclose(c.spectra_a, np.linalg.svd(W, compute_uv=False), rtol=1e-12)
    np.testing.assert_array_equal(c.spectra_a, c.spectra_b)


def test_diff_norms():
    Wa, Wb = _rand(12, 9, seed=2), _rand(12, 9, seed=3)
    c = compare_layers(torch.tensor(Wa), Wb, k=3)
    np.testing.assert_allclose(c.diff, Wb - Wa, atol=1e-15)
    assert c.diff_fro == pytest.approx(np.linalg.norm(Wb - Wa))
    assert c.rel_diff == pytest.approx(np.linalg.norm(Wb - Wa) / np.linalg.norm(Wa))
    zero = compare_layers(np.zeros((3, 3)), np.eye(3), k=1)
    assert math.isinf(zero.rel_diff)
    assert compare_layers(np.zeros((3, 3)), np.zeros((3, 3)), k=1).rel_diff == 0.0


def test_rotated_copy_overlaps_and_angles():
    s = np.array([10.0, 8.0, 6.0, 4.0, 3.0, 2.0, 1.0, 0.5])
    W, U, V = _with_spectrum(30, 20, s, seed=7)
    k = 4
    # rotate the input space inside span(V[:, :k]) by a k x k rotation R:
    # right singular vectors change, their top-k span does not; left vectors are unchanged
    R, _ = np.linalg.qr(_rand(k, k, seed=8))
    Vk = V[:, :k]
    Q = np.eye(20) + Vk @ (R - np.eye(k)) @ Vk.T  # orthogonal
    np.testing.assert_allclose(Q.T @ Q, np.eye(20), atol=1e-12)
    Wr = W @ Q.T  # = U S (Q V)^T, itself an SVD: right singular vectors Q V = [V_k R, ...]
    c = compare_layers(W, Wr, k=k)
    np.testing.assert_allclose(c.right_angles, 0.0, atol=1e-7)
    np.testing.assert_allclose(c.left_angles, 0.0, atol=1e-7)
    np.testing.assert_allclose(c.right_overlap, np.abs(R), atol=1e-8)  # |V_k^T V_k R|
    np.testing.assert_allclose(c.left_overlap, np.eye(k), atol=1e-8)
    assert c.rel_diff > 0.1  # the matrices differ although the subspaces agree

    # a rotation of the output space: left vectors rotate, right vectors stay
    P, _ = np.linalg.qr(_rand(30, 30, seed=9))
    c2 = compare_layers(W, P @ W, k=k)
    np.testing.assert_allclose(c2.right_overlap, np.eye(k), atol=1e-8)
    np.testing.assert_allclose(c2.right_angles, 0.0, atol=1e-6)
    Ua = U[:, :k]
    np.testing.assert_allclose(c2.left_overlap, np.abs(Ua.T @ P @ Ua), atol=1e-8)
    np.testing.assert_allclose(c2.spectra_b, c2.spectra_a, rtol=1e-10, atol=1e-12)
    ref = np.sort(scipy.linalg.subspace_angles(Ua, P @ Ua))
    np.testing.assert_allclose(c2.left_angles, ref, atol=1e-8)


def test_k_is_clipped_and_checked():
    c = compare_layers(_rand(5, 3), _rand(5, 3, seed=1), k=10)
    assert c.k == 3 and c.left_overlap.shape == (3, 3) and c.right_angles.shape == (3,)
    with pytest.raises(sc.DataError, match="positive integer"):
        compare_layers(_rand(5, 3), _rand(5, 3), k=0)


@pytest.mark.parametrize(
    "a, b, fragment",
    [
        (np.zeros((3, 4)), np.zeros((4, 3)), r"W_a is \(3, 4\), W_b is \(4, 3\)"),
        (np.full((2, 2), np.nan), np.zeros((2, 2)), "NaN"),
        (np.zeros((0, 2)), np.zeros((0, 2)), "empty"),
        (np.zeros(4), np.zeros(4), "2-D"),
    ],
)
def test_bad_layers(a, b, fragment):
    with pytest.raises(sc.DataError, match=fragment):
        compare_layers(a, b)


def test_subspace_angles_bad_input():
    with pytest.raises(sc.DataError, match="different spaces"):
        subspace_angles(_rand(5, 2), _rand(6, 2))
    with pytest.raises(sc.DataError, match="at most as many columns"):
        subspace_angles(_rand(3, 5), _rand(3, 2))


def _mlp(widths, seed):
    torch.manual_seed(seed)
    pairs = itertools.pairwise(widths)
    return nn.Sequential(
        OrderedDict((f"fc{i + 1}", nn.Linear(a, b)) for i, (a, b) in enumerate(pairs))
    )


def test_compare_networks_pairs_layers_by_name_and_shape():
    net_a = sc.Network.from_module(_mlp([8, 6, 5, 3], 0), input_shape=(8,), name="a")
    net_b = sc.Network.from_module(_mlp([8, 6, 4, 3, 2], 1), input_shape=(8,), name="b")
    cmp = compare_networks(net_a, net_b, k=2)
    assert isinstance(cmp, NetworkComparison)
    assert list(cmp.layers) == ["fc1"]
    assert cmp.shape_mismatch == {"fc2": ((5, 6), (4, 6)), "fc3": ((3, 5), (3, 4))}
    assert cmp.only_a == [] and cmp.only_b == ["fc4"]
    c = cmp.layers["fc1"]
    Wa, Wb = net_a.matrix("fc1").numpy(), net_b.matrix("fc1").numpy()
    assert c.diff_fro == pytest.approx(np.linalg.norm(Wb - Wa), rel=1e-6)
    table = cmp.summary()
    assert list(table["name"]) == ["fc1", "fc2", "fc3", "fc4"]
    assert table.loc[0, "note"] == "" and "shapes differ" in table.loc[1, "note"]
    assert table.loc[3, "note"] == "only in b"
    assert table.to_csv(index=False).count("\n") == 5


def test_compare_zoo_network_against_itself():
    net = sc.zoo.load("digits-5layer")
    cmp = compare_networks(net, net, k=4)
    assert list(cmp.layers) == [layer.name for layer in net.layers]
    assert not cmp.shape_mismatch and not cmp.only_a and not cmp.only_b
    for c in cmp.layers.values():
        assert c.diff_fro == 0.0
        np.testing.assert_allclose(c.left_angles, 0.0, atol=1e-7)
        np.testing.assert_allclose(c.right_angles, 0.0, atol=1e-7)
    assert float(cmp.summary()["max_left_angle_deg"].max()) < 1e-5
    some = compare_networks(net, net, names=["fc2"])
    assert list(some.layers) == ["fc2"]
    with pytest.raises(sc.LayerError, match="nope"):
        compare_networks(net, net, names=["nope"])
    with pytest.raises(sc.DataError, match="Network"):
        compare_networks(net, "digits")


def test_compare_networks_views_and_skips():
    net = sc.zoo.load("digits-cnn")
    cmp = compare_networks(net, net, view="kernels", k=2)
    assert "conv1" in cmp.layers and cmp.layers["conv1"].shape == (8, 9)
    assert "fc1" in cmp.skipped and "kernels" in cmp.skipped["fc1"]


def test_rank_limited_comparison_matches_the_full_one_on_the_top_subspaces():
    s = np.array([10.0, 8.0, 6.0, 4.0, 2.0, 1.0, 0.5, 0.25])
    A, _, _ = _with_spectrum(40, 30, s, seed=4)
    B = A + 1e-3 * _rand(40, 30, seed=5)
    full = compare_layers(A, B, k=3)
    top = compare_layers(A, B, k=3, rank=5)
    assert top.spectra_a.shape == (5,) and full.spectra_a.shape == (30,)
    np.testing.assert_allclose(top.spectra_a, full.spectra_a[:5], rtol=1e-10)
    np.testing.assert_allclose(top.left_angles, full.left_angles, atol=1e-9)
    np.testing.assert_allclose(top.right_overlap, full.right_overlap, atol=1e-9)
    assert top.diff_fro == pytest.approx(full.diff_fro, rel=1e-12)
    # rank below k is raised to k; a bad rank is refused
    assert compare_layers(A, B, k=4, rank=2).spectra_a.shape == (4,)
    with pytest.raises(sc.DataError, match="rank must be"):
        compare_layers(A, B, rank=0)
