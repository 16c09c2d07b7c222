"""2-D Fourier views of weight matrices (Amey et al. 2021, Fig. 2; Sule et al., Fig. 3).

F = fftshift(fft2(M)) puts zero frequency at the centre of both axes. The symmetrised view
adds the magnitude mirrored over the *input* (column) frequency sign:
|F| + |circshift(fliplr(F), 1, axis=1)| for an even number of columns, as in Amey et al.'s
code; for an odd number the mirror needs no shift (fftshift already centres zero), and that
exact mirror is used. Frequencies are in cycles per sample, from ``np.fft.fftfreq``. The
transform runs on :func:`svdcore.device.default_device` (float64 everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._validate import as_matrix
from .device import default_device

__all__ = ["FFTView", "fft2_view", "mirror_columns"]


@dataclass(frozen=True)
class FFTView:
    """|F| (or its symmetrised / log10 form) of shape (m, n), with the frequency axes.

    ``row_freq`` (m,) and ``col_freq`` (n,): cycles/sample, ascending, zero at index m // 2
    and n // 2. ``magnitude[i, j]`` belongs to (row_freq[i], col_freq[j]).
    """

    magnitude: np.ndarray
    row_freq: np.ndarray
    col_freq: np.ndarray
    symmetrized: bool
    log: bool


def mirror_columns(F: np.ndarray) -> np.ndarray:
    """F with its column (input) frequency axis mirrored: column of f -> column of -f.

    For an fftshift-ed spectrum with n columns: circshift(fliplr(F), 1, axis=1) if n is even,
    fliplr(F) if n is odd. Invariant: applying it twice gives F back.
    """
    flipped = F[:, ::-1]
    return np.roll(flipped, 1, axis=1) if F.shape[1] % 2 == 0 else flipped.copy()


def fft2_view(
    M: torch.Tensor | np.ndarray,
    *,
    symmetrize: bool = False,
    log: bool = False,
) -> FFTView:
    """|fftshift(fft2(M))| for a real matrix M (m, n), optionally symmetrised and in log10.

    ``log=True`` returns log10(|F| + eps), eps = 1e-12 * max|F| (so zeros stay finite).
    Invariant (Parseval): sum |F|^2 == m n sum M^2 for the plain view.
    """
    device = default_device()
    A = as_matrix(M, what="matrix", dtype=torch.float64, device=device)
    m, n = A.shape
    if device.type == "cpu":  # pocketfft (numpy) on the CPU, cuFFT (torch) on a GPU
        F = np.fft.fftshift(np.fft.fft2(A.numpy()))
    else:
        F = torch.fft.fftshift(torch.fft.fft2(A)).cpu().numpy()
    mag = np.abs(F)
    if symmetrize:
        mag = mag + np.abs(mirror_columns(F))
    if log:
        top = float(mag.max())
        mag = np.log10(mag + (1e-12 * top if top > 0 else 1e-300))
    return FFTView(
        magnitude=mag,
        row_freq=np.fft.fftshift(np.fft.fftfreq(m)),
        col_freq=np.fft.fftshift(np.fft.fftfreq(n)),
        symmetrized=symmetrize,
        log=log,
    )
