"""Networks as chains of Linear layers and element-wise activations, in float64.

A chain is read from a module's children in order (nested ``nn.Sequential`` flattened; a
:class:`~svdcore.io.chain.LinearChain` through its public ``steps()``), checked against
the module's own forward on a probe input, and run as a list of :class:`ChainOp`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.export.unflatten import InterpreterModule

from ..exceptions import DataError, ExecutionError
from ..io.chain import LinearChain
from ..network import Network
from .activations import _OPTIMISE_HINT, NotInvertibleError, apply_activation

__all__ = [
    "ChainOp",
    "chain_refusal",
    "checked_chain",
    "module_and_shape",
    "not_invertible",
    "parse_chain",
    "run_chain",
    "verify_chain",
]

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


@dataclass(frozen=True)
class ChainOp:
    name: str
    kind: str  # "linear" or an activation key
    W: torch.Tensor | None = None  # float64 (out, in)
    b: torch.Tensor | None = None  # float64 (out,)
    negative_slope: float = 0.01
    alpha: float = 1.0


def _children(module: nn.Module) -> list[tuple[str, nn.Module]]:
    if isinstance(module, LinearChain):
        return module.steps()
    found: list[tuple[str, nn.Module]] = []
    for name, child in module.named_children():
        if isinstance(child, nn.Sequential):
            found += [(f"{name}.{n}", m) for n, m in _children(child)]
        else:
            found.append((name, child))
    return found


def not_invertible(label: str, why: str) -> NotInvertibleError:
    return NotInvertibleError(
        f"{label} cannot be inverted layer by layer: {why}. The pseudo-inverse method needs "
        "a chain of Linear layers and invertible activations (selu, tanh, sigmoid, "
        f"leaky_relu, elu, identity); {_OPTIMISE_HINT}."
    )


def parse_chain(module: nn.Module, label: str) -> list[ChainOp]:
    children = _children(module)
    if not children:
        children = [("", module)]
    ops: list[ChainOp] = []
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
            ops.append(ChainOp(name, "linear", W, b))
            continue
        if isinstance(child, nn.Flatten):
            if child.start_dim != 1 or child.end_dim != -1 or any(o.kind == "linear" for o in ops):
                raise not_invertible(label, f"{shown} (Flatten) is not a leading flatten")
            continue
        kind = _MODULE_ACTIVATIONS.get(type(child))
        if kind is None:
            why = _NOT_INVERTIBLE_WHY.get(type(child))
            if why:
                raise not_invertible(
                    label, f"{shown} ({type(child).__name__}) is not invertible: {why}"
                )
            if isinstance(child, InterpreterModule):
                raise not_invertible(
                    label,
                    f"{shown} is a part of a torch.export program, whose layers are graph "
                    "operators, not Linear and activation modules",
                )
            kind_name = type(child).__name__
            article = "an" if kind_name[:1] in "AEIOU" else "a"
            raise not_invertible(
                label,
                f"{shown} is {article} {kind_name}, neither a Linear layer nor an invertible "
                "activation",
            )
        slope = float(getattr(child, "negative_slope", 0.01))
        alpha = float(getattr(child, "alpha", 1.0))
        if kind == "leaky_relu" and not slope > 0:
            raise not_invertible(label, f"{shown} is a LeakyReLU with slope {slope} <= 0")
        if kind == "elu" and not alpha > 0:
            raise not_invertible(label, f"{shown} is an ELU with alpha {alpha} <= 0")
        ops.append(ChainOp(name, kind, negative_slope=slope, alpha=alpha))
    linears = [o for o in ops if o.kind == "linear"]
    if not linears:
        raise not_invertible(label, "it has no Linear layer")
    for a, b in itertools.pairwise(linears):
        if a.W.shape[0] != b.W.shape[1]:
            raise not_invertible(
                label, f"{a.name} outputs {a.W.shape[0]} values but {b.name} takes {b.W.shape[1]}"
            )
    return ops


def run_chain(ops: Sequence[ChainOp], x: torch.Tensor) -> torch.Tensor:
    """The chain on (N, d) float64 inputs."""
    for op in ops:
        if op.kind == "linear":
            x = x @ op.W.mT + op.b
        else:
            x = apply_activation(op.kind, x, op.negative_slope, op.alpha)
    return x


def module_and_shape(net: Network | nn.Module) -> tuple[nn.Module, tuple[int, ...] | None, str]:
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


def verify_chain(module: nn.Module, ops: list[ChainOp], shape: tuple[int, ...], label: str) -> None:
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
        raise not_invertible(label, f"its forward failed on a probe input ({exc})") from exc
    want = run_chain(ops, probe)
    got = got.detach().to(dtype=torch.float64, device="cpu").reshape(want.shape)
    scale = float(want.abs().max()) + 1.0
    if got.shape != want.shape or float((got - want).abs().max()) > 1e-4 * scale:
        raise not_invertible(
            label,
            "its forward is not the plain sequence of its children (skip connections or "
            "reshapes in forward)",
        )


def checked_chain(net: Network | nn.Module) -> tuple[list[ChainOp], tuple[int, ...], str]:
    """``net`` read as a chain (its ops, one sample's input shape, its label), checked
    against its own forward. Raises ``NotInvertibleError`` when it is not such a chain,
    ``ExecutionError`` for a weights-only network."""
    module, input_shape, label = module_and_shape(net)
    ops = parse_chain(module, label)
    first = next(o for o in ops if o.kind == "linear")
    n_in = int(first.W.shape[1])
    shape = tuple(input_shape) if input_shape else (n_in,)
    if math.prod(shape) != n_in:
        raise DataError(f"{label}: input shape {shape} does not fit {first.name} ({n_in} inputs).")
    verify_chain(module, ops, shape, label)
    return ops, shape, label


def chain_refusal(net: Network | nn.Module) -> str | None:
    """None when :func:`~svdcore.inversion.pseudo_inverse_input` can invert ``net`` layer
    by layer; otherwise the sentence saying why not (that of ``NotInvertibleError``, which
    names the alternative, the optimisation). ``ExecutionError`` for a weights-only one."""
    try:
        checked_chain(net)
    except NotInvertibleError as err:
        return str(err)
    return None
