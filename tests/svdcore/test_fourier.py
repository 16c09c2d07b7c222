"""svdcore.fourier: |fftshift(fft2)|, the symmetrised view of Amey et al., log, axes."""

import numpy as np
import pytest
import torch

import svdcore as sc
from svdcore.fourier import fft2_view, mirror_columns


@pytest.mark.parametrize("shape", [(8, 16), (7, 9), (1, 5), (5, 1)])
def test_plain_view_matches_numpy_and_parseval(shape):
    A = np.random.default_rng(0).standard_normal(shape)
    v = fft2_view(torch.from_numpy(A))
    np.testing.assert_allclose(v.magnitude, np.abs(np.fft.fftshift(np.fft.fft2(A))), atol=1e-12)
    assert (v.magnitude**2).sum() == pytest.approx(A.size * (A**2).sum())
    m, n = shape
    assert v.row_freq.shape == (m,) and v.col_freq.shape == (n,)
    assert v.row_freq[m // 2] == 0 and v.col_freq[n // 2] == 0
    assert np.all(np.diff(v.col_freq) > 0) and v.col_freq.min() >= -0.5 and v.col_freq.max() < 0.5


@pytest.mark.parametrize("n", [6, 7])
def test_mirror_maps_each_input_frequency_to_its_negative(n):
    A = np.random.default_rng(1).standard_normal((4, n))
    F = np.fft.fftshift(np.fft.fft2(A))
    f = np.fft.fftshift(np.fft.fftfreq(n))
    M = mirror_columns(F)
    for j in range(n):
        target = -f[j] if abs(f[j]) != 0.5 else f[j]  # Nyquist is its own mirror
        np.testing.assert_allclose(M[:, j], F[:, np.argmin(np.abs(f - target))])
    np.testing.assert_allclose(mirror_columns(M), F)
    if n % 2 == 0:  # Amey et al.'s circshift(fliplr(F), 1, 2)
        np.testing.assert_allclose(M, np.roll(np.fliplr(F), 1, axis=1))


def test_symmetrised_and_log_views():
    A = np.random.default_rng(2).standard_normal((6, 10))
    F = np.fft.fftshift(np.fft.fft2(A))
    sym = fft2_view(A, symmetrize=True)
    np.testing.assert_allclose(sym.magnitude, np.abs(F) + np.abs(mirror_columns(F)))
    # symmetric in the input frequency sign (away from the unpaired Nyquist column)
    np.testing.assert_allclose(sym.magnitude[:, 1:], sym.magnitude[:, 1:][:, ::-1])
    lg = fft2_view(A, log=True)
    np.testing.assert_allclose(lg.magnitude, np.log10(np.abs(F) + 1e-12 * np.abs(F).max()))
    assert np.isfinite(fft2_view(np.zeros((3, 3)), log=True).magnitude).all()
    assert sym.symmetrized and lg.log


def test_a_single_sinusoid_lands_on_its_frequency():
    n = 32
    cols = np.arange(n)
    A = np.tile(np.cos(2 * np.pi * 5 * cols / n), (4, 1))
    v = fft2_view(A)
    peak = np.unravel_index(np.argmax(v.magnitude), v.magnitude.shape)
    assert v.row_freq[peak[0]] == 0 and abs(v.col_freq[peak[1]]) == pytest.approx(5 / n)


def test_bad_input():
    with pytest.raises(sc.DataError, match="NaN"):
        fft2_view(np.array([[np.nan, 1.0]]))
    with pytest.raises(sc.DataError, match="2-D"):
        fft2_view(np.ones(4))
