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
from torch.func import vmap

from ..exceptions import DataError
from ..jacobian import NetworkFunction, chunk_size, network_function
from ..network import Network
from .result import check_labels

__all__ = [
    "START_METHODS",
    "as_samples",
    "check_outputs",
    "forward_batches",
    "ideal_output",
    "training_outputs",
    "training_start",
]

START_METHODS: tuple[str, ...] = ("avg-img", "min-img", "avg-min-img")


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


def forward_batches(
    fn: NetworkFunction, x: torch.Tensor, *, budget_bytes: int | None = None
) -> torch.Tensor:
    """The network on the samples ``x`` (n, ...), float64 (n, N), without gradients.

    Runs the engine's float64 copy (``fn``, :func:`svdcore.jacobian.network_function`) in
    chunks of ``chunk_size(8 * (M + width))`` samples (M inputs, ``width`` values computed
    per sample), so one chunk's values stay within ``budget_bytes`` (default 256 MiB). A
    fixed-batch program (batch B) takes the chunk B samples at a time, one sample per row
    (``vmap`` over the groups of B), the last group zero-padded and its padding dropped.
    Invariant (tests): equal, row by row, to ``fn.one`` of each sample.
    """
    n = int(x.shape[0])
    if n == 0:
        raise DataError("no samples to run the network on.")
    flat = x.reshape(n, -1)
    param = next(fn.module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    first = flat[0].to(dtype=torch.float64, device=device)
    batch = fn.net.static_batch  # None: any number of rows
    rows = batch or 1
    chunk = chunk_size(8 * (flat.shape[1] + fn.width(first)), budget_bytes)
    chunk = rows * max(1, chunk // rows)
    out: list[torch.Tensor] = []
    for part in torch.split(flat, chunk):
        part = part.to(dtype=torch.float64, device=device)
        c = part.shape[0]
        with fn.lock, torch.no_grad():
            if batch is None:
                out.append(fn.many(part))
                continue
            groups = -(-c // batch)
            pad = part.new_zeros(groups * batch - c, part.shape[1])
            packs = torch.cat([part, pad]).reshape(groups, batch, -1)
            out.append(vmap(fn.many)(packs).reshape(groups * batch, -1)[:c])
    return torch.cat(out).detach()


def as_samples(
    x: torch.Tensor | np.ndarray, shape: tuple[int, ...] | None, label: str
) -> torch.Tensor:
    """``x`` (N, ...) as a batch of samples of ``shape`` (None: ``x``'s own), float32
    unless float64 already (half the memory of float64; chunks run in float64 later).
    Raises ``DataError`` for an empty, complex, non-finite or mismatched ``x``."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor) or x.ndim < 1 or x.shape[0] == 0:
        raise DataError("x_train must be a non-empty (N, ...) tensor of training images.")
    if x.is_complex():
        raise DataError("x_train must hold real values.")
    shape = tuple(shape) if shape else tuple(x.shape[1:])
    if math.prod(x.shape[1:]) != math.prod(shape):
        raise DataError(
            f"x_train has samples of shape {tuple(x.shape[1:])} but {label} takes inputs "
            f"of shape {shape}; pass the training images of this network."
        )
    X = x.detach()
    X = X if X.dtype in (torch.float32, torch.float64) else X.to(torch.float32)
    X = X.reshape(X.shape[0], *shape)
    if not bool(torch.isfinite(X).all()):
        raise DataError("x_train contains NaN or infinite values.")
    return X


def training_outputs(
    net: Network, x: torch.Tensor | np.ndarray, *, budget_bytes: int | None = None
) -> torch.Tensor:
    """The outputs of ``net`` on the training images ``x`` (N, ...), float64 (N, C), as the
    Jacobian engine runs it (:func:`forward_batches`: its float64 eval copy in chunks of
    at most ``budget_bytes``, one sample per row of a fixed batch). What
    :func:`ideal_output` and :func:`~svdcore.inversion.optimise_input` (``outputs_train``)
    take. Raises ``ExecutionError`` for a network that cannot run, ``DataError`` for
    samples that do not fit it."""
    fn = network_function(net, "the outputs on training images")
    return forward_batches(fn, as_samples(x, net.input_shape, net.name), budget_bytes=budget_bytes)


def check_outputs(outputs: torch.Tensor | np.ndarray, n: int) -> torch.Tensor:
    """``outputs`` (n, C) of the network on the training images as float64 (CPU)."""
    if isinstance(outputs, np.ndarray):
        outputs = torch.from_numpy(np.ascontiguousarray(outputs))
    if not isinstance(outputs, torch.Tensor) or outputs.ndim != 2 or outputs.shape[0] != n:
        shape = tuple(getattr(outputs, "shape", ()))
        raise DataError(
            f"outputs_train of shape {shape} does not fit {n} training images: pass the "
            "network's (N, C) outputs on x_train (training_outputs)."
        )
    out = outputs.detach().to(dtype=torch.float64, device="cpu")
    if not bool(torch.isfinite(out).all()):
        raise DataError("outputs_train contains NaN or infinite values.")
    return out


def training_start(
    start: str | torch.Tensor | np.ndarray,
    *,
    X: torch.Tensor,
    y: torch.Tensor | None,
    cls: int | None,
    goal: torch.Tensor,
    fn: NetworkFunction,
    label: str,
    outputs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, str]:
    """The start input (float64, of ``X``'s sample shape and device) and its name.

    ``start``: one of :data:`START_METHODS` or an input tensor ("given"); ``X`` (N, ...)
    the training images, ``y`` (N,) their labels, ``goal`` (C,) float64 the target,
    ``fn`` the network as the engine runs it (for the outputs on ``X`` of min-img and
    avg-min-img, :func:`forward_batches`), ``outputs`` those outputs when already computed.
    Raises ``DataError`` for an unknown start or missing labels / class.
    """
    shape = tuple(X.shape[1:])
    device = X.device
    if isinstance(start, torch.Tensor | np.ndarray):
        x0 = torch.as_tensor(start).detach().to(dtype=torch.float64, device=device)
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
        return X[members.to(device)].double().mean(dim=0), "avg-img"
    if start in ("min-img", "avg-min-img"):
        if outputs is None:
            outputs = forward_batches(fn, X)
        if outputs.shape[1:] != goal.shape:
            raise DataError(
                f"target has {goal.numel()} values but {label} has {outputs.shape[1]} outputs."
            )
        dist = (outputs.to(torch.float64).cpu() - goal).norm(dim=1)
        if start == "min-img":
            return X[int(dist.argmin())].double(), "min-img"
        k = max(1, math.ceil(0.25 * X.shape[0]))
        closest = torch.topk(dist, k, largest=False).indices
        return X[closest.to(device)].double().mean(dim=0), "avg-min-img"
    raise DataError(
        f"unknown start {start!r}; use one of {', '.join(START_METHODS)} or an input tensor."
    )
