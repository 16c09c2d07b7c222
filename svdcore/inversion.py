"""Inputs that produce a target output: pseudo-inverse through invertible activations, or
optimisation of the input (Pattichis & Pattichis, section 2.4).

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

**Optimisation** (:func:`optimise_input`), for any differentiable network: Adam on the
input (weights frozen) to minimise ``||net(x) - target||^2`` from a training-based start:
``avg-img`` (average training image of the class), ``min-img`` (the training image whose
output is closest to the target) or ``avg-min-img`` (average of the closest 25 %). The
default target is the *ideal output* (:func:`ideal_output`): the largest value output
``cls`` reaches on training images of class ``cls``, and the smallest value over all
training images for every other output.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .exceptions import DataError, ExecutionError, SvdscopeError
from .io.chain import LinearChain
from .network import Network
from .spectrum import default_rtol

__all__ = [
    "INVERTIBLE_ACTIVATIONS",
    "ActivationInverse",
    "Inversion",
    "NotInvertibleError",
    "activation_range",
    "ideal_output",
    "invert_activation",
    "optimise_input",
    "pseudo_inverse_input",
]

INVERTIBLE_ACTIVATIONS: tuple[str, ...] = (
    "identity",
    "selu",
    "tanh",
    "sigmoid",
    "leaky_relu",
    "elu",
)
START_METHODS: tuple[str, ...] = ("avg-img", "min-img", "avg-min-img")

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_ALIASES = {"logistic": "sigmoid", "linear": "identity", "none": "identity"}
_MODULE_ACTIVATIONS: dict[type, str] = {
    nn.Identity: "identity",
    nn.Dropout: "identity",
    nn.SELU: "selu",
    nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid",
    nn.LeakyReLU: "leaky_relu",
    nn.ELU: "elu",
}
_NOT_INVERTIBLE_WHY: dict[type, str] = {
    nn.ReLU: "it maps every negative value to 0",
    nn.ReLU6: "it maps every negative value to 0 and every value above 6 to 6",
    nn.GELU: "it is not one-to-one (it has a minimum near -0.75)",
    nn.SiLU: "it is not one-to-one (it has a minimum near -1.28)",
    nn.Softmax: "it discards one degree of freedom (outputs sum to 1)",
    nn.Hardtanh: "it is constant outside [-1, 1]",
}
_OPTIMISE_HINT = "use optimise_input (optimisation of the input) instead"
_CHUNK = 4096
# A refined input that misses by less than this (relative) is as close as float32 outputs
# can be; no warning then.
_WARN_RELATIVE = 1e-6


class NotInvertibleError(SvdscopeError):
    """The network is not a chain of Linear layers and invertible activations."""


class ActivationInverse(NamedTuple):
    """Pre-activation values ``x`` (float64, shape of ``y``) with ``f(x) ~ y``.

    ``clipped`` counts the values of ``y`` outside the open range ``(low, high)`` of the
    activation, which were clipped into it before inverting; ``warning`` says so in a
    sentence (None when nothing was clipped); ``(low, high)`` is that range.
    Invariant (checked in tests): ``f(x) == clip(y)`` to float64 precision.
    """

    x: torch.Tensor
    clipped: int
    low: float
    high: float
    warning: str | None


@dataclass(frozen=True, eq=False)
class Inversion:
    """An input ``x`` found for a ``target`` output, and how close it gets.

    ``x``: float64, one sample of the network's input shape; ``output`` (C,) float64, the
    network's output at ``x``; ``target`` (C,) float64; ``distance = ||output - target||``;
    ``start_distance`` the distance at the start (optimisation: of the start image;
    pseudo-inverse: of the layer-by-layer eq. 5 solution, before refinement); ``method``
    "pseudo-inverse" or "optimise"; ``start`` which start the result came from
    ("layer-by-layer", "zeros", "given", "avg-img", "min-img", "avg-min-img");
    ``clipped`` / ``clipped_by_layer`` values clipped into activation ranges by eq. 5;
    ``warnings`` sentences for the user; ``steps`` refinement or optimisation steps taken;
    ``stopped`` True when ``should_stop()`` ended the run early; ``history``: for
    optimisation the distance at the start and after every step, for the pseudo-inverse
    the eq. 5 distance followed by the distance reached from each refinement start.
    Invariant: ``distance <= start_distance``.
    """

    x: torch.Tensor
    output: torch.Tensor
    target: torch.Tensor
    distance: float
    start_distance: float
    method: str
    start: str
    clipped: int = 0
    clipped_by_layer: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    steps: int = 0
    stopped: bool = False
    history: tuple[float, ...] = ()

    @property
    def improvement(self) -> float:
        """``start_distance - distance`` (>= 0)."""
        return self.start_distance - self.distance


# ----------------------------------------------------------------------------- activations
def _canonical(name: str) -> str:
    if not isinstance(name, str):
        raise DataError(f"activation name must be a string, got {type(name).__name__}.")
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in INVERTIBLE_ACTIVATIONS:
        raise NotInvertibleError(
            f"activation {name!r} cannot be inverted; invertible ones are "
            f"{', '.join(INVERTIBLE_ACTIVATIONS)}. For other networks, {_OPTIMISE_HINT}."
        )
    return key


def _check_params(name: str, negative_slope: float, alpha: float) -> None:
    if name == "leaky_relu" and not (math.isfinite(negative_slope) and negative_slope > 0):
        raise NotInvertibleError(
            f"leaky_relu with negative_slope={negative_slope} is not invertible (a slope of "
            f"0 is ReLU; a negative slope is not one-to-one); {_OPTIMISE_HINT}."
        )
    if name == "elu" and not (math.isfinite(alpha) and alpha > 0):
        raise NotInvertibleError(f"elu with alpha={alpha} is not invertible; {_OPTIMISE_HINT}.")


def activation_range(
    name: str, *, negative_slope: float = 0.01, alpha: float = 1.0
) -> tuple[float, float]:
    """The open range ``(low, high)`` of an invertible activation (``inf`` when unbounded).

    selu: (-1.7581, inf) (= -scale * alpha); elu: (-alpha, inf); tanh: (-1, 1);
    sigmoid: (0, 1); leaky_relu and identity: (-inf, inf).
    """
    key = _canonical(name)
    _check_params(key, negative_slope, alpha)
    return {
        "identity": (-math.inf, math.inf),
        "leaky_relu": (-math.inf, math.inf),
        "selu": (-_SELU_SCALE * _SELU_ALPHA, math.inf),
        "elu": (-alpha, math.inf),
        "tanh": (-1.0, 1.0),
        "sigmoid": (0.0, 1.0),
    }[key]


def _apply(name: str, z: torch.Tensor, negative_slope: float, alpha: float) -> torch.Tensor:
    if name == "identity":
        return z
    if name == "selu":
        return F.selu(z)
    if name == "tanh":
        return torch.tanh(z)
    if name == "sigmoid":
        return torch.sigmoid(z)
    if name == "leaky_relu":
        return F.leaky_relu(z, negative_slope)
    return F.elu(z, alpha)


def invert_activation(
    name: str,
    y: torch.Tensor | np.ndarray,
    *,
    negative_slope: float = 0.01,
    alpha: float = 1.0,
    margin: float = 1e-9,
    layer: str | None = None,
) -> ActivationInverse:
    """Invert an element-wise activation: ``x`` with ``f(x) = y`` (float64).

    ``name`` one of :data:`INVERTIBLE_ACTIVATIONS` (``logistic`` = sigmoid);
    ``negative_slope`` for leaky_relu (> 0), ``alpha`` for elu (> 0). ``y`` is first clamped
    into ``[low + margin, high - margin]`` (finite edges only; so tanh saturates at
    atanh(1 - 1e-9) = 10.7 and SELU at -21.3 by default). Values outside the open range
    ``(low, high)`` are counted in ``clipped``, with a sentence in ``warning`` naming
    ``layer`` when given (values inside but within ``margin`` of an edge move by less than
    ``margin`` and are not counted). Nothing is printed.

    Invariant (checked in tests): ``f(x) == y`` wherever ``low + margin <= y <= high -
    margin``.
    Raises ``NotInvertibleError`` for other activations and ``DataError`` for NaN/empty y.
    """
    key = _canonical(name)
    _check_params(key, negative_slope, alpha)
    if isinstance(y, np.ndarray):
        y = torch.from_numpy(np.ascontiguousarray(y))
    if not isinstance(y, torch.Tensor) or y.is_complex():
        raise DataError("y must be a real torch.Tensor or numpy array.")
    if y.numel() == 0:
        raise DataError("y is empty; there is nothing to invert.")
    if not math.isfinite(margin) or margin < 0:
        raise DataError(f"margin must be a small non-negative number, got {margin}.")
    y = y.detach().to(dtype=torch.float64, device="cpu")
    if bool(torch.isnan(y).any()):
        raise DataError("y contains NaN values; an output must be a number to be inverted.")
    low, high = activation_range(key, negative_slope=negative_slope, alpha=alpha)
    lo = low + margin if math.isfinite(low) else -math.inf
    hi = high - margin if math.isfinite(high) else math.inf
    clipped = int(((y <= low) | (y >= high)).sum())
    if math.isinf(low) and math.isinf(high) and not bool(torch.isfinite(y).all()):
        raise DataError("y contains infinite values; an output must be finite to be inverted.")
    yc = y
    if math.isfinite(lo):
        yc = yc.clamp(min=lo)
    if math.isfinite(hi):
        yc = yc.clamp(max=hi)
    if key == "identity":
        x = yc.clone()
    elif key == "selu":
        x = torch.where(
            yc > 0, yc / _SELU_SCALE, torch.log1p(yc.clamp(max=0) / (_SELU_SCALE * _SELU_ALPHA))
        )
    elif key == "elu":
        x = torch.where(yc > 0, yc, torch.log1p(yc.clamp(max=0) / alpha))
    elif key == "tanh":
        x = torch.atanh(yc)
    elif key == "sigmoid":
        x = torch.log(yc) - torch.log1p(-yc)
    else:  # leaky_relu
        x = torch.where(yc >= 0, yc, yc / negative_slope)
    warning = None
    if clipped:
        where = f"{layer}: " if layer else ""
        warning = (
            f"{where}{clipped} of {y.numel()} value(s) lay outside the range "
            f"({low:.4g}, {high:.4g}) of {key} and were clipped into it; that target is "
            "not reachable exactly."
        )
    return ActivationInverse(x=x, clipped=clipped, low=low, high=high, warning=warning)


# ----------------------------------------------------------------------------- chains
@dataclass(frozen=True)
class _Op:
    name: str
    kind: str  # "linear" or an activation key
    W: torch.Tensor | None = None  # float64 (out, in)
    b: torch.Tensor | None = None  # float64 (out,)
    negative_slope: float = 0.01
    alpha: float = 1.0


def _children(module: nn.Module) -> list[tuple[str, nn.Module]]:
    if isinstance(module, LinearChain):
        out: list[tuple[str, nn.Module]] = []
        for lin, act in zip(module._order, module._acts, strict=True):
            out += [(lin, module.get_submodule(lin)), (act, module.get_submodule(act))]
        return out
    found: list[tuple[str, nn.Module]] = []
    for name, child in module.named_children():
        if isinstance(child, nn.Sequential):
            found += [(f"{name}.{n}", m) for n, m in _children(child)]
        else:
            found.append((name, child))
    return found


def _not_invertible(label: str, why: str) -> NotInvertibleError:
    return NotInvertibleError(
        f"{label} cannot be inverted layer by layer: {why}. The pseudo-inverse method needs "
        "a chain of Linear layers and invertible activations (selu, tanh, sigmoid, "
        f"leaky_relu, elu, identity); {_OPTIMISE_HINT}."
    )


def _parse_chain(module: nn.Module, label: str) -> list[_Op]:
    children = _children(module)
    if not children:
        children = [("", module)]
    ops: list[_Op] = []
    for name, child in children:
        shown = name or type(child).__name__
        if isinstance(child, nn.Linear):
            W = child.weight.detach().to(dtype=torch.float64, device="cpu")
            b = child.bias
            b = (
                torch.zeros(W.shape[0], dtype=torch.float64)
                if b is None
                else b.detach().to(dtype=torch.float64, device="cpu")
            )
            ops.append(_Op(name, "linear", W, b))
            continue
        if isinstance(child, nn.Flatten):
            if child.start_dim != 1 or child.end_dim != -1 or any(o.kind == "linear" for o in ops):
                raise _not_invertible(label, f"{shown} (Flatten) is not a leading flatten")
            continue
        kind = _MODULE_ACTIVATIONS.get(type(child))
        if kind is None:
            why = _NOT_INVERTIBLE_WHY.get(type(child))
            if why:
                raise _not_invertible(
                    label, f"{shown} ({type(child).__name__}) is not invertible: {why}"
                )
            raise _not_invertible(
                label,
                f"{shown} is a {type(child).__name__}, neither a Linear layer nor an "
                "invertible activation",
            )
        slope = float(getattr(child, "negative_slope", 0.01))
        alpha = float(getattr(child, "alpha", 1.0))
        if kind == "leaky_relu" and not slope > 0:
            raise _not_invertible(label, f"{shown} is a LeakyReLU with slope {slope} <= 0")
        if kind == "elu" and not alpha > 0:
            raise _not_invertible(label, f"{shown} is an ELU with alpha {alpha} <= 0")
        ops.append(_Op(name, kind, negative_slope=slope, alpha=alpha))
    linears = [o for o in ops if o.kind == "linear"]
    if not linears:
        raise _not_invertible(label, "it has no Linear layer")
    for a, b in itertools.pairwise(linears):
        if a.W.shape[0] != b.W.shape[1]:
            raise _not_invertible(
                label, f"{a.name} outputs {a.W.shape[0]} values but {b.name} takes {b.W.shape[1]}"
            )
    return ops


def _run(ops: Sequence[_Op], x: torch.Tensor) -> torch.Tensor:
    """The chain on (N, d) float64 inputs."""
    for op in ops:
        if op.kind == "linear":
            x = x @ op.W.mT + op.b
        else:
            x = _apply(op.kind, x, op.negative_slope, op.alpha)
    return x


def _module_and_shape(net: Network | nn.Module) -> tuple[nn.Module, tuple[int, ...] | None, str]:
    if isinstance(net, Network):
        if net.module is None:
            raise ExecutionError(
                f"{net.name} holds weights only: inversion needs an executable network (a zoo "
                "network, a torch.export archive, or a Linear chain opened with an activation)."
            )
        return net.module, net.input_shape, net.name
    if isinstance(net, nn.Module):
        return net, None, type(net).__name__
    raise DataError(f"net must be a Network or torch.nn.Module, got {type(net).__name__}.")


def _verify_chain(module: nn.Module, ops: list[_Op], shape: tuple[int, ...], label: str) -> None:
    """The module must compute exactly the chain of its children (probe input)."""
    n_in = ops[next(i for i, o in enumerate(ops) if o.kind == "linear")].W.shape[1]
    gen = torch.Generator().manual_seed(0)
    probe = torch.randn(3, n_in, generator=gen, dtype=torch.float64)
    param = next(module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    try:
        with torch.no_grad():
            got = module(probe.to(dtype=dtype, device=device).reshape(3, *shape))
    except Exception as exc:
        raise _not_invertible(label, f"its forward failed on a probe input ({exc})") from exc
    want = _run(ops, probe)
    got = got.detach().to(dtype=torch.float64, device="cpu").reshape(want.shape)
    scale = float(want.abs().max()) + 1.0
    if got.shape != want.shape or float((got - want).abs().max()) > 1e-4 * scale:
        raise _not_invertible(
            label,
            "its forward is not the plain sequence of its children (skip connections or "
            "reshapes in forward)",
        )


def _vector(target: torch.Tensor | np.ndarray, what: str = "target") -> torch.Tensor:
    if isinstance(target, np.ndarray):
        target = torch.from_numpy(np.ascontiguousarray(target))
    if not isinstance(target, torch.Tensor) or target.is_complex():
        raise DataError(f"{what} must be a real torch.Tensor or numpy array.")
    t = target.detach().to(dtype=torch.float64, device="cpu")
    if t.ndim == 2 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 1 or t.numel() == 0:
        raise DataError(
            f"{what} must be one output vector, shape (C,), got {tuple(target.shape)}; "
            "invert one target at a time."
        )
    if not bool(torch.isfinite(t).all()):
        raise DataError(f"{what} contains NaN or infinite values.")
    return t


def _derivative(op: _Op, z: torch.Tensor) -> torch.Tensor:
    """f'(z) of an element-wise activation."""
    if op.kind == "identity":
        return torch.ones_like(z)
    if op.kind == "selu":
        return torch.where(z > 0, _SELU_SCALE, _SELU_SCALE * _SELU_ALPHA * torch.exp(z))
    if op.kind == "tanh":
        return 1.0 - torch.tanh(z) ** 2
    if op.kind == "sigmoid":
        s = torch.sigmoid(z)
        return s * (1.0 - s)
    if op.kind == "leaky_relu":
        return torch.where(z >= 0, 1.0, op.negative_slope).to(z.dtype)
    return torch.where(z > 0, 1.0, op.alpha * torch.exp(z)).to(z.dtype)  # elu


def _value_and_jacobian(ops: Sequence[_Op], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Chain output at one input ``x`` (n,) and its Jacobian (out, n), forward mode."""
    h, J = x, torch.eye(x.shape[0], dtype=x.dtype)
    for op in ops:
        if op.kind == "linear":
            h, J = op.W @ h + op.b, op.W @ J
        else:
            h, J = _apply(op.kind, h, op.negative_slope, op.alpha), _derivative(op, h)[:, None] * J
    return h, J


def _gauss_newton(
    ops: Sequence[_Op],
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
        dx = torch.linalg.lstsq(J, r[:, None], driver="gelsd").solution[:, 0]
        a, improved = 1.0, False
        for _halving in range(30):
            xn = x + a * dx
            rn = goal - _run(ops, xn[None])[0]
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
    module, input_shape, label = _module_and_shape(net)
    ops = _parse_chain(module, label)
    first = next(o for o in ops if o.kind == "linear")
    n_in = int(first.W.shape[1])
    shape = input_shape or (n_in,)
    if math.prod(shape) != n_in:
        raise DataError(f"{label}: input shape {shape} does not fit {first.name} ({n_in} inputs).")
    _verify_chain(module, ops, shape, label)
    t = _vector(target)
    n_out = int(_run(ops, torch.zeros(1, n_in, dtype=torch.float64)).shape[1])
    if t.shape[0] != n_out:
        raise DataError(
            f"target has {t.shape[0]} values but {label} has {n_out} outputs; pass one value "
            "per output."
        )
    if isinstance(refine_steps, bool) or not isinstance(refine_steps, int) or refine_steps < 0:
        raise DataError(f"refine_steps must be a non-negative integer, got {refine_steps!r}.")
    given: torch.Tensor | None = None
    if start is not None:
        given = _vector(torch.as_tensor(start).reshape(-1), "start")
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
        raise _not_invertible(label, "it has no Linear layer")

    def distance(x: torch.Tensor) -> float:
        return float((_run(ops, x[None])[0] - t).norm())

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
    output = _run(ops, best_x[None])[0]
    return Inversion(
        x=best_x.reshape(shape),
        output=output,
        target=t,
        distance=float((output - t).norm()),
        start_distance=start_distance,
        method="pseudo-inverse",
        start=best_from,
        clipped=sum(clipped_by_layer.values()),
        clipped_by_layer=clipped_by_layer,
        warnings=tuple(warnings),
        steps=best_steps,
        history=tuple(history),
    )


# ----------------------------------------------------------------------------- optimisation
def _labels(y: torch.Tensor | np.ndarray, n: int, what: str = "y_train") -> torch.Tensor:
    if isinstance(y, np.ndarray):
        y = torch.from_numpy(np.ascontiguousarray(y))
    if not isinstance(y, torch.Tensor):
        raise DataError(f"{what} must be a tensor or numpy array of class labels.")
    y = y.detach().cpu()
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(
            f"{what} of shape {tuple(y.shape)} does not fit {n} training samples: one class "
            "label per sample is needed."
        )
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise DataError(f"{what} must hold integer class labels, got {y.dtype}.")
    return y.to(torch.int64)


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
    y = _labels(y_train, out.shape[0])
    C = out.shape[1]
    if isinstance(cls, bool) or not isinstance(cls, int | np.integer) or not 0 <= cls < C:
        raise DataError(f"cls must be a class index in [0, {C}), got {cls!r}.")
    members = y == int(cls)
    if not bool(members.any()):
        raise DataError(f"no training image has class {cls}; pick a class present in y_train.")
    ideal = out.min(dim=0).values.clone()
    ideal[int(cls)] = out[members, int(cls)].max()
    return ideal


def _forward_batches(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([module(chunk) for chunk in torch.split(x, _CHUNK)])


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
    module, input_shape, label = _module_and_shape(net)
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
    y = None if y_train is None else _labels(y_train, X.shape[0])
    outputs: torch.Tensor | None = None
    if target is None:
        if y is None or cls is None:
            raise DataError(
                "without a target, pass y_train and cls: the target is then the ideal output "
                "of class cls (ideal_output)."
            )
        outputs = _forward_batches(module, X)
        goal = ideal_output(outputs, y, cls)
    else:
        goal = _vector(target)

    if isinstance(start, torch.Tensor | np.ndarray):
        x0 = torch.as_tensor(start).detach().to(dtype=dtype, device=device)
        if x0.numel() != math.prod(shape):
            raise DataError(
                f"start has {x0.numel()} values but {label} takes inputs of shape {shape}."
            )
        x0, start_name = x0.reshape(shape), "given"
    elif start == "avg-img":
        if y is None or cls is None:
            raise DataError("start='avg-img' needs y_train and cls (the class to average).")
        members = y == int(cls)
        if not bool(members.any()):
            raise DataError(f"no training image has class {cls}; pick a class present in y_train.")
        x0, start_name = X[members.to(device)].mean(dim=0), "avg-img"
    elif start in ("min-img", "avg-min-img"):
        if outputs is None:
            outputs = _forward_batches(module, X)
        if outputs.shape[1:] != goal.shape:
            raise DataError(
                f"target has {goal.numel()} values but {label} has {outputs.shape[1]} outputs."
            )
        dist = (outputs.to(torch.float64).cpu() - goal).norm(dim=1)
        if start == "min-img":
            x0 = X[int(dist.argmin())]
        else:
            k = max(1, math.ceil(0.25 * X.shape[0]))
            closest = torch.topk(dist, k, largest=False).indices
            x0 = X[closest.to(device)].mean(dim=0)
        start_name = str(start)
    else:
        raise DataError(
            f"unknown start {start!r}; use one of {', '.join(START_METHODS)} or an input tensor."
        )

    goal_dev = goal.to(dtype=dtype, device=device)
    x = x0.detach().clone()
    if bounds is not None:
        x = x.clamp(bounds[0], bounds[1])
    x.requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=lr)
    best_x, best_d = x.detach().clone(), math.inf
    history: list[float] = []
    stopped = False
    taken = 0
    with torch.enable_grad():
        for step in range(steps + 1):  # x has had `step` updates here
            out = module(x[None])[0]
            if step == 0 and out.shape != goal_dev.shape:
                raise DataError(
                    f"target has {goal.numel()} values but {label} has {out.numel()} outputs."
                )
            d = float((out.detach().to(torch.float64).cpu() - goal).norm())
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
            loss = ((out - goal_dev) ** 2).sum()
            (grad,) = torch.autograd.grad(loss, [x])
            optimizer.zero_grad(set_to_none=True)
            x.grad = grad
            optimizer.step()
            if bounds is not None:
                with torch.no_grad():
                    x.clamp_(bounds[0], bounds[1])
            taken = step + 1
    x.requires_grad_(False)
    start_distance = history[0]
    with torch.no_grad():
        output = module(best_x[None])[0].to(torch.float64).cpu()
    return Inversion(
        x=best_x.to(dtype=torch.float64, device="cpu"),
        output=output,
        target=goal,
        distance=float((output - goal).norm()),
        start_distance=start_distance,
        method="optimise",
        start=start_name,
        steps=taken,
        stopped=stopped,
        history=tuple(history),
    )
