"""DEER (double electron-electron resonance) physics for the DEERNet example.

Simulates the data DEERNet (Amey et al., PNAS 2021; Worswick et al., Sci. Adv. 2018) is
trained on: a distance distribution p(r) between two electron spins turns into a dipolar
form factor through the kernel

    K(r, t) = integral_0^1 cos((1 - 3 x^2) D(r) t) dx,
    D(r)    = mu0 gamma_e^2 hbar / (4 pi r^3)                      [rad/s, r in metres],

evaluated in closed form with Fresnel integrals: with z = sqrt(6 D t / pi) and
``S, C = scipy.special.fresnel(z)``,

    K = sqrt(pi / (6 D t)) (cos(D t) C(z) + sin(D t) S(z)),   K = 1 at t = 0.

A trace is (1 - m + m F(t)) exp(-(k t)^(d/3)) + noise, with F = K p (p normalised to unit
sum, so F(0) = 1), modulation depth m ~ U(0.01, 1), background decay rate
k ~ U(0, 5e5) 1/s, background dimension d ~ U(2, 3.5), noise U(0, 1) * 0.05 * m * N(0, 1)
per point; each trace is then min-max scaled to [0, 1].

Units: physics functions take and return SI units (seconds, metres, rad/s). The display
axes (``time_axis_us``, ``distance_axis_nm``) are in microseconds and nanometres.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import fresnel

from svdcore.exceptions import DataError

__all__ = [
    "GAMMA_E",
    "HBAR",
    "MU0",
    "N_POINTS",
    "R_MAX",
    "R_MIN",
    "T_MAX",
    "DeerBatch",
    "dipolar_frequency",
    "dipolar_kernel",
    "distance_axis_nm",
    "distance_grid",
    "form_factors",
    "grid_kernel",
    "random_distributions",
    "simulate",
    "simulate_traces",
    "time_axis_us",
    "time_grid",
]

MU0 = 4.0 * np.pi * 1e-7
"""Vacuum permeability, T m / A."""
GAMMA_E = -1.76085963023e11
"""Electron gyromagnetic ratio, rad / (s T)."""
HBAR = 1.054571628e-34
"""Reduced Planck constant, J s."""

N_POINTS = 256
"""Points on both the time grid (network input) and the distance grid (network output)."""
T_MAX = 2e-6
"""Length of the DEER trace, s."""
R_MIN = 11.78e-10
"""Shortest distance on the output grid, m (11.78 Å)."""
R_MAX = 59.27e-10
"""Longest distance on the output grid, m (59.27 Å)."""

# Distance-distribution generator defaults (see ``random_distributions``).
MAX_PEAKS = 4
CENTRE_RANGE = (1.5e-9, 5.0e-9)
FWHM_FRACTION = (0.05, 0.50)
AMPLITUDE_RANGE = (0.1, 1.0)

# Trace generator defaults (Amey et al. 2021 / Worswick et al. 2018; see the module docstring).
DEPTH_RANGE = (0.01, 1.0)
RATE_RANGE = (0.0, 5e5)
DIMENSION_RANGE = (2.0, 3.5)
NOISE_FRACTION = 0.05


def time_grid(n: int = N_POINTS, t_max: float = T_MAX) -> np.ndarray:
    """Time points of a DEER trace, ``linspace(0, t_max, n)`` in seconds; shape ``(n,)``."""
    return np.linspace(0.0, t_max, n)


def distance_grid(n: int = N_POINTS, r_min: float = R_MIN, r_max: float = R_MAX) -> np.ndarray:
    """Distances of the output grid, ``linspace(r_min, r_max, n)`` in metres; shape ``(n,)``."""
    return np.linspace(r_min, r_max, n)


def time_axis_us(n: int = N_POINTS) -> np.ndarray:
    """``time_grid(n)`` in microseconds (0 ... 2 µs); shape ``(n,)``, read-only."""
    values = time_grid(n) * 1e6
    values.setflags(write=False)
    return values


def distance_axis_nm(n: int = N_POINTS) -> np.ndarray:
    """``distance_grid(n)`` in nanometres (1.178 ... 5.927 nm); shape ``(n,)``, read-only."""
    values = distance_grid(n) * 1e9
    values.setflags(write=False)
    return values


def dipolar_frequency(r: np.ndarray | float) -> np.ndarray:
    """Dipolar coupling D(r) = mu0 gamma_e^2 hbar / (4 pi r^3) in rad/s, r in metres.

    Same shape as ``r``. About 4.09e7 rad/s (6.5 MHz) at r = 2 nm, scaling as r^-3.
    """
    r = np.asarray(r, dtype=np.float64)
    return MU0 * GAMMA_E**2 * HBAR / (4.0 * np.pi * r**3)


def dipolar_kernel(t: np.ndarray | float, r: np.ndarray | float) -> np.ndarray:
    """Powder-averaged dipolar kernel K(r, t) = integral_0^1 cos((1 - 3x^2) D(r) t) dx.

    ``t`` (seconds, shape ``(nt,)``) and ``r`` (metres, shape ``(nr,)``) give a matrix of
    shape ``(nt, nr)``; scalars are treated as length-1 arrays. Closed form through
    ``scipy.special.fresnel``; K = 1 wherever D t = 0, and K(-t) = K(t).
    """
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    r = np.atleast_1d(np.asarray(r, dtype=np.float64))
    if t.ndim != 1 or r.ndim != 1:
        raise DataError(
            "dipolar_kernel expects 1-D time and distance arrays, "
            f"got shapes {t.shape} and {r.shape}"
        )
    dt = np.abs(np.outer(t, dipolar_frequency(r)))
    kernel = np.ones_like(dt)
    pos = dt > 0
    a = dt[pos]
    s, c = fresnel(np.sqrt(6.0 * a / np.pi))
    kernel[pos] = np.sqrt(np.pi / (6.0 * a)) * (np.cos(a) * c + np.sin(a) * s)
    return kernel


@lru_cache(maxsize=4)
def _grid_kernel(n: int) -> np.ndarray:
    kernel = dipolar_kernel(time_grid(n), distance_grid(n))
    kernel.setflags(write=False)
    return kernel


def grid_kernel(n: int = N_POINTS) -> np.ndarray:
    """The kernel on the standard grids, ``dipolar_kernel(time_grid(n), distance_grid(n))``.

    Shape ``(n, n)`` = (time, distance); cached and read-only. Row 0 (t = 0) is all ones.
    """
    return _grid_kernel(int(n))


def random_distributions(
    rng: np.random.Generator,
    n: int,
    r: np.ndarray,
    *,
    max_peaks: int = MAX_PEAKS,
    centre_range: tuple[float, float] = CENTRE_RANGE,
    fwhm_fraction: tuple[float, float] = FWHM_FRACTION,
    amplitude_range: tuple[float, float] = AMPLITUDE_RANGE,
) -> np.ndarray:
    """Random distance distributions made of 1 to ``max_peaks`` Gaussians.

    For each of ``n`` distributions: the number of peaks is uniform on {1, ..., max_peaks};
    each peak has centre ``c ~ U(centre_range)`` (metres; default 1.5-5.0 nm, inside the
    1.178-5.927 nm grid), full width at half maximum ``U(fwhm_fraction) * c`` (default
    5-50 % of the distance, so long distances are broader, as in spin-label ensembles) and
    amplitude ``U(amplitude_range)``. Peaks are truncated to the grid ``r`` (metres,
    shape ``(nr,)``). Returns shape ``(n, nr)``, non-negative, each row summing to 1.
    """
    r = np.asarray(r, dtype=np.float64)
    n_peaks = rng.integers(1, max_peaks + 1, size=n)
    centres = rng.uniform(*centre_range, size=(n, max_peaks))
    fwhm = rng.uniform(*fwhm_fraction, size=(n, max_peaks)) * centres
    amps = rng.uniform(*amplitude_range, size=(n, max_peaks))
    amps = amps * (np.arange(max_peaks)[None, :] < n_peaks[:, None])
    sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    z = (r[None, None, :] - centres[:, :, None]) / sigma[:, :, None]
    p = np.einsum("nk,nkr->nr", amps, np.exp(-0.5 * z * z))
    return p / p.sum(axis=1, keepdims=True)


def form_factors(p: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Dipolar form factors F = K p for distributions ``p`` of shape ``(n, nr)``.

    ``kernel`` has shape ``(nt, nr)``. Each row of p is normalised to unit sum first, so
    F(t = 0) = 1. Returns shape ``(n, nt)``.
    """
    p = np.asarray(p, dtype=np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    return p @ kernel.T


@dataclass(frozen=True)
class DeerBatch:
    """A batch of simulated DEER experiments; arrays have leading dimension n.

    ``traces`` (n, nt) min-max scaled to [0, 1]; ``distributions`` (n, nr) with unit sum;
    ``depth`` m, ``rate`` k (1/s), ``dimension`` d and ``noise`` (per-point noise standard
    deviation, before scaling), each shape (n,).
    """

    traces: np.ndarray
    distributions: np.ndarray
    depth: np.ndarray
    rate: np.ndarray
    dimension: np.ndarray
    noise: np.ndarray


def simulate_traces(
    p: np.ndarray,
    rng: np.random.Generator,
    *,
    t: np.ndarray,
    kernel: np.ndarray,
) -> DeerBatch:
    """Turn distance distributions into noisy, background-decayed, min-max scaled traces.

    ``p`` (n, nr), ``t`` (nt,) seconds, ``kernel`` (nt, nr). Per trace: m ~ U(0.01, 1),
    k ~ U(0, 5e5) 1/s, d ~ U(2, 3.5), noise sd = U(0, 1) * 0.05 * m; the trace
    (1 - m + m K p) exp(-(k t)^(d/3)) + noise is scaled to min 0, max 1.
    """
    n = p.shape[0]
    form = form_factors(p, kernel)
    depth = rng.uniform(*DEPTH_RANGE, size=n)
    rate = rng.uniform(*RATE_RANGE, size=n)
    dimension = rng.uniform(*DIMENSION_RANGE, size=n)
    noise = rng.uniform(0.0, 1.0, size=n) * NOISE_FRACTION * depth
    background = np.exp(-((rate[:, None] * t[None, :]) ** (dimension[:, None] / 3.0)))
    traces = (1.0 - depth[:, None] + depth[:, None] * form) * background
    traces = traces + noise[:, None] * rng.standard_normal(traces.shape)
    lo = traces.min(axis=1, keepdims=True)
    span = traces.max(axis=1, keepdims=True) - lo
    traces = (traces - lo) / np.where(span > 0, span, 1.0)
    return DeerBatch(
        traces=traces,
        distributions=p / p.sum(axis=1, keepdims=True),
        depth=depth,
        rate=rate,
        dimension=dimension,
        noise=noise,
    )


def simulate(n: int, rng: np.random.Generator, *, points: int = N_POINTS) -> DeerBatch:
    """Simulate ``n`` DEER experiments on the standard grids (``points`` time and distance
    points): random 1-4 Gaussian distributions, then ``simulate_traces``. Deterministic in
    the state of ``rng``.
    """
    p = random_distributions(rng, n, distance_grid(points))
    return simulate_traces(p, rng, t=time_grid(points), kernel=grid_kernel(points))
