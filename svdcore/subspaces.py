"""The four fundamental subspaces of a weight matrix and the projections read off them.

Pattichis & Pattichis ("Understanding neural network systems for image analysis using
vector spaces"): for a layer ``y = W x`` with ``W = U diag(S) V^T`` of shape (m, n) and
numerical rank ``r``,

- row space (the *signal space*) ``= V[:, :r]`` in R^n: the input directions ``W`` sees;
- column space (*signal output space*) ``= U[:, :r]`` in R^m: the reachable outputs;
- null space (*rejected signal space*) ``= V[:, r:]`` in R^n: inputs with ``W x = 0``;
- left null space (*rejected output space*) ``= U[:, r:]`` in R^m: ``W^T y = 0``. It comes
  from ``U`` (the left singular vectors), never from ``V``.

An input splits as ``x = signal + residual`` with ``signal = V_r V_r^T x`` (the part ``W``
keeps) and ``residual = x - signal`` (the part ``W`` ignores); ``||x||^2 = ||signal||^2 +
||residual||^2`` and the *energy removed* is ``||residual||^2 / ||x||^2``. For one neuron
(row) ``w``: ``p = (w.x / w.w) w`` and ``residual = x - p`` with ``residual . w = 0``.

Numerical rank: the number of singular values above ``rtol * sigma_1``, with the default
``rtol = max(m, n) * eps`` (:func:`svdcore.spectrum.default_rtol`, numpy's ``matrix_rank``
rule) where ``eps`` is the machine epsilon of the *stored* matrix (float32 weights:
1.19e-7), whatever precision the decomposition runs in: float32 weights carry no
information below that level. Condition number ``sigma_1 / sigma_r`` over those ``r``
values (as :func:`svdcore.spectrum.condition_number`; ``nan`` for the zero matrix).

Per-class and per-neuron projections and the signal space drawn as images are in
:mod:`svdcore.projections`.

Convolutions: pass the ``"kernels"`` view ``Network.matrix(name, view="kernels")`` of
shape (out * in, k * k) (or the raw 4-D weight to :func:`signal_vectors`), one row per
kernel, so that the signal vectors are kernels (Pattichis Fig. 2).

Everything is computed in float64 by default (``precision="float32"`` for large layers)
and returned as CPU tensors of that dtype.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import numpy as np
import torch

from ._validate import as_matrix, as_real_tensor
from .exceptions import DataError
from .spectrum import canonical_signs, condition_from, rank_from, resolve_rtol

__all__ = [
    "FourSubspaces",
    "Projection",
    "project",
    "subspaces",
]

Precision = Literal["float32", "float64"]
ArrayLike = torch.Tensor | np.ndarray


class FourSubspaces(NamedTuple):
    """Orthonormal bases of the four fundamental subspaces of ``W`` (m, n) of rank ``r``.

    ``row`` (n, r) = V[:, :r], ``col`` (m, r) = U[:, :r], ``null`` (n, n - r) = V[:, r:],
    ``left_null`` (m, m - r) = U[:, r:]; ``singular_values`` (min(m, n),) descending;
    ``cond = sigma_1 / sigma_r`` (nan when r = 0); ``rtol`` the relative tolerance used.
    Invariant (checked in tests): ``[row, null]`` and ``[col, left_null]`` are orthogonal
    matrices, ``W @ null ~ 0`` and ``W^T @ left_null ~ 0``.
    """

    row: torch.Tensor
    col: torch.Tensor
    null: torch.Tensor
    left_null: torch.Tensor
    rank: int
    cond: float
    singular_values: torch.Tensor
    rtol: float

    @property
    def shape(self) -> tuple[int, int]:
        """(m, n) of the matrix these spaces belong to."""
        return int(self.col.shape[0]), int(self.row.shape[0])

    @property
    def dims(self) -> dict[str, int]:
        """Dimensions: row = col = rank, null = n - rank, left_null = m - rank."""
        return {
            "row": int(self.row.shape[1]),
            "col": int(self.col.shape[1]),
            "null": int(self.null.shape[1]),
            "left_null": int(self.left_null.shape[1]),
        }


class Projection(NamedTuple):
    """``x = signal + residual`` for inputs ``x`` of one sample (n,) or a batch (N, n).

    ``signal = V_r V_r^T x`` and ``residual`` have the shape of ``x``; ``energy_ratio =
    ||residual||^2 / ||x||^2`` is a 0-d tensor for one sample, (N,) for a batch (0 for a
    zero input: it has no energy to remove); ``coefficients = V_r^T x`` (r,) or (N, r)
    are the coordinates ``a_i = v_i . x`` in the signal space; ``rank`` = r.
    Invariant (checked in tests): ``||x||^2 = ||signal||^2 + ||residual||^2``.
    """

    signal: torch.Tensor
    residual: torch.Tensor
    energy_ratio: torch.Tensor
    coefficients: torch.Tensor
    rank: int


# ----------------------------------------------------------------------------- helpers
def _dtype(precision: Precision | None) -> torch.dtype:
    if precision not in ("float32", "float64"):
        raise DataError(f"precision must be 'float32' or 'float64', got {precision!r}.")
    return getattr(torch, precision)


def _matrix(
    W: ArrayLike, precision: Precision, what: str = "W"
) -> tuple[torch.Tensor, torch.dtype]:
    """``W`` as a finite 2-D CPU tensor in ``precision``, and its stored dtype (for eps)."""
    stored = as_matrix(W, what=what)
    eps_dtype = stored.dtype
    return stored.to(dtype=_dtype(precision), device="cpu"), eps_dtype


def _tensor(x: ArrayLike, what: str) -> torch.Tensor:
    t = as_real_tensor(x, what=what, complex_note="svdscope works with real inputs")
    return t.detach().cpu()


def _inputs(x: ArrayLike, n: int, dtype: torch.dtype, what: str = "x") -> tuple[torch.Tensor, bool]:
    """``x`` as (N, n) in ``dtype`` and whether it was one sample; shapes checked."""
    t = _tensor(x, what)
    if t.numel() == 0:
        raise DataError(f"{what} is empty (shape {tuple(t.shape)}); pass at least one sample.")
    if t.ndim == 1:
        if t.shape[0] != n:
            raise DataError(
                f"{what} has {t.shape[0]} values but the matrix has {n} columns (inputs); "
                f"pass one sample of shape ({n},) or a batch of shape (N, {n})."
            )
        single, flat = True, t.reshape(1, n)
    elif math.prod(t.shape[1:]) == n:
        single, flat = False, t.reshape(t.shape[0], n)
    elif t.numel() == n:
        single, flat = True, t.reshape(1, n)
    else:
        raise DataError(
            f"{what} of shape {tuple(t.shape)} does not fit a matrix with {n} columns "
            f"(inputs): pass one sample of {n} values or a batch of shape (N, {n})."
        )
    flat = flat.to(dtype)
    finite = torch.isfinite(flat)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        first = int((~finite).any(dim=1).nonzero()[0, 0])
        raise DataError(
            f"{what} contains {bad} NaN or infinite value(s) (first in sample {first}); "
            "clean the data before projecting."
        )
    return flat, single


def _ratio(residual: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``||residual||^2 / ||x||^2`` along the last axis; 0 where ``x`` is zero."""
    num = (residual * residual).sum(dim=-1)
    den = (x * x).sum(dim=-1)
    safe = torch.where(den > 0, den, torch.ones_like(den))
    return torch.where(den > 0, num / safe, torch.zeros_like(num))


def _row_basis(
    W: ArrayLike | FourSubspaces, *, rtol: float | None, precision: Precision
) -> tuple[torch.Tensor, int]:
    """V_r (n, r) from a matrix (thin SVD) or from precomputed :class:`FourSubspaces`."""
    if isinstance(W, FourSubspaces):
        if rtol is not None:
            raise DataError(
                "rtol applies when W is a matrix; these subspaces were computed with "
                f"rtol={W.rtol:g}: call subspaces(W, rtol=...) again to change it."
            )
        return W.row.to(_dtype(precision)), W.row.shape[0]
    A, eps_dtype = _matrix(W, precision)
    tol = resolve_rtol(rtol, tuple(A.shape), eps_dtype)
    _, S, Vh = torch.linalg.svd(A, full_matrices=False)
    r = rank_from(S, tol)
    return Vh[:r].mT.contiguous(), A.shape[1]


# ----------------------------------------------------------------------------- API
def subspaces(
    W: ArrayLike, *, rtol: float | None = None, precision: Precision = "float64"
) -> FourSubspaces:
    """Orthonormal bases of the four fundamental subspaces of ``W`` (m, n).

    From the full SVD ``W = U diag(S) V^T`` (U (m, m), V (n, n)) and the numerical rank
    ``r = #{sigma_i > rtol * sigma_1}``: ``row = V[:, :r]``, ``col = U[:, :r]``,
    ``null = V[:, r:]``, ``left_null = U[:, r:]``. ``rtol=None`` uses
    ``max(m, n) * eps`` of the stored dtype (see the module docstring). Singular-vector
    signs follow :func:`svdcore.spectrum.svd` (largest entry of each u_i positive).
    ``precision`` is the dtype of the decomposition and of the returned bases.

    Invariant (checked in tests): ``rank + null dim = n``, ``rank + left-null dim = m``,
    ``W @ null ~ 0``, ``W^T @ left_null ~ 0`` and every basis is orthonormal.

    Raises ``DataError`` for a non-2-D, empty, complex or non-finite ``W`` or a bad
    ``rtol``. Cost: a full SVD, O(m n min(m, n) + m^3 + n^3).
    """
    A, eps_dtype = _matrix(W, precision)
    tol = resolve_rtol(rtol, tuple(A.shape), eps_dtype)
    m, n = A.shape
    U, S, Vh = torch.linalg.svd(A, full_matrices=True)
    k = min(m, n)
    Uk, Vhk = canonical_signs(U[:, :k].contiguous(), Vh[:k].contiguous())
    U = torch.cat([Uk, U[:, k:]], dim=1)
    V = torch.cat([Vhk, Vh[k:]], dim=0).mT
    r = rank_from(S, tol)
    cond = condition_from(S, r)
    return FourSubspaces(
        row=V[:, :r].contiguous(),
        col=U[:, :r].contiguous(),
        null=V[:, r:].contiguous(),
        left_null=U[:, r:].contiguous(),
        rank=r,
        cond=cond,
        singular_values=S,
        rtol=tol,
    )


def project(
    W: ArrayLike | FourSubspaces,
    x: ArrayLike,
    *,
    rtol: float | None = None,
    precision: Precision = "float64",
) -> Projection:
    """Split inputs into the part ``W`` keeps (signal) and the part it ignores (residual).

    ``W`` (m, n) or the :class:`FourSubspaces` of a matrix (reuses its decomposition);
    ``x`` one sample (n,) or a batch (N, n) (also (N, *s) with prod(s) = n, e.g. images;
    results keep the shape of ``x``). ``signal = V_r V_r^T x``, ``residual = x - signal``,
    ``energy_ratio = ||residual||^2 / ||x||^2`` per sample, ``coefficients = V_r^T x``.

    Invariant (checked in tests): ``||x||^2 = ||signal||^2 + ||residual||^2`` (to 1e-10
    relative in float64) and ``signal ⟂ residual``.

    Raises ``DataError`` when ``x`` does not have n values per sample (naming both
    shapes), is empty or holds NaN/Inf, or ``W`` is unusable.
    """
    dtype = _dtype(precision)
    Vr, n = _row_basis(W, rtol=rtol, precision=precision)
    flat, single = _inputs(x, n, dtype)
    coeff = flat @ Vr
    signal = coeff @ Vr.mT
    residual = flat - signal
    ratio = _ratio(residual, flat)
    shape = tuple(_tensor(x, "x").shape)
    if single:
        return Projection(
            signal=signal[0].reshape(shape),
            residual=residual[0].reshape(shape),
            energy_ratio=ratio[0],
            coefficients=coeff[0],
            rank=int(Vr.shape[1]),
        )
    return Projection(
        signal=signal.reshape(shape),
        residual=residual.reshape(shape),
        energy_ratio=ratio,
        coefficients=coeff,
        rank=int(Vr.shape[1]),
    )
