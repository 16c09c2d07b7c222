"""Random-matrix diagnostics of a layer's ESD: the Marchenko-Pastur bulk and its spikes, and
the ESD of an element-shuffled copy of the layer (correlation traps).

**Marchenko-Pastur.** For W (m, n) with i.i.d. entries of variance sigma^2, write
M = min(m, n), N = max(m, n), q = M / N <= 1. The M eigenvalues of W^T W (or W W^T, the
smaller Gram; the "ESD" of :func:`svdcore.esd.esd_eigenvalues`) divided by N follow, as
M, N grow, the Marchenko-Pastur law with density

    p(x) = sqrt((x+ - x)(x - x-)) / (2 pi sigma^2 q x),   x- <= x <= x+,
    x+- = sigma^2 (1 +- sqrt(q))^2

(Marchenko & Pastur 1967; Martin & Mahoney, JMLR 22(165), 2021, sec. 3). In the units of
the eigenvalues themselves the bulk edges are lambda+- = sigma^2 (sqrt(N) +- sqrt(M))^2.
:func:`fit_marchenko_pastur` fits sigma^2 to the bulk by its median, which the few
eigenvalues of a low-rank signal do not move (the bulk of a spiked matrix still fills the
whole support): sigma^2 is the least-squares slope of the bulk's sorted eigenvalues against
N times the MP(q, 1) quantiles at (j + 1/2) / (bulk size), over the central 90 % (trimmed
so that neither the edges nor a heavy tail steer it; its error on Gaussian noise is ~0.3 %,
a median fit's 0.7 %); eigenvalues above the
Tracy-Widom 95 % point of the largest noise eigenvalue (Johnstone 2001: centre
(sqrt(N - 1) + sqrt(M))^2, scale (sqrt(N - 1) + sqrt(M)) (1/sqrt(N - 1) + 1/sqrt(M))^(1/3),
TW1 quantile 0.9793, all times sigma^2) are spikes, the bulk is the rest; the two steps
alternate until the spike count is stable. Its KS distance is that of the bulk against the
fitted law.

**Correlation traps.** Shuffling the entries of W destroys every correlation between them
and keeps their distribution (and ||W||_F); the ESD of the shuffled copy is then
Marchenko-Pastur unless single entries are so large that they alone make spikes: such
eigenvalues of the shuffled copy above its own MP threshold are "correlation traps"
(Martin & Mahoney; WeightWatcher's ``randomize`` option). :func:`shuffled_spectrum` returns
that ESD, its fit and trap count, and :func:`esd_distance` between the two ESDs: half the
L1 distance between the sorted eigenvalues relative to their common total, (1/2) sum_i
|lambda_(i) - mu_(i)| / sum_i lambda_i (shuffling keeps the total, so this is the share of
the energy that sits at other eigenvalues), in [0, 1]; near 0 for a noise layer, about the
share of ||W||_F^2 a planted signal carries above the bulk, and continuous in the
eigenvalues (a trap's spike, present in both, counts by its small shift only).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ._validate import as_eigenvalues, as_matrix, count
from .exceptions import DataError
from .spectrum import singular_values

__all__ = [
    "TW_95",
    "MarchenkoPasturFit",
    "ShuffledSpectrum",
    "esd_distance",
    "fit_marchenko_pastur",
    "marchenko_pastur_cdf",
    "marchenko_pastur_density",
    "shuffled_spectrum",
]

TW_95 = 0.9793  # the 95 % quantile of the Tracy-Widom law TW1 (real matrices)
_GRID = 8192  # midpoint cells of the MP CDF table (error ~1e-7)
_MAX_ROUNDS = 50


@dataclass(frozen=True, eq=False)
class MarchenkoPasturFit:
    """A Marchenko-Pastur law fitted to the bulk of an ESD of a (m, n) matrix.

    ``q`` = M / N (M = min, N = max of the shape); ``sigma2`` the fitted per-entry variance
    (of W, or of W / sqrt(``scale``) when the ESD was divided by ``scale``);
    ``lambda_minus`` / ``lambda_plus`` the bulk edges sigma^2 (sqrt(N) -+ sqrt(M))^2 and
    ``spike_threshold`` the Tracy-Widom 95 % point of the largest noise eigenvalue, all in the
    units of the eigenvalues fitted (those of W^T W, or divided by ``scale``); ``spikes`` the
    eigenvalues above the threshold (descending), ``n_spikes`` their count; ``bulk_fraction``
    the share of ||W||_F^2 (sum of eigenvalues) in the bulk; ``ks`` the KS distance of the
    bulk against the fitted law.
    """

    shape: tuple[int, int]
    q: float
    sigma2: float
    lambda_minus: float
    lambda_plus: float
    spike_threshold: float
    spikes: np.ndarray
    bulk_fraction: float
    ks: float
    scale: float = 1.0

    @property
    def n_spikes(self) -> int:
        return int(self.spikes.size)


@dataclass(frozen=True, eq=False)
class ShuffledSpectrum:
    """The ESD of a copy of W with its entries randomly permuted (``seed``), ascending, its
    Marchenko-Pastur fit ``mp``, the ``n_traps`` = ``mp.n_spikes`` eigenvalues above the fit's
    threshold (correlation traps), and ``distance`` = :func:`esd_distance` to W's own ESD."""

    eigenvalues: np.ndarray
    mp: MarchenkoPasturFit
    distance: float
    seed: int

    @property
    def n_traps(self) -> int:
        return self.mp.n_spikes


def _shape(shape: object) -> tuple[int, int, int, int]:
    """(m, n, M, N) of a matrix shape, or DataError."""
    if not (isinstance(shape, Sequence) and len(shape) == 2):
        raise DataError(f"shape must be the matrix shape (m, n), got {shape!r}.")
    m = count(shape[0], what="shape[0]")
    n = count(shape[1], what="shape[1]")
    return m, n, min(m, n), max(m, n)


@functools.lru_cache(maxsize=64)
def _table(q: float) -> tuple[np.ndarray, np.ndarray]:
    """(x, F(x)) of the MP law with ratio q and sigma^2 = 1 on a fine grid over its support:
    x = x- + (x+ - x-) sin^2(theta / 2), theta in [0, pi], turns the density into a smooth
    integrand, summed by the midpoint rule (no 0/0 at x = 0 when q = 1)."""
    a, b = (1 - math.sqrt(q)) ** 2, (1 + math.sqrt(q)) ** 2
    h = math.pi / _GRID
    theta = (np.arange(_GRID) + 0.5) * h
    half = np.sin(theta / 2) ** 2
    x = a + (b - a) * half
    # p(x) dx = ((b - a)/2)^2 sin^2(theta) / (2 pi q x) dtheta
    f = ((b - a) / 2) ** 2 * 4 * half * np.cos(theta / 2) ** 2 / (2 * math.pi * q * x)
    F = np.concatenate([[0.0], np.cumsum(f) * h])
    edges = a + (b - a) * np.sin(np.linspace(0, math.pi, _GRID + 1) / 2) ** 2
    return edges, F / F[-1]  # F[-1] = 1 - O(h^2); renormalised


def marchenko_pastur_cdf(x: np.ndarray | float, *, q: float, sigma2: float = 1.0) -> np.ndarray:
    """The MP cumulative distribution with ratio ``q`` in (0, 1] and variance ``sigma2`` at
    ``x`` (the eigenvalues of W^T W / N). Error ~1e-7 (a tabulated integral)."""
    q, sigma2 = _ratio(q), _positive(sigma2, "sigma2")
    edges, F = _table(q)
    return np.interp(np.asarray(x, dtype=np.float64) / sigma2, edges, F, left=0.0, right=1.0)


def marchenko_pastur_density(x: np.ndarray | float, *, q: float, sigma2: float = 1.0) -> np.ndarray:
    """The MP density (see the module docstring) at ``x``; 0 outside the support."""
    q, sigma2 = _ratio(q), _positive(sigma2, "sigma2")
    x = np.asarray(x, dtype=np.float64)
    a, b = sigma2 * (1 - math.sqrt(q)) ** 2, sigma2 * (1 + math.sqrt(q)) ** 2
    inside = (x > a) & (x < b) & (x > 0)
    safe = np.where(inside, x, 1.0)
    root = np.sqrt(np.clip((b - safe) * (safe - a), 0.0, None))
    return np.where(inside, root / (2 * math.pi * sigma2 * q * safe), 0.0)


def _ratio(q: object) -> float:
    if not (isinstance(q, int | float | np.floating) and 0 < float(q) <= 1):
        raise DataError(f"q must be a ratio M / N in (0, 1], got {q!r}.")
    return float(q)


def _positive(value: object, what: str) -> float:
    if not (isinstance(value, int | float | np.number) and math.isfinite(value) and value > 0):
        raise DataError(f"{what} must be a positive number, got {value!r}.")
    return float(value)


def _bulk_variance(bulk: np.ndarray, *, q: float, N: int, shape: tuple[int, int]) -> float:
    """sigma^2 fitted to the bulk (descending) by its central quantiles (module docstring)."""
    asc = bulk[::-1]
    edges, F = _table(q)
    p = (np.arange(asc.size) + 0.5) / asc.size
    central = (p > 0.05) & (p < 0.95)
    if central.sum() < 2:
        central = np.ones_like(p, dtype=bool)
    theory = N * np.interp(p[central], F, edges)
    sigma2 = float(asc[central] @ theory) / float(theory @ theory)
    if not sigma2 > 0 or float(np.median(asc)) <= 0:
        m, n = shape
        raise DataError(
            f"the median eigenvalue of this {m}x{n} ESD is 0 (rank {int((bulk > 0).sum())} "
            f"of {bulk.size} in the bulk): there is no noise bulk for a Marchenko-Pastur fit."
        )
    return sigma2


def fit_marchenko_pastur(
    eigenvalues: np.ndarray | torch.Tensor | Sequence[float],
    *,
    shape: tuple[int, int],
    scale: float = 1.0,
) -> MarchenkoPasturFit:
    """Fit the Marchenko-Pastur bulk to the ESD of a matrix of ``shape`` (m, n).

    ``eigenvalues``: the min(m, n) eigenvalues of W^T W (any order; zeros included), or
    those divided by ``scale`` (e.g. N for WeightWatcher's normalised ESD): the results are
    in the same units. Method in the module docstring. Invariant (checked in tests): on a
    Gaussian noise matrix the fitted ``lambda_plus`` is within 2 % of sigma^2 (sqrt(N) +
    sqrt(M))^2 and ``n_spikes`` is 0; a planted rank-r signal above the BBP threshold gives
    r spikes.

    Raises ``DataError`` for a bad shape, a number of eigenvalues other than min(m, n),
    negative / non-finite values, or an ESD whose median is 0 (more than half the
    eigenvalues zero: a rank-deficient layer has no noise bulk to fit).
    """
    m, n, M, N = _shape(shape)
    scale = _positive(scale, "scale")
    ev = np.sort(as_eigenvalues(eigenvalues))[::-1] * scale  # descending, in W^T W units
    if ev.size != M:
        raise DataError(
            f"a {m}x{n} matrix has {M} eigenvalues of its smaller Gram matrix, got {ev.size}."
        )
    q = M / N
    root_n1 = math.sqrt(max(N - 1, 1))
    tw_centre = (root_n1 + math.sqrt(M)) ** 2
    tw_scale = (root_n1 + math.sqrt(M)) * (1 / root_n1 + 1 / math.sqrt(M)) ** (1 / 3)
    k, seen = 0, set()
    for _ in range(_MAX_ROUNDS):
        sigma2 = _bulk_variance(ev[k:], q=q, N=N, shape=(m, n))
        threshold = sigma2 * (tw_centre + TW_95 * tw_scale)
        new_k = min(int((ev > threshold).sum()), M - 1)
        if new_k == k or new_k in seen:
            k = max(k, new_k)
            break
        seen.add(k)
        k = new_k
    bulk = ev[k:]
    sigma2 = _bulk_variance(bulk, q=q, N=N, shape=(m, n))
    threshold = sigma2 * (tw_centre + TW_95 * tw_scale)
    lam_minus = sigma2 * (math.sqrt(N) - math.sqrt(M)) ** 2
    lam_plus = sigma2 * (math.sqrt(N) + math.sqrt(M)) ** 2
    asc = bulk[::-1]
    F = marchenko_pastur_cdf(asc / N, q=q, sigma2=sigma2)
    j = np.arange(asc.size)
    ks = float(np.maximum(np.abs(F - j / asc.size), np.abs(F - (j + 1) / asc.size)).max())
    total = float(ev.sum())
    return MarchenkoPasturFit(
        shape=(m, n),
        q=q,
        sigma2=sigma2 / scale,
        lambda_minus=lam_minus / scale,
        lambda_plus=lam_plus / scale,
        spike_threshold=threshold / scale,
        spikes=ev[:k] / scale,
        bulk_fraction=float(bulk.sum()) / total if total > 0 else 1.0,
        ks=ks,
        scale=scale,
    )


def esd_distance(
    a: np.ndarray | torch.Tensor | Sequence[float], b: np.ndarray | torch.Tensor | Sequence[float]
) -> float:
    """(1/2) sum_i |a_(i) - b_(i)| / sum_i a_i over the sorted eigenvalues of two ESDs of the
    same size and total energy, in [0, 1] (0 for equal ESDs); see the module docstring.

    Raises ``DataError`` for bad eigenvalues, ESDs of different sizes, or totals that differ
    by more than 1e-6 relative (this distance compares a matrix with a shuffled copy, whose
    ||W||_F^2 is the same)."""
    x, y = np.sort(as_eigenvalues(a)), np.sort(as_eigenvalues(b))
    if x.size != y.size:
        raise DataError(f"the two ESDs have {x.size} and {y.size} eigenvalues; they must match.")
    tx, ty = float(x.sum()), float(y.sum())
    if not math.isclose(tx, ty, rel_tol=1e-6, abs_tol=1e-300):
        raise DataError(
            f"the two ESDs hold different energies ({tx:.6g} vs {ty:.6g}); esd_distance "
            "compares a matrix with a shuffled copy of itself."
        )
    if tx == 0:
        return 0.0
    return float(min(0.5 * np.abs(x - y).sum() / tx, 1.0))


def shuffled_spectrum(
    W: torch.Tensor | np.ndarray,
    *,
    seed: int = 0,
    eigenvalues: np.ndarray | None = None,
    device: torch.device | str | None = None,
) -> ShuffledSpectrum:
    """The ESD of W (m, n) with its entries randomly permuted (``torch.randperm`` seeded by
    ``seed``), its Marchenko-Pastur fit, and its :func:`esd_distance` to W's ESD
    (``eigenvalues``, the ascending ESD of W when the caller already has it; else computed).
    Both ESDs are float64 (:func:`svdcore.spectrum.singular_values`, on ``device``).

    Raises ``DataError`` as :func:`svdcore.esd.esd_eigenvalues`, and for a bad seed.
    """
    seed = count(seed, what="seed", minimum=0)
    A = as_matrix(W, what="weight matrix")
    gen = torch.Generator().manual_seed(seed)
    flat = A.reshape(-1)
    shuffled = flat[torch.randperm(flat.numel(), generator=gen)].reshape(A.shape)
    s_rand = singular_values(shuffled, device=device).numpy()
    rand = np.sort(s_rand * s_rand)
    if eigenvalues is None:
        s = singular_values(A, device=device).numpy()
        eigenvalues = np.sort(s * s)
    mp = fit_marchenko_pastur(rand, shape=tuple(A.shape))
    return ShuffledSpectrum(
        eigenvalues=rand, mp=mp, distance=esd_distance(eigenvalues, rand), seed=seed
    )
