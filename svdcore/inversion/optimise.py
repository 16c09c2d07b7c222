"""Inputs that produce a target output by optimising the input (Pattichis & Pattichis,
section 2.4).

**Optimisation** (:func:`optimise_input`), for any differentiable network: Adam on the
input (weights frozen) to minimise ``||net(x) - target||^2`` from a training-based start:
``avg-img`` (average training image of the class), ``min-img`` (the training image whose

The gradient of the objective, J^T 2 (net(x) - target), is a vector-Jacobian product of
svdcore's one Jacobian engine (:func:`svdcore.jacobian.value_and_pullback`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from torch import nn

from ..exceptions import DataError
from ..jacobian import value_and_pullback
from ..network import Network
from .chains import module_and_shape
from .result import Inversion, check_labels, check_target
from .targets import forward_batches, ideal_output, training_start

__all__ = ["optimise_input"]


def optimise_input(
    net: Network | nn.Module,
    target: torch.Tensor | np.ndarray | None = None,
    *,
    start: Literal["avg-img", "min-img", "avg-min-img"] | torch.Tensor = "avg-img",
    x_train: torch.Tensor | np.ndarray,
    y_train: torch.Tensor | np.ndarray | None = None,
    cls: int | None = None,
    steps: int = 200,
    lr: float = 0.01,
    bounds: tuple[float, float] | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Inversion:
    """An input whose output is close to ``target``, by Adam on the input (weights frozen).

    ``target`` (C,); None means ``ideal_output(net(x_train), y_train, cls)``. ``start``:
    "avg-img" (the average of the training images of class ``cls``), "min-img" (the
    training image whose output is closest to the target), "avg-min-img" (the average of
    the closest 25 % of training images), or an input tensor. ``x_train`` (N, ...) the
    training images (reshaped to the network's input shape), ``y_train`` (N,) their labels.
    ``steps`` Adam steps of learning rate ``lr`` on ``||net(x) - target||^2``; ``bounds``
    (low, high) clamps the input after each step (e.g. (0, 1) for pixel images).
    ``progress(step, total, distance)`` is called after every step with the distance
    reached by it; ``should_stop()`` is asked before every step, and True ends the run
    (``stopped=True``). The best input
    seen is returned. The network's parameters are not modified (no gradients are
    accumulated in them).

    Invariant (checked in tests): ``distance <= start_distance``.
    Raises ``DataError`` for missing or mismatched training data, an unknown start, or
    bad ``steps``/``lr``; ``ExecutionError`` for a weights-only network.
    """
    module, input_shape, label = module_and_shape(net)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise DataError(f"steps must be a positive integer, got {steps!r}.")
    if not isinstance(lr, int | float) or not math.isfinite(lr) or lr <= 0:
        raise DataError(f"lr must be a positive number, got {lr!r}.")
    if bounds is not None and (len(bounds) != 2 or not bounds[0] < bounds[1]):
        raise DataError(f"bounds must be (low, high) with low < high, got {bounds!r}.")
    if isinstance(x_train, np.ndarray):
        x_train = torch.from_numpy(np.ascontiguousarray(x_train))
    if not isinstance(x_train, torch.Tensor) or x_train.ndim < 1 or x_train.shape[0] == 0:
        raise DataError("x_train must be a non-empty (N, ...) tensor of training images.")
    param = next(module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    X = x_train.detach().to(dtype=dtype, device=device)
    shape = tuple(input_shape) if input_shape else tuple(X.shape[1:])
    if math.prod(X.shape[1:]) != math.prod(shape):
        raise DataError(
            f"x_train has samples of shape {tuple(X.shape[1:])} but {label} takes inputs of "
            f"shape {shape}; pass the training images of this network."
        )
    X = X.reshape(X.shape[0], *shape)
    if not bool(torch.isfinite(X).all()):
        raise DataError("x_train contains NaN or infinite values.")
    y = None if y_train is None else check_labels(y_train, X.shape[0])
    outputs: torch.Tensor | None = None
    if target is None:
        if y is None or cls is None:
            raise DataError(
                "without a target, pass y_train and cls: the target is then the ideal output "
                "of class cls (ideal_output)."
            )
        outputs = forward_batches(module, X)
        goal = ideal_output(outputs, y, cls)
    else:
        goal = check_target(target)

    x0, start_name = training_start(
        start, X=X, y=y, cls=cls, goal=goal, module=module, label=label, outputs=outputs
    )

    goal_dev = goal.to(dtype=dtype, device=device)
    x = x0.detach().clone()
    if bounds is not None:
        x = x.clamp(bounds[0], bounds[1])
    optimizer = torch.optim.Adam([x], lr=lr)
    best_x, best_d = x.detach().clone(), math.inf
    history: list[float] = []
    stopped = False
    taken = 0

    def f(v: torch.Tensor) -> torch.Tensor:
        return module(v[None])[0]

    def dloss(out: torch.Tensor) -> torch.Tensor:  # d/d out of ||out - goal||^2
        if out.shape != goal_dev.shape:
            raise DataError(
                f"target has {goal.numel()} values but {label} has {out.numel()} outputs."
            )
        return 2 * (out - goal_dev)

    for step in range(steps + 1):  # x has had `step` updates here
        # the output and the objective's gradient J^T dloss, from the Jacobian engine
        out, grad = value_and_pullback(f, x, dloss)
        d = float((out.to(torch.float64).cpu() - goal).norm())
        history.append(d)
        if d < best_d:
            best_x, best_d = x.detach().clone(), d
        if step > 0 and progress is not None:
            progress(step, steps, d)
        if step == steps:
            break
        if should_stop is not None and should_stop():
            stopped = True
            break
        optimizer.zero_grad(set_to_none=True)
        x.grad = grad
        optimizer.step()
        if bounds is not None:
            with torch.no_grad():
                x.clamp_(bounds[0], bounds[1])
        taken = step + 1
    start_distance = history[0]
    with torch.no_grad():
        output = module(best_x[None])[0].to(torch.float64).cpu()
    return Inversion.measured(
        best_x.to(dtype=torch.float64, device="cpu"),
        output,
        goal,
        start_distance=start_distance,
        method="optimise",
        start=start_name,
        steps=taken,
        stopped=stopped,
        history=tuple(history),
    )
