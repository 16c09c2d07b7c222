"""Singular value decompositions and the numbers read off a spectrum.

Conventions: ``W = U diag(S) Vh`` with ``S`` descending. Signs are made deterministic: each
left singular vector is flipped so that its entry of largest magnitude is positive (and the
matching right vector with it), so CPU and GPU runs, and repeated runs, agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import torch

from ._validate import as_matrix, count
from .device import default_device
from .exceptions import DataError

__all__ = [
    "GRAM_MIN_SIDE",
    "SINGULAR_VALUES_METHODS",
    "SVDResult",
    "SpectrumSummary",
    "TopSpectrum",
    "canonical_signs",
    "condition_from",
    "condition_number",
    "default_rtol",
    "effective_rank",
    "energy_rank",
    "numerical_rank",
    "rank_from",
    "resolve_rtol",
    "singular_values",
    "spectrum_summary",
    "stable_rank",
    "svd",
    "top_spectrum",
]

SvdMethod = Literal["auto", "full", "randomized"]

# method="auto" uses the randomized truncated SVD only when k is below this fraction of
# min(m, n) AND min(m, n) is at least _RANDOMIZED_MIN_DIM: below that the exact SVD costs
# well under a second here, and the randomized one is inaccurate on the flat spectra of
# trained weights (measured on MiniLM: top-8 errors 1e-2 with q = k + 10, 4 iterations).
_RANDOMIZED_FRACTION = 0.1
_RANDOMIZED_MIN_DIM = 2048
_POWER_ITERATIONS = 6


class SVDResult(NamedTuple):
    """``W = U @ diag(S) @ Vh``.

    Shapes for ``W`` of shape (m, n) and ``r = min(m, n)`` (or ``k`` when truncated):
    ``U`` (m, r) with orthonormal columns, ``S`` (r,) descending and >= 0, ``Vh`` (r, n)
    with orthonormal rows. Tensors live on the device they were computed on.
    """

    U: torch.Tensor
    S: torch.Tensor
    Vh: torch.Tensor

    def to_numpy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(U, S, Vh)`` as CPU numpy arrays."""
        return tuple(t.detach().cpu().numpy() for t in self)  # type: ignore[return-value]

    def reconstruct(self) -> torch.Tensor:
        """``U diag(S) Vh`` (the best rank-len(S) approximation of the input)."""
        return (self.U * self.S) @ self.Vh


def canonical_signs(
    U: torch.Tensor | np.ndarray, Vh: torch.Tensor | np.ndarray | None = None
) -> tuple[Any, Any]:
    """The one sign convention for singular (and eigen) vectors in svdcore.

    Each column ``u_k`` of ``U`` is flipped so that its entry of largest magnitude is positive
    (the first such entry on ties; a zero column keeps its sign); the same flips are applied
    to the rows of ``Vh`` (when given), so ``U diag(S) Vh`` is unchanged. Works on torch
    tensors and numpy arrays alike and returns the same kind; ``Vh`` comes back as ``None``
    when it was not given. Invariant: ``U[argmax|U[:, k]|, k] >= 0`` for every k.
    """
    if isinstance(U, np.ndarray):
        idx = np.abs(U).argmax(axis=0)
        signs = np.sign(U[idx, np.arange(U.shape[1])])
        signs[signs == 0] = 1
        return U * signs, (None if Vh is None else Vh * signs[:, None])
    idx = U.abs().argmax(dim=0)
    signs = torch.sign(U.gather(0, idx[None, :]).squeeze(0))
    signs[signs == 0] = 1
    return U * signs, (None if Vh is None else Vh * signs[:, None])


def svd(
    W: torch.Tensor | np.ndarray,
    *,
    k: int | None = None,
    method: SvdMethod = "auto",
    precision: Literal["float32", "float64"] | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> SVDResult:
    """Singular value decomposition of a 2-D matrix ``W`` (m, n).

    Computed on ``device``, else on :func:`svdcore.default_device` (a GPU when torch sees
    one, or ``SVDSCOPE_DEVICE``); without an explicit ``device`` the factors come back on
    ``W``'s own device (the CPU for numpy input), so callers need not care where it ran.

    ``k=None`` gives the thin SVD (``torch.linalg.svd(full_matrices=False)``, LAPACK gesdd on
    CPU). With ``k``, only the top ``k`` triplets are returned; ``method="auto"`` then uses the
    randomized ``torch.svd_lowrank`` (Halko et al.: 2k + 20 samples, 6 power iterations,
    seeded) when ``k < 0.1 * min(m, n)`` and ``min(m, n) >= 2048``, and the exact SVD
    truncated otherwise. The randomized result is approximate: its error depends on how fast
    the spectrum decays (exact to float precision for a decaying spectrum, about 1e-4
    relative on the flat spectra of trained transformer weights).

    Invariant (checked in tests): ``U diag(S) Vh == W`` to float precision when ``k`` is None,
    ``U^T U = I`` and ``S`` is descending.

    Raises ``DataError`` for non-2-D, empty, complex or non-finite input, or a bad ``k``.
    """
    dtype = None if precision is None else getattr(torch, precision)
    home = W.device if isinstance(W, torch.Tensor) else torch.device("cpu")
    A = as_matrix(W, dtype=dtype, device=device if device is not None else default_device())
    m, n = A.shape
    r = min(m, n)
    if method not in ("auto", "full", "randomized"):
        raise DataError(f"method must be 'auto', 'full' or 'randomized', got {method!r}.")
    if k is not None:
        k = min(count(k, what="k"), r)
    use_random = method == "randomized" or (
        method == "auto"
        and k is not None
        and k < _RANDOMIZED_FRACTION * r
        and r >= _RANDOMIZED_MIN_DIM
    )
    if use_random:
        kk = k if k is not None else r
        q = min(2 * kk + 20, r)
        U, S, V = _seeded_lowrank(A, q=q, niter=_POWER_ITERATIONS, seed=seed)
        U, S, Vh = U[:, :kk], S[:kk], V[:, :kk].mT
    else:
        U, S, Vh = torch.linalg.svd(A, full_matrices=False)
        if k is not None:
            U, S, Vh = U[:, :k], S[:k], Vh[:k]
    U, Vh = canonical_signs(U.contiguous(), Vh.contiguous())
    if device is None and A.device != home:  # computed on the default device (a GPU)
        U, S, Vh = U.to(home), S.to(home), Vh.to(home)
    return SVDResult(U, S, Vh)


# Above this smaller side, `singular_values` takes the eigenvalues of the float64 Gram
# matrix (one GEMM and a symmetric eigensolver, several times faster than a bidiagonal SVD
# of a 4096 x 4096 layer); at or below it, a float64 SVD (milliseconds).
GRAM_MIN_SIDE = 256
SingularValuesMethod = Literal["auto", "gram", "svd"]
SINGULAR_VALUES_METHODS: tuple[str, ...] = ("auto", "gram", "svd")


def singular_values(
    W: torch.Tensor | np.ndarray,
    *,
    method: SingularValuesMethod = "auto",
    device: torch.device | str | None = None,
    check_finite: bool = True,
) -> torch.Tensor:
    """All min(m, n) singular values of ``W`` (m, n), float64, descending, on the CPU.

    ``method="svd"``: ``torch.linalg.svdvals`` in float64. ``method="gram"``: the square
    roots of the eigenvalues of the smaller Gram matrix W^T W or W W^T, formed in float64
    (products of float32 entries are exact in float64, so the Gram is right to float64
    round-off, ~1e-16 s_1^2): each s_i is then right to about 1e-16 s_1^2 / s_i, i.e.
    better than a float32 SVD (error ~6e-8 s_1) for every s_i above ~2e-9 s_1, far below
    any rank tolerance of float32 or narrower weights (:func:`default_rtol`); values under
    sqrt(eps64) s_1 ~ 1.5e-8 s_1 come out as ~1e-8 s_1 or 0 and mean "numerically zero".
    ``"auto"``: the Gram above :data:`GRAM_MIN_SIDE` on the smaller side, else the SVD.
    Computed on ``device`` (None: :func:`svdcore.device.default_device`, a GPU when there
    is one). Invariant (tests): ``sum(s**2) == ||W||_F^2`` to round-off, and both methods
    agree with numpy's float64 SVD. On the CPU the Gram is BLAS ``dsyrk`` (one triangle:
    half the products of a GEMM; 7.0 s -> 4.1 s for 11008 x 4096 on one thread).
    ``check_finite=False``: the caller has checked W for NaN / Inf already. Raises
    ``DataError`` as :func:`as_matrix` (NaN / Inf, empty, not 2-D) and for an unknown
    ``method``.
    """
    if method not in SINGULAR_VALUES_METHODS:
        raise DataError(
            f"method must be one of {', '.join(SINGULAR_VALUES_METHODS)}, got {method!r}."
        )
    A = as_matrix(
        W, dtype=torch.float64, device=device or default_device(), check_finite=check_finite
    )
    m, n = A.shape
    if method == "svd" or (method == "auto" and min(m, n) <= GRAM_MIN_SIDE):
        return torch.linalg.svdvals(A).cpu()
    if A.device.type == "cpu":
        G, uplo = _gram_syrk(A), "U"
    else:
        G, uplo = (A.mT @ A if m >= n else A @ A.mT), "L"
    evals = torch.linalg.eigvalsh(G, UPLO=uplo).flip(0).clamp_min(0.0)
    return evals.sqrt().cpu()


def _gram_syrk(A: torch.Tensor) -> torch.Tensor:
    """The smaller Gram matrix of a float64 CPU matrix A (m, n), its upper triangle filled
    (BLAS dsyrk on the Fortran-ordered transpose: no copy of A)."""
    from scipy.linalg.blas import dsyrk

    a = A.contiguous().numpy().T  # (n, m), Fortran-contiguous
    trans = 0 if A.shape[0] >= A.shape[1] else 1  # a a^T = A^T A, or a^T a = A A^T
    return torch.from_numpy(dsyrk(1.0, a, trans=trans, lower=0))


def default_rtol(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> float:
    """Tolerance for the numerical rank: ``max(m, n) * eps(dtype)`` (numpy's matrix_rank rule)."""
    return max(shape) * torch.finfo(dtype).eps


def resolve_rtol(
    rtol: float | None, shape: tuple[int, ...], dtype: torch.dtype = torch.float32
) -> float:
    """The one rank tolerance of svdcore: ``rtol`` checked, or :func:`default_rtol` when None.

    ``rtol`` is a fraction of ``sigma_1`` in [0, 1); ``dtype`` is the *stored* dtype of the
    matrix (its eps sets the default). Invariant: ``0 <= result < 1`` for sane shapes.
    Raises ``DataError`` for anything else (a bool, a string, nan, a negative number, >= 1).
    """
    if rtol is None:
        return default_rtol(shape, dtype)
    if isinstance(rtol, bool) or not isinstance(rtol, int | float | np.floating | np.integer):
        raise DataError(f"rtol must be a number in [0, 1) or None, got {rtol!r}.")
    value = float(rtol)
    if not math.isfinite(value) or not 0.0 <= value < 1.0:
        raise DataError(
            f"rtol must be a number in [0, 1) (a fraction of sigma_1) or None, got {rtol!r}."
        )
    return value


def rank_from(S: torch.Tensor, rtol: float) -> int:
    """Numerical rank from descending singular values ``S``: ``#{s_i > rtol * s_1}``."""
    if S.numel() == 0 or float(S[0]) == 0.0:
        return 0
    return int((S > rtol * S[0]).sum())


def condition_from(S: torch.Tensor | np.ndarray, r: int) -> float:
    """``S[0] / S[r - 1]`` (the condition number on the row space), nan when ``r == 0``."""
    return float(S[0] / S[r - 1]) if r > 0 else math.nan


def numerical_rank(W: torch.Tensor | np.ndarray, *, rtol: float | None = None) -> int:
    """Number of singular values above ``rtol * sigma_1`` (default :func:`default_rtol`)."""
    A = as_matrix(W)
    return rank_from(singular_values(A), resolve_rtol(rtol, tuple(A.shape), A.dtype))


def condition_number(W: torch.Tensor | np.ndarray, *, rtol: float | None = None) -> float:
    """``sigma_1 / sigma_r`` over the ``r`` numerically non-zero singular values.

    This is the condition number of the map restricted to its row space (Pattichis &
    Pattichis); a rank-deficient matrix is therefore not reported as infinite. The zero
    matrix has no non-zero singular value and gives ``nan``. Invariant: >= 1.
    """
    A = as_matrix(W)
    S = singular_values(A)
    return condition_from(S, rank_from(S, resolve_rtol(rtol, tuple(A.shape), A.dtype)))


def energy_rank(cumulative_energy: np.ndarray, fraction: float) -> int:
    """The fewest leading singular directions holding ``fraction`` of the energy, from the
    ascending cumulative energy shares (``SpectrumSummary.cumulative_energy``); 0 when empty."""
    energy = np.asarray(cumulative_energy)
    if energy.size == 0:
        return 0
    return int(min(np.searchsorted(energy, fraction - 1e-12) + 1, energy.size))


def _entropy_rank(S: np.ndarray) -> float:
    total = S.sum()
    if total <= 0:
        return 0.0
    p = S[S > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


def effective_rank(W: torch.Tensor | np.ndarray) -> float:
    """Entropy effective rank (Roy & Vetterli 2007): ``exp(H(p))`` with ``p_i = s_i / sum s``.

    Lies in [1, rank] for a non-zero matrix (0 for the zero matrix); equals the rank when all
    non-zero singular values are equal.
    """
    return _entropy_rank(singular_values(W).numpy())


def stable_rank(W: torch.Tensor | np.ndarray) -> float:
    """``||W||_F^2 / ||W||_2^2 = sum s_i^2 / s_1^2``; in [1, rank] (0 for the zero matrix)."""
    S = singular_values(W)
    if float(S[0]) == 0.0:
        return 0.0
    return float((S**2).sum() / S[0] ** 2)


@dataclass(frozen=True)
class SpectrumSummary:
    """What the Spectrum view shows for one matrix of shape ``shape``.

    ``singular_values`` descending (float64); ``cumulative_energy[i] = sum_{j<=i} s_j^2 /
    sum s^2`` (ends at 1); ``numerical_rank`` counts ``s > rtol * s_1``;
    ``condition_number = s_1 / s_r`` over those (nan for the zero matrix).
    """

    shape: tuple[int, int]
    singular_values: np.ndarray
    cumulative_energy: np.ndarray
    condition_number: float
    numerical_rank: int
    effective_rank: float
    stable_rank: float
    rtol: float
    frobenius_norm: float
    spectral_norm: float


def spectrum_summary(
    W_or_S: torch.Tensor | np.ndarray,
    *,
    shape: tuple[int, int] | None = None,
    rtol: float | None = None,
    method: SingularValuesMethod = "auto",
) -> SpectrumSummary:
    """Summarise a spectrum from a matrix ``W`` (2-D) or from its singular values (1-D).

    When singular values are given, ``shape`` (the matrix shape) is needed for the default
    rank tolerance. A matrix's values come from :func:`singular_values` (``method``; float64,
    the Gram route for large layers). The rank tolerance follows the *stored* dtype of W
    (float32 for half and 8-bit floats). Invariant: ``frobenius_norm**2 ==
    sum(singular_values**2)``.
    """
    if isinstance(W_or_S, np.ndarray):
        W_or_S = torch.from_numpy(np.ascontiguousarray(W_or_S))
    if isinstance(W_or_S, torch.Tensor) and W_or_S.ndim == 1:
        if shape is None:
            raise DataError("spectrum_summary needs shape=(m, n) when given singular values.")
        S = W_or_S.detach().double().cpu()
        if S.numel() == 0 or not bool(torch.isfinite(S).all()) or bool((S < 0).any()):
            raise DataError("singular values must be a non-empty, finite, non-negative vector.")
        S = torch.sort(S, descending=True).values
        eps_dtype = torch.float32
    else:
        A = as_matrix(W_or_S)
        shape = (int(A.shape[0]), int(A.shape[1]))
        eps_dtype = A.dtype
        S = singular_values(A, method=method, check_finite=False)  # as_matrix checked A
    s = S.numpy()
    tol = resolve_rtol(rtol, shape, eps_dtype)
    r = rank_from(S, tol)
    energy = s**2
    total = energy.sum()
    cumulative = np.cumsum(energy) / total if total > 0 else np.zeros_like(energy)
    return SpectrumSummary(
        shape=(int(shape[0]), int(shape[1])),
        singular_values=s,
        cumulative_energy=cumulative,
        condition_number=condition_from(s, r),
        numerical_rank=r,
        effective_rank=_entropy_rank(s),
        stable_rank=float(total / energy[0]) if energy[0] > 0 else 0.0,
        rtol=tol,
        frobenius_norm=float(np.sqrt(total)),
        spectral_norm=float(s[0]),
    )


@dataclass(frozen=True)
class TopSpectrum:
    """The top ``k`` singular values of a matrix too large for a quick full SVD.

    ``singular_values`` (k,) descending float64 are those of ``Q^T W`` for an orthonormal
    basis ``Q`` of a randomized sketch of the range (Halko et al. 2011), so each is a lower
    bound: ``s_i <= sigma_i``. ``residual_norm`` estimates ``e = ||(I - Q Q^T) W||_2`` (power
    iteration) and, since ``W^T W = W^T Q Q^T W + E^T E``, Weyl's inequality gives
    ``sigma_i <= sqrt(s_i^2 + e^2)`` (``upper``); ``e`` also bounds ``sigma_{q+1}`` from above.
    ``frobenius_norm`` is exact, so ``captured_energy = sum s_i^2 / ||W||_F^2`` is a lower
    bound on the energy of the top k. ``ritz_residual[i] = ||(W v_i - s_i u_i, W^T u_i -
    s_i v_i)|| / sqrt(2)``: the residual of the eigenpair (s_i, (u_i, v_i) / sqrt(2)) of
    [[0, W], [W^T, 0]], so some singular value of W lies within it of s_i (much tighter
    than ``upper`` once the power iterations have converged). ``exact``: the values came
    from a full SVD instead (small matrices); the residuals are then 0.
    """

    shape: tuple[int, int]
    singular_values: np.ndarray
    upper: np.ndarray
    ritz_residual: np.ndarray
    residual_norm: float
    frobenius_norm: float
    captured_energy: float
    sketch: int
    exact: bool

    @property
    def max_relative_error(self) -> float:
        """Largest ``(upper_i - s_i) / s_i`` over the values above zero (0 when exact)."""
        return _max_ratio(self.upper - self.singular_values, self.singular_values)

    @property
    def max_relative_residual(self) -> float:
        """Largest ``ritz_residual_i / s_i`` over the values above zero (0 when exact)."""
        return _max_ratio(self.ritz_residual, self.singular_values)


def _max_ratio(num: np.ndarray, s: np.ndarray) -> float:
    positive = s > 0
    return float(np.max(num[positive] / s[positive])) if positive.any() else 0.0


def _seeded_lowrank(
    A: torch.Tensor, *, q: int, niter: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``torch.svd_lowrank(A, q=q, niter=niter)`` under ``torch.manual_seed(seed)``; the
    global RNG state is restored after, so the caller's random stream is untouched."""
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return torch.svd_lowrank(A, q=q, niter=niter)
    finally:
        torch.random.set_rng_state(gen_state)


def _residual_norm(
    A: torch.Tensor, Q: torch.Tensor, *, iterations: int, generator: torch.Generator
) -> float:
    """Power-iteration estimate of ||(I - Q Q^T) A||_2 (a lower estimate of the true norm)."""
    v = torch.randn(A.shape[1], 1, dtype=A.dtype, generator=generator).to(A.device)
    v = v / torch.linalg.vector_norm(v)
    norm = 0.0
    for _ in range(iterations):
        y = A @ v
        y = y - Q @ (Q.mT @ y)  # E v
        z = A.mT @ (y - Q @ (Q.mT @ y))  # E^T E v (the projector is idempotent)
        size = float(torch.linalg.vector_norm(z))
        if size == 0.0:
            return 0.0
        norm = math.sqrt(size)  # ||E^T E v|| -> sigma_max(E)^2 for unit v
        v = z / size
    return norm


def top_spectrum(
    W: torch.Tensor | np.ndarray,
    k: int,
    *,
    oversample: int | None = None,
    power_iterations: int = _POWER_ITERATIONS,
    seed: int = 0,
) -> TopSpectrum:
    """Top-``k`` singular values of ``W`` (m, n) from a randomized sketch, with bounds.

    The sketch has ``q = min(k + oversample, min(m, n))`` columns (``oversample`` defaults to
    ``k + 20``, as :func:`svd`), refined by ``power_iterations`` power iterations; seeded, so
    repeated calls agree. When ``q`` reaches ``min(m, n)`` the full SVD is cheaper and exact,
    and is used instead. Invariants (checked in tests): ``s_i <= sigma_i <= upper_i`` against
    numpy's SVD; exact values when ``k`` covers the rank of a low-rank matrix.

    Raises ``DataError`` for non-2-D, empty or non-finite input or a bad ``k``.
    """
    A = as_matrix(W, device=default_device())
    m, n = A.shape
    r = min(m, n)
    k = min(count(k, what="k"), r)
    q = min(k + (k + 20 if oversample is None else int(oversample)), r)
    fro = float(torch.linalg.matrix_norm(A.double() if A.device.type == "cpu" else A))
    if q >= r:
        s = torch.linalg.svdvals(A).double().cpu().numpy()[:k]
        zero = np.zeros_like(s)
        return TopSpectrum((m, n), s, s.copy(), zero, 0.0, fro, _captured(s, fro), r, True)
    generator = torch.Generator().manual_seed(seed)
    U, S, V = _seeded_lowrank(A, q=q, niter=power_iterations, seed=seed)
    e = _residual_norm(A, U, iterations=12, generator=generator)
    Uk, Sk, Vk = U[:, :k], S[:k], V[:, :k]
    left = torch.linalg.vector_norm(A @ Vk - Uk * Sk, dim=0)
    right = torch.linalg.vector_norm(A.mT @ Uk - Vk * Sk, dim=0)
    ritz = (torch.sqrt(left.double() ** 2 + right.double() ** 2) / math.sqrt(2)).cpu().numpy()
    s = Sk.double().cpu().numpy()
    upper = np.sqrt(s**2 + e**2)
    return TopSpectrum((m, n), s, upper, ritz, e, fro, _captured(s, fro), q, False)


def _captured(s: np.ndarray, fro: float) -> float:
    return float(np.sum(s**2) / fro**2) if fro > 0 else 0.0
