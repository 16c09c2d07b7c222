"""8-bit float weights and their scales: the real weights of an fp8 checkpoint.

An fp8 tensor (float8_e4m3fn, float8_e5m2 and their "fnuz" variants) holds the weights
divided by a scale stored beside it, so its raw values are not the model's weights. Two
layouts are in use (both read here, never guessed from the values):

- **block scales** ``<key>_scale_inv`` (DeepSeek-V3, Qwen3-FP8 and other "block-wise fp8"
  checkpoints): a float32 matrix (ceil(m / b_m), ceil(n / b_n)) for a weight (m, n), one
  scale per b_m x b_n block (128 x 128 in those models); the weight is
  ``W[i, j] = q[i, j] * s[i // b_m, j // b_n]`` (DeepSeek's ``weight_dequant``: despite
  the name, the stored factor multiplies);
- **per-tensor or per-channel scales** ``<key>_scale`` (compressed-tensors, FBGEMM and
  vLLM fp8): a scalar, or one scale per output row ((m,) or (m, 1)); ``W = q * s``.

:func:`dequantize` applies a scale in float64 (an fp8 value times a float32 scale is exact
there) and returns the requested dtype. Block sizes are 128 when the scale's shape agrees
with 128, else the one block size that makes the grid cover the weight evenly.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import torch

from .exceptions import DataError

__all__ = ["FP8_DTYPES", "SCALE_SUFFIXES", "block_size", "dequantize", "scale_key"]

FP8_DTYPES = frozenset({"float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"})
# the stored names of a weight's scale, in the order they are looked for
SCALE_SUFFIXES = ("_scale_inv", "_scale")
_DEFAULT_BLOCK = 128


def scale_key(key: str, keys: Collection[str]) -> str | None:
    """The key of the scale stored for fp8 tensor ``key`` among ``keys`` (None: none)."""
    for suffix in SCALE_SUFFIXES:
        if f"{key}{suffix}" in keys:
            return f"{key}{suffix}"
    return None


def block_size(length: int, blocks: int) -> int:
    """The block length along an axis of ``length`` entries cut into ``blocks`` blocks:
    128 when that gives ``blocks``, else ceil(length / blocks) when that does."""
    if blocks < 1 or blocks > length:
        raise DataError(f"{blocks} scale blocks cannot cover an axis of {length} entries.")
    if math.ceil(length / _DEFAULT_BLOCK) == blocks:
        return _DEFAULT_BLOCK
    size = math.ceil(length / blocks)
    if math.ceil(length / size) != blocks:
        raise DataError(f"{blocks} scale blocks do not cut an axis of {length} evenly.")
    return size


def dequantize(
    q: torch.Tensor, scale: torch.Tensor, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The weights ``q * scale`` (see the module docstring) as ``dtype``.

    ``q`` (m, n, ...) any float dtype; ``scale`` a scalar, (m,), (m, 1) or a 2-D block grid
    over the first two axes (a weight of more axes is scaled over its (m, prod(rest))
    matrix). Raises ``DataError`` for a scale of any other shape or with NaN / Inf.
    """
    s = scale.to(torch.float64)
    if not bool(torch.isfinite(s).all()):
        raise DataError(f"the scale of shape {tuple(scale.shape)} holds NaN or infinite values.")
    W = q.to(torch.float64)
    shape = W.shape
    if W.ndim < 1:
        raise DataError("an fp8 scale applies to a tensor of at least one axis.")
    m = shape[0]
    rest = math.prod(shape[1:]) if W.ndim > 1 else 1
    if s.numel() == 1:
        out = W * s.reshape(())
    elif (s.ndim == 1 and s.shape[0] == m) or (s.ndim == 2 and tuple(s.shape) == (m, 1)):
        out = (W.reshape(m, rest) * s.reshape(m, 1)).reshape(shape)
    elif s.ndim == 2 and W.ndim >= 2:
        bm, bn = block_size(m, s.shape[0]), block_size(rest, s.shape[1])
        grid = s.repeat_interleave(bm, dim=0)[:m].repeat_interleave(bn, dim=1)[:, :rest]
        out = (W.reshape(m, rest) * grid).reshape(shape)
    else:
        raise DataError(
            f"a scale of shape {tuple(scale.shape)} does not fit a weight of shape "
            f"{tuple(shape)}: expected a scalar, ({m},), ({m}, 1) or a 2-D block grid."
        )
    return out.to(dtype)
