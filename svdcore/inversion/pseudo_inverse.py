"""Inputs that produce a target output by inverting a chain layer by layer (Pattichis &
Pattichis, section 2.4, eq. 5), refined by Gauss-Newton steps.

**Pseudo-inverse** (:func:`pseudo_inverse_input`), for a chain of ``Linear`` layers and
invertible element-wise activations (SELU, tanh, sigmoid, leaky ReLU with a positive slope,
ELU, identity): walk the chain backwards, ``h = f^{-1}(out)`` through each activation and
``x = W^+ (h - b)`` through each Linear layer (Pattichis eq. 5; float64, ``W^+`` from the
SVD with the numerical-rank tolerance of the stored weights). Values outside an
activation's range (e.g. below SELU's -1.7581, outside tanh's (-1, 1)) are clipped into it
and counted: such a target is not reachable exactly.

Eq. 5 alone is exact only when every Linear layer can reach any vector (``W`` wide or
square with full row rank, e.g. the 1-layer ``digits`` net 64 -> 10). When a layer expands
(``digits-5layer`` starts 64 -> 256), the minimum-norm pre-images chosen by the later
layers are in general not outputs the earlier layers can produce, so the layer-by-layer
input misses the target (measured on digits-5layer: output distance ~10^2 for a target
the network does reach). The result is then refined by Gauss-Newton steps on the input,
``x <- x + J^+ r`` (the pseudo-inverse of the chain's local Jacobian ``J``, i.e. eq. 5 for
the linearised network), with ``r`` measured before the output activation, started from
the layer-by-layer input, from zeros and from an optional ``start``; the best is kept.
``Inversion.start_distance`` keeps the eq. 5 distance, so the refinement is visible.

The Jacobian of the chain for the Gauss-Newton steps comes from svdcore's one Jacobian
engine (:func:`svdcore.jacobian.jacobian_operator`, materialised densely: the chains are
small).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..exceptions import DataError
from ..jacobian import jacobian_operator
from ..network import Network
from ..spectrum import default_rtol
from .activations import invert_activation
from .chains import ChainOp, checked_chain, not_invertible, run_chain
from .result import Inversion, check_target

__all__ = ["pseudo_inverse_input"]

# A refined input that misses by less than this (relative) is as close as float32 outputs
# can be; no warning then.
_WARN_RELATIVE = 1e-6


def _value_and_jacobian(
    ops: Sequence[ChainOp], x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chain output at one input ``x`` (n,) and its Jacobian (out, n), from the engine."""
    op = jacobian_operator(lambda v: run_chain(ops, v[None])[0], x)
    return op.value, op.dense()


def _gauss_newton(
    ops: Sequence[ChainOp],
    x: torch.Tensor,
    goal: torch.Tensor,
    *,
    steps: int,
    tol: float,
) -> tuple[torch.Tensor, int]:
    """Minimum-norm Gauss-Newton steps ``x += J^+ (goal - chain(x))`` with backtracking."""
    value, J = _value_and_jacobian(ops, x)
    r = goal - value
    d = float(r.norm())
    limit = tol * max(1.0, float(goal.norm()))
    taken = 0
    for _ in range(steps):
        if d <= limit:
            break
        rcond = default_rtol(tuple(J.shape), J.dtype)  # svdcore's one rank tolerance
        dx = torch.linalg.lstsq(J, r[:, None], rcond=rcond, driver="gelsd").solution[:, 0]
        a, improved = 1.0, False
        for _halving in range(30):
            xn = x + a * dx
            rn = goal - run_chain(ops, xn[None])[0]
            dn = float(rn.norm())
            if math.isfinite(dn) and dn < d:
                improved = True
                break
            a *= 0.5
        if not improved:
            break
        x, d = xn, dn
        value, J = _value_and_jacobian(ops, x)
        r = goal - value
        taken += 1
    return x, taken


def pseudo_inverse_input(
    net: Network | nn.Module,
    target: torch.Tensor | np.ndarray,
    *,
    refine_steps: int = 50,
    start: torch.Tensor | np.ndarray | None = None,
    margin: float = 1e-9,
    rtol: float | None = None,
    tol: float = 1e-10,
) -> Inversion:
    """An input whose output is ``target``, by inverting the chain layer by layer (eq. 5).

    ``net``: an executable :class:`Network` (or module) whose children, in order, are
    Linear layers and invertible activations (``zoo.load("digits")``, ``"digits-5layer"``,
    ``"deernet"``, Linear chains opened with an activation); ``target`` (C,).
    Layer by layer, in float64: ``h = f^{-1}(out)`` (clipped into the activation's range,
    counted in ``clipped_by_layer``) and ``x = W^+ (h - b)`` with ``W^+`` the pseudo-inverse
    (singular values below ``rtol * sigma_1`` dropped; default ``max(m, n) * eps`` of the
    stored weights). If that input misses the target by more than ``tol`` (relative),
    up to ``refine_steps`` Gauss-Newton steps refine it (see the module docstring; 0 turns
    refinement off), from the layer-by-layer input, from zeros, and from ``start`` if given.

    Invariant (checked in tests): for a reachable target (the output of some input), the
    returned ``output`` matches it to 1e-5 on digits and digits-5layer; ``distance <=
    start_distance``. W^+ gives the minimum-norm input, so ``x`` need not equal the input
    that produced the target: compare outputs.

    Raises ``NotInvertibleError`` (suggesting :func:`optimise_input`) when the network is
    not such a chain, ``DataError`` for a target of the wrong length or with NaN/Inf.
    """
    ops, shape, label = checked_chain(net)
    n_in = math.prod(shape)
    t = check_target(target)
    n_out = int(run_chain(ops, torch.zeros(1, n_in, dtype=torch.float64)).shape[1])
    if t.shape[0] != n_out:
        raise DataError(
            f"target has {t.shape[0]} values but {label} has {n_out} outputs; pass one value "
            "per output."
        )
    if isinstance(refine_steps, bool) or not isinstance(refine_steps, int) or refine_steps < 0:
        raise DataError(f"refine_steps must be a non-negative integer, got {refine_steps!r}.")
    given: torch.Tensor | None = None
    if start is not None:
        given = check_target(torch.as_tensor(start).reshape(-1), "start")
        if given.shape[0] != n_in:
            raise DataError(f"start has {given.shape[0]} values; {label} takes {n_in} inputs.")

    # eq. 5, layer by layer
    z = t[None, :]
    clipped_by_layer: dict[str, int] = {}
    output_warnings: list[str] = []  # the target itself lies outside the output range
    hidden_warnings: list[str] = []  # artefacts of the minimum-norm choices of eq. 5
    tail_goal: torch.Tensor | None = None  # the target seen before the trailing activations
    last_linear = max(i for i, o in enumerate(ops) if o.kind == "linear")
    for i in range(len(ops) - 1, -1, -1):
        op = ops[i]
        if i == last_linear:
            tail_goal = z[0].clone()
        if op.kind == "linear":
            tol_w = default_rtol(tuple(op.W.shape), torch.float32) if rtol is None else rtol
            z = (z - op.b) @ torch.linalg.pinv(op.W, rtol=tol_w).mT
        else:
            inv = invert_activation(
                op.kind,
                z,
                negative_slope=op.negative_slope,
                alpha=op.alpha,
                margin=margin,
                layer=op.name,
            )
            z = inv.x
            if op.kind != "identity":
                clipped_by_layer[op.name] = inv.clipped
            if inv.warning:
                (output_warnings if i > last_linear else hidden_warnings).append(inv.warning)
    x_lw = z[0]
    if tail_goal is None:  # pragma: no cover - the chain always has a last Linear layer
        raise not_invertible(label, "it has no Linear layer")

    def distance(x: torch.Tensor) -> float:
        return float((run_chain(ops, x[None])[0] - t).norm())

    start_distance = distance(x_lw)
    limit = tol * max(1.0, float(t.norm()))
    history = [start_distance]
    # candidates: (distance, |x|, start name, x, steps)
    candidates = [(start_distance, float(x_lw.norm()), "layer-by-layer", x_lw, 0)]
    if refine_steps > 0 and start_distance > limit:
        body_ops = ops[: last_linear + 1]
        starts: list[tuple[str, torch.Tensor]] = [("layer-by-layer", x_lw)]
        if given is not None:
            starts.append(("given", given))
        starts.append(("zeros", torch.zeros(n_in, dtype=torch.float64)))
        with torch.no_grad():
            for name, x0 in starts:
                x, taken = _gauss_newton(body_ops, x0, tail_goal, steps=refine_steps, tol=tol)
                d = distance(x)
                history.append(d)
                candidates.append((d, float(x.norm()), name, x, taken))
    reached = [c for c in candidates if c[0] <= limit]
    if reached:  # the smallest input that reaches the target (W^+ picks minimum norm too)
        best_d, _, best_from, best_x, best_steps = min(reached, key=lambda c: c[1])
    else:
        best_d, _, best_from, best_x, best_steps = min(candidates, key=lambda c: c[0])
    warnings = list(output_warnings)
    if best_from == "layer-by-layer" and best_steps == 0:  # eq. 5 as it is
        warnings += hidden_warnings
    else:
        hidden = sum(clipped_by_layer.get(o.name, 0) for o in ops[:last_linear])
        warnings.append(
            f"the layer-by-layer inverse (eq. 5) missed the target by {start_distance:.3g}"
            f"{f' ({hidden} hidden values clipped)' if hidden else ''}; {best_steps} "
            f"Gauss-Newton step(s) from the {best_from} start reduced that to {best_d:.3g}."
        )
    if best_d > _WARN_RELATIVE * max(1.0, float(t.norm())) and not output_warnings:
        warnings.append(
            f"the closest input found misses the target by {best_d:.3g} (relative "
            f"{best_d / max(float(t.norm()), 1e-300):.2g}); the target may not be reachable."
        )
    output = run_chain(ops, best_x[None])[0]
    return Inversion.measured(
        best_x.reshape(shape),
        output,
        t,
        start_distance=start_distance,
        method="pseudo-inverse",
        start=best_from,
        clipped=sum(clipped_by_layer.values()),
        clipped_by_layer=clipped_by_layer,
        warnings=tuple(warnings),
        steps=best_steps,
        history=tuple(history),
    )
