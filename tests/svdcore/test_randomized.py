"""svdcore.randomized.operator_svd: top-k triplets of matrix-free operators against numpy's
float64 SVD (values, subspace angles, residuals), seeding, the exact fallback, edge shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import svdcore as sc
from svdcore.jacobian import network_operator
from svdcore.randomized import DenseOperator, operator_svd


def _decaying(m: int, n: int, *, rate: float = 0.7, seed: int = 0) -> torch.Tensor:
    """A matrix with singular values rate**i (well separated), random singular vectors."""
    g = torch.Generator().manual_seed(seed)
    r = min(m, n)
    U = torch.linalg.qr(torch.randn(m, r, generator=g, dtype=torch.float64))[0]
    V = torch.linalg.qr(torch.randn(n, r, generator=g, dtype=torch.float64))[0]
    return U @ torch.diag(rate ** torch.arange(r, dtype=torch.float64)) @ V.T


def _max_angle(A: np.ndarray, B: np.ndarray) -> float:
    """Largest principal angle (radians) between the column spans of A and B."""
    s = np.linalg.svd(np.linalg.qr(A)[0].T @ np.linalg.qr(B)[0], compute_uv=False)
    return float(np.arccos(np.clip(s.min(), -1.0, 1.0)))


@pytest.mark.parametrize("shape", [(120, 90), (60, 140)])  # tall and wide
def test_top_k_matches_the_dense_svd(shape):
    A = _decaying(*shape)
    res = operator_svd(DenseOperator(A), 8, oversample=10, power_iterations=2)
    U, s, Vt = np.linalg.svd(A.numpy(), full_matrices=False)
    assert not res.exact and res.sketch == 18 * 3  # three Krylov blocks
    np.testing.assert_allclose(res.S.numpy(), s[:8], rtol=1e-6)
    for i in range(8):  # each singular direction (values differ by a factor 1/0.7)
        assert _max_angle(res.V[:, i : i + 1].numpy(), Vt[i : i + 1].T) < 1e-4
        assert _max_angle(res.U[:, i : i + 1].numpy(), U[:, i : i + 1]) < 1e-4
    np.testing.assert_allclose(res.U.T @ res.U, np.eye(8), atol=1e-12)
    np.testing.assert_allclose(res.V.T @ res.V, np.eye(8), atol=1e-12)
    # residuals: as defined, and small for converged triplets
    left = np.linalg.norm(A.numpy() @ res.V.numpy() - res.U.numpy() * res.S.numpy(), axis=0)
    right = np.linalg.norm(A.numpy().T @ res.U.numpy() - res.V.numpy() * res.S.numpy(), axis=0)
    np.testing.assert_allclose(res.residuals.numpy(), np.sqrt((left**2 + right**2) / 2), atol=1e-12)
    assert float(res.residuals.max()) < 1e-6


def test_signs_follow_the_convention_and_the_seed_repeats():
    A = _decaying(50, 40)
    a = operator_svd(DenseOperator(A), 5, seed=3)
    b = operator_svd(DenseOperator(A), 5, seed=3)
    assert torch.equal(a.U, b.U) and torch.equal(a.S, b.S) and torch.equal(a.V, b.V)
    idx = a.V.abs().argmax(dim=0)
    assert (a.V[idx, torch.arange(5)] > 0).all()
    np.testing.assert_allclose((a.U * a.S) @ a.V.T, A.numpy(), atol=a.S[-1].item() * 1.5)
    state = torch.random.get_rng_state()
    operator_svd(DenseOperator(A), 5, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global stream is untouched


def test_a_sketch_covering_the_rank_is_the_exact_svd():
    A = _decaying(30, 12)
    res = operator_svd(DenseOperator(A), 6, oversample=10)  # 12 columns cover the rank
    s = np.linalg.svd(A.numpy(), compute_uv=False)
    assert res.exact and res.sketch == 12
    np.testing.assert_allclose(res.S.numpy(), s[:6], rtol=1e-12)
    assert float(res.residuals.abs().max()) == 0.0


@pytest.mark.parametrize("shape", [(1, 9), (9, 1)])
def test_vectors_and_columns(shape):
    A = torch.arange(1.0, 10.0, dtype=torch.float64).reshape(shape)
    res = operator_svd(DenseOperator(A), 3)
    assert res.S.shape == (1,) and res.S.item() == pytest.approx(float(A.norm()), rel=1e-12)


def test_rank_deficient_operator_gives_its_nonzero_values():
    g = torch.Generator().manual_seed(1)
    A = torch.randn(80, 3, generator=g, dtype=torch.float64) @ torch.randn(
        3, 70, generator=g, dtype=torch.float64
    )
    res = operator_svd(DenseOperator(A), 5, oversample=5, power_iterations=2)
    assert not res.exact  # the Krylov space saturates at rank 3: still the right values
    s = np.linalg.svd(A.numpy(), compute_uv=False)
    np.testing.assert_allclose(res.S.numpy()[:3], s[:3], rtol=1e-10)
    assert float(res.S[3:].max()) < 1e-10 * s[0]


def test_bad_options_are_sentences():
    op = DenseOperator(torch.eye(3, dtype=torch.float64))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(sc.DataError, match="k must be a positive integer"):
            operator_svd(op, bad)
    with pytest.raises(sc.DataError, match="power_iterations must be a non-negative"):
        operator_svd(op, 1, power_iterations=-1)
    with pytest.raises(sc.DataError, match="2-D"):
        DenseOperator(torch.ones(3))


def test_a_network_jacobian_without_forming_it():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(40, 64), nn.Tanh(), nn.Linear(64, 30)).eval()
    net = sc.Network.from_module(module, input_shape=(40,))
    x = torch.randn(40)
    op = network_operator(net, x)
    dense = op.dense().numpy()
    res = operator_svd(op, 4, oversample=1, power_iterations=4)  # 25 of 30 columns
    s = np.linalg.svd(dense, compute_uv=False)
    assert not res.exact
    np.testing.assert_allclose(res.S.numpy(), s[:4], rtol=1e-6)


def test_progress_counts_every_block_step_and_a_stop_cancels():
    A = _decaying(60, 40)
    seen: list[tuple[int, int]] = []
    operator_svd(DenseOperator(A), 3, power_iterations=2, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]  # first block, 2 iterations, Rayleigh-Ritz
    asked = []

    def stop() -> bool:
        asked.append(True)
        return len(asked) > 2  # let the first block and one iteration run

    with pytest.raises(sc.ExecutionError, match="cancelled"):
        operator_svd(DenseOperator(_decaying(200, 150)), 3, power_iterations=4, should_stop=stop)
    assert len(asked) == 3


def test_the_ritz_value_stopping_rule_ends_converged_runs_early_and_only_those():
    A = _decaying(300, 200, rate=0.5)  # the top 6 converge in a block or two
    full = operator_svd(DenseOperator(A), 6, oversample=4, power_iterations=8)
    assert full.iterations == 8
    early = operator_svd(DenseOperator(A), 6, oversample=4, power_iterations=8, tol=1e-12)
    assert 1 <= early.iterations < 8 and early.sketch == 10 * (early.iterations + 1)
    s = np.linalg.svd(A.numpy(), compute_uv=False)
    np.testing.assert_allclose(early.S.numpy(), s[:6], rtol=1e-10)
    assert float(early.residuals.max()) < 1e-8 * s[0]
    # a flat spectrum (values 0.999^i): the Ritz values still move, every iteration runs
    flat = _decaying(300, 200, rate=0.999)
    slow = operator_svd(DenseOperator(flat), 6, oversample=4, power_iterations=3, tol=1e-12)
    assert slow.iterations == 3
    # without tol the result is the fixed-iteration one, to the last bit
    again = operator_svd(DenseOperator(A), 6, oversample=4, power_iterations=8, tol=None)
    assert torch.equal(again.S, full.S) and torch.equal(again.U, full.U)
    for bad in (0, 1, -1e-3, "1e-6"):
        with pytest.raises(sc.DataError, match="tol must be a number"):
            operator_svd(DenseOperator(A), 6, tol=bad)
