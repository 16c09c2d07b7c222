"""Input checks shared by the analyses: every bad array gets a sentence naming the problem."""

from __future__ import annotations

import numpy as np
import torch

from .exceptions import DataError

__all__ = ["as_eigenvalues", "as_matrix", "as_real_tensor", "count"]


def count(
    value: object, *, what: str, minimum: int = 1, none: bool = False, note: str = ""
) -> int | None:
    """``value`` as an int >= ``minimum`` (Python or numpy integers; bools are not counts),
    None when ``none`` allows it, or ``DataError``: "<what> must be a positive integer
    [or None]<note>, got <value>." (a non-negative integer for ``minimum`` 0)."""
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        if minimum == 0:
            kind = "a non-negative integer"
        raise DataError(f"{what} must be {kind}{' or None' if none else ''}{note}, got {value!r}.")
    return int(value)


def as_real_tensor(
    x: torch.Tensor | np.ndarray,
    *,
    what: str,
    complex_note: str = "svdscope analyses real weights only",
) -> torch.Tensor:
    """``x`` as a real torch tensor (a numeric numpy array is wrapped, not copied where it is
    contiguous), or ``DataError``: not an array, not numeric, or complex (the sentence ends
    with ``complex_note``). Shape, dtype and values are left as they are.
    """
    if isinstance(x, np.ndarray):
        if x.dtype == object or not np.issubdtype(x.dtype, np.number):
            raise DataError(f"{what} must be numeric, got an array of dtype {x.dtype}.")
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, torch.Tensor):
        raise DataError(f"{what} must be a torch.Tensor or numpy array, got {type(x).__name__}.")
    if x.is_complex():
        raise DataError(f"{what} is complex ({x.dtype}); {complex_note}.")
    return x


def as_matrix(
    W: torch.Tensor | np.ndarray,
    *,
    what: str = "matrix",
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    check_finite: bool = True,
) -> torch.Tensor:
    """Return ``W`` as a finite, non-empty, real 2-D floating tensor, or raise ``DataError``.

    ``dtype`` defaults to float32 for integer/half inputs and keeps float32/float64 as they are.
    ``check_finite=False`` skips the NaN/Inf scan (a full pass over W) for callers that
    check a cheaper derived quantity instead and call again to explain a failure.
    """
    W = as_real_tensor(W, what=what)
    if W.ndim != 2:
        raise DataError(
            f"{what} must be 2-D, got shape {tuple(W.shape)}; "
            "pick a matrix view of the layer (e.g. 'unfolded' or 'kernels' for convolutions)."
        )
    if W.numel() == 0:
        raise DataError(f"{what} is empty (shape {tuple(W.shape)}); there is nothing to analyse.")
    if dtype is None:
        dtype = W.dtype if W.dtype in (torch.float32, torch.float64) else torch.float32
    W = W.to(dtype=dtype, device=device) if device is not None else W.to(dtype=dtype)
    if not check_finite:
        return W
    finite = torch.isfinite(W)
    if not bool(finite.all()):
        bad = (~finite).nonzero()
        n_nan = int(torch.isnan(W).sum())
        n_inf = int(bad.shape[0]) - n_nan
        first = tuple(int(i) for i in bad[0])
        raise DataError(
            f"{what} of shape {tuple(W.shape)} contains {n_nan} NaN and {n_inf} infinite "
            f"value(s), the first at index {first}; remove or replace them first."
        )
    return W


def as_eigenvalues(eigenvalues: object) -> np.ndarray:
    """``eigenvalues`` (of W^T W: list, numpy or torch, 1-D, finite, >= 0) as float64 numpy,
    or ``DataError`` naming what is wrong."""
    if isinstance(eigenvalues, torch.Tensor):
        eigenvalues = eigenvalues.detach().cpu().double().numpy()
    elif isinstance(eigenvalues, list | tuple):
        try:
            eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError("eigenvalues must be a list of numbers.") from None
    if not isinstance(eigenvalues, np.ndarray):
        raise DataError(
            f"eigenvalues must be a numpy array or torch.Tensor, got {type(eigenvalues).__name__}."
        )
    if eigenvalues.dtype == object or not np.issubdtype(eigenvalues.dtype, np.number):
        raise DataError(f"eigenvalues must be numeric, got an array of dtype {eigenvalues.dtype}.")
    if np.iscomplexobj(eigenvalues):
        raise DataError("eigenvalues are complex; pass the real eigenvalues of W^T W.")
    if eigenvalues.ndim != 1:
        raise DataError(
            f"eigenvalues must be 1-D, got shape {tuple(eigenvalues.shape)}; for a matrix W "
            "use esd_eigenvalues(W)."
        )
    if eigenvalues.size == 0:
        raise DataError("eigenvalues is empty; there is nothing to fit.")
    ev = eigenvalues.astype(np.float64)
    if not np.isfinite(ev).all():
        bad = int((~np.isfinite(ev)).sum())
        raise DataError(f"eigenvalues contain {bad} NaN or infinite value(s); remove them first.")
    if (ev < 0).any():
        raise DataError(
            f"eigenvalues must be >= 0 (eigenvalues of W^T W), got a minimum of {ev.min():.3g}."
        )
    return ev
