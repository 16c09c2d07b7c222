"""Wiretaps on a network: the signals at a layer, captured with forward hooks.

Used by :mod:`svdcore.wiretap`: a layer's output ``W h`` (bias left out) or its
activation's output, as rows (every spatial position of a convolution is one signal).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .exceptions import DataError, ExecutionError, LayerError
from .network import Network

__all__ = [
    "apply_on_layer_input",
    "as_rows",
    "capture",
    "check_inputs",
    "layer_module",
    "next_leaf",
]


def layer_module(net: Network, layer: str) -> nn.Module:
    module = net.module
    if module is None:
        raise ExecutionError(
            f"{net.name} holds weights only: the {layer!r} wiretap needs a network that runs. "
            "Use source='noise' or 'limit' at the 'linear' position, or open an executable model."
        )
    try:
        return module.get_submodule(layer)
    except AttributeError:
        raise LayerError(f"{net.name} has no module {layer!r} to wiretap.") from None


def next_leaf(net: Network, layer: str) -> str | None:
    """Name of the parameter-free leaf module that runs right after ``layer`` (its activation,
    for a chain), or None when the next module has weights (no activation in between)."""
    module = net.module
    assert module is not None
    if net.input_shape is None:
        raise ExecutionError(f"{net.name} has no known input shape; cannot trace its layers.")
    order: list[str] = []
    with net.hook_lock:
        handles = [
            mod.register_forward_hook(lambda _m, _i, _o, n=name: order.append(n))
            for name, mod in module.named_modules()
            if name and not list(mod.children())
        ]
        try:
            net.forward(torch.zeros(1, *net.input_shape))
        finally:
            for h in handles:
                h.remove()
    if layer not in order:
        raise LayerError(f"layer {layer!r} does not run in {net.name}'s forward pass.")
    i = order.index(layer)
    if i + 1 >= len(order):
        return None
    nxt = module.get_submodule(order[i + 1])
    return None if any(True for _ in nxt.parameters()) else order[i + 1]


def as_rows(t: torch.Tensor) -> torch.Tensor:
    """(N, n) or (N, n, *spatial) -> (N * spatial, n): every position is a signal."""
    if t.ndim == 2:
        return t
    return t.movedim(1, -1).reshape(-1, t.shape[1])


def capture(net: Network, xb: torch.Tensor, layer: str, position: str) -> torch.Tensor:
    """The wiretapped signals (rows) for input batch xb."""
    mod = layer_module(net, layer)
    got: dict[str, torch.Tensor] = {}
    bias = getattr(mod, "bias", None)
    act = next_leaf(net, layer) if position != "linear" else None
    with net.hook_lock:
        handles = [mod.register_forward_hook(lambda _m, _i, o: got.__setitem__("lin", o.detach()))]
        if act is not None:
            hook = net.module.get_submodule(act).register_forward_hook(
                lambda _m, _i, o: got.__setitem__("act", o.detach())
            )
            handles.append(hook)
        try:
            net.forward(xb)
        finally:
            for h in handles:
                h.remove()
    if position == "linear":
        out = got["lin"]
        if isinstance(bias, torch.Tensor):
            shape = (1, -1) + (1,) * (out.ndim - 2)
            out = out - bias.detach().reshape(shape)
        return as_rows(out)
    return as_rows(got.get("act", got["lin"]))


def apply_on_layer_input(net: Network, layer: str, h: torch.Tensor, position: str) -> torch.Tensor:
    """Run only the layer (and its activation) on layer inputs h (N, d) (noise source)."""
    W = net.matrix(layer).double()
    y = h @ W.T
    if position == "linear":
        return y
    b = net.bias(layer)
    if b is not None:
        y = y + b.double()
    if not net.executable:
        raise ExecutionError(
            f"{net.name} holds weights only, so the activation after {layer!r} is unknown; "
            "use position='linear' or make the network executable."
        )
    act = next_leaf(net, layer)
    if act is None:
        return y
    with torch.no_grad():
        return net.module.get_submodule(act)(y)


def check_inputs(net: Network, x: torch.Tensor | np.ndarray | None, what: str) -> torch.Tensor:
    if x is None:
        raise DataError(f"source={what!r} needs inputs x (N, *input_shape).")
    xt = torch.as_tensor(np.asarray(x) if isinstance(x, np.ndarray) else x).float()
    if xt.ndim < 1 or xt.shape[0] == 0:
        raise DataError("the input set x is empty.")
    if not bool(torch.isfinite(xt).all()):
        raise DataError("the input set x contains NaN or infinite values.")
    return xt
