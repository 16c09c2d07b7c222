"""Element-wise activations and their inverses (Pattichis & Pattichis eq. 5: h = f^{-1}(out)).

Invertible: SELU, tanh, sigmoid (logistic), leaky ReLU with a positive slope, ELU with a
positive alpha, identity. Values outside an activation's range are clipped into it and
counted (such a target is not reachable exactly).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch.nn import functional as F

from ..exceptions import DataError

__all__ = [
    "INVERTIBLE_ACTIVATIONS",
    "ActivationInverse",
    "NotInvertibleError",
    "activation_range",
    "apply_activation",
    "invert_activation",
]

INVERTIBLE_ACTIVATIONS: tuple[str, ...] = (
    "identity",
    "selu",
    "tanh",
    "sigmoid",
    "leaky_relu",
    "elu",
)
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_ALIASES = {"logistic": "sigmoid", "linear": "identity", "none": "identity"}
_OPTIMISE_HINT = "use optimise_input (optimisation of the input) instead"


class NotInvertibleError(DataError):
    """The network is not a chain of Linear layers and invertible activations (a
    ``DataError``: the network given cannot be used by the layer-by-layer inverse)."""


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


def apply_activation(
    name: str, z: torch.Tensor, negative_slope: float, alpha: float
) -> torch.Tensor:
    """The activation ``name`` (a canonical name of :data:`INVERTIBLE_ACTIVATIONS`) on ``z``."""
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
