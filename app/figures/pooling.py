"""Display-side reduction of large matrices (max-abs pooling); pure numpy, no svdcore."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = ["Pooled", "pool_max_abs"]


class Pooled(NamedTuple):
    values: np.ndarray  # float32 (ceil(m / row_factor), ceil(n / col_factor))
    row_factor: int
    col_factor: int

    @property
    def pooled(self) -> bool:
        return self.row_factor > 1 or self.col_factor > 1


def pool_max_abs(matrix: np.ndarray, max_side: int = 512) -> Pooled:
    """Shrink `matrix` (m, n) to at most `max_side` per axis by blocks of fr x fc entries.

    Each block keeps the signed value of its largest-magnitude entry, so isolated extreme
    weights stay visible with their sign (a mean would wash them out). NaN wins its block.
    Invariant: max |pooled| == max |matrix|, and pooled is matrix itself when it fits.
    """
    W = np.asarray(matrix, dtype=np.float32)
    if W.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {W.shape}")
    m, n = W.shape
    fr = max(1, math.ceil(m / max_side))
    fc = max(1, math.ceil(n / max_side))
    if fr == 1 and fc == 1:
        return Pooled(W, 1, 1)
    mp, np_ = math.ceil(m / fr), math.ceil(n / fc)
    padded = np.zeros((mp * fr, np_ * fc), dtype=np.float32)
    padded[:m, :n] = W
    blocks = padded.reshape(mp, fr, np_, fc).transpose(0, 2, 1, 3).reshape(mp, np_, fr * fc)
    mag = np.abs(blocks)
    mag[np.isnan(mag)] = np.inf
    idx = np.argmax(mag, axis=2)[..., None]
    values = np.take_along_axis(blocks, idx, axis=2)[..., 0]
    return Pooled(np.ascontiguousarray(values), fr, fc)
