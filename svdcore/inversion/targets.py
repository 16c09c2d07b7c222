"""What an optimised input aims at and where it starts (Pattichis & Pattichis, section 2.4).

The default target is the *ideal output* (:func:`ideal_output`): the largest value output
``cls`` reaches on training images of class ``cls``, and the smallest value over all
training images for every other output. Starts (:func:`training_start`): ``avg-img`` (the
average training image of the class), ``min-img`` (the training image whose output is
closest to the target) or ``avg-min-img`` (the average of the closest 25 %).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..exceptions import DataError
from .result import check_labels

__all__ = ["START_METHODS", "forward_batches", "ideal_output", "training_start"]

START_METHODS: tuple[str, ...] = ("avg-img", "min-img", "avg-min-img")
_CHUNK = 4096


def ideal_output(
    outputs_train: torch.Tensor | np.ndarray,
    y_train: torch.Tensor | np.ndarray,
    cls: int,
) -> torch.Tensor:
    """The ideal output for class ``cls`` (Pattichis section 2.4), float64 (C,).

    ``outputs_train`` (N, C): the network's outputs on the training images; ``y_train``
    (N,) their labels. Entry ``cls`` is the largest value output ``cls`` takes on the
    training images of class ``cls``; every other entry ``j`` is the smallest value output
    ``j`` takes over all training images. Invariant (checked in tests): the ideal output
    lies inside the range of the training outputs, column by column.
    Raises ``DataError`` for mismatched shapes, NaN, or a class with no training image.
    """
    if isinstance(outputs_train, np.ndarray):
        outputs_train = torch.from_numpy(np.ascontiguousarray(outputs_train))
    if not isinstance(outputs_train, torch.Tensor) or outputs_train.ndim != 2:
        shape = getattr(outputs_train, "shape", None)
        raise DataError(f"outputs_train must be a 2-D (N, C) array of outputs, got shape {shape}.")
    out = outputs_train.detach().to(dtype=torch.float64, device="cpu")
    if out.numel() == 0:
        raise DataError("outputs_train is empty; run the network on training images first.")
    if not bool(torch.isfinite(out).all()):
        raise DataError("outputs_train contains NaN or infinite values.")
    y = check_labels(y_train, out.shape[0])
    C = out.shape[1]
    if isinstance(cls, bool) or not isinstance(cls, int | np.integer) or not 0 <= cls < C:
        raise DataError(f"cls must be a class index in [0, {C}), got {cls!r}.")
    members = y == int(cls)
    if not bool(members.any()):
        raise DataError(f"no training image has class {cls}; pick a class present in y_train.")
    ideal = out.min(dim=0).values.clone()
    ideal[int(cls)] = out[members, int(cls)].max()
    return ideal


def forward_batches(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module`` on the batch ``x`` in chunks of 4096 rows, without gradients."""
    with torch.no_grad():
        return torch.cat([module(chunk) for chunk in torch.split(x, _CHUNK)])


def training_start(
    start: str | torch.Tensor | np.ndarray,
    *,
    X: torch.Tensor,
    y: torch.Tensor | None,
    cls: int | None,
    goal: torch.Tensor,
    module: nn.Module,
    label: str,
    outputs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, str]:
    """The start input (of ``X``'s sample shape, dtype and device) and its name.

    ``start``: one of :data:`START_METHODS` or an input tensor ("given"); ``X`` (N, ...)
    the training images, ``y`` (N,) their labels, ``goal`` (C,) float64 the target,
    ``outputs`` the module's outputs on ``X`` when already computed.
    Raises ``DataError`` for an unknown start or missing labels / class.
    """
    shape = tuple(X.shape[1:])
    device = X.device
    if isinstance(start, torch.Tensor | np.ndarray):
        x0 = torch.as_tensor(start).detach().to(dtype=X.dtype, device=device)
        if x0.numel() != math.prod(shape):
            raise DataError(
                f"start has {x0.numel()} values but {label} takes inputs of shape {shape}."
            )
        return x0.reshape(shape), "given"
    if start == "avg-img":
        if y is None or cls is None:
            raise DataError("start='avg-img' needs y_train and cls (the class to average).")
        members = y == int(cls)
        if not bool(members.any()):
            raise DataError(f"no training image has class {cls}; pick a class present in y_train.")
        return X[members.to(device)].mean(dim=0), "avg-img"
    if start in ("min-img", "avg-min-img"):
        if outputs is None:
            outputs = forward_batches(module, X)
        if outputs.shape[1:] != goal.shape:
            raise DataError(
                f"target has {goal.numel()} values but {label} has {outputs.shape[1]} outputs."
            )
        dist = (outputs.to(torch.float64).cpu() - goal).norm(dim=1)
        if start == "min-img":
            return X[int(dist.argmin())], "min-img"
        k = max(1, math.ceil(0.25 * X.shape[0]))
        closest = torch.topk(dist, k, largest=False).indices
        return X[closest.to(device)].mean(dim=0), "avg-min-img"
    raise DataError(
        f"unknown start {start!r}; use one of {', '.join(START_METHODS)} or an input tensor."
    )
