"""The data of the ILR biexponential networks (Sule, Spencer & Czaja): decays and Reg tracks.

The problem (Sule et al., eq. 19; data settings from the authors' public code, named
below): recover the two time constants of

    s(t) = 0.6 exp(-t / T21) + 0.4 exp(-t / T22),   50 ms <= T21 <= T22 <= 500 ms,

from 64 noisy samples on ``t = linspace(0, 800 ms, 64)``; the noise is N(0, 1/SNR)
(variance 1/SNR, standard deviation 1/sqrt(SNR)) with SNR = 900, i.e. sigma = 1/30.
(T21, T22) are drawn as two independent U(50, 500) ms values, sorted.

Inputs (128 values, two 64-point halves on the same time grid):

* ``ilr-biexp-ndnd`` (ND, ND): the noisy decay, twice (the same noise realisation).
* ``ilr-biexp-ndreg`` (ND, Reg): the noisy decay, then its **Reg track**: the biexponential
  evaluated at the Tikhonov-regularised nonlinear least squares (NLLS) estimate,

      (T1, T2) = argmin  sum_i (0.6 exp(-t_i/T1) + 0.4 exp(-t_i/T2) - d_i)^2
                         + lambda^2 (T1^2 + T2^2),     50 <= T1, T2 <= 500 (ms),

  with lambda = 1.6e-4 and the amplitudes 0.6, 0.4 known. This is exactly the problem of the
  authors' code (``regnet/regTraj.py``, ``curve_fit_l2Regularized_2param`` with penalty
  weights D = (1, 1), ``reg_params = [1.6e-4]`` and bounds [50, 500] ms in
  ``makeDataset_2022_SNR900Lneg3.py``): a zeroth-order Tikhonov penalty on the time
  constants themselves, in ms, towards 0 (no prior); the paper (Sule et al., Materials and
  Methods) names only "a Tikhonov regularization procedure ... with lambda = 1.6e-4".
  The penalty is small beside the misfit (lambda^2 T^2 <= 0.0064 against an expected
  64/900 = 0.071) but it is not negligible where it matters: the objective has two basins,
  0.6 on the faster component (T1 < T2) or on the slower one (T1 > T2), whose curves are
  nearly alike, and the penalty prefers the mirrored pair (both constants smaller). At
  SNR 900, 79 % of fits land there, and even for noise-free data 81 %; so the fitted
  constants are no estimate of (T21, T22), and the network is never shown them. The
  track is the curve at the fitted pair as it stands (as in the authors' code, which
  reorders the pair and the amplitudes together, leaving the curve unchanged), and that
  curve is close to the noise-free one: rms 0.0057 against the noise's 0.033.

  The authors solve each sample with scipy's TRF (``curve_fit``) from the single start
  (275, 275) ms, a few ms per sample. :func:`regularized_fit` solves all samples at once
  (numpy, float64, about 1 s per 4096 samples): the objective on a 40 x 40 log-spaced
  grid of the box (one matrix product) gives each sample its best start in each basin;
  each start is refined by 40 iterations of Levenberg-Marquardt (exact Jacobian,
  Marquardt scaling, steps projected onto the box, a constant held at a bound by its
  gradient left there), the better end point wins, and its mirror image (T2, T1) is
  refined once more in case both runs ended in one basin. That is the global minimiser
  on the box: on 300 noisy samples it matched scipy's bounded least squares from eight
  starts to 3e-10 relative in the objective, and it recovers noise-free constants to
  1e-12 ms with lambda = 0, whereas one TRF run from (275, 275) ends in a worse local
  minimum for 19 % of samples (objective up to 80 % higher).

Targets: ``(T21, T22) / 500 ms`` (so in [0.1, 1]); multiply the network output by
``TARGET_SCALE_MS`` to read milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from svdcore.exceptions import DataError
from svdcore.zoo._types import SPLITS, split_index

__all__ = [
    "C1",
    "C2",
    "CHUNK",
    "GRID_POINTS",
    "LM_ITERATIONS",
    "NOISE_STD",
    "N_POINTS",
    "REG_LAMBDA",
    "SNR",
    "SPLITS",
    "T2_RANGE_MS",
    "TARGET_SCALE_MS",
    "T_MAX_MS",
    "VARIANTS",
    "Batch",
    "biexponential",
    "input_axis_ms",
    "make_data",
    "make_data_ndnd",
    "make_data_ndreg",
    "regularized_fit",
    "simulate",
    "time_grid_ms",
]

N_POINTS = 64
T_MAX_MS = 800.0
T2_RANGE_MS = (50.0, 500.0)
C1, C2 = 0.6, 0.4
SNR = 900.0
NOISE_STD = float(1.0 / np.sqrt(SNR))
"""Noise N(0, 1/SNR): variance 1/SNR (the authors' ``myNoisyModel``), sigma = 1/30."""
REG_LAMBDA = 1.6e-4
TARGET_SCALE_MS = 500.0
"""Targets are (T21, T22) / TARGET_SCALE_MS."""
VARIANTS = ("ndnd", "ndreg")
CHUNK = 4096
"""Samples are simulated in chunks of this size, each from its own seed sequence
``(seed, split, chunk)``: ``make_data(n=a)`` is a prefix of ``make_data(n=b)`` for a <= b."""

GRID_POINTS = 40
"""Start grid of :func:`regularized_fit`: this many log-spaced values per time constant."""
LM_ITERATIONS = 40


@lru_cache(maxsize=1)
def _time_grid() -> np.ndarray:
    t = np.linspace(0.0, T_MAX_MS, N_POINTS)
    t.setflags(write=False)
    return t


def time_grid_ms() -> np.ndarray:
    """The 64 sample times, ``linspace(0, 800, 64)`` ms (read-only)."""
    return _time_grid()


@lru_cache(maxsize=1)
def _input_axis() -> np.ndarray:
    t = np.concatenate([_time_grid(), _time_grid()])
    t.setflags(write=False)
    return t


def input_axis_ms() -> np.ndarray:
    """Time in ms of each of the 128 inputs: the 64-point grid twice (read-only)."""
    return _input_axis()


def biexponential(T21: np.ndarray, T22: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
    """``0.6 exp(-t/T21) + 0.4 exp(-t/T22)``: shape ``(n, len(t))`` for ``(n,)`` constants."""
    tt = _time_grid() if t is None else np.asarray(t, dtype=np.float64)
    a = np.asarray(T21, dtype=np.float64).reshape(-1, 1)
    b = np.asarray(T22, dtype=np.float64).reshape(-1, 1)
    return C1 * np.exp(-tt / a) + C2 * np.exp(-tt / b)


def _objective(p: np.ndarray, d: np.ndarray, t: np.ndarray, lam: float) -> np.ndarray:
    r = biexponential(p[:, 0], p[:, 1], t) - d
    return np.einsum("ij,ij->i", r, r) + lam**2 * np.einsum("ij,ij->i", p, p)


def _grid_starts(d: np.ndarray, t: np.ndarray, lam: float, lo: float, hi: float) -> np.ndarray:
    """For every row of ``d``, the lowest-objective grid pair with T1 <= T2 and the one with
    T1 > T2: shape ``(2, n, 2)``. The two orderings are the two basins of the objective
    (amplitude 0.6 on the faster or on the slower component); at SNR 900 their minima are
    often within a fraction of a percent of each other, closer than a grid can tell apart,
    so both are refined."""
    g = np.geomspace(lo, hi, GRID_POINTS)
    T1, T2 = (a.ravel() for a in np.meshgrid(g, g, indexing="ij"))
    G = biexponential(T1, T2, t)  # (m, 64)
    const = np.einsum("ij,ij->i", G, G) + lam**2 * (T1**2 + T2**2)
    cost = const[None, :] - 2.0 * (d @ G.T)  # objective minus ||d||^2
    starts = []
    for half in (T1 <= T2, T1 > T2):
        cols = np.flatnonzero(half)
        best = cols[np.argmin(cost[:, cols], axis=1)]
        starts.append(np.column_stack([T1[best], T2[best]]))
    return np.stack(starts)


def regularized_fit(
    d: np.ndarray,
    *,
    t: np.ndarray | None = None,
    lam: float = REG_LAMBDA,
    bounds: tuple[float, float] = T2_RANGE_MS,
    iterations: int = LM_ITERATIONS,
) -> np.ndarray:
    """Tikhonov-regularised NLLS estimates ``(T1, T2)`` in ms, one row per row of ``d``.

    Minimises ``||0.6 exp(-t/T1) + 0.4 exp(-t/T2) - d||^2 + lam^2 (T1^2 + T2^2)`` over
    ``bounds[0] <= T1, T2 <= bounds[1]`` for all rows at once: the best start in each basin
    (T1 <= T2, T1 > T2) from a log-spaced grid of ``GRID_POINTS``^2 pairs, ``iterations``
    steps of Levenberg-Marquardt from each (Marquardt's diagonal scaling, exact Jacobian,
    steps projected onto the box, a step kept only if it lowers that row's objective), then
    the same from the mirror image of the better result. Returns float64 ``(n, 2)``; T1 > T2
    is common (the amplitudes 0.6, 0.4 make the model asymmetric) and is left as fitted.
    Raises ``DataError`` for a non-2-D or non-finite ``d``, a ``t`` of the wrong length or
    bounds that are not ``0 < low < high``.
    """
    d = np.asarray(d, dtype=np.float64)
    if d.ndim != 2 or not np.isfinite(d).all():
        raise DataError(f"d must be a finite (n, n_times) array, got shape {d.shape}")
    tt = _time_grid() if t is None else np.asarray(t, dtype=np.float64)
    if tt.shape != (d.shape[1],):
        raise DataError(f"t has shape {tt.shape}; it needs one time per column of d ({d.shape[1]})")
    lo, hi = (float(b) for b in bounds)
    if not 0 < lo < hi:
        raise DataError(f"bounds must satisfy 0 < low < high, got {bounds}")
    out = np.empty((d.shape[0], 2))
    for start in range(0, d.shape[0], CHUNK):
        dd = d[start : start + CHUNK]
        a, b = (
            _lm(dd, tt, lam, lo, hi, p0, iterations) for p0 in _grid_starts(dd, tt, lam, lo, hi)
        )
        best = _better(a, b, dd, tt, lam)
        # both runs can end in the same basin when T1 and T2 are close; the mirror image of
        # the winner starts the other one
        out[start : start + CHUNK] = _better(
            best, _lm(dd, tt, lam, lo, hi, best[:, ::-1], iterations), dd, tt, lam
        )
    return out


def _better(a: np.ndarray, b: np.ndarray, d: np.ndarray, t: np.ndarray, lam: float) -> np.ndarray:
    """Row by row, whichever of the estimates ``a`` and ``b`` has the lower objective."""
    keep_b = _objective(b, d, t, lam) < _objective(a, d, t, lam)
    return np.where(keep_b[:, None], b, a)


def _lm(
    d: np.ndarray,
    t: np.ndarray,
    lam: float,
    lo: float,
    hi: float,
    p: np.ndarray,
    iterations: int,
) -> np.ndarray:
    p = p.copy()
    cost = _objective(p, d, t, lam)
    mu = np.full(len(p), 1e-3)
    lam2 = lam**2
    for _ in range(iterations):
        e1 = np.exp(-t / p[:, :1])
        e2 = np.exp(-t / p[:, 1:])
        r = C1 * e1 + C2 * e2 - d
        j1 = C1 * t / p[:, :1] ** 2 * e1  # d model / d T1
        j2 = C2 * t / p[:, 1:] ** 2 * e2
        a11 = np.einsum("ij,ij->i", j1, j1) + lam2
        a22 = np.einsum("ij,ij->i", j2, j2) + lam2
        a12 = np.einsum("ij,ij->i", j1, j2)
        g1 = np.einsum("ij,ij->i", j1, r) + lam2 * p[:, 0]
        g2 = np.einsum("ij,ij->i", j2, r) + lam2 * p[:, 1]
        b11 = a11 * (1.0 + mu)
        b22 = a22 * (1.0 + mu)
        det = b11 * b22 - a12 * a12
        s1 = -(b22 * g1 - a12 * g2) / det
        s2 = -(b11 * g2 - a12 * g1) / det
        # a constant held at a bound by its gradient stays there; the other moves alone
        held1 = ((p[:, 0] <= lo) & (g1 > 0)) | ((p[:, 0] >= hi) & (g1 < 0))
        held2 = ((p[:, 1] <= lo) & (g2 > 0)) | ((p[:, 1] >= hi) & (g2 < 0))
        s1 = np.where(held1, 0.0, np.where(held2, -g1 / b11, s1))
        s2 = np.where(held2, 0.0, np.where(held1, -g2 / b22, s2))
        trial = np.clip(p + np.column_stack([s1, s2]), lo, hi)
        new = _objective(trial, d, t, lam)
        better = new < cost
        p[better] = trial[better]
        cost[better] = new[better]
        mu = np.where(better, np.maximum(mu * 0.3, 1e-9), np.minimum(mu * 10.0, 1e9))
    return p


@dataclass(frozen=True)
class Batch:
    """Simulated samples: ``t2`` (n, 2) true (T21, T22) in ms with T21 <= T22; ``clean``,
    ``noisy`` (n, 64) decays; ``reg_params`` (n, 2) regularised NLLS estimates in ms and
    ``reg`` (n, 64) the Reg track (both None when not requested). All float64."""

    t2: np.ndarray
    clean: np.ndarray
    noisy: np.ndarray
    reg_params: np.ndarray | None
    reg: np.ndarray | None


def simulate(n: int, rng: np.random.Generator, *, reg: bool = True) -> Batch:
    """``n`` samples: sorted U(50, 500) ms constants, clean and noisy decays, Reg track."""
    lo, hi = T2_RANGE_MS
    t2 = np.sort(rng.uniform(lo, hi, size=(n, 2)), axis=1)
    clean = biexponential(t2[:, 0], t2[:, 1])
    noisy = clean + NOISE_STD * rng.standard_normal(clean.shape)
    if not reg:
        return Batch(t2, clean, noisy, None, None)
    params = regularized_fit(noisy)
    return Batch(t2, clean, noisy, params, biexponential(params[:, 0], params[:, 1]))


def make_data(
    *, n: int = 1000, seed: int = 0, split: str = "test", variant: str = "ndreg"
) -> tuple[torch.Tensor, torch.Tensor]:
    """ILR inputs and targets: ``x`` float32 ``(n, 128)``, ``y`` float32 ``(n, 2)``.

    ``variant`` "ndnd": x = (noisy, noisy); "ndreg": x = (noisy, Reg track). ``y`` is
    ``(T21, T22) / TARGET_SCALE_MS``. Deterministic in ``(seed, split)``, and both variants
    share the noisy decays and targets for the same arguments; "train" and "test" come from
    different seed sequences.
    """
    if variant not in VARIANTS:
        raise DataError(f"unknown ILR variant {variant!r}; use one of {', '.join(VARIANTS)}")
    if n < 1:
        raise DataError(f"n must be a positive number of samples, got {n}")
    s = split_index(split, data="ILR")
    xs, ys = [], []
    for chunk in range((n + CHUNK - 1) // CHUNK):
        size = min(CHUNK, n - chunk * CHUNK)
        batch = simulate(CHUNK, np.random.default_rng([seed, s, chunk]), reg=False)
        t2, noisy = batch.t2[:size], batch.noisy[:size]
        if variant == "ndnd":
            second = noisy
        else:
            p = regularized_fit(noisy)
            second = biexponential(p[:, 0], p[:, 1])
        xs.append(np.concatenate([noisy, second], axis=1).astype(np.float32))
        ys.append((t2 / TARGET_SCALE_MS).astype(np.float32))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


def make_data_ndnd(
    *, n: int = 1000, seed: int = 0, split: str = "test"
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`make_data` with ``variant="ndnd"``: inputs (noisy decay, noisy decay)."""
    return make_data(n=n, seed=seed, split=split, variant="ndnd")


def make_data_ndreg(
    *, n: int = 1000, seed: int = 0, split: str = "test"
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`make_data` with ``variant="ndreg"``: inputs (noisy decay, Reg track)."""
    return make_data(n=n, seed=seed, split=split, variant="ndreg")
