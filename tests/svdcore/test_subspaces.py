"""Four fundamental subspaces and projections, checked against numpy float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from svdcore.exceptions import DataError, SvdscopeError
from svdcore.spectrum import default_rtol, numerical_rank
from svdcore.subspaces import FourSubspaces, project, subspaces

SHAPES = [(8, 5), (5, 8), (6, 6), (1, 7), (7, 1), (30, 12)]


def _random(shape, rank=None, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    m, n = shape
    if rank is None:
        return rng.standard_normal(shape).astype(dtype)
    return (rng.standard_normal((m, rank)) @ rng.standard_normal((rank, n))).astype(dtype)


def _cases():
    for shape in SHAPES:
        yield pytest.param(shape, None, id=f"{shape[0]}x{shape[1]}-full")
        r = min(shape) - 2
        if r >= 1:
            yield pytest.param(shape, r, id=f"{shape[0]}x{shape[1]}-rank{r}")


def _orthonormal(Q: np.ndarray, atol=1e-12):
    np.testing.assert_allclose(Q.T @ Q, np.eye(Q.shape[1]), atol=atol)


@pytest.mark.parametrize(("shape", "rank"), list(_cases()))
def test_bases_are_orthonormal_and_complementary(shape, rank):
    W = _random(shape, rank)
    m, n = shape
    sub = subspaces(W)
    r = np.linalg.matrix_rank(W) if rank is None else rank
    assert sub.rank == r
    assert sub.dims == {"row": r, "col": r, "null": n - r, "left_null": m - r}
    assert sub.row.shape == (n, r) and sub.null.shape == (n, n - r)
    assert sub.col.shape == (m, r) and sub.left_null.shape == (m, m - r)
    assert sub.shape == (m, n)
    row, col, null, left = (t.numpy() for t in (sub.row, sub.col, sub.null, sub.left_null))
    # [row, null] and [col, left_null] are orthogonal matrices: dimensions add up to n and m
    _orthonormal(np.hstack([row, null]))
    _orthonormal(np.hstack([col, left]))
    scale = np.linalg.norm(W, 2)
    np.testing.assert_allclose(W @ null, 0, atol=1e-12 * scale)
    np.testing.assert_allclose(W.T @ left, 0, atol=1e-12 * scale)  # the LEFT null space
    np.testing.assert_allclose(row.T @ null, 0, atol=1e-12)
    # the column space is the range of W: projecting W's columns onto it changes nothing
    np.testing.assert_allclose(col @ (col.T @ W), W, atol=1e-12 * scale)
    np.testing.assert_allclose(W @ row @ row.T, W, atol=1e-12 * scale)
    s = np.linalg.svd(W, compute_uv=False)
    np.testing.assert_allclose(sub.singular_values.numpy(), s, rtol=1e-12, atol=1e-12 * scale)
    assert sub.cond == pytest.approx(s[0] / s[r - 1], rel=1e-10)
    assert sub.rtol == pytest.approx(max(shape) * np.finfo(np.float64).eps)


def test_left_null_space_comes_from_u_not_v():
    # tall, rank 2: U[:, 2:] is 4-dimensional in R^6, V[:, 2:] 1-dimensional in R^3
    W = _random((6, 3), rank=2, seed=3)
    sub = subspaces(W)
    assert sub.left_null.shape == (6, 4) and sub.null.shape == (3, 1)
    U, _, Vh = np.linalg.svd(W)
    # same spaces as numpy's U[:, r:] (compare projectors: bases differ by rotations)
    np.testing.assert_allclose(
        sub.left_null.numpy() @ sub.left_null.numpy().T, U[:, 2:] @ U[:, 2:].T, atol=1e-12
    )
    np.testing.assert_allclose(sub.null.numpy() @ sub.null.numpy().T, Vh[2:].T @ Vh[2:], atol=1e-12)


def test_rank_tolerance_is_the_documented_default_for_the_stored_dtype():
    W32 = torch.from_numpy(_random((40, 20), rank=12, seed=1, dtype=np.float32))
    sub = subspaces(W32)  # decomposed in float64, tolerance from float32
    assert sub.rtol == pytest.approx(default_rtol((40, 20), torch.float32))
    assert sub.rank == 12 == numerical_rank(W32)
    assert sub.row.dtype == torch.float64
    # float32 noise sits above the float64 tolerance: the float64 rule would miss the rank
    assert subspaces(W32, rtol=1e-15).rank == 20
    # a larger rtol drops small singular values into the null space
    s = sub.singular_values
    loose = subspaces(W32, rtol=float(s[5] / s[0]) * 1.0001)
    assert loose.rank == 5 and loose.dims["null"] == 15
    assert subspaces(W32, precision="float32").row.dtype == torch.float32


def test_zero_matrix_has_no_signal_space():
    sub = subspaces(np.zeros((3, 4)))
    assert sub.rank == 0 and math.isnan(sub.cond)
    assert sub.null.shape == (4, 4) and sub.left_null.shape == (3, 3)
    proj = project(np.zeros((3, 4)), np.ones(4))
    assert float(proj.energy_ratio) == 1.0


@pytest.mark.parametrize(
    ("W", "fragment"),
    [
        (np.ones(5), "2-D"),
        (np.ones((2, 3, 4)), "2-D"),
        (np.ones((0, 3)), "empty"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), "infinite"),
        (np.ones((2, 2), dtype=np.complex64), "complex"),
        (np.array([["a", "b"]]), "numeric"),
    ],
)
def test_bad_matrices_are_refused_with_a_sentence(W, fragment):
    with pytest.raises(DataError, match=fragment):
        subspaces(W)


@pytest.mark.parametrize("rtol", [-1.0, 1.5, float("nan"), "x", True])
def test_bad_rtol(rtol):
    with pytest.raises(DataError, match="rtol"):
        subspaces(np.eye(3), rtol=rtol)


@pytest.mark.parametrize(("shape", "rank"), list(_cases()))
def test_projection_energy_identity_single_and_batch(shape, rank):
    W = _random(shape, rank, seed=5)
    n = shape[1]
    rng = np.random.default_rng(7)
    X = rng.standard_normal((9, n))
    _, s, Vh = np.linalg.svd(W)
    r = int((s > max(shape) * np.finfo(float).eps * s[0]).sum())
    P = Vh[:r].T @ Vh[:r]
    batch = project(W, X)
    np.testing.assert_allclose(batch.signal.numpy(), X @ P, atol=1e-12)
    np.testing.assert_allclose(batch.residual.numpy(), X - X @ P, atol=1e-12)
    sig, res = batch.signal.numpy(), batch.residual.numpy()
    energy = (X**2).sum(1)
    np.testing.assert_allclose((sig**2).sum(1) + (res**2).sum(1), energy, rtol=1e-10)
    np.testing.assert_allclose(batch.energy_ratio.numpy(), (res**2).sum(1) / energy, rtol=1e-10)
    np.testing.assert_allclose((sig * res).sum(1), 0, atol=1e-10)  # signal ⟂ residual
    np.testing.assert_allclose(W @ res.T, 0, atol=1e-10 * np.linalg.norm(W, 2))
    assert batch.energy_ratio.shape == (9,) and batch.coefficients.shape == (9, r)
    one = project(W, X[3])
    assert one.signal.shape == (n,) and one.energy_ratio.ndim == 0
    np.testing.assert_allclose(one.signal.numpy(), sig[3], atol=1e-13)
    assert float(one.energy_ratio) == pytest.approx(float(batch.energy_ratio[3]), rel=1e-12)
    # reuse of a decomposition gives the same answer
    again = project(subspaces(W), X)
    np.testing.assert_allclose(again.signal.numpy(), sig, atol=1e-12)


def test_projection_of_pure_signal_and_pure_null_inputs():
    W = _random((3, 6), seed=2)
    sub = subspaces(W)
    x_sig = sub.row @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    x_null = sub.null @ torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    assert float(project(W, x_sig).energy_ratio) == pytest.approx(0.0, abs=1e-12)
    assert float(project(W, x_null).energy_ratio) == pytest.approx(1.0, rel=1e-12)
    assert float(project(W, torch.zeros(6)).energy_ratio) == 0.0  # no energy, no NaN


def test_projection_keeps_image_shapes_and_names_bad_shapes():
    W = _random((10, 64), seed=4)
    images = torch.rand(5, 8, 8, dtype=torch.float64)
    proj = project(W, images)
    assert proj.signal.shape == (5, 8, 8) and proj.energy_ratio.shape == (5,)
    assert project(W, images[0]).signal.shape == (8, 8)
    with pytest.raises(DataError, match=r"7 values.*64 columns"):
        project(W, np.ones(7))
    with pytest.raises(DataError, match=r"\(5, 7\).*64 columns"):
        project(W, np.ones((5, 7)))
    with pytest.raises(DataError, match="NaN"):
        project(W, np.full(64, np.nan))
    with pytest.raises(DataError, match="empty"):
        project(W, np.ones((0, 64)))
    with pytest.raises(DataError, match="rtol applies"):
        project(subspaces(W), np.ones(64), rtol=0.1)


def test_errors_are_svdscope_errors():
    assert issubclass(DataError, SvdscopeError)
    assert isinstance(subspaces(np.eye(2)), FourSubspaces)
