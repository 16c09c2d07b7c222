"""Inputs that produce a target output by optimising the input (Pattichis & Pattichis,
section 2.4).

**Optimisation** (:func:`optimise_input`), for any differentiable network (chains, CNNs,
residual networks, ``torch.export`` archives): Adam on the input (weights frozen) to
minimise ``||net(x) - target||^2`` from a training-based start: ``avg-img`` (average
training image of the class), ``min-img`` (the training image whose output is closest to
the target) or ``avg-min-img`` (the average of the closest 25 %).

The network runs as svdcore's one Jacobian engine runs it
(:func:`svdcore.jacobian.network_function`: the float64 eval copy; a fixed-batch
``torch.export`` program gets the sample in one row of its batch), and the objective's
gradient J^T 2 (net(x) - target) is the engine's vector-Jacobian product
(:func:`svdcore.jacobian.value_and_pullback`). The training-based starts run the training
images through the same copy in memory-bounded chunks, one sample per row of a fixed batch
(:func:`.targets.forward_batches`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from torch import nn

from .._validate import count
from ..exceptions import DataError
from ..jacobian import NetworkFunction, network_function, value_and_pullback
from ..network import Network
from .chains import module_and_shape
from .result import Inversion, check_labels, check_target
from .targets import as_samples, check_outputs, forward_batches, ideal_output, training_start

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
    outputs_train: torch.Tensor | np.ndarray | None = None,
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
    (``stopped=True``). The best input seen is returned (float64, CPU) with its output.
    ``outputs_train`` (N, C): the network's outputs on ``x_train`` when already computed
    (:func:`~svdcore.inversion.training_outputs`), for the ideal output and the min-img /
    avg-min-img starts; None runs the training images once, here.

    The network runs as the Jacobian engine runs it, in float64 on its eval copy (the
    network's own module and parameters are not touched; no gradients accumulate in them):
    any differentiable network, CNNs with skip connections and BatchNorm included; a
    ``torch.export`` archive traced at a fixed batch B runs the sample in one row of that
    batch (each step costs one pass of the program), and the training images for the ideal
    output and the min-img / avg-min-img starts run B per pass, one per row.

    Invariant (checked in tests): ``distance <= start_distance``; a batch-1 and a batch-8
    archive of one network, and the module itself, give the same result.
    Raises ``DataError`` for missing or mismatched training data, an unknown start, or
    bad ``steps``/``lr``; ``ExecutionError`` for a weights-only network.
    """
    module, input_shape, label = module_and_shape(net)
    count(steps, what="steps")
    if not isinstance(lr, int | float) or not math.isfinite(lr) or lr <= 0:
        raise DataError(f"lr must be a positive number, got {lr!r}.")
    if bounds is not None and (len(bounds) != 2 or not bounds[0] < bounds[1]):
        raise DataError(f"bounds must be (low, high) with low < high, got {bounds!r}.")
    X = as_samples(x_train, input_shape, label)
    shape = tuple(X.shape[1:])
    fn = _engine(net, module, shape, label)
    param = next(fn.module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    X = X.to(device=device)
    y = None if y_train is None else check_labels(y_train, X.shape[0])
    outputs = None if outputs_train is None else check_outputs(outputs_train, X.shape[0])
    if target is None:
        if y is None or cls is None:
            raise DataError(
                "without a target, pass y_train and cls: the target is then the ideal output "
                "of class cls (ideal_output)."
            )
        if outputs is None:
            outputs = forward_batches(fn, X)
        goal = ideal_output(outputs, y, cls)
    else:
        goal = check_target(target)

    x0, start_name = training_start(
        start, X=X, y=y, cls=cls, goal=goal, fn=fn, label=label, outputs=outputs
    )

    goal_dev = goal.to(device=device)
    x = x0.detach().clone()
    if bounds is not None:
        x = x.clamp(bounds[0], bounds[1])
    optimizer = torch.optim.Adam([x], lr=lr)
    best_x, best_out, best_d = x.detach().clone(), None, math.inf
    history: list[float] = []
    stopped = False
    taken = 0

    def dloss(out: torch.Tensor) -> torch.Tensor:  # d/d out of ||out - goal||^2
        if out.shape != goal_dev.shape:
            raise DataError(
                f"target has {goal.numel()} values but {label} has {out.numel()} outputs."
            )
        return 2 * (out - goal_dev)

    for step in range(steps + 1):  # x has had `step` updates here
        # the output and the objective's gradient J^T dloss, from the Jacobian engine
        with fn.lock:
            out, grad = value_and_pullback(fn.one, x, dloss)
        d = float((out.cpu() - goal).norm())
        history.append(d)
        if best_out is None or d < best_d or (math.isnan(best_d) and not math.isnan(d)):
            best_x, best_out, best_d = x.detach().clone(), out, d
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
    return Inversion.measured(
        best_x.to(device="cpu"),
        best_out.cpu(),
        goal,
        start_distance=history[0],
        method="optimise",
        start=start_name,
        steps=taken,
        stopped=stopped,
        history=tuple(history),
    )


def _engine(
    net: Network | nn.Module, module: nn.Module, shape: tuple[int, ...], label: str
) -> NetworkFunction:
    """The network as the Jacobian engine runs it; a bare module (or a Network that does not
    know its input shape) takes the training images' sample shape."""
    if not isinstance(net, Network) or net.input_shape is None:
        net = Network.from_module(module, input_shape=shape, name=label)
    return network_function(net, "inversion by optimisation")
