"""Marchenko-Pastur fits and shuffled-copy ESDs (svdcore.rmt) against theory."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import torch

from svdcore import DataError
from svdcore.esd import esd_eigenvalues
from svdcore.rmt import (
    TW_95,
    esd_distance,
    fit_marchenko_pastur,
    marchenko_pastur_cdf,
    marchenko_pastur_density,
    shuffled_spectrum,
)


def _noise(m: int, n: int, sigma: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((m, n)) * sigma


def _edge(m: int, n: int, sigma: float) -> float:
    return sigma**2 * (math.sqrt(max(m, n)) + math.sqrt(min(m, n))) ** 2


def _planted(W: np.ndarray, strengths: list[float], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m, n = W.shape
    U = np.linalg.qr(rng.standard_normal((m, len(strengths))))[0]
    V = np.linalg.qr(rng.standard_normal((n, len(strengths))))[0]
    return W + (U * np.asarray(strengths)) @ V.T


@pytest.mark.parametrize(("q", "sigma2"), [(0.25, 1.0), (0.5, 2.5), (1.0, 0.3)])
def test_the_density_integrates_to_one_and_its_cdf_matches_quad(q: float, sigma2: float) -> None:
    a, b = sigma2 * (1 - math.sqrt(q)) ** 2, sigma2 * (1 + math.sqrt(q)) ** 2

    def density(x: float) -> float:
        return float(marchenko_pastur_density(x, q=q, sigma2=sigma2))

    total, _ = scipy.integrate.quad(density, a, b, limit=200)
    assert total == pytest.approx(1.0, abs=1e-6)
    for t in (a + 0.1 * (b - a), 0.5 * (a + b), a + 0.9 * (b - a)):
        part, _ = scipy.integrate.quad(density, a, t, limit=200)
        assert float(marchenko_pastur_cdf(t, q=q, sigma2=sigma2)) == pytest.approx(part, abs=1e-6)
    assert float(marchenko_pastur_cdf(b * 1.01, q=q, sigma2=sigma2)) == 1.0
    assert float(marchenko_pastur_density(b * 1.01, q=q, sigma2=sigma2)) == 0.0


@pytest.mark.parametrize(("m", "n"), [(1000, 500), (500, 1000), (600, 600), (2000, 250)])
def test_the_bulk_edge_of_pure_noise_is_within_two_percent_of_theory(m: int, n: int) -> None:
    sigma = 0.07
    fit = fit_marchenko_pastur(esd_eigenvalues(_noise(m, n, sigma, seed=m + n)), shape=(m, n))
    assert fit.lambda_plus == pytest.approx(_edge(m, n, sigma), rel=0.02)
    assert fit.sigma2 == pytest.approx(sigma**2, rel=0.02)
    assert fit.q == pytest.approx(min(m, n) / max(m, n))
    assert fit.n_spikes == 0
    assert fit.bulk_fraction == 1.0
    assert fit.ks < 0.03  # the bulk follows the fitted law
    assert fit.spike_threshold > fit.lambda_plus > fit.lambda_minus >= 0


def test_a_planted_signal_above_the_bbp_threshold_gives_its_spikes() -> None:
    m, n, sigma = 900, 450, 0.1
    W = _noise(m, n, sigma, seed=3)
    # BBP: a rank-one strength theta is detached when theta > sigma (m n)^(1/4)
    bbp = sigma * (m * n) ** 0.25
    Wp = _planted(W, [4 * bbp, 3 * bbp, 2 * bbp], seed=4)
    ev = esd_eigenvalues(Wp)
    fit = fit_marchenko_pastur(ev, shape=(m, n))
    assert fit.n_spikes == 3
    np.testing.assert_allclose(fit.spikes, np.sort(ev)[::-1][:3])
    assert fit.sigma2 == pytest.approx(sigma**2, rel=0.02)  # the spikes do not move the bulk
    assert 0 < fit.bulk_fraction < 1
    assert fit.bulk_fraction == pytest.approx(np.sort(ev)[:-3].sum() / ev.sum())


def test_units_follow_the_eigenvalues_given() -> None:
    m, n = 400, 800
    ev = esd_eigenvalues(_noise(m, n, 1.0, seed=5))
    raw = fit_marchenko_pastur(ev, shape=(m, n))
    norm = fit_marchenko_pastur(ev / n, shape=(m, n), scale=n)
    assert norm.lambda_plus == pytest.approx(raw.lambda_plus / n, rel=1e-12)
    assert norm.sigma2 == pytest.approx(raw.sigma2 / n, rel=1e-12)
    assert norm.n_spikes == raw.n_spikes
    # the threshold is the Tracy-Widom 95 % point, in the same units
    M, N1 = min(m, n), max(m, n) - 1
    centre = (math.sqrt(N1) + math.sqrt(M)) ** 2
    width = (math.sqrt(N1) + math.sqrt(M)) * (1 / math.sqrt(N1) + 1 / math.sqrt(M)) ** (1 / 3)
    assert raw.spike_threshold == pytest.approx(raw.sigma2 * (centre + TW_95 * width), rel=1e-12)


def test_bad_input_is_named() -> None:
    ev = esd_eigenvalues(_noise(50, 20, 1.0, seed=6))
    with pytest.raises(DataError, match="20 eigenvalues"):
        fit_marchenko_pastur(ev[:-1], shape=(50, 20))
    with pytest.raises(DataError, match="shape"):
        fit_marchenko_pastur(ev, shape=(50,))
    with pytest.raises(DataError, match="NaN"):
        fit_marchenko_pastur(np.r_[ev[:-1], np.nan], shape=(50, 20))
    with pytest.raises(DataError, match="no noise bulk"):
        fit_marchenko_pastur(np.r_[np.zeros(15), ev[-5:]], shape=(50, 20))
    with pytest.raises(DataError, match="q must be"):
        marchenko_pastur_cdf(1.0, q=1.5)


def test_the_shuffled_distance_is_near_zero_on_noise_and_large_on_a_planted_signal() -> None:
    m, n, sigma = 800, 400, 0.1
    W = _noise(m, n, sigma, seed=7)
    noise = shuffled_spectrum(W, seed=1)
    assert noise.distance < 0.01
    assert noise.n_traps == 0
    assert noise.eigenvalues.sum() == pytest.approx(np.sum(W**2), rel=1e-9)  # same entries
    # a rank-4 signal holding about half the energy: the shuffled copy spreads it in the bulk
    bulk_energy = float(np.sum(W**2))
    strength = math.sqrt(bulk_energy / 4)
    signal = shuffled_spectrum(_planted(W, [strength] * 4, seed=8), seed=1)
    assert signal.distance > 0.3
    assert signal.distance > 30 * noise.distance


def test_a_single_huge_entry_is_a_correlation_trap() -> None:
    W = _noise(600, 300, 0.1, seed=9)
    W[10, 20] = 30.0  # survives shuffling: a spike of the shuffled copy
    trapped = shuffled_spectrum(W, seed=2)
    assert trapped.n_traps == 1
    assert trapped.distance < 0.01  # both ESDs have that spike


def test_the_shuffle_is_seeded_and_takes_torch() -> None:
    W = torch.from_numpy(_noise(120, 80, 1.0, seed=10)).float()
    a, b = shuffled_spectrum(W, seed=3), shuffled_spectrum(W, seed=3)
    np.testing.assert_array_equal(a.eigenvalues, b.eigenvalues)
    c = shuffled_spectrum(W, seed=4)
    assert not np.array_equal(a.eigenvalues, c.eigenvalues)
    with pytest.raises(DataError, match="seed"):
        shuffled_spectrum(W, seed=-1)


def test_esd_distance() -> None:
    x = np.array([1.0, 2.0, 3.0, 10.0])
    assert esd_distance(x, x[::-1]) == 0.0
    y = np.array([2.0, 2.0, 6.0, 6.0])  # same total 16
    assert esd_distance(x, y) == pytest.approx(0.5 * (1 + 0 + 3 + 4) / 16)
    with pytest.raises(DataError, match="different energies"):
        esd_distance(x, x * 2)
    with pytest.raises(DataError, match="must match"):
        esd_distance(x, x[:3])
