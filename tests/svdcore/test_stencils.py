"""svdcore.stencils: the trigonometric basis (Sule eq. 20), Fourier and finite stencils."""

import numpy as np
import pytest

import svdcore as sc
from svdcore.stencils import make_stencil, second_derivative, trig_basis


@pytest.mark.parametrize("m", [1, 2, 5, 8, 9, 16])
def test_trig_basis_is_orthonormal_and_follows_eq_20(m):
    T = trig_basis(m).numpy()
    np.testing.assert_allclose(T.T @ T, np.eye(m), atol=1e-12)
    l_idx = np.arange(m)
    for k in range(m):
        if m % 2 == 0 and k == m - 1:
            ref = np.cos(np.pi * l_idx)  # eq. (20) gives sin(pi l) = 0 here: Nyquist cosine
        elif k % 2 == 0:
            ref = np.cos(np.pi * l_idx * k / m)
        else:
            ref = np.sin(np.pi * l_idx * (k + 1) / m)
        np.testing.assert_allclose(T[:, k], ref / np.linalg.norm(ref), atol=1e-12)


def _trefethen_d2(n):
    """Trefethen, Spectral Methods in MATLAB (p. 20 and Program 8), periodic D2 on n points."""
    h = 2 * np.pi / n
    D = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i == j:
                D[i, j] = -(np.pi**2) / (3 * h**2) + (-1 / 6 if n % 2 == 0 else 1 / 12)
            else:
                x = (i - j) * h / 2
                sgn = (-1) ** (i - j)
                D[i, j] = -0.5 * sgn / (np.sin(x) ** 2 if n % 2 == 0 else np.sin(x) * np.tan(x))
    return D


@pytest.mark.parametrize("n", [4, 7, 10, 33])
def test_fourier_stencil_is_trefethens_d2_and_exact_on_trig_polynomials(n):
    D = second_derivative(n, kind="fourier").numpy()
    np.testing.assert_allclose(D, _trefethen_d2(n), atol=1e-10 * n**2)
    x = 2 * np.pi * np.arange(n) / n
    for k in range(1, (n - 1) // 2 + 1):
        np.testing.assert_allclose(D @ np.sin(k * x), -(k**2) * np.sin(k * x), atol=1e-9 * n**2)
        np.testing.assert_allclose(D @ np.cos(k * x), -(k**2) * np.cos(k * x), atol=1e-9 * n**2)
    # the trig basis diagonalises it with eigenvalues -k^2, in ascending |k|
    T = trig_basis(n).numpy()
    lam = np.diag(T.T @ D @ T)
    k = (np.arange(n) + 1) // 2
    if n % 2 == 0:
        k[-1] = n // 2
    np.testing.assert_allclose(lam, -(k**2), atol=1e-9 * n**2)


def test_finite_stencil():
    D = second_derivative(6, kind="finite").numpy()
    assert D.shape == (4, 6)
    np.testing.assert_array_equal(D[1], [0, 1, -2, 1, 0, 0])
    grid = np.arange(6.0)
    np.testing.assert_allclose(D @ grid**2, 2.0)  # exact second derivative of a quadratic
    np.testing.assert_allclose(D @ (3 * grid + 1), 0.0, atol=1e-12)
    st = make_stencil("finite", 6)
    M = D.T @ D
    Q, mu = st.eigenvectors.numpy(), st.eigenvalues.numpy()
    np.testing.assert_allclose(Q.T @ Q, np.eye(6), atol=1e-12)
    np.testing.assert_allclose(M @ Q, Q * mu, atol=1e-10)
    assert np.all(np.diff(mu) >= -1e-12) and mu[0] == mu[1] == 0.0
    with pytest.raises(sc.DataError, match="n >= 3"):
        second_derivative(2, kind="finite")
    with pytest.raises(sc.DataError, match="unknown stencil kind"):
        second_derivative(5, kind="chebyshev")


def test_stencils_are_reexported_where_users_import_them():
    import importlib

    d = importlib.import_module("svdcore.descramble")  # sc.descramble is the function
    assert d.make_stencil is make_stencil and sc.trig_basis is trig_basis
    assert sc.second_derivative is second_derivative
