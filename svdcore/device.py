"""Device and dtype policy.

svdcore computes on CUDA when torch sees a GPU and on the CPU otherwise. The environment
variable ``SVDSCOPE_DEVICE`` (``cpu``, ``cuda``, ``cuda:1`` ...) overrides the choice.
Results mean the same on every device; float32 is the default working precision and
float64 is available on request (``precision="float64"``).
"""

from __future__ import annotations

import os
from typing import Literal

import torch

from .exceptions import DataError, SvdscopeError

__all__ = ["Precision", "default_device", "resolve_dtype", "to_device"]

Precision = Literal["float32", "float64"]

_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}


def default_device() -> torch.device:
    """The device svdcore computes on: ``SVDSCOPE_DEVICE`` if set, else cuda if available.

    Raises ``SvdscopeError`` when ``SVDSCOPE_DEVICE`` names a device torch cannot use.
    """
    requested = os.environ.get("SVDSCOPE_DEVICE", "").strip()
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError as exc:
            raise SvdscopeError(
                f"SVDSCOPE_DEVICE={requested!r} is not a device torch understands; "
                "use 'cpu', 'cuda' or 'cuda:N'."
            ) from exc
        if device.type == "cuda" and not torch.cuda.is_available():
            raise SvdscopeError(
                f"SVDSCOPE_DEVICE={requested!r} asks for CUDA but torch sees no GPU; "
                "unset it or set it to 'cpu'."
            )
        return device
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def resolve_dtype(precision: Precision | torch.dtype | None = None) -> torch.dtype:
    """Map ``"float32"``/``"float64"`` (or a torch float dtype, or None -> float32) to a dtype."""
    if precision is None:
        return torch.float32
    if isinstance(precision, torch.dtype):
        if precision not in (torch.float32, torch.float64):
            raise DataError(f"precision {precision} is not supported; use float32 or float64.")
        return precision
    try:
        return _DTYPES[precision]
    except KeyError:
        raise DataError(
            f"precision {precision!r} is not supported; use 'float32' or 'float64'."
        ) from None


def to_device(
    x: torch.Tensor, *, device: torch.device | str | None = None, precision=None
) -> torch.Tensor:
    """Move ``x`` to ``device`` (default: :func:`default_device`) as a float32/float64 tensor."""
    target = torch.device(device) if device is not None else default_device()
    return x.to(device=target, dtype=resolve_dtype(precision))
