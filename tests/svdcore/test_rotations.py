"""svdcore.rotations: Riemannian L-BFGS on SO(n) reaches the closed-form optima (smoothness,
maximum diagonal sum), its gradient and preconditioner are what they claim, edge shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import svdcore as sc
from svdcore.descramble import descramble, make_stencil, mds_descrambler, smoothness
from svdcore.rotations import brockett, cayley, minimize_on_rotations, skew


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _scrambled_signals(n: int, N: int, seed: int) -> torch.Tensor:
    """Smooth low-rank signals, rows scrambled by a random rotation, plus noise: the bench's
    problem (a Gram matrix whose eigenvalues spread over four decades)."""
    rng = _rng(seed)
    t = np.linspace(0, 1, n)[:, None]
    f = rng.uniform(0, 6, (1, 8))
    basis = np.concatenate([np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)], 1)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    Y = Q @ basis @ rng.standard_normal((16, N)) + 0.1 * rng.standard_normal((n, N))
    return torch.from_numpy(Y)


@pytest.mark.parametrize(
    "n, N, stencil", [(48, 2000, "fourier"), (48, 2000, "finite"), (30, 12, "fourier")]
)
def test_the_iterative_descrambler_reaches_the_exact_optimum(n, N, stencil):
    Y = _scrambled_signals(n, N, seed=n + N)  # (30, 12): rank-deficient, wide Gram
    exact = descramble(Y, stencil=stencil)
    it = descramble(Y, stencil=stencil, method="iterative", steps=2000)
    assert it.converged and not it.cancelled and it.steps < 2000
    assert it.objective >= exact.objective * (1 - 1e-9)  # never below the closed form
    # the default stopping rule (relative change <= 1e-7 over 10 steps) ends within 1e-5 of it;
    # the issue asks for 1e-3
    assert it.objective <= exact.objective * (1 + 1e-5)
    P = it.P.numpy()
    np.testing.assert_allclose(P.T @ P, np.eye(n), atol=1e-10)
    assert np.linalg.det(P) == pytest.approx(1.0, abs=1e-9)  # started at I: SO(n)
    # the Cayley trivialisation with Adam, the first method, stops far above it
    adam = descramble(Y, stencil=stencil, method="iterative", optimizer="adam", steps=300)
    assert adam.objective > it.objective


def test_the_iterative_descrambler_on_deernet_signals():
    net = sc.zoo.load("deernet")
    x, _ = sc.zoo.get("deernet").make_data(n=2000, seed=3)
    Y = net.activations(x, ["act1"])["act1"].double().T.contiguous()
    exact = descramble(Y)
    it = descramble(Y, method="iterative")
    assert it.converged and it.objective == pytest.approx(exact.objective, rel=1e-6)


def test_maximum_diagonal_sum_reaches_its_closed_form_without_a_preconditioner():
    W = torch.from_numpy(_rng(1).standard_normal((20, 20)))
    closed = mds_descrambler(W)
    it = descramble(weights=W, criterion="mds", method="iterative", steps=1000)
    assert it.converged and it.objective == pytest.approx(closed.objective, rel=1e-8)
    assert it.objective <= closed.objective * (1 + 1e-12)
    # maximum diagonal norm^2 (no closed form): at least what Adam finds in as many steps
    riem = descramble(weights=W, criterion="max_diagonal_norm", method="iterative", steps=1000)
    adam = descramble(
        weights=W, criterion="max_diagonal_norm", method="iterative", optimizer="adam", steps=1000
    )
    assert riem.objective >= adam.objective * (1 - 1e-6)


def test_the_riemannian_gradient_is_the_slope_along_cayley_curves():
    rng = _rng(2)
    n = 7
    Y = torch.from_numpy(rng.standard_normal((n, 40)))
    crit = smoothness(make_stencil("fourier", n), Y @ Y.T)
    P = cayley(skew(torch.from_numpy(rng.standard_normal((n, n)))))
    leaf = P.clone().requires_grad_(True)
    (G,) = torch.autograd.grad(crit(leaf), leaf)
    g = skew(P.T @ G)
    xi = skew(torch.from_numpy(rng.standard_normal((n, n))))
    h = 1e-6
    fd = (float(crit(P @ cayley(h * xi))) - float(crit(P @ cayley(-h * xi)))) / (2 * h)
    assert float((g * xi).sum()) == pytest.approx(fd, rel=1e-6)
    Q = cayley(xi)
    np.testing.assert_allclose((Q.T @ Q).numpy(), np.eye(n), atol=1e-12)


def test_brockett_form_equals_the_criterion_and_its_preconditioner_is_positive():
    rng = _rng(3)
    n = 9
    Y = torch.from_numpy(rng.standard_normal((n, 30)))
    S = Y @ Y.T
    st = make_stencil("finite", n)
    problem = brockett(st.M, S)
    P = cayley(skew(torch.from_numpy(rng.standard_normal((n, n)))))
    R = problem.to_basis(P)
    assert float(problem.criterion(R)) == pytest.approx(float(smoothness(st, S)(P)), rel=1e-12)
    np.testing.assert_allclose(problem.from_basis(R).numpy(), P.numpy(), atol=1e-12)
    q = skew(torch.from_numpy(rng.standard_normal((n, n))))
    h0q = problem.preconditioner(R, 0)(q)
    assert float((q * h0q).sum()) > 0  # positive definite on so(n)
    np.testing.assert_allclose(h0q.numpy(), -h0q.T.numpy(), atol=1e-12)  # stays skew
    # the diagonal it divides by is the Hessian's: the second derivative along E_ij - E_ji
    i, j = 1, 5
    E = torch.zeros(n, n, dtype=torch.float64)
    E[i, j], E[j, i] = 1.0, -1.0

    def f(t: float) -> float:
        return float(problem.criterion(R @ torch.linalg.matrix_exp(t * E)))

    h = 1e-4
    second = (f(h) - 2 * f(0.0) + f(-h)) / h**2
    a = torch.diagonal(R.T @ st.M @ R)
    s = problem.s
    assert second == pytest.approx(float(2 * (s[i] - s[j]) * (a[j] - a[i])), rel=1e-5)


def test_edge_shapes_and_a_start_in_the_other_component():
    # n = 1: so(1) = {0}, nothing to do
    one = descramble(torch.ones(1, 5, dtype=torch.float64), method="iterative")
    assert one.steps == 0 and one.P.shape == (1, 1)
    Y = _scrambled_signals(6, 50, seed=4)
    exact = descramble(Y)
    flip = torch.eye(6, dtype=torch.float64)
    flip[0, 0] = -1.0  # det -1: the iteration stays in O(n)'s other component
    it = descramble(Y, method="iterative", init=flip)
    assert np.linalg.det(it.P.numpy()) == pytest.approx(-1.0, abs=1e-9)
    assert it.objective == pytest.approx(exact.objective, rel=1e-6)  # flips cost nothing
    with pytest.raises(sc.DataError, match="det -1"):
        descramble(Y, method="iterative", optimizer="adam", init=flip)
    with pytest.raises(sc.DataError, match="optimizer"):
        descramble(Y, method="iterative", optimizer="newton")
    with pytest.raises(sc.DataError, match="6 x 6"):
        descramble(Y, method="iterative", init=torch.eye(5))


def test_cancel_before_a_step_and_progress_after_each():
    Y = _scrambled_signals(12, 200, seed=5)
    crit = smoothness(make_stencil("fourier", 12), Y @ Y.T)
    seen: list[tuple[int, int, float]] = []
    calls: list[int] = []
    fit = minimize_on_rotations(
        crit,
        torch.eye(12, dtype=torch.float64),
        steps=100,
        progress=lambda step, total, value: seen.append((step, total, value)),
        should_stop=lambda: len(calls.append(1) or calls) > 4,
    )
    assert fit.cancelled and not fit.converged and fit.steps == 4
    assert [s[0] for s in seen] == [1, 2, 3, 4] and all(s[1] == 100 for s in seen)
    assert np.all(np.diff(fit.history) <= 0)  # the line search only accepts descent
