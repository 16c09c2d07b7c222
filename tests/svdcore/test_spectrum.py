"""svdcore.spectrum against numpy float64 references, invariants and edge shapes."""

import math

import numpy as np
import pytest
import torch

import svdcore as sc
from svdcore import DataError, canonical_signs, numerical_rank, svd
from svdcore.spectrum import condition_from, rank_from, resolve_rtol


def _rand(m, n, seed=0):
    return np.random.default_rng(seed).standard_normal((m, n))


@pytest.mark.parametrize("shape", [(1, 7), (7, 1), (1, 1), (40, 25), (25, 40), (64, 64)])
def test_svd_matches_numpy_and_reconstructs(shape):
    A = _rand(*shape, seed=sum(shape))
    U, S, Vh = sc.svd(A, precision="float64")
    s_ref = np.linalg.svd(A, compute_uv=False)
    np.testing.assert_allclose(S.numpy(), s_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(((U * S) @ Vh).numpy(), A, atol=1e-12)
    r = min(shape)
    np.testing.assert_allclose(U.mT @ U, np.eye(r), atol=1e-12)
    np.testing.assert_allclose(Vh @ Vh.mT, np.eye(r), atol=1e-12)
    assert U.shape == (shape[0], r) and Vh.shape == (r, shape[1])


def test_svd_float32_default_and_descending():
    A = torch.randn(30, 20)
    res = sc.svd(A)
    assert res.S.dtype == torch.float32
    assert bool((res.S[:-1] >= res.S[1:]).all())
    torch.testing.assert_close(res.reconstruct(), A, atol=1e-5, rtol=1e-5)


def test_svd_signs_are_deterministic():
    A = _rand(20, 12, seed=3)
    U1, _, V1 = sc.svd(A, precision="float64")
    U2, _, _ = sc.svd(A.copy(), precision="float64")
    np.testing.assert_array_equal(U1.numpy(), U2.numpy())
    idx = U1.abs().argmax(dim=0)
    assert bool((U1[idx, torch.arange(U1.shape[1])] > 0).all())
    # flipping the matrix sign flips exactly one factor
    U3, _, V3 = sc.svd(-A, precision="float64")
    np.testing.assert_allclose(U3.numpy(), U1.numpy(), atol=1e-12)
    np.testing.assert_allclose(V3.numpy(), -V1.numpy(), atol=1e-12)


def test_truncated_and_randomized_svd_agree_with_exact():
    rng = np.random.default_rng(1)
    # a matrix with a decaying spectrum, as trained weights have
    U, _ = np.linalg.qr(rng.standard_normal((300, 200)))
    V, _ = np.linalg.qr(rng.standard_normal((200, 200)))
    s = 0.8 ** np.arange(200)
    A = (U * s) @ V.T
    full = sc.svd(A, precision="float64")
    trunc = sc.svd(A, k=5, method="full", precision="float64")
    rand = sc.svd(A, k=5, method="randomized", precision="float64")
    assert trunc.S.shape == (5,) and rand.U.shape == (300, 5) and rand.Vh.shape == (5, 200)
    np.testing.assert_allclose(trunc.S.numpy(), s[:5], rtol=1e-10)
    np.testing.assert_allclose(rand.S.numpy(), s[:5], rtol=1e-8)
    # same subspace and, after sign fixing, the same vectors
    np.testing.assert_allclose(np.abs(rand.U.numpy()), np.abs(full.U[:, :5].numpy()), atol=1e-6)
    np.testing.assert_allclose(rand.U.numpy(), full.U[:, :5].numpy(), atol=1e-6)


def test_svd_k_larger_than_rank_is_clipped():
    assert sc.svd(torch.randn(4, 6), k=10).S.shape == (4,)


@pytest.mark.parametrize(
    "bad, fragment",
    [
        (torch.tensor([[1.0, float("nan")], [0.0, 1.0]]), "NaN"),
        (torch.tensor([[1.0, float("inf")], [0.0, 1.0]]), "infinite"),
        (torch.zeros(0, 3), "empty"),
        (torch.zeros(3), "2-D"),
        (torch.zeros(2, 3, 4), "2-D"),
        (np.array([["a", "b"]]), "numeric"),
        ([[1.0, 2.0]], "torch.Tensor or numpy"),
        (torch.zeros(2, 2, dtype=torch.complex64), "complex"),
    ],
)
def test_bad_input_raises_data_error(bad, fragment):
    with pytest.raises(sc.DataError, match=fragment):
        sc.svd(bad)


def test_bad_k():
    with pytest.raises(sc.DataError, match="positive integer"):
        sc.svd(torch.randn(3, 3), k=0)
    with pytest.raises(sc.DataError, match="method"):
        sc.svd(torch.randn(3, 3), method="magic")


def test_rank_deficient_condition_number_and_ranks():
    rng = np.random.default_rng(5)
    B = rng.standard_normal((30, 4))
    C = rng.standard_normal((4, 20))
    A = B @ C  # rank 4
    s = np.linalg.svd(A, compute_uv=False)
    assert sc.numerical_rank(A) == 4 == np.linalg.matrix_rank(A)
    assert sc.condition_number(A) == pytest.approx(s[0] / s[3], rel=1e-10)
    # full rank: equals numpy's 2-norm condition number
    F = rng.standard_normal((12, 9))
    assert sc.condition_number(F) == pytest.approx(np.linalg.cond(F), rel=1e-10)
    assert math.isnan(sc.condition_number(np.zeros((3, 3))))


def test_effective_and_stable_rank():
    # equal singular values -> effective rank == rank == stable rank
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((10, 10)))
    A = Q[:, :6] @ np.diag([2.0] * 6) @ Q[:6, :]
    assert sc.effective_rank(A) == pytest.approx(6.0, rel=1e-9)
    assert sc.stable_rank(A) == pytest.approx(6.0, rel=1e-9)
    # against the definitions on a random matrix
    R = _rand(15, 8, seed=9)
    s = np.linalg.svd(R, compute_uv=False)
    p = s / s.sum()
    assert sc.effective_rank(R) == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-10)
    assert sc.stable_rank(R) == pytest.approx((s**2).sum() / s[0] ** 2, rel=1e-10)
    assert 1.0 <= sc.effective_rank(R) <= 8.0
    assert sc.effective_rank(np.zeros((3, 2))) == 0.0
    assert sc.stable_rank(np.zeros((3, 2))) == 0.0


def test_spectrum_summary_from_matrix_and_from_values():
    A = _rand(40, 16, seed=2)
    summ = sc.spectrum_summary(A)
    s = np.linalg.svd(A, compute_uv=False)
    np.testing.assert_allclose(summ.singular_values, s, rtol=1e-12)
    assert summ.cumulative_energy[-1] == pytest.approx(1.0)
    assert bool(np.all(np.diff(summ.cumulative_energy) >= 0))
    assert summ.frobenius_norm**2 == pytest.approx((s**2).sum())
    assert summ.frobenius_norm == pytest.approx(np.linalg.norm(A))
    assert summ.spectral_norm == pytest.approx(np.linalg.norm(A, 2))
    assert summ.numerical_rank == 16
    assert summ.shape == (40, 16)
    again = sc.spectrum_summary(s[::-1].copy(), shape=(40, 16))
    np.testing.assert_allclose(again.singular_values, s)
    assert again.condition_number == pytest.approx(summ.condition_number)
    with pytest.raises(sc.DataError, match="shape"):
        sc.spectrum_summary(s)
    with pytest.raises(sc.DataError, match="non-negative"):
        sc.spectrum_summary(np.array([1.0, -1.0]), shape=(2, 2))


# ----------------------------------------------------------------- top_spectrum
def test_top_spectrum_brackets_the_true_values():
    from svdcore.spectrum import top_spectrum

    rng = np.random.default_rng(7)
    W = rng.standard_normal((900, 700))
    W[:, :40] *= 8.0  # a gap after 40 values, flat below it
    truth = np.linalg.svd(W, compute_uv=False)
    top = top_spectrum(W, 24, seed=3)
    assert not top.exact and top.sketch == 68 and top.singular_values.shape == (24,)
    s = top.singular_values
    assert np.all(s <= truth[:24] * (1 + 1e-9))  # Ritz values from a projection: lower bounds
    assert np.all(truth[:24] <= top.upper * (1 + 1e-6))  # Weyl with the residual estimate
    np.testing.assert_allclose(s, truth[:24], rtol=1e-6)
    assert top.frobenius_norm == pytest.approx(np.linalg.norm(W), rel=1e-12)
    assert top.captured_energy == pytest.approx(np.sum(s**2) / np.sum(truth**2), rel=1e-12)
    # the residual of a 68-column sketch is near sigma_69 from above
    assert truth[68] * 0.98 <= top.residual_norm <= truth[40] * 1.01
    assert 0 < top.max_relative_error < 1
    # a singular value lies within each Ritz residual of s_i (here: sigma_i itself)
    assert np.all(np.abs(truth[:24] - s) <= top.ritz_residual * (1 + 1e-6) + 1e-12)
    assert top.max_relative_residual < 1e-3 < top.max_relative_error
    again = top_spectrum(W, 24, seed=3)
    np.testing.assert_array_equal(again.singular_values, s)


def test_top_spectrum_is_exact_for_small_or_low_rank_matrices():
    from svdcore.spectrum import top_spectrum

    rng = np.random.default_rng(8)
    small = rng.standard_normal((30, 20))
    t = top_spectrum(small, 5)
    assert t.exact and t.residual_norm == 0.0 and t.max_relative_error == 0.0
    assert t.max_relative_residual == 0.0
    np.testing.assert_allclose(t.singular_values, np.linalg.svd(small, compute_uv=False)[:5])
    low = rng.standard_normal((500, 6)) @ rng.standard_normal((6, 400))
    t = top_spectrum(low, 6)
    np.testing.assert_allclose(t.singular_values, np.linalg.svd(low, compute_uv=False)[:6])
    assert t.residual_norm < 1e-9 * t.singular_values[0]


@pytest.mark.parametrize(
    "W, k, fragment",
    [
        (np.zeros((4, 4)), 0, "positive integer"),
        (np.full((4, 4), np.nan), 2, "NaN"),
        (np.zeros(4), 2, "2-D"),
    ],
)
def test_top_spectrum_bad_input(W, k, fragment):
    from svdcore.spectrum import top_spectrum

    with pytest.raises(sc.DataError, match=fragment):
        top_spectrum(W, k)


# ------------------------------------------------------------------ canonical_signs
@pytest.mark.parametrize("kind", ["torch", "numpy"])
def test_canonical_signs_invariant_and_reconstruction(kind):
    rng = np.random.default_rng(3)
    W = rng.standard_normal((12, 7))
    U, S, Vh = np.linalg.svd(W, full_matrices=False)
    U, Vh = -U, -Vh  # some arbitrary signs to undo
    if kind == "torch":
        U, S, Vh = (torch.from_numpy(a) for a in (U, S, Vh))
    U2, Vh2 = canonical_signs(U, Vh)
    assert type(U2) is type(U) and type(Vh2) is type(Vh)
    U2n = np.asarray(U2)
    Vh2n = np.asarray(Vh2)
    idx = np.abs(U2n).argmax(axis=0)
    assert (U2n[idx, np.arange(U2n.shape[1])] >= 0).all()
    np.testing.assert_allclose((U2n * np.asarray(S)) @ Vh2n, W, atol=1e-12, rtol=0)
    # each column is the original up to a sign of +-1
    ratio = U2n / np.asarray(U)
    np.testing.assert_allclose(np.abs(ratio), 1.0, atol=1e-12, rtol=0)


def test_canonical_signs_without_vh_and_zero_column():
    U = torch.tensor([[0.0, -3.0, 1.0], [0.0, 2.0, -1.0]])
    U2, Vh2 = canonical_signs(U)
    assert Vh2 is None
    torch.testing.assert_close(U2, torch.tensor([[0.0, 3.0, 1.0], [0.0, -2.0, -1.0]]))
    Un, _ = canonical_signs(U.numpy())
    np.testing.assert_allclose(Un, U2.numpy(), atol=0, rtol=0)


def test_canonical_signs_is_idempotent_and_matches_svd():
    A = torch.randn(9, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    res = svd(A)
    U2, Vh2 = canonical_signs(res.U, res.Vh)
    torch.testing.assert_close(U2, res.U, atol=0, rtol=0)
    torch.testing.assert_close(Vh2, res.Vh, atol=0, rtol=0)


# ------------------------------------------------------------------ one rank tolerance
def test_resolve_rtol_default_and_checks():
    assert resolve_rtol(None, (40, 20), torch.float32) == pytest.approx(
        40 * np.finfo(np.float32).eps, rel=1e-12
    )
    assert resolve_rtol(1e-3, (4, 4)) == pytest.approx(1e-3, rel=1e-12)
    for bad in (-1.0, 1.0, float("nan"), "x", True):
        with pytest.raises(DataError, match="rtol"):
            resolve_rtol(bad, (3, 3))
    with pytest.raises(DataError, match="rtol"):
        numerical_rank(np.eye(3), rtol=2.0)


def test_rank_from_and_condition_from():
    S = torch.tensor([4.0, 2.0, 1e-9, 0.0], dtype=torch.float64)
    assert rank_from(S, 1e-6) == 2
    assert condition_from(S, 2) == pytest.approx(2.0, rel=1e-12)
    assert rank_from(torch.zeros(3), 1e-6) == 0
    assert np.isnan(condition_from(S, 0))


@pytest.mark.parametrize("shape", [(1, 300), (300, 1), (300, 260), (260, 300), (700, 300)])
@pytest.mark.parametrize("method", ["auto", "gram", "svd"])
def test_singular_values_match_numpy_float64(shape, method):
    """Both routes against numpy's float64 SVD, to 1e-10 s_1 absolute (the Gram route's
    error is ~1e-16 s_1^2 / s_i), with a planted spread of six decades."""
    rng = np.random.default_rng(3)
    m, n = shape
    r = min(m, n)
    U, _ = np.linalg.qr(rng.standard_normal((m, r)))
    V, _ = np.linalg.qr(rng.standard_normal((n, r)))
    planted = np.logspace(0, -6, r)
    W = (U * planted) @ V.T
    s = sc.singular_values(torch.from_numpy(W), method=method)
    assert s.dtype == torch.float64 and s.shape == (r,) and s.device.type == "cpu"
    want = np.linalg.svd(W, compute_uv=False)
    np.testing.assert_allclose(s.numpy(), want, rtol=0, atol=1e-10)
    assert bool((s[:-1] >= s[1:]).all())
    assert float((s**2).sum()) == pytest.approx(float((W**2).sum()), rel=1e-12)


def test_singular_values_of_a_rank_deficient_layer_and_bad_input():
    """A rank-3 400 x 300 matrix: the Gram route gives 297 values at the float64 noise
    floor (~sqrt(eps64) s_1 at most), far below the rank tolerance, so the rank is 3."""
    rng = np.random.default_rng(0)
    W = torch.from_numpy(rng.standard_normal((400, 3)) @ rng.standard_normal((3, 300)))
    s = sc.singular_values(W, method="gram")
    assert float(s[3]) < 1e-7 * float(s[0])
    summary = sc.spectrum_summary(W.float())
    assert summary.numerical_rank == 3
    with pytest.raises(DataError, match="NaN"):
        sc.singular_values(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))
    with pytest.raises(DataError, match="method"):
        sc.singular_values(W, method="qr")


def test_spectrum_summary_of_a_large_layer_takes_the_gram_route():
    """Above GRAM_MIN_SIDE the summary's values are the Gram ones, which agree with the
    float64 SVD to 1e-12 relative for a well-conditioned layer."""
    from svdcore.spectrum import GRAM_MIN_SIDE

    torch.manual_seed(0)
    W = torch.randn(GRAM_MIN_SIDE + 40, GRAM_MIN_SIDE + 1)
    summary = sc.spectrum_summary(W)
    want = torch.linalg.svdvals(W.double()).numpy()
    np.testing.assert_allclose(summary.singular_values, want, rtol=1e-12)
