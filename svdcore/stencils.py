"""Derivative stencils and the trigonometric basis that descramblers measure smoothness with.

``second_derivative(n, kind="fourier")`` is the periodic spectral second-derivative matrix
(Trefethen; eigenvalues -k^2, diagonalised by ``trig_basis(n)``, Sule et al. eq. 20);
``kind="finite"`` the (n - 2) x n second difference [1, -2, 1]. ``make_stencil`` resolves a
kind or a custom matrix D into a :class:`Stencil` holding ``M = D^T D`` and its
eigen-decomposition (ascending eigenvalues, eigenvectors in :func:`canonical_signs`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ._validate import as_matrix
from .exceptions import DataError
from .spectrum import canonical_signs

__all__ = ["Stencil", "StencilKind", "make_stencil", "second_derivative", "trig_basis"]

StencilKind = Literal["fourier", "finite"]


def _frequencies(m: int) -> np.ndarray:
    """Integer frequency of each column of :func:`trig_basis` (0, 1, 1, 2, 2, ...)."""
    k = np.arange(m)
    return (k + 1) // 2


def trig_basis(m: int, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The trigonometric basis T of Sule et al. eq. (20), orthonormalised; shape (m, m).

    Column k, entry l (0-based): ``cos(pi l k / m)`` for even k, ``sin(pi l (k + 1) / m)``
    for odd k, i.e. frequencies 0, 1, 1, 2, 2, ... in order of increasing smoothness
    (constant, sin 1, cos 1, sin 2, cos 2, ...), each column scaled to unit norm. For even m
    the last column of eq. (20) is sin(pi l) = 0; it is replaced by the Nyquist cosine
    (-1)^l, the unit vector that completes the basis. Invariant: ``T^T T = I``.

    T diagonalises the periodic second derivative: the columns are eigenvectors of
    ``second_derivative(m, kind="fourier")`` with eigenvalues -k^2 (k = frequency).
    """
    if not isinstance(m, int | np.integer) or m < 1:
        raise DataError(f"trig_basis needs a positive integer size, got {m!r}.")
    m = int(m)
    l_idx = np.arange(m)[:, None].astype(np.float64)
    k = np.arange(m)[None, :]
    T = np.where(k % 2 == 0, np.cos(np.pi * l_idx * k / m), np.sin(np.pi * l_idx * (k + 1) / m))
    if m % 2 == 0:
        T[:, -1] = np.cos(np.pi * l_idx[:, 0])  # Nyquist: (-1)^l
    T /= np.linalg.norm(T, axis=0, keepdims=True)
    return torch.from_numpy(T).to(dtype)


def _fourier_eigen(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues -k^2 and orthonormal eigenvectors (trig basis) of the periodic D2."""
    k = _frequencies(n).astype(np.float64)
    if n % 2 == 0:
        k[-1] = n / 2  # the Nyquist column
    return -(k**2), trig_basis(n).numpy()


def second_derivative(
    n: int, *, kind: StencilKind = "fourier", dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """A second-derivative stencil D on n equispaced points.

    - ``"fourier"``: the periodic spectral second-derivative matrix (Trefethen, *Spectral
      Methods in MATLAB*, ch. 3), shape (n, n), symmetric, eigenvalues -k^2 for the
      frequencies k of :func:`trig_basis` (-(n/2)^2 for the Nyquist mode of even n); exact on
      trigonometric polynomials of degree < n/2. Built as T diag(-k^2) T^T.
    - ``"finite"``: the (n-2) x n second-difference matrix with rows [1, -2, 1].

    Unit grid spacing for "finite"; period n (spacing 2 pi / n) for "fourier".
    """
    if not isinstance(n, int | np.integer) or n < 1:
        raise DataError(f"stencil size must be a positive integer, got {n!r}.")
    n = int(n)
    if kind == "fourier":
        lam, T = _fourier_eigen(n)
        D = (T * lam) @ T.T
    elif kind == "finite":
        if n < 3:
            raise DataError(f"the finite second-difference stencil needs n >= 3, got {n}.")
        D = np.zeros((n - 2, n))
        idx = np.arange(n - 2)
        D[idx, idx], D[idx, idx + 1], D[idx, idx + 2] = 1.0, -2.0, 1.0
    else:
        raise DataError(f"unknown stencil kind {kind!r}; choose 'fourier' or 'finite'.")
    return torch.from_numpy(D).to(dtype)


@dataclass(frozen=True)
class Stencil:
    """A stencil D (p x n) with the eigen-decomposition of M = D^T D, eigenvalues ascending.

    For ``kind="fourier"`` the eigenvectors are the trigonometric basis exactly (so the
    degenerate sin/cos pairs are not rotated arbitrarily); for ``"finite"`` the null space
    {constant, linear} is spanned by orthonormalised polynomials, the rest from ``eigh``.
    """

    D: torch.Tensor
    kind: str
    eigenvalues: torch.Tensor
    eigenvectors: torch.Tensor
    M: torch.Tensor

    @property
    def n(self) -> int:
        return int(self.D.shape[1])


def make_stencil(
    kind_or_matrix: StencilKind | torch.Tensor | np.ndarray | Stencil, n: int
) -> Stencil:
    """Resolve ``"fourier"``, ``"finite"``, a custom (p x n) matrix D, or a Stencil, for width n.

    Named stencils are built once per (kind, n) and shared: treat their tensors as read-only.
    """
    if isinstance(kind_or_matrix, Stencil):
        if kind_or_matrix.n != n:
            raise DataError(f"the stencil acts on {kind_or_matrix.n} points, the signals on {n}.")
        return kind_or_matrix
    if isinstance(kind_or_matrix, str):
        if kind_or_matrix not in ("fourier", "finite"):
            raise DataError(
                f"unknown stencil kind {kind_or_matrix!r}; choose 'fourier' or 'finite'."
            )
        return _named_stencil(kind_or_matrix, int(n))
    D = as_matrix(kind_or_matrix, what="stencil", dtype=torch.float64)
    if D.shape[1] != n:
        raise DataError(f"stencil D has {D.shape[1]} columns but the signals have {n} rows.")
    M = D.T @ D
    mu, Q = torch.linalg.eigh(M)
    return Stencil(D, "custom", mu, canonical_signs(Q)[0], M)


@functools.lru_cache(maxsize=32)
def _named_stencil(kind: str, n: int) -> Stencil:
    D = second_derivative(n, kind=kind)  # validates n
    if kind == "fourier":
        lam, T = _fourier_eigen(n)
        mu = torch.from_numpy(lam**2)
        order = torch.argsort(mu, stable=True)
        Q = torch.from_numpy(T)[:, order]
        return Stencil(D, "fourier", mu[order], Q, (Q * mu[order]) @ Q.T)
    M = D.T @ D
    mu, Q = torch.linalg.eigh(M)
    # the null space of the second difference (constant and linear functions), made canonical
    grid = torch.arange(n, dtype=torch.float64)
    poly, _ = torch.linalg.qr(torch.stack([torch.ones(n, dtype=torch.float64), grid], 1))
    Q = torch.cat([canonical_signs(poly)[0], canonical_signs(Q[:, 2:])[0]], dim=1)
    mu = torch.cat([torch.zeros(2, dtype=torch.float64), mu[2:]])
    return Stencil(D, "finite", mu, Q, M)
